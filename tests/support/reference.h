/* Plain float64 reference of every operator, written straight from
 * DESIGN.md §1 for clarity, not speed. Tensors are channels-last doubles. */
#ifndef DCNV4_REFERENCE_H
#define DCNV4_REFERENCE_H

#include "dcnv4.h"

/* out (N,H_out,W_out,C) from input (N,H_in,W_in,C) and offset_mask
 * (N,H_out,W_out,S). */
void ref_dcnv4_forward(const dcnv4_params *p, const double *input,
                       const double *offset_mask, double *output);
/* grad_input and grad_offset_mask (both overwritten; padding lanes 0). */
void ref_dcnv4_backward(const dcnv4_params *p, const double *input,
                        const double *offset_mask, const double *grad_output,
                        double *grad_input, double *grad_offset_mask);

/* FlashDeformAttn (DESIGN.md §1.2): out (B,Q,G*D) from value (B,Nv,G,D) and
 * sampling_loc_attn (B,Q,G,L*K*3). */
void ref_fda_forward(const dcnv4_fda_params *p, const double *value,
                     const double *sampling_loc_attn, double *output);
/* grad_value (B,Nv,G,D) and grad_sampling_loc_attn (B,Q,G,L*K*3), both
 * overwritten. */
void ref_fda_backward(const dcnv4_fda_params *p, const double *value,
                      const double *sampling_loc_attn,
                      const double *grad_output, double *grad_value,
                      double *grad_sampling_loc_attn);

/* A weight of a layer by its state-dict key. */
typedef struct ref_weight {
  const char *key;
  const double *data; /* PyTorch layout */
} ref_weight;

/* DCNv4 layer forward (DESIGN.md §1.3): output (N, H*W, C) from input
 * (N, H*W, C), with the weights looked up by key among `weights` (those the
 * configuration does not use are ignored; a needed one that is absent makes
 * the reference return -1). */
int ref_dcnv4_layer_forward(const dcnv4_layer_dcnv4_config *c, int N, int H,
                            int W, const ref_weight *weights, size_t count,
                            const double *input, double *output);
/* The same with the intermediates of an fp16/bf16 layer rounded to `dtype`
 * where the library stores them (value, depthwise and offset/mask
 * projection outputs, the core output, the gate logits before their bias,
 * the gated features; sums in float64): the layer's 16-bit rounding, so
 * that its tests can hold it to the operator tolerance. The output itself
 * is not rounded. DCNV4_FLOAT32: ref_dcnv4_layer_forward. */
int ref_dcnv4_layer_forward_dtype(const dcnv4_layer_dcnv4_config *c,
                                  dcnv4_dtype dtype, int N, int H, int W,
                                  const ref_weight *weights, size_t count,
                                  const double *input, double *output);

/* Rounds n values to `dtype` (through fp32; nothing for fp32): where a
 * 16-bit layer or model stores a tensor. */
void ref_round(double *a, size_t n, dcnv4_dtype dtype);

/* FlashDeformAttn layer forward (DESIGN.md §1.3, Deformable-DETR's
 * MSDeformAttn): output (N, Lq, d_model) from query (N, Lq, d_model),
 * reference_points (N, Lq, n_levels, reference_dim), input_flatten
 * (N, Len_in, d_model) and an optional padding mask (N, Len_in) (non-zero =
 * padded; NULL for none), with the weights looked up by key (-1 if one is
 * absent). Locations in float64 (no rounding to fp16). */
int ref_fda_layer_forward(const dcnv4_layer_fda_config *c,
                          const dcnv4_layer_fda_shape *s,
                          const ref_weight *weights, size_t count,
                          const double *query, const double *reference_points,
                          const double *input_flatten,
                          const unsigned char *padding_mask, double *output);
/* The same with the intermediates of an fp16/bf16 layer rounded to `dtype`
 * where the library stores them (the value projection's output and the
 * core output; the locations and logits stay unrounded, sums in float64).
 * The output itself is not rounded. DCNV4_FLOAT32: ref_fda_layer_forward. */
int ref_fda_layer_forward_dtype(
    const dcnv4_layer_fda_config *c, dcnv4_dtype dtype,
    const dcnv4_layer_fda_shape *s, const ref_weight *weights, size_t count,
    const double *query, const double *reference_points,
    const double *input_flatten, const unsigned char *padding_mask,
    double *output);

/* ------------------------------------------- FlashInternImage pieces */

/* PyTorch's Conv2d (groups 1, dilation 1, square kernel), output
 * (N, Ho, Wo, Cout) channels-last with Ho = (H + 2 pad - k) / stride + 1;
 * input (N, Cin, H, W) when nchw, else (N, H, W, Cin); weight
 * (Cout, Cin, k, k); bias (Cout) or NULL. */
void ref_conv2d(int batch, int height, int width, int in_channels,
                int out_channels, int kernel, int stride, int pad, int nchw,
                const double *input, const double *weight, const double *bias,
                double *output);

/* Exact (erf) GELU. */
double ref_gelu(double x);

/* LayerNorm over the channels of each row (biased variance), then the
 * epilogue: 0 out = LN(x); 1 out = GELU(LN(x)); 2 out = residual + scale *
 * LN(x) (scale per channel, NULL for 1). out may be x or residual. */
void ref_layernorm(size_t rows, int channels, double eps, int epilogue,
                   const double *x, const double *weight, const double *bias,
                   const double *scale, const double *residual, double *out);

/* inout (rows, channels) += scale * y (scale per channel, NULL for 1). */
void ref_residual(size_t rows, int channels, const double *y,
                  const double *scale, double *inout);

/* out (N, C) = mean over the positions of x (N, positions, C). */
void ref_avgpool(int batch, size_t positions, int channels, const double *x,
                 double *out);

/* c = a (m, k) b^T (b (n, k)) + bias (n, or NULL), then the epilogue:
 * 0 c; 1 c = GELU(c); 2 residual += scale * c (scale per column, NULL for
 * 1), c then scratch. */
void ref_gemm_epilogue(size_t m, int n, int k, const double *a, const double *b,
                       const double *bias, int epilogue, const double *scale,
                       double *c, double *residual);

#endif
