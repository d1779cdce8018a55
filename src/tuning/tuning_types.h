/* Types of the tuning seam, shared by the context, the operators and
 * src/tuning/: the kernels, their typed launch parameters, and what the
 * tuning file and the override hold. */
#ifndef DCNV4_TUNING_TYPES_H
#define DCNV4_TUNING_TYPES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum dcn_kernel_id {
  DCN_KERNEL_DCNV4_FORWARD = 0,
  DCN_KERNEL_DCNV4_BACKWARD,
  DCN_KERNEL_FDA_FORWARD,
  DCN_KERNEL_FDA_BACKWARD,
  DCN_KERNEL_LAYER_ELEMENTWISE, /* layer_ops.cl: conversions, bias, gate */
  DCN_KERNEL_LAYER_DWCONV,      /* layer_ops.cl: depthwise convolution */
  /* deterministic backward (params->deterministic) */
  DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC,
  DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC,
  /* the layers' GEMMs (src/ops/linear/linear.c) */
  DCN_KERNEL_LINEAR,
  /* the layers' GEMMs on 16-bit storage (src/ops/linear/linear_mma.cl) */
  DCN_KERNEL_LINEAR_MMA,
  /* zeroing a buffer before a backward's scatter (src/ops/common/zero.cl) */
  DCN_KERNEL_ZERO,
  DCN_KERNEL_COUNT
} dcn_kernel_id;

/* Where a launch configuration came from (the highest layer that set one of
 * its parameters); the values match dcnv4_tuning_source. */
typedef enum dcn_tuning_layer {
  DCN_TUNING_BUILTIN = 0, /* the built-in table of tuning.c */
  DCN_TUNING_FILE = 1,    /* the tuning file read at context creation */
  DCN_TUNING_OVERRIDE = 2 /* DCNV4_TUNING or dcnv4_context_set_tuning */
} dcn_tuning_layer;

/* The parameter names of tuning strings and files. A name means one thing
 * per kernel; which kernels take which, with ranges and meanings, is the
 * `kernels` table of tuning.c (docs/tuning.md §3). */
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
  DCN_PARAM_SHORT_M,
  DCN_PARAM_KSPLIT,
  DCN_PARAM_FILL,
  DCN_PARAM_KMIN,
  DCN_PARAM_STAGES,
  DCN_PARAM_SMALL,
  DCN_PARAM_SMALL_LOCAL,
  DCN_PARAM_SMALL_VEC,
  DCN_PARAM_SMALL_PIECES,
  DCN_PARAM_SMALL_REGS,
  DCN_PARAM_SWIZZLE,
  DCN_PARAM_STAGED,
  DCN_PARAM_PREFETCH,
  DCN_PARAM_RASTER,
  DCN_PARAM_SMALL_TILE_M,
  DCN_PARAM_SMALL_TILE_N,
  DCN_PARAM_KERNEL,
  DCN_TUNING_PARAMS
} dcn_tuning_param;

/* Typed launch parameters, one struct per kernel (the field names are the
 * parameters' meanings for that kernel; tuning.c's `kernels` table maps the
 * tuning names onto them). Adding a parameter: a field here, a row in that
 * table, its use in the operator. `source` is not a parameter: set by the
 * lookup. */

/* Launches with few work-groups (the forward kernels; tuning.c,
 * dcn_small_apply): a launch that the tuned values would give fewer than
 * `below` work-groups per compute unit takes these values instead; 0 keeps
 * the tuned one. */
typedef struct dcn_small_tuning {
  int below;         /* small: work-groups per compute unit (0: never) */
  size_t local_size; /* smalllocal: work-items per work-group */
  int max_vec;       /* smallvec: widest vector of channels */
  int pieces;        /* smallpieces: vectors per work-item (DCNv4) */
  int max_regs;      /* smallregs: register cap (255: none in effect) */
} dcn_small_tuning;

/* DCNv4 forward (dcnv4_forward.cl). */
typedef struct dcn_dcnv4_forward_tuning {
  int max_vec;       /* vec: widest vector of channels per work-item */
  size_t local_size; /* local: work-items per work-group */
  int stage;         /* stage: how offsets/weights are read (0 per work-item,
                        3 each point located once per work-group) */
  int unroll;        /* unroll: 1 unrolls the kernel-point loops */
  int specialize;    /* specialize: 1 compiles shape constants in */
  int rows;          /* rows: output rows per work-group */
  int max_regs;      /* regs: register cap (NVIDIA), 0 the compiler's */
  int groups;        /* groups: at most this many groups per work-group */
  int pieces;        /* pieces: vectors per work-item (stage 0) */
  dcn_small_tuning small; /* small, smalllocal, smallvec, smallpieces,
                             smallregs */
  dcn_tuning_layer source;
} dcn_dcnv4_forward_tuning;

/* DCNv4 backward (dcnv4_backward.cl). */
typedef struct dcn_dcnv4_backward_tuning {
  int max_vec;       /* vec: widest vector of channels per work-item */
  size_t local_size; /* local: work-items per work-group */
  int split;         /* split: 1 channel chunks with a local reduction */
  int unroll;        /* unroll: 1 unrolls the kernel-point loops */
  int specialize;    /* specialize: 1 compiles shape constants in */
  int rows;          /* rows: output rows of a tile (halo > 0) */
  int halo;          /* halo: 0 global atomics; > 0 tiled in local memory */
  int max_regs;      /* regs: register cap (NVIDIA), 0 the compiler's */
  dcn_tuning_layer source;
} dcn_dcnv4_backward_tuning;

/* FlashDeformAttn forward (fda_forward.cl). */
typedef struct dcn_fda_forward_tuning {
  int max_vec;            /* vec: widest vector of channels per work-item */
  size_t local_size;      /* local: work-items per work-group */
  int stage;              /* stage: 0 per work-item, 1/2 shared per head */
  int specialize;         /* specialize: 1 compiles shape constants in */
  int max_regs;           /* regs: register cap (NVIDIA), 0 the compiler's */
  int groups;             /* groups: heads per block of queries (0: all) */
  dcn_small_tuning small; /* small, smalllocal, smallvec, smallregs */
  dcn_tuning_layer source;
} dcn_fda_forward_tuning;

/* FlashDeformAttn backward (fda_backward.cl). */
typedef struct dcn_fda_backward_tuning {
  int max_vec;       /* vec: widest vector of channels per work-item */
  size_t local_size; /* local: work-items per work-group */
  int split;         /* split: 1 D/vec work-items per head, 0 one */
  int specialize;    /* specialize: 1 compiles shape constants in */
  int max_regs;      /* regs: register cap (NVIDIA), 0 the compiler's */
  dcn_tuning_layer source;
} dcn_fda_backward_tuning;

/* DCNv4 deterministic backward (its vector width follows group_channels). */
typedef struct dcn_dcnv4_backward_deterministic_tuning {
  size_t local_size; /* local: work-items per work-group, every kernel */
  int unroll;        /* unroll: 1 unrolls the kernel-point loops */
  int specialize;    /* specialize: 1 compiles shape constants in */
  int max_regs;      /* regs: register cap (NVIDIA), 0 the compiler's */
  dcn_tuning_layer source;
} dcn_dcnv4_backward_deterministic_tuning;

/* FlashDeformAttn deterministic backward. */
typedef struct dcn_fda_backward_deterministic_tuning {
  size_t local_size; /* local: work-items per work-group, every kernel */
  int specialize;    /* specialize: 1 compiles shape constants in */
  int max_regs;      /* regs: register cap (NVIDIA), 0 the compiler's */
  dcn_tuning_layer source;
} dcn_fda_backward_deterministic_tuning;

/* layer_elementwise and layer_dwconv (layer_ops.cl): one element per
 * work-item. */
typedef struct dcn_layer_tuning {
  size_t local_size; /* local: work-items per work-group */
  dcn_tuning_layer source;
} dcn_layer_tuning;

/* The layers' GEMM (linear.c): CLBlast or linear.cl. */
typedef struct dcn_linear_tuning {
  int backend;       /* backend: 0 CLBlast, 1 linear.cl */
  int tile_m;        /* tilem: output rows per work-group */
  int tile_n;        /* tilen: output columns per work-group */
  int tile_k;        /* tilek: K chunk staged in local memory */
  int max_vec;       /* vec: columns per work-item */
  size_t local_size; /* local: work-items per work-group */
  int unroll;        /* unroll: 1 unrolls the k loop */
  /* GEMMs with few tiles (fewer than half the compute units; linear.c): */
  int short_m; /* shortm: rows of their tiles (0 or >= tilem: tilem) */
  int ksplit;  /* ksplit: at most this many parts along K (1: no split) */
  int fill;    /* fill: split so that about fill work-groups per compute
                  unit run */
  int kmin;    /* kmin: k per part at least (rounded up to tilek) */
  dcn_tuning_layer source;
} dcn_linear_tuning;

/* The small-launch rule of the 16-bit GEMM (linear_mma.cl; linear.c,
 * dcn_gemm_plan_for): a GEMM that the class's tile would give fewer than
 * `below` work-groups per compute unit takes tiles of tile_m x tile_n in
 * work-groups of local_size work-items instead (0 keeps the class's value;
 * tilek, stages and the switches stay). Several small work-groups share a
 * compute unit where one big one would hold it alone or leave it idle. */
typedef struct dcn_small_tile_tuning {
  int below;         /* small: work-groups per compute unit (0: never) */
  int tile_m;        /* smalltilem: output rows per work-group */
  int tile_n;        /* smalltilen: output columns per work-group */
  size_t local_size; /* smalllocal: work-items per work-group */
} dcn_small_tile_tuning;

/* The layers' GEMM on 16-bit storage (linear_mma.cl): tensor-core products
 * of m16n8k16 fragments. Shape classes (the lookup's group_channels): 64
 * for GEMMs of at most 64 output columns, 0 for the others. */
typedef struct dcn_linear_mma_tuning {
  int tile_m;        /* tilem: output rows per work-group */
  int tile_n;        /* tilen: output columns per work-group */
  int tile_k;        /* tilek: K chunk staged in local memory */
  size_t local_size; /* local: work-items per work-group (whole warps) */
  int stages;        /* stages: K chunks in flight (cp.async ring) */
  int swizzle;       /* swizzle: 1 stages rows of tilek values, their 16-byte
                        pieces permuted (no padding) */
  int staged;        /* staged: 1 stores the output through local memory, 16
                        bytes per work-item */
  int prefetch;      /* prefetch: 1 loads the next k step's fragments before
                        the current step's products */
  int raster;        /* raster: work-groups walk bands of this many tile rows
                        column by column (0: row by row) */
  /* Split-K of GEMMs with fewer than fill tiles per compute unit, as
   * linear's: at most ksplit parts (1: none) of at least kmin k. */
  int ksplit, fill, kmin;
  dcn_small_tile_tuning small;
  dcn_tuning_layer source;
} dcn_linear_mma_tuning;

/* Zeroing a buffer (dcn_enqueue_zero): clEnqueueFillBuffer or the
 * library's kernel, one 16-byte store per work-item. */
typedef struct dcn_zero_tuning {
  size_t local_size; /* local: work-items per work-group of the kernel */
  int kernel;        /* kernel: 1 zero.cl, 0 clEnqueueFillBuffer */
  dcn_tuning_layer source;
} dcn_zero_tuning;

/* Any kernel's parameters: the member named after the kernel. The built-in
 * table and the merge engine hold configurations as this. */
typedef union dcn_kernel_tuning {
  dcn_dcnv4_forward_tuning dcnv4_forward;
  dcn_dcnv4_backward_tuning dcnv4_backward;
  dcn_fda_forward_tuning fda_forward;
  dcn_fda_backward_tuning fda_backward;
  dcn_dcnv4_backward_deterministic_tuning dcnv4_backward_deterministic;
  dcn_fda_backward_deterministic_tuning fda_backward_deterministic;
  dcn_layer_tuning layer; /* layer_elementwise, layer_dwconv */
  dcn_linear_tuning linear;
  dcn_linear_mma_tuning linear_mma;
  dcn_zero_tuning zero;
} dcn_kernel_tuning;

/* Per-context overrides of the defaults, from DCNV4_TUNING at context
 * creation or dcnv4_context_set_tuning: "kernel.param=value[;...]", each
 * param one the kernel takes. */
typedef struct dcn_tuning_override {
  long value[DCN_KERNEL_COUNT][DCN_TUNING_PARAMS];
  bool set[DCN_KERNEL_COUNT][DCN_TUNING_PARAMS]; /* which were given */
} dcn_tuning_override;

/* One kernel entry of a tuning file: parameters the kernel takes, a dtype
 * (-1: any) and a shape class (group_channels, 0: any). */
typedef struct dcn_tuning_entry {
  dcn_kernel_id kernel;
  int dtype;
  int group_channels;
  long value[DCN_TUNING_PARAMS];
  bool set[DCN_TUNING_PARAMS];
} dcn_tuning_entry;

/* One "gemm" entry of a tuning file: a named parameter set for a CLBlast
 * kernel, stored as read; linear.c decides what it means and applies it
 * (CLBlastOverrideParameters). */
#define DCN_GEMM_MAX_PARAMS 24
typedef struct dcn_gemm_entry {
  char kernel[32]; /* "Xgemm", "XgemmDirect", ... */
  size_t count;
  char names[DCN_GEMM_MAX_PARAMS][16];
  size_t values[DCN_GEMM_MAX_PARAMS];
} dcn_gemm_entry;

/* What the built-in table keys on: vendor class, architecture and device
 * name (src/tuning/tuning.c, dcn_tuning_identify). */
typedef struct dcn_device_class {
  int vendor;     /* dcn_vendor */
  char arch[32];  /* "sm_90", "gfx90a", "pocl", ...; "" unknown */
  char name[256]; /* the device's name (AMD: its board name) */
} dcn_device_class;

#endif /* DCNV4_TUNING_TYPES_H */
