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

#endif /* DCNV4_FII_COMMON_H */
