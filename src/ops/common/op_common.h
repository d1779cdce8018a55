/* The skeleton of the two core operators (dcnv4_op.c, fda_op.c): what their
 * calls share once the parameters are validated.
 *
 * Both sample an image tensor (DCNv4: input; FlashDeformAttn: value) at
 * points that a sampling tensor (offset_mask; sampling_loc_attn) gives per
 * output row. Both backwards scatter into the image's gradient, either with
 * float atomics into an fp32 accumulator (the gradient itself for fp32
 * storage, else the workspace, converted at the end) or without any
 * (deterministic.h). An operator keeps what differs in substance: its
 * parameters and shapes, its geometry argument, program options, tuning and
 * work-group plans. */
#ifndef DCNV4_OP_COMMON_H
#define DCNV4_OP_COMMON_H

#include "ops/common/deterministic.h"

/* ------------------------------------------------------- index arguments */

/* A kernel argument of the kernel's index type (IDX64: cl_long, else
 * cl_int); the storage must live until the argument is set. */
typedef union dcn_index_arg {
  cl_int i32;
  cl_long i64;
} dcn_index_arg;

dcn_arg dcn_index_arg_make(dcn_index_arg *storage, bool idx64, uint64_t value);

/* Whether 32-bit signed indices fall short: some of the `count` tensors has
 * 2^31 elements or more. */
bool dcn_needs_idx64(const uint64_t *elements, size_t count);

/* ------------------------------------------------------ a validated call */

/* An operator's names, for messages and its deterministic program. */
typedef struct dcn_op_names {
  const char *image, *sampling, *grad_image, *grad_sampling;
  const char *det_program, *det_points, *det_gather;
  /* What grows too large when the deterministic workspace overflows. */
  const char *det_too_large;
} dcn_op_names;

/* One tensor of a call, in the storage dtype. */
typedef struct dcn_op_tensor {
  uint64_t elements;
  size_t bytes;
} dcn_op_tensor;

typedef struct dcn_op_call {
  const dcn_op_names *names;
  dcnv4_dtype dtype;
  int32_t group_channels;
  bool deterministic;
  dcn_op_tensor image, sampling, output;
  bool idx64;    /* dcn_needs_idx64 of the three tensors */
  bool det_fits; /* `det` is laid out (at most 2^31 - 1 words) */
  dcn_det_plan det;
} dcn_op_call;

/* Fills a call (det_fits false: the operator lays out `det`). */
void dcn_op_call_init(dcn_op_call *call, const dcn_op_names *names,
                      dcnv4_dtype dtype, int32_t group_channels,
                      bool deterministic, dcn_op_tensor image,
                      dcn_op_tensor sampling, dcn_op_tensor output);

/* ---------------------------------------------------------- parameters */

/* A parameter field and its least value. */
typedef struct dcn_op_field {
  const char *name;
  int32_t value, min;
} dcn_op_field;

/* The checks every parameter set starts with (once it is not NULL): its
 * dtype known, each field at least its least value. */
dcnv4_status dcn_op_check_fields(dcnv4_context *ctx, dcnv4_dtype dtype,
                                 const dcn_op_field *fields, size_t count);
/* A switch field: 0 or 1. */
dcnv4_status dcn_op_check_flag(dcnv4_context *ctx, const char *name,
                               int32_t value);
/* The check_params calls: `st` with the message the blank context
 * `scratch` collected ("" on success) copied into `message`. */
dcnv4_status dcn_op_message(const dcnv4_context *scratch, dcnv4_status st,
                            char *message, size_t message_size);

/* The backward's workspace: the deterministic plan's bytes, else an fp32
 * copy of the image gradient for 16-bit storage (0 for fp32). */
dcnv4_status dcn_op_backward_workspace_size(const dcn_op_call *call,
                                            size_t *bytes);

/* ------------------------------------------------------------- buffers */

/* The forward's buffers: no output aliasing an input, each large enough. */
dcnv4_status dcn_op_check_forward_buffers(dcnv4_context *ctx,
                                          const dcn_op_call *call, cl_mem image,
                                          cl_mem sampling, cl_mem output);

typedef struct dcn_op_backward_buffers {
  cl_mem image, sampling, grad_output, grad_image, grad_sampling, workspace;
} dcn_op_backward_buffers;

/* The backward's: the same, the workspace among the outputs (its size is
 * checked where it is used); `b` NULL: the caller gave none. */
dcnv4_status dcn_op_check_backward_buffers(dcnv4_context *ctx,
                                           const dcn_op_call *call,
                                           const dcn_op_backward_buffers *b);

/* ---------------------------------------------- the backward with atomics */

/* Builds the first that compiles of the float-atomics variants
 * (dcn_atomics_options) of each of the `count` base option strings, in
 * order. *config receives the index of the base that built, `chosen` (of
 * DCN_OPTIONS_MAX bytes) the options of the build. */
dcnv4_status dcn_op_build_atomics(dcnv4_context *ctx, const char *program,
                                  const char *kernel_name,
                                  const char (*base)[DCN_OPTIONS_MAX],
                                  int count, cl_kernel *kernel, int *config,
                                  char *chosen);

/* Where the scatter kernel adds the image gradient. */
typedef struct dcn_op_accumulator {
  bool direct;   /* fp32 storage: the gradient itself */
  cl_mem buffer; /* fp32, zeroed before the scatter */
  size_t bytes;
} dcn_op_accumulator;

/* Binds the accumulator (the workspace, checked, for 16-bit storage). */
dcnv4_status dcn_op_accumulator_bind(dcnv4_context *ctx,
                                     const dcn_op_call *call,
                                     const dcn_op_backward_buffers *b,
                                     dcn_op_accumulator *acc);

/* A kernel launch: 1-D over `items` in work-groups of `items_local` when
 * `dims` is 0, else the NDRange global/local of `dims` dimensions. */
typedef struct dcn_op_launch {
  cl_kernel kernel;
  const char *name;
  cl_uint dims;
  uint64_t items;
  size_t items_local;
  size_t global[3], local[3];
} dcn_op_launch;

/* The tail of the backward with atomics, its scatter kernel's arguments
 * set: builds the conversion (16-bit storage), then enqueues zero,
 * scatter and conversion; `event` goes to the last. */
dcnv4_status dcn_op_accumulate(dcnv4_context *ctx, const dcn_op_call *call,
                               const dcn_op_backward_buffers *b,
                               const dcn_op_accumulator *acc,
                               const dcn_op_launch *scatter, cl_uint num_wait,
                               const cl_event *wait, cl_event *event);

/* ---------------------------------------------- the deterministic backward */

/* Checks that the plan fits and binds the workspace. */
dcnv4_status dcn_op_det_workspace(dcnv4_context *ctx, const dcn_op_call *call,
                                  const dcn_op_backward_buffers *b,
                                  cl_mem *workspace);

/* The operator's part of a deterministic backward. Its points kernel takes
 * (image, sampling, grad_output, grad_sampling, geometry, workspace, count,
 * key, m, record offsets[, extra], rows), its gather kernel (sampling,
 * grad_output, grad_image, geometry, workspace, offset, m, record
 * offsets[, extra], chunks). */
typedef struct dcn_op_det_launch {
  const char *options; /* of the operator's deterministic program */
  int vec;             /* channels per gather work-item */
  size_t local;        /* work-group size of every step */
  dcn_arg geometry;
  const dcn_arg *extra; /* FlashDeformAttn: buckets per head; or NULL */
} dcn_op_det_launch;

/* Builds the kernels, sets their arguments, then enqueues the steps of
 * deterministic.h; `event` goes to the last. */
dcnv4_status dcn_op_det_run(dcnv4_context *ctx, const dcn_op_call *call,
                            const dcn_op_backward_buffers *b, cl_mem ws,
                            const dcn_op_det_launch *l, cl_uint num_wait,
                            const cl_event *wait, cl_event *event);

#endif /* DCNV4_OP_COMMON_H */
