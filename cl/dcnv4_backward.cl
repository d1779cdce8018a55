// DCNv4 core operator, backward (DESIGN.md §1.1).
//
// One work-item handles one (output pixel, group): for each of the K points
// it walks the group's D channels VEC at a time, sums the offset and weight
// gradients over the channels in registers (no cross-item reduction), and
// scatters the input gradient with float atomics into `grad_acc` (fp32:
// grad_input itself, zeroed first; fp16/bf16: an fp32 workspace converted
// afterwards).
//
// Build-time defines: as dcnv4_forward.cl.

#define D GROUP_CHANNELS
#define K (KH * KW - REMOVE_CENTER)
#define CHUNKS (D / VEC)

typedef struct dcnv4_geometry {
  int height_in, width_in, height_out, width_out, group;
  int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  float offset_scale;
  int offset_mask_stride;
} dcnv4_geometry;

#if VEC == 1
#define ATOMIC_ADD_V(p, v) atomic_add_float((p), (v))
#else
inline void atomic_add_v(volatile __global float *p, floatv v) {
  float e[VEC];
  CAT(vstore, VEC)(v, 0, e);
  for (int c = 0; c < VEC; c++)
    atomic_add_float(p + c, e[c]);
}
#define ATOMIC_ADD_V(p, v) atomic_add_v((p), (v))
#endif

__kernel void dcnv4_backward(__global const storage_t *restrict input,
                             __global const storage_t *restrict offset_mask,
                             __global const storage_t *restrict grad_output,
                             __global float *grad_acc,
                             __global storage_t *restrict grad_offset_mask,
                             const dcnv4_geometry g, const idx_t items) {
  const idx_t pg = (idx_t)get_global_id(0);
  if (pg >= items)
    return;
  const int grp = (int)(pg % (idx_t)g.group);
  const idx_t pixel = pg / (idx_t)g.group;
  const int wo = (int)(pixel % (idx_t)g.width_out);
  const idx_t nh = pixel / (idx_t)g.width_out;
  const int ho = (int)(nh % (idx_t)g.height_out);
  const idx_t n = nh / (idx_t)g.height_out;
  const int C = g.group * D;

  const int half_w = (g.dilation_w * (KW - 1)) / 2;
  const int half_h = (g.dilation_h * (KH - 1)) / 2;
  const int base_w = half_w - g.pad_w + wo * g.stride_w;
  const int base_h = half_h - g.pad_h + ho * g.stride_h;

  const idx_t om_row = pixel * (idx_t)g.offset_mask_stride;
  __global const storage_t *om = offset_mask + om_row + (idx_t)(grp * K * 3);
  __global storage_t *gom = grad_offset_mask + om_row + (idx_t)(grp * K * 3);
  const idx_t image_start =
      n * (idx_t)g.height_in * (idx_t)g.width_in * (idx_t)C + (idx_t)(grp * D);
  __global const storage_t *image = input + image_start;
  volatile __global float *gimage = grad_acc + image_start;
  __global const storage_t *gout =
      grad_output + pixel * (idx_t)C + (idx_t)(grp * D);
  const idx_t row = (idx_t)g.width_in * (idx_t)C;

#if SOFTMAX
  float mmax = -INFINITY;
  for (int k = 0; k < K; k++)
    mmax = fmax(mmax, LOAD1(om, 2 * K + k));
  float msum = 0.0f;
  for (int k = 0; k < K; k++)
    msum += exp(LOAD1(om, 2 * K + k) - mmax);
  const float minv = 1.0f / msum;
  float grad_m[K]; // gradient w.r.t. the softmax outputs, before the Jacobian
#endif

  int k = 0;
  for (int i = 0; i < KW; i++) {
    for (int j = 0; j < KH; j++) {
      if (REMOVE_CENTER && i == KW / 2 && j == KH / 2)
        continue;
      const float dx = LOAD1(om, 2 * k);
      const float dy = LOAD1(om, 2 * k + 1);
#if SOFTMAX
      const float m = exp(LOAD1(om, 2 * K + k) - mmax) * minv;
#else
      const float m = LOAD1(om, 2 * K + k);
#endif
      const sample_coord x = split_coord(
          base_w, g.offset_scale * ((float)(i * g.dilation_w - half_w) + dx),
          g.width_in);
      const sample_coord y = split_coord(
          base_h, g.offset_scale * ((float)(j * g.dilation_h - half_h) + dy),
          g.height_in);
      float gx = 0.0f, gy = 0.0f, gm = 0.0f;
      if (x.inside && y.inside) {
        const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
        const bool w0 = x.low >= 0, w1 = x.low + 1 < g.width_in;
        const bool h0 = y.low >= 0, h1 = y.low + 1 < g.height_in;
        const idx_t o = (idx_t)y.low * row + (idx_t)x.low * (idx_t)C;
        for (int c = 0; c < CHUNKS; c++) {
          const idx_t oc = o + c * VEC;
          const floatv go = LOADV(gout + c * VEC);
          const floatv v00 = h0 && w0 ? LOADV(image + oc) : (floatv)(0.0f);
          const floatv v01 =
              h0 && w1 ? LOADV(image + (oc + C)) : (floatv)(0.0f);
          const floatv v10 =
              h1 && w0 ? LOADV(image + (oc + row)) : (floatv)(0.0f);
          const floatv v11 =
              h1 && w1 ? LOADV(image + (oc + row + C)) : (floatv)(0.0f);
          const floatv value = (hh * hw) * v00 + (hh * lw) * v01 +
                               (lh * hw) * v10 + (lh * lw) * v11;
          gm += HSUM(go * value);
          gx += HSUM(go * (hh * (v01 - v00) + lh * (v11 - v10)));
          gy += HSUM(go * (hw * (v10 - v00) + lw * (v11 - v01)));
          const floatv gi = m * go;
          if (h0 && w0)
            ATOMIC_ADD_V(gimage + oc, (hh * hw) * gi);
          if (h0 && w1)
            ATOMIC_ADD_V(gimage + (oc + C), (hh * lw) * gi);
          if (h1 && w0)
            ATOMIC_ADD_V(gimage + (oc + row), (lh * hw) * gi);
          if (h1 && w1)
            ATOMIC_ADD_V(gimage + (oc + row + C), (lh * lw) * gi);
        }
      }
      STORE1(m * g.offset_scale * gx, gom, 2 * k);
      STORE1(m * g.offset_scale * gy, gom, 2 * k + 1);
#if SOFTMAX
      grad_m[k] = gm;
#else
      STORE1(gm, gom, 2 * K + k);
#endif
      k++;
    }
  }
#if SOFTMAX
  // d softmax: dL/dlogit_k = m_k * (dL/dm_k - sum_j m_j dL/dm_j)
  float dot = 0.0f;
  for (int kk = 0; kk < K; kk++)
    dot += exp(LOAD1(om, 2 * K + kk) - mmax) * minv * grad_m[kk];
  for (int kk = 0; kk < K; kk++) {
    const float m = exp(LOAD1(om, 2 * K + kk) - mmax) * minv;
    STORE1(m * (grad_m[kk] - dot), gom, 2 * K + kk);
  }
#endif
  // The last group of a row also clears the row's padding lanes.
  if (grp == g.group - 1)
    for (int lane = g.group * K * 3; lane < g.offset_mask_stride; lane++)
      STORE1(0.0f, grad_offset_mask + om_row, lane);
}
