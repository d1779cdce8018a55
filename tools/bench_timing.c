#include "bench_timing.h"

#include <stdio.h>
#include <stdlib.h>

/* Nanoseconds between two profiling times of events a and b, or -1 where
 * either is unavailable (a queue without profiling) or b is before a. */
static double nanoseconds(cl_event a, cl_profiling_info at, cl_event b,
                          cl_profiling_info bt) {
  cl_ulong ta = 0, tb = 0;
  if (clGetEventProfilingInfo(a, at, sizeof ta, &ta, NULL) != CL_SUCCESS ||
      clGetEventProfilingInfo(b, bt, sizeof tb, &tb, NULL) != CL_SUCCESS ||
      tb < ta)
    return -1;
  return (double)(tb - ta);
}

double event_ms(cl_event e) {
  const double ns =
      nanoseconds(e, CL_PROFILING_COMMAND_START, e, CL_PROFILING_COMMAND_END);
  return ns < 0 ? -1 : 1e-6 * ns;
}

double span_ms(cl_event before, cl_event after) {
  const double ns = nanoseconds(before, CL_PROFILING_COMMAND_END, after,
                                CL_PROFILING_COMMAND_END);
  return ns < 0 ? -1 : 1e-6 * ns;
}

/* A marker that waits for `wait` (NULL: for nothing). */
static cl_event enqueue_marker_after(dcnv4_context *ctx, cl_event wait) {
  cl_event e = NULL;
  if (clEnqueueMarkerWithWaitList(dcnv4_context_queue(ctx), wait ? 1 : 0,
                                  wait ? &wait : NULL, &e) != CL_SUCCESS)
    return NULL;
  return e;
}

cl_event enqueue_marker(dcnv4_context *ctx) {
  return enqueue_marker_after(ctx, NULL);
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

static dcnv4_status launch_empty(dcnv4_context *ctx, int set, void *arg,
                                 cl_event *end) {
  (void)set;
  const size_t one = 1;
  return clEnqueueNDRangeKernel(dcnv4_context_queue(ctx), (cl_kernel)arg, 1,
                                NULL, &one, &one, 0, NULL, end) == CL_SUCCESS
             ? DCNV4_SUCCESS
             : DCNV4_ERROR_OPENCL;
}

double launch_floor_ms(dcnv4_context *ctx, int reps) {
  static const char *source = "__kernel void empty_kernel(void) {}\n";
  cl_device_id dev = dcnv4_context_device(ctx);
  cl_int err;
  cl_program program = clCreateProgramWithSource(dcnv4_context_cl_context(ctx),
                                                 1, &source, NULL, &err);
  cl_kernel kernel = NULL;
  if (program && clBuildProgram(program, 1, &dev, "", NULL, NULL) == CL_SUCCESS)
    kernel = clCreateKernel(program, "empty_kernel", &err);
  const double m =
      kernel && reps > 0
          ? time_launches(ctx, reps, 1, TIME_OWN_EVENT, launch_empty, kernel)
          : -1;
  if (kernel)
    clReleaseKernel(kernel);
  if (program)
    clReleaseProgram(program);
  return m;
}

double time_launches(dcnv4_context *ctx, int reps, int nsets,
                     timing_method method, launch_fn launch, void *arg) {
  const int warm = 3, total = reps + warm;
  double *ms = malloc(sizeof *ms * (size_t)reps);
  cl_event *marks = calloc((size_t)total, sizeof *marks);
  cl_event *ends = calloc((size_t)total, sizeof *ends);
  /* What failed, printed once at the end (NULL: nothing). */
  const char *failed = ms && marks && ends ? NULL : "out of host memory";
  /* Back to back: the first marker waits for `gate`, and the in-order queue
   * holds every command behind it until all are enqueued. */
  cl_event gate = NULL;
  if (!failed && method == TIME_BACK_TO_BACK) {
    cl_int err;
    gate = clCreateUserEvent(dcnv4_context_cl_context(ctx), &err);
    if (!gate)
      failed = "cannot create a user event";
  }
  for (int i = 0; i < total && !failed; i++) {
    marks[i] =
        i == 0 && gate ? enqueue_marker_after(ctx, gate) : enqueue_marker(ctx);
    if (!marks[i])
      failed = "cannot enqueue a marker";
    else if (launch(ctx, i % nsets, arg, &ends[i]) != DCNV4_SUCCESS ||
             !ends[i]) {
      const char *why = dcnv4_context_last_error(ctx);
      failed = why && *why ? why : "a launch failed";
    }
  }
  if (gate) { /* released whatever happened, or clFinish would wait on it */
    clSetUserEventStatus(gate, CL_COMPLETE);
    clReleaseEvent(gate);
  }
  clFinish(dcnv4_context_queue(ctx));
  for (int i = 0; i < reps && !failed; i++) {
    int k = i + warm;
    ms[i] = method == TIME_OWN_EVENT     ? event_ms(ends[k])
            : method == TIME_FROM_MARKER ? span_ms(marks[k], ends[k])
                                         : span_ms(ends[k - 1], ends[k]);
    if (ms[i] < 0)
      failed = "no profiling times (a queue without profiling)";
  }
  for (int i = 0; marks && ends && i < total; i++) {
    if (marks[i])
      clReleaseEvent(marks[i]);
    if (ends[i])
      clReleaseEvent(ends[i]);
  }
  double m = failed ? -1 : median(ms, reps);
  if (failed)
    fprintf(stderr, "cannot time the launches: %s\n", failed);
  free(ms);
  free(marks);
  free(ends);
  return m;
}
