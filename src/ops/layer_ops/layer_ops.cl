// Small kernels of the layers (DESIGN.md §1.3): the work around the GEMMs.
//
// Every kernel computes in fp32. `to_float` widens 16-bit storage (DTYPE,
// see common.clh), `bias_store` adds a projection's bias and writes the
// result in the storage type of its destination; dwconv and cfs_blend read
// and write DTYPE activations (fp16/bf16 layers keep their intermediates in
// their dtype, rounded once per kernel, as PyTorch's half modules), with
// fp32 weights and biases.
//
// Build-time defines (besides common.h):
//   HAS_BIAS  bias_store: 1 adds bias[column], 0 only converts
//   DW_K      dwconv: the depthwise kernel size (odd)
//   GROUP_CHANNELS  cfs_blend: channels per group (D)
//   FDA_SAMPLING    1 compiles fda_sampling (with FDA_MAX_LEVELS); DTYPE is
//                   then the storage type of the reference points

// dst[i] = (float) src[i]: storage type to fp32.
__kernel void to_float(__global const storage_t *restrict src,
                       __global float *restrict dst, const idx_t count) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i < count)
    dst[i] = LOAD1(src, i);
}

#ifndef HAS_BIAS
#define HAS_BIAS 1
#endif

// dst[r, c] = src[r, c] + bias[c] for a row-major (rows, cols) matrix, stored
// as DTYPE. `src` and `dst` may be the same fp32 buffer (in place), hence no
// restrict on them.
__kernel void bias_store(__global const float *src,
                         __global const float *restrict bias,
                         __global storage_t *dst, const idx_t count,
                         const int cols) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i >= count)
    return;
  float v = src[i];
#if HAS_BIAS
  v += bias[(int)(i % (idx_t)cols)];
#endif
  STORE1(v, dst, i);
}

#ifdef DW_K
typedef struct image_geometry {
  int height, width, channels;
} image_geometry;

// Depthwise convolution, channels-last (PyTorch's Conv2d with
// groups = channels, stride 1, padding (DW_K-1)/2, zeros outside):
// dst[n,h,w,c] = bias[c] + sum_{i,j} weight[i,j,c] * src[n,h+i-p,w+j-p,c].
// The weight is held as (DW_K, DW_K, C) so that neighbouring work-items
// (neighbouring channels) read neighbouring weights. One work-item per
// output element.
__kernel void dwconv(__global const storage_t *restrict src,
                     __global const float *restrict weight,
                     __global const float *restrict bias,
                     __global storage_t *restrict dst, const image_geometry g,
                     const idx_t count) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i >= count)
    return;
  const int C = g.channels;
  const int c = (int)(i % (idx_t)C);
  const idx_t pixel = i / (idx_t)C;
  const int w = (int)(pixel % (idx_t)g.width);
  const idx_t nh = pixel / (idx_t)g.width;
  const int h = (int)(nh % (idx_t)g.height);
  const idx_t image = (nh / (idx_t)g.height) * (idx_t)g.height;
  const int p = (DW_K - 1) / 2;
  float acc = bias[c];
  for (int ki = 0; ki < DW_K; ki++) {
    const int y = h + ki - p;
    if (y < 0 || y >= g.height)
      continue;
    const idx_t row = (image + (idx_t)y) * (idx_t)g.width;
    for (int kj = 0; kj < DW_K; kj++) {
      const int x = w + kj - p;
      if (x < 0 || x >= g.width)
        continue;
      acc += weight[(ki * DW_K + kj) * C + c] *
             LOAD1(src, (row + (idx_t)x) * (idx_t)C + (idx_t)c);
    }
  }
  STORE1(acc, dst, i);
}
#endif

#ifdef GROUP_CHANNELS
// Centre feature scale (DCNv4 module): with logits (rows, G) = x @ W^T,
// s = sigmoid(logit + bias[g]) for the group g of each channel and
// x = x * (1 - s) + v * s. Element-wise, so x may be updated in place.
__kernel void cfs_blend(__global storage_t *x,
                        __global const storage_t *restrict v,
                        __global const storage_t *restrict logits,
                        __global const float *restrict bias, const int group,
                        const idx_t count) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i >= count)
    return;
  const int C = group * GROUP_CHANNELS;
  const idx_t pixel = i / (idx_t)C;
  const int g = (int)(i % (idx_t)C) / GROUP_CHANNELS;
  const float s =
      1.0f /
      (1.0f + exp(-(LOAD1(logits, pixel * (idx_t)group + (idx_t)g) + bias[g])));
  STORE1(LOAD1(x, i) * (1.0f - s) + LOAD1(v, i) * s, x, i);
}
#endif

// x[r, c] = 0 where mask[r] (bytes, non-zero = padded), in place: PyTorch's
// masked_fill(mask[..., None], 0) after a Linear (its bias in the GEMM). A
// padded row is zero whatever x held (NaN included); zero bits are +0 in
// every storage type.
__kernel void mask_rows(__global storage_t *x,
                        __global const uchar *restrict mask, const idx_t count,
                        const int cols) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i < count && mask[i / (idx_t)cols])
    x[i] = (storage_t)0;
}

#ifdef FDA_SAMPLING
typedef struct fda_sampling_geometry {
  int heads, levels, points, reference_dim;
  int height[FDA_MAX_LEVELS];
  int width[FDA_MAX_LEVELS];
} fda_sampling_geometry;

// The FlashDeformAttn layer's reference-point arithmetic (Deformable-DETR's
// MSDeformAttn), building the core operator's fused sampling_loc_attn.
// One work-item per (row, head, level, point), i = ((row*G + g)*L + l)*K + k
// with row = n*Lq + q:
//   off = offsets[2i .. 2i+1] + offsets_bias[...]   (N,Lq,G,L,K,2) view
//   2-d: loc = ref[row, l, :2] + off / (W_l, H_l)
//   4-d: loc = ref[row, l, :2] + off / K * ref[row, l, 2:] * 0.5
//   dst[row, g, 2*(l*K + k) + {0, 1}] = loc (x, y)
//   dst[row, g, 2*L*K + l*K + k]      = logits[i] + logits_bias[...]
// in fp32, in PyTorch's order of operations (locations are not rounded to
// fp16 as upstream's module does).
__kernel void fda_sampling(__global const float *restrict offsets,
                           __global const float *restrict offsets_bias,
                           __global const float *restrict logits,
                           __global const float *restrict logits_bias,
                           __global const storage_t *restrict reference,
                           __global float *restrict dst,
                           const fda_sampling_geometry g, const idx_t count) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i >= count)
    return;
  const int K = g.points, L = g.levels, LK = L * K;
  const int glk = g.heads * LK;
  const idx_t rg = i / (idx_t)LK;           // row * G + head
  const int lk = (int)(i - rg * (idx_t)LK); // l * K + k
  const int l = lk / K;
  const idx_t row = rg / (idx_t)g.heads;
  const int j = (int)(i - row * (idx_t)glk); // (g*L + l)*K + k: bias lane
  const float ox = offsets[2 * i] + offsets_bias[2 * j];
  const float oy = offsets[2 * i + 1] + offsets_bias[2 * j + 1];
  const idx_t r = (row * (idx_t)L + (idx_t)l) * (idx_t)g.reference_dim;
  const float rx = LOAD1(reference, r), ry = LOAD1(reference, r + 1);
  float x, y;
  if (g.reference_dim == 4) {
    const float rw = LOAD1(reference, r + 2), rh = LOAD1(reference, r + 3);
    x = rx + ox / (float)K * rw * 0.5f;
    y = ry + oy / (float)K * rh * 0.5f;
  } else {
    x = rx + ox / (float)g.width[l];
    y = ry + oy / (float)g.height[l];
  }
  __global float *out = dst + rg * (idx_t)(3 * LK);
  out[2 * lk] = x;
  out[2 * lk + 1] = y;
  out[2 * LK + lk] = logits[i] + logits_bias[j];
}
#endif
