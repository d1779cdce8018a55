// Element-wise helpers shared by several operators.

// dst[i] = (storage_t) src[i]: fp32 accumulators to the storage type.
__kernel void convert_from_float(__global const float *restrict src,
                                 __global storage_t *restrict dst,
                                 const idx_t count) {
  const idx_t i = (idx_t)get_global_id(0);
  if (i < count)
    STORE1(src[i], dst, i);
}
