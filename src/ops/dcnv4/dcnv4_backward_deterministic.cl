// DCNv4 core operator, deterministic backward (DESIGN.md §1.1): no float
// atomics; see src/ops/common/deterministic.h for the steps and the workspace.
//
//   dcnv4_det_points  one work-item per (pixel, group): the point weights,
//                     buckets and counts, and the whole grad_offset_mask row
//                     of the group, summed in a fixed order
//   dcnv4_det_gather  one work-item per VEC channels of one (input pixel,
//                     group): grad_input from the sorted buckets
//
// Point index p = (pixel * group + grp) * K + k; bucket of a point inside
// the image: ((n * group + grp) * (H_in + 1) + y0 + 1) * (W_in + 1) + x0 + 1
// with (y0, x0) its top-left neighbour.
//
// Build-time defines: as dcnv4_backward.cl (without NV_ATOMICS).

__kernel void dcnv4_det_points(__global const storage_t *restrict input,
                               __global const storage_t *restrict offset_mask,
                               __global const storage_t *restrict grad_output,
                               __global storage_t *restrict grad_offset_mask,
                               const dcnv4_geometry g, __global int *ws,
                               const int count_off, const int key_off,
                               const int m_off, const int scratch_off,
                               const idx_t items) {
  const idx_t pg = (idx_t)get_global_id(0);
  if (pg >= items)
    return;
  const int grp = (int)(pg % g.group);
  const idx_t pixel = pg / g.group;
  const int wo = (int)(pixel % g.width_out);
  const idx_t nh = pixel / g.width_out;
  const int ho = (int)(nh % g.height_out);
  const idx_t n = nh / g.height_out;
  const int C = g.group * D;

  const idx_t om_row = pixel * g.offset_mask_stride;
  __global const storage_t *om = offset_mask + om_row + grp * K * 3;
  __global storage_t *gom = grad_offset_mask + om_row + grp * K * 3;
  __global const storage_t *image =
      input + n * g.height_in * g.width_in * C + grp * D;
  __global const storage_t *gout = grad_output + pixel * C + grp * D;
  const idx_t row = (idx_t)g.width_in * C;
  __global int *count = ws + count_off;
  __global int *key = ws + key_off;
  __global float *weight = (__global float *)(ws + m_off);
  __global float *scratch = (__global float *)(ws + scratch_off);
  const int p0 = (int)pg * K;
  const int bucket0 =
      ((int)n * g.group + grp) * (g.height_in + 1) * (g.width_in + 1);

  float mmax, minv;
  group_softmax_stats(om, g, &mmax, &minv);
  float dot = 0.0f; // sum_k m_k dL/dm_k, for the softmax Jacobian
  for (int k = 0; k < K; k++) {
    const float m = point_weight(g, LOAD1(om, 2 * K + k), mmax, minv);
    weight[p0 + k] = m;
    sample_coord x, y;
    point_position(g, ho, wo, k, LOAD1(om, 2 * k), LOAD1(om, 2 * k + 1), &x,
                   &y);
    float gx = 0.0f, gy = 0.0f, gm = 0.0f;
    int bucket = -1;
    if (x.inside && y.inside) {
      bucket = bucket0 + (y.low + 1) * (g.width_in + 1) + x.low + 1;
      atomic_inc((volatile __global int *)(count + bucket));
      const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
      const bool w0 = x.low >= 0, w1 = x.low + 1 < g.width_in;
      const bool h0 = y.low >= 0, h1 = y.low + 1 < g.height_in;
      const idx_t o = (idx_t)y.low * row + (idx_t)x.low * C;
      for (int c = 0; c < CHUNKS; c++) {
        const idx_t oc = o + c * VEC;
        const floatv go = LOADV(gout + c * VEC);
        const floatv zero = (floatv)(0.0f);
        const floatv v00 = h0 && w0 ? LOADV(image + oc) : zero;
        const floatv v01 = h0 && w1 ? LOADV(image + (oc + C)) : zero;
        const floatv v10 = h1 && w0 ? LOADV(image + (oc + row)) : zero;
        const floatv v11 = h1 && w1 ? LOADV(image + (oc + row + C)) : zero;
        gm += HSUM(go * ((hh * hw) * v00 + (hh * lw) * v01 + (lh * hw) * v10 +
                         (lh * lw) * v11));
        gx += HSUM(go * (hh * (v01 - v00) + lh * (v11 - v10)));
        gy += HSUM(go * (hw * (v10 - v00) + lw * (v11 - v01)));
      }
    }
    key[p0 + k] = bucket;
    STORE1(m * OFFSET_SCALE * gx, gom, 2 * k);
    STORE1(m * OFFSET_SCALE * gy, gom, 2 * k + 1);
    if (SOFTMAX) {
      dot += m * gm;
      scratch[p0 + k] = gm;
    } else
      STORE1(gm, gom, 2 * K + k);
  }
  if (SOFTMAX)
    for (int k = 0; k < K; k++)
      STORE1(weight[p0 + k] * (scratch[p0 + k] - dot), gom, 2 * K + k);
  if (grp == g.group - 1)
    for (int lane = g.group * K * 3; lane < g.offset_mask_stride; lane++)
      STORE1(0.0f, grad_offset_mask + om_row, lane);
}

__kernel void dcnv4_det_gather(__global const storage_t *restrict offset_mask,
                               __global const storage_t *restrict grad_output,
                               __global storage_t *restrict grad_input,
                               const dcnv4_geometry g,
                               __global const int *restrict ws,
                               const int offset_off, const int m_off,
                               const int record_off, const idx_t items) {
  const idx_t gid = (idx_t)get_global_id(0);
  if (gid >= items)
    return;
  const int chunk = (int)(gid % CHUNKS);
  idx_t t = gid / CHUNKS;
  const int grp = (int)(t % g.group);
  t /= g.group; // input pixel (n, h, w)
  const int w = (int)(t % g.width_in);
  const int h = (int)((t / g.width_in) % g.height_in);
  const int n = (int)(t / g.width_in / g.height_in);
  const int C = g.group * D;
  __global const int *offset = ws + offset_off;
  __global const int *record = ws + record_off;
  __global const float *weight = (__global const float *)(ws + m_off);
  const int bucket0 =
      (n * g.group + grp) * (g.height_in + 1) * (g.width_in + 1);

  floatv acc = (floatv)(0.0f);
  // Buckets whose points have this pixel as their top-left, top-right,
  // bottom-left and bottom-right neighbour, in that order.
  for (int a = 0; a < 4; a++) {
    const int ay = h - (a >> 1), ax = w - (a & 1);
    const int bucket = bucket0 + (ay + 1) * (g.width_in + 1) + ax + 1;
    const int end = offset[bucket + 1];
    for (int r = offset[bucket]; r < end; r++) {
      const int p = record[r];
      const int k = p % K;
      const idx_t pixel = (idx_t)(p / K) / g.group;
      const int wo = (int)(pixel % g.width_out);
      const int ho = (int)((pixel / g.width_out) % g.height_out);
      __global const storage_t *om =
          offset_mask + pixel * g.offset_mask_stride + grp * K * 3;
      sample_coord x, y;
      point_position(g, ho, wo, k, LOAD1(om, 2 * k), LOAD1(om, 2 * k + 1), &x,
                     &y);
      const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
      const float bw = a == 0   ? hh * hw
                       : a == 1 ? hh * lw
                       : a == 2 ? lh * hw
                                : lh * lw;
      const floatv go = LOADV(grad_output + pixel * C + grp * D + chunk * VEC);
      acc += bw * (weight[p] * go);
    }
  }
  STOREV(acc, grad_input + t * C + grp * D + chunk * VEC);
}
