/* Built-in launch defaults by device class. */
#include "tuning.h"

/* One row per (device class, kernel); fp16/bf16 rows may differ later. */
typedef struct tuning_row {
  dcn_vendor vendor;
  dcn_kernel_id kernel;
  dcn_launch_config config;
} tuning_row;

static const tuning_row defaults[] = {
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_DCNV4_FORWARD, {4, 128}},
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_DCNV4_BACKWARD, {4, 128}},
    {DCN_VENDOR_AMD, DCN_KERNEL_DCNV4_FORWARD, {4, 256}},
    {DCN_VENDOR_AMD, DCN_KERNEL_DCNV4_BACKWARD, {4, 256}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_DCNV4_FORWARD, {4, 128}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_DCNV4_BACKWARD, {4, 128}},
    /* PoCL's CPU device vectorises across work-items; wide groups pay. */
    {DCN_VENDOR_CPU, DCN_KERNEL_DCNV4_FORWARD, {8, 256}},
    {DCN_VENDOR_CPU, DCN_KERNEL_DCNV4_BACKWARD, {8, 64}},
    /* Layer kernels: one element per work-item, max_vec unused. */
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_LAYER_ELEMENTWISE, {1, 256}},
    {DCN_VENDOR_NVIDIA, DCN_KERNEL_LAYER_DWCONV, {1, 128}},
    {DCN_VENDOR_AMD, DCN_KERNEL_LAYER_ELEMENTWISE, {1, 256}},
    {DCN_VENDOR_AMD, DCN_KERNEL_LAYER_DWCONV, {1, 256}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_LAYER_ELEMENTWISE, {1, 256}},
    {DCN_VENDOR_INTEL_GPU, DCN_KERNEL_LAYER_DWCONV, {1, 128}},
    {DCN_VENDOR_CPU, DCN_KERNEL_LAYER_ELEMENTWISE, {1, 256}},
    {DCN_VENDOR_CPU, DCN_KERNEL_LAYER_DWCONV, {1, 256}},
};

static const dcn_launch_config fallback = {4, 64};

dcn_launch_config dcn_tuning_lookup(const dcnv4_context *ctx,
                                    dcn_kernel_id kernel, dcnv4_dtype dtype) {
  (void)dtype;
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
    if (defaults[i].vendor == ctx->vendor && defaults[i].kernel == kernel)
      return defaults[i].config;
  return fallback;
}

int dcn_vector_width(int channels, int max_vec) {
  for (int v = 8; v > 1; v /= 2)
    if (v <= max_vec && channels % v == 0)
      return v;
  return 1;
}
