// DCNv4 core operator, forward (DESIGN.md §1.1).
//
// A 3-D range: dimension 0 walks the C/VEC channel chunks of a pixel (all
// groups), dimension 1 the output columns, dimension 2 the output rows of all
// images. One work-item computes VEC channels of one pixel: it reads its
// group's K offsets and weights, samples the K points bilinearly with aligned
// vector loads and writes the weighted sum with one vector store. Neighbouring
// work-items take neighbouring chunks, so loads and stores are contiguous.
//
// OM_STAGE 3: the work-group first locates every sampling point of its
// (pixel, group) pairs once, one point per work-item at a time, and keeps
// each point's footprint (corner offset, corner mask, weight, bilinear
// weights) in local memory; then each work-item only gathers and weighs the
// corners of its channels, instead of the CHUNKS work-items of a group each
// repeating the coordinate work. The CPU default (PoCL: forward x0.42 to
// x0.87); on the H100 it lost up to 16 % (fp32) and 81 % (fp16): the
// footprint reads and the barrier cost more than the work they save. On the
// H200, with the location loop over each work-item's own pixel, it ties
// stage 0 at group_channels 32 and loses 6-81 % at 16 (docs/perf-notes.md
// §16).
// 32-bit indices only (the host falls back to stage 0).
//
// OM_STAGE 0 is every GPU's default. Stages 1 (offsets staged in local
// memory), 2 (shared through warp shuffles) and 4 (tensor cores) were no
// device's default and are gone: they ran 20-30 % (H200), 12-76 % and
// 2.8-3.5x (H100) slower than stage 0 (docs/perf-notes.md §14,
// §15, §17).
//
// Build-time defines (besides common.h): OM_STAGE, PIECES; with SPECIALIZE also
// GROUP_CHANNELS (D), KH, KW, REMOVE_CENTER, SOFTMAX, and FIXED_GEOMETRY with
// STRIDE_H/W, PAD_H/W, DILATION_H/W, OFFSET_SCALE_BITS (see common.h).

#ifndef OM_STAGE
#define OM_STAGE 0
#endif

// PIECES > 1 (stage 0 only): a work-item takes PIECES vectors of VEC
// channels of its group, D / PIECES apart, so that it locates each point
// once for more channels while every vector load of a warp still covers
// contiguous bytes (one float8 per work-item would leave a gap between
// neighbouring work-items' halves). NVIDIA's default for 16-bit storage at
// group_channels 32 (H100: up to 22 % faster); fp32 ran 30-45 % slower, as
// each load then touches twice the cache lines (docs/perf-notes.md §9).
#ifndef PIECES
#define PIECES 1
#endif
#if PIECES > 1 && OM_STAGE != 0
#error "PIECES > 1 needs OM_STAGE 0"
#endif
// NV_L2_FETCH_256 (set by the host on NVIDIA devices of compute capability
// 8 or later): stage 0's loads ask L2 to fetch 256 bytes from DRAM on a
// miss (PTX .L2::256B; read-only, so .nc). The offsets stream through once,
// and a corner's neighbours in the row are the other groups' channels of
// the same pixels, which other work-groups read at about the same time.
// fp32, offsets and corners: H100 x0.96-0.99 with both, x0.99-1.00 with
// either alone (docs/perf-notes.md §10). 16-bit storage, corners
// only: one piece x0.95-1.00; two pieces (group_channels 32) x1.19-1.45, so
// not there; fp16 offsets gained nothing. The asm is
// volatile so that the compiler cannot hoist a corner load above the guard
// that keeps its address inside the image.
#ifndef NV_L2_FETCH_256
#define NV_L2_FETCH_256 0
#endif
#if NV_L2_FETCH_256 && DTYPE == 0
inline float load_fetch256(__global const float *p) {
  float v;
  asm volatile("ld.global.nc.L2::256B.f32 %0, [%1];" : "=f"(v) : "l"(p));
  return v;
}
inline float4 load4_fetch256(__global const float *p) {
  float4 v;
  asm volatile("ld.global.nc.L2::256B.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "l"(p));
  return v;
}
#if VEC == 1
#define LOADV_FETCH256(p) load_fetch256(p)
#elif VEC == 2
inline float2 load2_fetch256(__global const float *p) {
  float2 v;
  asm volatile("ld.global.nc.L2::256B.v2.f32 {%0, %1}, [%2];"
               : "=f"(v.x), "=f"(v.y)
               : "l"(p));
  return v;
}
#define LOADV_FETCH256(p) load2_fetch256(p)
#elif VEC == 4
#define LOADV_FETCH256(p) load4_fetch256(p)
#else
#define LOADV_FETCH256(p) ((float8)(load4_fetch256(p), load4_fetch256((p) + 4)))
#endif
#define LOAD1_FETCH256(p, i) load_fetch256((p) + (i))
#elif NV_L2_FETCH_256 && VEC >= 2 && PIECES == 1
// 16-bit storage: a corner's VEC values as 32-bit words with the hint,
// converted as LOADV converts them; offsets without it.
#if VEC == 2
typedef uint fetch_words;
inline fetch_words words_fetch256(__global const storage_t *p) {
  uint v;
  asm volatile("ld.global.nc.L2::256B.u32 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}
#elif VEC == 4
typedef uint2 fetch_words;
inline fetch_words words_fetch256(__global const storage_t *p) {
  uint2 v;
  asm volatile("ld.global.nc.L2::256B.v2.u32 {%0, %1}, [%2];"
               : "=r"(v.x), "=r"(v.y)
               : "l"(p));
  return v;
}
#else
typedef uint4 fetch_words;
inline fetch_words words_fetch256(__global const storage_t *p) {
  uint4 v;
  asm volatile("ld.global.nc.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
#endif
inline floatv words_to_floats(fetch_words w) {
#if DTYPE == 1
  return CAT(vload_half, VEC)(0, (const __private half *)&w);
#else
  return unpack_words(w);
#endif
}
inline floatv loadv_fetch256(__global const storage_t *p) {
  return words_to_floats(words_fetch256(p));
}
#define LOADV_FETCH256(p) loadv_fetch256(p)
#define LOAD1_FETCH256(p, i) LOAD1(p, i)
// A corner's words when `ok`, else zeros, as one predicated load in the
// asm: no branch around it. With the guard in C, NVIDIA's compiler kept a
// branch around each corner of 16-bit storage (the load and its 2 * VEC
// conversions and FMAs are too long to predicate: 40 branch regions in the
// fp16 kernel at group_channels 16, 4 with this), so a warp had one corner
// load in flight at a time. H100, group_channels 16: fp16 x0.91-1.01
// (64x56x56x128 0.182 -> 0.174 ms), bf16 64x56x56x128 0.197 -> 0.171 ms.
// Two pieces (group_channels 32) keep the C guard: there NVIDIA's compiler
// predicates the loads itself, and this lost up to 10 % on the high-res rows
// (docs/perf-notes.md §12). Not volatile: the asm reads memory
// only where ok, and the input does not change during the kernel.
#define PREDICATED_CORNERS 1
#if VEC == 2
inline fetch_words words_fetch256_if(ulong p, uint ok) {
  uint v;
  asm("{.reg .pred q; setp.ne.u32 q, %2, 0; mov.u32 %0, 0;\n\t"
      "@q ld.global.nc.L2::256B.u32 %0, [%1];}"
      : "=r"(v)
      : "l"(p), "r"(ok));
  return v;
}
#elif VEC == 4
inline fetch_words words_fetch256_if(ulong p, uint ok) {
  uint2 v;
  asm("{.reg .pred q; setp.ne.u32 q, %3, 0; mov.u32 %0, 0; mov.u32 %1, 0;\n\t"
      "@q ld.global.nc.L2::256B.v2.u32 {%0, %1}, [%2];}"
      : "=r"(v.x), "=r"(v.y)
      : "l"(p), "r"(ok));
  return v;
}
#else
inline fetch_words words_fetch256_if(ulong p, uint ok) {
  uint4 v;
  asm("{.reg .pred q; setp.ne.u32 q, %5, 0; mov.u32 %0, 0; mov.u32 %1, 0;\n\t"
      "mov.u32 %2, 0; mov.u32 %3, 0;\n\t"
      "@q ld.global.nc.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];}"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p), "r"(ok));
  return v;
}
#endif
#else
#define LOADV_FETCH256(p) LOADV(p)
#define LOAD1_FETCH256(p, i) LOAD1(p, i)
#endif
#ifndef PREDICATED_CORNERS
#define PREDICATED_CORNERS 0
#endif

// Work-items per (pixel, group), and channels between a work-item's pieces.
#define GROUP_ITEMS (CHUNKS / PIECES)
#define PIECE_STRIDE (D / PIECES)

#if OM_STAGE != 3
// Stage 0 reads a point's corners with CORNER, from the work-item's first
// channel (input + image_start); CORNER_INDEX_U32 is a corner's index from
// there as unsigned 32-bit, for where indices fit.
#define CORNER_INDEX_U32(i, piece)                                             \
  ((uint)image_start + (uint)(i) + (uint)((piece)*PIECE_STRIDE))
#if DTYPE == 0 && !IDX64
// fp32: corners addressed by unsigned 32-bit element indices. With a
// pointer plus a signed index NVIDIA's compiler widened each corner's index
// to 64 bits and added it to a 64-bit base, several instructions per
// corner instead of one wide multiply-add: H100, x0.89-0.95 at
// group_channels 32, x0.94-0.99 at 16; 16-bit storage ran 1-2 % slower
// with it and the FlashDeformAttn forward 2-3 % slower (docs/perf-notes.md
// §6).
#define CORNER(i, piece) LOADV_FETCH256(input + CORNER_INDEX_U32(i, piece))
#else
#define CORNER(i, piece)                                                       \
  LOADV_FETCH256(input + image_start + (i) + (piece)*PIECE_STRIDE)
#endif

#if PREDICATED_CORNERS
// Corner (i, piece) when ok, else zeros, with no branch. Byte addresses from
// unsigned 32-bit indices where they fit, as fp32's CORNER (one wide
// multiply-add per corner in the SASS, docs/perf-notes.md §12;
// the signed form was not timed with these loads).
#if IDX64
#define CORNER_ADDRESS(i, piece)                                               \
  ((ulong)input +                                                              \
   sizeof(storage_t) * (ulong)(image_start + (i) + (piece)*PIECE_STRIDE))
#else
#define CORNER_ADDRESS(i, piece)                                               \
  ((ulong)input + sizeof(storage_t) * (ulong)CORNER_INDEX_U32(i, piece))
#endif
#define CORNER_IF(i, piece, ok)                                                \
  words_to_floats(words_fetch256_if(CORNER_ADDRESS(i, piece), (uint)(ok)))
#endif

// Stage 0 folds each point's weight into its four bilinear weights (see
// add_point), and a work-item whose folded sum is not finite runs again in
// the documented order (forward_documented_order). H100, against the
// documented order throughout: fp32 x0.93-0.98, fp16 x0.83-1.06, geometric
// mean of the 40 paper rows' fractions 0.298 -> 0.307 (docs/perf-notes.md
// §11).
#define FOLD_WEIGHTS (OM_STAGE == 0)

// Adds point (i, j) of the window whose centre is (base_w, base_h), at the
// learned offset (dx, dy) and with weight m, to acc's PIECES vectors.
//
// Documented order (fold false): the point's sample (bilinear weight times
// corner, summed) times m, five FMAs per channel. fold: m times each
// bilinear weight, then one FMA per channel and corner, four. The two differ
// beyond rounding only where a product overflows or is 0 * Inf (an infinite
// weight and a bilinear weight of exactly 0), and then the folded sum is not
// finite: the kernel recomputes such a work-item in the documented order, so
// NaN and Inf land where include/dcnv4.h says (the fold alone failed 24
// checks of test_nonfinite on the H100, docs/perf-notes.md §11).
inline void add_point(floatv *acc, const dcnv4_geometry g,
                      __global const storage_t *restrict input,
                      const idx_t image_start, const int C, const idx_t row,
                      const int base_w, const int base_h, const int i,
                      const int j, const float dx, const float dy,
                      const float m, const bool fold) {
  // Every use of x and y below is guarded by `in`.
  const sample_coord x =
      split_coord_unselected(base_w, POINT_PART_W(i, dx), g.width_in);
  const sample_coord y =
      split_coord_unselected(base_h, POINT_PART_H(j, dy), g.height_in);
  // No branch around a point outside the window: its corners' guards are
  // false instead, so the compiler can overlap the loads of neighbouring
  // points (H100 fp16: 2-7 % faster than `continue`).
  const bool in = x.inside && y.inside;
  const float lw = x.frac, lh = y.frac, hw = 1.0f - lw, hh = 1.0f - lh;
  const bool w0 = in && x.low >= 0, w1 = in && x.low + 1 < g.width_in;
  const bool h0 = y.low >= 0, h1 = y.low + 1 < g.height_in;
  // Offset of the top-left neighbour (the image's first pixel for a point
  // outside, whose loads are all guarded off); a pointer is formed only for
  // neighbours inside the image.
  const idx_t o = in ? (idx_t)y.low * row + (idx_t)x.low * C : 0;
  // Top and bottom rows' weights; every corner's guard includes `in`.
  const float top = fold ? m * hh : hh, bottom = fold ? m * lh : lh;
#if PREDICATED_CORNERS
  // Folded: every corner's FMAs run, on zeros for a corner outside the
  // image. The weights are finite there unless an offset or the point's
  // weight is not (then the sum is not finite and the work-item runs again
  // in the documented order), so the zeros add nothing.
  if (fold) {
#pragma unroll
    for (int p = 0; p < PIECES; p++) {
      floatv s = acc[p];
      s += (top * hw) * CORNER_IF(o, p, h0 && w0);
      s += (top * lw) * CORNER_IF(o + C, p, h0 && w1);
      s += (bottom * hw) * CORNER_IF(o + row, p, h1 && w0);
      s += (bottom * lw) * CORNER_IF(o + row + C, p, h1 && w1);
      acc[p] = s;
    }
    return;
  }
#endif
#pragma unroll
  for (int p = 0; p < PIECES; p++) {
    floatv s = fold ? acc[p] : (floatv)(0.0f);
    if (h0 && w0)
      s += (top * hw) * CORNER(o, p);
    if (h0 && w1)
      s += (top * lw) * CORNER(o + C, p);
    if (h1 && w0)
      s += (bottom * hw) * CORNER(o + row, p);
    if (h1 && w1)
      s += (bottom * lw) * CORNER(o + row + C, p);
    // A point outside adds nothing, even with a NaN or infinite weight
    // (H100: `acc += (in ? m : 0) * s` ran fp32 up to 20 % slower).
    if (fold)
      acc[p] = s;
    else if (in)
      acc[p] += m * s;
  }
}
#endif

#if FOLD_WEIGHTS
// The documented order for a work-item whose folded sum is not finite;
// writes the work-item's PIECES vectors at `out`. Real data never comes
// here. Out of line, so that the folded loop keeps nothing live for it:
// inline in the kernel the fp32 fold gained 0-3 % instead of 2-7 % (a rolled
// loop, v16's fold-rolled.patch) or lost 9-19 % (unrolled, fold-two-pass).
// Rolled: it only has to be right.
__attribute__((noinline)) void forward_documented_order(
    const dcnv4_geometry g, __global const storage_t *restrict input,
    __global const storage_t *restrict om, const idx_t image_start, const int C,
    const idx_t row, const int base_w, const int base_h, const float mmax,
    const float minv, __global storage_t *restrict out) {
  floatv acc[PIECES];
  for (int p = 0; p < PIECES; p++)
    acc[p] = (floatv)(0.0f);
  int k = 0;
#pragma unroll 1
  for (int i = 0; i < KW; i++) {
#pragma unroll 1
    for (int j = 0; j < KH; j++) {
      if (REMOVE_CENTER && i == KW / 2 && j == KH / 2)
        continue;
      add_point(acc, g, input, image_start, C, row, base_w, base_h, i, j,
                LOAD1_FETCH256(om, 2 * k), LOAD1_FETCH256(om, 2 * k + 1),
                point_weight(g, LOAD1_FETCH256(om, 2 * K + k), mmax, minv),
                false);
      k++;
    }
  }
  for (int p = 0; p < PIECES; p++)
    STOREV(acc[p], out + p * PIECE_STRIDE);
}
#endif

// Stage 3 locates points with locate_point (common.h). Stage 0 keeps the
// same logic in add_point, which routed through that helper ran 1-4 % slower
// on the H100.

__kernel void dcnv4_forward(__global const storage_t *restrict input,
                            __global const storage_t *restrict offset_mask,
                            __global storage_t *restrict output,
                            const dcnv4_geometry g,
                            __local float4 *staged_vectors) {
  // staged_vectors is declared as vectors so that the device aligns it for
  // stage 3's 16-byte accesses (a kernel may assume a pointer argument
  // aligned to its type).
  const int cv = (int)get_global_id(0); // chunk index within the pixel
  const int wo = (int)get_global_id(1);
  const int nh = (int)get_global_id(2);
  const int C = g.group * D;
  // Dimension 2 may be padded to whole work-groups of rows.
  const bool pixel_ok = wo < g.width_out && nh < g.batch * g.height_out;
  const bool active = cv < C / (VEC * PIECES) && pixel_ok;
  const int grp = cv / GROUP_ITEMS;
  const int chunk = cv - grp * GROUP_ITEMS;
  const int n = nh / g.height_out;
  const int ho = nh - n * g.height_out;
  const idx_t pixel = (idx_t)nh * g.width_out + wo;
  // Element index of this work-item's first channel in image n.
  const idx_t image_start =
      (idx_t)n * g.height_in * g.width_in * C + grp * D + chunk * VEC;

#if OM_STAGE == 3
  // Stage 3 keeps data per (pixel, group) pair of the work-group:
  // groups [g0, g0 + ng) fastest, then its pixels (columns, then rows);
  // `pair` is this work-item's. The work-items of a pixel fill its ng pairs,
  // so that the filling loops divide by no run-time size (three such
  // divisions per value cost the first version of the removed stage 1 50 %
  // on the H200).
  const int ng = (int)get_local_size(0) / CHUNKS;
  const int g0 = (int)(get_group_id(0) * get_local_size(0)) / CHUNKS;
  const int column =
      (int)(get_local_id(2) * get_local_size(1) + get_local_id(1));
  const int pair = column * ng + (grp - g0);
#if IDX64
#error "OM_STAGE 3 keeps 32-bit corner offsets"
#endif
  const idx_t row = (idx_t)g.width_in * C;
  // Entry (pair, k) is point k's footprint: {offset, corner mask, weight
  // bits, 0} and the four bilinear weights, 32 bytes. The work-items of a
  // pixel locate its ng * K points, groups fastest, so that neighbouring
  // work-items read neighbouring offset values.
  __local int4 *heads = (__local int4 *)staged_vectors;
  __local float4 *corner_weights = staged_vectors + 1;
  for (int i = (int)get_local_id(0); i < ng * K; i += (int)get_local_size(0)) {
    const int e = column * ng * K + i;
    const int eg = g0 + i / K, k = i - (i / K) * K;
    int4 head = (int4)(0);
    float4 weights = (float4)(0.0f);
    if (pixel_ok && eg < g.group) {
      __global const storage_t *eom =
          offset_mask + pixel * g.offset_mask_stride + eg * K * 3;
      float mmax, minv;
      group_softmax_stats(eom, g, &mmax, &minv);
      sample_coord x, y;
      point_position(g, ho, wo, k, LOAD1(eom, 2 * k), LOAD1(eom, 2 * k + 1), &x,
                     &y);
      const point_footprint f =
          locate_point(x, y, g.width_in, g.height_in, row, C);
      const float m = point_weight(g, LOAD1(eom, 2 * K + k), mmax, minv);
      // A point outside adds nothing, even with a NaN or infinite weight.
      head =
          (int4)((int)f.offset, footprint_mask(f), as_int(f.in ? m : 0.0f), 0);
      const float hw = 1.0f - f.lw, hh = 1.0f - f.lh;
      weights = (float4)(hh * hw, hh * f.lw, f.lh * hw, f.lh * f.lw);
    }
    heads[2 * e] = head;
    corner_weights[2 * e] = weights;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!active)
    return;
  __global const storage_t *image = input + image_start;
  floatv acc = (floatv)(0.0f);
  POINT_LOOP
  for (int k = 0; k < K; k++) {
    const int4 head = heads[2 * (pair * K + k)];
    const float4 w = corner_weights[2 * (pair * K + k)];
    const int o = head.s0, mask = head.s1;
    floatv s = (floatv)(0.0f);
    if (mask & 1)
      s += w.s0 * LOADV(image + o);
    if (mask & 2)
      s += w.s1 * LOADV(image + (o + C));
    if (mask & 4)
      s += w.s2 * LOADV(image + (o + row));
    if (mask & 8)
      s += w.s3 * LOADV(image + (o + row + C));
    acc += as_float(head.s2) * s;
  }
  STOREV(acc, output + pixel * C + grp * D + chunk * VEC);
#else
  if (!active)
    return;
  __global const storage_t *om =
      offset_mask + pixel * g.offset_mask_stride + grp * K * 3;
#define OM(i) LOAD1_FETCH256(om, i)
#define OFFSET_X(k) OM(2 * (k))
#define OFFSET_Y(k) OM(2 * (k) + 1)
#define WEIGHT(k) OM(2 * K + (k))

  const int base_w = WINDOW_CENTRE_W(wo);
  const int base_h = WINDOW_CENTRE_H(ho);
  const idx_t row = (idx_t)g.width_in * C;

  // DCNv3 mode: the weights are the softmax of the group's K values.
  float mmax = 0.0f, minv = 1.0f;
  if (SOFTMAX) {
    mmax = -INFINITY;
    for (int k = 0; k < K; k++)
      mmax = fmax(mmax, WEIGHT(k));
    float msum = 0.0f;
    for (int k = 0; k < K; k++)
      msum += exp(WEIGHT(k) - mmax);
    minv = 1.0f / msum;
  }

  floatv acc[PIECES];
#pragma unroll
  for (int p = 0; p < PIECES; p++)
    acc[p] = (floatv)(0.0f);
  int k = 0;
  POINT_LOOP
  for (int i = 0; i < KW; i++) {
    POINT_LOOP
    for (int j = 0; j < KH; j++) {
      if (REMOVE_CENTER && i == KW / 2 && j == KH / 2)
        continue;
      add_point(acc, g, input, image_start, C, row, base_w, base_h, i, j,
                OFFSET_X(k), OFFSET_Y(k),
                point_weight(g, WEIGHT(k), mmax, minv), FOLD_WEIGHTS);
      k++;
    }
  }
#if FOLD_WEIGHTS
  // A folded sum that is not finite (NaN and Inf spread through a sum) is
  // recomputed in the documented order.
  float total = 0.0f;
#pragma unroll
  for (int p = 0; p < PIECES; p++)
    total += HSUM(acc[p]);
  if (!isfinite(total)) {
    forward_documented_order(g, input, om, image_start, C, row, base_w, base_h,
                             mmax, minv,
                             output + pixel * C + grp * D + chunk * VEC);
    return;
  }
#endif
#pragma unroll
  for (int p = 0; p < PIECES; p++)
    STOREV(acc[p],
           output + pixel * C + grp * D + p * PIECE_STRIDE + chunk * VEC);
#undef OM
#undef OFFSET_X
#undef OFFSET_Y
#undef WEIGHT
#endif
}
