// LayerNorm over the channels of each row (PyTorch's nn.LayerNorm on a
// channels-last tensor), with the model's epilogues; x, residual and out in
// the storage DTYPE (common.clh: the model's activations, 16-bit in fp16 and
// bf16 models), weight, bias and scale fp32, arithmetic fp32, each output
// rounded once:
//   LN_EPILOGUE 0  out = LN(x)
//               1  out = GELU(LN(x)), exact (erf) GELU
//               2  out = residual + scale * LN(x) (scale per channel, or 1
//                  where has_scale is 0); residual may be out
// LN(x) = (x - mean) * rsqrt(var + eps) * weight + bias, biased variance,
// both reductions in fp32 over the row: the mean first, then the squared
// deviations from it (two passes over the row, which stays in cache; one
// pass of sum and sum of squares loses digits when |mean| >> std).
//
// A team of LN_TEAM work-items (a power of two) normalizes one row; a
// work-group of LN_LOCAL work-items holds LN_LOCAL / LN_TEAM teams, so that
// narrow rows (64 channels) do not leave most of a group idle. Item t of a
// team takes channels t, t + LN_TEAM, ... (neighbouring items, neighbouring
// addresses). Teams past the last row read and write nothing, but every
// item must reach the barriers.
//
// x may be out (LN_EPILOGUE 0 and 1): an item rewrites only the channels it
// read, after the reductions' barriers.

#ifndef LN_EPILOGUE
#define LN_EPILOGUE 0
#endif
#if LN_LOCAL % LN_TEAM || (LN_TEAM & (LN_TEAM - 1))
#error "layernorm: LN_TEAM must be a power of two dividing LN_LOCAL"
#endif

// Sum of `v` over the team whose slots start at red + base.
inline float team_sum(__local float *red, int base, int t, float v) {
  red[base + t] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = LN_TEAM / 2; s > 0; s >>= 1) {
    if (t < s)
      red[base + t] += red[base + t + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float total = red[base];
  barrier(CLK_LOCAL_MEM_FENCE); // every item has read it before reuse
  return total;
}

__kernel __attribute__((reqd_work_group_size(LN_LOCAL, 1, 1))) void
layernorm(__global const storage_t *x, __global const float *restrict weight,
          __global const float *restrict bias,
          __global const float *restrict scale,
          __global const storage_t *residual, __global storage_t *out,
          const idx_t rows, const int C, const float eps, const int has_scale) {
  __local float red[LN_LOCAL];
  const int lid = (int)get_local_id(0);
  const int t = lid % LN_TEAM, base = lid - t;
  const idx_t row =
      (idx_t)get_group_id(0) * (LN_LOCAL / LN_TEAM) + (idx_t)(lid / LN_TEAM);
  const bool live = row < rows;
  // Teams past the last row read nothing: with x == out, another group may
  // be writing any row.
  const int span = live ? C : 0;
  const idx_t start = (live ? row : 0) * (idx_t)C;
  __global const storage_t *const xr = x + start;

  float s = 0.0f;
  for (int c = t; c < span; c += LN_TEAM)
    s += LOAD1(xr, c);
  const float mean = team_sum(red, base, t, s) / (float)C;
  float q = 0.0f;
  for (int c = t; c < span; c += LN_TEAM) {
    const float d = LOAD1(xr, c) - mean;
    q += d * d;
  }
  const float var = team_sum(red, base, t, q) / (float)C;
  const float inv = 1.0f / sqrt(var + eps);
  if (!live)
    return;
  for (int c = t; c < C; c += LN_TEAM) {
    float v = (LOAD1(xr, c) - mean) * inv * weight[c] + bias[c];
#if LN_EPILOGUE == 1
    v = 0.5f * v * (1.0f + erf(v * M_SQRT1_2_F));
#elif LN_EPILOGUE == 2
    v = LOAD1(residual, start + c) + (has_scale ? scale[c] : 1.0f) * v;
#endif
    STORE1(v, out, start + c);
  }
}
