/* Layers (DESIGN.md §1.3): the pieces every layer kind shares. Not installed.
 *
 *  - the weight table: PyTorch state-dict keys with their shapes, one fp32
 *    device buffer per weight, and for fp16/bf16 layers a copy of each
 *    matrix in the dtype for the 16-bit GEMMs (layer.c);
 *  - scratch plans: regions of one workspace, bound as sub-buffers
 *    (layer.c);
 *  - the GEMM of the linear projections, y = x W^T + b, on this library's
 *    kernels (linear.cl, linear_mma.cl for 16-bit storage) or CLBlast, as
 *    tuned (src/ops/linear/linear.c, the one place that calls CLBlast, so
 *    tuning plugs in there);
 *  - the small kernels around the GEMMs: dtype widening, bias epilogue,
 *    depthwise convolution, centre-feature-scale blend, masked value bias
 *    and the FlashDeformAttn layer's reference-point arithmetic
 *    (layer_ops.c, layer_ops.cl).
 *
 * A layer kind (dcnv4_layer.c, fda_layer.c) declares its weights at
 * creation and implements its forward pass with these. */
#ifndef DCNV4_LAYER_H
#define DCNV4_LAYER_H

#include "core/internal.h"
#include "layers/safetensors.h"
#include "ops/fii/fii_ops.h"

#include <stdio.h>

#define DCN_WEIGHT_MAX_DIMS 4
#define DCN_LAYER_MAX_WEIGHTS 16

typedef struct dcn_weight dcn_weight;
/* Rearranges host data (PyTorch layout, `w->elements` floats) into the
 * device layout. NULL: the layouts are the same. */
typedef void (*dcn_weight_pack_fn)(const dcn_weight *w, const float *src,
                                   float *dst);

struct dcn_weight {
  const char *key; /* state-dict key, a string constant */
  int ndim;
  int64_t shape[DCN_WEIGHT_MAX_DIMS];
  uint64_t elements;
  bool set;
  cl_mem buffer; /* elements fp32 values in the device layout */
  /* fp16/bf16 layers' matrices (2-d weights, the GEMMs' b): the same
   * values in the layer's dtype; else NULL. */
  cl_mem buffer16;
  dcn_weight_pack_fn pack;
};

/* A layer's configuration, by its kind. */
typedef union dcn_layer_config {
  dcnv4_layer_dcnv4_config dcnv4;
  dcnv4_layer_fda_config fda;
} dcn_layer_config;

struct dcnv4_layer {
  dcnv4_context *ctx;
  dcnv4_layer_kind kind;
  dcnv4_dtype dtype;
  size_t align; /* sub-buffer alignment of the device, bytes */
  dcn_weight weights[DCN_LAYER_MAX_WEIGHTS];
  size_t weight_count;
  dcn_layer_config config;
};

/* ------------------------------------------------------------ weights */

/* A layer with no weights yet (freed by dcnv4_layer_destroy). */
dcnv4_status dcn_layer_alloc(dcnv4_context *ctx, dcnv4_layer_kind kind,
                             dcnv4_dtype dtype, dcnv4_layer **out);
/* Declares a weight and allocates its device buffer. */
dcnv4_status dcn_layer_add_weight(dcnv4_layer *layer, const char *key, int ndim,
                                  const int64_t *shape,
                                  dcn_weight_pack_fn pack);
/* The weight named `key`, or NULL. */
dcn_weight *dcn_layer_find_weight(dcnv4_layer *layer, const char *key);
/* The device buffer of a declared weight (NULL if the layer has none). */
cl_mem dcn_layer_weight_buffer(dcnv4_layer *layer, const char *key);
/* The matrix `key` as a GEMM's b in `dtype` storage: the fp32 buffer, or
 * the layer-dtype copy of a 16-bit layer (NULL if there is none). */
cl_mem dcn_layer_gemm_weight(dcnv4_layer *layer, const char *key,
                             dcnv4_dtype dtype);
/* Writes `count` floats that are values of the 16-bit `dtype` into
 * `buffer` in that storage (blocking): the GEMMs' 16-bit weight copies. */
dcnv4_status dcn_write_16bit(dcnv4_context *ctx, cl_mem buffer,
                             dcnv4_dtype dtype, const float *values,
                             uint64_t count);
/* DCNV4_ERROR_MISSING_WEIGHT naming the first weight never set. */
dcnv4_status dcn_layer_check_complete(dcnv4_layer *layer);
/* "(64, 1, 3, 3)" */
void dcn_shape_string(int ndim, const int64_t *shape, char *out, size_t size);

/* A layer configuration field and its accepted range. */
typedef struct dcn_config_range {
  const char *name;
  int32_t value, min, max;
} dcn_config_range;

/* The layer's dtype is known and every field lies in its range; else
 * DCNV4_ERROR_INVALID_PARAMETER naming the first that does not. */
dcnv4_status dcn_check_layer_config(dcnv4_context *ctx, dcnv4_dtype dtype,
                                    const dcn_config_range *ranges,
                                    size_t count);

/* ------------------------------------------------------- scratch plans */

/* Regions of one workspace, each starting at a multiple of `align`. */
typedef struct dcn_scratch_plan {
  size_t align;
  size_t total;
  size_t count;
  size_t offset[DCN_SCRATCH_MAX_REGIONS];
  size_t bytes[DCN_SCRATCH_MAX_REGIONS];
} dcn_scratch_plan;

void dcn_scratch_init(dcn_scratch_plan *plan, size_t align);
/* Adds a region of `bytes`; returns its index, or -1 on size overflow. */
int dcn_scratch_add(dcn_scratch_plan *plan, size_t bytes);
/* Checks the user's workspace and creates one sub-buffer per region in
 * `regions`; with no workspace, the context's region buffers (grown as
 * needed) are retained instead (release both with
 * dcn_scratch_release, which may be called as soon as the commands using
 * them are enqueued). */
dcnv4_status dcn_scratch_bind(dcnv4_context *ctx, cl_mem workspace,
                              const dcn_scratch_plan *plan, cl_mem *regions);
void dcn_scratch_release(cl_mem *regions, size_t count);
/* The checks of dcn_scratch_bind on a user workspace, without binding. */
dcnv4_status dcn_scratch_check_user(dcnv4_context *ctx, cl_mem workspace,
                                    size_t bytes);

/* ----------------------------------------------------- a layer's calls */

/* A weight a layer kind declares; `present` false leaves out one its
 * configuration does not have. */
typedef struct dcn_weight_decl {
  const char *key; /* state-dict key, a string constant */
  int ndim;
  int64_t shape[DCN_WEIGHT_MAX_DIMS];
  dcn_weight_pack_fn pack;
  bool present;
} dcn_weight_decl;

/* The checks every create call starts with: the context, the layer pointer
 * (cleared), the configuration (`has_config`: not NULL). */
dcnv4_status dcn_layer_check_create(dcnv4_context *ctx, dcnv4_layer **out,
                                    bool has_config);
/* A layer of a validated configuration with its present weights declared,
 * in the order given (the module's registration order, its state_dict
 * order); *out stays NULL on failure. */
dcnv4_status dcn_layer_create(dcnv4_context *ctx, dcnv4_layer_kind kind,
                              dcnv4_dtype dtype, const dcn_layer_config *config,
                              const dcn_weight_decl *weights, size_t count,
                              dcnv4_layer **out);
/* A call for one kind only: `layer` is not NULL (no message otherwise) and
 * of `kind`. */
dcnv4_status dcn_layer_check_kind(const dcnv4_layer *layer,
                                  dcnv4_layer_kind kind);
/* The checks a workspace-size call starts with: the layer (no message
 * when NULL), `bytes` not NULL, the kind. */
dcnv4_status dcn_layer_check_size_call(const dcnv4_layer *layer,
                                       dcnv4_layer_kind kind,
                                       const size_t *bytes);
/* The checks of a forward once its shapes are valid: every weight set, the
 * wait list valid. */
dcnv4_status dcn_layer_check_ready(dcnv4_layer *layer, cl_uint num_wait,
                                   const cl_event *wait);
/* A caller's buffer in a layer call. */
typedef struct dcn_layer_buffer {
  const char *name;
  cl_mem buffer;
  size_t bytes;
  bool input;    /* read only: may alias other inputs */
  bool optional; /* may be NULL */
} dcn_layer_buffer;

#define DCN_LAYER_MAX_BUFFERS 7

/* In order: each buffer holds its bytes; no output aliases another buffer,
 * the workspace counted among the outputs; the user's workspace, if any,
 * holds `workspace_bytes` and is read-write. */
dcnv4_status dcn_layer_check_buffers(dcnv4_context *ctx,
                                     const dcn_layer_buffer *buffers,
                                     size_t count, cl_mem workspace,
                                     size_t workspace_bytes);
/* Binds the scratch regions and enqueues the wait list's barrier: from here
 * on, work is enqueued. The caller releases `regions` (plan->count) once
 * its commands are enqueued; on failure nothing is held. */
dcnv4_status dcn_layer_begin_enqueue(dcnv4_context *ctx, cl_mem workspace,
                                     const dcn_scratch_plan *plan,
                                     cl_mem *regions, cl_uint num_wait,
                                     const cl_event *wait);

/* --------------------------------------------------------------- GEMM */

/* The GEMMs of the layers and the model: c (m, n) = epilogue(a (m, k) b^T +
 * bias), b (n, k), PyTorch's F.linear. a (activations) and b (weights) are
 * in one storage dtype: fp32, fp16 or bf16; accumulation is fp32; c (and
 * the residual of DCN_GEMM_RESIDUAL) is fp32 or that 16-bit dtype, each
 * value rounded once (round to nearest even) after the epilogue. bias and
 * the residual's scale are fp32 (n).
 *
 * Backends, chosen and built before anything is enqueued
 * (dcn_gemm_prepare_spec):
 *  - fp32 storage: linear.cl (`own`, tiles as the "linear" tuning says,
 *    epilogue fused) or CLBlast's SGEMM (a bias/epilogue pass after it).
 *    Exact fp32 products: no TF32.
 *  - 16-bit storage: linear_mma.cl (`own`, `mma`): tensor-core products
 *    (ldmatrix, mma.sync m16n8k16, cp.async) on NVIDIA devices of compute
 *    capability 8 or later (`ptx`), tiles per shape class from the
 *    "linear_mma" tuning; elsewhere linear.cl (`own`) widening a and b to
 *    fp32 as it loads them, with the "linear" tuning's tiles and split-K
 *    (fp32 parts, rounded once by the reduction), falling back to
 *    linear_mma.cl's portable fragments (also what `mma` in the spec
 *    asks for) if it does not build. */
typedef struct dcn_gemm_spec {
  dcnv4_dtype dtype; /* a's and b's storage */
  dcnv4_dtype out;   /* c's and the residual's: DCNV4_FLOAT32 or dtype */
  dcn_gemm_epilogue_kind epilogue; /* every GEMM of the call takes it */
  bool bias;                       /* some GEMM of the call has a bias */
  bool idx64; /* some tensor of the call has 2^31 elements or more */
  bool mma;   /* 16-bit storage: linear_mma.cl even without the PTX (its
                 tests and benchmark rows) */
} dcn_gemm_spec;

/* Split-K of a GEMM kernel (dcn_gemm_plan_for): `partial` stores a part's
 * sums (the same tiling without epilogue, fp32 out; NULL: no split), K in
 * parts of whole tile_k chunks; the tuning's limits ksplit, fill, kmin. */
typedef struct dcn_gemm_split {
  cl_kernel partial;
  int tile_k;
  int ksplit, fill, kmin;
} dcn_gemm_split;

/* linear_mma.cl built for one tiling. */
typedef struct dcn_gemm_mma {
  cl_kernel kernel; /* the context's; NULL: not built */
  int tile_m, tile_n;
  size_t local;
  dcn_gemm_split split;
} dcn_gemm_mma;

/* One shape class of linear_mma.cl: its tiling and, where the tuning has
 * one that built, the small-launch tiling (dcn_small_tile_tuning) for the
 * class's GEMMs that its tiling gives fewer than small_below work-groups
 * per compute unit. Split-K runs on the small tiling where there is one
 * (only GEMMs that took it split), else on the class's. */
typedef struct dcn_gemm_mma_class {
  dcn_gemm_mma tiling;
  dcn_gemm_mma small; /* kernel NULL: none */
  int small_below;
} dcn_gemm_mma_class;

/* The shape classes of linear_mma.cl: GEMMs of at most
 * DCN_GEMM_NARROW_COLUMNS output columns, and the others. */
#define DCN_GEMM_NARROW_COLUMNS 64
enum { DCN_GEMM_MMA_WIDE = 0, DCN_GEMM_MMA_NARROW, DCN_GEMM_MMA_CLASSES };

typedef struct dcn_gemm {
  bool own;           /* linear.cl or linear_mma.cl, epilogue fused */
  bool idx64;         /* some tensor of the call has 2^31 elements or more */
  dcnv4_dtype dtype;  /* a's and b's storage */
  dcnv4_dtype out;    /* c's and the residual's storage */
  cl_kernel linear;   /* own, linear.cl: the kernel (the context's) */
  cl_kernel bias;     /* CLBlast with biases: fp32 bias_store */
  int tile_m, tile_n; /* own, linear.cl: output tile of a work-group */
  size_t local;       /* own, linear.cl: work-items per group */
  /* own, linear.cl, GEMMs with few tiles (linear.c, dcn_gemm_plan_for): the
   * same kernel with tiles of short_m rows (tuning `shortm`; or NULL), and
   * split-K (`split.partial`: linear.cl without epilogue, the short tile
   * where there is one). `reduce` adds the parts with the bias and epilogue
   * (NULL: no split), for linear.cl's and linear_mma.cl's splits. */
  cl_kernel linear_short;
  int short_m;
  dcn_gemm_split split;
  cl_kernel reduce;
  size_t reduce_local;
  /* 16-bit storage: linear_mma.cl per shape class (`mma` set), and whether
   * it is the tensor-core build (`ptx`) or the portable one. */
  bool mma, ptx;
  dcn_gemm_mma_class mma_class[DCN_GEMM_MMA_CLASSES];
  /* What follows the product: fused into linear.cl / linear_mma.cl, or
   * CLBlast's pass `post` (fii_ops.cl) instead of `bias`. */
  dcn_gemm_epilogue_kind epilogue;
  cl_kernel post;
} dcn_gemm;

/* Checks `spec` (a dtype the library knows, an output of fp32 or the
 * storage dtype, 16-bit output only from 16-bit storage, a known epilogue;
 * DCNV4_ERROR_INVALID_PARAMETER otherwise), picks the backend from the
 * tuning and builds what it needs. */
dcnv4_status dcn_gemm_prepare_spec(dcnv4_context *ctx,
                                   const dcn_gemm_spec *spec, dcn_gemm *g);
/* dcn_gemm_prepare_spec for fp32 storage and output, no epilogue; `bias`:
 * some GEMM of the call will have a bias. */
dcnv4_status dcn_gemm_prepare(dcnv4_context *ctx, bool idx64, bool bias,
                              dcn_gemm *g);
/* The same for fp32 GEMMs with an epilogue of `kind` (DCN_GEMM_NONE: as
 * dcn_gemm_prepare). */
dcnv4_status dcn_gemm_prepare_epilogue(dcnv4_context *ctx, bool idx64,
                                       bool bias, dcn_gemm_epilogue_kind kind,
                                       dcn_gemm *g);

/* c (m, n) = a (m, k) @ b^T (+ bias) with b (n, k), bias (n) or NULL, in
 * the storage `g` was prepared for, row-major, contiguous (lda = k, ldb =
 * k, ldc = n), every buffer from offset 0; c must not alias a, b or bias.
 * Enqueued on the context's queue after the commands before it; `event`
 * (may be NULL) receives the completion event of the last command. */
dcnv4_status dcn_gemm_linear(dcnv4_context *ctx, const dcn_gemm *g, uint64_t m,
                             uint64_t n, uint64_t k, cl_mem a, cl_mem b,
                             cl_mem bias, cl_mem c, cl_event *event,
                             const char *what);
/* dcn_gemm_linear followed by the epilogue `e` (fii_ops.h; NULL or
 * DCN_GEMM_NONE: none), which must be the kind `g` was prepared for.
 * DCN_GEMM_GELU: c = GELU(a b^T + bias). DCN_GEMM_RESIDUAL: e->residual
 * (m, n, g->out) += e->scale * (a b^T + bias), checked (size, no alias of
 * a, b or bias) before anything is enqueued; c is then scratch: CLBlast
 * (g->own false) writes the product there, linear.cl and linear_mma.cl
 * leave it alone (c may be NULL when g->own). */
dcnv4_status dcn_gemm_linear_epilogue(dcnv4_context *ctx, const dcn_gemm *g,
                                      uint64_t m, uint64_t n, uint64_t k,
                                      cl_mem a, cl_mem b, cl_mem bias, cl_mem c,
                                      const dcn_gemm_epilogue *e,
                                      cl_event *event, const char *what);

/* How the library's kernel runs one GEMM of `g` (own only): the kernel,
 * its output tile and work-items per group (linear.cl: the short tile for
 * few tiles; linear_mma.cl: the shape class), and the parts of K (1:
 * unsplit; else `parts` parts of k_part, the last one shorter or equal;
 * linear_mma.cl never splits). The choice depends only on the shape, the
 * tuning and the device's compute units, so a GEMM gives the same bits on
 * every run. */
typedef struct dcn_gemm_plan {
  cl_kernel kernel;
  int tile_m, tile_n;
  size_t local;
  uint64_t parts, k_part;
} dcn_gemm_plan;
dcn_gemm_plan dcn_gemm_plan_for(const dcnv4_context *ctx, const dcn_gemm *g,
                                uint64_t m, uint64_t n, uint64_t k);

/* ------------------------------------------------- small layer kernels */

/* Kernels are fetched (built) by dcn_layer_kernel before anything is
 * enqueued, then launched by the dcn_run_* functions. */
typedef enum dcn_layer_kernel_id {
  DCN_LK_TO_FLOAT,     /* storage dtype -> fp32 */
  DCN_LK_BIAS_STORE,   /* fp32 + bias -> storage dtype */
  DCN_LK_CONVERT_ONLY, /* fp32 -> storage dtype */
  DCN_LK_DWCONV,       /* fp32 depthwise convolution, arg: kernel size */
  DCN_LK_CFS_BLEND,    /* centre feature scale, arg: group channels */
  DCN_LK_MASK_ROWS,    /* rows zeroed by a byte mask, in place */
  DCN_LK_FDA_SAMPLING  /* FDA layer: offsets + logits -> sampling_loc_attn,
                          dtype: of the reference points */
} dcn_layer_kernel_id;

/* `dtype` is the storage type the kernel reads (to_float) or writes
 * (bias_store, convert); `arg` as noted above; `idx64` when a tensor of the
 * call has 2^31 elements or more. */
dcnv4_status dcn_layer_kernel(dcnv4_context *ctx, dcn_layer_kernel_id id,
                              dcnv4_dtype dtype, int arg, bool idx64,
                              cl_kernel *kernel);

dcnv4_status dcn_run_to_float(dcnv4_context *ctx, cl_kernel k, bool idx64,
                              cl_mem src, cl_mem dst, uint64_t count,
                              cl_event *event);
/* dst[r, c] = src[r, c] (+ bias[c] when the kernel has a bias); src and dst
 * may be the same fp32 buffer. */
dcnv4_status dcn_run_bias_store(dcnv4_context *ctx, cl_kernel k, bool idx64,
                                cl_mem src, cl_mem bias, cl_mem dst,
                                uint64_t rows, int32_t cols, cl_event *event);
dcnv4_status dcn_run_dwconv(dcnv4_context *ctx, cl_kernel k, bool idx64,
                            cl_mem src, cl_mem weight, cl_mem bias, cl_mem dst,
                            int32_t batch, int32_t height, int32_t width,
                            int32_t channels, cl_event *event);
dcnv4_status dcn_run_cfs_blend(dcnv4_context *ctx, cl_kernel k, bool idx64,
                               cl_mem x, cl_mem v, cl_mem logits, cl_mem bias,
                               uint64_t rows, int32_t group,
                               int32_t group_channels, cl_event *event);

/* x[r, c] = 0 where mask[r] (in place, x in the kernel's dtype; mask
 * bytes, non-zero = padded): PyTorch's masked_fill after a Linear. */
dcnv4_status dcn_run_mask_rows(dcnv4_context *ctx, cl_kernel k, bool idx64,
                               cl_mem x, cl_mem mask, uint64_t rows,
                               int32_t cols, cl_event *event);

/* The FlashDeformAttn layer's level geometry for its sampling kernel. */
typedef struct dcn_fda_sampling_geometry {
  int32_t heads, levels, points, reference_dim;
  int32_t height[DCNV4_FDA_MAX_LEVELS];
  int32_t width[DCNV4_FDA_MAX_LEVELS];
} dcn_fda_sampling_geometry;

/* sampling_loc_attn (rows, G, L*K*3) from the raw GEMM outputs offsets
 * (rows, G*L*K*2) and logits (rows, G*L*K), their biases, and the
 * reference points (rows, L, reference_dim) in the kernel's dtype; rows =
 * N*Lq. One work-item per (row, head, level, point). */
dcnv4_status dcn_run_fda_sampling(dcnv4_context *ctx, cl_kernel k, bool idx64,
                                  cl_mem offsets, cl_mem offsets_bias,
                                  cl_mem logits, cl_mem logits_bias,
                                  cl_mem reference_points, cl_mem dst,
                                  const dcn_fda_sampling_geometry *g,
                                  uint64_t rows, cl_event *event);

/* ------------------------------------ the DCNv4 layer inside a model */

/* The FlashInternImage model (src/model/) runs its DCNv4 layers on its
 * activations, stored in the layer's dtype as the layer's own forward
 * keeps them, on scratch regions it binds itself, with the output
 * projection's epilogue fused (the block's residual with its layer scale,
 * the residual in the same dtype); fii_ops.h defines the epilogues. */

/* The scratch regions of one such call (sizes for these dimensions; the
 * region list depends only on the layer's configuration). */
dcnv4_status dcn_dcnv4_layer_model_scratch(dcnv4_layer *layer, int32_t batch,
                                           int32_t height, int32_t width,
                                           dcn_scratch_plan *plan);
/* Every check and kernel build of such a call with an epilogue of `kind`,
 * so that the call itself cannot fail but on the device: the dimensions,
 * every weight set. */
dcnv4_status dcn_dcnv4_layer_model_prepare(dcnv4_layer *layer, int32_t batch,
                                           int32_t height, int32_t width,
                                           dcn_gemm_epilogue_kind kind);
/* output (N*H*W, C) = layer(input (N*H*W, C)), in the dtype, or with `ep` (may
 * be NULL) the epilogue's update instead (DCN_GEMM_RESIDUAL: output is not
 * written and may be NULL). `regions`: buffers of at least the sizes of
 * dcn_dcnv4_layer_model_scratch's plan, in its order. Enqueued after the
 * commands before it; `event` (may be NULL) completes with the last. */
dcnv4_status dcn_dcnv4_layer_forward_model(dcnv4_layer *layer, int32_t batch,
                                           int32_t height, int32_t width,
                                           cl_mem input, cl_mem output,
                                           const dcn_gemm_epilogue *ep,
                                           const cl_mem *regions,
                                           cl_event *event);

/* ------------------------------------------------ safetensors files */

/* Opens a safetensors file and parses its header strictly (layer.c; the
 * checks of dcnv4_layer_load_safetensors). The caller closes the file and
 * frees the header. */
dcnv4_status dcn_st_open(dcnv4_context *ctx, const char *path, FILE **file,
                         dcn_st_header *header);
/* Reads exactly `size` bytes at `offset`; false on any shortfall. */
bool dcn_st_read(FILE *file, uint64_t offset, void *buf, size_t size);

#endif /* DCNV4_LAYER_H */
