/* Timing with OpenCL profiling events. */
#ifndef DCNV4_BENCH_TIMING_H
#define DCNV4_BENCH_TIMING_H

#include "dcnv4.h"

/* Duration of one command in milliseconds (START to END); -1 where the
 * event has no profiling times. */
double event_ms(cl_event e);
/* From the end of `before` (a marker, or the previous launch's last
 * command) to the end of `after`; -1 as event_ms. */
double span_ms(cl_event before, cl_event after);
/* A marker on the context's queue (its event), or NULL. */
cl_event enqueue_marker(dcnv4_context *ctx);

double median(double *v, int n);

/* Enqueues one launch on input set `set`, its last command's event in *end. */
typedef dcnv4_status (*launch_fn)(dcnv4_context *ctx, int set, void *arg,
                                  cl_event *end);

/* How time_launches times one launch. */
typedef enum timing_method {
  /* A launch of one command, by its own event (START to END): the kernel
   * alone, as torch.profiler times a CUDA kernel. */
  TIME_OWN_EVENT,
  /* From a marker enqueued before the launch to the end of its last
   * command: every command of the launch and the gaps between them. */
  TIME_FROM_MARKER,
  /* Every launch enqueued before the device starts any (the queue is held
   * by a user event until then), each timed from the end of the previous
   * launch's last command to the end of its own: launches back to back, as
   * bench/anchor/gemm_anchor.py times torch.matmul behind a spin kernel. */
  TIME_BACK_TO_BACK
} timing_method;

/* Median ms of `reps` launches after 3 warm-up ones, cycling through `nsets`
 * input sets, timed by `method` (on an in-order queue). -1 if a launch
 * failed or its events have no profiling times (the reason is printed). */
double time_launches(dcnv4_context *ctx, int reps, int nsets,
                     timing_method method, launch_fn launch, void *arg);

/* Copy bandwidth of the device (bytes read + written per second), measured
 * with clEnqueueCopyBuffer on `bytes`-sized buffers, median of `reps`. */
double copy_bandwidth(dcnv4_context *ctx, size_t bytes, int reps);

/* The launch floor: time_launches of an empty kernel of one work-item,
 * each launch timed by its own event, as a one-kernel row is. What a row of a
 * few microseconds measures beside its work; bench/anchor/op_anchor.py times an
 * empty CUDA kernel the way it times theirs. -1 if the kernel cannot be built
 * or timed. */
double launch_floor_ms(dcnv4_context *ctx, int reps);

#endif
