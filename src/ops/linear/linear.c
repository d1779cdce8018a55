/* The GEMMs of the layers (PyTorch's Linear, y = x W^T + b): the one place
 * that calls CLBlast, so that per-device GEMM tuning
 * (CLBlastOverrideParameters) plugs in here, and the dispatch between
 * CLBlast and this library's kernel (linear.cl).
 *
 * Backend (tuning kernel "linear", parameter `backend`): 1 runs
 * linear.cl, tiled as the tuning table says, with the bias fused into
 * its epilogue; 0 runs CLBlast's SGEMM followed by a bias pass (bias_store,
 * in place). GEMMs with few tiles (small M) take the tuning's short tile
 * and split K into parts, their sums reduced by a second kernel
 * (dcn_gemm_plan_for). CLBlast's indirect GEMM pads and transposes the (large)
 * input around its kernel, so on NVIDIA the own kernel is several times faster
 * for the layers' tall, narrow products. A tuned linear.cl configuration
 * that the device cannot run or build falls back to the built-in one, then
 * to CLBlast (logged under DCNV4_LOG=info).
 *
 * GEMMs on 16-bit storage (dcn_gemm_prepare_spec with an fp16 or bf16
 * dtype) run linear_mma.cl: tensor-core products through inline PTX on
 * NVIDIA devices of compute capability 8 or later (NVIDIA's OpenCL has no
 * cl_khr_fp16, so CLBlast's half GEMM cannot run there), the same kernel
 * with portable fragments elsewhere; tiles per shape class from the
 * "linear_mma" tuning, a tuned configuration that cannot run falling back
 * to the built-in one. The layers' projections still run in fp32 on
 * widened copies (see layer.h).
 *
 * Tuned parameters: the tuning file's "gemm" entries go to
 * CLBlastOverrideParameters at context creation
 * (dcn_linear_apply_file_tuning); kernels other than Xgemm and XgemmDirect
 * are not applied (logged).
 * CLBlast keeps them per device for the whole process. A set the device
 * cannot run (work-group or local memory too large, tiles that do not
 * divide) is not applied: CLBlast's defaults stay. If a GEMM still fails
 * with applied sets, they are replaced by conservative ones (CLBlast cannot
 * forget an override) and the GEMM is retried once.
 *
 * CLBlast compiles its kernels on the first call for a device and precision
 * in the process (about a second on a GPU, 10 s or more on PoCL without its
 * kernel cache) and keeps them in a process-wide cache. */
#include "core/fault.h"
#include "layers/layer.h"
#include "ops/common/op_common.h"
#include "tuning/tuning.h"

#include <clblast_c.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Replaces the applied CLBlast sets by conservative ones (after a failed
 * GEMM). */
static void gemm_untune(dcnv4_context *ctx);

static const char *clblast_status_name(CLBlastStatusCode s) {
  switch (s) {
  case CLBlastNotImplemented: return "not implemented";
  case CLBlastInvalidMatrixA: return "matrix A is not a valid buffer";
  case CLBlastInvalidMatrixB: return "matrix B is not a valid buffer";
  case CLBlastInvalidMatrixC: return "matrix C is not a valid buffer";
  case CLBlastInvalidDimension: return "invalid dimension";
  case CLBlastInvalidLeadDimA: return "invalid leading dimension of A";
  case CLBlastInvalidLeadDimB: return "invalid leading dimension of B";
  case CLBlastInvalidLeadDimC: return "invalid leading dimension of C";
  case CLBlastInsufficientMemoryA: return "buffer of A too small";
  case CLBlastInsufficientMemoryB: return "buffer of B too small";
  case CLBlastInsufficientMemoryC: return "buffer of C too small";
  case CLBlastInsufficientMemoryTemp: return "temporary buffer too small";
  case CLBlastInvalidLocalMemUsage: return "not enough local memory";
  case CLBlastDatabaseError: return "no tuning entry for the device";
  case CLBlastUnknownError: return "unknown error";
  case CLBlastUnexpectedError: return "unexpected error";
  default: break;
  }
  /* The codes above -1000 are OpenCL's. */
  return s > -1000 ? dcn_cl_error_name((cl_int)s) : "CLBlast error";
}

/* ------------------------------------------------ linear.cl */

/* Why a linear configuration cannot run on the device, or NULL; fills the
 * rows per work-item. */
static const char *linear_unusable(const dcnv4_context *ctx,
                                   const dcn_linear_tuning *c, int *rm,
                                   char *why, size_t size) {
  const long tm = c->tile_m, tn = c->tile_n, tk = c->tile_k, vec = c->max_vec;
  const long local = (long)c->local_size;
  const long cells = tm * tn;
  *rm = 0;
  if (tm < 4 || tn < 4 || tk < 4 || vec < 4 || local < 1 ||
      cells % (local * vec) != 0) {
    snprintf(why, size,
             "a %ldx%ld tile is not %ld work-items of %ld columns (vec) "
             "and a multiple of 4 rows each",
             tm, tn, local, vec);
    return why;
  }
  long r = cells / (local * vec);
  if (r % 4 != 0 || tm % r != 0 || tn % vec != 0 || r > 16) {
    snprintf(why, size,
             "%ld rows x %ld columns per work-item do not tile %ldx%ld (rows "
             "must be 4, 8 or 16, vec 4 or 8)",
             r, vec, tm, tn);
    return why;
  }
  cl_ulong local_bytes = (cl_ulong)(2 * tk * (tm + 4 + tn + 4) * 4);
  if ((size_t)local > ctx->max_work_group_size) {
    snprintf(why, size, "work-groups of %ld items, more than the device's %zu",
             local, ctx->max_work_group_size);
    return why;
  }
  if (local_bytes > ctx->local_mem_bytes) {
    snprintf(why, size,
             "%llu bytes of local memory, more than the device's %llu",
             (unsigned long long)local_bytes,
             (unsigned long long)ctx->local_mem_bytes);
    return why;
  }
  *rm = (int)r;
  return NULL;
}

/* The outcome of building a GEMM kernel of `local` work-items per group:
 * DCNV4_ERROR_BUILD_FAILED with `why` where it did not build or the
 * compiler allows fewer work-items (registers), else `st`. */
static dcnv4_status built_usable(dcnv4_context *ctx, dcnv4_status st,
                                 cl_kernel k, size_t local, char *why,
                                 size_t size) {
  if (st == DCNV4_ERROR_BUILD_FAILED) {
    snprintf(why, size, "does not build on this device");
    return st;
  }
  if (st != DCNV4_SUCCESS)
    return st;
  const size_t limit = dcn_kernel_item_limit(ctx, k, local);
  if (limit < local) {
    snprintf(why, size, "allows %zu work-items per group, not %zu", limit,
             local);
    return DCNV4_ERROR_BUILD_FAILED;
  }
  return DCNV4_SUCCESS;
}

/* Builds linear.cl for configuration `c` and g->epilogue into g->linear
 * (and its program's linear_reduce into *reduce, if asked): DCNV4_SUCCESS,
 * DCNV4_ERROR_BUILD_FAILED (also for a configuration the device cannot run,
 * with `why` set), or another failure to report. */
static dcnv4_status linear_kernel(dcnv4_context *ctx,
                                  const dcn_linear_tuning *c, bool idx64,
                                  dcn_gemm *g, cl_kernel *reduce, char *why,
                                  size_t size) {
  int rm;
  if (linear_unusable(ctx, c, &rm, why, size))
    return DCNV4_ERROR_BUILD_FAILED;
  /* PoCL runs a work-group on one thread's stack, and its unrolled
   * work-group functions of more than 128 work-items need more (megabytes:
   * a crash, not a build failure). */
  const bool unroll =
      c->unroll && !(ctx->vendor == DCN_VENDOR_CPU && c->local_size > 128);
  /* CPU compilers (PoCL) were seen loading guarded values regardless of
   * the guard: the edge tiles clamp their addresses there
   * (linear.cl). */
  const bool clamp = ctx->vendor == DCN_VENDOR_CPU;
  char options[256];
  int used = snprintf(options, sizeof options,
                      "-DIDX64=%d -DTM=%d -DTN=%d -DTK=%d -DRM=%d -DRN=%d "
                      "-DUNROLL=%d -DCLAMP_EDGE_LOADS=%d",
                      idx64 ? 1 : 0, c->tile_m, c->tile_n, c->tile_k, rm,
                      c->max_vec, unroll ? 1 : 0, clamp ? 1 : 0);
  /* Without an epilogue the options stay those of the layers' program. */
  if (g->epilogue != DCN_GEMM_NONE && used > 0 && (size_t)used < sizeof options)
    used += snprintf(options + used, sizeof options - (size_t)used,
                     " -DEPILOGUE=%d", (int)g->epilogue);
  if (g->dtype != DCNV4_FLOAT32 && used > 0 && (size_t)used < sizeof options)
    snprintf(options + used, sizeof options - (size_t)used,
             " -DDTYPE=%d -DOUT_DTYPE=%d", (int)g->dtype, (int)g->out);
  cl_kernel k;
  dcnv4_status st = dcn_get_kernel(ctx, "linear", options, "linear", &k);
  if (st == DCNV4_SUCCESS && reduce)
    st = dcn_get_kernel(ctx, "linear", options, "linear_reduce", reduce);
  if ((st = built_usable(ctx, st, k, c->local_size, why, size)))
    return st;
  g->linear = k;
  g->tile_m = c->tile_m;
  g->tile_n = c->tile_n;
  g->split.tile_k = c->tile_k;
  g->local = c->local_size;
  return DCNV4_SUCCESS;
}

/* g's split-K reduction: linear_reduce of a linear.cl program built for g's
 * epilogue and output, run as an elementwise pass (dcn_enqueue_1d fits its
 * work-groups to the kernel's limit). */
static void use_reduce(dcnv4_context *ctx, dcn_gemm *g, cl_kernel reduce) {
  g->reduce = reduce;
  g->reduce_local =
      dcn_tuning_layer_ops(ctx, DCN_KERNEL_LAYER_ELEMENTWISE).local_size;
}

/* The few-tile kernels of the configuration `c` that built g->linear: the
 * short tile, and split-K's partial and reduction kernels. A piece that
 * does not build is left out (logged): the GEMMs still run, on the main
 * tile or unsplit. */
static dcnv4_status few_tile_kernels(dcnv4_context *ctx,
                                     const dcn_linear_tuning *c, bool idx64,
                                     dcn_gemm *g) {
  char why[200];
  dcn_linear_tuning tile = *c;
  if (c->short_m > 0 && c->short_m < c->tile_m) {
    tile.tile_m = c->short_m;
    dcn_gemm s = *g;
    dcnv4_status st =
        linear_kernel(ctx, &tile, idx64, &s, NULL, why, sizeof why);
    if (st == DCNV4_SUCCESS) {
      g->linear_short = s.linear;
      g->short_m = c->short_m;
    } else if (st != DCNV4_ERROR_BUILD_FAILED)
      return st;
    else {
      dcn_log(ctx, DCN_LOG_INFO, "linear: the short tile (%d rows) %s; none",
              c->short_m, why);
      tile.tile_m = c->tile_m;
    }
  }
  if (c->ksplit < 2)
    return DCNV4_SUCCESS;
  /* The parts are stored by the kernel of the tile split GEMMs run on,
   * without epilogue (the layers' program) and in fp32; the reduction
   * kernel comes from the program of g's epilogue and output, and rounds
   * once to a 16-bit output. */
  dcn_gemm p = *g;
  cl_kernel partial = g->short_m ? g->linear_short : g->linear, reduce;
  dcnv4_status st = DCNV4_SUCCESS;
  if (g->epilogue != DCN_GEMM_NONE || g->out != DCNV4_FLOAT32) {
    p.epilogue = DCN_GEMM_NONE;
    p.out = DCNV4_FLOAT32;
    st = linear_kernel(ctx, &tile, idx64, &p, NULL, why, sizeof why);
    partial = p.linear;
  }
  if (st == DCNV4_SUCCESS) {
    p = *g;
    st = linear_kernel(ctx, c, idx64, &p, &reduce, why, sizeof why);
  }
  if (st == DCNV4_ERROR_BUILD_FAILED) {
    dcn_log(ctx, DCN_LOG_INFO, "linear: split-K %s; GEMMs run unsplit", why);
    return DCNV4_SUCCESS;
  }
  if (st != DCNV4_SUCCESS)
    return st;
  g->split.partial = partial;
  use_reduce(ctx, g, reduce);
  g->split.ksplit = c->ksplit;
  g->split.fill = c->fill;
  g->split.kmin = c->kmin;
  return DCNV4_SUCCESS;
}

/* fp32 storage: linear.cl as tuned, else CLBlast. */
static dcnv4_status prepare_f32(dcnv4_context *ctx, bool idx64, bool bias,
                                dcn_gemm_epilogue_kind kind, dcn_gemm *g) {
  dcn_linear_tuning cfgs[2];
  int n = dcn_tuning_linear(ctx, cfgs);
  for (int i = 0; i < n; i++) {
    if (cfgs[i].backend == 0)
      break;
    char why[200];
    dcnv4_status st =
        linear_kernel(ctx, &cfgs[i], idx64, g, NULL, why, sizeof why);
    if (st == DCNV4_SUCCESS) {
      g->own = true;
      return few_tile_kernels(ctx, &cfgs[i], idx64, g);
    }
    if (st != DCNV4_ERROR_BUILD_FAILED)
      return st;
    if (i + 1 < n)
      dcn_tuning_log_fallback(ctx, DCN_KERNEL_LINEAR, &cfgs[i], &cfgs[i + 1],
                              why);
    else
      dcn_log(ctx, DCN_LOG_INFO,
              "linear: linear.cl (tile %dx%dx%d, vec %d, local %zu) %s; "
              "using CLBlast",
              cfgs[i].tile_m, cfgs[i].tile_n, cfgs[i].tile_k, cfgs[i].max_vec,
              cfgs[i].local_size, why);
  }
  /* CLBlast, with the bias (and the epilogue) as a pass of its own. */
  if (kind != DCN_GEMM_NONE)
    return dcn_gemm_epilogue_kernel(ctx, kind, idx64, &g->post);
  if (bias)
    return dcn_layer_kernel(ctx, DCN_LK_BIAS_STORE, DCNV4_FLOAT32, 0, idx64,
                            &g->bias);
  return DCNV4_SUCCESS;
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Split-K of plan `p` (`tiles` work-groups) as `split` allows: into the
 * parts that bring about fill work-groups per compute unit, at most ksplit,
 * each at least kmin (whole tile_k chunks), run by split->partial; `p`
 * unchanged where that is fewer than 2 parts or the partial sums overflow
 * the indexing. */
static void split_k(const dcnv4_context *ctx, const dcn_gemm *g,
                    const dcn_gemm_split *split, uint64_t tiles, uint64_t m,
                    uint64_t n, uint64_t k, dcn_gemm_plan *p) {
  const uint64_t cu = ctx->compute_units ? ctx->compute_units : 1;
  const uint64_t chunk = (uint64_t)split->tile_k;
  const uint64_t kmin = ceil_div((uint64_t)split->kmin, chunk) * chunk;
  uint64_t parts = (uint64_t)split->fill * cu / tiles;
  if (parts > (uint64_t)split->ksplit)
    parts = (uint64_t)split->ksplit;
  if (parts > k / kmin)
    parts = k / kmin;
  if (parts < 2)
    return;
  /* Whole chunks per part; no part empty. */
  const uint64_t k_part = ceil_div(ceil_div(k, parts), chunk) * chunk;
  parts = ceil_div(k, k_part);
  uint64_t rows = 0, sums = 0;
  if (parts < 2 || !dcn_mul_u64(parts, m, &rows) ||
      !dcn_mul_u64(rows, n, &sums) || (!g->idx64 && sums > INT32_MAX))
    return;
  p->kernel = split->partial;
  p->parts = parts;
  p->k_part = k_part;
}

/* Tiles are sized for N*H*W in the hundred thousands. A GEMM with few tiles,
 * at most half as many as compute units (then at most one work-group per
 * unit, or none), takes the short tile where the tuning has one (H100,
 * layer forward 1x25x40x1024: 32 tiles of 256x128, 0.68 -> 0.37 ms with
 * 64-row tiles; at 104-250 tiles, e.g. 64x7x7x1024, 64-row tiles were
 * 10-25 % slower). Then, where its tiles are still fewer than `fill` per
 * compute unit, K is split into parts of at least `kmin` (whole chunks) so
 * that about fill work-groups per unit run, at most ksplit parts: small M
 * (FlashInternImage-T's 7x7 level at batch 1: 4 tiles over K 2048).
 * Without a short tile every GEMM may split; with one, only few-tile ones
 * (big tiles hold a compute unit each: splitting them adds waves). */
dcn_gemm_plan dcn_gemm_plan_for(const dcnv4_context *ctx, const dcn_gemm *g,
                                uint64_t m, uint64_t n, uint64_t k) {
  dcn_gemm_plan p = {g->linear, g->tile_m, g->tile_n, g->local, 1, k};
  if (g->mma) {
    /* The narrow class where built (the wide one serves every shape). */
    const dcn_gemm_mma_class *cls = &g->mma_class[DCN_GEMM_MMA_WIDE];
    if (n <= DCN_GEMM_NARROW_COLUMNS &&
        g->mma_class[DCN_GEMM_MMA_NARROW].tiling.kernel)
      cls = &g->mma_class[DCN_GEMM_MMA_NARROW];
    const dcn_gemm_mma *v = &cls->tiling;
    uint64_t tiles =
        ceil_div(m, (uint64_t)v->tile_m) * ceil_div(n, (uint64_t)v->tile_n);
    /* The small-launch tiling below small_below work-groups per unit. */
    const uint64_t cu = ctx->compute_units ? ctx->compute_units : 1;
    if (cls->small.kernel && tiles < (uint64_t)cls->small_below * cu) {
      v = &cls->small;
      tiles =
          ceil_div(m, (uint64_t)v->tile_m) * ceil_div(n, (uint64_t)v->tile_n);
    }
    p.kernel = v->kernel;
    p.tile_m = v->tile_m;
    p.tile_n = v->tile_n;
    p.local = v->local;
    /* Split where the tiles are fewer than fill per compute unit. */
    if (v->split.partial && g->reduce)
      split_k(ctx, g, &v->split, tiles, m, n, k, &p);
    return p;
  }
  if (!g->own)
    return p;
  const uint64_t cu = ctx->compute_units ? ctx->compute_units : 1;
  const uint64_t tiles_n = ceil_div(n, (uint64_t)g->tile_n);
  uint64_t tiles = ceil_div(m, (uint64_t)g->tile_m) * tiles_n;
  const bool few = 2 * tiles <= cu;
  if (g->linear_short && few) {
    p.kernel = g->linear_short;
    p.tile_m = g->short_m;
    tiles = ceil_div(m, (uint64_t)p.tile_m) * tiles_n;
  }
  if (g->reduce && !(g->linear_short && !few))
    split_k(ctx, g, &g->split, tiles, m, n, k, &p);
  return p;
}

/* The context's buffer of split-K partial sums, grown to `bytes`. */
static dcnv4_status partials_buffer(dcnv4_context *ctx, size_t bytes,
                                    const char *what) {
  if (ctx->gemm_partials_bytes >= bytes)
    return DCNV4_SUCCESS;
  cl_int err;
  cl_mem grown =
      dcn_clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (!grown)
    return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                    "GEMM %s: allocating %zu bytes for split-K partial sums "
                    "failed: %s",
                    what, bytes, dcn_cl_error_name(err));
  /* The old buffer lives on until commands already using it finish. */
  if (ctx->gemm_partials)
    clReleaseMemObject(ctx->gemm_partials);
  ctx->gemm_partials = grown;
  ctx->gemm_partials_bytes = bytes;
  return DCNV4_SUCCESS;
}

/* ------------------------------------------------ linear_mma.cl */

/* The warps of a tile_m x tile_n tile: wm x wn = local / 32 warps, each a
 * block of whole 16x16 pieces, as square as the tile allows (fewer, taller
 * warps on ties); false if none splits it. */
static bool mma_warps(int tile_m, int tile_n, int warps, int *wm, int *wn) {
  int best = -1;
  for (int m = 1; m <= warps; m++) {
    const int n = warps / m;
    if (warps % m || tile_m % (16 * m) || tile_n % (16 * n))
      continue;
    const int d = tile_m / m - tile_n / n, score = d < 0 ? -d : d;
    if (best < 0 || score < best) {
      best = score;
      *wm = m;
      *wn = n;
    }
  }
  return best >= 0;
}

/* Local memory of a configuration with wm warp rows (bytes), as
 * linear_mma.cl declares it: the ring of staged tiles (rows of tile_k + 8
 * 16-bit values, or tile_k with swizzle), at least one pass of the staged
 * epilogue (wm * 16 rows of tile_n + 8 floats), and the portable
 * fragments' exchange (6 words per lane). */
static cl_ulong mma_local_bytes(const dcn_linear_mma_tuning *c, int wm,
                                bool ptx) {
  const cl_ulong pitch = (cl_ulong)c->tile_k + (c->swizzle ? 0 : 8);
  cl_ulong ring =
      (cl_ulong)c->stages * (cl_ulong)(c->tile_m + c->tile_n) * pitch * 2;
  const cl_ulong pass = (cl_ulong)wm * 16 * ((cl_ulong)c->tile_n + 8) * 4;
  if (c->staged && pass > ring)
    ring = pass;
  return ring + (ptx ? 0 : (cl_ulong)c->local_size * 6 * 4);
}

/* Why a linear_mma configuration cannot run on the device, or NULL; fills
 * the warp grid. */
static const char *mma_unusable(const dcnv4_context *ctx,
                                const dcn_linear_mma_tuning *c, bool ptx,
                                int *wm, int *wn, char *why, size_t size) {
  const size_t local = c->local_size;
  if (local % 32 || local < 32 ||
      !mma_warps(c->tile_m, c->tile_n, (int)(local / 32), wm, wn)) {
    snprintf(why, size,
             "a %dx%d tile does not split into %zu work-items of whole "
             "warps (32) of 16x16 pieces",
             c->tile_m, c->tile_n, local);
    return why;
  }
  if (c->tile_k % 16 || c->stages < 2 || c->stages > 6) {
    snprintf(why, size, "tilek %d (a multiple of 16) or stages %d (2 to 6)",
             c->tile_k, c->stages);
    return why;
  }
  if (local > ctx->max_work_group_size) {
    snprintf(why, size, "work-groups of %zu items, more than the device's %zu",
             local, ctx->max_work_group_size);
    return why;
  }
  /* The ring is a static array: the PTX build may use what NVIDIA's
   * multiprocessors give one work-group beyond the reported size. */
  const cl_ulong bytes = mma_local_bytes(c, *wm, ptx);
  const cl_ulong limit = ptx ? ctx->static_local_bytes : ctx->local_mem_bytes;
  if (bytes > limit) {
    snprintf(why, size,
             "%llu bytes of local memory, more than the device's %llu",
             (unsigned long long)bytes, (unsigned long long)limit);
    return why;
  }
  return NULL;
}

/* Whether the device runs linear_mma.cl's PTX (ldmatrix, mma.sync with
 * bf16, cp.async: compute capability 8 or later). */
static bool mma_has_ptx(const dcnv4_context *ctx) {
  return ctx->vendor == DCN_VENDOR_NVIDIA && ctx->nv_compute_major >= 8;
}

/* Builds linear_mma.cl for configuration `c` into `out`: DCNV4_SUCCESS,
 * DCNV4_ERROR_BUILD_FAILED (also for a configuration the device cannot
 * run, with `why` set), or another failure to report. On devices with the
 * PTX, the tensor-core build first, then the portable one (*ptx tells). */
static dcnv4_status mma_kernel(dcnv4_context *ctx,
                               const dcn_linear_mma_tuning *c,
                               const dcn_gemm *g, dcn_gemm_mma *out, bool *ptx,
                               char *why, size_t size) {
  const bool try_ptx = mma_has_ptx(ctx);
  int wm = 0, wn = 0;
  /* The portable build needs more local memory: checked when it is the
   * one tried first, else only the PTX build's need. */
  if (mma_unusable(ctx, c, try_ptx, &wm, &wn, why, size))
    return DCNV4_ERROR_BUILD_FAILED;
  char portable[320], tensor[344];
  snprintf(portable, sizeof portable,
           "-DIDX64=%d -DDTYPE=%d -DOUT_DTYPE=%d -DEPILOGUE=%d -DTM=%d "
           "-DTN=%d -DTK=%d -DWM=%d -DWN=%d -DSTAGES=%d -DSWIZZLE=%d "
           "-DSTAGED=%d -DPREFETCH=%d -DRASTER=%d",
           g->idx64 ? 1 : 0, (int)g->dtype, (int)g->out, (int)g->epilogue,
           c->tile_m, c->tile_n, c->tile_k, wm, wn, c->stages, c->swizzle,
           c->staged, c->prefetch, c->raster);
  snprintf(tensor, sizeof tensor, "%s -DWARP_MMA_PTX=1", portable);
  const char *const list[] = {tensor, portable};
  /* The portable build's local memory was not checked on PTX devices. */
  const int count =
      try_ptx && mma_local_bytes(c, wm, false) <= ctx->local_mem_bytes ? 2 : 1;
  int chosen = 0;
  cl_kernel k;
  dcnv4_status st =
      try_ptx ? dcn_get_kernel_first(ctx, "linear_mma", list, count,
                                     "linear_mma", &k, &chosen)
              : dcn_get_kernel(ctx, "linear_mma", portable, "linear_mma", &k);
  if ((st = built_usable(ctx, st, k, c->local_size, why, size)))
    return st;
  memset(out, 0, sizeof *out);
  out->kernel = k;
  out->tile_m = c->tile_m;
  out->tile_n = c->tile_n;
  out->split.tile_k = c->tile_k;
  out->local = c->local_size;
  *ptx = try_ptx && chosen == 0;
  return DCNV4_SUCCESS;
}

/* linear_mma.cl built from `c` as g's other kernels were (tensor cores or
 * not) into `out`; DCNV4_ERROR_BUILD_FAILED with `why` where it was not. */
static dcnv4_status mma_kernel_like(dcnv4_context *ctx,
                                    const dcn_linear_mma_tuning *c,
                                    const dcn_gemm *g, dcn_gemm_mma *out,
                                    char *why, size_t size) {
  bool ptx = false;
  dcnv4_status st = mma_kernel(ctx, c, g, out, &ptx, why, size);
  if (st == DCNV4_SUCCESS && ptx != g->ptx) {
    snprintf(why, size, "built for other fragments than the GEMM's");
    st = DCNV4_ERROR_BUILD_FAILED;
  }
  return st;
}

/* Split-K for class `v` built from `c` (c->ksplit >= 2): v's tiling
 * without epilogue into fp32 partial sums, built as v was (tensor cores or
 * not), and g->reduce, linear.cl's linear_reduce for g's epilogue and
 * output (from the tuned linear.cl program, else the built-in). What does
 * not build is logged and left out: the GEMMs run unsplit. */
static dcnv4_status mma_split_kernels(dcnv4_context *ctx,
                                      const dcn_linear_mma_tuning *c,
                                      dcn_gemm *g, dcn_gemm_mma *v) {
  char why[200] = "";
  dcn_gemm p = *g;
  p.epilogue = DCN_GEMM_NONE;
  p.out = DCNV4_FLOAT32;
  dcn_gemm_mma part;
  dcnv4_status st = mma_kernel_like(ctx, c, &p, &part, why, sizeof why);
  if (st == DCNV4_SUCCESS && !g->reduce) {
    dcn_linear_tuning lc[2];
    const int n = dcn_tuning_linear(ctx, lc);
    cl_kernel reduce = NULL;
    st = DCNV4_ERROR_BUILD_FAILED;
    for (int i = 0; i < n && st == DCNV4_ERROR_BUILD_FAILED; i++) {
      dcn_gemm r = *g;
      st = linear_kernel(ctx, &lc[i], g->idx64, &r, &reduce, why, sizeof why);
    }
    /* only a configuration that built and is usable gives the reduction */
    if (st == DCNV4_SUCCESS)
      use_reduce(ctx, g, reduce);
  }
  if (st == DCNV4_ERROR_BUILD_FAILED) {
    dcn_log(ctx, DCN_LOG_INFO, "linear_mma: split-K %s; GEMMs run unsplit",
            why);
    return DCNV4_SUCCESS;
  }
  if (st != DCNV4_SUCCESS)
    return st;
  v->split.partial = part.kernel;
  v->split.ksplit = c->ksplit;
  v->split.fill = c->fill;
  v->split.kmin = c->kmin;
  return DCNV4_SUCCESS;
}

/* The few-work-group kernels of class `cls`, whose tiling `c` built: the
 * small-launch tiling where `c` has one (left out, logged, where it does
 * not build), then split-K's kernels for the tiling GEMMs with few tiles
 * run on (the small one where there is one; linear.cl's short tile
 * likewise). */
static dcnv4_status mma_few_tile_kernels(dcnv4_context *ctx,
                                         const dcn_linear_mma_tuning *c,
                                         dcn_gemm *g, dcn_gemm_mma_class *cls) {
  dcn_linear_mma_tuning small = *c;
  dcn_gemm_mma *few = &cls->tiling;
  if (c->small.below > 0 &&
      c->small.tile_m + c->small.tile_n + (int)c->small.local_size > 0) {
    if (c->small.tile_m)
      small.tile_m = c->small.tile_m;
    if (c->small.tile_n)
      small.tile_n = c->small.tile_n;
    if (c->small.local_size)
      small.local_size = c->small.local_size;
    char why[200] = "";
    dcnv4_status st =
        mma_kernel_like(ctx, &small, g, &cls->small, why, sizeof why);
    if (st == DCNV4_SUCCESS) {
      cls->small_below = c->small.below;
      few = &cls->small;
    } else if (st != DCNV4_ERROR_BUILD_FAILED)
      return st;
    else {
      memset(&cls->small, 0, sizeof cls->small);
      dcn_log(ctx, DCN_LOG_INFO,
              "linear_mma: the small-launch tiling (%dx%d, local %zu) %s; "
              "none",
              small.tile_m, small.tile_n, small.local_size, why);
      small = *c;
    }
  }
  return c->ksplit >= 2 ? mma_split_kernels(ctx, &small, g, few)
                        : DCNV4_SUCCESS;
}

/* 16-bit storage: linear_mma.cl for each shape class, the tuned
 * configuration or else the built-in one. */
static dcnv4_status prepare_mma(dcnv4_context *ctx, dcn_gemm *g) {
  static const int classes[DCN_GEMM_MMA_CLASSES] = {
      [DCN_GEMM_MMA_WIDE] = 0, [DCN_GEMM_MMA_NARROW] = DCN_GEMM_NARROW_COLUMNS};
  g->own = true;
  g->mma = true;
  for (int cls = 0; cls < DCN_GEMM_MMA_CLASSES; cls++) {
    dcn_linear_mma_tuning cfgs[2];
    const int n = dcn_tuning_linear_mma(ctx, g->dtype, classes[cls], cfgs);
    dcnv4_status st = DCNV4_ERROR_BUILD_FAILED;
    char why[200] = "";
    for (int i = 0; i < n && st == DCNV4_ERROR_BUILD_FAILED; i++) {
      bool ptx = false;
      st = mma_kernel(ctx, &cfgs[i], g, &g->mma_class[cls].tiling, &ptx, why,
                      sizeof why);
      if (st == DCNV4_SUCCESS) {
        g->ptx = ptx;
        st = mma_few_tile_kernels(ctx, &cfgs[i], g, &g->mma_class[cls]);
      } else if (st == DCNV4_ERROR_BUILD_FAILED && i + 1 < n)
        dcn_tuning_log_fallback(ctx, DCN_KERNEL_LINEAR_MMA, &cfgs[i],
                                &cfgs[i + 1], why);
    }
    if (st == DCNV4_ERROR_BUILD_FAILED)
      return dcn_fail(ctx, DCNV4_ERROR_BUILD_FAILED,
                      "GEMM on %s storage: linear_mma.cl (tile %dx%dx%d, "
                      "local %zu, stages %d) %s",
                      dcnv4_dtype_name(g->dtype), cfgs[n - 1].tile_m,
                      cfgs[n - 1].tile_n, cfgs[n - 1].tile_k,
                      cfgs[n - 1].local_size, cfgs[n - 1].stages, why);
    if (st != DCNV4_SUCCESS)
      return st;
  }
  return DCNV4_SUCCESS;
}

/* 16-bit storage without the tensor-core PTX: linear.cl widening its loads
 * (the portable linear_mma.cl fragments are several times slower on CPUs,
 * docs/perf-notes.md §35), the tuned "linear" tiles whatever their backend
 * (CLBlast has no 16-bit GEMM on every device); linear_mma.cl's portable
 * build if none builds. */
static dcnv4_status prepare_linear16(dcnv4_context *ctx, dcn_gemm *g) {
  dcn_linear_tuning cfgs[2];
  const int n = dcn_tuning_linear(ctx, cfgs);
  for (int i = 0; i < n; i++) {
    char why[200];
    dcnv4_status st =
        linear_kernel(ctx, &cfgs[i], g->idx64, g, NULL, why, sizeof why);
    if (st == DCNV4_SUCCESS) {
      g->own = true;
      return few_tile_kernels(ctx, &cfgs[i], g->idx64, g);
    }
    if (st != DCNV4_ERROR_BUILD_FAILED)
      return st;
    dcn_log(ctx, DCN_LOG_INFO,
            "linear: %s storage: linear.cl (tile %dx%dx%d, vec %d, local "
            "%zu) %s",
            dcnv4_dtype_name(g->dtype), cfgs[i].tile_m, cfgs[i].tile_n,
            cfgs[i].tile_k, cfgs[i].max_vec, cfgs[i].local_size, why);
  }
  return prepare_mma(ctx, g);
}

dcnv4_status dcn_gemm_prepare_spec(dcnv4_context *ctx,
                                   const dcn_gemm_spec *spec, dcn_gemm *g) {
  memset(g, 0, sizeof *g);
  const dcn_gemm_epilogue_kind kind = spec->epilogue;
  if (kind != DCN_GEMM_NONE && kind != DCN_GEMM_GELU &&
      kind != DCN_GEMM_RESIDUAL)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "GEMM: unknown epilogue %d", (int)kind);
  if (dcnv4_dtype_size(spec->dtype) == 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "GEMM: unknown storage dtype %d", (int)spec->dtype);
  if (spec->out != DCNV4_FLOAT32 && spec->out != spec->dtype)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "GEMM: output dtype %d with %s storage (fp32 or %s)",
                    (int)spec->out, dcnv4_dtype_name(spec->dtype),
                    dcnv4_dtype_name(spec->dtype));
  g->idx64 = spec->idx64;
  g->epilogue = kind;
  g->dtype = spec->dtype;
  g->out = spec->out;
  if (spec->dtype != DCNV4_FLOAT32)
    return spec->mma || mma_has_ptx(ctx) ? prepare_mma(ctx, g)
                                         : prepare_linear16(ctx, g);
  return prepare_f32(ctx, spec->idx64, spec->bias, kind, g);
}

dcnv4_status dcn_gemm_prepare(dcnv4_context *ctx, bool idx64, bool bias,
                              dcn_gemm *g) {
  return dcn_gemm_prepare_epilogue(ctx, idx64, bias, DCN_GEMM_NONE, g);
}

dcnv4_status dcn_gemm_prepare_epilogue(dcnv4_context *ctx, bool idx64,
                                       bool bias, dcn_gemm_epilogue_kind kind,
                                       dcn_gemm *g) {
  const dcn_gemm_spec spec = {DCNV4_FLOAT32, DCNV4_FLOAT32, kind, bias, idx64};
  return dcn_gemm_prepare_spec(ctx, &spec, g);
}

/* linear.cl or linear_mma.cl (their arguments are the same). */
static dcnv4_status own_linear(dcnv4_context *ctx, const dcn_gemm *g,
                               uint64_t m, uint64_t n, uint64_t k, cl_mem a,
                               cl_mem b, cl_mem bias, cl_mem c,
                               const dcn_gemm_epilogue *e, cl_event *event,
                               const char *what) {
  const dcn_gemm_plan p = dcn_gemm_plan_for(ctx, g, m, n, k);
  const uint64_t tiles_n = ceil_div(n, (uint64_t)p.tile_n);
  const uint64_t tiles_m = ceil_div(m, (uint64_t)p.tile_m);
  const bool split = p.parts > 1;
  uint64_t groups = 0, items = 0, quads = 0;
  size_t partial_bytes = 0;
  /* (split: the plan checked parts * m * n) */
  if (n > INT32_MAX || k > INT32_MAX || (!g->idx64 && m > INT32_MAX) ||
      !dcn_mul_u64(tiles_m, tiles_n, &groups) ||
      !dcn_mul_u64(groups, (uint64_t)p.local, &items) || items > SIZE_MAX ||
      (ctx->address_bits < 64 && items > 0xffffffffull) ||
      (split &&
       (!dcn_mul_u64(m, (n + 3) / 4, &quads) ||
        !dcn_bytes(p.parts * m * n, sizeof(cl_float), &partial_bytes))))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "GEMM %s (%llu x %llu x %llu) is too large for one launch",
                    what, (unsigned long long)m, (unsigned long long)n,
                    (unsigned long long)k);
  dcnv4_status st;
  if (split && (st = partials_buffer(ctx, partial_bytes, what)))
    return st;
  dcn_index_arg mm;
  const dcn_arg marg = dcn_index_arg_make(&mm, g->idx64, m);
  const cl_int nn = (cl_int)n, kk = (cl_int)k, has_bias = bias ? 1 : 0,
               no_bias = 0, k_part = (cl_int)p.k_part, parts = (cl_int)p.parts;
  cl_mem bias_arg = bias ? bias : b; /* not read without a bias */
  /* The residual epilogue accumulates into the residual, in c's place. */
  const bool res = g->epilogue == DCN_GEMM_RESIDUAL;
  cl_mem out = res ? e->residual : c;
  cl_mem scale_arg = res && e->scale ? e->scale : b;
  const cl_int has_scale = res && e->scale ? 1 : 0;
  /* Split: the parts' sums into the partials, without bias or epilogue. */
  cl_mem partials = ctx->gemm_partials;
  const dcn_arg args[] = {DCN_ARG(a),
                          DCN_ARG(b),
                          DCN_ARG(bias_arg),
                          split ? DCN_ARG(partials) : DCN_ARG(out),
                          marg,
                          DCN_ARG(nn),
                          DCN_ARG(kk),
                          split ? DCN_ARG(no_bias) : DCN_ARG(has_bias),
                          DCN_ARG(k_part),
                          DCN_ARG(scale_arg),
                          DCN_ARG(has_scale)};
  const size_t count = sizeof args / sizeof args[0] - (res && !split ? 0 : 2);
  if ((st = dcn_set_args(ctx, p.kernel, args, count, what)))
    return st;
  const size_t global[2] = {(size_t)items, (size_t)p.parts},
               local_size[2] = {p.local, 1};
  if (!split)
    return dcn_enqueue_nd(ctx, p.kernel, 1, global, local_size, 0, NULL, event,
                          what);
  if ((st = dcn_enqueue_nd(ctx, p.kernel, 2, global, local_size, 0, NULL, NULL,
                           what)))
    return st;
  const dcn_arg rargs[] = {DCN_ARG(partials), DCN_ARG(bias_arg),
                           DCN_ARG(out),      marg,
                           DCN_ARG(nn),       DCN_ARG(parts),
                           DCN_ARG(has_bias), DCN_ARG(scale_arg),
                           DCN_ARG(has_scale)};
  const size_t rcount = sizeof rargs / sizeof rargs[0] - (res ? 0 : 2);
  if ((st = dcn_set_args(ctx, g->reduce, rargs, rcount, what)))
    return st;
  return dcn_enqueue_1d(ctx, g->reduce, quads, g->reduce_local, 0, NULL, event,
                        what);
}

dcnv4_status dcn_gemm_linear(dcnv4_context *ctx, const dcn_gemm *g, uint64_t m,
                             uint64_t n, uint64_t k, cl_mem a, cl_mem b,
                             cl_mem bias, cl_mem c, cl_event *event,
                             const char *what) {
  return dcn_gemm_linear_epilogue(ctx, g, m, n, k, a, b, bias, c, NULL, event,
                                  what);
}

/* The epilogue's own checks: the kind `g` was prepared for, and the
 * residual and scale buffers. */
static dcnv4_status check_epilogue(dcnv4_context *ctx, const dcn_gemm *g,
                                   uint64_t m, uint64_t n, cl_mem a, cl_mem b,
                                   cl_mem bias, cl_mem c,
                                   const dcn_gemm_epilogue *e,
                                   const char *what) {
  const dcn_gemm_epilogue_kind kind = e ? e->kind : DCN_GEMM_NONE;
  if (kind != g->epilogue)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "GEMM %s: epilogue %d, but prepared for %d", what,
                    (int)kind, (int)g->epilogue);
  if (kind != DCN_GEMM_RESIDUAL)
    return DCNV4_SUCCESS;
  uint64_t elems = 0;
  size_t bytes = 0, n_bytes = 0;
  if (n > INT32_MAX || !dcn_mul_u64(m, n, &elems) ||
      !dcn_bytes(elems, dcnv4_dtype_size(g->out), &bytes) ||
      !dcn_bytes(n, sizeof(cl_float), &n_bytes))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "GEMM %s: %llu x %llu overflows", what,
                    (unsigned long long)m, (unsigned long long)n);
  dcnv4_status st;
  if ((st = dcn_check_buffer(ctx, e->residual, "GEMM residual", bytes)) ||
      (e->scale && (st = dcn_check_buffer(ctx, e->scale, "GEMM residual scale",
                                          n_bytes))) ||
      (!g->own && (st = dcn_check_buffer(ctx, c, "GEMM scratch", bytes))))
    return st;
  if (e->residual == a || e->residual == b || e->residual == bias ||
      e->residual == e->scale || e->residual == c)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                    "GEMM %s: the residual is also an operand", what);
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_gemm_linear_epilogue(dcnv4_context *ctx, const dcn_gemm *g,
                                      uint64_t m, uint64_t n, uint64_t k,
                                      cl_mem a, cl_mem b, cl_mem bias, cl_mem c,
                                      const dcn_gemm_epilogue *e,
                                      cl_event *event, const char *what) {
  if (m == 0 || n == 0 || k == 0 || m > SIZE_MAX || n > SIZE_MAX ||
      k > SIZE_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "GEMM %s: invalid size %llu x %llu x %llu", what,
                    (unsigned long long)m, (unsigned long long)n,
                    (unsigned long long)k);
  dcnv4_status st = check_epilogue(ctx, g, m, n, a, b, bias, c, e, what);
  if (st != DCNV4_SUCCESS)
    return st;
  if (g->own)
    return own_linear(ctx, g, m, n, k, a, b, bias, c, e, event, what);
  const bool post = g->epilogue != DCN_GEMM_NONE;
  if (bias && !post && !g->bias)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "GEMM %s: a bias without a prepared bias pass", what);
  CLBlastStatusCode s;
  for (int attempt = 0;; attempt++) {
    if (DCN_FAULT("CLBlastSgemm"))
      s = CLBlastOpenCLOutOfResources;
    else
      s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                       CLBlastTransposeYes, (size_t)m, (size_t)n, (size_t)k,
                       1.0f, a, 0, (size_t)k, b, 0, (size_t)k, 0.0f, c, 0,
                       (size_t)n, &ctx->queue, bias || post ? NULL : event);
    if (s == CLBlastSuccess || attempt > 0 || !ctx->gemm_tuned ||
        s == CLBlastOpenCLOutOfResources || s == CLBlastOpenCLOutOfHostMemory)
      break;
    dcn_log(ctx, DCN_LOG_INFO,
            "CLBlast SGEMM (%s) with the tuning file's parameters failed: "
            "%s (%d); falling back to conservative parameters",
            what, clblast_status_name(s), (int)s);
    gemm_untune(ctx);
  }
  if (s != CLBlastSuccess)
    return dcn_fail(ctx,
                    s == CLBlastOpenCLOutOfHostMemory
                        ? DCNV4_ERROR_OUT_OF_HOST_MEMORY
                        : DCNV4_ERROR_OPENCL,
                    "CLBlast SGEMM (%s, %llu x %llu x %llu) failed: %s (%d)",
                    what, (unsigned long long)m, (unsigned long long)n,
                    (unsigned long long)k, clblast_status_name(s), (int)s);
  if (!bias && !post)
    return DCNV4_SUCCESS;
  if (n > INT32_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW, "GEMM %s: %llu columns",
                    what, (unsigned long long)n);
  if (post)
    return dcn_run_gemm_epilogue(ctx, g->post, g->epilogue, g->idx64, c, bias,
                                 e->residual, e->scale, m, (int32_t)n, event);
  return dcn_run_bias_store(ctx, g->bias, g->idx64, c, bias, c, m, (int32_t)n,
                            event);
}

dcnv4_status dcnv4_linear_forward(dcnv4_context *ctx, uint64_t rows,
                                  int32_t out_features, int32_t in_features,
                                  cl_mem input, cl_mem weight, cl_mem bias,
                                  cl_mem output, cl_uint num_wait,
                                  const cl_event *wait, cl_event *event) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (rows < 1 || out_features < 1 || in_features < 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "linear: rows %llu, out_features %d, in_features %d; "
                    "each must be at least 1",
                    (unsigned long long)rows, (int)out_features,
                    (int)in_features);
  const uint64_t n = (uint64_t)out_features, k = (uint64_t)in_features;
  uint64_t in_elems = 0, out_elems = 0;
  size_t in_bytes = 0, out_bytes = 0, w_bytes = 0, b_bytes = 0;
  if (!dcn_mul_u64(rows, k, &in_elems) || !dcn_mul_u64(rows, n, &out_elems) ||
      !dcn_bytes(in_elems, sizeof(cl_float), &in_bytes) ||
      !dcn_bytes(out_elems, sizeof(cl_float), &out_bytes) ||
      !dcn_bytes(n * k, sizeof(cl_float), &w_bytes) ||
      !dcn_bytes(n, sizeof(cl_float), &b_bytes))
    return dcn_fail(
        ctx, DCNV4_ERROR_SIZE_OVERFLOW, "linear: %llu x %d x %d overflows",
        (unsigned long long)rows, (int)out_features, (int)in_features);
  dcnv4_status st;
  if ((st = dcn_check_wait_list(ctx, num_wait, wait)) ||
      (st = dcn_check_buffer(ctx, input, "input", in_bytes)) ||
      (st = dcn_check_buffer(ctx, weight, "weight", w_bytes)) ||
      (bias && (st = dcn_check_buffer(ctx, bias, "bias", b_bytes))) ||
      (st = dcn_check_buffer(ctx, output, "output", out_bytes)))
    return st;
  const cl_mem bufs[] = {output, input, weight, bias};
  const char *const names[] = {"output", "input", "weight", "bias"};
  const bool readonly[] = {false, true, true, true};
  if ((st = dcn_check_no_alias(ctx, bufs, names, readonly, bias ? 4 : 3)))
    return st;
  const uint64_t widest = in_elems > out_elems ? in_elems : out_elems;
  dcn_gemm g;
  if ((st = dcn_gemm_prepare(ctx, widest >= ((uint64_t)1 << 31), bias != NULL,
                             &g)))
    return st;
  if (num_wait > 0) {
    cl_int err =
        dcn_clEnqueueBarrierWithWaitList(ctx->queue, num_wait, wait, NULL);
    if (err != CL_SUCCESS)
      return dcn_fail_cl(ctx, err, "clEnqueueBarrierWithWaitList");
  }
  return dcn_gemm_linear(ctx, &g, rows, n, k, input, weight, bias, output,
                         event, "linear");
}

/* A parameter of a set by name; -1 if absent. */
static long gemm_param(const dcn_gemm_entry *e, const char *name) {
  for (size_t i = 0; i < e->count; i++)
    if (!strcmp(e->names[i], name))
      return (long)e->values[i];
  return -1;
}

static bool divides(long x, long y) { return y > 0 && x >= 0 && x % y == 0; }

/* Why the device cannot run a parameter set (CLBlast's tuner constraints,
 * the work-group and local-memory limits), or NULL. */
static const char *gemm_unusable(const dcnv4_context *ctx,
                                 const dcn_gemm_entry *e, char *why,
                                 size_t size) {
  bool direct = !strcmp(e->kernel, "XgemmDirect");
  const char *const xnames[] = {"MWG",   "NWG",   "KWG",   "MDIMC",
                                "NDIMC", "MDIMA", "NDIMB", "KWI",
                                "VWM",   "VWN",   "SA",    "SB"};
  const char *const dnames[] = {"WGD",  "MDIMCD", "NDIMCD", "MDIMAD", "NDIMBD",
                                "KWID", "VWMD",   "VWND",   "PADA",   "PADB"};
  long v[12];
  size_t n = direct ? 10 : 12;
  for (size_t i = 0; i < n; i++)
    if ((v[i] = gemm_param(e, direct ? dnames[i] : xnames[i])) < 0) {
      snprintf(why, size, "parameter %s missing",
               direct ? dnames[i] : xnames[i]);
      return why;
    }
  long wg, local, mw, nw, kw, mdc, ndc, mda, ndb, kwi, vwm, vwn;
  if (direct) {
    mw = nw = kw = v[0];
    mdc = v[1], ndc = v[2], mda = v[3], ndb = v[4], kwi = v[5], vwm = v[6],
    vwn = v[7];
    local = 4 * (v[0] * (v[0] + v[8]) + v[0] * (v[0] + v[9]));
  } else {
    mw = v[0], nw = v[1], kw = v[2], mdc = v[3], ndc = v[4], mda = v[5],
    ndb = v[6], kwi = v[7], vwm = v[8], vwn = v[9];
    local = 4 * (v[10] * kw * mw + v[11] * kw * nw);
  }
  wg = mdc * ndc;
  if (!divides(kw, kwi) || !divides(mw, mdc * vwm) || !divides(nw, ndc * vwn) ||
      !divides(mw, mda * vwm) || !divides(nw, ndb * vwn) || mda <= 0 ||
      ndb <= 0 || !divides(kw, wg / mda) || !divides(kw, wg / ndb))
    snprintf(why, size, "the tile sizes do not divide as CLBlast requires");
  else if ((size_t)wg > ctx->max_work_group_size)
    snprintf(why, size, "work-groups of %ld items, more than the device's %zu",
             wg, ctx->max_work_group_size);
  else if ((cl_ulong)local > ctx->local_mem_bytes)
    snprintf(why, size,
             "%ld bytes of local memory, more than the device's %llu", local,
             (unsigned long long)ctx->local_mem_bytes);
  else
    return NULL;
  return why;
}

/* Conservative sets (64 work-items, little or no local memory) that replace
 * a tuned set CLBlast fails with at run time: CLBlast cannot forget an
 * override, so its own defaults cannot be restored. */
static const dcn_gemm_entry safe_sets[] = {
    {"Xgemm",
     16,
     {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB", "NDIMC",
      "NWG", "SA", "SB", "STRM", "STRN", "VWM", "VWN"},
     {0, 1, 16, 1, 8, 8, 32, 8, 8, 32, 0, 0, 0, 0, 1, 1}},
    {"XgemmDirect",
     10,
     {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD",
      "VWND", "WGD"},
     {1, 8, 8, 8, 8, 1, 1, 1, 1, 8}},
};

static CLBlastStatusCode override(dcnv4_context *ctx, const dcn_gemm_entry *e) {
  const char *names[DCN_GEMM_MAX_PARAMS];
  for (size_t j = 0; j < e->count; j++)
    names[j] = e->names[j];
  return CLBlastOverrideParameters(ctx->device, e->kernel,
                                   CLBlastPrecisionSingle, e->count, names,
                                   e->values);
}

static void gemm_untune(dcnv4_context *ctx) {
  for (size_t i = 0; i < sizeof safe_sets / sizeof safe_sets[0]; i++)
    if (ctx->gemm_tuned_kernels & (1u << i))
      (void) override(ctx, &safe_sets[i]);
  CLBlastClearCache();
  ctx->gemm_tuned = false;
  ctx->gemm_tuned_kernels = 0;
}

void dcn_linear_apply_file_tuning(dcnv4_context *ctx) {
  int applied = 0;
  for (size_t i = 0; i < ctx->gemm_entry_count; i++) {
    const dcn_gemm_entry *e = &ctx->gemm_entries[i];
    char why[160];
    size_t known = sizeof safe_sets / sizeof safe_sets[0];
    for (size_t k = 0; k < sizeof safe_sets / sizeof safe_sets[0]; k++)
      if (!strcmp(safe_sets[k].kernel, e->kernel))
        known = k;
    if (known == sizeof safe_sets / sizeof safe_sets[0]) {
      dcn_log(ctx, DCN_LOG_INFO,
              "CLBlast kernel %s of the tuning file is not one the library "
              "tunes (Xgemm, XgemmDirect); not applied",
              e->kernel);
      continue;
    }
    if (gemm_unusable(ctx, e, why, sizeof why)) {
      dcn_log(ctx, DCN_LOG_INFO,
              "CLBlast %s parameters from the tuning file cannot run on this "
              "device (%s); CLBlast's defaults stay",
              e->kernel, why);
      continue;
    }
    CLBlastStatusCode s = override(ctx, e);
    if (s == CLBlastSuccess) {
      applied++;
      ctx->gemm_tuned_kernels |= 1u << known;
    }
    dcn_log(ctx, s == CLBlastSuccess ? DCN_LOG_DEBUG : DCN_LOG_INFO,
            "CLBlast %s parameters from the tuning file: %s (%d)", e->kernel,
            s == CLBlastSuccess ? "applied"
                                : "refused, CLBlast's defaults stay",
            (int)s);
  }
  ctx->gemm_tuned = applied > 0;
}
