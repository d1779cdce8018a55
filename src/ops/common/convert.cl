// Element-wise helpers shared by several operators.

// dst[i] = (storage_t) src[i]: fp32 accumulators to the storage type. VEC
// elements per work-item, so that each moves one wide load and one wide
// store (the 16-bit backward's last pass reads a whole fp32 gradient);
// the work-item past the last full vector converts the count % VEC left
// one by one. Buffers start aligned (every cl_mem is), so vector i is too.
__kernel void convert_from_float(__global const float *restrict src,
                                 __global storage_t *restrict dst,
                                 const idx_t count) {
  const idx_t i = (idx_t)get_global_id(0);
  const idx_t full = count / VEC;
  if (i < full) {
    const floatv v = *(__global const floatv *)(src + i * VEC);
    STOREV(v, dst + i * VEC);
  } else if (i == full) {
    for (idx_t j = full * VEC; j < count; j++)
      STORE1(src[j], dst, j);
  }
}
