// FlashDeformAttn core operator, deterministic backward (DESIGN.md §1.2): no
// float atomics; see src/ops/common/deterministic.h for the steps and the workspace.
//
//   fda_det_points  one work-item per (batch, query, head): the softmax
//                   weights, buckets and counts, and the whole
//                   grad_sampling_loc_attn row, summed in a fixed order
//   fda_det_gather  one work-item per VEC channels of one (batch, value row,
//                   head): grad_value from the sorted buckets (zero for rows
//                   of no level)
//
// Point index p = qg * L*K + l*K + k with qg the (batch, query, head) index.
// Buckets of (batch, head): `per_head` = sum_l (H_l+1)*(W_l+1), level l's
// first at sum_{l' < l} (H_l'+1)*(W_l'+1); a point inside level l with
// top-left neighbour (y0, x0) goes to (b * group + head) * per_head +
// level base + (y0 + 1) * (W_l + 1) + x0 + 1.
//
// Build-time defines: see common.h and fda_common.h.

__kernel void fda_det_points(__global const storage_t *restrict value,
                             __global const storage_t *restrict sampling,
                             __global const storage_t *restrict grad_output,
                             __global storage_t *restrict grad_sampling,
                             const fda_geometry g, __global int *ws,
                             const int count_off, const int key_off,
                             const int m_off, const int scratch_off,
                             const int per_head, const idx_t items) {
  const idx_t qg = (idx_t)get_global_id(0);
  if (qg >= items)
    return;
  const int grp = (int)(qg % (idx_t)g.group);
  const idx_t b = qg / (idx_t)g.group / (idx_t)g.queries;
  const int GD = g.group * D;

  __global const storage_t *row = sampling + qg * (idx_t)(LK * 3);
  __global storage_t *grow = grad_sampling + qg * (idx_t)(LK * 3);
  __global const storage_t *image =
      value + b * (idx_t)g.value_len * GD + (idx_t)(grp * D);
  __global const storage_t *gout = grad_output + qg * (idx_t)D;
  __global int *count = ws + count_off;
  __global int *key = ws + key_off;
  __global float *weight = (__global float *)(ws + m_off);
  __global float *grad_m = (__global float *)(ws + scratch_off);
  const int p0 = (int)qg * LK;
  int bucket0 = ((int)b * g.group + grp) * per_head;

  float mmax, minv;
  softmax_stats(row + 2 * LK, LK, &mmax, &minv);

  float dot = 0.0f;
  for (int l = 0; l < L; l++) {
    const int H = g.height[l], W = g.width[l];
    const idx_t level = (idx_t)g.start[l] * GD;
    const idx_t stride_row = (idx_t)W * GD;
    for (int k = 0; k < K; k++) {
      const int i = l * K + k;
      const float m = exp(LOAD1(row, 2 * LK + i) - mmax) * minv;
      weight[p0 + i] = m;
      const sample_coord x = fda_coord(LOAD1(row, 2 * i), W);
      const sample_coord y = fda_coord(LOAD1(row, 2 * i + 1), H);
      float gx = 0.0f, gy = 0.0f, gm = 0.0f;
      int bucket = -1;
      if (x.inside && y.inside) {
        bucket = bucket0 + (y.low + 1) * (W + 1) + x.low + 1;
        atomic_inc((volatile __global int *)(count + bucket));
        const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
        const bool w0 = x.low >= 0, w1 = x.low + 1 < W;
        const bool h0 = y.low >= 0, h1 = y.low + 1 < H;
        const idx_t o = level + (idx_t)y.low * stride_row + (idx_t)x.low * GD;
        for (int c = 0; c < CHUNKS; c++) {
          const idx_t oc = o + c * VEC;
          const floatv go = LOADV(gout + c * VEC);
          const floatv zero = (floatv)(0.0f);
          const floatv v00 = h0 && w0 ? LOADV(image + oc) : zero;
          const floatv v01 = h0 && w1 ? LOADV(image + (oc + GD)) : zero;
          const floatv v10 = h1 && w0 ? LOADV(image + (oc + stride_row)) : zero;
          const floatv v11 =
              h1 && w1 ? LOADV(image + (oc + stride_row + GD)) : zero;
          const floatv sample = (hh * hw) * v00 + (hh * lw) * v01 +
                                (lh * hw) * v10 + (lh * lw) * v11;
          gm += HSUM(go * sample);
          gx += HSUM(go * (hh * (v01 - v00) + lh * (v11 - v10)));
          gy += HSUM(go * (hw * (v10 - v00) + lw * (v11 - v01)));
        }
      }
      key[p0 + i] = bucket;
      // x = loc_x * W - 0.5: dx/dloc_x = W (same for y with H).
      STORE1(m * gx * (float)W, grow, 2 * i);
      STORE1(m * gy * (float)H, grow, 2 * i + 1);
      grad_m[p0 + i] = gm;
      dot += m * gm;
    }
    bucket0 += (H + 1) * (W + 1);
  }
  for (int i = 0; i < LK; i++)
    STORE1(weight[p0 + i] * (grad_m[p0 + i] - dot), grow, 2 * LK + i);
}

__kernel void fda_det_gather(__global const storage_t *restrict sampling,
                             __global const storage_t *restrict grad_output,
                             __global storage_t *restrict grad_value,
                             const fda_geometry g,
                             __global const int *restrict ws,
                             const int offset_off, const int m_off,
                             const int record_off, const int per_head,
                             const idx_t items) {
  const idx_t gid = (idx_t)get_global_id(0);
  if (gid >= items)
    return;
  const int chunk = (int)(gid % CHUNKS);
  idx_t t = gid / CHUNKS;
  const int grp = (int)(t % g.group);
  t /= g.group; // value row of all batches: b * value_len + v
  const int v = (int)(t % g.value_len);
  const int b = (int)(t / g.value_len);
  const int GD = g.group * D;
  __global const int *offset = ws + offset_off;
  __global const int *record = ws + record_off;
  __global const float *weight = (__global const float *)(ws + m_off);

  // The level holding row v, if any.
  int lv = -1, base = 0, H = 1, W = 1;
  for (int l = 0, lb = 0; l < L; l++) {
    const int hl = g.height[l], wl = g.width[l];
    if (lv < 0 && v >= g.start[l] && v - g.start[l] < hl * wl) {
      lv = l;
      base = lb;
      H = hl;
      W = wl;
    }
    lb += (hl + 1) * (wl + 1);
  }
  floatv acc = (floatv)(0.0f);
  if (lv >= 0) {
    const int h = (v - g.start[lv]) / W, w = (v - g.start[lv]) - h * W;
    const int bucket0 = (b * g.group + grp) * per_head + base;
    for (int a = 0; a < 4; a++) {
      const int ay = h - (a >> 1), ax = w - (a & 1);
      const int bucket = bucket0 + (ay + 1) * (W + 1) + ax + 1;
      const int end = offset[bucket + 1];
      for (int r = offset[bucket]; r < end; r++) {
        const int p = record[r];
        const idx_t qg = (idx_t)(p / LK);
        const int i = p - (p / LK) * LK;
        __global const storage_t *row = sampling + qg * (idx_t)(LK * 3);
        const sample_coord x = fda_coord(LOAD1(row, 2 * i), W);
        const sample_coord y = fda_coord(LOAD1(row, 2 * i + 1), H);
        const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
        const float bw = a == 0   ? hh * hw
                         : a == 1 ? hh * lw
                         : a == 2 ? lh * hw
                                  : lh * lw;
        const floatv go = LOADV(grad_output + qg * (idx_t)D + chunk * VEC);
        acc += bw * (weight[p] * go);
      }
    }
  }
  STOREV(acc, grad_value + t * GD + grp * D + chunk * VEC);
}
