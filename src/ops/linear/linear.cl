// The layers' linear projections: PyTorch's Linear on row-major data,
//   Y[m][n] = sum_k X[m][k] * W[n][k] (+ bias[n]),
// X (M, K), W (N, K), Y (M, N), all contiguous. X and W are fp32 or 16-bit
// storage (DTYPE, common.clh; widened to fp32 as they are loaded into the
// local tiles), the sums fp32, Y fp32 or DTYPE (OUT_DTYPE, linear_out.clh:
// rounded once, after the bias and the epilogue). M is large (pixels or
// queries), N and K small (channels) and not multiples of anything.
//
// One work-group computes a TM x TN tile of Y with LOCAL = (TM/RM)*(TN/RN)
// work-items, each an RM x RN block (register-blocked outer products). K is
// walked in chunks of TK: the X and W chunks are read from global memory
// (float4 along K where K is a multiple of 4), stored transposed (k-major)
// in local memory, double-buffered so that one barrier per chunk suffices,
// and the next chunk's loads are issued before the current one is used.
// Out-of-range rows, columns and k read as zero and are not stored.
//
// A work-item's rows are RM/4 runs of 4, the runs TM/RM*4 apart (so that
// the work-items of a warp read neighbouring float4s of local memory); its
// columns likewise. Group g computes the tile (g / tiles_n, g % tiles_n):
// neighbouring groups share the rows of X.
//
// Split-K (linear.c, for GEMMs with too few tiles to fill the device): the
// second dimension of the launch numbers the parts of K, k_part long each
// (a multiple of TK; the last part may be shorter); group (g, s) sums k in
// [s*k_part, (s+1)*k_part) and stores its tile without bias or epilogue in
// slice s of Y, then (M, N) partial sums. linear_reduce adds the slices in
// order, then the bias and the epilogue: the same bits on every run. An
// unsplit launch has one part of k_part = K.
//
// Build-time defines (besides common.clh's IDX64 and DTYPE, and
// linear_out.clh's OUT_DTYPE; split-K's parts are fp32, OUT_DTYPE 0):
//   TM, TN    tile rows and columns (multiples of 4*(TM/RM), 4*(TN/RN))
//   TK        K chunk (multiple of 4)
//   RM, RN    rows and columns per work-item (multiples of 4)
//   UNROLL    1 unrolls the loop over a chunk's k; 0 keeps it rolled (PoCL
//             needs megabytes of stack for 256 unrolled work-items, more
//             than its threads have)
//   CLAMP_EDGE_LOADS  1 (CPU devices): edge tiles also clamp their load
//             addresses into the matrix (see EDGE_ROW)
//   EPILOGUE  what follows the bias (fii_ops.h, dcn_gemm_epilogue_kind):
//             undefined or 0 nothing (the program of the layers, unchanged
//             by the epilogues' code), 1 Y = GELU(Y), exact (erf) GELU,
//             2 Y += scale * (X W^T + bias), Y then holding the residual
//             (scale per column; not read where has_scale is 0)
// M, N, K, k_part and whether there is a bias (has_bias; `bias` is not
// read without) are run-time arguments: a new shape never recompiles.

#define MT (TM / RM) // work-items along M
#define NT (TN / RN) // work-items along N
#define LOCAL (MT * NT)
#define KQ (TK / 4) // float4 units per row of a chunk
#define A_UNITS (TM * KQ)
#define B_UNITS (TN * KQ)
#define A_LOADS ((A_UNITS + LOCAL - 1) / LOCAL)
#define B_LOADS ((B_UNITS + LOCAL - 1) / LOCAL)
// Row pitch of the local tiles (floats): +4 keeps float4 alignment and moves
// the transposed stores of neighbouring rows off one bank.
#define PA (TM + 4)
#define PB (TN + 4)

#ifndef UNROLL
#define UNROLL 1
#endif
#ifndef CLAMP_EDGE_LOADS
#define CLAMP_EDGE_LOADS 0
#endif
// The row and k an edge-tile load reads. PoCL's CPU compiler was seen
// loading guarded values regardless of the guard (a crash past a buffer's end
// under ASan), so CPU devices clamp them into the matrix as well; GPUs keep
// the guards alone (the clamps cost the H100's layer forwards 1-2 %,
// unguarded clamped loads 4-19 %).
#if CLAMP_EDGE_LOADS
#define EDGE_ROW(row, rows) ((row) < (rows) ? (row) : (rows)-1)
#define EDGE_K(kk) min((kk), K - 1)
#else
#define EDGE_ROW(row, rows) (row)
#define EDGE_K(kk) (kk)
#endif

#if RM % 4 || RN % 4 || TK % 4 || TM % RM || TN % RN
#error "linear: RM, RN and TK must be multiples of 4 dividing the tile"
#endif

#ifndef EPILOGUE
#define EPILOGUE 0
#endif
// Stores 4 results v of row y at columns n.. (those below N): as they are,
// GELU'd, or added to y times the columns' scales s (EPILOGUE). `n4`: N is a
// multiple of 4, so whole quads are stored (one float4, or two pairs).
inline void store_epilogue(__global out_t *restrict y, const int n, const int N,
                           const bool n4, float4 v, const float4 s) {
  if (n >= N)
    return; // no column of this work-item's (its clamped reads would race)
#if EPILOGUE == 1
  v = 0.5f * v * (1.0f + erf(v * M_SQRT1_2_F));
#endif
  if (n4) {
#if OUT_DTYPE == 0
#if EPILOGUE == 2
    v = *(__global float4 *)(y + n) + s * v;
#endif
    *(__global float4 *)(y + n) = v;
#else
#if EPILOGUE == 2
    v = (float4)(out_load2(y + n), out_load2(y + n + 2)) + s * v;
#endif
    out_store2(y + n, v.xy);
    out_store2(y + n + 2, v.zw);
#endif
    return;
  }
#if EPILOGUE == 2
  // Reads clamped into this work-item's columns of the row (n < N), as the
  // loads of the edge tiles.
  v.x = out_load(y + min(n, N - 1)) + s.x * v.x;
  v.y = out_load(y + min(n + 1, N - 1)) + s.y * v.y;
  v.z = out_load(y + min(n + 2, N - 1)) + s.z * v.z;
  v.w = out_load(y + min(n + 3, N - 1)) + s.w * v.w;
#endif
  out_store(y + n, v.x);
  if (n + 1 < N)
    out_store(y + n + 1, v.y);
  if (n + 2 < N)
    out_store(y + n + 2, v.z);
  if (n + 3 < N)
    out_store(y + n + 3, v.w);
}

// 4 consecutive values at p as fp32 (p 4-element aligned).
#if DTYPE == 0
#define LOAD4(p) (*(__global const float4 *)(p))
#elif DTYPE == 1
#define LOAD4(p) vload_half4(0, (const __global half *)(p))
#else
inline float4 load4_bf16(__global const ushort *p) {
  const ushort4 u = vload4(0, p);
  return (float4)(BITS_TO_FLOAT((uint)u.x), BITS_TO_FLOAT((uint)u.y),
                  BITS_TO_FLOAT((uint)u.z), BITS_TO_FLOAT((uint)u.w));
}
#define LOAD4(p) load4_bf16(p)
#endif

// The units (4 consecutive k of one row) of a TK chunk of rows [r0, r0+R)
// of a (rows, K) matrix, into registers; k from k_end on reads as zero.
// `full`: the chunk is in range and K is a multiple of 4, so whole float4s
// are read.
#define LOAD_CHUNK(reg, LOADS, UNITS, src, r0, rows, k0, full)                 \
  for (int j = 0; j < LOADS; j++) {                                            \
    const int u = lid + j * LOCAL;                                             \
    const int r = u / KQ, kq = (u % KQ) * 4;                                   \
    float4 v = (float4)(0.0f);                                                 \
    if (UNITS % LOCAL == 0 || u < UNITS) {                                     \
      const idx_t row = (r0) + (idx_t)r;                                       \
      const int kk = (k0) + kq;                                                \
      if (full) {                                                              \
        v = LOAD4(src + row * (idx_t)K + kk);                                  \
      } else {                                                                 \
        /* The address outside the guard: inside it a compiler may fold        \
         * EDGE_ROW's clamp away. */                                           \
        const bool in = row < (rows);                                          \
        __global const storage_t *p = src + EDGE_ROW(row, rows) * (idx_t)K;    \
        if (in) {                                                              \
          v.x = kk < k_end ? LOAD1(p, EDGE_K(kk)) : 0.0f;                      \
          v.y = kk + 1 < k_end ? LOAD1(p, EDGE_K(kk + 1)) : 0.0f;              \
          v.z = kk + 2 < k_end ? LOAD1(p, EDGE_K(kk + 2)) : 0.0f;              \
          v.w = kk + 3 < k_end ? LOAD1(p, EDGE_K(kk + 3)) : 0.0f;              \
        }                                                                      \
      }                                                                        \
    }                                                                          \
    reg[j] = v;                                                                \
  }

// Registers of LOAD_CHUNK into a local tile, transposed (tile[k][row]).
#define STORE_CHUNK(reg, LOADS, UNITS, tile, P)                                \
  for (int j = 0; j < LOADS; j++) {                                            \
    const int u = lid + j * LOCAL;                                             \
    if (UNITS % LOCAL == 0 || u < UNITS) {                                     \
      const int r = u / KQ, kq = (u % KQ) * 4;                                 \
      tile[(kq + 0) * P + r] = reg[j].x;                                       \
      tile[(kq + 1) * P + r] = reg[j].y;                                       \
      tile[(kq + 2) * P + r] = reg[j].z;                                       \
      tile[(kq + 3) * P + r] = reg[j].w;                                       \
    }                                                                          \
  }

__kernel __attribute__((reqd_work_group_size(LOCAL, 1, 1))) void
linear(__global const storage_t *restrict X,
       __global const storage_t *restrict W,
       __global const float *restrict bias, __global out_t *restrict Y,
       const idx_t M, const int N, const int K, const int has_bias,
       const int k_part
#if EPILOGUE == 2
       ,
       __global const float *restrict scale, const int has_scale
#endif
) {
  __local float4 a_tiles[2 * TK * PA / 4];
  __local float4 b_tiles[2 * TK * PB / 4];
  __local float *const as = (__local float *)a_tiles;
  __local float *const bs = (__local float *)b_tiles;

  const int lid = (int)get_local_id(0);
  const int tx = lid % NT, ty = lid / NT;
  const int tiles_n = (N + TN - 1) / TN;
  const idx_t group = (idx_t)get_group_id(0);
  const idx_t m0 = (group / (idx_t)tiles_n) * (idx_t)TM;
  const int n0 = (int)(group % (idx_t)tiles_n) * TN;
  const bool k4 = K % 4 == 0;
  const bool full_m = m0 + (idx_t)TM <= M, full_n = n0 + TN <= N;
  // This group's part of K, and its slice of Y (0 when unsplit).
  const int part = (int)get_group_id(1);
  const int k_begin = part * k_part;
  const int k_end = min(K, k_begin + k_part);
  Y += (idx_t)part * M * (idx_t)N;

  float acc[RM][RN];
  for (int i = 0; i < RM; i++)
    for (int j = 0; j < RN; j++)
      acc[i][j] = 0.0f;

  float4 ra[A_LOADS], rb[B_LOADS];
  const int chunks = (k_end - k_begin + TK - 1) / TK;
  {
    const bool full_k = k4 && k_begin + TK <= k_end;
    LOAD_CHUNK(ra, A_LOADS, A_UNITS, X, m0, M, k_begin, full_m && full_k)
    LOAD_CHUNK(rb, B_LOADS, B_UNITS, W, (idx_t)n0, (idx_t)N, k_begin,
               full_n && full_k)
    STORE_CHUNK(ra, A_LOADS, A_UNITS, as, PA)
    STORE_CHUNK(rb, B_LOADS, B_UNITS, bs, PB)
  }
  barrier(CLK_LOCAL_MEM_FENCE);

  for (int c = 0; c < chunks; c++) {
    const int buf = c & 1;
    const bool next = c + 1 < chunks;
    if (next) {
      const int k0 = k_begin + (c + 1) * TK;
      const bool full_k = k4 && k0 + TK <= k_end;
      LOAD_CHUNK(ra, A_LOADS, A_UNITS, X, m0, M, k0, full_m && full_k)
      LOAD_CHUNK(rb, B_LOADS, B_UNITS, W, (idx_t)n0, (idx_t)N, k0,
                 full_n && full_k)
    }
    __local const float4 *at = a_tiles + buf * (TK * PA / 4);
    __local const float4 *bt = b_tiles + buf * (TK * PB / 4);
#if UNROLL
#pragma unroll
#else
#pragma unroll 1
#endif
    for (int kk = 0; kk < TK; kk++) {
      float a[RM], b[RN];
#pragma unroll
      for (int p = 0; p < RM / 4; p++) {
        const float4 v = at[(kk * PA + p * 4 * MT + ty * 4) / 4];
        a[4 * p] = v.x;
        a[4 * p + 1] = v.y;
        a[4 * p + 2] = v.z;
        a[4 * p + 3] = v.w;
      }
#pragma unroll
      for (int q = 0; q < RN / 4; q++) {
        const float4 v = bt[(kk * PB + q * 4 * NT + tx * 4) / 4];
        b[4 * q] = v.x;
        b[4 * q + 1] = v.y;
        b[4 * q + 2] = v.z;
        b[4 * q + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < RM; i++)
#pragma unroll
        for (int j = 0; j < RN; j++)
          acc[i][j] += a[i] * b[j];
    }
    if (next) {
      __local float *const an = as + (buf ^ 1) * (TK * PA);
      __local float *const bn = bs + (buf ^ 1) * (TK * PB);
      STORE_CHUNK(ra, A_LOADS, A_UNITS, an, PA)
      STORE_CHUNK(rb, B_LOADS, B_UNITS, bn, PB)
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  // Epilogue: bias, then float4 stores where the row holds whole float4s.
  // Without a bias (scale) the argument is some other buffer, possibly
  // shorter (16-bit weights of K 1): read only under the uniform flag, the
  // index clamped as in LOAD_CHUNK.
  float bv[RN];
#pragma unroll
  for (int q = 0; q < RN / 4; q++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int n = n0 + q * 4 * NT + tx * 4 + e;
      bv[4 * q + e] = 0.0f;
      if (has_bias) {
        const float b = bias[min(n, N - 1)];
        bv[4 * q + e] = n < N ? b : 0.0f;
      }
    }
#if EPILOGUE == 2
  float sv[RN];
#pragma unroll
  for (int q = 0; q < RN / 4; q++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int n = n0 + q * 4 * NT + tx * 4 + e;
      sv[4 * q + e] = 1.0f;
      if (has_scale) {
        const float s = scale[min(n, N - 1)];
        sv[4 * q + e] = n < N ? s : 1.0f;
      }
    }
#endif
  const bool n4 = N % 4 == 0;
#pragma unroll
  for (int p = 0; p < RM / 4; p++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int i = 4 * p + e;
      const idx_t m = m0 + (idx_t)(p * 4 * MT + ty * 4 + e);
      if (m >= M)
        continue;
      __global out_t *const y = Y + m * (idx_t)N;
#pragma unroll
      for (int q = 0; q < RN / 4; q++) {
        const int n = n0 + q * 4 * NT + tx * 4;
        const float4 v = (float4)(acc[i][4 * q] + bv[4 * q],
                                  acc[i][4 * q + 1] + bv[4 * q + 1],
                                  acc[i][4 * q + 2] + bv[4 * q + 2],
                                  acc[i][4 * q + 3] + bv[4 * q + 3]);
#if EPILOGUE == 2
        const float4 s =
            (float4)(sv[4 * q], sv[4 * q + 1], sv[4 * q + 2], sv[4 * q + 3]);
#else
        const float4 s = (float4)(1.0f);
#endif
        store_epilogue(y, n, N, n4, v, s);
      }
    }
}

// Split-K's second pass: Y (M, N) = epilogue(sum over the `parts` slices of
// P (parts, M, N) in order + bias), one work-item per 4 columns of a row.
__kernel void linear_reduce(__global const float *restrict P,
                            __global const float *restrict bias,
                            __global out_t *restrict Y, const idx_t M,
                            const int N, const int parts, const int has_bias
#if EPILOGUE == 2
                            ,
                            __global const float *restrict scale,
                            const int has_scale
#endif
) {
  const int quads = (N + 3) / 4;
  const idx_t item = (idx_t)get_global_id(0);
  const idx_t m = item / (idx_t)quads;
  if (m >= M)
    return;
  const int n = (int)(item % (idx_t)quads) * 4;
  const bool n4 = N % 4 == 0;
  const idx_t slice = M * (idx_t)N;
  // Columns past N read column N-1 (in range, as the edge tiles' loads) and
  // are not stored.
  const int n1 = min(n + 1, N - 1), n2 = min(n + 2, N - 1),
            n3 = min(n + 3, N - 1);
  __global const float *p = P + m * (idx_t)N;
  float4 v = (float4)(0.0f);
  if (n4)
    for (int s = 0; s < parts; s++, p += slice)
      v += *(__global const float4 *)(p + n);
  else
    for (int s = 0; s < parts; s++, p += slice)
      v += (float4)(p[n], p[n1], p[n2], p[n3]);
  if (has_bias)
    v += (float4)(bias[n], bias[n1], bias[n2], bias[n3]);
#if EPILOGUE == 2
  const float4 sc = has_scale
                        ? (float4)(scale[n], scale[n1], scale[n2], scale[n3])
                        : (float4)(1.0f);
#else
  const float4 sc = (float4)(1.0f);
#endif
  store_epilogue(Y + m * (idx_t)N, n, N, n4, v, sc);
}
