/* Built-in launch defaults by device class. */
#include "tuning.h"

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
};

const char *dcn_kernel_name(dcn_kernel_id kernel) {
  return kernel < DCN_KERNEL_COUNT ? kernel_names[kernel] : "?";
}

/* Each parameter's name and accepted values. */
static const struct {
  const char *name;
  long min, max;
  bool power_of_two;
} params[DCN_TUNING_PARAMS] = {
    [DCN_PARAM_VEC] = {"vec", 1, 8, true},
    [DCN_PARAM_LOCAL] = {"local", 1, 4096, false},
    [DCN_PARAM_STAGE] = {"stage", 0, 1, false},
    [DCN_PARAM_SPLIT] = {"split", 0, 1, false},
    [DCN_PARAM_UNROLL] = {"unroll", 0, 1, false},
    [DCN_PARAM_SPECIALIZE] = {"specialize", 0, 1, false},
};

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
    if (sscanf(entry, "%63[a-z0-9_].%31[a-z]=%ld%c", kernel, param, &value,
               &extra) == 3) {
      for (int i = 0; i < DCN_KERNEL_COUNT; i++)
        if (!strcmp(kernel, kernel_names[i]))
          k = i;
      for (int i = 0; i < DCN_TUNING_PARAMS; i++)
        if (!strcmp(param, params[i].name))
          which = i;
    }
    bool ok = k >= 0 && which >= 0 && value >= params[which].min &&
              value <= params[which].max &&
              (!params[which].power_of_two || (value & (value - 1)) == 0);
    if (!ok) {
      snprintf(why, why_size, "bad tuning entry \"%s\"", entry);
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
} tuning_row;

static const tuning_row defaults[] = {
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_DCNV4_FORWARD, {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_DCNV4_BACKWARD, {4, 128, 0, 1, 1, 1}},
    {DCN_VENDOR_AMD, DCN_KERNEL_DCNV4_FORWARD, {4, 256, 0, 0, 1, 1}},
    {DCN_VENDOR_AMD, DCN_KERNEL_DCNV4_BACKWARD, {4, 256, 0, 1, 1, 1}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_DCNV4_FORWARD, {4, 128, 0, 0, 1, 1}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_DCNV4_BACKWARD, {4, 128, 0, 1, 1, 1}},
    /* PoCL's CPU device vectorises across work-items; wide groups pay.
     * Kernels without barriers and unrolled loops compile several times
     * faster there, and PoCL builds one work-group function per program. */
    {DCN_VENDOR_CPU, DCN_KERNEL_DCNV4_FORWARD, {8, 256, 0, 0, 0, 0}},
    {DCN_VENDOR_CPU, DCN_KERNEL_DCNV4_BACKWARD, {8, 64, 0, 0, 0, 0}},
    /* FlashDeformAttn: the forward puts D/VEC work-items on one head (4-wide
     * fp32: a 32-channel head is one 128-byte line per corner, read by 8
     * neighbouring work-items); the backward loops over the channels. */
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_FDA_FORWARD, {4, 256, 0, 0, 1, 1}},
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_FDA_BACKWARD, {4, 128, 0, 0, 1, 1}},
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
};

static const dcn_launch_config fallback = {4, 64, 0, 1, 1, 1};

dcn_launch_config dcn_tuning_lookup(const dcnv4_context *ctx,
                                    dcn_kernel_id kernel, dcnv4_dtype dtype) {
  (void)dtype;
  dcn_launch_config c = fallback;
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
    if (defaults[i].vendor == ctx->vendor && defaults[i].kernel == kernel)
      c = defaults[i].config;
  if (kernel < DCN_KERNEL_COUNT) {
    const bool *set = ctx->tuning.set[kernel];
    const long *value = ctx->tuning.value[kernel];
    if (set[DCN_PARAM_VEC])
      c.max_vec = (int)value[DCN_PARAM_VEC];
    if (set[DCN_PARAM_LOCAL])
      c.local_size = (size_t)value[DCN_PARAM_LOCAL];
    if (set[DCN_PARAM_STAGE])
      c.stage = (int)value[DCN_PARAM_STAGE];
    if (set[DCN_PARAM_SPLIT])
      c.split = (int)value[DCN_PARAM_SPLIT];
    if (set[DCN_PARAM_UNROLL])
      c.unroll = (int)value[DCN_PARAM_UNROLL];
    if (set[DCN_PARAM_SPECIALIZE])
      c.specialize = (int)value[DCN_PARAM_SPECIALIZE];
  }
  return c;
}

int dcn_vector_width(int channels, int max_vec) {
  for (int v = 8; v > 1; v /= 2)
    if (v <= max_vec && channels % v == 0)
      return v;
  return 1;
}
