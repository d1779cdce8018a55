// The FlashInternImage model's elementwise and pooling kernels, fp32,
// row-major (rows, C) with the channel fastest:
//   residual_add  inout += scale * (y + bias): the pre-norm blocks' residual
//                 with layer scale (no bias), and the residual epilogue of a
//                 CLBlast GEMM (with the GEMM's bias)
//   bias_gelu     c = GELU(c + bias), exact (erf) GELU: the GELU epilogue of
//                 a CLBlast GEMM
//   avgpool       out (N, C) = mean over positions of x (N, positions, C),
//                 x and out in the storage DTYPE (common.clh), the sum fp32
// One work-item per output element; `bias` and `scale` are not read where
// has_bias / has_scale are 0.

inline float gelu(float v) { return 0.5f * v * (1.0f + erf(v * M_SQRT1_2_F)); }

__kernel void residual_add(__global float *restrict inout,
                           __global const float *restrict y,
                           __global const float *restrict bias,
                           __global const float *restrict scale,
                           const idx_t count, const int C, const int has_bias,
                           const int has_scale) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i >= count)
    return;
  const int c = (int)(i % (idx_t)C);
  float v = y[i];
  if (has_bias)
    v += bias[c];
  if (has_scale)
    v *= scale[c];
  inout[i] += v;
}

__kernel void bias_gelu(__global float *restrict c_,
                        __global const float *restrict bias, const idx_t count,
                        const int C, const int has_bias) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i >= count)
    return;
  float v = c_[i];
  if (has_bias)
    v += bias[(int)(i % (idx_t)C)];
  c_[i] = gelu(v);
}

__kernel void avgpool(__global const storage_t *restrict x,
                      __global storage_t *restrict out, const idx_t count,
                      const idx_t positions, const int C, const float inv) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i >= count)
    return;
  const idx_t n = i / (idx_t)C;
  const int c = (int)(i % (idx_t)C);
  __global const storage_t *p = x + n * positions * (idx_t)C + c;
  float s = 0.0f;
  for (idx_t q = 0; q < positions; q++)
    s += LOAD1(p, q * (idx_t)C);
  STORE1(s * inv, out, i);
}
