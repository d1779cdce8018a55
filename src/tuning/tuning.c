/* Launch parameters: each kernel's typed parameters, the built-in table
 * (vendor -> architecture -> device, a default at each level), merged with
 * the tuning file's entries and the per-context override. */
#include "tuning/tuning.h"

#include <CL/cl_ext.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------- parameters of each kernel */

static const char *const param_names[DCN_TUNING_PARAMS] = {
    [DCN_PARAM_VEC] = "vec",
    [DCN_PARAM_LOCAL] = "local",
    [DCN_PARAM_STAGE] = "stage",
    [DCN_PARAM_SPLIT] = "split",
    [DCN_PARAM_UNROLL] = "unroll",
    [DCN_PARAM_SPECIALIZE] = "specialize",
    [DCN_PARAM_ROWS] = "rows",
    [DCN_PARAM_BACKEND] = "backend",
    [DCN_PARAM_TILE_M] = "tilem",
    [DCN_PARAM_TILE_N] = "tilen",
    [DCN_PARAM_TILE_K] = "tilek",
    [DCN_PARAM_HALO] = "halo",
    [DCN_PARAM_MAX_REGS] = "regs",
    [DCN_PARAM_GROUPS] = "groups",
    [DCN_PARAM_PIECES] = "pieces",
    [DCN_PARAM_SHORT_M] = "shortm",
    [DCN_PARAM_KSPLIT] = "ksplit",
    [DCN_PARAM_FILL] = "fill",
    [DCN_PARAM_KMIN] = "kmin",
    [DCN_PARAM_STAGES] = "stages",
    [DCN_PARAM_SMALL] = "small",
    [DCN_PARAM_SMALL_LOCAL] = "smalllocal",
    [DCN_PARAM_SMALL_VEC] = "smallvec",
    [DCN_PARAM_SMALL_PIECES] = "smallpieces",
    [DCN_PARAM_SMALL_REGS] = "smallregs",
    [DCN_PARAM_SWIZZLE] = "swizzle",
    [DCN_PARAM_STAGED] = "staged",
    [DCN_PARAM_PREFETCH] = "prefetch",
    [DCN_PARAM_RASTER] = "raster",
    [DCN_PARAM_SMALL_TILE_M] = "smalltilem",
    [DCN_PARAM_SMALL_TILE_N] = "smalltilen",
    [DCN_PARAM_KERNEL] = "kernel",
};

/* A parameter a kernel takes: its accepted values and its field in the
 * kernel's typed struct (int, or size_t where `is_size`). Meanings: the
 * typed structs of tuning_types.h and docs/tuning.md §3. */
typedef struct param_spec {
  dcn_tuning_param param;
  long min, max;
  bool power_of_two;
  size_t offset;
  bool is_size;
  /* values in min..max that are refused (bit v), and the accepted values
   * said in words, for parameters whose range has gaps */
  unsigned long gaps;
  const char *accepted;
} param_spec;

typedef struct kernel_spec {
  const char *name;
  const param_spec *params; /* in the order of dcn_tuning_param */
  size_t count;
  size_t source_offset;
} kernel_spec;

#define INT(type, field, param, lo, hi, pow2)                                  \
  { (param), (lo), (hi), (pow2), offsetof(type, field), false, 0, NULL }
#define INT_GAPS(type, field, param, lo, hi, gaps, accepted)                   \
  {                                                                            \
    (param), (lo), (hi), false, offsetof(type, field), false, (gaps),          \
        (accepted)                                                             \
  }
#define SIZE(type, field, param, lo)                                           \
  { (param), (lo), 4096, false, offsetof(type, field), true, 0, NULL }
#define LOCAL(type) SIZE(type, local_size, DCN_PARAM_LOCAL, 1)
#define VEC(type) INT(type, max_vec, DCN_PARAM_VEC, 1, 8, true)
#define SWITCH(type, field, param) INT(type, field, param, 0, 1, false)
#define REGS(type) INT(type, max_regs, DCN_PARAM_MAX_REGS, 0, 255, false)
/* The small-launch values (dcn_small_tuning; 0 keeps the tuned value):
 * below, local and vec, then (DCNv4) pieces, then regs. */
#define SMALL(type)                                                            \
  INT(type, small.below, DCN_PARAM_SMALL, 0, 1024, false),                     \
      SIZE(type, small.local_size, DCN_PARAM_SMALL_LOCAL, 0),                  \
      INT(type, small.max_vec, DCN_PARAM_SMALL_VEC, 0, 8, true)
#define SMALL_REGS(type)                                                       \
  INT(type, small.max_regs, DCN_PARAM_SMALL_REGS, 0, 255, false)

typedef dcn_dcnv4_forward_tuning dcnv4_fwd;
/* stage: 0 (every GPU's) or 3 (CPUs'); stages 1, 2 and 4 were no device's
 * default and were removed in 0.2.0 (docs/perf-notes.md §14, §15, §17). */
static const param_spec dcnv4_forward_params[] = {
    VEC(dcnv4_fwd),
    LOCAL(dcnv4_fwd),
    INT_GAPS(dcnv4_fwd, stage, DCN_PARAM_STAGE, 0, 3, (1ul << 1) | (1ul << 2),
             "0 or 3; stages 1, 2 and 4 were removed"),
    SWITCH(dcnv4_fwd, unroll, DCN_PARAM_UNROLL),
    SWITCH(dcnv4_fwd, specialize, DCN_PARAM_SPECIALIZE),
    INT(dcnv4_fwd, rows, DCN_PARAM_ROWS, 1, 16, false),
    REGS(dcnv4_fwd),
    INT(dcnv4_fwd, groups, DCN_PARAM_GROUPS, 0, 64, false),
    INT(dcnv4_fwd, pieces, DCN_PARAM_PIECES, 1, 4, true),
    SMALL(dcnv4_fwd),
    INT(dcnv4_fwd, small.pieces, DCN_PARAM_SMALL_PIECES, 0, 4, true),
    SMALL_REGS(dcnv4_fwd),
};

typedef dcn_dcnv4_backward_tuning dcnv4_bwd;
static const param_spec dcnv4_backward_params[] = {
    VEC(dcnv4_bwd),
    LOCAL(dcnv4_bwd),
    SWITCH(dcnv4_bwd, split, DCN_PARAM_SPLIT),
    SWITCH(dcnv4_bwd, unroll, DCN_PARAM_UNROLL),
    SWITCH(dcnv4_bwd, specialize, DCN_PARAM_SPECIALIZE),
    INT(dcnv4_bwd, rows, DCN_PARAM_ROWS, 1, 16, false),
    INT(dcnv4_bwd, halo, DCN_PARAM_HALO, 0, 8, false),
    REGS(dcnv4_bwd),
};

typedef dcn_fda_forward_tuning fda_fwd;
static const param_spec fda_forward_params[] = {
    VEC(fda_fwd),
    LOCAL(fda_fwd),
    INT(fda_fwd, stage, DCN_PARAM_STAGE, 0, 2, false),
    SWITCH(fda_fwd, specialize, DCN_PARAM_SPECIALIZE),
    REGS(fda_fwd),
    INT(fda_fwd, groups, DCN_PARAM_GROUPS, 0, 64, false),
    SMALL(fda_fwd),
    SMALL_REGS(fda_fwd),
};

typedef dcn_fda_backward_tuning fda_bwd;
static const param_spec fda_backward_params[] = {
    VEC(fda_bwd),
    LOCAL(fda_bwd),
    SWITCH(fda_bwd, split, DCN_PARAM_SPLIT),
    SWITCH(fda_bwd, specialize, DCN_PARAM_SPECIALIZE),
    REGS(fda_bwd),
};

typedef dcn_dcnv4_backward_deterministic_tuning dcnv4_det;
static const param_spec dcnv4_det_params[] = {
    LOCAL(dcnv4_det),
    SWITCH(dcnv4_det, unroll, DCN_PARAM_UNROLL),
    SWITCH(dcnv4_det, specialize, DCN_PARAM_SPECIALIZE),
    REGS(dcnv4_det),
};

typedef dcn_fda_backward_deterministic_tuning fda_det;
static const param_spec fda_det_params[] = {
    LOCAL(fda_det),
    SWITCH(fda_det, specialize, DCN_PARAM_SPECIALIZE),
    REGS(fda_det),
};

static const param_spec layer_params[] = {LOCAL(dcn_layer_tuning)};

typedef dcn_linear_tuning linear_t;
static const param_spec linear_params[] = {
    VEC(linear_t),
    LOCAL(linear_t),
    SWITCH(linear_t, unroll, DCN_PARAM_UNROLL),
    SWITCH(linear_t, backend, DCN_PARAM_BACKEND),
    INT(linear_t, tile_m, DCN_PARAM_TILE_M, 4, 256, true),
    INT(linear_t, tile_n, DCN_PARAM_TILE_N, 4, 256, true),
    INT(linear_t, tile_k, DCN_PARAM_TILE_K, 4, 64, true),
    {DCN_PARAM_SHORT_M, 0, 256, true, offsetof(linear_t, short_m), false,
     (1ul << 1) | (1ul << 2), "0, or a power of two from 4 to 256"},
    INT(linear_t, ksplit, DCN_PARAM_KSPLIT, 1, 64, false),
    INT(linear_t, fill, DCN_PARAM_FILL, 1, 16, false),
    INT(linear_t, kmin, DCN_PARAM_KMIN, 4, 8192, true),
};

/* Tiles of whole m16n8k16 fragments per warp: linear.c checks that the
 * tile splits into the work-group's warps. */
typedef dcn_linear_mma_tuning linear_mma_t;
static const param_spec linear_mma_params[] = {
    LOCAL(linear_mma_t),
    INT(linear_mma_t, tile_m, DCN_PARAM_TILE_M, 16, 256, true),
    INT(linear_mma_t, tile_n, DCN_PARAM_TILE_N, 16, 256, true),
    INT(linear_mma_t, tile_k, DCN_PARAM_TILE_K, 16, 64, true),
    INT(linear_mma_t, ksplit, DCN_PARAM_KSPLIT, 1, 64, false),
    INT(linear_mma_t, fill, DCN_PARAM_FILL, 1, 16, false),
    INT(linear_mma_t, kmin, DCN_PARAM_KMIN, 4, 8192, true),
    INT(linear_mma_t, stages, DCN_PARAM_STAGES, 2, 6, false),
    INT(linear_mma_t, small.below, DCN_PARAM_SMALL, 0, 1024, false),
    SIZE(linear_mma_t, small.local_size, DCN_PARAM_SMALL_LOCAL, 0),
    SWITCH(linear_mma_t, swizzle, DCN_PARAM_SWIZZLE),
    SWITCH(linear_mma_t, staged, DCN_PARAM_STAGED),
    SWITCH(linear_mma_t, prefetch, DCN_PARAM_PREFETCH),
    INT(linear_mma_t, raster, DCN_PARAM_RASTER, 0, 64, false),
    INT(linear_mma_t, small.tile_m, DCN_PARAM_SMALL_TILE_M, 0, 256, true),
    INT(linear_mma_t, small.tile_n, DCN_PARAM_SMALL_TILE_N, 0, 256, true),
};
static const param_spec zero_params[] = {
    LOCAL(dcn_zero_tuning),
    SWITCH(dcn_zero_tuning, kernel, DCN_PARAM_KERNEL),
};

#define KERNEL(name, params, type)                                             \
  {                                                                            \
    (name), (params), sizeof(params) / sizeof(params)[0],                      \
        offsetof(type, source)                                                 \
  }

static const kernel_spec kernels[DCN_KERNEL_COUNT] = {
    [DCN_KERNEL_DCNV4_FORWARD] =
        KERNEL("dcnv4_forward", dcnv4_forward_params, dcnv4_fwd),
    [DCN_KERNEL_DCNV4_BACKWARD] =
        KERNEL("dcnv4_backward", dcnv4_backward_params, dcnv4_bwd),
    [DCN_KERNEL_FDA_FORWARD] =
        KERNEL("fda_forward", fda_forward_params, fda_fwd),
    [DCN_KERNEL_FDA_BACKWARD] =
        KERNEL("fda_backward", fda_backward_params, fda_bwd),
    [DCN_KERNEL_LAYER_ELEMENTWISE] =
        KERNEL("layer_elementwise", layer_params, dcn_layer_tuning),
    [DCN_KERNEL_LAYER_DWCONV] =
        KERNEL("layer_dwconv", layer_params, dcn_layer_tuning),
    [DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC] =
        KERNEL("dcnv4_backward_deterministic", dcnv4_det_params, dcnv4_det),
    [DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC] =
        KERNEL("fda_backward_deterministic", fda_det_params, fda_det),
    [DCN_KERNEL_LINEAR] = KERNEL("linear", linear_params, linear_t),
    [DCN_KERNEL_LINEAR_MMA] =
        KERNEL("linear_mma", linear_mma_params, linear_mma_t),
    [DCN_KERNEL_ZERO] = KERNEL("zero", zero_params, dcn_zero_tuning),
};

const char *dcn_kernel_name(dcn_kernel_id kernel) {
  return kernel < DCN_KERNEL_COUNT ? kernels[kernel].name : "?";
}

int dcn_kernel_from_name(const char *name) {
  for (int i = 0; i < DCN_KERNEL_COUNT; i++)
    if (!strcmp(name, kernels[i].name))
      return i;
  return -1;
}

const char *dcn_tuning_param_name(dcn_tuning_param param) {
  return param < DCN_TUNING_PARAMS ? param_names[param] : "?";
}

static long get_value(const param_spec *p, const void *cfg) {
  const char *base = (const char *)cfg + p->offset;
  if (p->is_size)
    return (long)*(const size_t *)(const void *)base;
  return *(const int *)(const void *)base;
}

static void set_value(const param_spec *p, void *cfg, long value) {
  char *base = (char *)cfg + p->offset;
  if (p->is_size)
    *(size_t *)(void *)base = (size_t)value;
  else
    *(int *)(void *)base = (int)value;
}

static dcn_tuning_layer *source_of(dcn_kernel_id kernel, void *cfg) {
  return (dcn_tuning_layer *)(void *)((char *)cfg +
                                      kernels[kernel].source_offset);
}

/* The spec of `param` in `kernel`, or NULL where the kernel does not take
 * it. */
static const param_spec *find_param(dcn_kernel_id kernel,
                                    dcn_tuning_param param) {
  for (size_t i = 0; i < kernels[kernel].count; i++)
    if (kernels[kernel].params[i].param == param)
      return &kernels[kernel].params[i];
  return NULL;
}

int dcn_tuning_check(dcn_kernel_id kernel, const char *param, long value,
                     char *why, size_t why_size) {
  int which = -1;
  for (int i = 0; i < DCN_TUNING_PARAMS && which < 0; i++)
    if (!strcmp(param, param_names[i]))
      which = i;
  const kernel_spec *k = &kernels[kernel];
  const param_spec *p =
      which < 0 ? NULL : find_param(kernel, (dcn_tuning_param)which);
  if (!p) {
    /* Name what the kernel takes, so a misplaced parameter is obvious. */
    int n = snprintf(why, why_size, "%s %s \"%s\" (it takes", k->name,
                     which < 0 ? "has no parameter" : "does not take", param);
    for (size_t i = 0; i < k->count && n > 0 && (size_t)n < why_size; i++)
      n += snprintf(why + n, why_size - (size_t)n, "%s %s", i ? "," : "",
                    param_names[k->params[i].param]);
    if (n > 0 && (size_t)n < why_size)
      snprintf(why + n, why_size - (size_t)n, ")");
    return -1;
  }
  bool in_range = value >= p->min && value <= p->max;
  if (in_range && value - p->min < 64 &&
      (p->gaps >> (unsigned)(value - p->min)) & 1ul)
    in_range = false;
  if (!in_range || (p->power_of_two && (value & (value - 1)) != 0)) {
    if (p->accepted)
      snprintf(why, why_size, "%s.%s=%ld is not accepted (%s)", k->name, param,
               value, p->accepted);
    else
      snprintf(why, why_size, "%s.%s=%ld is out of range (%ld to %ld%s)",
               k->name, param, value, p->min, p->max,
               p->power_of_two ? ", a power of two" : "");
    return -1;
  }
  return which;
}

bool dcn_tuning_parse(const char *text, dcn_tuning_override *out, char *why,
                      size_t why_size) {
  memset(out, 0, sizeof *out);
  const char *p = text;
  while (p && *p) {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char entry[128], kernel[64], param[32], reason[200] = "not kernel.param=N";
    long value = 0;
    char extra;
    snprintf(entry, sizeof entry, "%.*s", (int)(len < 127 ? len : 127), p);
    int k = -1, which = -1;
    if (len < 127 && sscanf(entry, "%63[a-z0-9_].%31[a-z]=%ld%c", kernel, param,
                            &value, &extra) == 3) {
      k = dcn_kernel_from_name(kernel);
      if (k < 0)
        snprintf(reason, sizeof reason, "unknown kernel \"%s\"", kernel);
      else
        which = dcn_tuning_check((dcn_kernel_id)k, param, value, reason,
                                 sizeof reason);
    }
    if (which < 0) {
      snprintf(why, why_size, "bad tuning entry \"%s\": %s", entry, reason);
      return false;
    }
    out->value[k][which] = value;
    out->set[k][which] = true;
    p = end ? end + 1 : NULL;
  }
  return true;
}

/* ------------------------------------------------ the built-in table */

#define ROW(kernel, member, half_only, group_channels, ...)                    \
  {                                                                            \
    (kernel), (half_only), (group_channels), {                                 \
      .member = { __VA_ARGS__ }                                                \
    }                                                                          \
  }
#define DCNV4_FORWARD(half_only, gc, ...)                                      \
  ROW(DCN_KERNEL_DCNV4_FORWARD, dcnv4_forward, half_only, gc, __VA_ARGS__)
#define DCNV4_BACKWARD(gc, ...)                                                \
  ROW(DCN_KERNEL_DCNV4_BACKWARD, dcnv4_backward, 0, gc, __VA_ARGS__)
#define FDA_FORWARD(half_only, ...)                                            \
  ROW(DCN_KERNEL_FDA_FORWARD, fda_forward, half_only, 0, __VA_ARGS__)
#define FDA_BACKWARD(...)                                                      \
  ROW(DCN_KERNEL_FDA_BACKWARD, fda_backward, 0, 0, __VA_ARGS__)
#define DCNV4_DETERMINISTIC(...)                                               \
  ROW(DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC, dcnv4_backward_deterministic,   \
      0, 0, __VA_ARGS__)
#define FDA_DETERMINISTIC(...)                                                 \
  ROW(DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC, fda_backward_deterministic, 0, 0, \
      __VA_ARGS__)
/* Layer kernels: one element per work-item, only the work-group size. */
#define LAYER(elementwise, dwconv)                                             \
  ROW(DCN_KERNEL_LAYER_ELEMENTWISE, layer, 0, 0, .local_size = (elementwise)), \
      ROW(DCN_KERNEL_LAYER_DWCONV, layer, 0, 0, .local_size = (dwconv))
/* The GEMM: tiles, then how GEMMs with few tiles run (short tile rows,
 * split-K parts at most, work-groups per compute unit aimed at, k per part
 * at least). */
#define LINEAR(backend_, tm, tn, tk, vec, local, unroll_, shortm, ksplit_,     \
               fill_, kmin_)                                                   \
  ROW(DCN_KERNEL_LINEAR, linear, 0, 0, .backend = (backend_), .tile_m = (tm),  \
      .tile_n = (tn), .tile_k = (tk), .max_vec = (vec), .local_size = (local), \
      .unroll = (unroll_), .short_m = (shortm), .ksplit = (ksplit_),           \
      .fill = (fill_), .kmin = (kmin_))

/* linear_mma.cl for shape class `cls` (0 or 64, see dcn_linear_mma_tuning);
 * staged_: the epilogue through local memory. No split-K (ksplit 1): every
 * split tried on an H200 was slower (perf-notes §39). */
#define LINEAR_MMA(cls, tm, tn, tk, local, stages_, staged_)                   \
  ROW(DCN_KERNEL_LINEAR_MMA, linear_mma, 0, cls, .tile_m = (tm),               \
      .tile_n = (tn), .tile_k = (tk), .local_size = (local),                   \
      .stages = (stages_), .staged = (staged_), .ksplit = 1, .fill = 2,        \
      .kmin = 64)
/* Zeroing: zero.cl (kernel_ 1) in work-groups of `local`, or
 * clEnqueueFillBuffer (0). */
#define ZERO(kernel_, local)                                                   \
  ROW(DCN_KERNEL_ZERO, zero, 0, 0, .local_size = (local), .kernel = (kernel_))
/* The small-launch rule of a forward row (dcn_small_tuning): below that
 * many work-groups per compute unit, these work-items per work-group,
 * vector width, pieces and register cap (0: the row's). */
#define SMALL_LAUNCH(below_, local_, vec_, pieces_, regs_)                     \
  .small = {(below_), (local_), (vec_), (pieces_), (regs_)}

/* NVIDIA's DCNv4 forward: `vec` channels per work-item, a register cap,
 * groups per work-group, 16-bit storage only or not, one group_channels or
 * all (0), the small-launch rule (SMALL_LAUNCH). */
#define NVIDIA_FORWARD(vec, pieces_, regs, groups_, half_only, gc, small_)     \
  DCNV4_FORWARD(half_only, gc, .max_vec = (vec), .local_size = 256,            \
                .stage = 0, .unroll = 1, .specialize = 1, .rows = 4,           \
                .max_regs = (regs), .groups = (groups_), .pieces = (pieces_),  \
                small_)

#define NVIDIA_TILED_BACKWARD(gc)                                              \
  DCNV4_BACKWARD(gc, .max_vec = 4, .local_size = 256, .split = 1, .unroll = 1, \
                 .specialize = 1, .rows = 8, .halo = 1, .max_regs = 64)

/* Measured on H100 and H200 (sm_90). */
static const dcn_tuning_row nvidia_sm90[] = {
    /* H100, 64x56x56x128 G8: 256 work-items beat 128 by 13 % (fp32); 16-bit
     * storage wants 16-byte loads, 8 channels (fp16 forward 0.287 -> 0.251
     * ms), while the backward's atomics stay 4-wide. Work-groups over 4
     * output rows: 0.306 -> 0.293 ms fp32, 0.253 -> 0.229 ms fp16.
     * Work-groups of a few groups (8 or 16 work-items per pixel) over 32 or
     * 16 pixels, instead of all groups of 2 to 8 pixels (or of one pixel
     * where C is large): a work-group then samples a smaller region, and
     * L1 keeps more of it (docs/perf-notes.md §4: the geometric
     * mean of the 40 paper rows 0.245 -> 0.27, 64x56x56x128 G8 fp32 0.289
     * -> 0.271 ms, 1x64x64x768 G48 0.058 -> 0.040 ms). With that shape a cap
     * of 40 registers (6 work-groups per SM) pays for 16-bit storage; fp32
     * takes 48 (the cap of 40 spilled 8 bytes): H200, 19 of the 20 fp32
     * paper rows 1-6 % faster than with 40 (docs/perf-notes.md §8),
     * 64x56x56x128 G8 0.258 -> 0.257 ms, G4xD32 0.254 -> 0.248 ms. */
    NVIDIA_FORWARD(4, 1, 48, 2, 0, 0, SMALL_LAUNCH(0, 0, 0, 0, 0)),
    /* The small-launch rule stays off until a GPU sweep measures it
     * (docs/perf-notes.md §36: issue 34 had the small fp16 rows at x0.75-0.90
     * of upstream's CUDA kernel; the candidate is 4 channels per work-item
     * below 8 work-groups per SM). */
    NVIDIA_FORWARD(8, 1, 40, 4, 1, 0, SMALL_LAUNCH(0, 0, 0, 0, 0)),
    /* group_channels 32: 16-bit storage capped at 40 registers (from about
     * 56; 6 work-groups of 256 per SM): forward x0.94 on the geometric mean
     * of the 10 paper rows (x0.89 to x1.06). Then two pieces of 8 channels
     * per work-item (each point located once for 16 channels), uncapped:
     * H100, fp16, geometric mean of the 10 rows' fractions 0.196 -> 0.220,
     * x0.78 to x1.06 per row; bf16, which shares the row, 0.182 -> 0.214,
     * x0.73 to x0.93 (docs/perf-notes.md §9). fp32
     * lost 30-45 % with two pieces of 4, whatever the cap. */
    NVIDIA_FORWARD(4, 1, 48, 2, 0, 32, SMALL_LAUNCH(0, 0, 0, 0, 0)),
    /* Below 8 work-groups per SM, one piece (docs/perf-notes.md §36): H100,
     * fp16 G32xD32, one job, 1x25x40x1024 0.0161 -> 0.0148 ms, 1x50x80x512
     * 0.0222 -> 0.0182, 64x7x7x1024 0.0404 -> 0.0251 (an earlier job's
     * default: 0.0261); 64x14x14x512 (11.9 work-groups per SM, above the
     * threshold) lost 4 % when forced. bf16 shares the row, not measured. */
    NVIDIA_FORWARD(8, 2, 0, 2, 1, 32, SMALL_LAUNCH(8, 0, 0, 1, 0)),
    DCNV4_BACKWARD(0, .max_vec = 4, .local_size = 128, .split = 1, .unroll = 1,
                   .specialize = 1, .rows = 1),
    /* The tiled backward (fixed-point region accumulators in local memory)
     * over tiles of 8 output rows, 256 work-items: 64x56x56x128 fp32 G8xD16
     * 1.52 -> 1.08 ms, G4xD32 1.30 -> 1.02 ms (the per-point kernel); with
     * its 80 registers capped at 64 (4 work-groups per SM instead of 3)
     * 1.04 and 0.96 ms. */
    NVIDIA_TILED_BACKWARD(16),
    NVIDIA_TILED_BACKWARD(32),
    /* FlashDeformAttn: the forward puts D/VEC work-items on one head (4-wide
     * fp32: a 32-channel head is one 128-byte line per corner, read by 8
     * neighbouring work-items); the backward loops over the channels. A
     * forward work-group takes one head of 32 neighbouring queries (`groups`
     * 1) instead of all 8 heads of 4: H100, DETR encoder fp32 0.304 ->
     * 0.264 ms. The work-items of a head locate its points once, packed in
     * local memory (stage 2), registers are capped at 40 and work-groups
     * hold 128 work-items: H200, 0.248 -> 0.196 ms (stage 1, 24-byte
     * points: 0.207 ms; stage 2 uncapped: 0.213 ms; 256 work-items: 0.201
     * ms). */
    FDA_FORWARD(0, .max_vec = 4, .local_size = 128, .stage = 2, .specialize = 1,
                .max_regs = 40, .groups = 1),
    /* H100, DETR encoder fp16: 16-byte loads, 0.300 -> 0.205 ms; registers
     * capped at 40 (from 48), 0.206 -> 0.197 ms; two heads per block of
     * queries 0.196 -> 0.193 ms (one head: 0.208 ms). H200: stage 2 0.192
     * -> 0.154 ms (stage 1: 0.157 ms), then registers capped at 32 instead
     * of 40: 0.142 ms (48: 0.161 ms). H100 with stage 2: one head per block
     * of queries instead of two, 0.155 -> 0.149 ms (docs/perf-notes.md
     * §22; not measured on the H200). */
    FDA_FORWARD(1, .max_vec = 8, .local_size = 256, .stage = 2, .specialize = 1,
                .max_regs = 32, .groups = 1,
                /* Below 4 work-groups per SM (the decoder: 2x300 queries
                 * are 75 work-groups of 256 on 132 SMs), fp32's shape: 8
                 * work-items per head in groups of 128, capped at 40
                 * registers. H100, fp16, one job: 2x300 0.0340 -> 0.0182 ms,
                 * 2x900 0.0324 -> 0.0179 ms (40 registers: 0.0201 / 0.0210
                 * uncapped); the encoder (38 work-groups per SM) keeps the
                 * row's values (docs/perf-notes.md §36). bf16 not
                 * measured. */
                SMALL_LAUNCH(4, 128, 4, 0, 40)),
    /* H100, DETR encoder backward (2x20000 queries): the split kernel, 4
     * channels per work-item, 64 work-items, against one work-item per
     * (query, head) with 8 channels per step and 256 work-items: fp32 3.30
     * -> 0.97 ms, fp16 2.42 -> 0.95 ms; decoder (2x300, 2x900) fp32 0.21 ->
     * 0.055 / 0.096 ms (128 work-items: within 1 %; docs/perf-notes.md
     * §32). */
    FDA_BACKWARD(.max_vec = 4, .local_size = 64, .split = 1, .specialize = 1),
    /* The backward's zeroing (value gradient, fp32 scratch): H100, a probe
     * outside the library, clEnqueueFillBuffer 1.39-1.56 TB/s on 45 and 90
     * MB (0.033 / 0.061 ms), a kernel of one 16-byte store per work-item in
     * groups of 256 2.5-2.9 TB/s (0.018 / 0.033 ms; docs/perf-notes.md
     * §32). */
    ZERO(1, 256),
    LAYER(256, 128),
    DCNV4_DETERMINISTIC(.local_size = 128, .unroll = 1, .specialize = 1),
    FDA_DETERMINISTIC(.local_size = 128, .specialize = 1),
    /* Linear projections (src/ops/linear/linear.c): `backend` 1 is
     * linear.cl with tilem x tilen tiles, K in chunks of tilek, `local`
     * work-items of vec columns each (rows per work-item follow). H100,
     * 200704 rows, K 128: CLBlast (indirect GEMM, its transposes and a bias
     * pass) 0.61 ms for N 128 and 1.01 ms for N 216; 256x128x8 tiles of
     * 16x8 per work-item 0.19 and 0.37 ms, bias fused (128x128x16 of 8x8:
     * 0.21 and 0.42 ms); the fp32 layer forward 3.09 -> 1.10 ms
     * (128x128x16). GEMMs with at most half as many tiles as compute
     * units take 64-row tiles (1x25x40x1024: 32 tiles of 256x128, 0.68 -> 0.37
     * ms; at 104-250 tiles, e.g. 64x7x7x1024 or 1x200x320x128, 64-row tiles
     * were 10-25 % slower), and are split along K into up to 32 parts of at
     * least 64 k, about 2 work-groups per compute unit in all
     * (docs/perf-notes.md §34: FlashInternImage-T batch 1's 14x14 and 7x7
     * levels ran 4 to 32 work-groups over K up to 2048). */
    LINEAR(1, 256, 128, 8, 8, 256, 1, 64, 32, 2, 64),
    /* 16-bit GEMMs (linear_mma.cl; tensor cores from compute capability
     * 8), within the 48 KiB of local memory every such GPU has: 128x128
     * tiles of 8 warps (64x32 each), K in chunks of 32 through 2 buffers
     * (40 KiB); GEMMs of at most 64 columns 128x64 tiles of 4 warps, 3
     * buffers (45 KiB). sm_90 takes the rows below. */
    LINEAR_MMA(0, 128, 128, 32, 256, 2, 0),
    LINEAR_MMA(64, 128, 64, 32, 128, 3, 0),
};

/* sm_90's rings beyond 48 KiB (227 KiB a work-group, ctx->static_local_bytes;
 * docs/perf-notes.md §38). H100, dcnv4-bench's 24 fp16 GEMMs, throughput
 * over the 48 KiB rows above (geometric mean, one job): K in chunks of 64
 * through 3 buffers, the epilogue staged through local memory (108 KiB)
 * 1.17-1.18x, fp16 against torch.matmul 0.47 -> 0.55; 4 buffers of 32
 * (80 KiB) 1.11x, 5 1.10x; 128x256 or 256x128 tiles 0.85-1.01x; 4 buffers
 * of 64 1.01x. At most 64 columns: 128x64x64 through 2 buffers, staged
 * (36 KiB), 1.25x on those shapes. */
static const dcn_tuning_row nvidia_sm90_large_local[] = {
    LINEAR_MMA(0, 128, 128, 64, 256, 3, 1),
    LINEAR_MMA(64, 128, 64, 64, 128, 2, 1),
};

/* AMD GPUs (no architecture measured). */
static const dcn_tuning_row amd[] = {
    DCNV4_FORWARD(0, 0, .max_vec = 4, .local_size = 256, .stage = 0,
                  .unroll = 1, .specialize = 1, .rows = 1, .pieces = 1),
    DCNV4_BACKWARD(0, .max_vec = 4, .local_size = 256, .split = 1, .unroll = 1,
                   .specialize = 1, .rows = 1),
    FDA_FORWARD(0, .max_vec = 4, .local_size = 256, .specialize = 1),
    FDA_BACKWARD(.max_vec = 4, .local_size = 256, .specialize = 1),
    LAYER(256, 256),
    DCNV4_DETERMINISTIC(.local_size = 256, .unroll = 1, .specialize = 1),
    FDA_DETERMINISTIC(.local_size = 256, .specialize = 1),
    /* not measured: CLBlast */
    LINEAR(0, 128, 128, 16, 8, 256, 1, 0, 1, 2, 64),
    /* no tensor-core products: linear_mma.cl's portable build */
    LINEAR_MMA(0, 64, 64, 32, 128, 2, 0),
    ZERO(0, 256),
};

/* Intel GPUs (no architecture measured). */
static const dcn_tuning_row intel_gpu[] = {
    DCNV4_FORWARD(0, 0, .max_vec = 4, .local_size = 128, .stage = 0,
                  .unroll = 1, .specialize = 1, .rows = 1, .pieces = 1),
    DCNV4_BACKWARD(0, .max_vec = 4, .local_size = 128, .split = 1, .unroll = 1,
                   .specialize = 1, .rows = 1),
    FDA_FORWARD(0, .max_vec = 4, .local_size = 128, .specialize = 1),
    FDA_BACKWARD(.max_vec = 4, .local_size = 128, .specialize = 1),
    LAYER(256, 128),
    DCNV4_DETERMINISTIC(.local_size = 128, .unroll = 1, .specialize = 1),
    FDA_DETERMINISTIC(.local_size = 128, .specialize = 1),
    /* not measured: CLBlast */
    LINEAR(0, 64, 64, 16, 4, 256, 1, 0, 1, 2, 64),
    /* no tensor-core products: linear_mma.cl's portable build */
    LINEAR_MMA(0, 64, 64, 32, 128, 2, 0),
    ZERO(0, 256),
};

/* Measured on PoCL (AMD EPYC). PoCL's CPU device vectorises across
 * work-items; wide groups pay. Kernels without barriers and unrolled loops
 * compile several times faster there, and PoCL builds one work-group
 * function per program. */
static const dcn_tuning_row pocl[] = {
    /* The forward locates each point once per work-group (stage 3): PoCL,
     * EPYC, 1x56x56x128 and 1x50x80x128 fp32 and fp16, x0.73-0.87 with
     * group_channels 16, x0.42-0.61 with 32. */
    DCNV4_FORWARD(0, 0, .max_vec = 8, .local_size = 256, .stage = 3,
                  .unroll = 0, .specialize = 0, .rows = 1, .pieces = 1),
    DCNV4_BACKWARD(0, .max_vec = 8, .local_size = 64, .split = 0, .unroll = 0,
                   .specialize = 0, .rows = 1),
    FDA_FORWARD(0, .max_vec = 8, .local_size = 256, .specialize = 0),
    FDA_BACKWARD(.max_vec = 8, .local_size = 64, .specialize = 0),
    LAYER(256, 256),
    DCNV4_DETERMINISTIC(.local_size = 64, .unroll = 0, .specialize = 0),
    FDA_DETERMINISTIC(.local_size = 64, .specialize = 0),
    /* PoCL, 20000 rows: CLBlast 67-81 ms (N 128), 64x32x16 unrolled 28 ms
     * (rolled: 65 ms; linear.c keeps groups of more than 128 work-items
     * rolled on CPUs: PoCL's stack). A few cores are filled by a few tiles:
     * no split. */
    LINEAR(1, 64, 32, 16, 4, 64, 1, 0, 1, 2, 64),
    /* linear_mma.cl's portable build (barriers around every fragment):
     * small tiles of two warps */
    LINEAR_MMA(0, 32, 32, 16, 64, 2, 0),
    ZERO(0, 256),
};

/* Intel's oneAPI CPU runtime (2026.2, AMD EPYC, 2 cores; dcnv4-tune at
 * 1x56x56x128 G8xD16 and the DETR encoder at 1x2000, then dcnv4-bench
 * against PoCL's rows on the same runtime, two alternating rounds on a
 * busy machine): its vectorizer runs work-items in SIMD lanes itself, so
 * small groups of one row of points per work-item win. DCNv4 forward fp32
 * 50 -> 6-8 ms, fp16 12-18 -> 10 ms; backward fp32 199-247 -> 93-146 ms;
 * FlashDeformAttn forward fp32 197-256 -> 107-168 ms, backward fp32
 * 515-932 -> 418 ms (docs/perf-notes.md §33). */
static const dcn_tuning_row intel_cpu[] = {
    /* The last matching row wins: 16-bit rows after the general ones. */
    DCNV4_FORWARD(0, 0, .max_vec = 8, .local_size = 64, .stage = 0, .unroll = 0,
                  .specialize = 1, .rows = 2, .pieces = 2),
    DCNV4_FORWARD(1, 0, .max_vec = 8, .local_size = 256, .stage = 3,
                  .unroll = 0, .specialize = 1, .rows = 2, .groups = 4,
                  .pieces = 1),
    DCNV4_BACKWARD(0, .max_vec = 2, .local_size = 64, .split = 0, .unroll = 1,
                   .specialize = 0, .rows = 8),
    FDA_FORWARD(0, .max_vec = 4, .local_size = 128, .stage = 0,
                .specialize = 0),
    FDA_FORWARD(1, .max_vec = 8, .local_size = 512, .stage = 2,
                .specialize = 0),
    FDA_BACKWARD(.max_vec = 1, .local_size = 512, .split = 0, .specialize = 0),
    LAYER(256, 256),
    DCNV4_DETERMINISTIC(.local_size = 64, .unroll = 0, .specialize = 0),
    FDA_DETERMINISTIC(.local_size = 64, .specialize = 0),
    LINEAR(1, 64, 32, 16, 4, 64, 1, 0, 1, 2, 64),
    ZERO(0, 256),
};

#define NODE(vendor, arch, device, rows)                                       \
  { (vendor), (arch), (device), (rows), sizeof(rows) / sizeof(rows)[0] }

/* Vendor -> architecture -> device. A level without a node for the device
 * falls back to the one above; where two nodes of one level have a row for
 * the kernel, the later one's counts. The vendor defaults of GPUs not measured
 * are the measured architecture's values (as before the table had
 * architectures), so that every device keeps what it had. A new
 * measurement: a node for its architecture (or device) with its rows. */
static const dcn_tuning_node nodes[] = {
    NODE(DCN_VENDOR_NVIDIA, "sm_90", NULL, nvidia_sm90),
    NODE(DCN_VENDOR_NVIDIA, "sm_90", NULL, nvidia_sm90_large_local),
    NODE(DCN_VENDOR_NVIDIA, NULL, NULL, nvidia_sm90),
    NODE(DCN_VENDOR_AMD, NULL, NULL, amd),
    NODE(DCN_VENDOR_INTEL_GPU, NULL, NULL, intel_gpu),
    NODE(DCN_VENDOR_CPU, "pocl", NULL, pocl),
    NODE(DCN_VENDOR_CPU, "intel", NULL, intel_cpu),
    NODE(DCN_VENDOR_CPU, NULL, NULL, pocl),
};

/* Devices of no known vendor class. */
static const dcn_tuning_row global_rows[] = {
    DCNV4_FORWARD(0, 0, .max_vec = 4, .local_size = 64, .stage = 0, .unroll = 1,
                  .specialize = 1, .rows = 1, .pieces = 1),
    DCNV4_BACKWARD(0, .max_vec = 4, .local_size = 64, .split = 1, .unroll = 1,
                   .specialize = 1, .rows = 1),
    FDA_FORWARD(0, .max_vec = 4, .local_size = 64, .specialize = 1),
    FDA_BACKWARD(.max_vec = 4, .local_size = 64, .specialize = 1),
    LAYER(64, 64),
    DCNV4_DETERMINISTIC(.local_size = 64, .unroll = 1, .specialize = 1),
    FDA_DETERMINISTIC(.local_size = 64, .specialize = 1),
    /* CLBlast; portable tiles if linear.cl is asked for */
    LINEAR(0, 64, 32, 16, 4, 64, 1, 0, 1, 2, 64),
    LINEAR_MMA(0, 32, 32, 16, 64, 2, 0),
    ZERO(0, 256),
};

const dcn_tuning_table dcn_builtin_tuning = {
    nodes, sizeof nodes / sizeof nodes[0], global_rows,
    sizeof global_rows / sizeof global_rows[0]};

/* 3 when `n` is the device's node, 2 its architecture's, 1 its vendor's
 * default, 0 when it does not apply. */
static int node_level(const dcn_tuning_node *n, const dcn_device_class *dev) {
  if (n->vendor != dev->vendor)
    return 0;
  if (n->arch && strcmp(n->arch, dev->arch))
    return 0;
  if (n->device)
    return strcmp(n->device, dev->name) ? 0 : 3;
  return n->arch ? 2 : 1;
}

/* The last of `rows` for kernel, dtype and group_channels, or NULL. */
static const dcn_tuning_row *match_rows(const dcn_tuning_row *rows,
                                        size_t count, dcn_kernel_id kernel,
                                        dcnv4_dtype dtype, int group_channels) {
  const dcn_tuning_row *found = NULL;
  for (size_t i = 0; i < count; i++)
    if (rows[i].kernel == kernel &&
        (!rows[i].half_only || dtype != DCNV4_FLOAT32) &&
        (rows[i].group_channels <= 0 ||
         rows[i].group_channels == group_channels))
      found = &rows[i];
  return found;
}

dcn_kernel_tuning dcn_tuning_builtin_for(const dcn_tuning_table *table,
                                         const dcn_device_class *dev,
                                         dcn_kernel_id kernel,
                                         dcnv4_dtype dtype, int group_channels,
                                         int *level) {
  const dcn_tuning_row *found = NULL;
  int at = 0;
  for (int l = 3; l >= 1 && !found; l--)
    for (size_t i = 0; i < table->count; i++) {
      const dcn_tuning_node *n = &table->nodes[i];
      const dcn_tuning_row *r =
          node_level(n, dev) == l
              ? match_rows(n->rows, n->count, kernel, dtype, group_channels)
              : NULL;
      if (r) {
        found = r;
        at = l;
      }
    }
  if (!found)
    found = match_rows(table->global, table->global_count, kernel, dtype,
                       group_channels);
  dcn_kernel_tuning c;
  memset(&c, 0, sizeof c);
  if (found)
    c = found->config;
  *source_of(kernel, &c) = DCN_TUNING_BUILTIN;
  if (level)
    *level = at;
  return c;
}

/* Whether `ext` is a word of the device's extension string. */
static bool has_extension(cl_device_id device, const char *ext) {
  char buf[8192];
  if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, sizeof buf, buf, NULL) !=
      CL_SUCCESS)
    return false;
  buf[sizeof buf - 1] = '\0';
  size_t n = strlen(ext);
  for (const char *p = strstr(buf, ext); p; p = strstr(p + 1, ext))
    if ((p == buf || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
      return true;
  return false;
}

void dcn_tuning_identify(dcnv4_context *ctx) {
  dcn_device_class *d = &ctx->device_class;
  memset(d, 0, sizeof *d);
  d->vendor = (int)ctx->vendor;
  snprintf(d->name, sizeof d->name, "%s", ctx->info.device_name);
  cl_device_id dev = ctx->device;
  if (ctx->vendor == DCN_VENDOR_NVIDIA) {
    /* The compute capability: sm_90 for H100 and H200. */
    cl_uint major = 0, minor = 0;
    if (has_extension(dev, "cl_nv_device_attribute_query") &&
        clGetDeviceInfo(dev, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV,
                        sizeof major, &major, NULL) == CL_SUCCESS &&
        clGetDeviceInfo(dev, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV,
                        sizeof minor, &minor, NULL) == CL_SUCCESS)
      snprintf(d->arch, sizeof d->arch, "sm_%u%u", major, minor);
  } else if (ctx->vendor == DCN_VENDOR_AMD) {
    /* ROCm names the device by its target ("gfx90a:sramecc+:xnack-") and
     * the product by the board name. */
    if (!strncmp(ctx->info.device_name, "gfx", 3))
      snprintf(d->arch, sizeof d->arch, "%.*s",
               (int)strcspn(ctx->info.device_name, ":"), ctx->info.device_name);
    char board[256] = "";
    if (has_extension(dev, "cl_amd_device_attribute_query") &&
        clGetDeviceInfo(dev, CL_DEVICE_BOARD_NAME_AMD, sizeof board, board,
                        NULL) == CL_SUCCESS &&
        board[0]) {
      board[sizeof board - 1] = '\0';
      snprintf(d->name, sizeof d->name, "%s", board);
    }
  } else if (ctx->vendor == DCN_VENDOR_INTEL_GPU) {
    /* The graphics IP version (major.minor.revision, e.g. 12.55.8). */
    cl_uint ip = 0;
    if (has_extension(dev, "cl_intel_device_attribute_query") &&
        clGetDeviceInfo(dev, CL_DEVICE_IP_VERSION_INTEL, sizeof ip, &ip,
                        NULL) == CL_SUCCESS &&
        ip)
      snprintf(d->arch, sizeof d->arch, "ip_%u.%u.%u", ip >> 22,
               (ip >> 12) & 0x3ffu, ip & 0xfffu);
  } else if (ctx->vendor == DCN_VENDOR_CPU) {
    /* On CPUs the OpenCL runtime decides more than the processor. */
    if (strstr(ctx->info.platform_name, "Portable Computing Language"))
      snprintf(d->arch, sizeof d->arch, "pocl");
    else if (strstr(ctx->info.platform_name, "Intel"))
      snprintf(d->arch, sizeof d->arch, "intel");
  }
  dcn_log(ctx, DCN_LOG_DEBUG,
          "tuning class: vendor %d, architecture \"%s\", "
          "device \"%s\"",
          d->vendor, d->arch, d->name);
}

/* ------------------------------------------------------------- merge */

/* How well a file entry matches: -1 not at all, else higher is more
 * specific (dtype and shape class both count). */
static int entry_rank(const dcn_tuning_entry *e, dcn_kernel_id kernel,
                      dcnv4_dtype dtype, int group_channels) {
  if (e->kernel != kernel || (e->dtype >= 0 && e->dtype != (int)dtype) ||
      (e->group_channels > 0 && e->group_channels != group_channels))
    return -1;
  return (e->dtype >= 0 ? 1 : 0) + (e->group_channels > 0 ? 2 : 0);
}

/* Sets the parameters marked in `set` (indexed by dcn_tuning_param; the
 * parsers admitted only those the kernel takes). */
static void apply(dcn_kernel_id kernel, dcn_kernel_tuning *c, const long *value,
                  const bool *set, dcn_tuning_layer layer) {
  for (size_t i = 0; i < kernels[kernel].count; i++) {
    const param_spec *p = &kernels[kernel].params[i];
    if (set[p->param]) {
      set_value(p, c, value[p->param]);
      *source_of(kernel, c) = layer;
    }
  }
}

static dcn_kernel_tuning builtin(const dcnv4_context *ctx, dcn_kernel_id kernel,
                                 dcnv4_dtype dtype, int group_channels) {
  return dcn_tuning_builtin_for(&dcn_builtin_tuning, &ctx->device_class, kernel,
                                dtype, group_channels, NULL);
}

dcn_kernel_tuning dcn_tuning_lookup(dcnv4_context *ctx, dcn_kernel_id kernel,
                                    dcnv4_dtype dtype, int group_channels) {
  const dcn_kernel_tuning def = builtin(ctx, kernel, dtype, group_channels);
  dcn_kernel_tuning c = def;
  /* The file's entries, least specific first. */
  for (int rank = 0; ctx->tuning_file_enabled && rank < 4; rank++)
    for (size_t i = 0; i < ctx->tuning_entry_count; i++) {
      const dcn_tuning_entry *e = &ctx->tuning_entries[i];
      if (entry_rank(e, kernel, dtype, group_channels) == rank)
        apply(kernel, &c, e->value, e->set, DCN_TUNING_FILE);
    }
  apply(kernel, &c, ctx->tuning.value[kernel], ctx->tuning.set[kernel],
        DCN_TUNING_OVERRIDE);
  const param_spec *local = find_param(kernel, DCN_PARAM_LOCAL);
  const long want = get_value(local, &c);
  if (ctx->max_work_group_size && (size_t)want > ctx->max_work_group_size) {
    unsigned bit = 1u << kernel;
    if (!(ctx->tuning_warned & bit)) {
      ctx->tuning_warned |= bit;
      dcn_log(ctx, DCN_LOG_INFO,
              "%s: tuned work-group size %ld exceeds the device's maximum "
              "%zu; using the default %ld",
              kernels[kernel].name, want, ctx->max_work_group_size,
              get_value(local, &def));
    }
    set_value(local, &c, get_value(local, &def));
  }
  return c;
}

static bool same(dcn_kernel_id kernel, const void *a, const void *b) {
  for (size_t i = 0; i < kernels[kernel].count; i++)
    if (get_value(&kernels[kernel].params[i], a) !=
        get_value(&kernels[kernel].params[i], b))
      return false;
  return true;
}

int dcn_tuning_candidates(dcnv4_context *ctx, dcn_kernel_id kernel,
                          dcnv4_dtype dtype, int group_channels,
                          dcn_kernel_tuning cfgs[2]) {
  cfgs[0] = dcn_tuning_lookup(ctx, kernel, dtype, group_channels);
  if (*source_of(kernel, &cfgs[0]) == DCN_TUNING_BUILTIN)
    return 1;
  cfgs[1] = builtin(ctx, kernel, dtype, group_channels);
  return same(kernel, &cfgs[0], &cfgs[1]) ? 1 : 2;
}

/* The typed forms: the union member of the kernel. */
#define CANDIDATES(fn, type, member, kernel)                                   \
  int fn(dcnv4_context *ctx, dcnv4_dtype dtype, int group_channels,            \
         type cfgs[2]) {                                                       \
    dcn_kernel_tuning c[2];                                                    \
    int n = dcn_tuning_candidates(ctx, (kernel), dtype, group_channels, c);    \
    for (int i = 0; i < n; i++)                                                \
      cfgs[i] = c[i].member;                                                   \
    return n;                                                                  \
  }
CANDIDATES(dcn_tuning_dcnv4_forward, dcn_dcnv4_forward_tuning, dcnv4_forward,
           DCN_KERNEL_DCNV4_FORWARD)
CANDIDATES(dcn_tuning_dcnv4_backward, dcn_dcnv4_backward_tuning, dcnv4_backward,
           DCN_KERNEL_DCNV4_BACKWARD)
CANDIDATES(dcn_tuning_fda_forward, dcn_fda_forward_tuning, fda_forward,
           DCN_KERNEL_FDA_FORWARD)
CANDIDATES(dcn_tuning_fda_backward, dcn_fda_backward_tuning, fda_backward,
           DCN_KERNEL_FDA_BACKWARD)

CANDIDATES(dcn_tuning_linear_mma, dcn_linear_mma_tuning, linear_mma,
           DCN_KERNEL_LINEAR_MMA)

int dcn_tuning_linear(dcnv4_context *ctx, dcn_linear_tuning cfgs[2]) {
  dcn_kernel_tuning c[2];
  int n = dcn_tuning_candidates(ctx, DCN_KERNEL_LINEAR, DCNV4_FLOAT32, 0, c);
  for (int i = 0; i < n; i++)
    cfgs[i] = c[i].linear;
  return n;
}

dcn_dcnv4_backward_deterministic_tuning
dcn_tuning_dcnv4_backward_deterministic(dcnv4_context *ctx, dcnv4_dtype dtype,
                                        int group_channels) {
  return dcn_tuning_lookup(ctx, DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC, dtype,
                           group_channels)
      .dcnv4_backward_deterministic;
}

dcn_fda_backward_deterministic_tuning
dcn_tuning_fda_backward_deterministic(dcnv4_context *ctx, dcnv4_dtype dtype,
                                      int group_channels) {
  return dcn_tuning_lookup(ctx, DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC, dtype,
                           group_channels)
      .fda_backward_deterministic;
}

dcn_layer_tuning dcn_tuning_layer_ops(dcnv4_context *ctx,
                                      dcn_kernel_id kernel) {
  return dcn_tuning_lookup(ctx, kernel, DCNV4_FLOAT32, 0).layer;
}

dcn_zero_tuning dcn_tuning_zero(dcnv4_context *ctx) {
  return dcn_tuning_lookup(ctx, DCN_KERNEL_ZERO, DCNV4_FLOAT32, 0).zero;
}

void dcn_tuning_format(dcn_kernel_id kernel, const void *cfg, char *out,
                       size_t size) {
  size_t n = 0;
  if (size)
    out[0] = '\0';
  for (size_t i = 0;
       kernel < DCN_KERNEL_COUNT && i < kernels[kernel].count && n < size;
       i++) {
    const param_spec *p = &kernels[kernel].params[i];
    int w = snprintf(out + n, size - n, "%s%s=%ld", i ? ";" : "",
                     param_names[p->param], get_value(p, cfg));
    if (w < 0)
      break;
    n += (size_t)w;
  }
}

dcn_tuning_layer dcn_tuning_source(dcn_kernel_id kernel, const void *cfg) {
  return *(
      const dcn_tuning_layer *)(const void *)((const char *)cfg +
                                              kernels[kernel].source_offset);
}

void dcn_tuning_log_fallback(dcnv4_context *ctx, dcn_kernel_id kernel,
                             const void *tuned, const void *fallback_cfg,
                             const char *why) {
  char a[256], b[256];
  dcn_tuning_format(kernel, tuned, a, sizeof a);
  dcn_tuning_format(kernel, fallback_cfg, b, sizeof b);
  dcn_tuning_layer src = dcn_tuning_source(kernel, tuned);
  ctx->tuning_fallbacks++;
  dcn_log(ctx, DCN_LOG_INFO,
          "%s: the tuned configuration (%s, from the %s) %s; falling back to "
          "the built-in default (%s)",
          dcn_kernel_name(kernel), a,
          src == DCN_TUNING_FILE ? "tuning file" : "override", why, b);
}

bool dcn_small_apply(const dcnv4_context *ctx, const dcn_small_tuning *small,
                     uint64_t items, size_t *local, int *max_vec, int *pieces,
                     int *max_regs) {
  const uint64_t cu = ctx->compute_units ? ctx->compute_units : 1;
  if (small->below <= 0 || *local == 0 ||
      (items + *local - 1) / *local >= (uint64_t)small->below * cu)
    return false;
  /* A work-group the device cannot run keeps the tuned size, as in
   * dcn_tuning_lookup. */
  if (small->local_size > 0 && (!ctx->max_work_group_size ||
                                small->local_size <= ctx->max_work_group_size))
    *local = small->local_size;
  if (small->max_vec > 0)
    *max_vec = small->max_vec;
  if (pieces && small->pieces > 0)
    *pieces = small->pieces;
  if (small->max_regs > 0)
    *max_regs = small->max_regs;
  return true;
}

int dcn_vector_width(int channels, int max_vec) {
  for (int v = 8; v > 1; v /= 2)
    if (v <= max_vec && channels % v == 0)
      return v;
  return 1;
}
