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

#endif
