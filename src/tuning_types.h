/* Types of the tuning seam, shared by the context and tuning.c. */
#ifndef DCNV4_TUNING_TYPES_H
#define DCNV4_TUNING_TYPES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum dcn_kernel_id {
  DCN_KERNEL_DCNV4_FORWARD = 0,
  DCN_KERNEL_DCNV4_BACKWARD,
  DCN_KERNEL_FDA_FORWARD,
  DCN_KERNEL_FDA_BACKWARD,
  DCN_KERNEL_LAYER_ELEMENTWISE, /* cl/layer_ops.cl: conversions, bias, gate */
  DCN_KERNEL_LAYER_DWCONV,      /* cl/layer_ops.cl: depthwise convolution */
  DCN_KERNEL_COUNT
} dcn_kernel_id;

typedef struct dcn_launch_config {
  int max_vec;       /* widest vector of channels per work-item (1..8) */
  size_t local_size; /* work-items per work-group */
} dcn_launch_config;

/* Per-context overrides of the defaults, from DCNV4_TUNING at context
 * creation: "kernel.param=value[;...]", param one of vec, local. */
typedef struct dcn_tuning_override {
  dcn_launch_config config[DCN_KERNEL_COUNT];
  bool set[DCN_KERNEL_COUNT][2]; /* [vec, local] present */
} dcn_tuning_override;

#endif /* DCNV4_TUNING_TYPES_H */
