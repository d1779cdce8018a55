/* Launch parameters per device class: the seam where per-device tables and
 * user tuning files plug in. */
#ifndef DCNV4_TUNING_H
#define DCNV4_TUNING_H

#include "internal.h"

typedef enum dcn_kernel_id {
  DCN_KERNEL_DCNV4_FORWARD = 0,
  DCN_KERNEL_DCNV4_BACKWARD,
  DCN_KERNEL_LAYER_ELEMENTWISE, /* cl/layer_ops.cl: conversions, bias, gate */
  DCN_KERNEL_LAYER_DWCONV,      /* cl/layer_ops.cl: depthwise convolution */
  DCN_KERNEL_COUNT
} dcn_kernel_id;

typedef struct dcn_launch_config {
  int max_vec;       /* widest vector of channels per work-item (1..8) */
  size_t local_size; /* work-items per work-group */
} dcn_launch_config;

/* Launch parameters for `kernel` on the context's device and `dtype`. */
dcn_launch_config dcn_tuning_lookup(const dcnv4_context *ctx,
                                    dcn_kernel_id kernel, dcnv4_dtype dtype);

/* The widest of 8, 4, 2, 1 that divides `channels` and is <= max_vec. */
int dcn_vector_width(int channels, int max_vec);

#endif /* DCNV4_TUNING_H */
