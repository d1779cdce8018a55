/* Deterministic backward (params->deterministic): the bucket machinery shared
 * by the DCNv4 and FlashDeformAttn operators (kernels in
 * deterministic_common.cl; the operator-specific ones in
 * dcnv4_backward_deterministic.cl and
 * fda_backward_deterministic.cl).
 *
 * Every sampling point p (0 <= p < points, in the operator's natural order)
 * that lies inside its image gets a bucket: its image and its top-left
 * neighbour (y0, x0), y0 in [-1, H), x0 in [-1, W). The steps:
 *   1. points kernel (operator): weight m[p], bucket key[p] (-1: outside),
 *      count[key]++ (integer atomics: the counts do not depend on order),
 *      and the offset/weight gradients of its row in a fixed order;
 *   2. exclusive prefix sum of the counts (fixed order) -> bucket offsets;
 *   3. fill: each point is written into its bucket (order arbitrary);
 *   4. sort: each bucket sorted by point index -> a unique order;
 *   5. gather kernel (operator): one work-item per VEC channels of one image
 *      element sums the points of the 4 buckets that can touch it, in bucket
 *      order, and writes the gradient in the storage type.
 * No float atomic anywhere: the result is a function of the inputs only.
 *
 * Workspace (4-byte words, at offset 0 of the buffer):
 *   count[buckets] | offset[buckets + 1] | segment sums[ceil(buckets/256)] |
 *   key[points] | m[points] | record[points]
 * words = 2*buckets + 1 + ceil(buckets/256) + 3*points, at most 2^31 - 1. */
#ifndef DCNV4_DETERMINISTIC_H
#define DCNV4_DETERMINISTIC_H

#include "core/internal.h"

/* Keys per scan segment (DET_SEGMENT in the kernels). */
#define DCN_DET_SEGMENT 256

typedef struct dcn_det_plan {
  uint64_t points, buckets, segments;
  uint64_t words;
  size_t bytes;
  /* word offsets of the regions */
  cl_int off_count, off_offset, off_segment, off_key, off_m, off_record;
  cl_int n_points, n_buckets, n_segments;
} dcn_det_plan;

/* Lays out the workspace; false if it exceeds 2^31 - 1 words. */
bool dcn_det_plan_make(uint64_t points, uint64_t buckets, dcn_det_plan *plan);

/* The shared kernels of one call, built and with their arguments set. */
typedef struct dcn_det_kernels {
  cl_kernel partial, top, final, fill, sort;
} dcn_det_kernels;

/* Builds the shared kernels and binds them to `workspace`. Enqueues
 * nothing. */
dcnv4_status dcn_det_prepare(dcnv4_context *ctx, cl_mem workspace,
                             const dcn_det_plan *plan, dcn_det_kernels *k);

/* Enqueues steps 2 to 4 (after the points kernel, in queue order). */
dcnv4_status dcn_det_enqueue_buckets(dcnv4_context *ctx,
                                     const dcn_det_kernels *k,
                                     const dcn_det_plan *plan, size_t local);

#endif /* DCNV4_DETERMINISTIC_H */
