/* Timing with OpenCL profiling events. */
#ifndef DCNV4_BENCH_TIMING_H
#define DCNV4_BENCH_TIMING_H

#include "dcnv4.h"

/* Duration of one command in milliseconds (START to END). */
double event_ms(cl_event e);
/* From the end of `before` (a marker) to the end of `after`. */
double span_ms(cl_event before, cl_event after);
/* A marker on the context's queue (its event), or NULL. */
cl_event enqueue_marker(dcnv4_context *ctx);

double median(double *v, int n);

/* Copy bandwidth of the device (bytes read + written per second), measured
 * with clEnqueueCopyBuffer on `bytes`-sized buffers, median of `reps`. */
double copy_bandwidth(dcnv4_context *ctx, size_t bytes, int reps);

#endif
