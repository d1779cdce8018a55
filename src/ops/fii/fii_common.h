/* What the FlashInternImage kernels' launchers share (private to
 * src/ops/fii/). */
#ifndef DCNV4_FII_COMMON_H
#define DCNV4_FII_COMMON_H

#include "ops/fii/fii_ops.h"

/* An element count or index in the kernels' idx_t (IDX64 builds: long). */
typedef union dcn_fii_index {
  cl_int i32;
  cl_long i64;
} dcn_fii_index;

static inline dcn_arg dcn_fii_index_arg(dcn_fii_index *storage, bool idx64,
                                        uint64_t value) {
  if (idx64) {
    storage->i64 = (cl_long)value;
    return (dcn_arg){sizeof(cl_long), &storage->i64};
  }
  storage->i32 = (cl_int)value;
  return (dcn_arg){sizeof(cl_int), &storage->i32};
}

/* The fp32 bytes of `elements`, false on overflow. */
static inline bool dcn_fii_bytes(uint64_t elements, size_t *bytes) {
  return dcn_bytes(elements, sizeof(cl_float), bytes);
}

/* The bytes of `elements` activations in `dtype` (0 for an unknown dtype,
 * which fails), false on overflow. */
static inline bool dcn_fii_act_bytes(uint64_t elements, dcnv4_dtype dtype,
                                     size_t *bytes) {
  const size_t size = dcnv4_dtype_size(dtype);
  return size > 0 && dcn_bytes(elements, size, bytes);
}

/* " -DDTYPE=d" for 16-bit activations, "" for fp32 (whose builds keep their
 * options, and so their cached programs). */
static inline const char *dcn_fii_dtype_option(dcnv4_dtype dtype) {
  return dtype == DCNV4_FLOAT16    ? " -DDTYPE=1"
         : dtype == DCNV4_BFLOAT16 ? " -DDTYPE=2"
                                   : "";
}

#endif /* DCNV4_FII_COMMON_H */
