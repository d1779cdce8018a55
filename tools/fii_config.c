/* FlashInternImage configurations as JSON; see fii_config.h. */
#include "fii_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key that may be null: *present 0 then. */
static int nullable(const cJSON *cfg, const char *key, int *present,
                    case_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
  if (!v)
    return case_fail(e, "config lacks \"%s\"", key);
  *present = !cJSON_IsNull(v);
  return 0;
}

int fii_config_from_json(const cJSON *cfg, dcnv4_fii_config *c, case_error *e) {
  const int32_t big = INT32_MAX;
  double mlp_ratio, offset_scale, cls_scale;
  int has_ls = 0, has_dw = 0, has_ids = 0;
  const char *act = NULL, *norm = NULL;
  if (!cJSON_IsObject(cfg))
    return case_fail(e, "the config is not a JSON object");
  memset(c, 0, sizeof *c);
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

int fii_config_read_file(const char *path, dcnv4_fii_config *c,
                         int32_t *img_size, case_error *e) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return case_fail(e, "cannot read %s: %s", path, strerror(errno));
  /* A config is a few hundred bytes; 1 MiB bounds a wrong file. */
  enum { LIMIT = 1 << 20 };
  char *text = malloc(LIMIT);
  size_t n = text ? fread(text, 1, LIMIT, f) : 0;
  int bad = !text || ferror(f) || n == LIMIT;
  fclose(f);
  if (bad) {
    free(text);
    return case_fail(e, "cannot read %s: %s", path,
                     n == LIMIT ? "larger than 1 MiB" : "read error");
  }
  cJSON *root = NULL;
  case_error pe;
  int st = meta_parse(text, n, &root, &pe);
  free(text);
  if (st != 0)
    return case_fail(e, "%s: %s", path, pe.text);
  *img_size = 0;
  if (fii_config_from_json(root, c, &pe) != 0 ||
      (cJSON_GetObjectItemCaseSensitive(root, "img_size") &&
       meta_int32(root, "img_size", 1, 1 << 16, img_size, &pe) != 0)) {
    cJSON_Delete(root);
    return case_fail(e, "%s: %s", path, pe.text);
  }
  cJSON_Delete(root);
  return 0;
}
