/* Small OpenCL helpers for the tools, tests and benchmark. */
#ifndef DCNV4_CL_HOST_H
#define DCNV4_CL_HOST_H

#include "dcnv4.h"

/* A read-write buffer of `bytes`, filled from `data` when non-NULL. NULL on
 * failure. */
cl_mem host_buffer(dcnv4_context *ctx, size_t bytes, const void *data);
/* Blocking read of `bytes` from the start of `buffer`; 0 on success. */
int host_read(dcnv4_context *ctx, cl_mem buffer, void *data, size_t bytes);
/* Reads `count` elements of `dtype` into a new float array (free it), or
 * NULL when the read or an allocation fails. */
float *host_download_floats(dcnv4_context *ctx, cl_mem buffer, uint64_t count,
                            dcnv4_dtype dtype);
/* Blocking write; 0 on success. */
int host_write(dcnv4_context *ctx, cl_mem buffer, const void *data,
               size_t bytes);
/* Releases a buffer if non-NULL. */
void host_release(cl_mem buffer);

#endif
