/* Buffer checks, kernel arguments, enqueues and context-managed scratch. */
#include "core/fault.h"
#include "tuning/tuning.h"

#include <string.h>

dcnv4_status dcn_check_buffer(dcnv4_context *ctx, cl_mem buffer,
                              const char *name, size_t bytes) {
  if (!buffer)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "%s is NULL", name);
  size_t size = 0;
  cl_context owner = NULL;
  cl_mem_object_type type = 0;
  if (clGetMemObjectInfo(buffer, CL_MEM_TYPE, sizeof type, &type, NULL) !=
          CL_SUCCESS ||
      clGetMemObjectInfo(buffer, CL_MEM_SIZE, sizeof size, &size, NULL) !=
          CL_SUCCESS ||
      clGetMemObjectInfo(buffer, CL_MEM_CONTEXT, sizeof owner, &owner, NULL) !=
          CL_SUCCESS)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                    "%s is not a valid OpenCL memory object", name);
  if (type != CL_MEM_OBJECT_BUFFER)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER, "%s is not a buffer",
                    name);
  if (owner != ctx->cl_ctx)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                    "%s belongs to another OpenCL context", name);
  if (size < bytes)
    return dcn_fail(ctx, DCNV4_ERROR_BUFFER_TOO_SMALL,
                    "%s holds %zu bytes but the shape needs %zu", name, size,
                    bytes);
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_check_no_alias(dcnv4_context *ctx, const cl_mem *buffers,
                                const char *const *names, const bool *readonly,
                                size_t count) {
  for (size_t i = 0; i < count; i++)
    for (size_t j = i + 1; j < count; j++)
      if (buffers[i] && buffers[i] == buffers[j] &&
          !(readonly[i] && readonly[j]))
        return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                        "%s and %s are the same buffer; outputs must not "
                        "overlap other arguments",
                        names[i], names[j]);
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_check_wait_list(dcnv4_context *ctx, cl_uint count,
                                 const cl_event *list) {
  if (count > 0 && !list)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER,
                    "event_wait_list is NULL but num_events_in_wait_list is "
                    "%u",
                    (unsigned)count);
  if (count == 0 && list)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "event_wait_list is given but num_events_in_wait_list is "
                    "0");
  for (cl_uint i = 0; i < count; i++) {
    cl_context owner = NULL;
    if (!list[i] || clGetEventInfo(list[i], CL_EVENT_CONTEXT, sizeof owner,
                                   &owner, NULL) != CL_SUCCESS)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                      "event_wait_list[%u] is not a valid event", (unsigned)i);
    if (owner != ctx->cl_ctx)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                      "event_wait_list[%u] belongs to another context",
                      (unsigned)i);
  }
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_set_args(dcnv4_context *ctx, cl_kernel kernel,
                          const dcn_arg *args, size_t count, const char *what) {
  for (size_t i = 0; i < count; i++) {
    cl_int err =
        dcn_clSetKernelArg(kernel, (cl_uint)i, args[i].size, args[i].value);
    if (err != CL_SUCCESS)
      return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                      "clSetKernelArg(%s, %zu) failed: %s", what, i,
                      dcn_cl_error_name(err));
  }
  return DCNV4_SUCCESS;
}

size_t dcn_kernel_item_limit(const dcnv4_context *ctx, cl_kernel kernel,
                             size_t limit) {
  size_t kernel_limit = 0;
  if (clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                               sizeof kernel_limit, &kernel_limit,
                               NULL) == CL_SUCCESS &&
      kernel_limit > 0 && kernel_limit < limit)
    return kernel_limit;
  return limit;
}

dcnv4_status dcn_enqueue_1d(dcnv4_context *ctx, cl_kernel kernel,
                            uint64_t items, size_t local, cl_uint num_wait,
                            const cl_event *wait, cl_event *event,
                            const char *what) {
  /* The kernel may allow fewer work-items per group than the device (its
   * registers); halve the requested size until it fits. */
  size_t limit = dcn_kernel_item_limit(ctx, kernel, ctx->max_work_group_size);
  if (local == 0)
    local = 64;
  while (local > limit && local > 1)
    local /= 2;
  uint64_t groups = (items + local - 1) / local;
  uint64_t global64 = groups * local;
  if (global64 == 0)
    global64 = local;
  if ((ctx->address_bits < 64 && global64 > 0xffffffffull) ||
      global64 > (uint64_t)SIZE_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "%s needs %llu work-items, more than the device's %u-bit "
                    "address space allows",
                    what, (unsigned long long)global64,
                    (unsigned)ctx->address_bits);
  size_t global = (size_t)global64;
  cl_int err = dcn_clEnqueueNDRangeKernel(ctx->queue, kernel, 1, &global,
                                          &local, num_wait, wait, event);
  if (err != CL_SUCCESS)
    return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                    "enqueueing %s (%zu work-items in groups of %zu) failed: "
                    "%s",
                    what, global, local, dcn_cl_error_name(err));
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_enqueue_nd(dcnv4_context *ctx, cl_kernel kernel, cl_uint dims,
                            const size_t *global, const size_t *local,
                            cl_uint num_wait, const cl_event *wait,
                            cl_event *event, const char *what) {
  cl_int err = dcn_clEnqueueNDRangeKernel(ctx->queue, kernel, dims, global,
                                          local, num_wait, wait, event);
  if (err != CL_SUCCESS)
    return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                    "enqueueing %s (%zu x %zu x %zu in groups of %zu x %zu x "
                    "%zu) failed: %s",
                    what, global[0], dims > 1 ? global[1] : 1,
                    dims > 2 ? global[2] : 1, local[0], dims > 1 ? local[1] : 1,
                    dims > 2 ? local[2] : 1, dcn_cl_error_name(err));
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_zero_prepare(dcnv4_context *ctx, dcn_zero *zero) {
  const dcn_zero_tuning t = dcn_tuning_zero(ctx);
  zero->kernel = NULL;
  zero->local = t.local_size;
  if (!t.kernel)
    return DCNV4_SUCCESS;
  return dcn_get_kernel(ctx, "zero", "", "zero_words", &zero->kernel);
}

dcnv4_status dcn_enqueue_zero(dcnv4_context *ctx, const dcn_zero *zero,
                              cl_mem buffer, size_t bytes, cl_uint num_wait,
                              const cl_event *wait, cl_event *event) {
  if (zero->kernel && bytes % 4 == 0) {
    const cl_ulong words = bytes / 4;
    const dcn_arg args[] = {DCN_ARG(buffer), DCN_ARG(words)};
    dcnv4_status st = dcn_set_args(ctx, zero->kernel, args, 2, "zero_words");
    if (st == DCNV4_SUCCESS)
      st = dcn_enqueue_1d(ctx, zero->kernel, (words + 3) / 4, zero->local,
                          num_wait, wait, event, "zero_words");
    return st;
  }
  const cl_uint value = 0;
  /* Fill in 4-byte words where possible; every size used here is even. */
  size_t pattern = bytes % 4 == 0 ? 4 : bytes % 2 == 0 ? 2 : 1;
  cl_int err = dcn_clEnqueueFillBuffer(ctx->queue, buffer, &value, pattern, 0,
                                       bytes, num_wait, wait, event);
  return err == CL_SUCCESS ? DCNV4_SUCCESS
                           : dcn_fail_cl(ctx, err, "clEnqueueFillBuffer");
}

dcnv4_status dcn_workspace(dcnv4_context *ctx, cl_mem user, size_t bytes,
                           cl_mem *out) {
  if (user) {
    dcnv4_status st = dcn_check_buffer(ctx, user, "workspace", bytes);
    if (st == DCNV4_SUCCESS)
      *out = user;
    return st;
  }
  if (ctx->scratch_bytes < bytes) {
    cl_int err;
    cl_mem grown =
        dcn_clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (!grown)
      return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                      "allocating %zu bytes of scratch memory failed: %s",
                      bytes, dcn_cl_error_name(err));
    /* The old buffer lives on until commands already using it finish. */
    if (ctx->scratch)
      clReleaseMemObject(ctx->scratch);
    ctx->scratch = grown;
    ctx->scratch_bytes = bytes;
  }
  *out = ctx->scratch;
  return DCNV4_SUCCESS;
}
