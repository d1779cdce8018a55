// The layers' GEMM on 16-bit storage through tensor-core products
// (warp_mma.clh): PyTorch's Linear,
//   Y[m][n] = epilogue(sum_k X[m][k] * W[n][k] + bias[n]),
// X (M, K) and W (N, K) fp16 or bf16 (both DTYPE), accumulated in fp32, Y
// (M, N) fp32 or DTYPE, all row-major and contiguous. X is the mma's
// row-major A, W its column-major B (k x n), so both are staged k-innermost.
//
// One work-group computes a TM x TN tile of Y with WM x WN warps, each a
// (TM/WM) x (TN/WN) block of m16n8 accumulators. K is walked in chunks of
// TK through a ring of STAGES local-memory buffers: the chunk STAGES-1
// ahead is copied (cp.async) while the current one is multiplied, one
// barrier per chunk. A staged tile is rows of 16-byte pieces (8 k values)
// laid out so that the 8 rows one ldmatrix reads fall on distinct banks:
// rows TK + 8 values apart (SWIZZLE 0), or rows of exactly TK values with
// the pieces of a row permuted (SWIZZLE 1: piece c of row r at c XOR
// swz(r); less local memory, so more stages or bigger tiles fit). Rows,
// columns and k outside the matrices are staged as zeros and nothing is
// stored there. Where K is a multiple of 8 every row starts 16-byte
// aligned and a chunk moves as 16-byte copies; otherwise value by value (a
// run-time branch, the same for the whole launch).
//
// Group g computes the tile (g / tiles_n, g % tiles_n): neighbouring groups
// share the rows of X. RASTER R > 0: groups walk bands of R tile rows
// column by column instead (those running at once share both X's and W's
// tiles in L2).
//
// Build-time defines (besides common.clh's DTYPE and IDX64, and
// warp_mma.clh's WARP_MMA_PTX):
//   TM, TN     tile rows and columns; TM/WM and TN/WN multiples of 16
//   TK         K chunk, a multiple of 16 (16, 32 or 64 with SWIZZLE)
//   WM, WN     warps along M and N (the work-group is 32*WM*WN items)
//   STAGES     buffers of the ring, 2 to 6 (the ring is a static array:
//              NVIDIA's PTX build may exceed the 48 KiB the device
//              reports, up to the multiprocessor's per-block limit)
//   SWIZZLE    0: padded rows, 1: permuted pieces (above)
//   PREFETCH   1: a chunk's fragments for step kk+1 are loaded (ldmatrix)
//              before step kk's products are issued (two sets of
//              fragments in registers)
//   STAGED     1: the epilogue goes through local memory (the ring, after
//              the last chunk): the accumulators are written there, then
//              work-items store 16 bytes of a row each (and load as much of
//              the residual); 0: each lane stores its fragments' pairs
//   RASTER     0, or the band height of the group order (above)
//   OUT_DTYPE  Y's storage: 0 fp32, else DTYPE (linear_out.clh)
//   EPILOGUE   as linear.cl's: 0 none, 1 GELU (erf), 2 Y += scale * (...)
//              with Y holding the residual (scale fp32 per column; not read
//              where has_scale is 0)
// M, N, K, k_part (split K, below) and has_bias (bias fp32 (N), not read
// without) are run-time arguments: a new shape never recompiles.

#ifndef SWIZZLE
#define SWIZZLE 0
#endif
#ifndef PREFETCH
#define PREFETCH 0
#endif
#ifndef STAGED
#define STAGED 0
#endif
#ifndef RASTER
#define RASTER 0
#endif

#define WARPS (WM * WN)
#define LOCAL (WARPS * WARP_LANES)
#define WTM (TM / WM) // rows of a warp's block
#define WTN (TN / WN) // columns of a warp's block
#define MI (WTM / 16) // m16 fragments of a warp
#define NJ (WTN / 8)  // n8 fragments of a warp
#define KSTEPS (TK / 16)
#define PIECES (TK / 8) // 16-byte pieces of a staged row
#if SWIZZLE
#define PITCH TK
// Rows sharing one 128-byte line of banks, and the permutation of row r:
// the 8 rows r0..r0+7 (r0 a multiple of 8) of one ldmatrix matrix then
// cover the line's 8 piece positions once each. swz has period 8, so rows
// 16 or 8 apart (fragments, warps) permute alike.
#define ROWS_PER_LINE (PIECES >= 8 ? 1 : 8 / PIECES)
inline int swz(const int r) { return (r / ROWS_PER_LINE) % PIECES; }
#else
#define PITCH (TK + 8)
#define swz(r) 0
#endif
#define STAGE_VALUES ((TM + TN) * PITCH)
// Byte offset of piece c of staged row r.
#define PIECE_AT(r, c) ((r) * (PITCH * 2) + (((c) ^ swz(r)) << 4))

#if TK % 16 || WTM % 16 || WTN % 16 || TM % WM || TN % WN
#error "linear_mma: TK, TM/WM and TN/WN must be multiples of 16"
#endif
#if STAGES < 2 || STAGES > 6
#error "linear_mma: STAGES must be 2 to 6"
#endif
#if SWIZZLE && TK != 16 && TK != 32 && TK != 64
#error "linear_mma: SWIZZLE takes TK 16, 32 or 64"
#endif

#ifndef EPILOGUE
#define EPILOGUE 0
#endif
// Stores values v of row y at columns n, n+1 (those below N) after the
// epilogue; `pair`: N is even (n is), so both go as one aligned access.
inline void store_pair(__global out_t *restrict y, const int n, const int N,
                       const bool pair, float2 v, const float2 s) {
  if (n >= N)
    return;
#if EPILOGUE == 1
  v = 0.5f * v * (1.0f + erf(v * M_SQRT1_2_F));
#endif
  if (pair) {
#if EPILOGUE == 2
    v = out_load2(y + n) + s * v;
#endif
    out_store2(y + n, v);
    return;
  }
#if EPILOGUE == 2
  v.x = out_load(y + n) + s.x * v.x;
  if (n + 1 < N)
    v.y = out_load(y + n + 1) + s.y * v.y;
#endif
  out_store(y + n, v.x);
  if (n + 1 < N)
    out_store(y + n + 1, v.y);
}

// ------------------------------------------------------------- staging

// Rows [r0, r0 + R) of a (rows, K) matrix, k in [k0, k0 + TK), into a
// staged tile (R rows of PITCH values), zeros outside the matrix and from
// k_end on (the end of this launch's part of K), value by value: K is not
// a multiple of 8, so rows are not 16-byte aligned.
inline void stage_rows(__local ushort *tile, __global const ushort *src,
                       const idx_t r0, const idx_t rows, const int R,
                       const int k0, const int k_end, const int K,
                       const int lid) {
  const int units = R * PIECES;
  for (int u = lid; u < units; u += LOCAL) {
    const int r = u / PIECES, c = u % PIECES;
    const idx_t row = r0 + (idx_t)r;
    const int k = k0 + c * 8;
    const bool in = row < rows;
    // Addresses clamped into the matrix, the values zeroed outside.
    const idx_t base = (in ? row : rows - 1) * K;
    uint w[4];
    for (int e = 0; e < 4; e++) {
      const int k_lo = k + 2 * e, k_hi = k_lo + 1;
      const uint lo = src[base + min(k_lo, K - 1)];
      const uint hi = src[base + min(k_hi, K - 1)];
      w[e] = (in && k_lo < k_end ? lo : 0u) | (in && k_hi < k_end ? hi : 0u)
                                                  << 16;
    }
    *(__local uint4 *)((__local uchar *)tile + PIECE_AT(r, c)) =
        (uint4)(w[0], w[1], w[2], w[3]);
  }
}

// Where K % 8 == 0 every piece is one 16-byte copy: piece u (row u /
// PIECES, column u % PIECES) of an R-row tile; the branch on K is taken
// once for the whole launch, at the caller.
inline void stage_piece(__local ushort *tile, __global const ushort *src,
                        const idx_t r0, const idx_t rows, const int k0,
                        const int k_end, const int K, const int u) {
  const int r = u / PIECES, c = u % PIECES;
  const idx_t row = r0 + (idx_t)r;
  const int k = k0 + c * 8;
  const bool ok = row < rows && k < k_end;
  copy16_async((__local uint4 *)((__local uchar *)tile + PIECE_AT(r, c)),
               (__global const uint4 *)(src + (ok ? row * K + k : 0)), ok);
}
inline void stage_pieces(__local ushort *tile, __global const ushort *src,
                         const idx_t r0, const idx_t rows, const int R,
                         const int k0, const int k_end, const int K,
                         const int lid) {
  // A run of copies, each under a bound (true for every piece where LOCAL
  // divides R * PIECES), unrolled: the loop of stage_rows costs a bound
  // check and a branch per piece (perf-notes §41).
#pragma unroll
  for (int i = 0; i < (R * PIECES + LOCAL - 1) / LOCAL; i++)
    if (lid + i * LOCAL < R * PIECES)
      stage_piece(tile, src, r0, rows, k0, k_end, K, lid + i * LOCAL);
}

// Chunk k0 of X's rows from m0 and W's rows from n0 into ring buffer t:
// 16-byte copies where K % 8 == 0 (k8, the same for the whole launch),
// value by value otherwise.
inline void stage_chunk(__local ushort *t, __global const ushort *X,
                        __global const ushort *W, const idx_t m0, const idx_t M,
                        const int n0, const int N, const int K, const int k0,
                        const int k_end, const bool k8, const int lid) {
  if (k8) {
    stage_pieces(t, X, m0, M, TM, k0, k_end, K, lid);
    stage_pieces(t + TM * PITCH, W, (idx_t)n0, (idx_t)N, TN, k0, k_end, K, lid);
  } else {
    stage_rows(t, X, m0, M, TM, k0, k_end, K, lid);
    stage_rows(t + TM * PITCH, W, (idx_t)n0, (idx_t)N, TN, k0, k_end, K, lid);
  }
}

// One step (16 k) of a chunk's fragments: this warp's A fragments (MI) and
// B fragment pairs (NJ/2), from the lane's ldmatrix rows a_row, b_row
// (bytes, piece 0) and their permutations a_swz, b_swz.
inline void load_fragments(uint4 *a, uint4 *b, __local const uchar *stage,
                           const uint a_row, const int a_swz, const int a_hi,
                           const uint b_row, const int b_swz, const int b_hi,
                           const int kk, __local uint *scratch) {
  const uint a_off = a_row + (uint)(((2 * kk + a_hi) ^ a_swz) << 4);
  const uint b_off = b_row + (uint)(((2 * kk + b_hi) ^ b_swz) << 4);
#pragma unroll
  for (int i = 0; i < MI; i++)
    a[i] = ldmatrix_x4(stage, a_off + (uint)(i * 16 * PITCH * 2), scratch);
#pragma unroll
  for (int j = 0; j < NJ / 2; j++)
    b[j] = ldmatrix_x4(stage, b_off + (uint)(j * 16 * PITCH * 2), scratch);
}

// acc += the products of one step's fragments.
inline void multiply(float4 acc[MI][NJ], const uint4 *a, const uint4 *b,
                     __local uint *scratch) {
#pragma unroll
  for (int j = 0; j < NJ / 2; j++)
#pragma unroll
    for (int i = 0; i < MI; i++) {
      acc[i][2 * j] = mma_16816(acc[i][2 * j], a[i], b[j].xy, scratch);
      acc[i][2 * j + 1] = mma_16816(acc[i][2 * j + 1], a[i], b[j].zw, scratch);
    }
}

// ------------------------------------------------------------ epilogue

#if STAGED
// Rows of the staged epilogue's fp32 tile: EP_PASS fragment rows of every
// warp row at once (EP_ROWS rows), as many as the ring holds (at least
// one: the ring's array is sized for it). Rows TN + 8 floats apart: a
// half-warp's 8-byte writes (rows grp, columns 2tig) fall on distinct
// banks.
#define EP_PITCH (TN + 8)
#define EP_BYTES(p) (WM * 16 * EP_PITCH * 4 * (p))
#define RING_BYTES (STAGES * STAGE_VALUES * 2)
#define EP_PASS                                                                \
  (MI >= 8 && EP_BYTES(8) <= RING_BYTES   ? 8                                  \
   : MI >= 4 && EP_BYTES(4) <= RING_BYTES ? 4                                  \
   : MI >= 2 && EP_BYTES(2) <= RING_BYTES ? 2                                  \
                                          : 1)
#define EP_ROWS (WM * 16 * EP_PASS)
#define LOCAL_BYTES (RING_BYTES > EP_BYTES(1) ? RING_BYTES : EP_BYTES(1))
// Component e (0-3) of v (e a constant once unrolled: no indexing).
inline float component(const float4 v, const int e) {
  return e == 0 ? v.x : e == 1 ? v.y : e == 2 ? v.z : v.w;
}
#else
#define LOCAL_BYTES (STAGES * STAGE_VALUES * 2)
#endif

// -------------------------------------------------------------- kernel

__kernel __attribute__((reqd_work_group_size(LOCAL, 1, 1))) void
linear_mma(__global const ushort *restrict X, __global const ushort *restrict W,
           __global const float *restrict bias, __global out_t *restrict Y,
           const idx_t M, const int N, const int K, const int has_bias,
           const int k_part
#if EPILOGUE == 2
           ,
           __global const float *restrict scale, const int has_scale
#endif
) {
  __local uint4 tiles[LOCAL_BYTES / 16];
#if WARP_MMA_PTX
  __local uint *const scratch = NULL;
#else
  __local uint scratch_all[WARPS * WARP_SCRATCH_WORDS];
#endif

  const int lid = (int)get_local_id(0);
  const int warp = lid / WARP_LANES, lane = lid % WARP_LANES;
  const int grp = lane >> 2, tig = lane & 3;
  const int warp_m = warp / WN, warp_n = warp % WN;
#if !WARP_MMA_PTX
  __local uint *const scratch = scratch_all + warp * WARP_SCRATCH_WORDS;
#endif
  const int tiles_n = (N + TN - 1) / TN;
  const idx_t group = (idx_t)get_group_id(0);
#if RASTER
  // Bands of RASTER tile rows (the last one shorter), column by column.
  const idx_t tiles_m = (M + TM - 1) / TM;
  const idx_t band = group / ((idx_t)RASTER * (idx_t)tiles_n);
  const idx_t in_band = group % ((idx_t)RASTER * (idx_t)tiles_n);
  const idx_t band_rows = min((idx_t)RASTER, tiles_m - band * (idx_t)RASTER);
  const idx_t m0 = (band * (idx_t)RASTER + in_band % band_rows) * (idx_t)TM;
  const int n0 = (int)(in_band / band_rows) * TN;
#else
  const idx_t m0 = (group / (idx_t)tiles_n) * (idx_t)TM;
  const int n0 = (int)(group % (idx_t)tiles_n) * TN;
#endif
  // Split K (linear.c's few-tile GEMMs, as linear.cl): part
  // get_group_id(1) sums k in [k_begin, k_end) into its own (M, N) slice of
  // Y, built without bias or epilogue in fp32; linear_reduce adds the
  // slices. Unsplit: one part, k_part = K. k_part is a multiple of TK, so a
  // part starts 16-byte aligned where K % 8 == 0.
  const int k_begin = (int)get_group_id(1) * k_part;
  const int k_end = min(K, k_begin + k_part);
  Y += (idx_t)get_group_id(1) * M * (idx_t)N;
  const bool k8 = K % 8 == 0;
  const int chunks = (k_end - k_begin + TK - 1) / TK;

  float4 acc[MI][NJ];
  for (int i = 0; i < MI; i++)
    for (int j = 0; j < NJ; j++)
      acc[i][j] = (float4)(0.0f);

  // This lane's ldmatrix rows within a stage: A's matrices are (rows 0-7,
  // 8-15) x (k 0-7, 8-15) of a 16x16 fragment in the order of the A words;
  // W's are (k 0-7, 8-15) of columns 0-7, then of 8-15, the B words of two
  // n8 fragments. Row offsets in bytes, the k piece (a_hi, b_hi) and the
  // row's permutation apart; fragments 16 rows further permute alike.
  const int a_r = warp_m * WTM + (lane & 15);
  const int b_r = TM + warp_n * WTN + (lane & 7) + ((lane >> 4) << 3);
  const uint a_row = (uint)(a_r * PITCH * 2), b_row = (uint)(b_r * PITCH * 2);
  const int a_swz = swz(a_r), b_swz = swz(b_r);
  const int a_hi = lane >> 4, b_hi = (lane >> 3) & 1;

  // The ring's first STAGES-1 chunks (a commit per stage, even empty, so
  // that copy_wait counts chunks).
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < chunks)
      stage_chunk((__local ushort *)tiles + s * STAGE_VALUES, X, W, m0, M, n0,
                  N, K, k_begin + s * TK, k_end, k8, lid);
    copy_commit();
  }

  for (int c = 0; c < chunks; c++) {
#if STAGES == 2
    copy_wait(0);
#elif STAGES == 3
    copy_wait(1);
#elif STAGES == 4
    copy_wait(2);
#elif STAGES == 5
    copy_wait(3);
#else
    copy_wait(4);
#endif
    // Chunk c is in place for every work-item, and chunk c-1's buffer is
    // free: its products are done.
    barrier(CLK_LOCAL_MEM_FENCE);
    const int next = c + STAGES - 1;
    if (next < chunks)
      stage_chunk((__local ushort *)tiles + (next % STAGES) * STAGE_VALUES, X,
                  W, m0, M, n0, N, K, k_begin + next * TK, k_end, k8, lid);
    copy_commit();

    __local const uchar *stage =
        (__local const uchar *)tiles + (c % STAGES) * STAGE_VALUES * 2;
#if PREFETCH
    // Step kk+1's fragments are requested before step kk's products.
    uint4 fa[2][MI], fb[2][NJ / 2];
    load_fragments(fa[0], fb[0], stage, a_row, a_swz, a_hi, b_row, b_swz, b_hi,
                   0, scratch);
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
      if (kk + 1 < KSTEPS)
        load_fragments(fa[(kk + 1) & 1], fb[(kk + 1) & 1], stage, a_row, a_swz,
                       a_hi, b_row, b_swz, b_hi, kk + 1, scratch);
      multiply(acc, fa[kk & 1], fb[kk & 1], scratch);
    }
#else
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
      uint4 a[MI], b[NJ / 2];
      load_fragments(a, b, stage, a_row, a_swz, a_hi, b_row, b_swz, b_hi, kk,
                     scratch);
      multiply(acc, a, b, scratch);
    }
#endif
  }

  // Epilogue: this lane holds rows grp and grp+8 of each m16 fragment,
  // columns 2tig and 2tig+1 of each n8 fragment.
#if STAGED
  // Every warp is done with the ring (the copies still pending are the
  // empty groups of the last chunks).
  copy_wait(0);
  __local float *const ep = (__local float *)tiles;
  // 16-byte accesses where every row's OUT_VEC-aligned columns are (the
  // same for the whole launch); value by value otherwise.
  const bool wide = N % OUT_VEC == 0;
#pragma unroll
  for (int i0 = 0; i0 < MI; i0 += EP_PASS) {
    // The ring's last products (first pass) or the previous pass's reads
    // are done.
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int ii = 0; ii < EP_PASS; ii++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int r = (warp_m * EP_PASS + ii) * 16 + grp + 8 * h;
#pragma unroll
        for (int j = 0; j < NJ; j++)
          *(__local float2 *)(ep + r * EP_PITCH + warp_n * WTN + j * 8 +
                              2 * tig) =
              h ? acc[i0 + ii][j].zw : acc[i0 + ii][j].xy;
      }
    barrier(CLK_LOCAL_MEM_FENCE);
    // Row r of the pass is row (r / (16 EP_PASS)) WTM + i0 16 + r % (16
    // EP_PASS) of the tile.
    for (int u = lid; u < EP_ROWS * (TN / OUT_VEC); u += LOCAL) {
      const int r = u / (TN / OUT_VEC), col = (u % (TN / OUT_VEC)) * OUT_VEC;
      const idx_t m = m0 + (idx_t)((r / (16 * EP_PASS)) * WTM + i0 * 16 +
                                   r % (16 * EP_PASS));
      const int n = n0 + col;
      if (m >= M || n >= N)
        continue;
      float4 v[OUT_VEC / 4], b[OUT_VEC / 4], s[OUT_VEC / 4];
#pragma unroll
      for (int q = 0; q < OUT_VEC / 4; q++) {
        v[q] = *(__local const float4 *)(ep + r * EP_PITCH + col + 4 * q);
        b[q] = (float4)(0.0f);
        s[q] = (float4)(1.0f);
      }
      // Without a bias (scale) the argument is some other buffer, possibly
      // shorter: not read at all; reads clamped into the vector.
      if (wide) {
#pragma unroll
        for (int q = 0; q < OUT_VEC / 4; q++) {
          if (has_bias)
            b[q] = *(__global const float4 *)(bias + n + 4 * q);
#if EPILOGUE == 2
          if (has_scale)
            s[q] = *(__global const float4 *)(scale + n + 4 * q);
#endif
        }
      } else {
#pragma unroll
        for (int q = 0; q < OUT_VEC / 4; q++) {
          const int e = n + 4 * q;
          if (has_bias)
            b[q] = (float4)(bias[min(e, N - 1)], bias[min(e + 1, N - 1)],
                            bias[min(e + 2, N - 1)], bias[min(e + 3, N - 1)]);
#if EPILOGUE == 2
          if (has_scale)
            s[q] = (float4)(scale[min(e, N - 1)], scale[min(e + 1, N - 1)],
                            scale[min(e + 2, N - 1)], scale[min(e + 3, N - 1)]);
#endif
        }
      }
#pragma unroll
      for (int q = 0; q < OUT_VEC / 4; q++) {
        v[q] += b[q];
#if EPILOGUE == 1
        v[q] = 0.5f * v[q] * (1.0f + erf(v[q] * M_SQRT1_2_F));
#endif
      }
      __global out_t *const y = Y + m * (idx_t)N + n;
      if (wide) {
#if EPILOGUE == 2
        float4 old[OUT_VEC / 4];
        out_loadv(y, old);
#pragma unroll
        for (int q = 0; q < OUT_VEC / 4; q++)
          v[q] = old[q] + s[q] * v[q];
#endif
        out_storev(y, v);
      } else {
#pragma unroll
        for (int e = 0; e < OUT_VEC; e++)
          if (n + e < N) {
            const float ve = component(v[e / 4], e % 4);
#if EPILOGUE == 2
            out_store(y + e, out_load(y + e) + component(s[e / 4], e % 4) * ve);
#else
            out_store(y + e, ve);
#endif
          }
      }
    }
  }
#else
  const bool pair = N % 2 == 0;
  float2 bv[NJ], sv[NJ];
#pragma unroll
  for (int j = 0; j < NJ; j++) {
    const int n = n0 + warp_n * WTN + j * 8 + 2 * tig;
    // Without a bias (scale) the argument is some other buffer, possibly
    // shorter: not read at all. Reads clamped into the vector (n may lie
    // past N), the values past N unused.
    bv[j] = (float2)(0.0f);
    if (has_bias)
      bv[j] = (float2)(bias[min(n, N - 1)], bias[min(n + 1, N - 1)]);
    sv[j] = (float2)(1.0f);
#if EPILOGUE == 2
    if (has_scale)
      sv[j] = (float2)(scale[min(n, N - 1)], scale[min(n + 1, N - 1)]);
#endif
  }
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const idx_t m = m0 + (idx_t)(warp_m * WTM + i * 16 + grp + 8 * h);
      if (m >= M)
        continue;
      __global out_t *const y = Y + m * (idx_t)N;
#pragma unroll
      for (int j = 0; j < NJ; j++) {
        const int n = n0 + warp_n * WTN + j * 8 + 2 * tig;
        const float2 v = (h ? acc[i][j].zw : acc[i][j].xy) + bv[j];
        store_pair(y, n, N, pair, v, sv[j]);
      }
    }
#endif
}
