/* meta.json readers and tensor loading for case folders. */
#include "case_meta.h"

#include "host_dtype.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int case_fail(case_error *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->text, sizeof e->text, fmt, ap);
  va_end(ap);
  return -1;
}

int meta_load(const char *case_dir, cJSON **root, case_error *e) {
  char path[4096];
  snprintf(path, sizeof path, "%s/meta.json", case_dir);
  FILE *f = fopen(path, "rb");
  if (!f)
    return case_fail(e, "cannot open %s", path);
  char *text = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1L << 24) &&
      fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1)) &&
      fread(text, 1, (size_t)n, f) == (size_t)n) {
    text[n] = '\0';
  } else {
    free(text);
    fclose(f);
    return case_fail(e, "cannot read %s", path);
  }
  fclose(f);
  int rc = meta_parse(text, (size_t)n, root, e);
  free(text);
  if (rc != 0) {
    case_error inner = *e;
    return case_fail(e, "%s: %s", path, inner.text);
  }
  return 0;
}

int meta_parse(const char *text, size_t size, cJSON **root, case_error *e) {
  *root = NULL;
  /* An embedded zero byte is rejected; cJSON insists that nothing but
   * whitespace follows the value. */
  if (memchr(text, '\0', size))
    return case_fail(e, "not valid JSON (a zero byte)");
  char *copy = malloc(size + 1);
  if (!copy)
    return case_fail(e, "out of memory");
  memcpy(copy, text, size);
  copy[size] = '\0';
  const char *end = NULL;
  /* The length includes the terminating zero so that cJSON checks what
   * follows the value. */
  *root = cJSON_ParseWithLengthOpts(copy, size + 1, &end, 1);
  free(copy);
  if (!*root)
    return case_fail(e, "not valid JSON");
  if (!cJSON_IsObject(*root)) {
    cJSON_Delete(*root);
    *root = NULL;
    return case_fail(e, "not a JSON object");
  }
  return 0;
}

static const cJSON *field(const cJSON *root, const char *key, case_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v)
    case_fail(e, "meta.json lacks \"%s\"", key);
  return v;
}

int meta_int(const cJSON *root, const char *key, int64_t min, int64_t max,
             int64_t *out, case_error *e) {
  *out = 0;
  const cJSON *v = field(root, key, e);
  if (!v)
    return -1;
  double d;
  if (cJSON_IsBool(v))
    d = cJSON_IsTrue(v) ? 1.0 : 0.0;
  else if (cJSON_IsNumber(v))
    d = v->valuedouble;
  else
    return case_fail(e, "meta.json \"%s\" is not a number", key);
  if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max)
    return case_fail(e,
                     "meta.json \"%s\" is %g; expected an integer in "
                     "[%lld, %lld]",
                     key, d, (long long)min, (long long)max);
  *out = (int64_t)d;
  return 0;
}

int meta_int32(const cJSON *root, const char *key, int32_t min, int32_t max,
               int32_t *out, case_error *e) {
  int64_t v;
  *out = 0;
  if (meta_int(root, key, min, max, &v, e) != 0)
    return -1;
  *out = (int32_t)v;
  return 0;
}

int meta_number(const cJSON *root, const char *key, double *out,
                case_error *e) {
  *out = 0;
  const cJSON *v = field(root, key, e);
  if (!v)
    return -1;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
    return case_fail(e, "meta.json \"%s\" is not a finite number", key);
  *out = v->valuedouble;
  return 0;
}

int meta_string(const cJSON *root, const char *key, const char **out,
                case_error *e) {
  *out = NULL;
  const cJSON *v = field(root, key, e);
  if (!v)
    return -1;
  if (!cJSON_IsString(v) || !v->valuestring)
    return case_fail(e, "meta.json \"%s\" is not a string", key);
  *out = v->valuestring;
  return 0;
}

int meta_dtype(const cJSON *root, dcnv4_dtype *out, case_error *e) {
  const char *name = NULL;
  if (meta_string(root, "dtype", &name, e) != 0)
    return -1;
  if (parse_dtype(name, out) != 0)
    return case_fail(e, "unknown dtype \"%s\" (float32, float16 or bfloat16)",
                     name);
  return 0;
}

static int read_checked(const char *case_dir, const char *name, int ndim,
                        const int64_t *shape, npy_array *a, case_error *e) {
  char path[4096], err[512];
  snprintf(path, sizeof path, "%s/%s.npy", case_dir, name);
  if (npy_read(path, a, err, sizeof err) != 0)
    return case_fail(e, "%s", err);
  if (!npy_shape_equals(a, ndim, shape)) {
    char got[128], want[128];
    npy_shape_string(a->ndim, a->shape, got, sizeof got);
    npy_shape_string(ndim, shape, want, sizeof want);
    npy_free(a);
    return case_fail(e, "%s.npy has shape %s but meta.json implies %s", name,
                     got, want);
  }
  return 0;
}

int case_load_tensor(const char *case_dir, const char *name, int ndim,
                     const int64_t *shape, dcnv4_dtype dtype, float **values,
                     void **packed, case_error *e) {
  npy_array a;
  *values = NULL;
  if (packed)
    *packed = NULL;
  if (read_checked(case_dir, name, ndim, shape, &a, e) != 0)
    return -1;
  if (a.dtype != NPY_FLOAT16 && a.dtype != NPY_FLOAT32 &&
      a.dtype != NPY_FLOAT64) {
    npy_free(&a);
    return case_fail(e, "%s.npy holds %s; a float array is expected", name,
                     npy_dtype_descr(a.dtype));
  }
  float *v = malloc(a.count ? a.count * sizeof *v : 1);
  void *p =
      packed ? malloc(a.count ? a.count * dcnv4_dtype_size(dtype) : 1) : NULL;
  if (!v || (packed && !p)) {
    free(v);
    free(p);
    npy_free(&a);
    return case_fail(e, "out of memory reading %s.npy", name);
  }
  for (uint64_t i = 0; i < a.count; i++)
    v[i] = round_to_dtype((float)npy_get(&a, i), dtype);
  if (p)
    pack_dtype(v, p, (size_t)a.count, dtype);
  npy_free(&a);
  *values = v;
  if (packed)
    *packed = p;
  return 0;
}

int case_load_mask(const char *case_dir, const char *name, int ndim,
                   const int64_t *shape, unsigned char **values,
                   case_error *e) {
  npy_array a;
  *values = NULL;
  if (read_checked(case_dir, name, ndim, shape, &a, e) != 0)
    return -1;
  if (a.dtype != NPY_UINT8 && a.dtype != NPY_BOOL) {
    npy_free(&a);
    return case_fail(e, "%s.npy holds %s; |u1 or |b1 is expected", name,
                     npy_dtype_descr(a.dtype));
  }
  unsigned char *v = malloc(a.count ? a.count : 1);
  if (!v) {
    npy_free(&a);
    return case_fail(e, "out of memory reading %s.npy", name);
  }
  for (uint64_t i = 0; i < a.count; i++)
    v[i] = ((const unsigned char *)a.data)[i] != 0;
  npy_free(&a);
  *values = v;
  return 0;
}

int case_load_expected(const char *case_dir, const char *name, int ndim,
                       const int64_t *shape, double **values, case_error *e) {
  npy_array a;
  *values = NULL;
  if (read_checked(case_dir, name, ndim, shape, &a, e) != 0)
    return -1;
  double *v = malloc(a.count ? a.count * sizeof *v : 1);
  if (!v) {
    npy_free(&a);
    return case_fail(e, "out of memory reading %s.npy", name);
  }
  for (uint64_t i = 0; i < a.count; i++)
    v[i] = npy_get(&a, i);
  npy_free(&a);
  *values = v;
  return 0;
}

int dcnv4_case_read(const cJSON *root, dcnv4_case *c, case_error *e) {
  dcnv4_params *p = &c->params;
  dcnv4_params_init(p);
  const int32_t big = INT32_MAX;
  double offset_scale = 1.0;
  int32_t h_out, w_out, om_channels;
  if (meta_int32(root, "N", 1, big, &p->batch, e) ||
      meta_int32(root, "H_in", 1, big, &p->height_in, e) ||
      meta_int32(root, "W_in", 1, big, &p->width_in, e) ||
      meta_int32(root, "group", 1, big, &p->group, e) ||
      meta_int32(root, "group_channels", 1, big, &p->group_channels, e) ||
      meta_int32(root, "kernel_h", 1, big, &p->kernel_h, e) ||
      meta_int32(root, "kernel_w", 1, big, &p->kernel_w, e) ||
      meta_int32(root, "stride_h", 1, big, &p->stride_h, e) ||
      meta_int32(root, "stride_w", 1, big, &p->stride_w, e) ||
      meta_int32(root, "pad_h", 0, big, &p->pad_h, e) ||
      meta_int32(root, "pad_w", 0, big, &p->pad_w, e) ||
      meta_int32(root, "dilation_h", 1, big, &p->dilation_h, e) ||
      meta_int32(root, "dilation_w", 1, big, &p->dilation_w, e) ||
      meta_number(root, "offset_scale", &offset_scale, e) ||
      meta_int32(root, "remove_center", 0, 1, &p->remove_center, e) ||
      meta_int32(root, "softmax", 0, 1, &p->softmax, e) ||
      meta_int32(root, "H_out", 1, big, &h_out, e) ||
      meta_int32(root, "W_out", 1, big, &w_out, e) ||
      meta_int32(root, "offset_mask_channels", 1, big, &om_channels, e) ||
      meta_dtype(root, &p->dtype, e))
    return -1;
  if (fabs(offset_scale) > 3.4e38)
    return case_fail(e, "offset_scale %g does not fit a float", offset_scale);
  p->offset_scale = (float)offset_scale;
  p->offset_mask_stride = om_channels;
  char why[256];
  if (dcnv4_check_params(p, why, sizeof why) != DCNV4_SUCCESS ||
      dcnv4_get_shape(p, &c->shape) != DCNV4_SUCCESS)
    return case_fail(e, "invalid dcnv4 parameters: %s", why);
  if (c->shape.height_out != h_out || c->shape.width_out != w_out)
    return case_fail(e,
                     "meta.json says the output is %dx%d but the "
                     "parameters give %dx%d",
                     (int)h_out, (int)w_out, (int)c->shape.height_out,
                     (int)c->shape.width_out);
  const int64_t n = p->batch, ch = c->shape.channels;
  int64_t in[4] = {n, p->height_in, p->width_in, ch};
  int64_t out[4] = {n, h_out, w_out, ch};
  int64_t om[4] = {n, h_out, w_out, om_channels};
  memcpy(c->input_shape, in, sizeof in);
  memcpy(c->output_shape, out, sizeof out);
  memcpy(c->offset_mask_shape, om, sizeof om);
  return 0;
}

/* An array of `count` integers in [min, max] under `key` (an element may be
 * nested one level deeper when `pairs`: then `count` [a, b] arrays). */
int meta_int_array(const cJSON *root, const char *key, int count, int pairs,
                   int64_t min, int64_t max, int32_t *out, case_error *e) {
  const cJSON *v = field(root, key, e);
  if (!v)
    return -1;
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != count)
    return case_fail(e, "meta.json \"%s\" must be an array of %d %s", key,
                     count, pairs ? "[H, W] pairs" : "integers");
  for (int i = 0; i < count; i++) {
    const cJSON *item = cJSON_GetArrayItem(v, i);
    int n = pairs ? 2 : 1;
    if (pairs && (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2))
      return case_fail(e, "meta.json \"%s\"[%d] is not an [H, W] pair", key, i);
    for (int j = 0; j < n; j++) {
      const cJSON *x = pairs ? cJSON_GetArrayItem(item, j) : item;
      double d = cJSON_IsNumber(x) ? x->valuedouble : NAN;
      if (!isfinite(d))
        return case_fail(e, "meta.json \"%s\"[%d]%s is not a number", key, i,
                         pairs ? (j ? "[1]" : "[0]") : "");
      if (d != floor(d) || d < (double)min || d > (double)max)
        return case_fail(e,
                         "meta.json \"%s\"[%d]%s is %g; expected an integer "
                         "in [%lld, %lld]",
                         key, i, pairs ? (j ? "[1]" : "[0]") : "", d,
                         (long long)min, (long long)max);
      out[i * n + j] = (int32_t)d;
    }
  }
  return 0;
}

int fda_case_read(const cJSON *root, fda_case *c, case_error *e) {
  dcnv4_fda_params *p = &c->params;
  dcnv4_fda_params_init(p);
  memset(&c->shape, 0, sizeof c->shape);
  const int32_t big = INT32_MAX;
  if (meta_int32(root, "B", 1, big, &p->batch, e) ||
      meta_int32(root, "Q", 1, big, &p->queries, e) ||
      meta_int32(root, "group", 1, big, &p->group, e) ||
      meta_int32(root, "group_channels", 1, big, &p->group_channels, e) ||
      meta_int32(root, "levels", 1, DCNV4_FDA_MAX_LEVELS, &p->levels, e) ||
      meta_int32(root, "points", 1, big, &p->points, e) ||
      meta_int32(root, "value_len", 1, big, &p->value_len, e) ||
      meta_dtype(root, &p->dtype, e))
    return -1;
  int32_t shapes[DCNV4_FDA_MAX_LEVELS * 2] = {0};
  if (meta_int_array(root, "spatial_shapes", p->levels, 1, 1, big, shapes, e) ||
      meta_int_array(root, "level_start_index", p->levels, 0, 0, big,
                     p->level_start, e))
    return -1;
  for (int l = 0; l < p->levels; l++) {
    p->spatial_shapes[l][0] = shapes[2 * l];
    p->spatial_shapes[l][1] = shapes[2 * l + 1];
  }
  char why[256];
  if (dcnv4_fda_check_params(p, why, sizeof why) != DCNV4_SUCCESS ||
      dcnv4_fda_get_shape(p, &c->shape) != DCNV4_SUCCESS)
    return case_fail(e, "invalid flash_deform_attn parameters: %s", why);
  const int64_t b = p->batch, q = p->queries, g = p->group,
                d = p->group_channels;
  int64_t value[4] = {b, p->value_len, g, d};
  int64_t samp[4] = {b, q, g, c->shape.sampling_stride};
  int64_t out[3] = {b, q, g * d};
  memcpy(c->value_shape, value, sizeof value);
  memcpy(c->sampling_shape, samp, sizeof samp);
  memcpy(c->output_shape, out, sizeof out);
  return 0;
}
