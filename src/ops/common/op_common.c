/* The operators' shared skeleton (see op_common.h). */
#include "ops/common/op_common.h"

#include <stdio.h>
#include <string.h>

dcn_arg dcn_index_arg_make(dcn_index_arg *storage, bool idx64, uint64_t value) {
  if (idx64) {
    storage->i64 = (cl_long)value;
    return (dcn_arg){sizeof(cl_long), &storage->i64};
  }
  storage->i32 = (cl_int)value;
  return (dcn_arg){sizeof(cl_int), &storage->i32};
}

bool dcn_needs_idx64(const uint64_t *elements, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (elements[i] >= ((uint64_t)1 << 31))
      return true;
  return false;
}

void dcn_op_call_init(dcn_op_call *call, const dcn_op_names *names,
                      dcnv4_dtype dtype, int32_t group_channels,
                      bool deterministic, dcn_op_tensor image,
                      dcn_op_tensor sampling, dcn_op_tensor output) {
  memset(call, 0, sizeof *call);
  call->names = names;
  call->dtype = dtype;
  call->group_channels = group_channels;
  call->deterministic = deterministic;
  call->image = image;
  call->sampling = sampling;
  call->output = output;
  const uint64_t elements[] = {image.elements, output.elements,
                               sampling.elements};
  call->idx64 = dcn_needs_idx64(elements, 3);
}

dcnv4_status dcn_op_check_fields(dcnv4_context *ctx, dcnv4_dtype dtype,
                                 const dcn_op_field *fields, size_t count) {
  if (dcnv4_dtype_size(dtype) == 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER, "unknown dtype %d",
                    (int)dtype);
  for (size_t i = 0; i < count; i++)
    if (fields[i].value < fields[i].min)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                      "%s is %d; it must be at least %d", fields[i].name,
                      (int)fields[i].value, (int)fields[i].min);
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_op_check_flag(dcnv4_context *ctx, const char *name,
                               int32_t value) {
  if (value != 0 && value != 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "%s is %d; it must be 0 or 1", name, (int)value);
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_op_message(const dcnv4_context *scratch, dcnv4_status st,
                            char *message, size_t message_size) {
  if (message && message_size > 0)
    snprintf(message, message_size, "%s",
             st == DCNV4_SUCCESS ? "" : scratch->error_fixed);
  return st;
}

dcnv4_status dcn_op_backward_workspace_size(const dcn_op_call *call,
                                            size_t *bytes) {
  *bytes = 0;
  if (call->deterministic) {
    if (!call->det_fits)
      return DCNV4_ERROR_SIZE_OVERFLOW;
    *bytes = call->det.bytes;
    return DCNV4_SUCCESS;
  }
  if (call->dtype != DCNV4_FLOAT32 &&
      !dcn_bytes(call->image.elements, sizeof(cl_float), bytes))
    return DCNV4_ERROR_SIZE_OVERFLOW;
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_op_check_forward_buffers(dcnv4_context *ctx,
                                          const dcn_op_call *call, cl_mem image,
                                          cl_mem sampling, cl_mem output) {
  const dcn_op_names *n = call->names;
  const cl_mem bufs[] = {image, sampling, output};
  const char *const names[] = {n->image, n->sampling, "output"};
  const bool readonly[] = {true, true, false};
  dcnv4_status st;
  if ((st = dcn_check_no_alias(ctx, bufs, names, readonly, 3)) ||
      (st = dcn_check_buffer(ctx, image, n->image, call->image.bytes)) ||
      (st = dcn_check_buffer(ctx, sampling, n->sampling,
                             call->sampling.bytes)) ||
      (st = dcn_check_buffer(ctx, output, "output", call->output.bytes)))
    return st;
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_op_check_backward_buffers(dcnv4_context *ctx,
                                           const dcn_op_call *call,
                                           const dcn_op_backward_buffers *b) {
  if (!b)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "buffers is NULL");
  const dcn_op_names *n = call->names;
  const cl_mem bufs[] = {b->image,      b->sampling,      b->grad_output,
                         b->grad_image, b->grad_sampling, b->workspace};
  const char *const names[] = {n->image,      n->sampling,      "grad_output",
                               n->grad_image, n->grad_sampling, "workspace"};
  const bool readonly[] = {true, true, true, false, false, false};
  dcnv4_status st;
  if ((st = dcn_check_no_alias(ctx, bufs, names, readonly, 6)) ||
      (st = dcn_check_buffer(ctx, b->image, n->image, call->image.bytes)) ||
      (st = dcn_check_buffer(ctx, b->sampling, n->sampling,
                             call->sampling.bytes)) ||
      (st = dcn_check_buffer(ctx, b->grad_output, "grad_output",
                             call->output.bytes)) ||
      (st = dcn_check_buffer(ctx, b->grad_image, n->grad_image,
                             call->image.bytes)) ||
      (st = dcn_check_buffer(ctx, b->grad_sampling, n->grad_sampling,
                             call->sampling.bytes)))
    return st;
  return DCNV4_SUCCESS;
}

/* ---------------------------------------------- the backward with atomics */

/* Configurations a backward tries (dcn_tuning_candidates: tuned, default)
 * and the atomics variants of each (dcn_atomics_options: at most three). */
#define MAX_CONFIGS 2
#define MAX_ATOMICS 3

dcnv4_status dcn_op_build_atomics(dcnv4_context *ctx, const char *program,
                                  const char *kernel_name,
                                  const char (*base)[DCN_OPTIONS_MAX],
                                  int count, cl_kernel *kernel, int *config,
                                  char *chosen) {
  char options[MAX_CONFIGS * MAX_ATOMICS][DCN_OPTIONS_MAX];
  const char *list[MAX_CONFIGS * MAX_ATOMICS];
  int tries = 0, per_config[MAX_CONFIGS] = {0, 0}, index = 0;
  if (count > MAX_CONFIGS)
    count = MAX_CONFIGS;
  for (int c = 0; c < count; c++) {
    dcn_atomics_options(ctx, base[c], options + tries, &per_config[c]);
    tries += per_config[c];
  }
  for (int i = 0; i < tries; i++)
    list[i] = options[i];
  dcnv4_status st = dcn_get_kernel_first(ctx, program, list, tries, kernel_name,
                                         kernel, &index);
  if (st != DCNV4_SUCCESS)
    return st;
  *config = index >= per_config[0] ? 1 : 0;
  snprintf(chosen, DCN_OPTIONS_MAX, "%s", list[index]);
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_op_accumulator_bind(dcnv4_context *ctx,
                                     const dcn_op_call *call,
                                     const dcn_op_backward_buffers *b,
                                     dcn_op_accumulator *acc) {
  acc->direct = call->dtype == DCNV4_FLOAT32;
  acc->buffer = b->grad_image;
  acc->bytes = call->image.bytes;
  if (acc->direct)
    return DCNV4_SUCCESS;
  (void)dcn_bytes(call->image.elements, sizeof(cl_float), &acc->bytes);
  return dcn_workspace(ctx, b->workspace, acc->bytes, &acc->buffer);
}

static dcnv4_status enqueue_launch(dcnv4_context *ctx, const dcn_op_launch *l,
                                   cl_uint num_wait, const cl_event *wait,
                                   cl_event *event) {
  if (l->dims == 0)
    return dcn_enqueue_1d(ctx, l->kernel, l->items, l->items_local, num_wait,
                          wait, event, l->name);
  return dcn_enqueue_nd(ctx, l->kernel, l->dims, l->global, l->local, num_wait,
                        wait, event, l->name);
}

/* Elements per work-item of convert_from_float (convert.cl): 32-byte fp32
 * loads and 16-byte 16-bit stores. */
#define CONVERT_VEC 8

dcnv4_status dcn_op_accumulate(dcnv4_context *ctx, const dcn_op_call *call,
                               const dcn_op_backward_buffers *b,
                               const dcn_op_accumulator *acc,
                               const dcn_op_launch *scatter, cl_uint num_wait,
                               const cl_event *wait, cl_event *event) {
  dcnv4_status st;
  cl_kernel convert = NULL;
  dcn_zero zero;
  if ((st = dcn_zero_prepare(ctx, &zero)))
    return st;
  if (!acc->direct) {
    char options[64];
    snprintf(options, sizeof options, "-DDTYPE=%d -DIDX64=%d -DVEC=%d",
             (int)call->dtype, call->idx64 ? 1 : 0, CONVERT_VEC);
    if ((st = dcn_get_kernel(ctx, "convert", options, "convert_from_float",
                             &convert)))
      return st;
    dcn_index_arg count;
    const dcn_arg args[] = {
        DCN_ARG(acc->buffer), DCN_ARG(b->grad_image),
        dcn_index_arg_make(&count, call->idx64, call->image.elements)};
    if ((st = dcn_set_args(ctx, convert, args, 3, "convert_from_float")))
      return st;
  }
  /* Everything is validated and built: enqueue zero, scatter, convert. */
  if ((st = dcn_enqueue_zero(ctx, &zero, acc->buffer, acc->bytes, num_wait,
                             wait, NULL)) ||
      (st = enqueue_launch(ctx, scatter, 0, NULL, acc->direct ? event : NULL)))
    return st;
  if (acc->direct)
    return DCNV4_SUCCESS;
  return dcn_enqueue_1d(ctx, convert,
                        (call->image.elements + CONVERT_VEC - 1) / CONVERT_VEC,
                        256, 0, NULL, event, "convert_from_float");
}

/* ---------------------------------------------- the deterministic backward */

dcnv4_status dcn_op_det_workspace(dcnv4_context *ctx, const dcn_op_call *call,
                                  const dcn_op_backward_buffers *b,
                                  cl_mem *workspace) {
  *workspace = NULL;
  if (!call->det_fits)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "the deterministic backward's workspace would exceed "
                    "2^31-1 words (%s too large); use the default mode",
                    call->names->det_too_large);
  return dcn_workspace(ctx, b->workspace, call->det.bytes, workspace);
}

dcnv4_status dcn_op_det_run(dcnv4_context *ctx, const dcn_op_call *call,
                            const dcn_op_backward_buffers *b, cl_mem ws,
                            const dcn_op_det_launch *l, cl_uint num_wait,
                            const cl_event *wait, cl_event *event) {
  const dcn_op_names *n = call->names;
  const dcn_det_plan *p = &call->det;
  cl_kernel points, gather;
  dcn_det_kernels det;
  dcn_zero zero;
  dcnv4_status st;
  if ((st = dcn_zero_prepare(ctx, &zero)) ||
      (st = dcn_get_kernel(ctx, n->det_program, l->options, n->det_points,
                           &points)) ||
      (st = dcn_get_kernel(ctx, n->det_program, l->options, n->det_gather,
                           &gather)) ||
      (st = dcn_det_prepare(ctx, ws, p, &det)))
    return st;
  const uint64_t rows = call->output.elements / (uint64_t)call->group_channels;
  const uint64_t chunks = call->image.elements / (uint64_t)l->vec;
  dcn_index_arg rows_arg, chunks_arg;
  dcn_arg pargs[12] = {
      DCN_ARG(b->image),         DCN_ARG(b->sampling), DCN_ARG(b->grad_output),
      DCN_ARG(b->grad_sampling), l->geometry,          DCN_ARG(ws),
      DCN_ARG(p->off_count),     DCN_ARG(p->off_key),  DCN_ARG(p->off_m),
      DCN_ARG(p->off_record)};
  dcn_arg gargs[10] = {DCN_ARG(b->sampling),
                       DCN_ARG(b->grad_output),
                       DCN_ARG(b->grad_image),
                       l->geometry,
                       DCN_ARG(ws),
                       DCN_ARG(p->off_offset),
                       DCN_ARG(p->off_m),
                       DCN_ARG(p->off_record)};
  size_t np = 10, ng = 8;
  if (l->extra) {
    pargs[np++] = *l->extra;
    gargs[ng++] = *l->extra;
  }
  pargs[np++] = dcn_index_arg_make(&rows_arg, call->idx64, rows);
  gargs[ng++] = dcn_index_arg_make(&chunks_arg, call->idx64, chunks);
  if ((st = dcn_set_args(ctx, points, pargs, np, n->det_points)) ||
      (st = dcn_set_args(ctx, gather, gargs, ng, n->det_gather)))
    return st;
  /* Everything is validated and built: zero the counts, then the steps. */
  if ((st = dcn_enqueue_zero(ctx, &zero, ws, (size_t)p->buckets * 4, num_wait,
                             wait, NULL)) ||
      (st = dcn_enqueue_1d(ctx, points, rows, l->local, 0, NULL, NULL,
                           n->det_points)) ||
      (st = dcn_det_enqueue_buckets(ctx, &det, p, l->local)))
    return st;
  return dcn_enqueue_1d(ctx, gather, chunks, l->local, 0, NULL, event,
                        n->det_gather);
}
