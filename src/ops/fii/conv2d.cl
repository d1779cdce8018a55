// Dense 2-d convolution (PyTorch's Conv2d, groups 1, dilation 1, square
// kernel), channels-last output, as an implicit GEMM, fp32 sums:
//   out[m][n] = sum_kk A[m][kk] * B[n][kk] (+ bias[n])
// m an output pixel (b, oy, ox), n an output channel, kk an input channel
// and kernel tap. A is gathered from the input on the fly (zero outside the
// image), B from the weight (Cout, Cin, KS, KS) as PyTorch stores it. The
// order of kk follows the input's layout, so that neighbouring work-items
// load neighbouring addresses: (tap, ci) with ci fastest for channels-last
// input, (ci, tap) for NCHW (where B is then the weight read contiguously).
//
// One work-group computes a TM x TN tile of the output with (TM/4)*(TN/4)
// work-items, each a 4 x 4 block, walking kk in chunks of TK staged in
// local memory. Out-of-range loads read address 0 and are replaced by zero
// (no guarded loads: PoCL was seen loading guarded values regardless, see
// linear.cl).
//
// Build-time defines (besides common.clh's IDX64 and DTYPE, the storage of
// the output and of a channels-last input; weights and bias fp32):
//   TM, TN   tile pixels and channels, powers of two with (TM/4)*(TN/4)
//            dividing TM*TK and TN*TK
//   NCHW     1: input (N, Cin, H, W), fp32 (the model's image); 0: input
//            (N, H, W, Cin) in DTYPE

#define TK 16
#define MT (TM / 4) // work-items along the pixels
#define NT (TN / 4) // work-items along the channels
#define LOCAL (MT * NT)
#define A_LOADS (TM * TK / LOCAL)
#define B_LOADS (TN * TK / LOCAL)
#define PA (TM + 1) // local row pitches, off the banks of the column stores
#define PB (TN + 1)

#if (TM * TK) % LOCAL || (TN * TK) % LOCAL || LOCAL % TK
#error "conv2d: the tile does not split into whole loads"
#endif
#if NCHW && LOCAL % TM
#error "conv2d: NCHW loads need TM to divide the work-group"
#endif

#if NCHW
typedef float in_t;
#define LOAD_IN(p, i) ((p)[i])
#else
typedef storage_t in_t;
#define LOAD_IN(p, i) LOAD1(p, i)
#endif

typedef struct conv2d_geometry {
  int in_channels, in_height, in_width;
  int out_channels, out_height, out_width;
  int ksize, stride, pad; // "kernel" is a keyword
} conv2d_geometry;

__kernel __attribute__((reqd_work_group_size(LOCAL, 1, 1))) void
conv2d(__global const in_t *restrict x, __global const float *restrict w,
       __global const float *restrict bias, __global storage_t *restrict out,
       const conv2d_geometry g, const idx_t M, const int has_bias) {
  __local float as[TK * PA];
  __local float bs[TK * PB];
  const int lid = (int)get_local_id(0);
  const int tx = lid % NT, ty = lid / NT;
  const int Cin = g.in_channels, H = g.in_height, W = g.in_width;
  const int Cout = g.out_channels, KS = g.ksize, taps = KS * KS;
  const int K = Cin * taps;
  const int tiles_n = (Cout + TN - 1) / TN;
  const idx_t group = (idx_t)get_group_id(0);
  const idx_t m0 = group / (idx_t)tiles_n * (idx_t)TM;
  const int n0 = (int)(group % (idx_t)tiles_n) * TN;

  // The pixels and chunk columns this item loads, fixed over the chunks:
  // NCHW, one pixel per item (neighbouring items, neighbouring pixels);
  // channels-last, TK neighbouring items on the channels of one pixel.
  int a_row[A_LOADS], a_kq[A_LOADS], a_iy[A_LOADS], a_ix[A_LOADS];
  idx_t a_base[A_LOADS];
  bool a_live[A_LOADS];
  for (int j = 0; j < A_LOADS; j++) {
    const int u = lid + j * LOCAL;
#if NCHW
    a_row[j] = u % TM;
    a_kq[j] = u / TM;
#else
    a_row[j] = u / TK;
    a_kq[j] = u % TK;
#endif
    const idx_t m = m0 + (idx_t)a_row[j];
    a_live[j] = m < M;
    const idx_t mm = a_live[j] ? m : 0;
    const idx_t pixels = (idx_t)g.out_height * (idx_t)g.out_width;
    const idx_t b = mm / pixels;
    const int p = (int)(mm % pixels);
    a_iy[j] = p / g.out_width * g.stride - g.pad;
    a_ix[j] = p % g.out_width * g.stride - g.pad;
    a_base[j] = b * (idx_t)Cin * (idx_t)H * (idx_t)W;
  }

  float acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += TK) {
    for (int j = 0; j < A_LOADS; j++) {
      const int kk = k0 + a_kq[j];
#if NCHW
      const int ci = kk / taps, tap = kk % taps;
#else
      const int tap = kk / Cin, ci = kk % Cin;
#endif
      const int iy = a_iy[j] + tap / KS, ix = a_ix[j] + tap % KS;
      const bool in =
          a_live[j] && kk < K && iy >= 0 && iy < H && ix >= 0 && ix < W;
#if NCHW
      const idx_t off = a_base[j] + ((idx_t)ci * H + iy) * (idx_t)W + ix;
#else
      const idx_t off = a_base[j] + ((idx_t)iy * W + ix) * (idx_t)Cin + ci;
#endif
      const float v = LOAD_IN(x, in ? off : 0);
      as[a_kq[j] * PA + a_row[j]] = in ? v : 0.0f;
    }
    for (int j = 0; j < B_LOADS; j++) {
      const int u = lid + j * LOCAL;
      const int r = u / TK, kq = u % TK;
      const int n = n0 + r, kk = k0 + kq;
#if NCHW
      const int woff = n * K + kk;
#else
      const int woff = (n * Cin + kk % Cin) * taps + kk / Cin;
#endif
      const bool in = n < Cout && kk < K;
      const float v = w[in ? woff : 0];
      bs[kq * PB + r] = in ? v : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int kk = 0; kk < TK; kk++) {
      float a[4], b[4];
      for (int i = 0; i < 4; i++)
        a[i] = as[kk * PA + ty + i * MT];
      for (int j = 0; j < 4; j++)
        b[j] = bs[kk * PB + tx + j * NT];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
          acc[i][j] += a[i] * b[j];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  for (int j = 0; j < 4; j++) {
    const int n = n0 + tx + j * NT;
    const float bv = has_bias && n < Cout ? bias[n < Cout ? n : 0] : 0.0f;
    for (int i = 0; i < 4; i++) {
      const idx_t m = m0 + (idx_t)(ty + i * MT);
      if (m < M && n < Cout)
        STORE1(acc[i][j] + bv, out, m * (idx_t)Cout + n);
    }
  }
}
