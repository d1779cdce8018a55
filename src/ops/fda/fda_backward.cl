// FlashDeformAttn core operator, backward (DESIGN.md §1.2).
//
// One work-item handles one (batch, query, head): for each of the L*K points
// it walks the head's D channels VEC at a time, sums the location and
// attention-weight gradients over the channels in registers (no cross-item
// reduction), and scatters the value gradient with float atomics into
// `grad_acc` (fp32: grad_value itself, zeroed first; fp16/bf16: an fp32
// workspace converted afterwards). The gradients of the attention weights
// are kept in a private array and pushed through the softmax Jacobian at
// the end: dlogit_i = m_i * (dm_i - sum_j m_j dm_j).
//
// Build-time defines: see common.h and fda_common.h.

#define ATOMIC_ADD_V(p, v) atomic_add_floatv((p), (v))

__kernel void
fda_backward(__global const storage_t *restrict value,
                           __global const storage_t *restrict sampling,
                           __global const storage_t *restrict grad_output,
                           __global float *grad_acc,
                           __global storage_t *restrict grad_sampling,
                           const fda_geometry g, const idx_t items) {
  const idx_t qg = (idx_t)get_global_id(0); // (batch, query, head) index
  if (qg >= items)
    return;
  const int grp = (int)(qg % (idx_t)g.group);
  const idx_t b = qg / (idx_t)g.group / (idx_t)g.queries;
  const int GD = g.group * D;

  __global const storage_t *row = sampling + qg * (idx_t)(LK * 3);
  __global storage_t *grow = grad_sampling + qg * (idx_t)(LK * 3);
  const idx_t image_start = b * (idx_t)g.value_len * GD + (idx_t)(grp * D);
  __global const storage_t *image = value + image_start;
  volatile __global float *gimage = grad_acc + image_start;
  __global const storage_t *gout = grad_output + qg * (idx_t)D;

  float mmax, minv;
  softmax_stats(row + 2 * LK, LK, &mmax, &minv);
#if SPECIALIZE
  float grad_m[LK]; // gradient w.r.t. the softmax outputs
#else
  float grad_m[MAX_SAMPLES];
#endif

  for (int l = 0; l < L; l++) {
    const int H = g.height[l], W = g.width[l];
    const idx_t level = (idx_t)g.start[l] * GD;
    const idx_t stride_row = (idx_t)W * GD;
    for (int k = 0; k < K; k++) {
      const int i = l * K + k;
      const float m = exp(LOAD1(row, 2 * LK + i) - mmax) * minv;
      const sample_coord x = fda_coord(LOAD1(row, 2 * i), W);
      const sample_coord y = fda_coord(LOAD1(row, 2 * i + 1), H);
      float gx = 0.0f, gy = 0.0f, gm = 0.0f;
      if (x.inside && y.inside) {
        const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
        const bool w0 = x.low >= 0, w1 = x.low + 1 < W;
        const bool h0 = y.low >= 0, h1 = y.low + 1 < H;
        const idx_t o = level + (idx_t)y.low * stride_row + (idx_t)x.low * GD;
        for (int c = 0; c < CHUNKS; c++) {
          const idx_t oc = o + c * VEC;
          const floatv go = LOADV(gout + c * VEC);
          const floatv v00 = h0 && w0 ? LOADV(image + oc) : (floatv)(0.0f);
          const floatv v01 =
              h0 && w1 ? LOADV(image + (oc + GD)) : (floatv)(0.0f);
          const floatv v10 =
              h1 && w0 ? LOADV(image + (oc + stride_row)) : (floatv)(0.0f);
          const floatv v11 =
              h1 && w1 ? LOADV(image + (oc + stride_row + GD)) : (floatv)(0.0f);
          const floatv sample = (hh * hw) * v00 + (hh * lw) * v01 +
                                (lh * hw) * v10 + (lh * lw) * v11;
          gm += HSUM(go * sample);
          gx += HSUM(go * (hh * (v01 - v00) + lh * (v11 - v10)));
          gy += HSUM(go * (hw * (v10 - v00) + lw * (v11 - v01)));
          const floatv gv = m * go;
          if (h0 && w0)
            ATOMIC_ADD_V(gimage + oc, (hh * hw) * gv);
          if (h0 && w1)
            ATOMIC_ADD_V(gimage + (oc + GD), (hh * lw) * gv);
          if (h1 && w0)
            ATOMIC_ADD_V(gimage + (oc + stride_row), (lh * hw) * gv);
          if (h1 && w1)
            ATOMIC_ADD_V(gimage + (oc + stride_row + GD), (lh * lw) * gv);
        }
      }
      // x = loc_x * W - 0.5: dx/dloc_x = W (same for y with H).
      STORE1(m * gx * (float)W, grow, 2 * i);
      STORE1(m * gy * (float)H, grow, 2 * i + 1);
      grad_m[i] = gm;
    }
  }
  float dot = 0.0f;
  for (int i = 0; i < LK; i++)
    dot += exp(LOAD1(row, 2 * LK + i) - mmax) * minv * grad_m[i];
  for (int i = 0; i < LK; i++) {
    const float m = exp(LOAD1(row, 2 * LK + i) - mmax) * minv;
    STORE1(m * (grad_m[i] - dot), grow, 2 * LK + i);
  }
}
