/* meta.json of flash_intern_image case folders. */
#include "fii_case.h"

#include "fii_config.h"

#include <string.h>

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
  if (fii_config_from_json(cfg, k, e) != 0)
    return -1;
  const int64_t s[4] = {c->batch, 3, c->height, c->width};
  memcpy(c->image_shape, s, sizeof s);
  return 0;
}
