/* Status strings, per-context error messages and DCNV4_LOG output. */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *dcnv4_status_string(dcnv4_status status) {
  switch (status) {
  case DCNV4_SUCCESS: return "success";
  case DCNV4_ERROR_NULL_POINTER: return "null pointer";
  case DCNV4_ERROR_INVALID_PARAMETER: return "invalid parameter";
  case DCNV4_ERROR_INVALID_SHAPE: return "invalid shape";
  case DCNV4_ERROR_SIZE_OVERFLOW: return "size overflow";
  case DCNV4_ERROR_BUFFER_TOO_SMALL: return "buffer too small";
  case DCNV4_ERROR_INVALID_BUFFER: return "invalid buffer";
  case DCNV4_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
  case DCNV4_ERROR_DEVICE_NOT_FOUND: return "device not found";
  case DCNV4_ERROR_UNSUPPORTED: return "unsupported";
  case DCNV4_ERROR_BUILD_FAILED: return "kernel build failed";
  case DCNV4_ERROR_OPENCL: return "OpenCL error";
  case DCNV4_ERROR_IO: return "input/output error";
  case DCNV4_ERROR_INVALID_FILE: return "invalid file";
  case DCNV4_ERROR_MISSING_WEIGHT: return "missing weight";
  case DCNV4_ERROR_INVALID_WEIGHT: return "invalid weight";
  }
  return "unknown status";
}

const char *dcn_cl_error_name(cl_int err) {
  switch (err) {
#define NAME(x)                                                                \
  case x: return #x
    NAME(CL_SUCCESS);
    NAME(CL_DEVICE_NOT_FOUND);
    NAME(CL_DEVICE_NOT_AVAILABLE);
    NAME(CL_COMPILER_NOT_AVAILABLE);
    NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE);
    NAME(CL_OUT_OF_RESOURCES);
    NAME(CL_OUT_OF_HOST_MEMORY);
    NAME(CL_PROFILING_INFO_NOT_AVAILABLE);
    NAME(CL_BUILD_PROGRAM_FAILURE);
    NAME(CL_MAP_FAILURE);
    NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET);
    NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
    NAME(CL_INVALID_VALUE);
    NAME(CL_INVALID_DEVICE_TYPE);
    NAME(CL_INVALID_PLATFORM);
    NAME(CL_INVALID_DEVICE);
    NAME(CL_INVALID_CONTEXT);
    NAME(CL_INVALID_QUEUE_PROPERTIES);
    NAME(CL_INVALID_COMMAND_QUEUE);
    NAME(CL_INVALID_MEM_OBJECT);
    NAME(CL_INVALID_BINARY);
    NAME(CL_INVALID_BUILD_OPTIONS);
    NAME(CL_INVALID_PROGRAM);
    NAME(CL_INVALID_PROGRAM_EXECUTABLE);
    NAME(CL_INVALID_KERNEL_NAME);
    NAME(CL_INVALID_KERNEL);
    NAME(CL_INVALID_ARG_INDEX);
    NAME(CL_INVALID_ARG_VALUE);
    NAME(CL_INVALID_ARG_SIZE);
    NAME(CL_INVALID_KERNEL_ARGS);
    NAME(CL_INVALID_WORK_DIMENSION);
    NAME(CL_INVALID_WORK_GROUP_SIZE);
    NAME(CL_INVALID_WORK_ITEM_SIZE);
    NAME(CL_INVALID_GLOBAL_OFFSET);
    NAME(CL_INVALID_EVENT_WAIT_LIST);
    NAME(CL_INVALID_EVENT);
    NAME(CL_INVALID_OPERATION);
    NAME(CL_INVALID_BUFFER_SIZE);
    NAME(CL_INVALID_GLOBAL_WORK_SIZE);
#undef NAME
  default: return "unknown OpenCL error";
  }
}

static void set_message(dcnv4_context *ctx, const char *log, const char *fmt,
                        va_list ap) {
  if (!ctx)
    return;
  vsnprintf(ctx->error_fixed, sizeof ctx->error_fixed, fmt, ap);
  dcn_free(ctx->error_dynamic);
  ctx->error_dynamic = NULL;
  if (log && *log) {
    /* Keep the whole compiler log; fall back to the short message if the
     * allocation fails. */
    ctx->error_dynamic = dcn_asprintf("%s\n%s", ctx->error_fixed, log);
  }
  dcn_log(ctx, DCN_LOG_INFO, "error: %s", ctx->error_fixed);
}

dcnv4_status dcn_fail(dcnv4_context *ctx, dcnv4_status status, const char *fmt,
                      ...) {
  va_list ap;
  va_start(ap, fmt);
  set_message(ctx, NULL, fmt, ap);
  va_end(ap);
  return status;
}

dcnv4_status dcn_fail_with_log(dcnv4_context *ctx, dcnv4_status status,
                               const char *log, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_message(ctx, log, fmt, ap);
  va_end(ap);
  return status;
}

dcnv4_status dcn_fail_cl(dcnv4_context *ctx, cl_int err, const char *what) {
  dcnv4_status status = err == CL_OUT_OF_HOST_MEMORY
                            ? DCNV4_ERROR_OUT_OF_HOST_MEMORY
                            : DCNV4_ERROR_OPENCL;
  return dcn_fail(ctx, status, "%s failed: %s (%d)", what,
                  dcn_cl_error_name(err), (int)err);
}

const char *dcnv4_context_last_error(const dcnv4_context *ctx) {
  if (!ctx)
    return "no context";
  return ctx->error_dynamic ? ctx->error_dynamic : ctx->error_fixed;
}

dcn_log_level dcn_log_level_from_env(void) {
  const char *v = getenv("DCNV4_LOG");
  if (!v || !*v)
    return DCN_LOG_OFF;
  if (strcasecmp(v, "debug") == 0 || strcmp(v, "2") == 0)
    return DCN_LOG_DEBUG;
  if (strcasecmp(v, "info") == 0 || strcmp(v, "1") == 0)
    return DCN_LOG_INFO;
  return DCN_LOG_OFF;
}

void dcn_log(const dcnv4_context *ctx, dcn_log_level level, const char *fmt,
             ...) {
  dcn_log_level enabled = ctx ? ctx->log_level : dcn_log_level_from_env();
  if (level == DCN_LOG_OFF || enabled < level)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* Printing is what DCNV4_LOG asked for; nothing prints otherwise. */
  fprintf(stderr, "[dcnv4] %s\n", line);
}
