#include "cl_host.h"

cl_mem host_buffer(dcnv4_context *ctx, size_t bytes, const void *data) {
  cl_int err;
  cl_mem m = clCreateBuffer(dcnv4_context_cl_context(ctx), CL_MEM_READ_WRITE,
                            bytes ? bytes : 1, NULL, &err);
  if (!m)
    return NULL;
  if (data && bytes && host_write(ctx, m, data, bytes) != 0) {
    clReleaseMemObject(m);
    return NULL;
  }
  return m;
}

int host_read(dcnv4_context *ctx, cl_mem buffer, void *data, size_t bytes) {
  return clEnqueueReadBuffer(dcnv4_context_queue(ctx), buffer, CL_TRUE, 0,
                             bytes, data, 0, NULL, NULL) == CL_SUCCESS
             ? 0
             : -1;
}

int host_write(dcnv4_context *ctx, cl_mem buffer, const void *data,
               size_t bytes) {
  return clEnqueueWriteBuffer(dcnv4_context_queue(ctx), buffer, CL_TRUE, 0,
                              bytes, data, 0, NULL, NULL) == CL_SUCCESS
             ? 0
             : -1;
}

void host_release(cl_mem buffer) {
  if (buffer)
    clReleaseMemObject(buffer);
}
