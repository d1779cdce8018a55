// DCNv4 core operator, forward (DESIGN.md §1.1).
//
// A 3-D range: dimension 0 walks the C/VEC channel chunks of a pixel (all
// groups), dimension 1 the output columns, dimension 2 the output rows of all
// images. One work-item computes VEC channels of one pixel: it reads its
// group's K offsets and weights, samples the K points bilinearly with aligned
// vector loads and writes the weighted sum with one vector store. Neighbouring
// work-items take neighbouring chunks, so loads and stores are contiguous.
//
// OM_STAGE 1: the work-group first copies the offset/weight rows of its
// (pixel, group) pairs into local memory with contiguous loads (converting
// 16-bit values once), one 16-byte {dx, dy, weight} entry per point, instead
// of every work-item reading its group's 3K values from global memory with
// scalar loads. Needs the work-group to span whole groups (checked by the
// host). Not a default: on the H200 it ran 20-30 % slower than stage 0 on
// the 64x56x56x128 rows (docs/perf-notes.md §14), as every other
// variant that makes a work-group wait at a barrier before its corner loads.
//
// OM_STAGE 2 (NVIDIA, with LANE_SHUFFLE): the CHUNKS work-items of a (pixel,
// group) share the loading of its offsets and weights through warp shuffles.
// Not a default: on the H100 12-31 % slower than stage 0 in fp32, 22-76 % in
// fp16, whatever the register cap (docs/perf-notes.md §15).
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
// OM_STAGE 4: tensor cores (warp_mma.h), 16-bit storage with group_channels
// a multiple of 16; see forward_tensor_cores. Not a default: on the H100 it
// passed the tests and ran 2.8-3.5x slower than stage 0 (scattered 16-byte
// asynchronous copies; docs/perf-notes.md §17).
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
#if PIECES > 1 && OM_STAGE != 0 && OM_STAGE != 4
#error "PIECES > 1 needs OM_STAGE 0 or 4"
#endif
// NV_L2_FETCH_256 (set by the host on NVIDIA devices of compute capability
// 8 or later): stage 0's loads ask L2 to fetch 256 bytes from DRAM on a
// miss (PTX .L2::256B; read-only, so .nc). The offsets stream through once,
// and a corner's neighbours in the row are the other groups' channels of
// the same pixels, which other work-groups read at about the same time.
// fp32, offsets and corners: H100 x0.96-0.99 with both, x0.99-1.00 with
// either alone. 16-bit storage, corners only: one piece x0.95-1.00; two
// pieces (group_channels 32) x1.19-1.45, so not there; fp16 offsets gained
// nothing (docs/perf-notes.md §10). The asm is
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
#elif NV_L2_FETCH_256 && VEC >= 2 && PIECES == 1 &&                            \
    (DTYPE == 2 || HALF_VEC_MODE == 0 || HALF_VEC_MODE == 2)
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
#if DTYPE == 1 && HALF_VEC_MODE == 2
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
// Stages 0-2 read a point's corners with CORNER, from the work-item's first
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

#if FOLD_WEIGHTS || OM_STAGE == 4
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

#if OM_STAGE == 4
// Stage 4: tensor cores (16-bit storage, group_channels a multiple of 16;
// warp_mma.h, PTX on NVIDIA). One work-item per (pixel, group) pair, VEC 8
// and PIECES D / 8, and the 32 pairs of a warp summed together as matrix
// products: for corner c of point k, D[pair][channel] += A * B with B the
// 16 pairs' corner values (16 x 8 channels) and A = diag(weights of those
// pairs' corner c). Only the diagonal of A is used, a sixteenth of the
// products, but a product instruction then does 128 useful multiply-adds
// with no conversion from 16 bits, where stage 0 spends a conversion and an
// FMA per value and corner (on the H100 its fp16 forward issued 1528
// instructions per warp, 576 of them those; docs/perf-notes.md §3).
//
// Per point the warp's work-items locate their pair's point, copy its four
// corners (D values each) into local memory with asynchronous copies (zeros
// outside the image) and store its four weights as 16-bit values; the
// copies of points k + 1 and k + 2 are in flight while point k's products
// run. The
// weights are scaled by a power of two per pair (from the largest |weight|
// of its points) so that they keep 16-bit precision whatever their range,
// and the sums scaled back. A pair whose sum is not finite runs again in
// the documented order, as in stage 0 (an infinite or NaN corner value of
// any pair of the 16 can make the other 15 sums NaN too: they rerun).
#if !SPECIALIZE || VEC != 8 || PIECES * 8 != D || D % 16 || DTYPE == 0
#error                                                                         \
    "OM_STAGE 4 needs SPECIALIZE, 16-bit storage, VEC 8, PIECES D / 8, D % 16 == 0"
#endif
// The portable warp_mma.h has barriers in every call: its loops stay rolled,
// which PoCL compiles in seconds rather than many minutes.
#if WARP_MMA_PTX
#define MMA_LOOP _Pragma("unroll")
#else
#define MMA_LOOP _Pragma("unroll 1")
#endif
// A pair's four corners in local memory, 16 bytes more than their values
// so that 8 pairs' rows read together fall in different banks.
#define PAIR_BYTES (8 * D + 16)
#define STAGE_DATA_BYTES (WARP_LANES * PAIR_BYTES)
#define STAGE_WEIGHT_BYTES (WARP_LANES * 16)
// Points in flight: the copies of points k + 1 and k + 2 run while point
// k's products do (copy_wait_pending below takes MMA_STAGES - 1 as a
// literal). H100, 64x56x56x128 G8 fp16: two stages with each point's
// offsets loaded where used 0.486 ms; this (three, offsets loaded ahead)
// 0.600 ms; stage 0 0.174 ms. The copies, not their latency, bound it
// (docs/perf-notes.md §17).
#define MMA_STAGES 3
// Per warp: MMA_STAGES stages of corners and weights, 16 zero bytes, the
// scratch of the portable warp_mma.h. The host computes the same
// (tensor_core_warp_bytes in dcnv4_op.c).
#define WARP_LOCAL_BYTES                                                       \
  (MMA_STAGES * (STAGE_DATA_BYTES + STAGE_WEIGHT_BYTES) + 16 +                 \
   WARP_SCRATCH_BYTES)

// Locates point (i, j) of this work-item's pair, starts the copies of its
// four corners into `data` (the pair's PAIR_BYTES) and stores its four
// weights (times the pair's scale) in `weights`, each in the half of its
// word that the A fragment of its lane parity takes.
inline void stage_point(const dcnv4_geometry g,
                        __global const storage_t *restrict input,
                        const idx_t image_start, const int C, const idx_t row,
                        const int base_w, const int base_h, const int i,
                        const int j, const float dx, const float dy,
                        const float m, __local uchar *data,
                        __local uint4 *weights, const bool upper) {
  const sample_coord x =
      split_coord_unselected(base_w, POINT_PART_W(i, dx), g.width_in);
  const sample_coord y =
      split_coord_unselected(base_h, POINT_PART_H(j, dy), g.height_in);
  const point_footprint f = locate_point(x, y, g.width_in, g.height_in, row, C);
  const float lw = f.lw, hw = 1.0f - f.lw, hh = 1.0f - f.lh;
  // A point outside adds nothing, even with a NaN or infinite weight.
  const float top = f.in ? m * hh : 0.0f, bottom = f.in ? m * f.lh : 0.0f;
  const idx_t o = f.offset;
  const idx_t corner[4] = {o, o + C, o + row, o + row + C};
  const bool ok[4] = {f.c00, f.c01, f.c10, f.c11};
#pragma unroll
  for (int c = 0; c < 4; c++) {
    // A corner outside the image is not read: its copies write zeros, from
    // the image's first pixel as a valid address.
    __global const uint4 *src =
        (__global const uint4 *)(input + image_start + (ok[c] ? corner[c] : 0));
    __local uint4 *dst = (__local uint4 *)(data + c * 2 * D);
#pragma unroll
    for (int q = 0; q < D / 8; q++)
      copy16_async(dst + q, src + q, ok[c]);
  }
  *weights =
      (uint4)(place_weight(top * hw, upper), place_weight(top * lw, upper),
              place_weight(bottom * hw, upper),
              place_weight(bottom * lw, upper));
}

inline void forward_tensor_cores(const dcnv4_geometry g,
                                 __global const storage_t *restrict input,
                                 __global const storage_t *restrict offset_mask,
                                 __global storage_t *restrict output,
                                 __local uchar *local_base, const bool active,
                                 const idx_t pixel, const int grp,
                                 const idx_t image_start, const int C,
                                 const int ho, const int wo) {
  const int lid = linear_local_id();
  const int lane = lid & (WARP_LANES - 1), grp_of_lane = lane >> 2,
            tig = lane & 3;
  __local uchar *warp_local =
      local_base + (lid / WARP_LANES) * WARP_LOCAL_BYTES;
  __local uchar *stage_data = warp_local;
  __local uint4 *stage_weights =
      (__local uint4 *)(warp_local + MMA_STAGES * STAGE_DATA_BYTES);
  __local uint4 *zero16 =
      (__local uint4 *)(warp_local +
                        MMA_STAGES * (STAGE_DATA_BYTES + STAGE_WEIGHT_BYTES));
  __local uint *scratch = (__local uint *)(zero16 + 1);
  if (lane == 0)
    *zero16 = (uint4)(0);

  // Inactive work-items take part with zero weights and no corners.
  __global const storage_t *om =
      offset_mask + (active ? pixel * g.offset_mask_stride + grp * K * 3 : 0);
  const int base_w = WINDOW_CENTRE_W(wo);
  const int base_h = WINDOW_CENTRE_H(ho);
  const idx_t row = (idx_t)g.width_in * C;
  float mmax = 0.0f, minv = 1.0f;
  if (SOFTMAX)
    group_softmax_stats(om, g, &mmax, &minv);
  float m[K];
  float largest = 0.0f;
#pragma unroll
  for (int k = 0; k < K; k++) {
    m[k] = active ? point_weight(g, LOAD1(om, 2 * K + k), mmax, minv) : 0.0f;
    largest = fmax(largest, fabs(m[k]));
  }
  // scale = 2^-e for the exponent e of the largest |weight| (bilinear
  // weights are at most 1), unscale 2^e; a NaN or infinite weight makes the
  // sum non-finite anyway. A largest weight below fp32's normal range (bf16
  // storage can hold one) would lose its 16-bit precision: documented order.
  int exponent = (int)((as_uint(largest) >> 23) & 0xff);
  const bool tiny = exponent == 0 && largest > 0.0f;
  exponent = clamp(exponent == 0 ? 127 : exponent, 1, 253);
  const float scale = as_float((uint)(254 - exponent) << 23);
  const float unscale = as_float((uint)exponent << 23);

  // This lane's row address for ldmatrix: row (lane & 7) of matrix
  // (lane >> 3), matrices {pairs 0-7, 8-15} x {channels 0-7, 8-15} of a
  // 16-pair tile.
  const uint row_offset =
      (uint)(((lane & 7) + ((lane >> 3) & 1) * 8) * PAIR_BYTES +
             (lane >> 4) * 16);
  // The diagonal of A: lane (grp, tig) holds A[grp][grp] when grp / 2 ==
  // tig, in the half grp & 1, and A[grp + 8][grp + 8] likewise; the other
  // lanes read zeros.
  const bool diagonal = (grp_of_lane >> 1) == tig;

  float4 acc[2][D / 8];
#pragma unroll
  for (int r = 0; r < 2; r++)
#pragma unroll
    for (int n = 0; n < D / 8; n++)
      acc[r][n] = (float4)(0.0f);

// Point k's place (i, j) in the window, the order of stage 0's loops.
#define POINT_SLOT(k) ((k) + (REMOVE_CENTER && (k) >= (KW / 2) * KH + KH / 2))
#define POINT_I(k) (POINT_SLOT(k) / KH)
#define POINT_J(k) (POINT_SLOT(k) % KH)
  // The offsets of point k + MMA_STAGES are loaded while point k's
  // products run, so that no point waits for its offsets behind the
  // barriers.
  float ox[K], oy[K];
#define LOAD_OFFSETS(k)                                                        \
  ox[k] = active ? LOAD1(om, 2 * (k)) : 0.0f;                                  \
  oy[k] = active ? LOAD1(om, 2 * (k) + 1) : 0.0f
#define STAGE_POINT(k)                                                         \
  stage_point(                                                                 \
      g, input, image_start, C, row, base_w, base_h, POINT_I(k), POINT_J(k),   \
      ox[k], oy[k], m[k] * scale,                                              \
      stage_data + ((k) % MMA_STAGES) * STAGE_DATA_BYTES + lane * PAIR_BYTES,  \
      stage_weights + ((k) % MMA_STAGES) * WARP_LANES + lane, (lane & 1) != 0)
#pragma unroll
  for (int k = 0; k < MMA_STAGES && k < K; k++) {
    LOAD_OFFSETS(k);
  }
#pragma unroll
  for (int k = 0; k < MMA_STAGES - 1; k++) {
    if (k < K)
      STAGE_POINT(k);
    copy_commit();
  }
  MMA_LOOP
  for (int k = 0; k < K; k++) {
    const int next = k + MMA_STAGES - 1;
    if (next < K) {
      // Point k - 1's products have read the buffers point `next` takes.
      warp_sync();
      STAGE_POINT(next);
    }
    if (next + 1 < K) {
      LOAD_OFFSETS(next + 1);
    }
    copy_commit();
    copy_wait_pending(2);
    warp_sync();
    __local const uchar *data =
        stage_data + (k % MMA_STAGES) * STAGE_DATA_BYTES;
    __local const uint4 *weights =
        stage_weights + (k % MMA_STAGES) * WARP_LANES;
    MMA_LOOP
    for (int r = 0; r < 2; r++) {
      const uint4 upper_rows =
          *(diagonal ? weights + 16 * r + grp_of_lane : zero16);
      const uint4 lower_rows =
          *(diagonal ? weights + 16 * r + 8 + grp_of_lane : zero16);
      MMA_LOOP
      for (int c = 0; c < 4; c++) {
        const uint a0 = c == 0   ? upper_rows.x
                        : c == 1 ? upper_rows.y
                        : c == 2 ? upper_rows.z
                                 : upper_rows.w;
        const uint a3 = c == 0   ? lower_rows.x
                        : c == 1 ? lower_rows.y
                        : c == 2 ? lower_rows.z
                                 : lower_rows.w;
        const uint4 a = (uint4)(a0, 0u, 0u, a3);
        MMA_LOOP
        for (int q = 0; q < D / 16; q++) {
          const uint4 b = ldmatrix_x4_trans(
              data,
              row_offset + (uint)(16 * r * PAIR_BYTES + c * 2 * D + 32 * q),
              scratch);
          acc[r][2 * q] = mma_16816(acc[r][2 * q], a, b.xy, scratch);
          acc[r][2 * q + 1] = mma_16816(acc[r][2 * q + 1], a, b.zw, scratch);
        }
      }
    }
  }
#undef STAGE_POINT
#undef LOAD_OFFSETS
#undef POINT_SLOT
#undef POINT_I
#undef POINT_J

  // The sums to their pairs' work-items through local memory (the corner
  // buffers, D floats per pair), then each work-item writes its pair's D
  // values with vector stores as stage 0 does.
  warp_sync();
  __local float *sums = (__local float *)stage_data;
#pragma unroll
  for (int r = 0; r < 2; r++)
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
      const int p = 16 * r + grp_of_lane, ch = 8 * n + 2 * tig;
      vstore2(acc[r][n].xy, 0, sums + p * D + ch);
      vstore2(acc[r][n].zw, 0, sums + (p + 8) * D + ch);
    }
  warp_sync();
  if (!active)
    return;
  __global storage_t *out = output + pixel * C + grp * D;
  floatv v[PIECES];
  float total = 0.0f;
#pragma unroll
  for (int p = 0; p < PIECES; p++) {
    v[p] = unscale * vload8(0, sums + lane * D + 8 * p);
    total += HSUM(v[p]);
  }
  if (!isfinite(total) || tiny) {
    forward_documented_order(g, input, om, image_start, C, row, base_w, base_h,
                             mmax, minv, out);
    return;
  }
#pragma unroll
  for (int p = 0; p < PIECES; p++)
    STOREV(v[p], out + 8 * p);
}
#endif

// Stages 3 and 4 locate points with locate_point (common.h); stage 4 ran
// as fast through it as with its own copy (H100, 64x56x56x128 G8 fp16,
// 0.59 ms, docs/perf-notes.md §17). Stages 0-2 keep the same
// logic in add_point, which routed through that helper ran 1-4 % slower on
// the H100.

__kernel void dcnv4_forward(__global const storage_t *restrict input,
                            __global const storage_t *restrict offset_mask,
                            __global storage_t *restrict output,
                            const dcnv4_geometry g,
                            __local float4 *staged_vectors) {
  // staged_vectors is declared as vectors so that the device aligns it for
  // stages 1 and 3's 16-byte accesses (a kernel may assume a pointer
  // argument aligned to its type).
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

#if OM_STAGE == 4
  forward_tensor_cores(g, input, offset_mask, output,
                       (__local uchar *)staged_vectors, active, pixel, grp,
                       image_start, C, ho, wo);
#else // stages 0-3

#if OM_STAGE == 1 || OM_STAGE == 3
  // Stages 1 and 3 keep data per (pixel, group) pair of the work-group:
  // groups [g0, g0 + ng) fastest, then its pixels (columns, then rows);
  // `pair` is this work-item's. The work-items of a pixel fill its ng pairs,
  // so that the filling loops divide by no run-time size (three such
  // divisions per value cost stage 1's first version 50 % on the H200).
  const int ng = (int)get_local_size(0) / CHUNKS;
  const int g0 = (int)(get_group_id(0) * get_local_size(0)) / CHUNKS;
  const int column =
      (int)(get_local_id(2) * get_local_size(1) + get_local_id(1));
  const int pair = column * ng + (grp - g0);
#endif

#if OM_STAGE == 3
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
#if OM_STAGE == 1
  // Point k of pair p is the float4 {dx, dy, weight, 0} at p * K + k, so a
  // work-item reads each point with one 16-byte local load (pairs 16 * K
  // bytes apart: a warp's pairs fall in different banks for odd K). The
  // work-items of a pixel copy its ng groups' rows, one contiguous run of
  // ng * 3K values.
  __global const storage_t *rows =
      offset_mask + (pixel_ok ? pixel * g.offset_mask_stride + g0 * 3 * K : 0);
  __local float *dst = (__local float *)staged_vectors + column * ng * 4 * K;
  for (int i = (int)get_local_id(0); i < ng * 3 * K;
       i += (int)get_local_size(0)) {
    const int eg = i / (3 * K), lane = i - eg * (3 * K);
    // Loaded unguarded from a clamped index, selected after: a guarded load
    // may run anyway on CPUs (HACKING, Conventions).
    const bool ok = pixel_ok && g0 + eg < g.group;
    const float loaded = LOAD1(rows, ok ? i : 0);
    const float v = ok ? loaded : 0.0f;
    // lane < 2K: offset (dx, dy) of point lane / 2; else point lane - 2K's
    // weight.
    const int slot =
        lane < 2 * K ? 4 * (lane >> 1) + (lane & 1) : 4 * (lane - 2 * K) + 2;
    dst[eg * 4 * K + slot] = v;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!active)
    return;
  __local const float4 *points = staged_vectors + pair * K;
#define OFFSET_X(k) points[k].s0
#define OFFSET_Y(k) points[k].s1
#define WEIGHT(k) points[k].s2
#elif OM_STAGE == 2
  // The CHUNKS work-items of a (pixel, group) are consecutive lanes of one
  // warp (specialized builds; the host checks that CHUNKS is a power of two
  // dividing the work-group's dimension 0). Each loads every CHUNKS-th of the
  // group's 3K values, and every work-item reads the 3K values from their
  // lanes: one load per CHUNKS values instead of CHUNKS loads of each.
  // Inactive work-items load a valid row and leave after the exchange.
  __global const storage_t *om =
      offset_mask + (active ? pixel * g.offset_mask_stride + grp * K * 3 : 0);
#define HELD ((3 * K + CHUNKS - 1) / CHUNKS)
  float held[HELD];
#pragma unroll
  for (int i = 0; i < HELD; i++)
    held[i] = LOAD1(om, min(chunk + i * CHUNKS, 3 * K - 1));
  const int lid = linear_local_id();
  const uint lanes = lane_mask(
      lid, (int)(get_local_size(0) * get_local_size(1) * get_local_size(2)));
  const int first = (lid & 31) - chunk;
  float omv[3 * K];
#pragma unroll
  for (int i = 0; i < 3 * K; i++)
    omv[i] = lane_read(held[i / CHUNKS], first + i % CHUNKS, lanes);
#undef HELD
  if (!active)
    return;
#define OM(i) omv[i]
#define OFFSET_X(k) OM(2 * (k))
#define OFFSET_Y(k) OM(2 * (k) + 1)
#define WEIGHT(k) OM(2 * K + (k))
#else
  if (!active)
    return;
  __global const storage_t *om =
      offset_mask + pixel * g.offset_mask_stride + grp * K * 3;
#define OM(i) LOAD1_FETCH256(om, i)
#define OFFSET_X(k) OM(2 * (k))
#define OFFSET_Y(k) OM(2 * (k) + 1)
#define WEIGHT(k) OM(2 * K + (k))
#endif

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
#endif // OM_STAGE == 4
}
