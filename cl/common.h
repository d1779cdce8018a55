// Shared by every dcnv4 program: storage types, vector load/store, indices.
//
// Build-time defines:
//   DTYPE   0 = fp32, 1 = fp16, 2 = bf16 storage (arithmetic is always fp32;
//           fp16 is converted by vload_half/vstore_half, bf16 bit by bit, so
//           cl_khr_fp16 is not needed)
//   VEC     channels per vector access: 1, 2, 4 or 8
//   IDX64   1 when some tensor has 2^31 elements or more

#ifndef DTYPE
#define DTYPE 0
#endif
#ifndef VEC
#define VEC 1
#endif
#ifndef IDX64
#define IDX64 0
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

// Signed, so offsets of neighbours above or left of the image stay exact.
#if IDX64
typedef long idx_t;
#else
typedef int idx_t;
#endif

// ------------------------------------------------------------------- bf16
// Bit-level conversions, round to nearest even, branch-free so that they
// vectorise and map to a few integer operations.

inline float bf16_bits_to_float(uint b) { return as_float(b << 16); }

inline uint float_to_bf16_bits(float f) {
  uint u = as_uint(f);
  uint r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return (u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : r;
}

#if DTYPE == 2
#define BITS_TO_FLOAT(b) bf16_bits_to_float(b)
#define FLOAT_TO_BITS(f) float_to_bf16_bits(f)
#endif

// ------------------------------------------------------------ scalar storage

#if DTYPE == 0
typedef float storage_t;
#define LOAD1(p, i) ((p)[i])
#define STORE1(v, p, i) ((p)[i] = (v))
#elif DTYPE == 1
// fp16 storage as ushort; vload_half/vstore_half_rte are core OpenCL (no
// cl_khr_fp16 needed) and map to the hardware's conversion instructions,
// several times cheaper than converting bits by hand. Every storage pointer
// is __global.
typedef ushort storage_t;
#define HALF_PTR(p) ((__global half *)(p))
#define LOAD1(p, i) vload_half((i), (const __global half *)(p))
#define STORE1(v, p, i) vstore_half_rte((v), (i), HALF_PTR(p))
#elif DTYPE == 2
// bf16 storage as raw bits: loads and stores are plain ushort accesses.
typedef ushort storage_t;
#define LOAD1(p, i) BITS_TO_FLOAT((uint)(p)[i])
#define STORE1(v, p, i) ((p)[i] = (ushort)FLOAT_TO_BITS(v))
#else
#error "DTYPE must be 0, 1 or 2"
#endif

// ------------------------------------------------------------ vector storage
// floatv is VEC floats. LOADV/STOREV move VEC consecutive elements starting at
// p, which must be aligned to VEC elements (every caller's offsets are
// multiples of VEC): the access is then one aligned vector load or store,
// 16 bytes for fp32 x4 or 16-bit x8, instead of VEC scalar accesses.

#if VEC == 1
typedef float floatv;
#define LOADV(p) LOAD1(p, 0)
#define STOREV(v, p) STORE1(v, p, 0)
#define HSUM(v) (v)
#else
typedef CAT(float, VEC) floatv;
#if VEC == 2
#define HSUM(v) ((v).s0 + (v).s1)
#elif VEC == 4
#define HSUM(v) (((v).s0 + (v).s1) + ((v).s2 + (v).s3))
#elif VEC == 8
#define HSUM(v)                                                                \
  ((((v).s0 + (v).s1) + ((v).s2 + (v).s3)) +                                   \
   (((v).s4 + (v).s5) + ((v).s6 + (v).s7)))
#else
#error "VEC must be 1, 2, 4 or 8"
#endif

#if DTYPE == 0
#define LOADV(p) (*(__global const floatv *)(p))
#define STOREV(v, p) (*(__global floatv *)(p) = (v))
#elif DTYPE == 1
// One wide load of 32-bit words, converted by vload_half on a private copy
// (the hardware conversion, without the compiler splitting the access:
// vload_halfN and vloada_halfN on global memory became 2-byte loads on
// NVIDIA, fp16 forward 0.287 against 0.585 ms, bench/results/
// 2026-11-24-h100-v2).
#if VEC == 2
typedef uint halfwords;
#elif VEC == 4
typedef uint2 halfwords;
#else
typedef uint4 halfwords;
#endif
inline floatv load_halves(__global const storage_t *p) {
  halfwords w = *(__global const halfwords *)p;
  return CAT(vload_half, VEC)(0, (const __private half *)&w);
}
inline void store_halves(floatv v, __global storage_t *p) {
  halfwords w;
  CAT(CAT(vstore_half, VEC), _rte)(v, 0, (__private half *)&w);
  *(__global halfwords *)p = w;
}
#define LOADV(p) load_halves(p)
#define STOREV(v, p) store_halves((v), (p))
#else
// bf16: VEC values travel as VEC/2 32-bit words, two values per word.
#if VEC == 2
typedef uint wordv;
#define WORD(w, i) (w)
#elif VEC == 4
typedef uint2 wordv;
#define WORD(w, i) ((w).s##i)
#else
typedef uint4 wordv;
#define WORD(w, i) ((w).s##i)
#endif

inline floatv unpack_words(wordv w) {
  floatv f;
#define UNPACK(i, lo, hi)                                                      \
  f.s##lo = BITS_TO_FLOAT(WORD(w, i) & 0xffffu);                               \
  f.s##hi = BITS_TO_FLOAT(WORD(w, i) >> 16);
  UNPACK(0, 0, 1)
#if VEC >= 4
  UNPACK(1, 2, 3)
#endif
#if VEC == 8
  UNPACK(2, 4, 5)
  UNPACK(3, 6, 7)
#endif
#undef UNPACK
  return f;
}

inline wordv pack_words(floatv f) {
  wordv w;
#if VEC == 2
#define PACK(i, lo, hi)                                                        \
  w = FLOAT_TO_BITS(f.s##lo) | (FLOAT_TO_BITS(f.s##hi) << 16);
#else
#define PACK(i, lo, hi)                                                        \
  w.s##i = FLOAT_TO_BITS(f.s##lo) | (FLOAT_TO_BITS(f.s##hi) << 16);
#endif
  PACK(0, 0, 1)
#if VEC >= 4
  PACK(1, 2, 3)
#endif
#if VEC == 8
  PACK(2, 4, 5)
  PACK(3, 6, 7)
#endif
#undef PACK
  return w;
}

#define LOADV(p) unpack_words(*(__global const wordv *)(p))
#define STOREV(v, p) (*(__global wordv *)(p) = pack_words(v))
#endif
#endif

// VEC floats to and from local memory; whether any of them is not zero
// (NaN counts).
// LOADV_PRIVATE/STOREV_PRIVATE: the same for a private float array.
#if VEC == 1
#define LOADV_LOCAL(p) (*(p))
#define STOREV_LOCAL(v, p) (*(p) = (v))
#define LOADV_PRIVATE(p) (*(p))
#define STOREV_PRIVATE(v, p) (*(p) = (v))
#define any_nonzero(v) ((v) != 0.0f)
#else
#define LOADV_PRIVATE(p) CAT(vload, VEC)(0, (__private const float *)(p))
#define STOREV_PRIVATE(v, p) CAT(vstore, VEC)((v), 0, (__private float *)(p))
#define LOADV_LOCAL(p) CAT(vload, VEC)(0, (__local const float *)(p))
#define STOREV_LOCAL(v, p) CAT(vstore, VEC)((v), 0, (__local float *)(p))
#define any_nonzero(v) any((v) != (floatv)(0.0f))
#endif

// ------------------------------------------------------------ float atomics

// Adds v to *p atomically. NV_ATOMICS (set by the host only for NVIDIA
// devices, with a portable rebuild if it does not compile): the native
// reduction instruction through inline PTX. Otherwise OpenCL 1.2 has no float
// atomic add: compare and swap on the bit pattern, which also terminates when
// *p holds a NaN. The first attempt guesses 0 (accumulators start zeroed)
// instead of reading *p: a plain read would race with other work-items'
// atomics.
#ifndef NV_ATOMICS
#define NV_ATOMICS 0
#endif
#if NV_ATOMICS
inline void atomic_add_float(volatile __global float *p, float v) {
  asm volatile("red.global.add.f32 [%0], %1;" ::"l"(p), "f"(v) : "memory");
}
#if NV_ATOMICS == 2
// sm_90 and later (PTX 8.1): one reduction of four consecutive floats,
// 16-byte aligned.
inline void atomic_add_float4(volatile __global float *p, float4 v) {
  asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(p),
               "f"(v.s0), "f"(v.s1), "f"(v.s2), "f"(v.s3)
               : "memory");
}
#endif
#else
inline void atomic_add_float(volatile __global float *p, float v) {
  volatile __global uint *u = (volatile __global uint *)p;
  uint seen = 0;
  for (;;) {
    uint expected = seen;
    seen = atomic_cmpxchg(u, expected, as_uint(as_float(expected) + v));
    if (seen == expected)
      break;
  }
}
#endif

// Adds the VEC floats of v to p[0..VEC-1]; p is VEC-aligned.
inline void atomic_add_floatv(volatile __global float *p, floatv v) {
#if NV_ATOMICS == 2 && VEC == 4
  atomic_add_float4(p, v);
#elif NV_ATOMICS == 2 && VEC == 8
  atomic_add_float4(p, v.lo);
  atomic_add_float4(p + 4, v.hi);
#elif VEC == 1
  atomic_add_float(p, v);
#else
  float e[VEC];
  STOREV_PRIVATE(v, e);
  for (int c = 0; c < VEC; c++)
    atomic_add_float(p + c, e[c]);
#endif
}

// ------------------------------------------------------------------ softmax

// The maximum of n logits and the inverse of the sum of exp(logit - max),
// so that the softmax weights are exp(logit - max) * minv.
inline void softmax_stats(__global const storage_t *logits, int n, float *mmax,
                          float *minv) {
  float mx = -INFINITY;
  for (int i = 0; i < n; i++)
    mx = fmax(mx, LOAD1(logits, i));
  float sum = 0.0f;
  for (int i = 0; i < n; i++)
    sum += exp(LOAD1(logits, i) - mx);
  *mmax = mx;
  *minv = 1.0f / sum;
}

// ------------------------------------------------------------- DCNv4 shared

#ifdef DCNV4_OP
#ifndef UNROLL
#define UNROLL 1
#endif
// Loops over the kernel's points: unrolled on GPUs, rolled on CPUs (UNROLL,
// a tuning parameter), where unrolled bodies compile slowly and gain little.
#if UNROLL
#define POINT_LOOP _Pragma("unroll")
#else
#define POINT_LOOP _Pragma("unroll 1")
#endif

// Mirrors geometry_arg in src/dcnv4_op.c (4-byte fields, no padding).
typedef struct dcnv4_geometry {
  int height_in, width_in, height_out, width_out, group;
  int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  float offset_scale;
  int offset_mask_stride;
  int group_channels, kernel_h, kernel_w, remove_center, softmax;
  int batch;
} dcnv4_geometry;

// SPECIALIZE 1 (GPUs): D, the kernel size, remove_center and softmax are
// compile-time constants (-DGROUP_CHANNELS=... -DKH -DKW -DREMOVE_CENTER
// -DSOFTMAX), so loops unroll and divisions fold. SPECIALIZE 0 (CPUs): they
// are read from the geometry argument `g`, so one program serves every shape
// of a dtype and vector width (PoCL compiles slowly, and per program).
#if SPECIALIZE
#define D GROUP_CHANNELS
#else
#define D (g.group_channels)
#define KH (g.kernel_h)
#define KW (g.kernel_w)
#define REMOVE_CENTER (g.remove_center)
#define SOFTMAX (g.softmax)
#endif
#define K (KH * KW - REMOVE_CENTER)
#define CHUNKS (D / VEC)

// FIXED_GEOMETRY 1: stride, padding, dilation and offset_scale are also
// compile-time constants (-DSTRIDE_H=... -DPAD_H -DDILATION_H ... and
// -DOFFSET_SCALE_BITS, the float's bit pattern, which is exact and does not
// depend on the host's locale). Folding them saves the forward 2-4 % on the
// H100 and H200; it costs one program per geometry, so only GPUs ask for it.
#if FIXED_GEOMETRY
#define OFFSET_SCALE as_float((uint)(OFFSET_SCALE_BITS))
#else
#define STRIDE_H (g.stride_h)
#define STRIDE_W (g.stride_w)
#define PAD_H (g.pad_h)
#define PAD_W (g.pad_w)
#define DILATION_H (g.dilation_h)
#define DILATION_W (g.dilation_w)
#define OFFSET_SCALE (g.offset_scale)
#endif

// The sampling window of output pixel (ho, wo): the input position of its
// centre, and point (i, j)'s position relative to that centre (the dilated
// kernel offset plus the learned one, scaled), so that x = base + part.
#define WINDOW_HALF_W ((DILATION_W * (KW - 1)) / 2)
#define WINDOW_HALF_H ((DILATION_H * (KH - 1)) / 2)
#define WINDOW_CENTRE_W(wo) (WINDOW_HALF_W - PAD_W + (wo)*STRIDE_W)
#define WINDOW_CENTRE_H(ho) (WINDOW_HALF_H - PAD_H + (ho)*STRIDE_H)
#define POINT_PART_W(i, dx)                                                    \
  (OFFSET_SCALE * ((float)((i)*DILATION_W - WINDOW_HALF_W) + (dx)))
#define POINT_PART_H(j, dy)                                                    \
  (OFFSET_SCALE * ((float)((j)*DILATION_H - WINDOW_HALF_H) + (dy)))

// A point's weight from its stored value: in DCNv3 mode (SOFTMAX) its
// softmax term with the group's group_softmax_stats, else the value itself.
inline float point_weight(const dcnv4_geometry g, float stored, float mmax,
                          float minv) {
  return SOFTMAX ? exp(stored - mmax) * minv : stored;
}

// A group's weights: in DCNv3 mode (SOFTMAX) the softmax of its K values
// after the 2K offsets of its offset_mask row `om`; else mmax 0, minv 1.
inline void group_softmax_stats(__global const storage_t *om,
                                const dcnv4_geometry g, float *mmax,
                                float *minv) {
  *mmax = 0.0f;
  *minv = 1.0f;
  if (SOFTMAX)
    softmax_stats(om + 2 * K, K, mmax, minv);
}
#endif

// ------------------------------------------------------- sampling positions

// A sampling coordinate split as base + frac_part, where base is an exact
// integer and frac_part a small float, so the bilinear weights stay exact to
// float precision even far from the origin. `inside` is the window test
// -1 < coordinate < size.
typedef struct sample_coord {
  int low;    // floor(coordinate)
  float frac; // coordinate - low, in [0, 1)
  int inside;
} sample_coord;

// -1 < base + part < size, evaluated on exactly representable bounds; this
// also rejects NaN and infinities.
inline int window_inside(int base, float part, int size) {
  return part > (float)(-1 - base) && part < (float)(size - base);
}

inline sample_coord split_coord(int base, float part, int size) {
  sample_coord c;
  c.inside = window_inside(base, part, size);
  // Selected before anything is converted to int.
  float fl = c.inside ? floor(part) : 0.0f;
  c.low = base + (int)fl;
  c.frac = c.inside ? part - fl : 0.0f;
  return c;
}

// split_coord without its two selects, for a caller that guards every use of
// low and frac by inside: outside the window they hold some value (frac may
// be NaN), with no undefined behaviour on the way (saturating conversion,
// wrapping addition). H100, DCNv4 forward: fp32 up to 5 % faster, fp16
// within 1 % (bench/results/2026-12-05-h100-v11).
inline sample_coord split_coord_unselected(int base, float part, int size) {
  sample_coord c;
  c.inside = window_inside(base, part, size);
  const float fl = floor(part);
  c.low = as_int((uint)base + as_uint(convert_int_sat(fl)));
  c.frac = part - fl;
  return c;
}

// Where one sampling point's bilinear corners are: the offset of the
// top-left corner from the image's first element (row: elements per image
// row, C: per pixel; 0 for a point outside the window, whose corners are all
// off), which corners lie inside the image, and the bilinear weights. Used
// where points are located once into local memory (the DCNv4 forward's
// stage 3, the FlashDeformAttn forward's stages 1 and 2).
typedef struct point_footprint {
  idx_t offset;
  bool in;                 // inside the window -1 < y < H, -1 < x < W
  bool c00, c01, c10, c11; // corners (top, left), (top, right), ...
  float lw, lh;            // fractional parts of x and y
} point_footprint;

inline point_footprint locate_point(sample_coord x, sample_coord y, int width,
                                    int height, idx_t row, int C) {
  point_footprint f;
  f.in = x.inside && y.inside;
  f.lw = x.frac;
  f.lh = y.frac;
  const bool w0 = f.in && x.low >= 0, w1 = f.in && x.low + 1 < width;
  const bool h0 = y.low >= 0, h1 = y.low + 1 < height;
  f.c00 = h0 && w0;
  f.c01 = h0 && w1;
  f.c10 = h1 && w0;
  f.c11 = h1 && w1;
  // The image's first pixel for a point outside, whose loads are all
  // guarded off; a pointer is formed only for neighbours inside the image.
  f.offset = f.in ? (idx_t)y.low * row + (idx_t)x.low * C : 0;
  return f;
}

// The corners inside the image as 4 bits: 1 top left, 2 top right, 4 bottom
// left, 8 bottom right (0 for a point outside the window).
inline int footprint_mask(point_footprint f) {
  return f.c00 | (f.c01 << 1) | (f.c10 << 2) | (f.c11 << 3);
}

#ifdef DCNV4_OP
// The sampling position of point k of output pixel (ho, wo) with offsets
// (dx, dy): the kernel's points in stored order (columns outer, the centre
// skipped when REMOVE_CENTER), at the dilated window position plus the
// offset, scaled by offset_scale.
inline void point_position(const dcnv4_geometry g, int ho, int wo, int k,
                           float dx, float dy, sample_coord *x,
                           sample_coord *y) {
  const int kept = REMOVE_CENTER && k >= (KW / 2) * KH + KH / 2 ? k + 1 : k;
  const int i = kept / KH, j = kept - (kept / KH) * KH;
  *x = split_coord(WINDOW_CENTRE_W(wo), POINT_PART_W(i, dx), g.width_in);
  *y = split_coord(WINDOW_CENTRE_H(ho), POINT_PART_H(j, dy), g.height_in);
}
#endif
