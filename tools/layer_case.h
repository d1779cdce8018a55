/* Layer case folders (shared/golden layout): the meta.json of a
 * `dcnv4_layer` case and its weights/ folder, one .npy per state-dict key.
 * Functions return 0, or -1 with a one-line message in err. */
#ifndef DCNV4_LAYER_CASE_H
#define DCNV4_LAYER_CASE_H

#include "case_meta.h"

typedef struct dcnv4_layer_case {
  dcnv4_layer_dcnv4_config config;
  dcnv4_dtype dtype;
  int32_t batch, height, width;
  int64_t io_shape[3]; /* (N, H*W, C): input and output */
  uint64_t io_elements;
} dcnv4_layer_case;

/* Reads and checks the meta of a `dcnv4_layer` case (no device needed). */
int dcnv4_layer_case_read(const cJSON *root, dcnv4_layer_case *c,
                          case_error *e);

/* A `flash_deform_attn_layer` case. */
typedef struct fda_layer_case {
  dcnv4_layer_fda_config config;
  dcnv4_layer_fda_shape shape;
  dcnv4_dtype dtype;
  int32_t padding_mask;       /* 1: padding_mask.npy (N, input_len) is given */
  int64_t query_shape[3];     /* (N, Lq, d_model): query and output */
  int64_t reference_shape[4]; /* (N, Lq, n_levels, reference_dim) */
  int64_t input_shape[3];     /* (N, input_len, d_model) */
  int64_t mask_shape[2];      /* (N, input_len) */
  uint64_t query_elements, reference_elements, input_elements, mask_elements;
} fda_layer_case;

/* Reads and checks the meta of a `flash_deform_attn_layer` case (no device
 * needed): the configuration and the level tables follow the library's
 * rules (dcnv4_fda_check_params). */
int fda_layer_case_read(const cJSON *root, fda_layer_case *c, case_error *e);

/* Sets every weight of `layer` from CASE_DIR/weights/<key>.npy (any float
 * .npy). A missing file, a shape other than the layer's, or a .npy in
 * weights/ that is no weight of the layer is an error. */
int case_load_layer_weights(const char *case_dir, dcnv4_layer *layer,
                            case_error *e);

#endif
