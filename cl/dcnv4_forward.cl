// DCNv4 core operator, forward (DESIGN.md §1.1).
//
// One work-item computes VEC channels of one (output pixel, group): it reads
// the group's K offsets and weights, samples K points bilinearly and writes
// the weighted sum. Consecutive work-items take consecutive channel chunks,
// so input reads and output writes are contiguous across a work-group.
//
// Build-time defines (besides common.h): GROUP_CHANNELS (D), KH, KW,
// REMOVE_CENTER, SOFTMAX.

#define D GROUP_CHANNELS
#define K (KH * KW - REMOVE_CENTER)
#define CHUNKS (D / VEC)

typedef struct dcnv4_geometry {
  int height_in, width_in, height_out, width_out, group;
  int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  float offset_scale;
  int offset_mask_stride;
} dcnv4_geometry;

__kernel void dcnv4_forward(__global const storage_t *restrict input,
                            __global const storage_t *restrict offset_mask,
                            __global storage_t *restrict output,
                            const dcnv4_geometry g, const idx_t items) {
  const idx_t gid = (idx_t)get_global_id(0);
  if (gid >= items)
    return;
  const int chunk = (int)(gid % CHUNKS);
  const idx_t pg = gid / CHUNKS; // (pixel, group) index
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

  __global const storage_t *om =
      offset_mask + pixel * (idx_t)g.offset_mask_stride + (idx_t)(grp * K * 3);
  __global const storage_t *image =
      input + n * (idx_t)g.height_in * (idx_t)g.width_in * (idx_t)C +
      (idx_t)(grp * D + chunk * VEC);
  const idx_t row = (idx_t)g.width_in * (idx_t)C;

#if SOFTMAX
  float mmax = -INFINITY;
  for (int k = 0; k < K; k++)
    mmax = fmax(mmax, LOAD1(om, 2 * K + k));
  float msum = 0.0f;
  for (int k = 0; k < K; k++)
    msum += exp(LOAD1(om, 2 * K + k) - mmax);
  const float minv = 1.0f / msum;
#endif

  floatv acc = (floatv)(0.0f);
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
      k++;
      const sample_coord x = split_coord(
          base_w, g.offset_scale * ((float)(i * g.dilation_w - half_w) + dx),
          g.width_in);
      const sample_coord y = split_coord(
          base_h, g.offset_scale * ((float)(j * g.dilation_h - half_h) + dy),
          g.height_in);
      if (!(x.inside && y.inside))
        continue;
      const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
      const bool w0 = x.low >= 0, w1 = x.low + 1 < g.width_in;
      const bool h0 = y.low >= 0, h1 = y.low + 1 < g.height_in;
      // Offset of the top-left neighbour; a pointer is formed only for
      // neighbours inside the image.
      const idx_t o = (idx_t)y.low * row + (idx_t)x.low * (idx_t)C;
      floatv s = (floatv)(0.0f);
      if (h0 && w0)
        s += (hh * hw) * LOADV(image + o);
      if (h0 && w1)
        s += (hh * lw) * LOADV(image + (o + C));
      if (h1 && w0)
        s += (lh * hw) * LOADV(image + (o + row));
      if (h1 && w1)
        s += (lh * lw) * LOADV(image + (o + row + C));
      acc += m * s;
    }
  }
  STOREV(acc, output + pixel * (idx_t)C + (idx_t)(grp * D + chunk * VEC));
}
