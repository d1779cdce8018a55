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

__kernel void fda_backward(__global const storage_t *restrict value,
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

// Split variant (tuning `split` 1): CHUNKS = D/VEC work-items per (batch,
// query, head), neighbours in one work-group (the host makes its size a
// multiple of CHUNKS: `slots` heads). Each holds VEC channels, so the
// value-gradient atomics of one corner are one contiguous run of D floats
// from CHUNKS neighbouring work-items (32 fp32 channels: one 128-byte line,
// 8 vector atomics), where the kernel above gives every lane of a warp a
// line of its own. As in the forward's stages 1-2, the head's work-items
// first locate its points once, a share each, into local memory
// (`located`: unnormalized softmax weight, lx, ly; `corners`: corner_ref);
// the softmax maximum and sum combine per-work-item partials (the last
// 2 * get_local_size(0) floats of `partial`). After the scatter the channel
// partials of the location and weight gradients are summed through
// `partial`: per slot, lane j (x of point i at 2i, y at 2i + 1, weight at
// 2LK + i) holds CHUNKS floats, one per work-item, and one spare lane pads
// a slot so that the slots of a warp fall in different banks. The
// work-item of point i (i % CHUNKS == chunk) sums that point's lanes and
// writes its results; the softmax Jacobian's dot product goes through
// local memory once more.
#define SLOT_FLOATS ((3 * LK + 1) * CHUNKS)

// The sum of the CHUNKS partials at p (16-byte aligned where CHUNKS is a
// multiple of 4: `partial` is declared float4, SLOT_FLOATS and every lane
// offset are multiples of CHUNKS).
#define SUM_VECTORS 0
#if SPECIALIZE
#if CHUNKS % 4 == 0
#undef SUM_VECTORS
#define SUM_VECTORS 1
#endif
#endif
inline float sum_chunks(__local const float *p, const fda_geometry g) {
#if SUM_VECTORS
  float4 v = (float4)(0.0f);
  for (int c = 0; c < CHUNKS; c += 4)
    v += *(__local const float4 *)(p + c);
  return (v.s0 + v.s1) + (v.s2 + v.s3);
#else
  float s = 0.0f;
  for (int c = 0; c < CHUNKS; c++)
    s += p[c];
  return s;
#endif
}

__kernel void fda_backward_split(__global const storage_t *restrict value,
                                 __global const storage_t *restrict sampling,
                                 __global const storage_t *restrict grad_output,
                                 __global float *grad_acc,
                                 __global storage_t *restrict grad_sampling,
                                 const fda_geometry g, const idx_t items,
                                 __local float4 *restrict located,
                                 __local corner_ref *restrict corners,
                                 __local float4 *restrict partial4) {
  const idx_t gid = (idx_t)get_global_id(0);
  // Work-items past the end take part in the barriers only; a slot is live
  // or not as a whole (items is a multiple of CHUNKS).
  const bool live = gid < items;
  const int lid = (int)get_local_id(0);
  const int slots = (int)get_local_size(0) / CHUNKS;
  const int slot = lid / CHUNKS;
  const int chunk = lid - slot * CHUNKS;
  const idx_t qg = live ? gid / CHUNKS : 0; // (batch, query, head)
  const int GD = g.group * D;
  __global const storage_t *row = sampling + qg * (idx_t)(LK * 3);
  __local float *partial = (__local float *)partial4;
  __local float *head = partial + slot * SLOT_FLOATS;
  __local float *part_max = partial + slots * SLOT_FLOATS;
  __local float *part_sum = part_max + get_local_size(0);

  // Softmax maximum over the row, from each work-item's share.
  float mmax = -INFINITY;
  for (int i = chunk; i < LK; i += CHUNKS)
    mmax = fmax(mmax, LOAD1(row, 2 * LK + i));
  part_max[lid] = mmax;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int c = 0; c < CHUNKS; c++)
    mmax = fmax(mmax, part_max[slot * CHUNKS + c]);

  // Locate the share's points; entry i * slots + slot, so that the slots of
  // a warp read neighbouring entries.
  float wsum = 0.0f;
  for (int i = chunk; i < LK; i += CHUNKS) {
    const int l = i / K;
    const int H = g.height[l], W = g.width[l];
    const float w = exp(LOAD1(row, 2 * LK + i) - mmax);
    wsum += w;
    const sample_coord x = fda_coord(LOAD1(row, 2 * i), W);
    const sample_coord y = fda_coord(LOAD1(row, 2 * i + 1), H);
    const point_footprint f = locate_point(x, y, W, H, (idx_t)W * GD, GD);
    const int e = i * slots + slot;
    corners[e] =
        (corner_ref)((idx_t)g.start[l] * GD + f.offset, footprint_mask(f));
    located[e] = (float4)(w, f.lw, f.lh, 0.0f);
  }
  part_sum[lid] = wsum;
  barrier(CLK_LOCAL_MEM_FENCE);
  wsum = 0.0f;
  for (int c = 0; c < CHUNKS; c++)
    wsum += part_sum[slot * CHUNKS + c];
  const float minv = 1.0f / wsum;

  // The scatter, and this work-item's partials of every point.
  __local float *mine = head + chunk;
  if (live) {
    const idx_t b = qg / (idx_t)g.group / (idx_t)g.queries;
    const int grp = (int)(qg % (idx_t)g.group);
    const idx_t image_start =
        b * (idx_t)g.value_len * GD + (idx_t)(grp * D + chunk * VEC);
    __global const storage_t *image = value + image_start;
    volatile __global float *gimage = grad_acc + image_start;
    const floatv go = LOADV(grad_output + gid * VEC);
    for (int l = 0; l < L; l++) {
      const idx_t stride_row = (idx_t)g.width[l] * GD;
      for (int k = 0; k < K; k++) {
        const int i = l * K + k;
        const int e = i * slots + slot;
        const corner_ref ref = corners[e];
        const int mask = (int)ref.s1;
        float gx = 0.0f, gy = 0.0f, gm = 0.0f;
        // A point outside its level has mask 0; one inside has at least
        // one corner in the level.
        if (mask) {
          const float4 p = located[e];
          const float m = p.s0 * minv;
          const float lw = p.s1, lh = p.s2, hw = 1.0f - lw, hh = 1.0f - lh;
          const idx_t o = ref.s0;
          const floatv zero = (floatv)(0.0f);
          // A pointer is formed only for corners inside the level.
          const floatv v00 = mask & 1 ? LOADV(image + o) : zero;
          const floatv v01 = mask & 2 ? LOADV(image + (o + GD)) : zero;
          const floatv v10 = mask & 4 ? LOADV(image + (o + stride_row)) : zero;
          const floatv v11 =
              mask & 8 ? LOADV(image + (o + stride_row + GD)) : zero;
          const floatv sample = (hh * hw) * v00 + (hh * lw) * v01 +
                                (lh * hw) * v10 + (lh * lw) * v11;
          gm = HSUM(go * sample);
          gx = HSUM(go * (hh * (v01 - v00) + lh * (v11 - v10)));
          gy = HSUM(go * (hw * (v10 - v00) + lw * (v11 - v01)));
          const floatv gv = m * go;
          if (mask & 1)
            ATOMIC_ADD_V(gimage + o, (hh * hw) * gv);
          if (mask & 2)
            ATOMIC_ADD_V(gimage + (o + GD), (hh * lw) * gv);
          if (mask & 4)
            ATOMIC_ADD_V(gimage + (o + stride_row), (lh * hw) * gv);
          if (mask & 8)
            ATOMIC_ADD_V(gimage + (o + stride_row + GD), (lh * lw) * gv);
        }
        mine[2 * i * CHUNKS] = gx;
        mine[(2 * i + 1) * CHUNKS] = gy;
        mine[(2 * LK + i) * CHUNKS] = gm;
      }
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);

  // Points chunk, chunk + CHUNKS, ...: the location gradients, and dL/dm_i
  // and m_i dL/dm_i left in lanes 2i and 2i + 1 (slot 0), which only this
  // work-item reads.
  __global storage_t *grow = grad_sampling + qg * (idx_t)(LK * 3);
  if (live)
    for (int i = chunk; i < LK; i += CHUNKS) {
      const int l = i / K;
      const float m = located[i * slots + slot].s0 * minv;
      const float sx = sum_chunks(head + 2 * i * CHUNKS, g);
      const float sy = sum_chunks(head + (2 * i + 1) * CHUNKS, g);
      const float sm = sum_chunks(head + (2 * LK + i) * CHUNKS, g);
      // x = loc_x * W - 0.5: dx/dloc_x = W (same for y with H).
      STORE1(m * sx * (float)g.width[l], grow, 2 * i);
      STORE1(m * sy * (float)g.height[l], grow, 2 * i + 1);
      head[2 * i * CHUNKS] = sm;
      head[(2 * i + 1) * CHUNKS] = m * sm;
    }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!live)
    return;
  // dlogit_i = m_i * (dm_i - sum_j m_j dm_j).
  float dot = 0.0f;
  for (int j = 0; j < LK; j++)
    dot += head[(2 * j + 1) * CHUNKS];
  for (int i = chunk; i < LK; i += CHUNKS) {
    const float m = located[i * slots + slot].s0 * minv;
    STORE1(m * (head[2 * i * CHUNKS] - dot), grow, 2 * LK + i);
  }
}
