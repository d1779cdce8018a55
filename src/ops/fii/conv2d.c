/* Launcher of the dense convolution (conv2d.cl): the stem's and the
 * downsampling layers' 3x3 stride-2 convolutions, any shape. */
#include "ops/fii/fii_common.h"

#include <stdio.h>

/* Mirrors conv2d_geometry in conv2d.cl. */
typedef struct conv2d_geometry_arg {
  cl_int in_channels, in_height, in_width;
  cl_int out_channels, out_height, out_width;
  cl_int ksize, stride, pad;
} conv2d_geometry_arg;

int32_t dcn_conv2d_out_size(int32_t in, int32_t kernel, int32_t stride,
                            int32_t pad) {
  if (in < 1 || kernel < 1 || stride < 1 || pad < 0)
    return 0;
  const int64_t span = (int64_t)in + 2 * (int64_t)pad - kernel;
  if (span < 0)
    return 0;
  const int64_t out = span / stride + 1;
  return out > INT32_MAX ? 0 : (int32_t)out;
}

/* The tile (pixels x channels, 4 x 4 per work-item): 64 x 64 (256 items);
 * 128 x 32 where there are at most 32 output channels (the stem's first
 * convolution), so that half the tile is not idle; 32 x 32 (64 items) on
 * devices or builds that allow fewer than 256. */
static dcnv4_status conv2d_kernel(dcnv4_context *ctx, const dcn_conv2d_shape *s,
                                  bool idx64, cl_kernel *kernel, int *tm,
                                  int *tn) {
  int m = s->out_channels <= 32 ? 128 : 64, n = s->out_channels <= 32 ? 32 : 64;
  for (;;) {
    const size_t local = (size_t)(m / 4) * (size_t)(n / 4);
    dcnv4_status st = DCNV4_ERROR_BUILD_FAILED;
    if (local <= ctx->max_work_group_size) {
      char options[128];
      snprintf(options, sizeof options,
               "-DIDX64=%d -DTM=%d -DTN=%d -DNCHW=%d%s", idx64 ? 1 : 0, m, n,
               s->input_nchw ? 1 : 0, dcn_fii_dtype_option(s->dtype));
      st = dcn_get_kernel(ctx, "fii_conv2d", options, "conv2d", kernel);
      if (st == DCNV4_SUCCESS &&
          dcn_kernel_item_limit(ctx, *kernel, local) >= local) {
        *tm = m;
        *tn = n;
        return DCNV4_SUCCESS;
      }
      if (st != DCNV4_SUCCESS && st != DCNV4_ERROR_BUILD_FAILED)
        return st;
    }
    if (m == 32 && n == 32) {
      if (st == DCNV4_ERROR_BUILD_FAILED && local <= ctx->max_work_group_size)
        return st; /* the compiler's verdict, its log on the context */
      return dcn_fail(ctx, DCNV4_ERROR_UNSUPPORTED,
                      "conv2d: the device or the built kernel allows fewer "
                      "than 64 work-items per group");
    }
    m = n = 32;
  }
}

dcnv4_status dcn_conv2d_forward(dcnv4_context *ctx, const dcn_conv2d_shape *s,
                                cl_mem input, cl_mem weight, cl_mem bias,
                                cl_mem output, cl_event *event) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (!s)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "conv2d: shape is NULL");
  const int32_t ho = dcn_conv2d_out_size(s->in_height, s->kernel, s->stride,
                                         s->pad),
                wo = dcn_conv2d_out_size(s->in_width, s->kernel, s->stride,
                                         s->pad);
  if (s->batch < 1 || s->in_height < 1 || s->in_width < 1 ||
      s->in_channels < 1 || s->out_channels < 1 || s->kernel < 1 ||
      s->stride < 1 || s->pad < 0 || ho < 1 || wo < 1 ||
      dcnv4_dtype_size(s->dtype) == 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "conv2d: batch %d, input %dx%d, channels %d -> %d, kernel "
                    "%d, stride %d, pad %d, dtype %d: the sizes must be "
                    "positive (pad non-negative), the kernel must fit the "
                    "padded input and the dtype must be known",
                    (int)s->batch, (int)s->in_height, (int)s->in_width,
                    (int)s->in_channels, (int)s->out_channels, (int)s->kernel,
                    (int)s->stride, (int)s->pad, (int)s->dtype);
  const uint64_t pixels_in = (uint64_t)s->in_height * (uint64_t)s->in_width,
                 pixels_out = (uint64_t)ho * (uint64_t)wo,
                 taps = (uint64_t)s->kernel * (uint64_t)s->kernel;
  uint64_t in_elems = 0, out_elems = 0, m = 0, w_elems = 0, tiles = 0;
  size_t in_bytes = 0, out_bytes = 0, w_bytes = 0, b_bytes = 0;
  if (!dcn_mul_u64(pixels_in * (uint64_t)s->in_channels, (uint64_t)s->batch,
                   &in_elems) ||
      !dcn_mul_u64(pixels_out, (uint64_t)s->batch, &m) ||
      !dcn_mul_u64(m, (uint64_t)s->out_channels, &out_elems) ||
      !dcn_mul_u64(taps * (uint64_t)s->in_channels, (uint64_t)s->out_channels,
                   &w_elems) ||
      w_elems > INT32_MAX ||
      !dcn_fii_act_bytes(in_elems, s->input_nchw ? DCNV4_FLOAT32 : s->dtype,
                         &in_bytes) ||
      !dcn_fii_act_bytes(out_elems, s->dtype, &out_bytes) ||
      !dcn_fii_bytes(w_elems, &w_bytes) ||
      !dcn_fii_bytes((uint64_t)s->out_channels, &b_bytes))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "conv2d: batch %d, %dx%d, channels %d -> %d, kernel %d "
                    "overflows",
                    (int)s->batch, (int)s->in_height, (int)s->in_width,
                    (int)s->in_channels, (int)s->out_channels, (int)s->kernel);
  dcnv4_status st;
  if ((st = dcn_check_buffer(ctx, input, "conv2d input", in_bytes)) ||
      (st = dcn_check_buffer(ctx, weight, "conv2d weight", w_bytes)) ||
      (bias && (st = dcn_check_buffer(ctx, bias, "conv2d bias", b_bytes))) ||
      (st = dcn_check_buffer(ctx, output, "conv2d output", out_bytes)))
    return st;
  const cl_mem bufs[] = {output, input, weight, bias};
  const char *const names[] = {"conv2d output", "conv2d input", "conv2d weight",
                               "conv2d bias"};
  const bool readonly[] = {false, true, true, true};
  if ((st = dcn_check_no_alias(ctx, bufs, names, readonly, bias ? 4 : 3)))
    return st;
  const bool idx64 = in_elems > INT32_MAX || out_elems > INT32_MAX;
  cl_kernel k;
  int tm = 0, tn = 0;
  if ((st = conv2d_kernel(ctx, s, idx64, &k, &tm, &tn)))
    return st;
  const uint64_t tiles_n =
      ((uint64_t)s->out_channels + (uint64_t)tn - 1) / (uint64_t)tn;
  const size_t local = (size_t)(tm / 4) * (size_t)(tn / 4);
  uint64_t items = 0;
  if (!dcn_mul_u64((m + (uint64_t)tm - 1) / (uint64_t)tm, tiles_n, &tiles) ||
      !dcn_mul_u64(tiles, local, &items) || items > SIZE_MAX ||
      (ctx->address_bits < 64 && items > 0xffffffffull))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "conv2d: %llu output pixels are too many for one launch",
                    (unsigned long long)m);
  conv2d_geometry_arg g = {s->in_channels,  s->in_height, s->in_width,
                           s->out_channels, ho,           wo,
                           s->kernel,       s->stride,    s->pad};
  dcn_fii_index mi;
  const cl_int has_bias = bias ? 1 : 0;
  cl_mem bias_arg = bias ? bias : weight; /* not read without a bias */
  const dcn_arg args[] = {DCN_ARG(input),    DCN_ARG(weight),
                          DCN_ARG(bias_arg), DCN_ARG(output),
                          DCN_ARG(g),        dcn_fii_index_arg(&mi, idx64, m),
                          DCN_ARG(has_bias)};
  if ((st = dcn_set_args(ctx, k, args, sizeof args / sizeof *args, "conv2d")))
    return st;
  const size_t global = (size_t)items;
  return dcn_enqueue_nd(ctx, k, 1, &global, &local, 0, NULL, event, "conv2d");
}
