#include "bench_timing.h"

#include <stdio.h>
#include <stdlib.h>

static cl_ulong profile(cl_event e, cl_profiling_info what) {
  cl_ulong t = 0;
  clGetEventProfilingInfo(e, what, sizeof t, &t, NULL);
  return t;
}

double event_ms(cl_event e) {
  return 1e-6 * (double)(profile(e, CL_PROFILING_COMMAND_END) -
                         profile(e, CL_PROFILING_COMMAND_START));
}

double span_ms(cl_event before, cl_event after) {
  return 1e-6 * (double)(profile(after, CL_PROFILING_COMMAND_END) -
                         profile(before, CL_PROFILING_COMMAND_END));
}

cl_event enqueue_marker(dcnv4_context *ctx) {
  cl_event e = NULL;
  if (clEnqueueMarkerWithWaitList(dcnv4_context_queue(ctx), 0, NULL, &e) !=
      CL_SUCCESS)
    return NULL;
  return e;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double median(double *v, int n) {
  if (n <= 0)
    return 0;
  qsort(v, (size_t)n, sizeof *v, compare_doubles);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double copy_bandwidth(dcnv4_context *ctx, size_t bytes, int reps) {
  cl_int err;
  cl_context c = dcnv4_context_cl_context(ctx);
  cl_command_queue q = dcnv4_context_queue(ctx);
  cl_mem a = clCreateBuffer(c, CL_MEM_READ_WRITE, bytes, NULL, &err);
  cl_mem b = clCreateBuffer(c, CL_MEM_READ_WRITE, bytes, NULL, &err);
  double result = 0;
  if (a && b) {
    const cl_uint pattern = 0x3f800000u;
    clEnqueueFillBuffer(q, a, &pattern, 4, 0, bytes, 0, NULL, NULL);
    clEnqueueFillBuffer(q, b, &pattern, 4, 0, bytes, 0, NULL, NULL);
    double *ms = malloc(sizeof *ms * (size_t)reps);
    for (int i = -2; i < reps; i++) { /* two warm-up copies */
      cl_event e;
      clEnqueueCopyBuffer(q, i % 2 ? a : b, i % 2 ? b : a, 0, 0, bytes, 0, NULL,
                          &e);
      clWaitForEvents(1, &e);
      if (i >= 0)
        ms[i] = event_ms(e);
      clReleaseEvent(e);
    }
    double m = median(ms, reps);
    result = m > 0 ? 2.0 * (double)bytes / (m * 1e-3) : 0;
    free(ms);
  }
  if (a)
    clReleaseMemObject(a);
  if (b)
    clReleaseMemObject(b);
  return result;
}

double launch_floor_ms(dcnv4_context *ctx, int reps) {
  static const char *source = "__kernel void empty_kernel(void) {}\n";
  cl_context c = dcnv4_context_cl_context(ctx);
  cl_device_id dev = dcnv4_context_device(ctx);
  cl_command_queue q = dcnv4_context_queue(ctx);
  cl_int err;
  cl_program program = clCreateProgramWithSource(c, 1, &source, NULL, &err);
  cl_kernel kernel = NULL;
  if (program && clBuildProgram(program, 1, &dev, "", NULL, NULL) == CL_SUCCESS)
    kernel = clCreateKernel(program, "empty_kernel", &err);
  const int warm = 3, total = reps + warm;
  double *ms = malloc(sizeof *ms * (size_t)(reps > 0 ? reps : 1));
  cl_event *ends = calloc((size_t)(total > 0 ? total : 1), sizeof *ends);
  int ok = kernel && ms && ends && reps > 0;
  const size_t one = 1;
  for (int i = 0; i < total && ok; i++)
    ok = clEnqueueNDRangeKernel(q, kernel, 1, NULL, &one, &one, 0, NULL,
                                &ends[i]) == CL_SUCCESS;
  clFinish(q);
  for (int i = 0; i < reps && ok; i++) {
    cl_ulong start = 0, end = 0;
    ok = clGetEventProfilingInfo(ends[i + warm], CL_PROFILING_COMMAND_START,
                                 sizeof start, &start, NULL) == CL_SUCCESS &&
         clGetEventProfilingInfo(ends[i + warm], CL_PROFILING_COMMAND_END,
                                 sizeof end, &end, NULL) == CL_SUCCESS &&
         end >= start;
    if (ok)
      ms[i] = 1e-6 * (double)(end - start);
  }
  for (int i = 0; ends && i < total; i++)
    if (ends[i])
      clReleaseEvent(ends[i]);
  const double m = ok ? median(ms, reps) : -1;
  free(ms);
  free(ends);
  if (kernel)
    clReleaseKernel(kernel);
  if (program)
    clReleaseProgram(program);
  return m;
}

double time_launches(dcnv4_context *ctx, int reps, int nsets, int single,
                     launch_fn launch, void *arg) {
  const int warm = 3, total = reps + warm;
  double *ms = malloc(sizeof *ms * (size_t)reps);
  cl_event *marks = calloc((size_t)total, sizeof *marks);
  cl_event *ends = calloc((size_t)total, sizeof *ends);
  int ok = ms && marks && ends;
  for (int i = 0; i < total && ok; i++) {
    marks[i] = enqueue_marker(ctx);
    ok = launch(ctx, i % nsets, arg, &ends[i]) == DCNV4_SUCCESS && ends[i];
  }
  clFinish(dcnv4_context_queue(ctx));
  for (int i = 0; i < reps && ok; i++) {
    int k = i + warm;
    ms[i] = single ? event_ms(ends[k]) : span_ms(marks[k], ends[k]);
  }
  for (int i = 0; marks && ends && i < total; i++) {
    if (marks[i])
      clReleaseEvent(marks[i]);
    if (ends[i])
      clReleaseEvent(ends[i]);
  }
  double m = ok ? median(ms, reps) : -1;
  if (!ok)
    fprintf(stderr, "launch failed: %s\n", dcnv4_context_last_error(ctx));
  free(ms);
  free(marks);
  free(ends);
  return m;
}
