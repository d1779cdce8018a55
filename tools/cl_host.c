#include "cl_host.h"
#include "host_dtype.h"

#include <stdlib.h>

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

float *host_download_floats(dcnv4_context *ctx, cl_mem buffer, uint64_t count,
                            dcnv4_dtype dtype) {
  size_t esize = dcnv4_dtype_size(dtype);
  void *raw = malloc(count * esize + 1);
  float *out = malloc(count * sizeof *out + 1);
  if (!raw || !out || host_read(ctx, buffer, raw, count * esize) != 0) {
    free(raw);
    free(out);
    return NULL;
  }
  unpack_dtype(raw, out, (size_t)count, dtype);
  free(raw);
  return out;
}
