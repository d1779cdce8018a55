/* Deterministic backward: workspace layout and the shared bucket kernels
 * (see deterministic.h). */
#include "ops/common/deterministic.h"

bool dcn_det_plan_make(uint64_t points, uint64_t buckets, dcn_det_plan *plan) {
  const uint64_t limit = (uint64_t)INT32_MAX;
  if (points > limit || buckets > limit)
    return false;
  plan->points = points;
  plan->buckets = buckets;
  plan->segments = (buckets + DCN_DET_SEGMENT - 1) / DCN_DET_SEGMENT;
  /* Each term is below 2^31: no 64-bit overflow. */
  plan->words = 2 * buckets + 1 + plan->segments + 3 * points;
  if (plan->words > limit)
    return false;
  plan->bytes = (size_t)(plan->words * 4);
  plan->off_count = 0;
  plan->off_offset = (cl_int)buckets;
  plan->off_segment = (cl_int)(2 * buckets + 1);
  plan->off_key = (cl_int)(2 * buckets + 1 + plan->segments);
  plan->off_m = (cl_int)(plan->off_key + points);
  plan->off_record = (cl_int)(plan->off_m + points);
  plan->n_points = (cl_int)points;
  plan->n_buckets = (cl_int)buckets;
  plan->n_segments = (cl_int)plan->segments;
  return true;
}

dcnv4_status dcn_det_prepare(dcnv4_context *ctx, cl_mem ws,
                             const dcn_det_plan *p, dcn_det_kernels *k) {
  static const char options[] = "-DDET_SEGMENT=256";
  dcnv4_status st;
  if ((st = dcn_get_kernel(ctx, "deterministic_common", options,
                           "det_scan_partial", &k->partial)) ||
      (st = dcn_get_kernel(ctx, "deterministic_common", options, "det_scan_top",
                           &k->top)) ||
      (st = dcn_get_kernel(ctx, "deterministic_common", options,
                           "det_scan_final", &k->final)) ||
      (st = dcn_get_kernel(ctx, "deterministic_common", options, "det_fill",
                           &k->fill)) ||
      (st = dcn_get_kernel(ctx, "deterministic_common", options, "det_sort",
                           &k->sort)))
    return st;
  const dcn_arg partial[] = {DCN_ARG(ws), DCN_ARG(p->off_count),
                             DCN_ARG(p->off_segment), DCN_ARG(p->n_buckets),
                             DCN_ARG(p->n_segments)};
  const dcn_arg top[] = {DCN_ARG(ws), DCN_ARG(p->off_segment),
                         DCN_ARG(p->off_offset), DCN_ARG(p->n_buckets),
                         DCN_ARG(p->n_segments)};
  const dcn_arg final[] = {DCN_ARG(ws),
                           DCN_ARG(p->off_count),
                           DCN_ARG(p->off_segment),
                           DCN_ARG(p->off_offset),
                           DCN_ARG(p->n_buckets),
                           DCN_ARG(p->n_segments)};
  const dcn_arg fill[] = {DCN_ARG(ws),
                          DCN_ARG(p->off_key),
                          DCN_ARG(p->off_count),
                          DCN_ARG(p->off_offset),
                          DCN_ARG(p->off_record),
                          DCN_ARG(p->n_points)};
  const dcn_arg sort[] = {DCN_ARG(ws), DCN_ARG(p->off_offset),
                          DCN_ARG(p->off_record), DCN_ARG(p->n_buckets)};
  if ((st = dcn_set_args(ctx, k->partial, partial, 5, "det_scan_partial")) ||
      (st = dcn_set_args(ctx, k->top, top, 5, "det_scan_top")) ||
      (st = dcn_set_args(ctx, k->final, final, 6, "det_scan_final")) ||
      (st = dcn_set_args(ctx, k->fill, fill, 6, "det_fill")) ||
      (st = dcn_set_args(ctx, k->sort, sort, 4, "det_sort")))
    return st;
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_det_enqueue_buckets(dcnv4_context *ctx,
                                     const dcn_det_kernels *k,
                                     const dcn_det_plan *p, size_t local) {
  dcnv4_status st;
  if ((st = dcn_enqueue_1d(ctx, k->partial, p->segments, local, 0, NULL, NULL,
                           "det_scan_partial")) ||
      (st = dcn_enqueue_1d(ctx, k->top, 1, 1, 0, NULL, NULL, "det_scan_top")) ||
      (st = dcn_enqueue_1d(ctx, k->final, p->segments, local, 0, NULL, NULL,
                           "det_scan_final")) ||
      (st = dcn_enqueue_1d(ctx, k->fill, p->points, local, 0, NULL, NULL,
                           "det_fill")) ||
      (st = dcn_enqueue_1d(ctx, k->sort, p->buckets, local, 0, NULL, NULL,
                           "det_sort")))
    return st;
  return DCNV4_SUCCESS;
}
