/* Layer case folders (shared/golden layout): the meta.json of a
 * `dcnv4_layer` case and its weights/ folder, one .npy per state-dict key.
 * Functions return 0, or -1 with a one-line message in err. */
#ifndef DCNV4_LAYER_CASE_H
#define DCNV4_LAYER_CASE_H

#include "case_meta.h"

typedef struct dcnv4_layer_case {
  dcnv4_dcnv4_layer_config config;
  dcnv4_dtype dtype;
  int32_t batch, height, width;
  int64_t io_shape[3]; /* (N, H*W, C): input and output */
  uint64_t io_elements;
} dcnv4_layer_case;

/* Reads and checks the meta of a `dcnv4_layer` case (no device needed). */
int dcnv4_layer_case_read(const cJSON *root, dcnv4_layer_case *c,
                          case_error *e);

/* Sets every weight of `layer` from CASE_DIR/weights/<key>.npy (any float
 * .npy). A missing file, a shape other than the layer's, or a .npy in
 * weights/ that is no weight of the layer is an error. */
int case_load_layer_weights(const char *case_dir, dcnv4_layer *layer,
                            case_error *e);

#endif
