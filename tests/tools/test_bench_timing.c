/* tools/bench_timing.c's time_launches, which every benchmark row and the
 * 16-bit GEMM tuner time with: a launch of two commands (a long fill, then
 * a 4-byte one, as a GEMM split along K is its parts, then the reduction)
 * timed from the marker, or back to back (the GEMM rows), must count the
 * first command; back to back, nothing runs before every launch is
 * enqueued; a failing launch gives -1 (and releases a held queue). A row timed
 * by its last command alone read the reduction of split GEMMs as the whole GEMM
 * (perf-notes §39). And launch_floor_ms, the empty kernel's time: above 0,
 * below the 64 MiB fill's, and -1 where the queue keeps no profiling times. */
#include "bench_timing.h"

#include "test_util.h"

#include <stdlib.h>

#define REPS 5
#define WARM 3 /* time_launches' warm-up launches */

typedef struct two_commands {
  cl_mem big, small;
  size_t big_bytes;
  cl_event first[REPS + WARM];
  int launches;
  int fail_at; /* the launch that fails (-1: none) */
  /* The first launch's fill's execution status when the last launch was
   * enqueued (CL_QUEUED .. CL_COMPLETE). */
  cl_int first_status_at_last;
} two_commands;

static dcnv4_status launch_two(dcnv4_context *ctx, int set, void *arg,
                               cl_event *end) {
  (void)set;
  two_commands *t = arg;
  cl_command_queue q = dcnv4_context_queue(ctx);
  const cl_uint zero = 0;
  if (t->launches == t->fail_at)
    return DCNV4_ERROR_OPENCL;
  cl_event *first = &t->first[t->launches++];
  if (clEnqueueFillBuffer(q, t->big, &zero, sizeof zero, 0, t->big_bytes, 0,
                          NULL, first) != CL_SUCCESS ||
      clEnqueueFillBuffer(q, t->small, &zero, sizeof zero, 0, sizeof zero, 0,
                          NULL, end) != CL_SUCCESS)
    return DCNV4_ERROR_OPENCL;
  if (t->launches == REPS + WARM)
    clGetEventInfo(t->first[0], CL_EVENT_COMMAND_EXECUTION_STATUS,
                   sizeof(cl_int), &t->first_status_at_last, NULL);
  return DCNV4_SUCCESS;
}

static void release_events(two_commands *t) {
  for (int i = 0; i < t->launches; i++)
    clReleaseEvent(t->first[i]);
  t->launches = 0;
}

/* Median ms of the timed launches' first commands (the 64 MiB fills). */
static double first_commands_ms(const two_commands *t) {
  double ms[REPS];
  if (t->launches != REPS + WARM)
    return -1;
  for (int i = 0; i < REPS; i++)
    ms[i] = event_ms(t->first[i + WARM]);
  return median(ms, REPS);
}

/* A launch that fails: -1, the launches before it released, and (back to
 * back) the held queue released: no hang. */
static void check_failed_launch(dcnv4_context *ctx, two_commands *t,
                                timing_method method) {
  t->fail_at = WARM + 1;
  CHECK(time_launches(ctx, REPS, 1, method, launch_two, t) == -1,
        "a failed launch was timed (method %d)", (int)method);
  CHECK(t->launches == WARM + 1, "%d launches after the failure (method %d)",
        t->launches, (int)method);
  release_events(t);
  t->fail_at = -1;
}

int main(void) {
  dcnv4_context *ctx = test_profiling_context();
  two_commands t = {0};
  t.big_bytes = (size_t)64 << 20;
  t.fail_at = -1;
  cl_int err;
  t.big = clCreateBuffer(dcnv4_context_cl_context(ctx), CL_MEM_READ_WRITE,
                         t.big_bytes, NULL, &err);
  t.small = clCreateBuffer(dcnv4_context_cl_context(ctx), CL_MEM_READ_WRITE,
                           sizeof(cl_uint), NULL, &err);
  CHECK(t.big && t.small, "buffers: %d", err);

  /* From the marker: each launch's span covers its first command, so the
   * median span is at least the median of the first commands' times. */
  const double span =
      time_launches(ctx, REPS, 1, TIME_FROM_MARKER, launch_two, &t);
  CHECK(t.launches == REPS + WARM, "%d launches", t.launches);
  const double first = first_commands_ms(&t);
  CHECK(first > 0, "the 64 MiB fill took %g ms", first);
  CHECK(span >= first, "span %g ms < its first command's %g ms", span, first);
  printf("two commands: span %.3f ms, first command %.3f ms\n", span, first);
  release_events(&t);

  check_failed_launch(ctx, &t, TIME_FROM_MARKER);

  /* Back to back: nothing runs before the last launch is enqueued (the
   * first fill is still waiting then), and each launch's time, from the
   * previous launch's end to its own, covers its fill. */
  const double chained =
      time_launches(ctx, REPS, 1, TIME_BACK_TO_BACK, launch_two, &t);
  CHECK(t.launches == REPS + WARM, "%d launches", t.launches);
  CHECK(t.first_status_at_last == CL_QUEUED ||
            t.first_status_at_last == CL_SUBMITTED,
        "the first launch ran (status %d) before the last was enqueued",
        (int)t.first_status_at_last);
  const double chained_first = first_commands_ms(&t);
  /* 0.9: a runtime may stamp a command's START before the previous one's
   * END (Intel's CPU runtime does, by a few per cent). */
  CHECK(chained >= 0.9 * chained_first, "back to back %g ms < the fill's %g ms",
        chained, chained_first);
  printf("two commands back to back: %.3f ms, first command %.3f ms\n", chained,
         chained_first);
  release_events(&t);
  check_failed_launch(ctx, &t, TIME_BACK_TO_BACK);

  /* The launch floor: an empty kernel takes longer than nothing and less
   * than writing 64 MiB. */
  const double floor_ms = launch_floor_ms(ctx, REPS);
  CHECK(floor_ms > 0 && floor_ms < first,
        "launch floor %g ms (the 64 MiB fill %g ms)", floor_ms, first);
  printf("launch floor: %.4f ms\n", floor_ms);
  CHECK(launch_floor_ms(ctx, 0) == -1, "a floor of no launches");

  clReleaseMemObject(t.big);
  clReleaseMemObject(t.small);
  dcnv4_context_destroy(ctx);

  /* Without profiling the events have no times: -1. */
  dcnv4_context *plain = test_context();
  CHECK(launch_floor_ms(plain, REPS) == -1, "a floor without profiling");
  dcnv4_context_destroy(plain);
  return test_finish("test_bench_timing");
}
