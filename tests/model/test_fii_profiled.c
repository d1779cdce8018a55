/* dcnv4_fii_forward_profiled (the stage markers dcnv4-bench reads): the
 * same logits as dcnv4_fii_forward, DCNV4_FII_STAGES + 1 completed markers
 * whose profiled ends do not go backwards (with and without logits, the
 * head then empty), and the errors: NULL model, NULL stage_events, a bad
 * argument found before anything is enqueued (no event handed out), a wait
 * list. */
#include "reference_fii.h"
#include "st_writer.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 256
enum { N = 2, H = 23, W = 19 };

/* A small model with random weights, loaded from a file in `dir`. */
static dcnv4_fii *small_model(dcnv4_context *ctx, const char *dir, rng *r) {
  dcnv4_fii_config c;
  dcnv4_fii_config_init(&c);
  c.channels = 16;
  for (int l = 0; l < 4; l++) {
    c.depths[l] = 1;
    c.groups[l] = (16 << l) / 8;
  }
  c.num_classes = 7;
  static ref_fii_key keys[MAX_KEYS];
  size_t count = ref_fii_keys(&c, keys, MAX_KEYS);
  CHECK(count <= MAX_KEYS, "%zu keys", count);
  if (count > MAX_KEYS)
    return NULL;
  st_tensor *t = calloc(count, sizeof *t);
  float **v = calloc(count, sizeof *v);
  for (size_t i = 0; i < count; i++) {
    v[i] = malloc(keys[i].elements * sizeof **v);
    for (uint64_t j = 0; j < keys[i].elements; j++)
      v[i][j] = keys[i].role == REF_FII_MATRIX
                    ? (float)(rng_uniform(r, -1, 1) *
                              sqrt(3.0 / (double)keys[i].fan_in))
                    : (float)rng_uniform(r, 0.5, 1.0);
    t[i] = (st_tensor){keys[i].key, "F32", keys[i].ndim, {0}, v[i]};
    memcpy(t[i].shape, keys[i].shape, sizeof keys[i].shape);
  }
  char path[4200];
  snprintf(path, sizeof path, "%s/w.safetensors", dir);
  CHECK(st_write(path, t, count) == 0, "writing %s", path);
  for (size_t i = 0; i < count; i++)
    free(v[i]);
  free(v);
  free(t);
  dcnv4_fii *m = NULL;
  CHECK(dcnv4_fii_create(ctx, &c, DCNV4_FLOAT32, &m) == DCNV4_SUCCESS,
        "create: %s", dcnv4_context_last_error(ctx));
  CHECK(m && dcnv4_fii_load_safetensors(m, path) == DCNV4_SUCCESS, "load: %s",
        dcnv4_context_last_error(ctx));
  return m;
}

static cl_ulong end_of(cl_event e) {
  cl_ulong t = 0;
  CHECK(clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof t, &t,
                                NULL) == CL_SUCCESS,
        "profiling info");
  return t;
}

/* The events are all there, complete, in order; then released. */
static void check_events(cl_event *ev, const char *what) {
  for (int i = 0; i <= DCNV4_FII_STAGES; i++)
    CHECK(ev[i] != NULL, "%s: stage event %d missing", what, i);
  if (!ev[DCNV4_FII_STAGES])
    return;
  CHECK(clWaitForEvents(1, &ev[DCNV4_FII_STAGES]) == CL_SUCCESS, "%s: wait",
        what);
  cl_ulong last = 0;
  for (int i = 0; i <= DCNV4_FII_STAGES; i++) {
    if (!ev[i])
      continue;
    cl_int state = 0;
    clGetEventInfo(ev[i], CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state,
                   &state, NULL);
    CHECK(state == CL_COMPLETE, "%s: stage event %d not complete", what, i);
    cl_ulong t = end_of(ev[i]);
    CHECK(t >= last, "%s: stage event %d ends before %d", what, i, i - 1);
    last = t;
    clReleaseEvent(ev[i]);
  }
}

int main(void) {
  dcnv4_context *ctx = test_profiling_context();
  char *dir = make_temp_dir("fii-profiled");
  rng r = {test_seed(8)};
  dcnv4_fii *m = small_model(ctx, dir, &r);
  if (!m)
    return test_finish("test_fii_profiled");
  const size_t pixels = (size_t)N * 3 * H * W, outs = (size_t)N * 7;
  float *img = malloc(pixels * sizeof *img);
  for (size_t i = 0; i < pixels; i++)
    img[i] = (float)rng_uniform(&r, -2, 2);
  cl_mem image = upload_values(ctx, img, pixels, DCNV4_FLOAT32);
  cl_mem plain = poisoned_buffer(ctx, outs, DCNV4_FLOAT32);
  cl_mem profiled = poisoned_buffer(ctx, outs, DCNV4_FLOAT32);
  free(img);

  CHECK(dcnv4_fii_forward(m, N, H, W, image, plain, NULL, NULL, 0, NULL,
                          NULL) == DCNV4_SUCCESS,
        "forward: %s", dcnv4_context_last_error(ctx));
  cl_event ev[DCNV4_FII_STAGES + 1];
  CHECK(dcnv4_fii_forward_profiled(m, N, H, W, image, profiled, NULL, NULL, 0,
                                   NULL, ev) == DCNV4_SUCCESS,
        "profiled: %s", dcnv4_context_last_error(ctx));
  check_events(ev, "logits");
  double *a = download_values(ctx, plain, outs, DCNV4_FLOAT32);
  double *b = download_values(ctx, profiled, outs, DCNV4_FLOAT32);
  CHECK(a && b && memcmp(a, b, outs * sizeof *a) == 0,
        "the profiled forward's logits differ");
  CHECK(a && isfinite(a[0]), "logits not finite");
  free(a);
  free(b);

  /* Features only: the head's stage is empty; a wait list is honoured. */
  cl_mem feat[4] = {NULL, NULL, NULL, NULL};
  int32_t fh, fw, fc;
  dcnv4_fii_level_size(m, H, W, 3, &fh, &fw, &fc);
  feat[3] = poisoned_buffer(ctx, (size_t)N * fh * fw * fc, DCNV4_FLOAT32);
  cl_event before = NULL;
  clEnqueueMarkerWithWaitList(dcnv4_context_queue(ctx), 0, NULL, &before);
  CHECK(dcnv4_fii_forward_profiled(m, N, H, W, image, NULL, feat, NULL, 1,
                                   &before, ev) == DCNV4_SUCCESS,
        "profiled, features: %s", dcnv4_context_last_error(ctx));
  check_events(ev, "features");
  if (before)
    clReleaseEvent(before);

  /* Errors: nothing handed out. */
  for (int i = 0; i <= DCNV4_FII_STAGES; i++)
    ev[i] = (cl_event)(intptr_t)1; /* garbage the call must clear */
  CHECK(dcnv4_fii_forward_profiled(m, 0, H, W, image, profiled, NULL, NULL, 0,
                                   NULL, ev) == DCNV4_ERROR_INVALID_PARAMETER,
        "batch 0");
  for (int i = 0; i <= DCNV4_FII_STAGES; i++)
    CHECK(ev[i] == NULL, "batch 0: stage event %d handed out", i);
  CHECK(dcnv4_fii_forward_profiled(m, N, H, W, image, NULL, NULL, NULL, 0, NULL,
                                   ev) == DCNV4_ERROR_NULL_POINTER,
        "no output");
  for (int i = 0; i <= DCNV4_FII_STAGES; i++)
    CHECK(ev[i] == NULL, "no output: stage event %d handed out", i);
  CHECK(dcnv4_fii_forward_profiled(m, N, H, W, image, profiled, NULL, NULL, 0,
                                   NULL, NULL) == DCNV4_ERROR_NULL_POINTER,
        "NULL stage_events");
  CHECK(strstr(dcnv4_context_last_error(ctx), "stage_events") != NULL,
        "message: %s", dcnv4_context_last_error(ctx));
  CHECK(dcnv4_fii_forward_profiled(NULL, N, H, W, image, profiled, NULL, NULL,
                                   0, NULL, ev) == DCNV4_ERROR_NULL_POINTER,
        "NULL model");

  host_release(image);
  host_release(plain);
  host_release(profiled);
  host_release(feat[3]);
  dcnv4_fii_destroy(m);
  dcnv4_context_destroy(ctx);
  remove_tree(dir);
  free(dir);
  return test_finish("test_fii_profiled");
}
