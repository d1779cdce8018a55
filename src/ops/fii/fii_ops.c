/* Launchers of the FlashInternImage model's elementwise and pooling kernels
 * (fii_ops.cl): residual with layer scale, global average pooling, and the
 * GEMM epilogues' pass after CLBlast. */
#include "ops/fii/fii_common.h"

#include <stdio.h>

/* Elementwise work-groups: a fixed size, which dcn_enqueue_1d shrinks to
 * what the device and kernel allow. */
#define FII_LOCAL 256

static dcnv4_status fii_kernel(dcnv4_context *ctx, const char *name, bool idx64,
                               cl_kernel *k) {
  return dcn_get_kernel(ctx, "fii_ops", idx64 ? "-DIDX64=1" : "-DIDX64=0", name,
                        k);
}

dcnv4_status dcn_gemm_epilogue_kernel(dcnv4_context *ctx,
                                      dcn_gemm_epilogue_kind kind, bool idx64,
                                      cl_kernel *kernel) {
  return fii_kernel(ctx, kind == DCN_GEMM_GELU ? "bias_gelu" : "residual_add",
                    idx64, kernel);
}

dcnv4_status dcn_run_gemm_epilogue(dcnv4_context *ctx, cl_kernel k,
                                   dcn_gemm_epilogue_kind kind, bool idx64,
                                   cl_mem c, cl_mem bias, cl_mem residual,
                                   cl_mem scale, uint64_t rows, int32_t cols,
                                   cl_event *event) {
  dcn_fii_index count;
  const uint64_t n = rows * (uint64_t)cols;
  const cl_int cc = cols, has_bias = bias ? 1 : 0, has_scale = scale ? 1 : 0;
  cl_mem bias_arg = bias ? bias : c, scale_arg = scale ? scale : c;
  dcnv4_status st;
  if (kind == DCN_GEMM_GELU) {
    const dcn_arg args[] = {DCN_ARG(c), DCN_ARG(bias_arg),
                            dcn_fii_index_arg(&count, idx64, n), DCN_ARG(cc),
                            DCN_ARG(has_bias)};
    st = dcn_set_args(ctx, k, args, sizeof args / sizeof *args, "bias_gelu");
  } else {
    const dcn_arg args[] = {DCN_ARG(residual),
                            DCN_ARG(c),
                            DCN_ARG(bias_arg),
                            DCN_ARG(scale_arg),
                            dcn_fii_index_arg(&count, idx64, n),
                            DCN_ARG(cc),
                            DCN_ARG(has_bias),
                            DCN_ARG(has_scale)};
    st = dcn_set_args(ctx, k, args, sizeof args / sizeof *args, "residual_add");
  }
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_enqueue_1d(ctx, k, n, FII_LOCAL, 0, NULL, event,
                        kind == DCN_GEMM_GELU ? "bias_gelu" : "residual_add");
}

dcnv4_status dcn_residual_forward(dcnv4_context *ctx, uint64_t rows,
                                  int32_t channels, cl_mem y, cl_mem scale,
                                  cl_mem inout, cl_event *event) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (rows < 1 || channels < 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "residual: %llu rows of %d channels; both must be at "
                    "least 1",
                    (unsigned long long)rows, (int)channels);
  uint64_t elems = 0;
  size_t bytes = 0, c_bytes = 0;
  if (!dcn_mul_u64(rows, (uint64_t)channels, &elems) ||
      !dcn_fii_bytes(elems, &bytes) ||
      !dcn_fii_bytes((uint64_t)channels, &c_bytes))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "residual: %llu x %d overflows", (unsigned long long)rows,
                    (int)channels);
  dcnv4_status st;
  if ((st = dcn_check_buffer(ctx, y, "residual input", bytes)) ||
      (scale &&
       (st = dcn_check_buffer(ctx, scale, "residual scale", c_bytes))) ||
      (st = dcn_check_buffer(ctx, inout, "residual inout", bytes)))
    return st;
  const cl_mem bufs[] = {inout, y, scale};
  const char *const names[] = {"residual inout", "residual input",
                               "residual scale"};
  const bool readonly[] = {false, true, true};
  if ((st = dcn_check_no_alias(ctx, bufs, names, readonly, scale ? 3 : 2)))
    return st;
  const bool idx64 = elems > INT32_MAX;
  cl_kernel k;
  if ((st = dcn_gemm_epilogue_kernel(ctx, DCN_GEMM_RESIDUAL, idx64, &k)))
    return st;
  return dcn_run_gemm_epilogue(ctx, k, DCN_GEMM_RESIDUAL, idx64, y, NULL, inout,
                               scale, rows, channels, event);
}

dcnv4_status dcn_avgpool_forward(dcnv4_context *ctx, int32_t batch,
                                 uint64_t positions, int32_t channels,
                                 dcnv4_dtype dtype, cl_mem x, cl_mem out,
                                 cl_event *event) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (batch < 1 || positions < 1 || channels < 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "avgpool: batch %d, %llu positions, %d channels; each "
                    "must be at least 1",
                    (int)batch, (unsigned long long)positions, (int)channels);
  if (dcnv4_dtype_size(dtype) == 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "avgpool: unknown dtype %d", (int)dtype);
  uint64_t in_elems = 0;
  const uint64_t out_elems = (uint64_t)batch * (uint64_t)channels;
  size_t in_bytes = 0, out_bytes = 0;
  if (!dcn_mul_u64(positions, out_elems, &in_elems) ||
      !dcn_fii_act_bytes(in_elems, dtype, &in_bytes) ||
      !dcn_fii_act_bytes(out_elems, dtype, &out_bytes))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "avgpool: %d x %llu x %d overflows", (int)batch,
                    (unsigned long long)positions, (int)channels);
  dcnv4_status st;
  if ((st = dcn_check_buffer(ctx, x, "avgpool input", in_bytes)) ||
      (st = dcn_check_buffer(ctx, out, "avgpool output", out_bytes)))
    return st;
  if (x == out)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                    "avgpool: the output is the input");
  const bool idx64 = in_elems > INT32_MAX;
  cl_kernel k;
  char options[64];
  snprintf(options, sizeof options, "-DIDX64=%d%s", idx64 ? 1 : 0,
           dcn_fii_dtype_option(dtype));
  if ((st = dcn_get_kernel(ctx, "fii_ops", options, "avgpool", &k)))
    return st;
  dcn_fii_index count, pos;
  const cl_int c = channels;
  const cl_float inv = (cl_float)(1.0 / (double)positions);
  const dcn_arg args[] = {DCN_ARG(x),
                          DCN_ARG(out),
                          dcn_fii_index_arg(&count, idx64, out_elems),
                          dcn_fii_index_arg(&pos, idx64, positions),
                          DCN_ARG(c),
                          DCN_ARG(inv)};
  if ((st = dcn_set_args(ctx, k, args, sizeof args / sizeof *args, "avgpool")))
    return st;
  return dcn_enqueue_1d(ctx, k, out_elems, FII_LOCAL, 0, NULL, event,
                        "avgpool");
}
