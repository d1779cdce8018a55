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
  /* deterministic backward (params->deterministic): local (work-group size)
   * of every kernel, unroll and specialize; its vector width depends on
   * group_channels only */
  DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC,
  DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC,
  DCN_KERNEL_COUNT
} dcn_kernel_id;

typedef struct dcn_launch_config {
  int max_vec;       /* widest vector of channels per work-item (1..8) */
  size_t local_size; /* work-items per work-group */
  int stage;         /* stage offsets/weights in local memory (0/1) */
  int split;  /* backward: 1 channel chunks per work-item with a local-memory
                 reduction, 0 one work-item per (pixel, group) */
  int unroll; /* 1: unroll the kernel-point loops (GPUs); 0: keep them rolled
                 (CPUs, where unrolled bodies compile slowly and gain little) */
  int specialize; /* 1: shape constants compiled in (one program per shape);
                     0: read at run time (one program per dtype and width) */
} dcn_launch_config;

typedef enum dcn_tuning_param {
  DCN_PARAM_VEC = 0,
  DCN_PARAM_LOCAL,
  DCN_PARAM_STAGE,
  DCN_PARAM_SPLIT,
  DCN_PARAM_UNROLL,
  DCN_PARAM_SPECIALIZE,
  DCN_TUNING_PARAMS
} dcn_tuning_param;

/* Per-context overrides of the defaults, from DCNV4_TUNING at context
 * creation: "kernel.param=value[;...]", param one of vec, local, stage,
 * split, unroll, specialize. */
typedef struct dcn_tuning_override {
  long value[DCN_KERNEL_COUNT][DCN_TUNING_PARAMS];
  bool set[DCN_KERNEL_COUNT][DCN_TUNING_PARAMS]; /* which were given */
} dcn_tuning_override;

#endif /* DCNV4_TUNING_TYPES_H */
