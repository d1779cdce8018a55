/* The FlashInternImage model's kernels beyond the DCNv4 layer (issue 31):
 * dense convolution (stem, downsampling), LayerNorm (with its fused GELU and
 * post-norm residual forms), residual with layer scale, global average
 * pooling. Not installed; the model (src/model/) calls them.
 *
 * Every tensor here is row-major and contiguous from offset 0. The
 * activations (inputs, outputs, residuals) are stored in the `dtype` of the
 * call, the model's: fp32, or 16-bit in fp16 and bf16 models, each value
 * rounded once when stored, as PyTorch's half-precision modules round;
 * weights, biases and scales are fp32 (values of the model's dtype), and
 * every sum and reduction is fp32. The GEMM epilogue passes after CLBlast
 * (fp32 GEMMs only) are fp32. Each call checks its buffers
 * (dcn_check_buffer: non-NULL, this context, large enough) before it
 * enqueues anything, then enqueues on the context's queue after the commands
 * before it; `event` (may be NULL) receives the completion event. Kernels
 * are built (dcn_get_kernel) on first use and cached by the context. */
#ifndef DCNV4_FII_OPS_H
#define DCNV4_FII_OPS_H

#include "core/internal.h"

/* ------------------------------------------------------- convolution */

/* PyTorch's Conv2d with groups 1 and dilation 1, square kernel. */
typedef struct dcn_conv2d_shape {
  int32_t batch;
  int32_t in_height, in_width;
  int32_t in_channels, out_channels;
  int32_t kernel, stride, pad;
  /* true: input (N, Cin, H, W), the image as PyTorch takes it, fp32
   * whatever `dtype`; false: input (N, H, W, Cin), channels-last, in
   * `dtype` */
  bool input_nchw;
  dcnv4_dtype dtype; /* the output's storage (and a channels-last input's) */
} dcn_conv2d_shape;

/* PyTorch's output size: (in + 2*pad - kernel) / stride + 1, or 0 when the
 * kernel does not fit. */
int32_t dcn_conv2d_out_size(int32_t in, int32_t kernel, int32_t stride,
                            int32_t pad);

/* output (N, Ho, Wo, Cout) channels-last = conv(input, weight) + bias;
 * weight (Cout, Cin, k, k) as PyTorch stores it, bias (Cout) or NULL. */
dcnv4_status dcn_conv2d_forward(dcnv4_context *ctx, const dcn_conv2d_shape *s,
                                cl_mem input, cl_mem weight, cl_mem bias,
                                cl_mem output, cl_event *event);

/* --------------------------------------------------------- LayerNorm */

typedef enum dcn_norm_epilogue {
  DCN_NORM_PLAIN = 0, /* out = LN(x) */
  DCN_NORM_GELU,      /* out = GELU(LN(x)), exact erf GELU (the stem) */
  /* out = residual + scale * LN(x) (post-norm blocks; scale per channel or
   * NULL for 1); residual may be the same buffer as out */
  DCN_NORM_RESIDUAL
} dcn_norm_epilogue;

/* LayerNorm over the last dimension of x (rows, channels):
 * LN(x) = (x - mean) / sqrt(var + eps) * weight + bias, biased variance
 * (PyTorch's nn.LayerNorm). x may be the same buffer as out for
 * DCN_NORM_PLAIN and DCN_NORM_GELU. */
typedef struct dcn_layernorm_desc {
  uint64_t rows;
  int32_t channels;
  float eps;
  dcn_norm_epilogue epilogue;
  dcnv4_dtype dtype; /* x's, residual's and out's storage */
} dcn_layernorm_desc;

dcnv4_status dcn_layernorm_forward(dcnv4_context *ctx,
                                   const dcn_layernorm_desc *d, cl_mem x,
                                   cl_mem weight, cl_mem bias, cl_mem scale,
                                   cl_mem residual, cl_mem out,
                                   cl_event *event);

/* --------------------------------------------------- residual, pooling */

/* inout (rows, channels) += scale * y, scale per channel or NULL for 1
 * (the pre-norm blocks' x = x + gamma * f(x)). */
dcnv4_status dcn_residual_forward(dcnv4_context *ctx, uint64_t rows,
                                  int32_t channels, cl_mem y, cl_mem scale,
                                  cl_mem inout, cl_event *event);

/* out (N, C) = mean over the H*W positions of x (N, H*W, C): PyTorch's
 * AdaptiveAvgPool2d((1, 1)) on a channels-last tensor; x and out in
 * `dtype`. */
dcnv4_status dcn_avgpool_forward(dcnv4_context *ctx, int32_t batch,
                                 uint64_t positions, int32_t channels,
                                 dcnv4_dtype dtype, cl_mem x, cl_mem out,
                                 cl_event *event);

/* --------------------------------------------------- GEMM epilogues */

/* What dcn_gemm_linear_epilogue does after c = a b^T + bias:
 * DCN_GEMM_GELU c = GELU(c) (the MLP's fc1, the head's BatchNorm folded
 * into the 1x1 convolution); DCN_GEMM_RESIDUAL residual += scale * c, where
 * c is then not written (the MLP's fc2 and the DCNv4 layer's output
 * projection in pre-norm blocks). On linear.cl the epilogue is fused; on
 * CLBlast it is a pass of its own, and a residual GEMM then needs c as
 * scratch for the product (see dcn_gemm_linear_epilogue in layer.h). */
typedef enum dcn_gemm_epilogue_kind {
  DCN_GEMM_NONE = 0,
  DCN_GEMM_GELU,
  DCN_GEMM_RESIDUAL
} dcn_gemm_epilogue_kind;

typedef struct dcn_gemm_epilogue {
  dcn_gemm_epilogue_kind kind;
  cl_mem residual; /* DCN_GEMM_RESIDUAL: (m, n) fp32, updated in place */
  cl_mem scale;    /* DCN_GEMM_RESIDUAL: (n) fp32, or NULL for 1 */
} dcn_gemm_epilogue;

/* The epilogue as a pass of its own after CLBlast (fii_ops.cl), for
 * src/ops/linear/linear.c: the kernel for `kind` (DCN_GEMM_GELU: c =
 * GELU(c + bias); DCN_GEMM_RESIDUAL: residual += scale * (c + bias)), built
 * before anything is enqueued, then its launch on (rows, cols). bias and
 * scale may be NULL. dcn_residual_forward is the residual pass without a
 * bias. */
dcnv4_status dcn_gemm_epilogue_kernel(dcnv4_context *ctx,
                                      dcn_gemm_epilogue_kind kind, bool idx64,
                                      cl_kernel *kernel);
dcnv4_status dcn_run_gemm_epilogue(dcnv4_context *ctx, cl_kernel k,
                                   dcn_gemm_epilogue_kind kind, bool idx64,
                                   cl_mem c, cl_mem bias, cl_mem residual,
                                   cl_mem scale, uint64_t rows, int32_t cols,
                                   cl_event *event);

#endif /* DCNV4_FII_OPS_H */
