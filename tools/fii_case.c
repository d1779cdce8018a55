/* meta.json of flash_intern_image case folders. */
#include "fii_case.h"

#include <string.h>

/* A key that may be null: *present 0 then. */
static int nullable(const cJSON *root, const char *key, int *present,
                    case_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v)
    return case_fail(e, "meta.json config lacks \"%s\"", key);
  *present = !cJSON_IsNull(v);
  return 0;
}

static int read_config(const cJSON *cfg, dcnv4_fii_config *c, case_error *e) {
  const int32_t big = INT32_MAX;
  double mlp_ratio, offset_scale, cls_scale;
  int has_ls = 0, has_dw = 0, has_ids = 0;
  const char *act = NULL, *norm = NULL;
  if (meta_int32(cfg, "channels", 1, big, &c->channels, e) ||
      meta_int_array(cfg, "depths", 4, 0, 1, big, c->depths, e) ||
      meta_int_array(cfg, "groups", 4, 0, 1, big, c->groups, e) ||
      meta_number(cfg, "mlp_ratio", &mlp_ratio, e) ||
      meta_number(cfg, "offset_scale", &offset_scale, e) ||
      nullable(cfg, "layer_scale", &has_ls, e) ||
      meta_int32(cfg, "post_norm", 0, 1, &c->post_norm, e) ||
      nullable(cfg, "dw_kernel_size", &has_dw, e) ||
      (has_dw &&
       meta_int32(cfg, "dw_kernel_size", 1, 63, &c->dw_kernel_size, e)) ||
      meta_int32(cfg, "res_post_norm", 0, 1, &c->res_post_norm, e) ||
      meta_int32(cfg, "center_feature_scale", 0, 1, &c->center_feature_scale,
                 e) ||
      meta_int32(cfg, "level2_post_norm", 0, 1, &c->level2_post_norm, e) ||
      nullable(cfg, "level2_post_norm_block_ids", &has_ids, e) ||
      meta_int32(cfg, "mlp_fc2_bias", 0, 1, &c->mlp_fc2_bias, e) ||
      meta_int32(cfg, "dcn_output_bias", 0, 1, &c->dcn_output_bias, e) ||
      meta_number(cfg, "cls_scale", &cls_scale, e) ||
      meta_int32(cfg, "num_classes", 0, big, &c->num_classes, e) ||
      meta_string(cfg, "act_layer", &act, e) ||
      meta_string(cfg, "norm_layer", &norm, e))
    return -1;
  if (strcmp(act, "GELU") != 0 || strcmp(norm, "LN") != 0)
    return case_fail(e,
                     "act_layer \"%s\" and norm_layer \"%s\": only GELU "
                     "and LN are supported",
                     act, norm);
  c->mlp_ratio = (float)mlp_ratio;
  c->offset_scale = (float)offset_scale;
  c->cls_scale = (float)cls_scale;
  c->layer_scale = has_ls;
  if (has_ids) {
    const cJSON *ids =
        cJSON_GetObjectItemCaseSensitive(cfg, "level2_post_norm_block_ids");
    int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : -1;
    if (n < 0 || n > DCNV4_FII_MAX_POST_NORM_BLOCKS)
      return case_fail(e,
                       "level2_post_norm_block_ids must be null or an "
                       "array of at most %d integers",
                       DCNV4_FII_MAX_POST_NORM_BLOCKS);
    if (n > 0 && meta_int_array(cfg, "level2_post_norm_block_ids", n, 0, 0, big,
                                c->level2_post_norm_block_ids, e))
      return -1;
    c->level2_post_norm_block_count = n;
  }
  return 0;
}

int fii_case_read(const cJSON *root, fii_case *c, case_error *e) {
  memset(c, 0, sizeof *c);
  dcnv4_fii_config_init(&c->config);
  const int32_t big = INT32_MAX;
  if (meta_int32(root, "N", 1, big, &c->batch, e) ||
      meta_int32(root, "H", 1, big, &c->height, e) ||
      meta_int32(root, "W", 1, big, &c->width, e) ||
      meta_dtype(root, &c->dtype, e))
    return -1;
  const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
  if (!cJSON_IsObject(cfg))
    return case_fail(e, "meta.json lacks the \"config\" object");
  dcnv4_fii_config *k = &c->config;
  memset(k, 0, sizeof *k);
  if (read_config(cfg, k, e) != 0)
    return -1;
  const int64_t s[4] = {c->batch, 3, c->height, c->width};
  memcpy(c->image_shape, s, sizeof s);
  return 0;
}
