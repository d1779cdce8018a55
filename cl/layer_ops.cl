// Small kernels of the layers (DESIGN.md §1.3): the work around the GEMMs.
//
// The layers compute in fp32 whatever their storage dtype: `to_float` widens
// an fp16/bf16 input once, GEMMs and these kernels work on fp32 scratch, and
// `bias_store` adds a projection's bias and writes the result in the storage
// type (DTYPE, see common.h) of its destination.
//
// Build-time defines (besides common.h):
//   HAS_BIAS  bias_store: 1 adds bias[column], 0 only converts
//   DW_K      dwconv: the depthwise kernel size (odd)
//   GROUP_CHANNELS  cfs_blend: channels per group (D)

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
__kernel void dwconv(__global const float *restrict src,
                     __global const float *restrict weight,
                     __global const float *restrict bias,
                     __global float *restrict dst, const image_geometry g,
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
             src[(row + (idx_t)x) * (idx_t)C + (idx_t)c];
    }
  }
  dst[i] = acc;
}
#endif

#ifdef GROUP_CHANNELS
// Centre feature scale (DCNv4 module): with logits (rows, G) = x @ W^T,
// s = sigmoid(logit + bias[g]) for the group g of each channel and
// x = x * (1 - s) + v * s. Element-wise, so x may be updated in place.
__kernel void cfs_blend(__global float *x, __global const float *restrict v,
                        __global const float *restrict logits,
                        __global const float *restrict bias, const int group,
                        const idx_t count) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i >= count)
    return;
  const int C = group * GROUP_CHANNELS;
  const idx_t pixel = i / (idx_t)C;
  const int g = (int)(i % (idx_t)C) / GROUP_CHANNELS;
  const float s =
      1.0f / (1.0f + exp(-(logits[pixel * (idx_t)group + (idx_t)g] + bias[g])));
  x[i] = x[i] * (1.0f - s) + v[i] * s;
}
#endif
