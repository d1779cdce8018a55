// FlashDeformAttn core operator, forward (DESIGN.md §1.2).
//
// One work-item computes VEC channels of one (batch, query, head): it reads
// the head's L*K logits and locations, samples the L*K points bilinearly and
// writes the softmax-weighted sum. Consecutive work-items take consecutive
// channel chunks of the same head, so the value gathers of a head are
// contiguous across neighbouring work-items (one cache line per corner for
// D*sizeof(storage) = 128 bytes) and the row of locations and logits is a
// broadcast read. The softmax is folded into the sum: the unnormalized
// weights exp(logit - max) accumulate with the samples, and the result is
// divided by their sum once.
//
// Build-time defines: see common.h and fda_common.h; HEAD_SPAN (0: all
// heads of a query are neighbouring work-items; h > 0, dividing the heads:
// h heads of consecutive queries are, block after block of h heads).

// ROW_VECTORS: fp32 specialized builds whose points per level are a
// multiple of 4 read the row as float4s (a row of 3*L*K values then starts
// on a multiple of four, and so do a level's 2K locations and K logits;
// buffers are aligned far beyond 16 bytes): 3*L*K/4 wide loads per
// work-item instead of 3*L*K scalar ones. H100, DETR encoder: fp32 0.312 ->
// 0.304 ms; fp16 (8-byte loads) 0.197 -> 0.205 ms, so 16-bit rows stay
// scalar.
#define ROW_VECTORS 0
#if SPECIALIZE && DTYPE == 0
#if POINTS % 4 == 0
#undef ROW_VECTORS
#define ROW_VECTORS 1
#endif
#endif

__kernel void
flash_deform_attn_forward(__global const storage_t *restrict value,
                          __global const storage_t *restrict sampling,
                          __global storage_t *restrict output,
                          const fda_geometry g, const idx_t items) {
  const idx_t gid = (idx_t)get_global_id(0);
  if (gid >= items)
    return;
#if HEAD_SPAN
  // Work-items in (head block, batch and query, head in block, chunk)
  // order: a work-group takes a few heads of many neighbouring queries,
  // whose samples lie close together, instead of all heads of a few.
  const idx_t block_items = items / (idx_t)(g.group / HEAD_SPAN);
  const int block = (int)(gid / block_items);
  idx_t t = gid - (idx_t)block * block_items;
  const int chunk = (int)(t % CHUNKS);
  t /= CHUNKS;
  const int grp = block * HEAD_SPAN + (int)(t % HEAD_SPAN);
  const idx_t qg = t / HEAD_SPAN * (idx_t)g.group + grp;
#else
  const int chunk = (int)(gid % CHUNKS);
  const idx_t qg = gid / CHUNKS; // (batch, query, head) index
  const int grp = (int)(qg % (idx_t)g.group);
#endif
  const idx_t b = qg / (idx_t)g.group / (idx_t)g.queries;
  const int GD = g.group * D;

  __global const storage_t *row = sampling + qg * (idx_t)(LK * 3);
  __global const storage_t *image =
      value + b * (idx_t)g.value_len * GD + (idx_t)(grp * D + chunk * VEC);

  float mmax = -INFINITY;
#if ROW_VECTORS
  for (int i = 0; i < LK; i += 4) {
    const float4 v = *(__global const float4 *)(row + 2 * LK + i);
    mmax = fmax(mmax, fmax(fmax(v.s0, v.s1), fmax(v.s2, v.s3)));
  }
#else
  for (int i = 0; i < LK; i++)
    mmax = fmax(mmax, LOAD1(row, 2 * LK + i));
#endif

  floatv acc = (floatv)(0.0f);
  float wsum = 0.0f;
  bool any = false; // some point inside its level
  for (int l = 0; l < L; l++) {
    const int H = g.height[l], W = g.width[l];
    __global const storage_t *level = image + (idx_t)g.start[l] * GD;
    const idx_t stride_row = (idx_t)W * GD;
#if ROW_VECTORS
    // The level's 2K locations, then its K logits.
    float values[3 * K];
    for (int j = 0; j < 2 * K; j += 4)
      vstore4(*(__global const float4 *)(row + 2 * l * K + j), 0, values + j);
    for (int j = 0; j < K; j += 4)
      vstore4(*(__global const float4 *)(row + 2 * LK + l * K + j), 0,
              values + 2 * K + j);
// Point k of the level (i of the row): location coordinate c, logit.
#define LOCATION(k, i, c) values[2 * (k) + (c)]
#define LOGIT(k, i) values[2 * K + (k)]
#else
#define LOCATION(k, i, c) LOAD1(row, 2 * (i) + (c))
#define LOGIT(k, i) LOAD1(row, 2 * LK + (i))
#endif
    for (int k = 0; k < K; k++) {
      const int i = l * K + k;
      const float w = exp(LOGIT(k, i) - mmax);
      wsum += w;
      const sample_coord x = fda_coord(LOCATION(k, i, 0), W);
      const sample_coord y = fda_coord(LOCATION(k, i, 1), H);
      if (!(x.inside && y.inside))
        continue;
      any = true;
      const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
      const bool w0 = x.low >= 0, w1 = x.low + 1 < W;
      const bool h0 = y.low >= 0, h1 = y.low + 1 < H;
      // Offset of the top-left neighbour; a pointer is formed only for
      // neighbours inside the level.
      const idx_t o = (idx_t)y.low * stride_row + (idx_t)x.low * GD;
      floatv s = (floatv)(0.0f);
      if (h0 && w0)
        s += (hh * hw) * LOADV(level + o);
      if (h0 && w1)
        s += (hh * lw) * LOADV(level + (o + GD));
      if (h1 && w0)
        s += (lh * hw) * LOADV(level + (o + stride_row));
      if (h1 && w1)
        s += (lh * lw) * LOADV(level + (o + stride_row + GD));
      acc += w * s;
    }
#undef LOCATION
#undef LOGIT
  }
  // No point inside: 0, even when the weights are NaN (NaN or +Inf logits).
  STOREV(any ? acc / wsum : acc, output + (qg * CHUNKS + chunk) * VEC);
}
