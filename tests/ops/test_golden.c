/* Every reference case of shared/golden (index.json) whose op this build
 * handles, through the library on the device, against the float64 expected
 * arrays. Tolerances (relative L2, DESIGN.md §1.4): fp32 1e-5, fp16 1e-3,
 * bf16 8e-3, for outputs and gradients.
 *
 * usage: test_golden GOLDEN_DIR [OP] */
#include "case_meta.h"
#include "layer_case.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

/* Compares a device result (doubles) with CASE/<name>.npy. */
static void compare(const char *dir, const char *case_name, const char *name,
                    const double *got, int ndim, const int64_t *shape,
                    dcnv4_dtype dtype) {
  case_error e;
  double *want = NULL;
  if (case_load_expected(dir, name, ndim, shape, &want, &e) != 0) {
    CHECK(0, "%s: %s", case_name, e.text);
    return;
  }
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= (uint64_t)shape[i];
  double err = rel_l2(got, want, (size_t)n);
  double tol = tolerance_for(dtype);
  printf("  %-22s %-22s rel err %.2e (tol %.0e)\n", case_name, name, err, tol);
  CHECK(err <= tol, "%s: %s error %.3g > %.0e", case_name, name, err, tol);
  free(want);
}

static void run_dcnv4_case(dcnv4_context *ctx, const char *dir,
                           const char *name, const cJSON *meta) {
  dcnv4_case c;
  case_error e;
  float *vin = NULL, *vom = NULL, *vgo = NULL;
  if (dcnv4_case_read(meta, &c, &e) ||
      case_load_tensor(dir, "input", 4, c.input_shape, c.params.dtype, &vin,
                       NULL, &e) ||
      case_load_tensor(dir, "offset_mask", 4, c.offset_mask_shape,
                       c.params.dtype, &vom, NULL, &e) ||
      case_load_tensor(dir, "grad_output", 4, c.output_shape, c.params.dtype,
                       &vgo, NULL, &e)) {
    CHECK(0, "%s: %s", name, e.text);
    goto done;
  }
  const dcnv4_params *p = &c.params;
  const dcnv4_shape *s = &c.shape;
  cl_mem in = upload_values(ctx, vin, s->input_elements, p->dtype);
  cl_mem om = upload_values(ctx, vom, s->offset_mask_elements, p->dtype);
  cl_mem go = upload_values(ctx, vgo, s->output_elements, p->dtype);
  cl_mem out = poisoned_buffer(ctx, s->output_elements, p->dtype);
  cl_mem gi = poisoned_buffer(ctx, s->input_elements, p->dtype);
  cl_mem gom = poisoned_buffer(ctx, s->offset_mask_elements, p->dtype);
  dcnv4_backward_buffers b = {in, om, go, gi, gom, NULL};
  if (dcnv4_forward(ctx, p, in, om, out, 0, NULL, NULL) != DCNV4_SUCCESS ||
      dcnv4_backward(ctx, p, &b, 0, NULL, NULL) != DCNV4_SUCCESS)
    CHECK(0, "%s: %s", name, dcnv4_context_last_error(ctx));
  else {
    double *r = download_values(ctx, out, s->output_elements, p->dtype);
    compare(dir, name, "output", r, 4, c.output_shape, p->dtype);
    free(r);
    r = download_values(ctx, gi, s->input_elements, p->dtype);
    compare(dir, name, "grad_input", r, 4, c.input_shape, p->dtype);
    free(r);
    r = download_values(ctx, gom, s->offset_mask_elements, p->dtype);
    compare(dir, name, "grad_offset_mask", r, 4, c.offset_mask_shape, p->dtype);
    free(r);
  }
  cl_mem all[] = {in, om, go, out, gi, gom};
  for (size_t i = 0; i < 6; i++)
    host_release(all[i]);
done:
  free(vin);
  free(vom);
  free(vgo);
}

static void run_fda_case(dcnv4_context *ctx, const char *dir, const char *name,
                         const cJSON *meta) {
  fda_case c;
  case_error e;
  float *vval = NULL, *vsa = NULL, *vgo = NULL;
  if (fda_case_read(meta, &c, &e) ||
      case_load_tensor(dir, "value", 4, c.value_shape, c.params.dtype, &vval,
                       NULL, &e) ||
      case_load_tensor(dir, "sampling_loc_attn", 4, c.sampling_shape,
                       c.params.dtype, &vsa, NULL, &e) ||
      case_load_tensor(dir, "grad_output", 3, c.output_shape, c.params.dtype,
                       &vgo, NULL, &e)) {
    CHECK(0, "%s: %s", name, e.text);
    goto done;
  }
  const dcnv4_fda_params *p = &c.params;
  const dcnv4_fda_shape *s = &c.shape;
  cl_mem val = upload_values(ctx, vval, s->value_elements, p->dtype);
  cl_mem sa = upload_values(ctx, vsa, s->sampling_elements, p->dtype);
  cl_mem go = upload_values(ctx, vgo, s->output_elements, p->dtype);
  cl_mem out = poisoned_buffer(ctx, s->output_elements, p->dtype);
  cl_mem gv = poisoned_buffer(ctx, s->value_elements, p->dtype);
  cl_mem gsa = poisoned_buffer(ctx, s->sampling_elements, p->dtype);
  dcnv4_fda_backward_buffers b = {val, sa, go, gv, gsa, NULL};
  if (dcnv4_fda_forward(ctx, p, val, sa, out, 0, NULL, NULL) != DCNV4_SUCCESS ||
      dcnv4_fda_backward(ctx, p, &b, 0, NULL, NULL) != DCNV4_SUCCESS)
    CHECK(0, "%s: %s", name, dcnv4_context_last_error(ctx));
  else {
    double *r = download_values(ctx, out, s->output_elements, p->dtype);
    compare(dir, name, "output", r, 3, c.output_shape, p->dtype);
    free(r);
    r = download_values(ctx, gv, s->value_elements, p->dtype);
    compare(dir, name, "grad_value", r, 4, c.value_shape, p->dtype);
    free(r);
    r = download_values(ctx, gsa, s->sampling_elements, p->dtype);
    compare(dir, name, "grad_sampling_loc_attn", r, 4, c.sampling_shape,
            p->dtype);
    free(r);
  }
  cl_mem all[] = {val, sa, go, out, gv, gsa};
  for (size_t i = 0; i < 6; i++)
    host_release(all[i]);
done:
  free(vval);
  free(vsa);
  free(vgo);
}

/* A DCNv4 layer case: weights from weights/, forward only. */
static void run_dcnv4_layer_case(dcnv4_context *ctx, const char *dir,
                                 const char *name, const cJSON *meta) {
  dcnv4_layer_case c;
  case_error e;
  float *vin = NULL;
  dcnv4_layer *layer = NULL;
  if (dcnv4_layer_case_read(meta, &c, &e) ||
      case_load_tensor(dir, "input", 3, c.io_shape, c.dtype, &vin, NULL, &e)) {
    CHECK(0, "%s: %s", name, e.text);
    goto done;
  }
  if (dcnv4_layer_dcnv4_create(ctx, &c.config, c.dtype, &layer) !=
      DCNV4_SUCCESS) {
    CHECK(0, "%s: %s", name, dcnv4_context_last_error(ctx));
    goto done;
  }
  if (case_load_layer_weights(dir, layer, &e) != 0) {
    CHECK(0, "%s: %s (%s)", name, e.text, dcnv4_context_last_error(ctx));
    goto done;
  }
  cl_mem in = upload_values(ctx, vin, (size_t)c.io_elements, c.dtype);
  cl_mem out = poisoned_buffer(ctx, (size_t)c.io_elements, c.dtype);
  if (dcnv4_layer_dcnv4_forward(layer, c.batch, c.height, c.width, in, out,
                                NULL, 0, NULL, NULL) != DCNV4_SUCCESS)
    CHECK(0, "%s: %s", name, dcnv4_context_last_error(ctx));
  else {
    double *r = download_values(ctx, out, (size_t)c.io_elements, c.dtype);
    compare(dir, name, "output", r, 3, c.io_shape, c.dtype);
    free(r);
  }
  host_release(in);
  host_release(out);
done:
  dcnv4_layer_destroy(layer);
  free(vin);
}

/* A FlashDeformAttn layer case: weights from weights/, forward only. */
static void run_fda_layer_case(dcnv4_context *ctx, const char *dir,
                               const char *name, const cJSON *meta) {
  fda_layer_case c;
  case_error e;
  float *vq = NULL, *vr = NULL, *vin = NULL;
  unsigned char *mask = NULL;
  dcnv4_layer *layer = NULL;
  if (fda_layer_case_read(meta, &c, &e) ||
      case_load_tensor(dir, "query", 3, c.query_shape, c.dtype, &vq, NULL,
                       &e) ||
      case_load_tensor(dir, "reference_points", 4, c.reference_shape, c.dtype,
                       &vr, NULL, &e) ||
      case_load_tensor(dir, "input_flatten", 3, c.input_shape, c.dtype, &vin,
                       NULL, &e) ||
      (c.padding_mask &&
       case_load_mask(dir, "padding_mask", 2, c.mask_shape, &mask, &e))) {
    CHECK(0, "%s: %s", name, e.text);
    goto done;
  }
  if (dcnv4_layer_fda_create(ctx, &c.config, c.dtype, &layer) !=
      DCNV4_SUCCESS) {
    CHECK(0, "%s: %s", name, dcnv4_context_last_error(ctx));
    goto done;
  }
  if (case_load_layer_weights(dir, layer, &e) != 0) {
    CHECK(0, "%s: %s (%s)", name, e.text, dcnv4_context_last_error(ctx));
    goto done;
  }
  cl_mem q = upload_values(ctx, vq, (size_t)c.query_elements, c.dtype);
  cl_mem r = upload_values(ctx, vr, (size_t)c.reference_elements, c.dtype);
  cl_mem in = upload_values(ctx, vin, (size_t)c.input_elements, c.dtype);
  cl_mem m = mask ? host_buffer(ctx, (size_t)c.mask_elements, mask) : NULL;
  cl_mem out = poisoned_buffer(ctx, (size_t)c.query_elements, c.dtype);
  if (dcnv4_layer_fda_forward(layer, &c.shape, q, r, in, m, out, NULL, 0, NULL,
                              NULL) != DCNV4_SUCCESS)
    CHECK(0, "%s: %s", name, dcnv4_context_last_error(ctx));
  else {
    double *res = download_values(ctx, out, (size_t)c.query_elements, c.dtype);
    compare(dir, name, "output", res, 3, c.query_shape, c.dtype);
    free(res);
  }
  cl_mem all[] = {q, r, in, m, out};
  for (size_t i = 0; i < 5; i++)
    host_release(all[i]);
done:
  dcnv4_layer_destroy(layer);
  free(vq);
  free(vr);
  free(vin);
  free(mask);
}

typedef void (*case_runner)(dcnv4_context *, const char *, const char *,
                            const cJSON *);
static const struct {
  const char *op;
  case_runner run;
} runners[] = {
    {"dcnv4", run_dcnv4_case},
    {"flash_deform_attn", run_fda_case},
    {"dcnv4_layer", run_dcnv4_layer_case},
    {"flash_deform_attn_layer", run_fda_layer_case},
};

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_golden GOLDEN_DIR [OP]\n");
    return 2;
  }
  const char *root = argv[1];
  const char *only = argc > 2 ? argv[2] : NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s/index.json", root);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return 1;
  }
  char text[1 << 16];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  cJSON *index = cJSON_Parse(text);
  if (!cJSON_IsArray(index)) {
    fprintf(stderr, "%s is not a JSON array\n", path);
    return 1;
  }
  dcnv4_context *ctx = test_context();
  int ran = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, index) {
    if (!cJSON_IsString(item))
      continue;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, item->valuestring);
    cJSON *meta = NULL;
    case_error e;
    const char *op = NULL;
    if (meta_load(dir, &meta, &e) || meta_string(meta, "op", &op, &e)) {
      CHECK(0, "%s: %s", item->valuestring, e.text);
      cJSON_Delete(meta);
      continue;
    }
    for (size_t r = 0; r < sizeof runners / sizeof runners[0]; r++)
      if (!strcmp(runners[r].op, op) && (!only || !strcmp(only, op))) {
        runners[r].run(ctx, dir, item->valuestring, meta);
        ran++;
      }
    cJSON_Delete(meta);
  }
  printf("%d golden case(s) run\n", ran);
  CHECK(ran > 0, "no golden case of a handled op was found in %s", root);
  cJSON_Delete(index);
  dcnv4_context_destroy(ctx);
  return test_finish("test_golden");
}
