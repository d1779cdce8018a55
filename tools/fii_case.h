/* FlashInternImage case folders (shared/golden layout, op
 * "flash_intern_image"): the meta.json's sizes, dtype and model config.
 * Returns 0, or -1 with a one-line message in err. */
#ifndef DCNV4_FII_CASE_H
#define DCNV4_FII_CASE_H

#include "case_meta.h"

typedef struct fii_case {
  dcnv4_fii_config config;
  dcnv4_dtype dtype;
  int32_t batch, height, width;
  int64_t image_shape[4]; /* (N, 3, H, W) */
} fii_case;

/* Reads and checks the meta (no device needed): every constructor option
 * of the format, act_layer "GELU" and norm_layer "LN" only. */
int fii_case_read(const cJSON *root, fii_case *c, case_error *e);

#endif
