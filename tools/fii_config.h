/* FlashInternImage configurations as JSON: the "config" object of the
 * golden cases' meta.json, the file tools/convert_checkpoint.py writes
 * beside the weights. Readers return 0, or -1 with a one-line message. */
#ifndef DCNV4_FII_CONFIG_H
#define DCNV4_FII_CONFIG_H

#include "case_meta.h"

/* Every constructor option (flags as JSON booleans; layer_scale,
 * dw_kernel_size and level2_post_norm_block_ids may be null), act_layer
 * "GELU" and norm_layer "LN" only. Unknown fields are ignored. */
int fii_config_from_json(const cJSON *cfg, dcnv4_fii_config *c, case_error *e);

/* A config file: the object above, plus "img_size" (the resolution the
 * variant was trained at; *img_size 0 when absent). */
int fii_config_read_file(const char *path, dcnv4_fii_config *c,
                         int32_t *img_size, case_error *e);

#endif
