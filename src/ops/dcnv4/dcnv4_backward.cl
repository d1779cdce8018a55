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

// One point's bilinear sample of this work-item's VEC channels against
// their output gradient `go`: the partial gradients of the weight (gm) and
// of the x and y coordinates (gx, gy), each before the factor m.
inline void sample_grads(__global const storage_t *image, const idx_t o,
                         const idx_t row, const int C, const sample_coord x,
                         const sample_coord y, const dcnv4_geometry g,
                         const floatv go, float *gx, float *gy, float *gm) {
  const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
  const bool w0 = x.low >= 0, w1 = x.low + 1 < g.width_in;
  const bool h0 = y.low >= 0, h1 = y.low + 1 < g.height_in;
  const floatv zero = (floatv)(0.0f);
  const floatv v00 = h0 && w0 ? LOADV(image + o) : zero;
  const floatv v01 = h0 && w1 ? LOADV(image + (o + C)) : zero;
  const floatv v10 = h1 && w0 ? LOADV(image + (o + row)) : zero;
  const floatv v11 = h1 && w1 ? LOADV(image + (o + row + C)) : zero;
  *gm = HSUM(go * ((hh * hw) * v00 + (hh * lw) * v01 + (lh * hw) * v10 +
                   (lh * lw) * v11));
  *gx = HSUM(go * (hh * (v01 - v00) + lh * (v11 - v10)));
  *gy = HSUM(go * (hw * (v10 - v00) + lw * (v11 - v01)));
}

// Adds a point's input gradient `gi` (m times this work-item's grad_output)
// to the four corners at `o` in grad_acc, those inside the image.
inline void scatter_corners(volatile __global float *gimage, const idx_t o,
                            const idx_t row, const int C, const sample_coord x,
                            const sample_coord y, const dcnv4_geometry g,
                            const floatv gi) {
  const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
  const bool w0 = x.low >= 0, w1 = x.low + 1 < g.width_in;
  const bool h0 = y.low >= 0, h1 = y.low + 1 < g.height_in;
  if (h0 && w0)
    atomic_add_floatv(gimage + o, (hh * hw) * gi);
  if (h0 && w1)
    atomic_add_floatv(gimage + (o + C), (hh * lw) * gi);
  if (h1 && w0)
    atomic_add_floatv(gimage + (o + row), (lh * hw) * gi);
  if (h1 && w1)
    atomic_add_floatv(gimage + (o + row + C), (lh * lw) * gi);
}

// The largest of the VEC bounds in b, or infinity if one of them is not
// finite (NaN included).
inline float largest_bound(const floatv b) {
#if VEC == 1
  return b <= FLT_MAX ? b : INFINITY;
#else
  float e[VEC];
  STOREV_PRIVATE(b, e);
  float largest = 0.0f;
  for (int v = 0; v < VEC; v++)
    largest = e[v] <= FLT_MAX ? fmax(largest, e[v]) : INFINITY;
  return largest;
#endif
}

// The power of two that scales values bounded by b (finite, >= 0) below
// 2^shift: 2^(shift - e) for b in [2^(e-1), 2^e), at most 2^126. e comes
// from b's exponent bits (subnormals and zero count as e = -126; frexp's
// pointer argument trips Oclgrind).
inline float fixed_scale(const float b, const int shift) {
  const int e = (int)(as_uint(b) >> 23) - 126;
  return as_float((uint)(min(shift - e, 126) + 127) << 23);
}

// Sums the CHUNKS partials (3K floats each from `first`) of this (pixel,
// group) and writes its offset/weight gradients: chunk c writes lanes c,
// c + CHUNKS, ... of the group's 3K results (times m * offset_scale after the
// sum, as the reference groups it: an infinite m and a chunk's zero give no
// NaN). The last group of a row also clears the row's padding lanes.
inline void write_offset_grads(__local const float *first,
                               __global const storage_t *om,
                               __global storage_t *grad_offset_mask,
                               const idx_t om_row, const int grp,
                               const int chunk, const float mmax,
                               const float minv, const dcnv4_geometry g) {
  __global storage_t *gom = grad_offset_mask + om_row + grp * K * 3;
  // The weight lanes need the whole softmax Jacobian: each writer forms the
  // dot product sum_j m_j dL/dm_j itself.
  float dot = 0.0f;
  if (SOFTMAX)
    for (int kk = 0; kk < K; kk++) {
      float s = 0.0f;
      for (int c = 0; c < CHUNKS; c++)
        s += first[c * 3 * K + 2 * K + kk];
      dot += point_weight(g, LOAD1(om, 2 * K + kk), mmax, minv) * s;
    }
  for (int lane = chunk; lane < 3 * K; lane += CHUNKS) {
    float s = 0.0f;
    for (int c = 0; c < CHUNKS; c++)
      s += first[c * 3 * K + lane];
    if (lane < 2 * K) {
      const float m = point_weight(g, LOAD1(om, 2 * K + lane / 2), mmax, minv);
      s = m * OFFSET_SCALE * s;
    } else if (SOFTMAX) {
      const float m = point_weight(g, LOAD1(om, lane), mmax, minv);
      s = m * (s - dot);
    }
    STORE1(s, gom, lane);
  }
  if (grp == g.group - 1)
    for (int lane = g.group * K * 3 + chunk; lane < g.offset_mask_stride;
         lane += CHUNKS)
      STORE1(0.0f, grad_offset_mask + om_row, lane);
}

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

  const int base_w = WINDOW_CENTRE_W(wo);
  const int base_h = WINDOW_CENTRE_H(ho);
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
  float mmax, minv;
  group_softmax_stats(om, g, &mmax, &minv);

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
      const float m = point_weight(g, LOAD1(om, 2 * K + k), mmax, minv);
      const sample_coord x =
          split_coord(base_w, POINT_PART_W(i, dx), g.width_in);
      const sample_coord y =
          split_coord(base_h, POINT_PART_H(j, dy), g.height_in);
      float gx = 0.0f, gy = 0.0f, gm = 0.0f;
      if (active && x.inside && y.inside) {
        const idx_t o = (idx_t)y.low * row + (idx_t)x.low * C;
        sample_grads(image, o, row, C, x, y, g, go, &gx, &gy, &gm);
        scatter_corners(gimage, o, row, C, x, y, g, m * go);
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
  if (active)
    write_offset_grads(partial + (lid - chunk) * (3 * K), om, grad_offset_mask,
                       om_row, grp, chunk, mmax, minv, g);
}

// Tiled variant (tuning parameter `halo` > 0, SPECIALIZE builds only): one
// work-group takes one group of a TH x TW tile of output pixels (CHUNKS
// work-items per pixel) and accumulates the input gradient of the input
// region its points mostly fall in -- the tile's sampling grid widened by
// `ext` pixels on each side -- in local memory, then adds the region to
// grad_acc with one global atomic per VEC channels of each region pixel
// instead of four per point (the per-point kernel is bound by L2 atomic
// throughput).
//
// Local float atomics are compare-and-swap loops on NVIDIA, integer ones are
// native, so the region holds fixed-point integers. Each channel first bounds
// what its region values can reach: the sum over the tile's pixels of
// |grad_output| times the sum of |m| over the pixel's points (the bilinear
// weights of a point sum to at most 1). A work-item's VEC channels share one
// scale (one per channel cost 25 % on the H100, in registers): the power of
// two that maps the largest of their bounds, B, below 2^FIXED_SHIFT, so no
// sum overflows an int. Each contribution is rounded by at most
// B * 2^-FIXED_SHIFT: about 5e-7 relative L2 error on the benchmark's inputs,
// against 1e-7 for fp32 atomics. A chunk whose bounds are not finite (NaN or
// infinity among its inputs) takes the per-point global atomics, so NaN and
// infinity propagate as there.
//
// Points whose 2x2 corner block leaves the region also take global atomics.
// Corners outside the image go into the region anyway (their weights are
// finite); the flush skips region pixels outside the image.
//
// Range: dimension 0 is group x (CHUNKS * TW), so the work-groups of one tile
// run back to back and share their pixels' rows in L2; dimension 1 output
// rows in tiles of TH; dimension 2 image x tile column. The host passes the
// region's margin around the tile's base coordinates (`ext_h`, `ext_w`) and
// size (`region_h` x `region_w`), and sizes `scratch` for the larger of the
// region (REGION_STRIDE words per pixel) plus VEC bounds per work-item, and
// the partials (plan_tiles in src/ops/dcnv4/dcnv4_op.c mirrors the layout).
#if SPECIALIZE
// Region pixels are D + 1 words apart, so the work-items of a warp, which
// add to different pixels, spread over more banks.
#define REGION_STRIDE (D + 1)
#define FIXED_SHIFT 30
typedef int fixed_t;
#define FIXED_ADD(p, x) atomic_add((p), convert_int_rte(x))

__kernel void dcnv4_backward_tiled(
    __global const storage_t *restrict input,
    __global const storage_t *restrict offset_mask,
    __global const storage_t *restrict grad_output, __global float *grad_acc,
    __global storage_t *restrict grad_offset_mask, const dcnv4_geometry g,
    __local float *scratch, const int ext_h, const int ext_w,
    const int region_h, const int region_w, const int tiles_w) {
  const int lx = (int)get_local_id(0);
  const int ly = (int)get_local_id(1);
  const int tw = (int)get_local_size(0) / CHUNKS;
  const int th = (int)get_local_size(1);
  const int size = (int)(get_local_size(0) * get_local_size(1));
  const int lid = ly * (int)get_local_size(0) + lx;
  const int grp = (int)get_group_id(0);
  const int chunk = lx % CHUNKS;
  const int ho0 = (int)get_group_id(1) * th;
  const int n = (int)get_group_id(2) / tiles_w;
  const int wo0 = ((int)get_group_id(2) - n * tiles_w) * tw;
  const int px = lx / CHUNKS;
  const int pl = ly * tw + px; // pixel within the tile
  const int ho = ho0 + ly;
  const int wo = wo0 + px;
  const int C = g.group * D;
  const bool active = ho < g.height_out && wo < g.width_out;
  const idx_t pixel = ((idx_t)n * g.height_out + ho) * g.width_out + wo;

  // Local memory: the region's accumulators, then VEC bounds per work-item;
  // later the partials.
  const int cells = region_h * region_w;
  volatile __local fixed_t *acc = (volatile __local fixed_t *)scratch;
  __local float *bound = scratch + cells * REGION_STRIDE;
  for (int i = lid; i < cells * REGION_STRIDE; i += size)
    acc[i] = 0;

  const int base_w = WINDOW_CENTRE_W(wo);
  const int base_h = WINDOW_CENTRE_H(ho);
  // The region's first input row and column.
  const int y0 = WINDOW_CENTRE_H(ho0) - ext_h;
  const int x0 = WINDOW_CENTRE_W(wo0) - ext_w;

  const idx_t om_row = pixel * g.offset_mask_stride;
  __global const storage_t *om =
      offset_mask + (active ? om_row + grp * K * 3 : 0);
  const idx_t image_start = (idx_t)n * g.height_in * g.width_in * C + grp * D;
  __global const storage_t *image = input + image_start + chunk * VEC;
  volatile __global float *gimage = grad_acc + image_start + chunk * VEC;
  const idx_t row = (idx_t)g.width_in * C;
  const floatv go = active
                        ? LOADV(grad_output + pixel * C + grp * D + chunk * VEC)
                        : (floatv)(0.0f);

  float mmax, minv;
  group_softmax_stats(om, g, &mmax, &minv);

  // This chunk's bounds: each pixel's share, summed over the tile's pixels
  // (a tree over the pixels, CHUNKS work-items apart).
  float msum = 0.0f;
  for (int k = 0; k < K; k++)
    msum += fabs(point_weight(g, LOAD1(om, 2 * K + k), mmax, minv));
  STOREV_LOCAL(active ? msum * fabs(go) : (floatv)(0.0f), bound + lid * VEC);
  const int pixels = tw * th;
  int step = 1;
  while (step < pixels)
    step <<= 1;
  for (step >>= 1; step > 0; step >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (pl < step && pl + step < pixels)
      STOREV_LOCAL(LOADV_LOCAL(bound + lid * VEC) +
                       LOADV_LOCAL(bound + (lid + step * CHUNKS) * VEC),
                   bound + lid * VEC);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const float chunk_bound = largest_bound(LOADV_LOCAL(bound + chunk * VEC));
  const bool in_local = chunk_bound <= FLT_MAX;
  const float scale = fixed_scale(chunk_bound, FIXED_SHIFT);

  float part[3 * K];
  int k = 0;
  POINT_LOOP
  for (int i = 0; i < KW; i++) {
    POINT_LOOP
    for (int j = 0; j < KH; j++) {
      if (REMOVE_CENTER && i == KW / 2 && j == KH / 2)
        continue;
      const float dx = LOAD1(om, 2 * k);
      const float dy = LOAD1(om, 2 * k + 1);
      const float m = point_weight(g, LOAD1(om, 2 * K + k), mmax, minv);
      const sample_coord x =
          split_coord(base_w, POINT_PART_W(i, dx), g.width_in);
      const sample_coord y =
          split_coord(base_h, POINT_PART_H(j, dy), g.height_in);
      float gx = 0.0f, gy = 0.0f, gm = 0.0f;
      if (active && x.inside && y.inside) {
        const idx_t o = (idx_t)y.low * row + (idx_t)x.low * C;
        sample_grads(image, o, row, C, x, y, g, go, &gx, &gy, &gm);
        const int ry = y.low - y0, rx = x.low - x0;
        const floatv gi = m * go;
        if (in_local && ry >= 0 && ry + 1 < region_h && rx >= 0 &&
            rx + 1 < region_w) {
          const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
          float s[VEC];
          STOREV_PRIVATE(gi * scale, s);
          const int at = (ry * region_w + rx) * REGION_STRIDE + chunk * VEC;
          const int below = at + region_w * REGION_STRIDE;
          for (int c = 0; c < VEC; c++) {
            FIXED_ADD(acc + at + c, (hh * hw) * s[c]);
            FIXED_ADD(acc + at + REGION_STRIDE + c, (hh * lw) * s[c]);
            FIXED_ADD(acc + below + c, (lh * hw) * s[c]);
            FIXED_ADD(acc + below + REGION_STRIDE + c, (lh * lw) * s[c]);
          }
        } else {
          scatter_corners(gimage, o, row, C, x, y, g, gi);
        }
      }
      part[2 * k] = gx;
      part[2 * k + 1] = gy;
      part[2 * K + k] = gm;
      k++;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);

  // Flush, back to floats: this work-item's chunk of the region pixels
  // inside the image, from pixel `pl` on (the work-group has CHUNKS
  // work-items per pixel, so each keeps its chunk and its scale; 1 / scale is
  // a power of two within float's normal range).
  const float unit = 1.0f / scale;
  for (int cell = pl; in_local && cell < cells; cell += size / CHUNKS) {
    const int ry = cell / region_w, rx = cell - ry * region_w;
    const int yy = y0 + ry, xx = x0 + rx;
    if (yy < 0 || yy >= g.height_in || xx < 0 || xx >= g.width_in)
      continue;
    float e[VEC];
    for (int v = 0; v < VEC; v++)
      e[v] = (float)acc[cell * REGION_STRIDE + chunk * VEC + v] * unit;
    const floatv sum = LOADV_PRIVATE(e);
    if (any_nonzero(sum))
      atomic_add_floatv(gimage + (idx_t)yy * row + (idx_t)xx * C, sum);
  }
  barrier(CLK_LOCAL_MEM_FENCE);

  // The offset/weight partials, as in dcnv4_backward.
  __local float *mine = scratch + lid * (3 * K);
  for (int kk = 0; kk < 3 * K; kk++)
    mine[kk] = part[kk];
  barrier(CLK_LOCAL_MEM_FENCE);
  if (active)
    write_offset_grads(scratch + (lid - chunk) * (3 * K), om, grad_offset_mask,
                       om_row, grp, chunk, mmax, minv, g);
}
#endif

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

  const int base_w = WINDOW_CENTRE_W(wo);
  const int base_h = WINDOW_CENTRE_H(ho);
  const idx_t om_row = pixel * g.offset_mask_stride;
  __global const storage_t *om = offset_mask + om_row + grp * K * 3;
  __global storage_t *gom = grad_offset_mask + om_row + grp * K * 3;
  const idx_t image_start = n * g.height_in * g.width_in * C + grp * D;
  __global const storage_t *image = input + image_start;
  volatile __global float *gimage = grad_acc + image_start;
  __global const storage_t *gout = grad_output + pixel * C + grp * D;
  const idx_t row = (idx_t)g.width_in * C;

  // DCNv3 mode: the weights are the softmax of the group's K values.
  float mmax, minv;
  group_softmax_stats(om, g, &mmax, &minv);
  float dot = 0.0f; // sum_k m_k dL/dm_k, for the softmax Jacobian

  int k = 0;
  for (int i = 0; i < KW; i++) {
    for (int j = 0; j < KH; j++) {
      if (REMOVE_CENTER && i == KW / 2 && j == KH / 2)
        continue;
      const float dx = LOAD1(om, 2 * k);
      const float dy = LOAD1(om, 2 * k + 1);
      const float m = point_weight(g, LOAD1(om, 2 * K + k), mmax, minv);
      const sample_coord x =
          split_coord(base_w, POINT_PART_W(i, dx), g.width_in);
      const sample_coord y =
          split_coord(base_h, POINT_PART_H(j, dy), g.height_in);
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
      STORE1(m * OFFSET_SCALE * gx, gom, 2 * k);
      STORE1(m * OFFSET_SCALE * gy, gom, 2 * k + 1);
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
        const float m = point_weight(g, LOAD1(om, 2 * K + k), mmax, minv);
        const sample_coord x =
            split_coord(base_w, POINT_PART_W(i, LOAD1(om, 2 * k)), g.width_in);
        const sample_coord y = split_coord(
            base_h, POINT_PART_H(j, LOAD1(om, 2 * k + 1)), g.height_in);
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
