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
// h heads of consecutive queries are, block after block of h heads); STAGE
// (0: every work-item locates every point of its head itself; 1 and 2: the
// CHUNKS work-items of a head share that work through local memory, see
// the second kernel below).

// ROW_VECTORS: fp32 specialized builds whose points per level are a
// multiple of 4 read the row as float4s (a row of 3*L*K values then starts
// on a multiple of four, and so do a level's 2K locations and K logits;
// buffers are aligned far beyond 16 bytes): 3*L*K/4 wide loads per
// work-item instead of 3*L*K scalar ones. H100, DETR encoder: fp32 0.312 ->
// 0.304 ms; fp16 (8-byte loads) 0.197 -> 0.205 ms, so 16-bit rows stay
// scalar.
#ifndef STAGE
#define STAGE 0
#endif

// SAMPLING_F32 1: the rows of locations and logits are fp32 whatever DTYPE
// (the FlashDeformAttn layer's 16-bit calls keep its locations in fp32,
// DESIGN.md §1.3); ROW_DTYPE is their storage.
#ifndef SAMPLING_F32
#define SAMPLING_F32 0
#endif
#if SAMPLING_F32
typedef float sampling_t;
#define ROW_DTYPE 0
#define LOAD_ROW(p, i) ((p)[i])
#else
typedef storage_t sampling_t;
#define ROW_DTYPE DTYPE
#define LOAD_ROW(p, i) LOAD1(p, i)
#endif

#define ROW_VECTORS 0
#if SPECIALIZE && ROW_DTYPE == 0
#if POINTS % 4 == 0
#undef ROW_VECTORS
#define ROW_VECTORS 1
#endif
#endif

// The (batch, query, head) index, head and channel chunk of work-item gid.
typedef struct fda_item {
  idx_t qg;
  int grp, chunk;
} fda_item;

// chunks: CHUNKS, passed in because it may read the geometry argument.
inline fda_item fda_locate_item(idx_t gid, idx_t items, int heads, int chunks) {
  fda_item it;
#if HEAD_SPAN
  // Work-items in (head block, batch and query, head in block, chunk)
  // order: a work-group takes a few heads of many neighbouring queries,
  // whose samples lie close together, instead of all heads of a few.
  const idx_t block_items = items / (idx_t)(heads / HEAD_SPAN);
  const int block = (int)(gid / block_items);
  idx_t t = gid - (idx_t)block * block_items;
  it.chunk = (int)(t % chunks);
  t /= chunks;
  it.grp = block * HEAD_SPAN + (int)(t % HEAD_SPAN);
  it.qg = t / HEAD_SPAN * (idx_t)heads + it.grp;
#else
  (void)items;
  it.chunk = (int)(gid % chunks);
  it.qg = gid / chunks;
  it.grp = (int)(it.qg % (idx_t)heads);
#endif
  return it;
}

#if !STAGE
__kernel void fda_forward(__global const storage_t *restrict value,
                          __global const sampling_t *restrict sampling,
                          __global storage_t *restrict output,
                          const fda_geometry g, const idx_t items) {
  const idx_t gid = (idx_t)get_global_id(0);
  if (gid >= items)
    return;
  const fda_item it = fda_locate_item(gid, items, g.group, CHUNKS);
  const idx_t qg = it.qg;
  const int grp = it.grp, chunk = it.chunk;
  const idx_t b = qg / (idx_t)g.group / (idx_t)g.queries;
  const int GD = g.group * D;

  __global const sampling_t *row = sampling + qg * (idx_t)(LK * 3);
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
    mmax = fmax(mmax, LOAD_ROW(row, 2 * LK + i));
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
#define LOCATION(k, i, c) LOAD_ROW(row, 2 * (i) + (c))
#define LOGIT(k, i) LOAD_ROW(row, 2 * LK + (i))
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
#endif // !STAGE

#if STAGE
// SHARE_VECTORS: specialized fp32 and fp16 builds where every work-item's
// share is 2 or 4 points read their share's locations and logits as two
// vector loads. They are aligned where L*K is a multiple of 4 (8 for fp16
// shares of 4, whose 8 locations are one 16-byte load): a row of 3*L*K
// values, a share's 2*SHARE locations and its SHARE logits then start on
// multiples of the vector.
#define SHARE_VECTORS 0
#if SPECIALIZE && ROW_DTYPE != 2
#if LK % CHUNKS == 0 && (LK / CHUNKS == 2 || LK / CHUNKS == 4) &&              \
    LK % (ROW_DTYPE == 1 && LK / CHUNKS == 4 ? 8 : 4) == 0
#undef SHARE_VECTORS
#define SHARE_VECTORS 1
#define SHARE (LK / CHUNKS)

// n (2, 4 or 8, a constant) values of the row at p into f.
inline void row_values(__global const sampling_t *p, __private float *f,
                       const int n) {
#if ROW_DTYPE == 0
  if (n == 2) {
    vstore2(*(__global const float2 *)p, 0, f);
  } else {
    for (int j = 0; j < n; j += 4)
      vstore4(*(__global const float4 *)(p + j), 0, f + j);
  }
#else
  if (n == 2) {
    const uint w = *(__global const uint *)p;
    vstore2(vload_half2(0, (__private const half *)&w), 0, f);
  } else if (n == 4) {
    const uint2 w = *(__global const uint2 *)p;
    vstore4(vload_half4(0, (__private const half *)&w), 0, f);
  } else {
    const uint4 w = *(__global const uint4 *)p;
    vstore8(vload_half8(0, (__private const half *)&w), 0, f);
  }
#endif
}
#endif
#endif

// One located point in local memory. STAGE 1: the top-left corner's offset
// and a 4-bit mask of the corners inside the level (corner_ref, in
// fda_common.clh), and the four bilinear weights times the softmax weight
// (float4). STAGE 2 (the host's choice only where G*D is a multiple of 16
// and indices are 32-bit): one int4 holding the bits of the top and bottom
// rows' weights (softmax weight times 1 - ly and ly) and of lx, and the offset
// with the mask in its low 4 bits (offsets are multiples of G*D): 16 bytes
// instead of 24, for a few multiplications more per point. Integers, so that no
// float path can touch the packed offset's bits.
#if STAGE == 2
#define POINT_ARGS __local int4 *restrict points
#else
#define POINT_ARGS                                                             \
  __local float4 *restrict corner_weights, __local corner_ref *restrict corners
#endif

// STAGE 1 and 2: the CHUNKS work-items of one (batch, query, head) split its
// L*K points. Each locates its share once into local memory; after a
// barrier all of them gather their channels of every point from there. With
// STAGE 0 each of them repeats the row's loads and arithmetic, and the
// row's scalar loads (a few distinct rows per warp instruction) take more
// L1 wavefronts than the gathers. The softmax's maximum and sum combine
// per-work-item partials (`partial`, two floats per work-item).
//
// One slot per head of the work-group: get_local_size(0) / CHUNKS of them
// (the host makes the size a multiple of CHUNKS). Point i of slot s is
// entry i * slots + s, so that the few heads of a warp read neighbouring
// entries (no bank conflicts).
__kernel void fda_forward(__global const storage_t *restrict value,
                          __global const sampling_t *restrict sampling,
                          __global storage_t *restrict output,
                          const fda_geometry g, const idx_t items, POINT_ARGS,
                          __local float *restrict partial) {
  const idx_t gid = (idx_t)get_global_id(0);
  // Work-items past the end still take part in the barriers; a slot is
  // live or not as a whole (items is a multiple of CHUNKS).
  const bool live = gid < items;
  const int lid = (int)get_local_id(0);
  const int slots = (int)get_local_size(0) / CHUNKS;
  const int slot = lid / CHUNKS;
  const fda_item it = fda_locate_item(live ? gid : 0, items, g.group, CHUNKS);
  const int GD = g.group * D;
  __global const sampling_t *row = sampling + it.qg * (idx_t)(LK * 3);
  // This work-item's share of the head's points: `count` from `first`.
  // Work-items of dead slots take row 0 (it.qg is 0 there) and fill only
  // their own slot's entries.
  const int share = (LK + CHUNKS - 1) / CHUNKS;
  const int first = (lid % CHUNKS) * share;
  __local float *part_max = partial;
  __local float *part_sum = partial + get_local_size(0);
#if SHARE_VECTORS
  const int count = SHARE;
  float locations[2 * SHARE], logits[SHARE];
  row_values(row + 2 * first, locations, 2 * SHARE);
  row_values(row + 2 * LK + first, logits, SHARE);
#define SHARE_LOGIT(j) logits[j]
#define SHARE_LOCATION(j, c) locations[2 * (j) + (c)]
#else
  const int count = max(min(share, LK - first), 0);
#define SHARE_LOGIT(j) LOAD_ROW(row, 2 * LK + first + (j))
#define SHARE_LOCATION(j, c) LOAD_ROW(row, 2 * (first + (j)) + (c))
#endif

  float mmax = -INFINITY;
  for (int j = 0; j < count; j++)
    mmax = fmax(mmax, SHARE_LOGIT(j));
  part_max[lid] = mmax;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int c = 0; c < CHUNKS; c++)
    mmax = fmax(mmax, part_max[slot * CHUNKS + c]);

  float wsum = 0.0f;
  for (int j = 0; j < count; j++) {
    const int i = first + j;
    const int l = i / K;
    const int H = g.height[l], W = g.width[l];
    const float w = exp(SHARE_LOGIT(j) - mmax);
    wsum += w;
    const sample_coord x = fda_coord(SHARE_LOCATION(j, 0), W);
    const sample_coord y = fda_coord(SHARE_LOCATION(j, 1), H);
    const point_footprint f = locate_point(x, y, W, H, (idx_t)W * GD, GD);
    // A point outside has mask 0 and is skipped, whatever its weights.
    const idx_t offset = (idx_t)g.start[l] * GD + f.offset;
    const int mask = footprint_mask(f);
    const float lw = f.lw, top = w * (1.0f - f.lh), bottom = w * f.lh;
    const int e = i * slots + slot;
#if STAGE == 2
    points[e] =
        (int4)(as_int(top), as_int(bottom), as_int(lw), (int)offset | mask);
#else
    corners[e] = (corner_ref)(offset, mask);
    corner_weights[e] = (float4)(top * (1.0f - lw), top * lw,
                                 bottom * (1.0f - lw), bottom * lw);
#endif
  }
#undef SHARE_LOGIT
#undef SHARE_LOCATION
  part_sum[lid] = wsum;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!live)
    return;
  wsum = 0.0f;
  for (int c = 0; c < CHUNKS; c++)
    wsum += part_sum[slot * CHUNKS + c];

  const idx_t b = it.qg / (idx_t)g.group / (idx_t)g.queries;
  __global const storage_t *image = value + b * (idx_t)g.value_len * GD +
                                    (idx_t)(it.grp * D + it.chunk * VEC);
  floatv acc = (floatv)(0.0f);
  bool any = false; // some point inside its level
  for (int l = 0; l < L; l++) {
    const idx_t stride_row = (idx_t)g.width[l] * GD;
    for (int k = 0; k < K; k++) {
      const int e = (l * K + k) * slots + slot;
#if STAGE == 2
      const int4 pt = points[e];
      const int mask = pt.s3 & 15;
      const idx_t offset = pt.s3 & ~15;
      if (!mask)
        continue;
      const float top = as_float(pt.s0), bottom = as_float(pt.s1);
      const float lw = as_float(pt.s2);
      const float4 cw = (float4)(top * (1.0f - lw), top * lw,
                                 bottom * (1.0f - lw), bottom * lw);
#else
      const corner_ref ref = corners[e];
      const int mask = (int)ref.s1;
      const idx_t offset = ref.s0;
      if (!mask)
        continue;
      const float4 cw = corner_weights[e];
#endif
      any = true;
      // A pointer is formed only for corners inside the level.
      if (mask & 1)
        acc += cw.s0 * LOADV(image + offset);
      if (mask & 2)
        acc += cw.s1 * LOADV(image + (offset + GD));
      if (mask & 4)
        acc += cw.s2 * LOADV(image + (offset + stride_row));
      if (mask & 8)
        acc += cw.s3 * LOADV(image + (offset + stride_row + GD));
    }
  }
  // No point inside: 0, even when the weights are NaN (NaN or +Inf logits).
  STOREV(any ? acc / wsum : acc, output + (it.qg * CHUNKS + it.chunk) * VEC);
}
#endif // STAGE
