/* meta.json and weights/ of layer case folders. */
#include "layer_case.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dw_kernel_size: null (None) or an odd integer. */
static int read_dw(const cJSON *root, int32_t *out, case_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "dw_kernel_size");
  if (!v)
    return case_fail(e, "meta.json lacks \"dw_kernel_size\"");
  if (cJSON_IsNull(v)) {
    *out = 0;
    return 0;
  }
  return meta_int32(root, "dw_kernel_size", 1, 63, out, e);
}

int dcnv4_layer_case_read(const cJSON *root, dcnv4_layer_case *c,
                          case_error *e) {
  memset(c, 0, sizeof *c);
  dcnv4_layer_dcnv4_config *k = &c->config;
  dcnv4_layer_dcnv4_config_init(k);
  const int32_t big = INT32_MAX;
  double offset_scale;
  int32_t om_channels;
  if (meta_int32(root, "N", 1, big, &c->batch, e) ||
      meta_int32(root, "H", 1, big, &c->height, e) ||
      meta_int32(root, "W", 1, big, &c->width, e) ||
      meta_int32(root, "channels", 1, big, &k->channels, e) ||
      meta_int32(root, "group", 1, big, &k->group, e) ||
      meta_int32(root, "kernel_size", 1, big, &k->kernel_size, e) ||
      meta_int32(root, "stride", 1, big, &k->stride, e) ||
      meta_int32(root, "pad", 0, big, &k->pad, e) ||
      meta_int32(root, "dilation", 1, big, &k->dilation, e) ||
      meta_number(root, "offset_scale", &offset_scale, e) ||
      read_dw(root, &k->dw_kernel_size, e) ||
      meta_int32(root, "center_feature_scale", 0, 1, &k->center_feature_scale,
                 e) ||
      meta_int32(root, "remove_center", 0, 1, &k->remove_center, e) ||
      meta_int32(root, "output_bias", 0, 1, &k->output_bias, e) ||
      meta_int32(root, "without_pointwise", 0, 1, &k->without_pointwise, e) ||
      meta_int32(root, "offset_mask_channels", 1, big, &om_channels, e) ||
      meta_dtype(root, &c->dtype, e))
    return -1;
  if (offset_scale > 3.4e38 || offset_scale < -3.4e38)
    return case_fail(e, "offset_scale %g does not fit a float", offset_scale);
  k->offset_scale = (float)offset_scale;
  if (k->channels % k->group != 0)
    return case_fail(e, "channels %d is not a multiple of group %d",
                     (int)k->channels, (int)k->group);
  int64_t points = (int64_t)k->kernel_size * k->kernel_size - k->remove_center;
  int64_t want = ((int64_t)k->group * points * 3 + 7) / 8 * 8;
  if (om_channels != want)
    return case_fail(e,
                     "offset_mask_channels is %d but the configuration gives "
                     "ceil(group*K*3/8)*8 = %lld",
                     (int)om_channels, (long long)want);
  c->io_shape[0] = c->batch;
  c->io_shape[1] = (int64_t)c->height * c->width;
  c->io_shape[2] = k->channels;
  c->io_elements = (uint64_t)c->io_shape[0] * (uint64_t)c->io_shape[1] *
                   (uint64_t)c->io_shape[2];
  return 0;
}

int fda_layer_case_read(const cJSON *root, fda_layer_case *c, case_error *e) {
  memset(c, 0, sizeof *c);
  dcnv4_layer_fda_config *k = &c->config;
  dcnv4_layer_fda_shape *s = &c->shape;
  dcnv4_layer_fda_config_init(k);
  dcnv4_layer_fda_shape_init(s);
  const int32_t big = INT32_MAX;
  if (meta_int32(root, "N", 1, big, &s->batch, e) ||
      meta_int32(root, "Lq", 1, big, &s->queries, e) ||
      meta_int32(root, "d_model", 1, big, &k->d_model, e) ||
      meta_int32(root, "n_levels", 1, DCNV4_FDA_MAX_LEVELS, &k->n_levels, e) ||
      meta_int32(root, "n_heads", 1, big, &k->n_heads, e) ||
      meta_int32(root, "n_points", 1, DCNV4_FDA_MAX_SAMPLES, &k->n_points, e) ||
      meta_int32(root, "input_len", 1, big, &s->input_len, e) ||
      meta_int32(root, "reference_dim", 2, 4, &s->reference_dim, e) ||
      meta_int32(root, "padding_mask", 0, 1, &c->padding_mask, e) ||
      meta_dtype(root, &c->dtype, e))
    return -1;
  if (s->reference_dim == 3)
    return case_fail(e, "meta.json \"reference_dim\" is 3; expected 2 or 4");
  if (k->d_model % k->n_heads != 0)
    return case_fail(e, "d_model %d is not a multiple of n_heads %d",
                     (int)k->d_model, (int)k->n_heads);
  int32_t shapes[DCNV4_FDA_MAX_LEVELS * 2] = {0};
  if (meta_int_array(root, "spatial_shapes", k->n_levels, 1, 1, big, shapes,
                     e) ||
      meta_int_array(root, "level_start_index", k->n_levels, 0, 0, big,
                     s->level_start, e))
    return -1;
  /* The core operator's rules for the levels and sizes. */
  dcnv4_fda_params p;
  dcnv4_fda_params_init(&p);
  p.batch = s->batch;
  p.queries = s->queries;
  p.group = k->n_heads;
  p.group_channels = k->d_model / k->n_heads;
  p.levels = k->n_levels;
  p.points = k->n_points;
  p.value_len = s->input_len;
  for (int l = 0; l < k->n_levels; l++) {
    s->spatial_shapes[l][0] = p.spatial_shapes[l][0] = shapes[2 * l];
    s->spatial_shapes[l][1] = p.spatial_shapes[l][1] = shapes[2 * l + 1];
    p.level_start[l] = s->level_start[l];
  }
  char why[256];
  if (dcnv4_fda_check_params(&p, why, sizeof why) != DCNV4_SUCCESS)
    return case_fail(e, "invalid flash_deform_attn_layer parameters: %s", why);
  const int64_t N = s->batch, Lq = s->queries, C = k->d_model;
  const int64_t q[3] = {N, Lq, C}, in[3] = {N, s->input_len, C},
                ref[4] = {N, Lq, k->n_levels, s->reference_dim},
                m[2] = {N, s->input_len};
  memcpy(c->query_shape, q, sizeof q);
  memcpy(c->input_shape, in, sizeof in);
  memcpy(c->reference_shape, ref, sizeof ref);
  memcpy(c->mask_shape, m, sizeof m);
  /* Sizes fit: dcnv4_fda_check_params bounded the products. */
  c->query_elements = (uint64_t)N * (uint64_t)Lq * (uint64_t)C;
  c->input_elements = (uint64_t)N * (uint64_t)s->input_len * (uint64_t)C;
  c->reference_elements = (uint64_t)N * (uint64_t)Lq * (uint64_t)k->n_levels *
                          (uint64_t)s->reference_dim;
  c->mask_elements = (uint64_t)N * (uint64_t)s->input_len;
  return 0;
}

/* Every file of weights/ must be <key>.npy for a key of the layer. */
static int check_no_stray_files(const char *dir, dcnv4_layer *layer,
                                case_error *e) {
  DIR *d = opendir(dir);
  if (!d)
    return case_fail(e, "cannot open %s", dir);
  struct dirent *ent;
  int rc = 0;
  while (rc == 0 && (ent = readdir(d))) {
    const char *name = ent->d_name;
    if (name[0] == '.')
      continue;
    size_t n = strlen(name);
    bool known = false;
    for (size_t i = 0; i < dcnv4_layer_weight_count(layer) && !known; i++) {
      dcnv4_weight_info w;
      dcnv4_layer_weight_info(layer, i, &w);
      size_t k = strlen(w.key);
      known = n == k + 4 && strncmp(name, w.key, k) == 0 &&
              strcmp(name + k, ".npy") == 0;
    }
    if (!known)
      rc = case_fail(e,
                     "%s/%s is not a weight of this layer configuration "
                     "(expected <key>.npy for the layer's keys)",
                     dir, name);
  }
  closedir(d);
  return rc;
}

int case_load_layer_weights(const char *case_dir, dcnv4_layer *layer,
                            case_error *e) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/weights", case_dir);
  if (check_no_stray_files(dir, layer, e) != 0)
    return -1;
  for (size_t i = 0; i < dcnv4_layer_weight_count(layer); i++) {
    dcnv4_weight_info w;
    dcnv4_layer_weight_info(layer, i, &w);
    char path[4200], err[512];
    snprintf(path, sizeof path, "%.4000s/%.150s.npy", dir, w.key);
    npy_array a;
    if (npy_read(path, &a, err, sizeof err) != 0)
      return case_fail(e, "%s", err);
    if (a.dtype != NPY_FLOAT16 && a.dtype != NPY_FLOAT32 &&
        a.dtype != NPY_FLOAT64) {
      npy_free(&a);
      return case_fail(e, "%s holds %s; a float array is expected", path,
                       npy_dtype_descr(a.dtype));
    }
    if (!npy_shape_equals(&a, w.ndim, w.shape)) {
      char got[128], want[128];
      npy_shape_string(a.ndim, a.shape, got, sizeof got);
      npy_shape_string(w.ndim, w.shape, want, sizeof want);
      npy_free(&a);
      return case_fail(e, "%s has shape %s; the layer expects %s", path, got,
                       want);
    }
    float *v = malloc(a.count * sizeof *v + 1);
    if (!v) {
      npy_free(&a);
      return case_fail(e, "out of memory reading %s", path);
    }
    for (uint64_t j = 0; j < a.count; j++)
      v[j] = (float)npy_get(&a, j);
    npy_free(&a);
    dcnv4_status st = dcnv4_layer_set_weight(layer, w.key, v, w.shape, w.ndim);
    free(v);
    if (st != DCNV4_SUCCESS)
      return case_fail(e, "setting %s failed: %s", w.key,
                       dcnv4_status_string(st));
  }
  return 0;
}
