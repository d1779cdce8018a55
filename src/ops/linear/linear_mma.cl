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
// barrier per chunk. Rows of a staged tile are TK + 8 values apart, so the
// 8 rows one ldmatrix reads fall on distinct banks. Rows, columns and k
// outside the matrices are staged as zeros and nothing is stored there.
// Where K is a multiple of 8 every row starts 16-byte aligned and a chunk
// moves as 16-byte copies; otherwise value by value (a run-time branch,
// the same for the whole launch).
//
// Group g computes the tile (g / tiles_n, g % tiles_n): neighbouring groups
// share the rows of X.
//
// Build-time defines (besides common.clh's DTYPE and IDX64, and
// warp_mma.clh's WARP_MMA_PTX):
//   TM, TN     tile rows and columns; TM/WM and TN/WN multiples of 16
//   TK         K chunk, a multiple of 16
//   WM, WN     warps along M and N (the work-group is 32*WM*WN items)
//   STAGES     buffers of the ring, 2 to 4
//   OUT_DTYPE  Y's storage: 0 fp32, else DTYPE (linear_out.clh)
//   EPILOGUE   as linear.cl's: 0 none, 1 GELU (erf), 2 Y += scale * (...)
//              with Y holding the residual (scale fp32 per column; not read
//              where has_scale is 0)
// M, N, K and has_bias (bias fp32 (N), not read without) are run-time
// arguments: a new shape never recompiles.

#define WARPS (WM * WN)
#define LOCAL (WARPS * WARP_LANES)
#define WTM (TM / WM) // rows of a warp's block
#define WTN (TN / WN) // columns of a warp's block
#define MI (WTM / 16) // m16 fragments of a warp
#define NJ (WTN / 8)  // n8 fragments of a warp
#define PITCH (TK + 8)
#define STAGE_VALUES ((TM + TN) * PITCH)

#if TK % 16 || WTM % 16 || WTN % 16 || TM % WM || TN % WN
#error "linear_mma: TK, TM/WM and TN/WN must be multiples of 16"
#endif
#if STAGES < 2 || STAGES > 4
#error "linear_mma: STAGES must be 2, 3 or 4"
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
// staged tile (R rows of PITCH values), zeros outside the matrix; `k8`: K
// is a multiple of 8 (16-byte copies).
inline void stage_rows(__local ushort *tile, __global const ushort *src,
                       const idx_t r0, const idx_t rows, const int R,
                       const int k0, const int K, const bool k8,
                       const int lid) {
  const int units = R * (TK / 8);
  for (int u = lid; u < units; u += LOCAL) {
    const int r = u / (TK / 8), kc = (u % (TK / 8)) * 8;
    const idx_t row = r0 + (idx_t)r;
    const int k = k0 + kc;
    __local uint4 *dst = (__local uint4 *)(tile + r * PITCH + kc);
    const bool in = row < rows;
    if (k8) {
      const bool ok = in && k < K;
      copy16_async(dst, (__global const uint4 *)(src + (ok ? row * K + k : 0)),
                   ok);
    } else {
      // Addresses clamped into the matrix, the values zeroed outside.
      const idx_t base = (in ? row : rows - 1) * K;
      uint w[4];
      for (int e = 0; e < 4; e++) {
        const int k_lo = k + 2 * e, k_hi = k_lo + 1;
        const uint lo = src[base + min(k_lo, K - 1)];
        const uint hi = src[base + min(k_hi, K - 1)];
        w[e] = (in && k_lo < K ? lo : 0u) | (in && k_hi < K ? hi : 0u) << 16;
      }
      *dst = (uint4)(w[0], w[1], w[2], w[3]);
    }
  }
}

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
  // linear.cl's argument list; the host never splits K here (k_part == K).
  (void)k_part;
  __local uint4 tiles[STAGES * STAGE_VALUES / 8];
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
  const idx_t m0 = (group / (idx_t)tiles_n) * (idx_t)TM;
  const int n0 = (int)(group % (idx_t)tiles_n) * TN;
  const bool k8 = K % 8 == 0;
  const int chunks = (K + TK - 1) / TK;

  float4 acc[MI][NJ];
  for (int i = 0; i < MI; i++)
    for (int j = 0; j < NJ; j++)
      acc[i][j] = (float4)(0.0f);

  // This lane's ldmatrix rows within a stage (bytes): A's matrices are
  // (rows 0-7, 8-15) x (k 0-7, 8-15) of a 16x16 fragment in the order of
  // the A words; W's are (k 0-7, 8-15) of columns 0-7, then of 8-15, the B
  // words of two n8 fragments.
  const uint a_lane =
      (uint)(((warp_m * WTM + (lane & 15)) * PITCH + (lane >> 4) * 8) * 2);
  const uint b_lane =
      (uint)(((TM + warp_n * WTN + (lane & 7) + ((lane >> 4) << 3)) * PITCH +
              ((lane >> 3) & 1) * 8) *
             2);

  // The ring's first STAGES-1 chunks (a commit per stage, even empty, so
  // that copy_wait counts chunks).
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < chunks) {
      __local ushort *t = (__local ushort *)tiles + s * STAGE_VALUES;
      stage_rows(t, X, m0, M, TM, s * TK, K, k8, lid);
      stage_rows(t + TM * PITCH, W, (idx_t)n0, (idx_t)N, TN, s * TK, K, k8,
                 lid);
    }
    copy_commit();
  }

  for (int c = 0; c < chunks; c++) {
#if STAGES == 2
    copy_wait(0);
#elif STAGES == 3
    copy_wait(1);
#else
    copy_wait(2);
#endif
    // Chunk c is in place for every work-item, and chunk c-1's buffer is
    // free: its products are done.
    barrier(CLK_LOCAL_MEM_FENCE);
    const int next = c + STAGES - 1;
    if (next < chunks) {
      __local ushort *t =
          (__local ushort *)tiles + (next % STAGES) * STAGE_VALUES;
      stage_rows(t, X, m0, M, TM, next * TK, K, k8, lid);
      stage_rows(t + TM * PITCH, W, (idx_t)n0, (idx_t)N, TN, next * TK, K, k8,
                 lid);
    }
    copy_commit();

    __local const uchar *stage =
        (__local const uchar *)tiles + (c % STAGES) * STAGE_VALUES * 2;
#pragma unroll
    for (int kk = 0; kk < TK / 16; kk++) {
      uint4 a[MI];
#pragma unroll
      for (int i = 0; i < MI; i++)
        a[i] = ldmatrix_x4(
            stage, a_lane + (uint)((i * 16 * PITCH + kk * 16) * 2), scratch);
#pragma unroll
      for (int j = 0; j < NJ / 2; j++) {
        const uint4 b = ldmatrix_x4(
            stage, b_lane + (uint)((j * 16 * PITCH + kk * 16) * 2), scratch);
#pragma unroll
        for (int i = 0; i < MI; i++) {
          acc[i][2 * j] = mma_16816(acc[i][2 * j], a[i], b.xy, scratch);
          acc[i][2 * j + 1] = mma_16816(acc[i][2 * j + 1], a[i], b.zw, scratch);
        }
      }
    }
  }

  // Epilogue: this lane holds rows grp and grp+8 of each m16 fragment,
  // columns 2tig and 2tig+1 of each n8 fragment.
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
}
