/* Launch parameters: built-in defaults by device class, merged with the
 * tuning file's entries and the per-context override. */
#include "tuning.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kernel_names[DCN_KERNEL_COUNT] = {
    "dcnv4_forward",
    "dcnv4_backward",
    "flash_deform_attn_forward",
    "flash_deform_attn_backward",
    "layer_elementwise",
    "layer_dwconv",
    "dcnv4_backward_deterministic",
    "flash_deform_attn_backward_deterministic",
    "linear",
};

const char *dcn_kernel_name(dcn_kernel_id kernel) {
  return kernel < DCN_KERNEL_COUNT ? kernel_names[kernel] : "?";
}

/* Each parameter's name, accepted values and field in dcn_launch_config
 * (int fields, or size_t where `is_size`). */
static const struct {
  const char *name;
  long min, max;
  bool power_of_two;
  size_t offset;
  bool is_size;
} params[DCN_TUNING_PARAMS] = {
    [DCN_PARAM_VEC] = {"vec", 1, 8, true, offsetof(dcn_launch_config, max_vec),
                       false},
    [DCN_PARAM_LOCAL] = {"local", 1, 4096, false,
                         offsetof(dcn_launch_config, local_size), true},
    [DCN_PARAM_STAGE] = {"stage", 0, 3, false,
                         offsetof(dcn_launch_config, stage), false},
    [DCN_PARAM_SPLIT] = {"split", 0, 1, false,
                         offsetof(dcn_launch_config, split), false},
    [DCN_PARAM_UNROLL] = {"unroll", 0, 1, false,
                          offsetof(dcn_launch_config, unroll), false},
    [DCN_PARAM_SPECIALIZE] = {"specialize", 0, 1, false,
                              offsetof(dcn_launch_config, specialize), false},
    [DCN_PARAM_ROWS] = {"rows", 1, 16, false, offsetof(dcn_launch_config, rows),
                        false},
    [DCN_PARAM_BACKEND] = {"backend", 0, 1, false,
                           offsetof(dcn_launch_config, backend), false},
    [DCN_PARAM_TILE_M] = {"tilem", 4, 256, true,
                          offsetof(dcn_launch_config, tile_m), false},
    [DCN_PARAM_TILE_N] = {"tilen", 4, 256, true,
                          offsetof(dcn_launch_config, tile_n), false},
    [DCN_PARAM_TILE_K] = {"tilek", 4, 64, true,
                          offsetof(dcn_launch_config, tile_k), false},
    [DCN_PARAM_HALO] = {"halo", 0, 8, false, offsetof(dcn_launch_config, halo),
                        false},
    [DCN_PARAM_MAX_REGS] = {"regs", 0, 255, false,
                            offsetof(dcn_launch_config, max_regs), false},
    [DCN_PARAM_GROUPS] = {"groups", 0, 64, false,
                          offsetof(dcn_launch_config, groups), false},
    [DCN_PARAM_PIECES] = {"pieces", 1, 4, true,
                          offsetof(dcn_launch_config, pieces), false},
};

static long get_param(const dcn_launch_config *c, int which) {
  const char *base = (const char *)c + params[which].offset;
  if (params[which].is_size)
    return (long)*(const size_t *)(const void *)base;
  return *(const int *)(const void *)base;
}

static void set_param(dcn_launch_config *c, int which, long value) {
  char *base = (char *)c + params[which].offset;
  if (params[which].is_size)
    *(size_t *)(void *)base = (size_t)value;
  else
    *(int *)(void *)base = (int)value;
}

int dcn_kernel_from_name(const char *name) {
  for (int i = 0; i < DCN_KERNEL_COUNT; i++)
    if (!strcmp(name, kernel_names[i]))
      return i;
  return -1;
}

int dcn_tuning_param_from_name(const char *name) {
  for (int i = 0; i < DCN_TUNING_PARAMS; i++)
    if (!strcmp(name, params[i].name))
      return i;
  return -1;
}

const char *dcn_tuning_param_name(dcn_tuning_param param) {
  return param < DCN_TUNING_PARAMS ? params[param].name : "?";
}

const char *dcn_tuning_value_error(dcn_kernel_id kernel, dcn_tuning_param param,
                                   long value) {
  /* The DCNv4 forward's stages 1, 2 and 4 were no device's default and
   * are gone (cl/dcnv4_forward.cl). */
  if (param == DCN_PARAM_STAGE && kernel == DCN_KERNEL_DCNV4_FORWARD)
    return value == 0 || value == 3
               ? NULL
               : "must be 0 or 3 for dcnv4_forward (stages 1, 2 and 4 were "
                 "removed)";
  if (param == DCN_PARAM_STAGE && kernel == DCN_KERNEL_FDA_FORWARD)
    return value >= 0 && value <= 2
               ? NULL
               : "must be 0, 1 or 2 for flash_deform_attn_forward";
  if (param >= DCN_TUNING_PARAMS || value < params[param].min ||
      value > params[param].max ||
      (params[param].power_of_two && (value & (value - 1)) != 0))
    return "out of range";
  return NULL;
}

bool dcn_tuning_parse(const char *text, dcn_tuning_override *out, char *why,
                      size_t why_size) {
  memset(out, 0, sizeof *out);
  const char *p = text;
  while (p && *p) {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char entry[128], kernel[64], param[32];
    long value = 0;
    char extra;
    snprintf(entry, sizeof entry, "%.*s", (int)(len < 127 ? len : 127), p);
    int k = -1, which = -1;
    if (len < 127 && sscanf(entry, "%63[a-z0-9_].%31[a-z]=%ld%c", kernel, param,
                            &value, &extra) == 3) {
      k = dcn_kernel_from_name(kernel);
      which = dcn_tuning_param_from_name(param);
    }
    const char *value_error =
        k < 0 || which < 0
            ? ""
            : dcn_tuning_value_error((dcn_kernel_id)k, (dcn_tuning_param)which,
                                     value);
    if (value_error) {
      snprintf(why, why_size, "bad tuning entry \"%s\"%s%s", entry,
               *value_error ? ": " : "", value_error);
      return false;
    }
    out->value[k][which] = value;
    out->set[k][which] = true;
    p = end ? end + 1 : NULL;
  }
  return true;
}

/* One row per (device class, kernel); fp16/bf16 rows may differ later.
 * Config: {vec, local, stage, split, unroll, specialize}. */
typedef struct tuning_row {
  dcn_vendor vendor;
  dcn_kernel_id kernel;
  dcn_launch_config config;
  /* 1: this row is for 16-bit storage only (it follows the kernel's general
   * row, and a later matching row wins). */
  int half_only;
  /* > 0: this row is for that group_channels only (likewise). */
  int group_channels;
} tuning_row;

#define LINEAR_ROW(vendor, backend_, tm, tn, tk, vec, local, unroll_)          \
  {                                                                            \
    (vendor), DCN_KERNEL_LINEAR,                                               \
        {.max_vec = (vec),                                                     \
         .local_size = (local),                                                \
         .unroll = (unroll_),                                                  \
         .rows = 1,                                                            \
         .backend = (backend_),                                                \
         .tile_m = (tm),                                                       \
         .tile_n = (tn),                                                       \
         .tile_k = (tk)},                                                      \
        0                                                                      \
  }

/* NVIDIA's DCNv4 forward: `vec` channels per work-item, a register cap,
 * groups per work-group, 16-bit storage only or not, one group_channels or
 * all (0). */
#define NVIDIA_FORWARD(vec, pieces_, regs, groups_, half_only_,                \
                       group_channels_)                                        \
  {                                                                            \
    DCN_VENDOR_NVIDIA, DCN_KERNEL_DCNV4_FORWARD,                               \
        {.max_vec = (vec),                                                     \
         .local_size = 256,                                                    \
         .unroll = 1,                                                          \
         .specialize = 1,                                                      \
         .rows = 4,                                                            \
         .max_regs = (regs),                                                   \
         .groups = (groups_),                                                  \
         .pieces = (pieces_)},                                                 \
        (half_only_), (group_channels_)                                        \
  }

#define NVIDIA_TILED_BACKWARD(group_channels_)                                 \
  {                                                                            \
    DCN_VENDOR_NVIDIA, DCN_KERNEL_DCNV4_BACKWARD,                              \
        {.max_vec = 4,                                                         \
         .local_size = 256,                                                    \
         .split = 1,                                                           \
         .unroll = 1,                                                          \
         .specialize = 1,                                                      \
         .rows = 8,                                                            \
         .halo = 1,                                                            \
         .max_regs = 64},                                                      \
        0, (group_channels_)                                                   \
  }

static const tuning_row defaults[] = {
    /* H100, 64x56x56x128 G8: 256 work-items beat 128 by 13 % (fp32); 16-bit
     * storage wants 16-byte loads, 8 channels (fp16 forward 0.287 -> 0.251
     * ms), while the backward's atomics stay 4-wide. Work-groups over 4
     * output rows: 0.306 -> 0.293 ms fp32, 0.253 -> 0.229 ms fp16.
     * Work-groups of a few groups (8 or 16 work-items per pixel) over 32 or
     * 16 pixels, instead of all groups of 2 to 8 pixels (or of one pixel
     * where C is large): a work-group then samples a smaller region, and
     * L1 keeps more of it (bench/results/2026-11-25-h100-v8: the geometric
     * mean of the 40 paper rows 0.245 -> 0.27, 64x56x56x128 G8 fp32 0.289
     * -> 0.271 ms, 1x64x64x768 G48 0.058 -> 0.040 ms). With that shape a cap
     * of 40 registers (6 work-groups per SM) pays for 16-bit storage; fp32
     * takes 48 (the cap of 40 spilled 8 bytes): H200, 19 of the 20 fp32
     * paper rows 1-6 % faster than with 40 (bench/results/2026-12-04-h200-
     * v9), 64x56x56x128 G8 0.258 -> 0.257 ms, G4xD32 0.254 -> 0.248 ms. */
    NVIDIA_FORWARD(4, 1, 48, 2, 0, 0),
    NVIDIA_FORWARD(8, 1, 40, 4, 1, 0),
    /* group_channels 32: 16-bit storage capped at 40 registers (from about
     * 56; 6 work-groups of 256 per SM): forward x0.94 on the geometric mean
     * of the 10 paper rows (x0.89 to x1.06). Then two pieces of 8 channels
     * per work-item (each point located once for 16 channels), uncapped:
     * H100, fp16, geometric mean of the 10 rows' fractions 0.196 -> 0.220,
     * x0.78 to x1.06 per row (bench/results/2026-12-06-h100-v14); bf16,
     * which shares the row, 0.182 -> 0.214, x0.73 to x0.93 (v15). fp32
     * lost 30-45 % with two pieces of 4, whatever the cap. */
    NVIDIA_FORWARD(4, 1, 48, 2, 0, 32),
    NVIDIA_FORWARD(8, 2, 0, 2, 1, 32),
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_DCNV4_BACKWARD, {4, 128, 0, 1, 1, 1}},
    /* The tiled backward (fixed-point region accumulators in local memory)
     * over tiles of 8 output rows, 256 work-items: 64x56x56x128 fp32 G8xD16
     * 1.52 -> 1.08 ms, G4xD32 1.30 -> 1.02 ms (the per-point kernel); with
     * its 80 registers capped at 64 (4 work-groups per SM instead of 3)
     * 1.04 and 0.96 ms. */
    NVIDIA_TILED_BACKWARD(16),
    NVIDIA_TILED_BACKWARD(32),
    {DCN_VENDOR_AMD, DCN_KERNEL_DCNV4_FORWARD, {4, 256, 0, 0, 1, 1}},
    {DCN_VENDOR_AMD, DCN_KERNEL_DCNV4_BACKWARD, {4, 256, 0, 1, 1, 1}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_DCNV4_FORWARD, {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_DCNV4_BACKWARD, {4, 128, 0, 1, 1, 1}},
    /* PoCL's CPU device vectorises across work-items; wide groups pay.
     * Kernels without barriers and unrolled loops compile several times
     * faster there, and PoCL builds one work-group function per program.
     * The forward locates each point once per work-group (stage 3): PoCL,
     * EPYC, 1x56x56x128 and 1x50x80x128 fp32 and fp16, x0.73-0.87 with
     * group_channels 16, x0.42-0.61 with 32. */
    {DCN_VENDOR_CPU, DCN_KERNEL_DCNV4_FORWARD, {8, 256, 3, 0, 0, 0}},
    {DCN_VENDOR_CPU, DCN_KERNEL_DCNV4_BACKWARD, {8, 64, 0, 0, 0, 0}},
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
    {DCN_VENDOR_NVIDIA,
     DCN_KERNEL_FDA_FORWARD,
     {.max_vec = 4,
      .local_size = 128,
      .stage = 2,
      .unroll = 1,
      .specialize = 1,
      .max_regs = 40,
      .groups = 1},
     0},
    /* H100, DETR encoder fp16: 16-byte loads, 0.300 -> 0.205 ms; registers
     * capped at 40 (from 48), 0.206 -> 0.197 ms; two heads per block of
     * queries 0.196 -> 0.193 ms (one head: 0.208 ms). H200: stage 2 0.192
     * -> 0.154 ms (stage 1: 0.157 ms), then registers capped at 32 instead
     * of 40: 0.142 ms (48: 0.161 ms). H100 with stage 2: one head per block
     * of queries instead of two, 0.155 -> 0.149 ms (bench/results/
     * 2026-12-05-h100-v11; not measured on the H200). */
    {DCN_VENDOR_NVIDIA,
     DCN_KERNEL_FDA_FORWARD,
     {.max_vec = 8,
      .local_size = 256,
      .stage = 2,
      .unroll = 1,
      .specialize = 1,
      .max_regs = 32,
      .groups = 1},
     1},
    /* H100, DETR encoder backward: 8 channels per step instead of 4, 256
     * work-items instead of 128: fp32 3.96 -> 3.31 ms, fp16 3.12 -> 2.42 ms
     * (register caps of 40 and 64 lost 15-80 %). */
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_FDA_BACKWARD, {8, 256, 0, 0, 1, 1}},
    {DCN_VENDOR_AMD, DCN_KERNEL_FDA_FORWARD, {4, 256, 0, 0, 1, 1}},
    {DCN_VENDOR_AMD, DCN_KERNEL_FDA_BACKWARD, {4, 256, 0, 0, 1, 1}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_FDA_FORWARD, {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_FDA_BACKWARD, {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_CPU, DCN_KERNEL_FDA_FORWARD, {8, 256, 0, 0, 0, 0}},
    {DCN_VENDOR_CPU, DCN_KERNEL_FDA_BACKWARD, {8, 64, 0, 0, 0, 0}},
    /* Layer kernels: one element per work-item, max_vec unused. */
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_LAYER_ELEMENTWISE, {1, 256}},
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_LAYER_DWCONV, {1, 128}},
    {DCN_VENDOR_AMD, DCN_KERNEL_LAYER_ELEMENTWISE, {1, 256}},
    {DCN_VENDOR_AMD, DCN_KERNEL_LAYER_DWCONV, {1, 256}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_LAYER_ELEMENTWISE, {1, 256}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_LAYER_DWCONV, {1, 128}},
    {DCN_VENDOR_CPU, DCN_KERNEL_LAYER_ELEMENTWISE, {1, 256}},
    {DCN_VENDOR_CPU, DCN_KERNEL_LAYER_DWCONV, {1, 256}},
    /* Deterministic backward: 1-D kernels, max_vec unused (4 at most). */
    {DCN_VENDOR_NVIDIA,
     DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC,
     {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_NVIDIA,
     DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC,
     {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_AMD,
     DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC,
     {4, 256, 0, 0, 1, 1}},
    {DCN_VENDOR_AMD,
     DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC,
     {4, 256, 0, 0, 1, 1}},
    {DCN_VENDOR_INTEL_GPU,
     DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC,
     {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_INTEL_GPU,
     DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC,
     {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_CPU,
     DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC,
     {4, 64, 0, 0, 0, 0}},
    {DCN_VENDOR_CPU,
     DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC,
     {4, 64, 0, 0, 0, 0}},
    /* Linear projections (src/gemm.c): `backend` 1 is cl/linear.cl with
     * tilem x tilen tiles, K in chunks of tilek, `local` work-items of
     * vec columns each (rows per work-item follow); unroll 0 keeps the k
     * loop rolled. H100, 200704 rows, K 128: CLBlast (indirect GEMM, its
     * transposes and a bias pass) 0.61 ms for N 128 and 1.01 ms for N 216;
     * 256x128x8 tiles of 16x8 per work-item 0.19 and 0.37 ms, bias fused
     * (128x128x16 of 8x8: 0.21 and 0.42 ms); the fp32 layer forward 3.09 ->
     * 1.10 ms (128x128x16). PoCL, 20000 rows: CLBlast 67-81 ms (N 128),
     * 64x32x16 unrolled 28 ms (rolled: 65 ms; gemm.c keeps groups of more
     * than 128 work-items rolled on CPUs: PoCL's stack). AMD and Intel
     * GPUs: not measured, CLBlast. */
    LINEAR_ROW(DCN_VENDOR_NVIDIA, 1, 256, 128, 8, 8, 256, 1),
    LINEAR_ROW(DCN_VENDOR_AMD, 0, 128, 128, 16, 8, 256, 1),
    LINEAR_ROW(DCN_VENDOR_INTEL_GPU, 0, 64, 64, 16, 4, 256, 1),
    LINEAR_ROW(DCN_VENDOR_CPU, 1, 64, 32, 16, 4, 64, 1),
};

static const dcn_launch_config fallback = {4, 64, 0, 1, 1, 1};

dcn_launch_config dcn_tuning_builtin(const dcnv4_context *ctx,
                                     dcn_kernel_id kernel, dcnv4_dtype dtype,
                                     int group_channels) {
  dcn_launch_config c = fallback;
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
    if (defaults[i].vendor == ctx->vendor && defaults[i].kernel == kernel &&
        (!defaults[i].half_only || dtype != DCNV4_FLOAT32) &&
        (defaults[i].group_channels <= 0 ||
         defaults[i].group_channels == group_channels))
      c = defaults[i].config;
  if (c.rows < 1)
    c.rows = 1;
  if (c.pieces < 1)
    c.pieces = 1;
  if (kernel == DCN_KERNEL_LINEAR && c.tile_m == 0) {
    /* other devices: CLBlast, portable tiles if asked for cl/linear.cl */
    c.max_vec = 4;
    c.local_size = 64;
    c.tile_m = 64;
    c.tile_n = 32;
    c.tile_k = 16;
  }
  c.source = DCN_TUNING_BUILTIN;
  return c;
}

/* How well a file entry matches: -1 not at all, else higher is more
 * specific (dtype and shape class both count). */
static int entry_rank(const dcn_tuning_entry *e, dcn_kernel_id kernel,
                      dcnv4_dtype dtype, int group_channels) {
  if (e->kernel != kernel || (e->dtype >= 0 && e->dtype != (int)dtype) ||
      (e->group_channels > 0 && e->group_channels != group_channels))
    return -1;
  return (e->dtype >= 0 ? 1 : 0) + (e->group_channels > 0 ? 2 : 0);
}

dcn_launch_config dcn_tuning_lookup(dcnv4_context *ctx, dcn_kernel_id kernel,
                                    dcnv4_dtype dtype, int group_channels) {
  const dcn_launch_config builtin =
      dcn_tuning_builtin(ctx, kernel, dtype, group_channels);
  dcn_launch_config c = builtin;
  if (kernel >= DCN_KERNEL_COUNT)
    return c;
  /* The file's entries, least specific first. */
  for (int rank = 0; ctx->tuning_file_enabled && rank < 4; rank++)
    for (size_t i = 0; i < ctx->tuning_entry_count; i++) {
      const dcn_tuning_entry *e = &ctx->tuning_entries[i];
      if (entry_rank(e, kernel, dtype, group_channels) != rank)
        continue;
      for (int p = 0; p < DCN_TUNING_PARAMS; p++)
        if (e->set[p]) {
          set_param(&c, p, e->value[p]);
          c.source = DCN_TUNING_FILE;
        }
    }
  for (int p = 0; p < DCN_TUNING_PARAMS; p++)
    if (ctx->tuning.set[kernel][p]) {
      set_param(&c, p, ctx->tuning.value[kernel][p]);
      c.source = DCN_TUNING_OVERRIDE;
    }
  if (c.local_size > ctx->max_work_group_size && ctx->max_work_group_size) {
    unsigned bit = 1u << kernel;
    if (!(ctx->tuning_warned & bit)) {
      ctx->tuning_warned |= bit;
      dcn_log(ctx, DCN_LOG_INFO,
              "%s: tuned work-group size %zu exceeds the device's maximum "
              "%zu; using the default %zu",
              kernel_names[kernel], c.local_size, ctx->max_work_group_size,
              builtin.local_size);
    }
    c.local_size = builtin.local_size;
  }
  return c;
}

bool dcn_tuning_same(const dcn_launch_config *a, const dcn_launch_config *b) {
  for (int p = 0; p < DCN_TUNING_PARAMS; p++)
    if (get_param(a, p) != get_param(b, p))
      return false;
  return true;
}

void dcn_tuning_format(const dcn_launch_config *c, char *out, size_t size) {
  size_t n = 0;
  if (size)
    out[0] = '\0';
  for (int p = 0; p < DCN_TUNING_PARAMS && n < size; p++) {
    int w = snprintf(out + n, size - n, "%s%s=%ld", p ? ";" : "",
                     params[p].name, get_param(c, p));
    if (w < 0)
      break;
    n += (size_t)w;
  }
}

void dcn_tuning_log_fallback(dcnv4_context *ctx, dcn_kernel_id kernel,
                             const dcn_launch_config *tuned,
                             const dcn_launch_config *fallback_cfg,
                             const char *why) {
  char a[160], b[160];
  dcn_tuning_format(tuned, a, sizeof a);
  dcn_tuning_format(fallback_cfg, b, sizeof b);
  ctx->tuning_fallbacks++;
  dcn_log(ctx, DCN_LOG_INFO,
          "%s: the tuned configuration (%s, from the %s) %s; falling back to "
          "the built-in default (%s)",
          dcn_kernel_name(kernel), a,
          tuned->source == DCN_TUNING_FILE ? "tuning file" : "override", why,
          b);
}

int dcn_vector_width(int channels, int max_vec) {
  for (int v = 8; v > 1; v /= 2)
    if (v <= max_vec && channels % v == 0)
      return v;
  return 1;
}

int dcn_tuning_candidates(dcnv4_context *ctx, dcn_kernel_id kernel,
                          dcnv4_dtype dtype, int group_channels,
                          dcn_launch_config cfgs[2]) {
  cfgs[0] = dcn_tuning_lookup(ctx, kernel, dtype, group_channels);
  if (cfgs[0].source == DCN_TUNING_BUILTIN)
    return 1;
  cfgs[1] = dcn_tuning_builtin(ctx, kernel, dtype, group_channels);
  return dcn_tuning_same(&cfgs[0], &cfgs[1]) ? 1 : 2;
}
