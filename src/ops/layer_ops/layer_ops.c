/* Launchers of the small layer kernels (layer_ops.cl). */
#include "layers/layer.h"
#include "ops/common/op_common.h"
#include "tuning/tuning.h"

#include <stdio.h>
#include <string.h>

/* Mirrors image_geometry in layer_ops.cl. */
typedef struct image_geometry_arg {
  cl_int height, width, channels;
} image_geometry_arg;

dcnv4_status dcn_layer_kernel(dcnv4_context *ctx, dcn_layer_kernel_id id,
                              dcnv4_dtype dtype, int arg, bool idx64,
                              cl_kernel *kernel) {
  char options[128];
  const char *name = "bias_store";
  int has_bias = id == DCN_LK_CONVERT_ONLY ? 0 : 1;
  /* Conversions and bias share one program per dtype. */
  int n =
      snprintf(options, sizeof options, "-DDTYPE=%d -DIDX64=%d -DHAS_BIAS=%d",
               (int)dtype, idx64 ? 1 : 0, has_bias);
  switch (id) {
  case DCN_LK_TO_FLOAT: name = "to_float"; break;
  case DCN_LK_BIAS_STORE:
  case DCN_LK_CONVERT_ONLY: break;
  case DCN_LK_DWCONV:
    name = "dwconv";
    snprintf(options + n, sizeof options - (size_t)n, " -DDW_K=%d", arg);
    break;
  case DCN_LK_CFS_BLEND:
    name = "cfs_blend";
    snprintf(options + n, sizeof options - (size_t)n, " -DGROUP_CHANNELS=%d",
             arg);
    break;
  case DCN_LK_MASK_ROWS: name = "mask_rows"; break;
  case DCN_LK_FDA_SAMPLING:
    name = "fda_sampling";
    snprintf(options + n, sizeof options - (size_t)n,
             " -DFDA_SAMPLING=1 -DFDA_MAX_LEVELS=%d", DCNV4_FDA_MAX_LEVELS);
    break;
  }
  return dcn_get_kernel(ctx, "layer_ops", options, name, kernel);
}

static size_t local_size(dcnv4_context *ctx, dcn_kernel_id id) {
  return dcn_tuning_layer_ops(ctx, id).local_size;
}

dcnv4_status dcn_run_to_float(dcnv4_context *ctx, cl_kernel k, bool idx64,
                              cl_mem src, cl_mem dst, uint64_t count,
                              cl_event *event) {
  dcn_index_arg n;
  const dcn_arg args[] = {DCN_ARG(src), DCN_ARG(dst),
                          dcn_index_arg_make(&n, idx64, count)};
  dcnv4_status st = dcn_set_args(ctx, k, args, 3, "to_float");
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_enqueue_1d(ctx, k, count,
                        local_size(ctx, DCN_KERNEL_LAYER_ELEMENTWISE), 0, NULL,
                        event, "to_float");
}

dcnv4_status dcn_run_bias_store(dcnv4_context *ctx, cl_kernel k, bool idx64,
                                cl_mem src, cl_mem bias, cl_mem dst,
                                uint64_t rows, int32_t cols, cl_event *event) {
  dcn_index_arg n;
  cl_int c = cols;
  uint64_t count = rows * (uint64_t)cols;
  if (!bias)
    bias = src; /* not read (HAS_BIAS=0); avoids a NULL kernel argument */
  const dcn_arg args[] = {DCN_ARG(src), DCN_ARG(bias), DCN_ARG(dst),
                          dcn_index_arg_make(&n, idx64, count), DCN_ARG(c)};
  dcnv4_status st = dcn_set_args(ctx, k, args, 5, "bias_store");
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_enqueue_1d(ctx, k, count,
                        local_size(ctx, DCN_KERNEL_LAYER_ELEMENTWISE), 0, NULL,
                        event, "bias_store");
}

dcnv4_status dcn_run_dwconv(dcnv4_context *ctx, cl_kernel k, bool idx64,
                            cl_mem src, cl_mem weight, cl_mem bias, cl_mem dst,
                            int32_t batch, int32_t height, int32_t width,
                            int32_t channels, cl_event *event) {
  dcn_index_arg n;
  image_geometry_arg g = {height, width, channels};
  uint64_t count =
      (uint64_t)batch * (uint64_t)height * (uint64_t)width * (uint64_t)channels;
  const dcn_arg args[] = {DCN_ARG(src),  DCN_ARG(weight),
                          DCN_ARG(bias), DCN_ARG(dst),
                          DCN_ARG(g),    dcn_index_arg_make(&n, idx64, count)};
  dcnv4_status st = dcn_set_args(ctx, k, args, 6, "dwconv");
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_enqueue_1d(ctx, k, count, local_size(ctx, DCN_KERNEL_LAYER_DWCONV),
                        0, NULL, event, "dwconv");
}

dcnv4_status dcn_run_cfs_blend(dcnv4_context *ctx, cl_kernel k, bool idx64,
                               cl_mem x, cl_mem v, cl_mem logits, cl_mem bias,
                               uint64_t rows, int32_t group,
                               int32_t group_channels, cl_event *event) {
  dcn_index_arg n;
  cl_int g = group;
  uint64_t count = rows * (uint64_t)group * (uint64_t)group_channels;
  const dcn_arg args[] = {
      DCN_ARG(x),    DCN_ARG(v), DCN_ARG(logits),
      DCN_ARG(bias), DCN_ARG(g), dcn_index_arg_make(&n, idx64, count)};
  dcnv4_status st = dcn_set_args(ctx, k, args, 6, "cfs_blend");
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_enqueue_1d(ctx, k, count,
                        local_size(ctx, DCN_KERNEL_LAYER_ELEMENTWISE), 0, NULL,
                        event, "cfs_blend");
}

dcnv4_status dcn_run_mask_rows(dcnv4_context *ctx, cl_kernel k, bool idx64,
                               cl_mem x, cl_mem mask, uint64_t rows,
                               int32_t cols, cl_event *event) {
  dcn_index_arg n;
  cl_int c = cols;
  uint64_t count = rows * (uint64_t)cols;
  const dcn_arg args[] = {DCN_ARG(x), DCN_ARG(mask),
                          dcn_index_arg_make(&n, idx64, count), DCN_ARG(c)};
  dcnv4_status st = dcn_set_args(ctx, k, args, 4, "mask_rows");
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_enqueue_1d(ctx, k, count,
                        local_size(ctx, DCN_KERNEL_LAYER_ELEMENTWISE), 0, NULL,
                        event, "mask_rows");
}

/* Mirrors fda_sampling_geometry in layer_ops.cl (4-byte fields). */
typedef struct fda_sampling_geometry_arg {
  cl_int heads, levels, points, reference_dim;
  cl_int height[DCNV4_FDA_MAX_LEVELS];
  cl_int width[DCNV4_FDA_MAX_LEVELS];
} fda_sampling_geometry_arg;

dcnv4_status dcn_run_fda_sampling(dcnv4_context *ctx, cl_kernel k, bool idx64,
                                  cl_mem offsets, cl_mem offsets_bias,
                                  cl_mem logits, cl_mem logits_bias,
                                  cl_mem reference_points, cl_mem dst,
                                  const dcn_fda_sampling_geometry *g,
                                  uint64_t rows, cl_event *event) {
  dcn_index_arg n;
  fda_sampling_geometry_arg geo;
  memset(&geo, 0, sizeof geo);
  geo.heads = g->heads;
  geo.levels = g->levels;
  geo.points = g->points;
  geo.reference_dim = g->reference_dim;
  for (int l = 0; l < g->levels && l < DCNV4_FDA_MAX_LEVELS; l++) {
    geo.height[l] = g->height[l];
    geo.width[l] = g->width[l];
  }
  uint64_t count =
      rows * (uint64_t)g->heads * (uint64_t)g->levels * (uint64_t)g->points;
  const dcn_arg args[] = {DCN_ARG(offsets),
                          DCN_ARG(offsets_bias),
                          DCN_ARG(logits),
                          DCN_ARG(logits_bias),
                          DCN_ARG(reference_points),
                          DCN_ARG(dst),
                          DCN_ARG(geo),
                          dcn_index_arg_make(&n, idx64, count)};
  dcnv4_status st = dcn_set_args(ctx, k, args, 8, "fda_sampling");
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_enqueue_1d(ctx, k, count,
                        local_size(ctx, DCN_KERNEL_LAYER_ELEMENTWISE), 0, NULL,
                        event, "fda_sampling");
}
