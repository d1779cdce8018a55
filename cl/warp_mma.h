// Warp-level helpers for the tensor-core stage of the DCNv4 forward (stage
// 4 in dcnv4_forward.cl): 16-byte copies from global into local memory,
// loads of four 8x8 matrices of 16-bit values from local memory, and the
// 16x8x16 matrix product of 16-bit values with fp32 accumulation.
//
// WARP_MMA_PTX 1 (set by the host on NVIDIA devices of compute capability 8
// or later): PTX cp.async, ldmatrix and mma.sync. Otherwise portable
// versions that compute what those instructions compute, fragment for
// fragment, through local memory and work-group barriers: slow, there so
// that PoCL and Oclgrind check the kernel's fragment bookkeeping, which the
// GPU alone could not. Every work-item of the work-group calls these the
// same number of times (barriers), and the work-group is whole warps of 32
// consecutive work-items (linear local id).
//
// Fragments (PTX ISA, "Matrix fragments for mma.m16n8k16"; lane = 4 * grp +
// tig): A (16x16, row-major) in four words of two values, {A[grp][2tig..+1]},
// {A[grp+8][2tig..+1]}, {A[grp][2tig+8..+9]}, {A[grp+8][2tig+8..+9]}; B
// (16x8) in two words, {B[2tig..+1][grp]} and {B[2tig+8..+9][grp]}; the
// accumulator C (16x8, fp32) as {C[grp][2tig..+1], C[grp+8][2tig..+1]}. The
// lower 16 bits of a word hold the lower index.

#if DTYPE != 0 // 16-bit values only

#ifndef WARP_MMA_PTX
#define WARP_MMA_PTX 0
#endif

#define WARP_LANES 32
// Bytes of local memory per warp for the portable versions' exchanges
// (A and B fragments of 32 lanes); none for the PTX ones.
#define WARP_SCRATCH_BYTES (WARP_MMA_PTX ? 0 : WARP_LANES * 6 * 4)

#if WARP_MMA_PTX
#if DTYPE == 1
#define MMA_TYPE "f16"
#else
#define MMA_TYPE "bf16"
#endif

// The warp's lanes meet here, and their earlier local-memory writes
// (including completed copies) are visible to each other after it.
inline void warp_sync(void) { asm volatile("bar.warp.sync -1;" ::: "memory"); }

// Copies 16 bytes from src to dst when ok, else writes 16 zero bytes there
// (src is not read). Asynchronous: complete after copy_wait.
inline void copy16_async(__local uint4 *dst, __global const uint4 *src,
                         bool ok) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;"
               :
               : "r"((uint)(size_t)dst), "l"(src), "r"(ok ? 16u : 0u)
               : "memory");
}
// Closes the group of copies issued since the last call.
inline void copy_commit(void) {
  asm volatile("cp.async.commit_group;" ::: "memory");
}
// Waits until at most n (a literal) groups of this work-item's copies are
// pending.
#define copy_wait_pending(n)                                                   \
  asm volatile("cp.async.wait_group " #n ";" ::: "memory")

// Four 8x8 matrices of 16-bit values, transposed: the lane gives the
// address (base + offset: 16 bytes, aligned) of row (lane & 7) of matrix
// (lane >> 3), and receives word i = {M_i[2tig][grp], M_i[2tig+1][grp]}.
inline uint4 ldmatrix_x4_trans(__local const uchar *base, uint offset,
                               __local uint *scratch) {
  (void)scratch;
  uint4 d;
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
      : "=r"(d.x), "=r"(d.y), "=r"(d.z), "=r"(d.w)
      : "r"((uint)(size_t)(base + offset))
      : "memory");
  return d;
}

// c + A * B for this lane's fragments.
inline float4 mma_16816(float4 c, uint4 a, uint2 b, __local uint *scratch) {
  (void)scratch;
  asm("mma.sync.aligned.m16n8k16.row.col.f32." MMA_TYPE "." MMA_TYPE
      ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c.x), "+f"(c.y), "+f"(c.z), "+f"(c.w)
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b.x), "r"(b.y));
  return c;
}

// A weight as a 16-bit value in the upper half of a word when `upper`,
// else in the lower half; the other half zero.
inline uint place_weight(float w, bool upper) {
  uint r;
#if DTYPE == 1
  asm("cvt.rn.f16x2.f32 %0, %1, %2;"
      : "=r"(r)
      : "f"(upper ? w : 0.0f), "f"(upper ? 0.0f : w));
#else
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;"
      : "=r"(r)
      : "f"(upper ? w : 0.0f), "f"(upper ? 0.0f : w));
#endif
  return r;
}

#else // portable versions

inline int warp_lane(void) { return linear_local_id() & (WARP_LANES - 1); }

inline void warp_sync(void) { barrier(CLK_LOCAL_MEM_FENCE); }

inline void copy16_async(__local uint4 *dst, __global const uint4 *src,
                         bool ok) {
  *dst = ok ? *src : (uint4)(0);
}
inline void copy_commit(void) {}
#define copy_wait_pending(n) ((void)0)

inline uint half_of(uint word, int i) { return i ? word >> 16 : word & 0xffff; }

// Row r of matrix i is at the offset lane 8i + r gives: the lanes post
// their offsets in the scratch (all lanes pass the same base).
inline uint4 ldmatrix_x4_trans(__local const uchar *base, uint offset,
                               __local uint *scratch) {
  const int lane = warp_lane(), grp = lane >> 2, tig = lane & 3;
  scratch[lane] = offset;
  barrier(CLK_LOCAL_MEM_FENCE);
  uint d[4];
  for (int i = 0; i < 4; i++) {
    __local const ushort *r0 =
        (__local const ushort *)(base + scratch[8 * i + 2 * tig]);
    __local const ushort *r1 =
        (__local const ushort *)(base + scratch[8 * i + 2 * tig + 1]);
    d[i] = (uint)r0[grp] | (uint)r1[grp] << 16;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  return (uint4)(d[0], d[1], d[2], d[3]);
}

// Element (row, col) of A and (row, col) of B, from the lanes' posted
// fragments (6 words per lane: A's 4, then B's 2).
inline float fragment_a(__local const uint *s, int row, int col) {
  const int lane = 4 * (row & 7) + ((col & 7) >> 1);
  const int word = (row >= 8 ? 1 : 0) + (col >= 8 ? 2 : 0);
  return BITS_TO_FLOAT(half_of(s[6 * lane + word], col & 1));
}
inline float fragment_b(__local const uint *s, int row, int col) {
  const int lane = 4 * col + ((row & 7) >> 1);
  return BITS_TO_FLOAT(half_of(s[6 * lane + 4 + (row >= 8)], row & 1));
}

inline float4 mma_16816(float4 c, uint4 a, uint2 b, __local uint *scratch) {
  const int lane = warp_lane(), grp = lane >> 2, tig = lane & 3;
  __local uint *mine = scratch + 6 * lane;
  mine[0] = a.x;
  mine[1] = a.y;
  mine[2] = a.z;
  mine[3] = a.w;
  mine[4] = b.x;
  mine[5] = b.y;
  barrier(CLK_LOCAL_MEM_FENCE);
  float r[4] = {c.x, c.y, c.z, c.w};
  for (int e = 0; e < 4; e++) {
    const int row = grp + (e >= 2 ? 8 : 0), col = 2 * tig + (e & 1);
    for (int k = 0; k < 16; k++)
      r[e] += fragment_a(scratch, row, k) * fragment_b(scratch, k, col);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  return (float4)(r[0], r[1], r[2], r[3]);
}

inline uint place_weight(float w, bool upper) {
  return FLOAT_TO_BITS(w) << (upper ? 16 : 0);
}
#endif
#endif // DTYPE != 0
