// Shared by every dcnv4 program: storage types, vector load/store, indices.
//
// Build-time defines:
//   DTYPE   0 = fp32, 1 = fp16, 2 = bf16 storage (arithmetic is always fp32;
//           fp16 uses vload_half/vstore_half, so cl_khr_fp16 is not needed)
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

// ------------------------------------------------------------ scalar storage

#if DTYPE == 0
typedef float storage_t;
#define LOAD1(p, i) ((p)[i])
#define STORE1(v, p, i) ((p)[i] = (v))
#elif DTYPE == 1
typedef half storage_t; // only used through pointers: no cl_khr_fp16 needed
#define LOAD1(p, i) vload_half((i), (p))
#define STORE1(v, p, i) vstore_half_rte((v), (i), (p))
#elif DTYPE == 2
typedef ushort storage_t;
inline float bf16_to_float(ushort b) { return as_float((uint)b << 16); }
// Round to nearest even; NaN stays a (quiet) NaN.
inline ushort float_to_bf16(float f) {
  uint u = as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (ushort)((u >> 16) | 0x40u);
  return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
#define LOAD1(p, i) bf16_to_float((p)[i])
#define STORE1(v, p, i) ((p)[i] = float_to_bf16(v))
#else
#error "DTYPE must be 0, 1 or 2"
#endif

// ------------------------------------------------------------ vector storage
// floatv is VEC floats; LOADV/STOREV move VEC consecutive elements starting at
// pointer p (any element alignment).

#if VEC == 1
typedef float floatv;
#define LOADV(p) LOAD1(p, 0)
#define STOREV(v, p) STORE1(v, p, 0)
#define HSUM(v) (v)
#else
typedef CAT(float, VEC) floatv;
typedef CAT(uint, VEC) uintv;
#if DTYPE == 0
#define LOADV(p) CAT(vload, VEC)(0, (p))
#define STOREV(v, p) CAT(vstore, VEC)((v), 0, (p))
#elif DTYPE == 1
#define LOADV(p) CAT(vload_half, VEC)(0, (p))
#define STOREV(v, p) CAT(CAT(vstore_half, VEC), _rte)((v), 0, (p))
#else
#define LOADV(p)                                                               \
  CAT(as_float, VEC)(CAT(convert_uint, VEC)(CAT(vload, VEC)(0, (p))) << 16)
inline CAT(ushort, VEC) floatv_to_bf16(floatv f) {
  uintv u = CAT(as_uint, VEC)(f);
  uintv rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  uintv nan = (u >> 16) | 0x40u;
  return CAT(convert_ushort,
             VEC)(select(rounded, nan, (u & 0x7fffffffu) > 0x7f800000u));
}
#define STOREV(v, p) CAT(vstore, VEC)(floatv_to_bf16(v), 0, (p))
#endif
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
#endif

// ------------------------------------------------------------ float atomics

// Adds v to *p atomically (OpenCL 1.2 has no float atomic add: compare and
// swap on the bit pattern, which also terminates when *p holds a NaN).
inline void atomic_add_float(volatile __global float *p, float v) {
  volatile __global uint *u = (volatile __global uint *)p;
  uint seen = *u;
  for (;;) {
    uint expected = seen;
    seen = atomic_cmpxchg(u, expected, as_uint(as_float(expected) + v));
    if (seen == expected)
      break;
  }
}

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

inline sample_coord split_coord(int base, float part, int size) {
  sample_coord c;
  // -1 < base + part < size, evaluated on exactly representable bounds; this
  // also rejects NaN and infinities before anything is converted to int.
  c.inside = part > (float)(-1 - base) && part < (float)(size - base);
  float fl = c.inside ? floor(part) : 0.0f;
  c.low = base + (int)fl;
  c.frac = c.inside ? part - fl : 0.0f;
  return c;
}
