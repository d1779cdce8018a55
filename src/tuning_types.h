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
  /* the layers' GEMMs (src/gemm.c): CLBlast or cl/linear.cl (backend), the
   * latter's tiles (tilem, tilen, tilek), columns per work-item (vec) and
   * work-group size (local) */
  DCN_KERNEL_LINEAR,
  DCN_KERNEL_COUNT
} dcn_kernel_id;

/* Where a launch configuration came from (the highest layer that set one of
 * its parameters); the values match dcnv4_tuning_source. */
typedef enum dcn_tuning_layer {
  DCN_TUNING_BUILTIN = 0, /* the per-vendor table of tuning.c */
  DCN_TUNING_FILE = 1,    /* the tuning file read at context creation */
  DCN_TUNING_OVERRIDE = 2 /* DCNV4_TUNING or dcnv4_context_set_tuning */
} dcn_tuning_layer;

typedef struct dcn_launch_config {
  int max_vec;       /* widest vector of channels per work-item (1..8) */
  size_t local_size; /* work-items per work-group */
  int stage;  /* DCNv4 forward: 0 each work-item loads its own offsets and
                 weights, 3 each point located once per work-group, its
                 footprint kept in local memory (1, 2 and 4 were removed
                 and are rejected). FlashDeformAttn forward: 0 each work-item
                 locates its head's points, 1 the work-items of a head
                 share that through local memory (24 or 32 bytes a
                 point), 2 the same packed in 16 bytes (G*D % 16 == 0 and
                 32-bit indices, else 1) */
  int split;  /* backward: 1 channel chunks per work-item with a local-memory
                 reduction, 0 one work-item per (pixel, group) */
  int unroll; /* 1: unroll the kernel-point loops (GPUs); 0: keep them rolled
                 (CPUs, where unrolled bodies compile slowly and gain little) */
  int specialize; /* 1: shape constants compiled in (one program per shape);
                     0: read at run time (one program per dtype and width) */
  int rows;       /* forward: output rows per work-group, so that vertically
                     neighbouring pixels share L1 (0 or 1: one row); tiled
                     backward: the tile's output rows */
  int backend;    /* linear: 0 CLBlast, 1 cl/linear.cl */
  int tile_m;     /* linear: output rows per work-group */
  int tile_n;     /* linear: output columns per work-group */
  int tile_k;     /* linear: K chunk staged in local memory at a time */
  int halo;       /* backward: 0 global atomics per point; h > 0 accumulate the
                     input gradient of a work-group's pixels in local memory over
                     their sampling grid widened by h pixels (DCNv4, specialize 1) */
  int max_regs;   /* registers per work-item the compiler may use (NVIDIA's
                     -cl-nv-maxrregcount, where the device has
                     cl_nv_compiler_options); 0: the compiler's choice */
  int groups;     /* DCNv4 forward: at most this many groups per work-group,
                     which then spans more pixels (0: all groups that fit);
                     FlashDeformAttn forward: heads per block of queries in
                     the work-item order, where it divides the heads (0:
                     all heads of a query together) */
  int pieces;     /* DCNv4 forward, stage 0: vectors of `vec` channels per
                     work-item, group_channels / pieces apart (0 or 1: one) */
  /* Not a parameter: set by dcn_tuning_lookup. */
  dcn_tuning_layer source;
} dcn_launch_config;

/* Adding a parameter: an id here, a row in the `params` table of tuning.c
 * (name, range, field of dcn_launch_config), a field above, and its use in
 * the operator. Files, DCNV4_TUNING and dcnv4-tune pick it up by name. */
typedef enum dcn_tuning_param {
  DCN_PARAM_VEC = 0,
  DCN_PARAM_LOCAL,
  DCN_PARAM_STAGE,
  DCN_PARAM_SPLIT,
  DCN_PARAM_UNROLL,
  DCN_PARAM_SPECIALIZE,
  DCN_PARAM_ROWS,
  DCN_PARAM_BACKEND,
  DCN_PARAM_TILE_M,
  DCN_PARAM_TILE_N,
  DCN_PARAM_TILE_K,
  DCN_PARAM_HALO,
  DCN_PARAM_MAX_REGS,
  DCN_PARAM_GROUPS,
  DCN_PARAM_PIECES,
  DCN_TUNING_PARAMS
} dcn_tuning_param;

/* Per-context overrides of the defaults, from DCNV4_TUNING at context
 * creation or dcnv4_context_set_tuning: "kernel.param=value[;...]", param
 * one of the names of the params table. */
typedef struct dcn_tuning_override {
  long value[DCN_KERNEL_COUNT][DCN_TUNING_PARAMS];
  bool set[DCN_KERNEL_COUNT][DCN_TUNING_PARAMS]; /* which were given */
} dcn_tuning_override;

/* One kernel entry of a tuning file: parameters for a kernel, a dtype (-1:
 * any) and a shape class (group_channels, 0: any). */
typedef struct dcn_tuning_entry {
  dcn_kernel_id kernel;
  int dtype;
  int group_channels;
  long value[DCN_TUNING_PARAMS];
  bool set[DCN_TUNING_PARAMS];
} dcn_tuning_entry;

/* One CLBlast parameter set of a tuning file (CLBlastOverrideParameters). */
#define DCN_GEMM_MAX_PARAMS 24
typedef struct dcn_gemm_entry {
  char kernel[32]; /* "Xgemm", "XgemmDirect", ... */
  size_t count;
  char names[DCN_GEMM_MAX_PARAMS][16];
  size_t values[DCN_GEMM_MAX_PARAMS];
} dcn_gemm_entry;

#endif /* DCNV4_TUNING_TYPES_H */
