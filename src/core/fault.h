/* Fault-injection seam. In a build with DCNV4_FAULT_INJECTION defined, every
 * host allocation and the OpenCL calls below can be made to fail at their
 * n-th occurrence (see fault.c); otherwise the wrappers are the plain calls. */
#ifndef DCNV4_FAULT_H
#define DCNV4_FAULT_H

#include "core/internal.h"

#ifdef DCNV4_FAULT_INJECTION
/* The test controls, exported by fault-injection builds (see fault.c). */
DCNV4_API void dcnv4_test_fault_set(long fail_at);
DCNV4_API long dcnv4_test_fault_count(void);
DCNV4_API const char *dcnv4_test_fault_site(void);
/* True when the call at `site` must fail now (counts every call). */
bool dcn_fault_hit(const char *site);
#define DCN_FAULT(site) dcn_fault_hit(site)
#else
#define DCN_FAULT(site) false
#endif

static inline cl_mem dcn_clCreateBuffer(cl_context c, cl_mem_flags flags,
                                        size_t size, void *host, cl_int *err) {
  if (DCN_FAULT("clCreateBuffer")) {
    *err = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    return NULL;
  }
  return clCreateBuffer(c, flags, size, host, err);
}

static inline cl_program
dcn_clCreateProgramWithSource(cl_context c, cl_uint count, const char **strings,
                              const size_t *lengths, cl_int *err) {
  if (DCN_FAULT("clCreateProgramWithSource")) {
    *err = CL_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  return clCreateProgramWithSource(c, count, strings, lengths, err);
}

static inline cl_program
dcn_clCreateProgramWithBinary(cl_context c, cl_device_id device, size_t size,
                              const unsigned char *binary,
                              cl_int *binary_status, cl_int *err) {
  if (DCN_FAULT("clCreateProgramWithBinary")) {
    *err = CL_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  return clCreateProgramWithBinary(c, 1, &device, &size, &binary, binary_status,
                                   err);
}

static inline cl_int dcn_clBuildProgram(cl_program p, cl_device_id device,
                                        const char *options) {
  if (DCN_FAULT("clBuildProgram"))
    return CL_OUT_OF_RESOURCES;
  return clBuildProgram(p, 1, &device, options, NULL, NULL);
}

static inline cl_kernel dcn_clCreateKernel(cl_program p, const char *name,
                                           cl_int *err) {
  if (DCN_FAULT("clCreateKernel")) {
    *err = CL_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  return clCreateKernel(p, name, err);
}

static inline cl_int dcn_clSetKernelArg(cl_kernel k, cl_uint index, size_t size,
                                        const void *value) {
  if (DCN_FAULT("clSetKernelArg"))
    return CL_OUT_OF_RESOURCES;
  return clSetKernelArg(k, index, size, value);
}

static inline cl_int
dcn_clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dims,
                           const size_t *global, const size_t *local,
                           cl_uint num_wait, const cl_event *wait,
                           cl_event *event) {
  if (DCN_FAULT("clEnqueueNDRangeKernel"))
    return CL_OUT_OF_RESOURCES;
  return clEnqueueNDRangeKernel(q, k, dims, NULL, global, local, num_wait, wait,
                                event);
}

static inline cl_int dcn_clEnqueueFillBuffer(cl_command_queue q, cl_mem buffer,
                                             const void *pattern,
                                             size_t pattern_size, size_t offset,
                                             size_t size, cl_uint num_wait,
                                             const cl_event *wait,
                                             cl_event *event) {
  if (DCN_FAULT("clEnqueueFillBuffer"))
    return CL_OUT_OF_RESOURCES;
  return clEnqueueFillBuffer(q, buffer, pattern, pattern_size, offset, size,
                             num_wait, wait, event);
}

static inline cl_int dcn_clEnqueueWriteBuffer(cl_command_queue q, cl_mem buffer,
                                              cl_bool blocking, size_t offset,
                                              size_t size, const void *data,
                                              cl_uint num_wait,
                                              const cl_event *wait,
                                              cl_event *event) {
  if (DCN_FAULT("clEnqueueWriteBuffer"))
    return CL_OUT_OF_RESOURCES;
  return clEnqueueWriteBuffer(q, buffer, blocking, offset, size, data, num_wait,
                              wait, event);
}

static inline cl_int dcn_clEnqueueReadBuffer(cl_command_queue q, cl_mem buffer,
                                             cl_bool blocking, size_t offset,
                                             size_t size, void *data,
                                             cl_uint num_wait,
                                             const cl_event *wait,
                                             cl_event *event) {
  if (DCN_FAULT("clEnqueueReadBuffer"))
    return CL_OUT_OF_RESOURCES;
  return clEnqueueReadBuffer(q, buffer, blocking, offset, size, data, num_wait,
                             wait, event);
}

static inline cl_mem dcn_clCreateSubBuffer(cl_mem buffer, cl_mem_flags flags,
                                           cl_buffer_create_type type,
                                           const void *info, cl_int *err) {
  if (DCN_FAULT("clCreateSubBuffer")) {
    *err = CL_OUT_OF_RESOURCES;
    return NULL;
  }
  return clCreateSubBuffer(buffer, flags, type, info, err);
}

static inline cl_int dcn_clEnqueueBarrierWithWaitList(cl_command_queue q,
                                                      cl_uint num_wait,
                                                      const cl_event *wait,
                                                      cl_event *event) {
  if (DCN_FAULT("clEnqueueBarrierWithWaitList"))
    return CL_OUT_OF_RESOURCES;
  return clEnqueueBarrierWithWaitList(q, num_wait, wait, event);
}

static inline cl_int dcn_clGetPlatformIDs(cl_uint count, cl_platform_id *out,
                                          cl_uint *available) {
  if (DCN_FAULT("clGetPlatformIDs"))
    return CL_OUT_OF_HOST_MEMORY;
  return clGetPlatformIDs(count, out, available);
}

static inline cl_int dcn_clGetDeviceIDs(cl_platform_id platform,
                                        cl_device_type type, cl_uint count,
                                        cl_device_id *out, cl_uint *available) {
  if (DCN_FAULT("clGetDeviceIDs"))
    return CL_OUT_OF_HOST_MEMORY;
  return clGetDeviceIDs(platform, type, count, out, available);
}

static inline cl_context dcn_clCreateContext(const cl_context_properties *props,
                                             cl_device_id device, cl_int *err) {
  if (DCN_FAULT("clCreateContext")) {
    *err = CL_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  return clCreateContext(props, 1, &device, NULL, NULL, err);
}

static inline cl_command_queue
dcn_clCreateCommandQueue(cl_context c, cl_device_id device,
                         cl_command_queue_properties props, cl_int *err) {
  if (DCN_FAULT("clCreateCommandQueue")) {
    *err = CL_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  return clCreateCommandQueue(c, device, props, err);
}

static inline cl_int dcn_clGetProgramInfo(cl_program p, cl_program_info what,
                                          size_t size, void *value,
                                          size_t *size_ret) {
  if (DCN_FAULT("clGetProgramInfo"))
    return CL_OUT_OF_HOST_MEMORY;
  return clGetProgramInfo(p, what, size, value, size_ret);
}

static inline cl_int dcn_clFinish(cl_command_queue q) {
  if (DCN_FAULT("clFinish"))
    return CL_OUT_OF_RESOURCES;
  return clFinish(q);
}

#endif /* DCNV4_FAULT_H */
