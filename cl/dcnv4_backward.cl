// DCNv4 core operator, backward (DESIGN.md §1.1).
//
// Same 3-D range and work-item mapping as dcnv4_forward.cl: one work-item
// holds VEC channels of one (pixel, group). For each of the K points it
// scatters its channels' input gradient with float atomics into `grad_acc`
// (fp32: grad_input itself, zeroed first; fp16/bf16: an fp32 workspace,
// converted afterwards) and keeps its partial sums of the offset and weight
// gradients in registers. The CHUNKS work-items of a (pixel, group) sit side
// by side in one work-group (the host guarantees it); they add their partials
// through local memory and share the writing of the 3K results.
//
// Build-time defines: as dcnv4_forward.cl (OM_STAGE unused), plus NV_ATOMICS.

__kernel void dcnv4_backward(__global const storage_t *restrict input,
                             __global const storage_t *restrict offset_mask,
                             __global const storage_t *restrict grad_output,
                             __global float *grad_acc,
                             __global storage_t *restrict grad_offset_mask,
                             const dcnv4_geometry g, __local float *partial) {
  const int cv = (int)get_global_id(0);
  const int wo = (int)get_global_id(1);
  const int nh = (int)get_global_id(2);
  const int C = g.group * D;
  const bool active = cv < C / VEC && wo < g.width_out;
  const int grp = cv / CHUNKS;
  const int chunk = cv - grp * CHUNKS;
  const int n = nh / g.height_out;
  const int ho = nh - n * g.height_out;
  const idx_t pixel = (idx_t)nh * g.width_out + wo;
  const int lid = (int)(get_local_id(1) * get_local_size(0) + get_local_id(0));

  const int half_w = (g.dilation_w * (KW - 1)) / 2;
  const int half_h = (g.dilation_h * (KH - 1)) / 2;
  const int base_w = half_w - g.pad_w + wo * g.stride_w;
  const int base_h = half_h - g.pad_h + ho * g.stride_h;
  const idx_t om_row = pixel * g.offset_mask_stride;
  // Inactive work-items (padding of the range) read a valid row and write
  // nothing: they only take part in the barrier.
  __global const storage_t *om =
      offset_mask + (active ? om_row + grp * K * 3 : 0);
  const idx_t image_start =
      (idx_t)n * g.height_in * g.width_in * C + grp * D + chunk * VEC;
  __global const storage_t *image = input + image_start;
  volatile __global float *gimage = grad_acc + image_start;
  const idx_t row = (idx_t)g.width_in * C;
  const floatv go = active
                        ? LOADV(grad_output + pixel * C + grp * D + chunk * VEC)
                        : (floatv)(0.0f);

  // DCNv3 mode: the weights are the softmax of the group's K values.
  float mmax = 0.0f, minv = 1.0f;
  if (SOFTMAX) {
    mmax = -INFINITY;
    for (int k = 0; k < K; k++)
      mmax = fmax(mmax, LOAD1(om, 2 * K + k));
    float msum = 0.0f;
    for (int k = 0; k < K; k++)
      msum += exp(LOAD1(om, 2 * K + k) - mmax);
    minv = 1.0f / msum;
  }

  __local float *mine = partial + lid * (3 * K);
  int k = 0;
POINT_LOOP
  for (int i = 0; i < KW; i++) {
POINT_LOOP
    for (int j = 0; j < KH; j++) {
      if (REMOVE_CENTER && i == KW / 2 && j == KH / 2)
        continue;
      const float dx = LOAD1(om, 2 * k);
      const float dy = LOAD1(om, 2 * k + 1);
      const float m =
          SOFTMAX ? exp(LOAD1(om, 2 * K + k) - mmax) * minv : LOAD1(om, 2 * K + k);
      const sample_coord x = split_coord(
          base_w, g.offset_scale * ((float)(i * g.dilation_w - half_w) + dx),
          g.width_in);
      const sample_coord y = split_coord(
          base_h, g.offset_scale * ((float)(j * g.dilation_h - half_h) + dy),
          g.height_in);
      float gx = 0.0f, gy = 0.0f, gm = 0.0f;
      if (active && x.inside && y.inside) {
        const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
        const bool w0 = x.low >= 0, w1 = x.low + 1 < g.width_in;
        const bool h0 = y.low >= 0, h1 = y.low + 1 < g.height_in;
        const idx_t o = (idx_t)y.low * row + (idx_t)x.low * C;
        const floatv zero = (floatv)(0.0f);
        const floatv v00 = h0 && w0 ? LOADV(image + o) : zero;
        const floatv v01 = h0 && w1 ? LOADV(image + (o + C)) : zero;
        const floatv v10 = h1 && w0 ? LOADV(image + (o + row)) : zero;
        const floatv v11 = h1 && w1 ? LOADV(image + (o + row + C)) : zero;
        gm = HSUM(go * ((hh * hw) * v00 + (hh * lw) * v01 + (lh * hw) * v10 +
                        (lh * lw) * v11));
        gx = HSUM(go * (hh * (v01 - v00) + lh * (v11 - v10)));
        gy = HSUM(go * (hw * (v10 - v00) + lw * (v11 - v01)));
        const floatv gi = m * go;
        if (h0 && w0)
          atomic_add_floatv(gimage + o, (hh * hw) * gi);
        if (h0 && w1)
          atomic_add_floatv(gimage + (o + C), (hh * lw) * gi);
        if (h1 && w0)
          atomic_add_floatv(gimage + (o + row), (lh * hw) * gi);
        if (h1 && w1)
          atomic_add_floatv(gimage + (o + row + C), (lh * lw) * gi);
      }
      // Times m * offset_scale after the sum over the chunks (as the
      // reference groups it: an infinite m and a chunk's zero give no NaN).
      mine[2 * k] = gx;
      mine[2 * k + 1] = gy;
      mine[2 * K + k] = gm;
      k++;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!active)
    return;

  // Sum the CHUNKS partials of this (pixel, group); chunk c writes lanes c,
  // c + CHUNKS, ... of the group's 3K results.
  __local const float *first = partial + (lid - chunk) * (3 * K);
  __global storage_t *gom = grad_offset_mask + om_row + grp * K * 3;
  // The weight lanes need the whole softmax Jacobian: each writer forms the
  // dot product sum_j m_j dL/dm_j itself.
  float dot = 0.0f;
  if (SOFTMAX)
    for (int kk = 0; kk < K; kk++) {
      float s = 0.0f;
      for (int c = 0; c < CHUNKS; c++)
        s += first[c * 3 * K + 2 * K + kk];
      dot += exp(LOAD1(om, 2 * K + kk) - mmax) * minv * s;
    }
  for (int lane = chunk; lane < 3 * K; lane += CHUNKS) {
    float s = 0.0f;
    for (int c = 0; c < CHUNKS; c++)
      s += first[c * 3 * K + lane];
    if (lane < 2 * K) {
      const float m = SOFTMAX ? exp(LOAD1(om, 2 * K + lane / 2) - mmax) * minv
                              : LOAD1(om, 2 * K + lane / 2);
      s = m * g.offset_scale * s;
    } else if (SOFTMAX) {
      const float m = exp(LOAD1(om, lane) - mmax) * minv;
      s = m * (s - dot);
    }
    STORE1(s, gom, lane);
  }
  // The last group of a row also clears the row's padding lanes.
  if (grp == g.group - 1)
    for (int lane = g.group * K * 3 + chunk; lane < g.offset_mask_stride;
         lane += CHUNKS)
      STORE1(0.0f, grad_offset_mask + om_row, lane);
}

// Fallback for shapes whose partial sums do not fit in local memory (very
// large K * D/VEC): a 1-D range with one work-item per (pixel, group) that
// walks all D channels itself, so nothing needs to be reduced across
// work-items.
__kernel void
dcnv4_backward_pixel(__global const storage_t *restrict input,
                     __global const storage_t *restrict offset_mask,
                     __global const storage_t *restrict grad_output,
                     __global float *grad_acc,
                     __global storage_t *restrict grad_offset_mask,
                     const dcnv4_geometry g, const idx_t items) {
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

  const int half_w = (g.dilation_w * (KW - 1)) / 2;
  const int half_h = (g.dilation_h * (KH - 1)) / 2;
  const int base_w = half_w - g.pad_w + wo * g.stride_w;
  const int base_h = half_h - g.pad_h + ho * g.stride_h;
  const idx_t om_row = pixel * g.offset_mask_stride;
  __global const storage_t *om = offset_mask + om_row + grp * K * 3;
  __global storage_t *gom = grad_offset_mask + om_row + grp * K * 3;
  const idx_t image_start = n * g.height_in * g.width_in * C + grp * D;
  __global const storage_t *image = input + image_start;
  volatile __global float *gimage = grad_acc + image_start;
  __global const storage_t *gout = grad_output + pixel * C + grp * D;
  const idx_t row = (idx_t)g.width_in * C;

  // DCNv3 mode: the weights are the softmax of the group's K values.
  float mmax = 0.0f, minv = 1.0f;
  if (SOFTMAX) {
    mmax = -INFINITY;
    for (int k = 0; k < K; k++)
      mmax = fmax(mmax, LOAD1(om, 2 * K + k));
    float msum = 0.0f;
    for (int k = 0; k < K; k++)
      msum += exp(LOAD1(om, 2 * K + k) - mmax);
    minv = 1.0f / msum;
  }
  float dot = 0.0f; // sum_k m_k dL/dm_k, for the softmax Jacobian

  int k = 0;
  for (int i = 0; i < KW; i++) {
    for (int j = 0; j < KH; j++) {
      if (REMOVE_CENTER && i == KW / 2 && j == KH / 2)
        continue;
      const float dx = LOAD1(om, 2 * k);
      const float dy = LOAD1(om, 2 * k + 1);
      const float m =
          SOFTMAX ? exp(LOAD1(om, 2 * K + k) - mmax) * minv : LOAD1(om, 2 * K + k);
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
        const idx_t o = (idx_t)y.low * row + (idx_t)x.low * C;
        for (int c = 0; c < D; c++) {
          const idx_t oc = o + c;
          const float go = LOAD1(gout, c);
          const float v00 = h0 && w0 ? LOAD1(image, oc) : 0.0f;
          const float v01 = h0 && w1 ? LOAD1(image, oc + C) : 0.0f;
          const float v10 = h1 && w0 ? LOAD1(image, oc + row) : 0.0f;
          const float v11 = h1 && w1 ? LOAD1(image, oc + row + C) : 0.0f;
          gm += go * ((hh * hw) * v00 + (hh * lw) * v01 + (lh * hw) * v10 +
                      (lh * lw) * v11);
          gx += go * (hh * (v01 - v00) + lh * (v11 - v10));
          gy += go * (hw * (v10 - v00) + lw * (v11 - v01));
          const float gi = m * go;
          if (h0 && w0)
            atomic_add_float(gimage + oc, (hh * hw) * gi);
          if (h0 && w1)
            atomic_add_float(gimage + (oc + C), (hh * lw) * gi);
          if (h1 && w0)
            atomic_add_float(gimage + (oc + row), (lh * hw) * gi);
          if (h1 && w1)
            atomic_add_float(gimage + (oc + row + C), (lh * lw) * gi);
        }
      }
      STORE1(m * g.offset_scale * gx, gom, 2 * k);
      STORE1(m * g.offset_scale * gy, gom, 2 * k + 1);
      if (SOFTMAX)
        dot += m * gm;
      else
        STORE1(gm, gom, 2 * K + k);
      k++;
    }
  }
  if (SOFTMAX) {
    // Second pass over the weights: dL/dlogit_k = m_k (dL/dm_k - dot). The
    // dL/dm_k are recomputed rather than kept, so K has no register cost.
    k = 0;
    for (int i = 0; i < KW; i++) {
      for (int j = 0; j < KH; j++) {
        if (REMOVE_CENTER && i == KW / 2 && j == KH / 2)
          continue;
        const float m = exp(LOAD1(om, 2 * K + k) - mmax) * minv;
        const sample_coord x =
            split_coord(base_w,
                        g.offset_scale * ((float)(i * g.dilation_w - half_w) +
                                          LOAD1(om, 2 * k)),
                        g.width_in);
        const sample_coord y =
            split_coord(base_h,
                        g.offset_scale * ((float)(j * g.dilation_h - half_h) +
                                          LOAD1(om, 2 * k + 1)),
                        g.height_in);
        float gm = 0.0f;
        if (x.inside && y.inside) {
          const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
          const bool w0 = x.low >= 0, w1 = x.low + 1 < g.width_in;
          const bool h0 = y.low >= 0, h1 = y.low + 1 < g.height_in;
          const idx_t o = (idx_t)y.low * row + (idx_t)x.low * C;
          for (int c = 0; c < D; c++) {
            const idx_t oc = o + c;
            const float v00 = h0 && w0 ? LOAD1(image, oc) : 0.0f;
            const float v01 = h0 && w1 ? LOAD1(image, oc + C) : 0.0f;
            const float v10 = h1 && w0 ? LOAD1(image, oc + row) : 0.0f;
            const float v11 = h1 && w1 ? LOAD1(image, oc + row + C) : 0.0f;
            gm += LOAD1(gout, c) * ((hh * hw) * v00 + (hh * lw) * v01 +
                                    (lh * hw) * v10 + (lh * lw) * v11);
          }
        }
        STORE1(m * (gm - dot), gom, 2 * K + k);
        k++;
      }
    }
  }
  if (grp == g.group - 1)
    for (int lane = g.group * K * 3; lane < g.offset_mask_stride; lane++)
      STORE1(0.0f, grad_offset_mask + om_row, lane);
}
