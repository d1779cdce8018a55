/* FlashDeformAttn rows of the benchmark: Deformable DETR's encoder (B=2,
 * Q=20000, levels 100x134, 50x67, 25x34, 13x17, 8 heads of 32 channels,
 * 4 points) and its decoder (Q=900 and 300 on the same levels), forward and
 * backward. CPU devices get one image and a tenth of the encoder's
 * queries. */
#include "bench.h"
#include "bench_timing.h"
#include "cl_host.h"
#include "fda_problem.h"
#include "host_dtype.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fda_tensors {
  cl_mem value, sampling, out, grad_out, grad_value, grad_sampling;
} fda_tensors;

typedef struct fda_launch {
  const dcnv4_fda_params *p;
  fda_tensors *sets;
} fda_launch;

static dcnv4_status launch_forward(dcnv4_context *ctx, int set, void *arg,
                                   cl_event *end) {
  fda_launch *l = arg;
  fda_tensors *t = &l->sets[set];
  return dcnv4_fda_forward(ctx, l->p, t->value, t->sampling, t->out, 0, NULL,
                           end);
}

static dcnv4_status launch_backward(dcnv4_context *ctx, int set, void *arg,
                                    cl_event *end) {
  fda_launch *l = arg;
  fda_tensors *t = &l->sets[set];
  dcnv4_fda_backward_buffers b = {t->value,      t->sampling,      t->grad_out,
                                  t->grad_value, t->grad_sampling, NULL};
  return dcnv4_fda_backward(ctx, l->p, &b, 0, NULL, end);
}

/* The same heads, channels, levels and points on small levels. */
static double verify(dcnv4_context *ctx, const dcnv4_fda_params *big) {
  dcnv4_fda_params p = *big;
  static const int32_t small[4][2] = {{6, 7}, {3, 4}, {2, 2}, {1, 1}};
  p.batch = 1;
  p.queries = 40;
  p.value_len = 0;
  for (int l = 0; l < p.levels; l++) {
    p.spatial_shapes[l][0] = small[l][0];
    p.spatial_shapes[l][1] = small[l][1];
    p.level_start[l] = p.value_len;
    p.value_len += small[l][0] * small[l][1];
  }
  rng r = {4321};
  fda_problem pr;
  fda_problem_init(&pr, &p, &r, 0.05);
  fda_errors e;
  double worst = INFINITY;
  if (fda_problem_run(ctx, &pr, 1, &e) == 0)
    worst = fmax(e.output, fmax(e.grad_value, e.grad_sampling));
  fda_problem_free(&pr);
  return worst;
}

/* Random inputs in the storage dtype: values in [-1, 1], locations inside
 * the levels, logits N(0, 1). */
static int fill(dcnv4_context *ctx, const dcnv4_fda_params *p,
                const dcnv4_fda_shape *s, fda_tensors *t, rng *r) {
  uint64_t most = s->value_elements > s->sampling_elements
                      ? s->value_elements
                      : s->sampling_elements;
  if (s->output_elements > most)
    most = s->output_elements;
  float *v = malloc(sizeof(float) * most);
  void *packed = malloc(dcnv4_dtype_size(p->dtype) * most);
  memset(t, 0, sizeof *t);
  int ok = v && packed;
  for (uint64_t i = 0; ok && i < s->value_elements; i++)
    v[i] = (float)rng_uniform(r, -1, 1);
  if (ok) {
    pack_dtype(v, packed, s->value_elements, p->dtype);
    t->value = host_buffer(ctx, s->value_bytes, packed);
  }
  const int lk = p->levels * p->points;
  for (uint64_t i = 0; ok && i < s->sampling_elements; i++) {
    int lane = (int)(i % (uint64_t)s->sampling_stride);
    v[i] = lane < 2 * lk ? (float)rng_uniform(r, 0, 1) : (float)rng_normal(r);
  }
  if (ok) {
    pack_dtype(v, packed, s->sampling_elements, p->dtype);
    t->sampling = host_buffer(ctx, s->sampling_bytes, packed);
    for (uint64_t i = 0; i < s->output_elements; i++)
      v[i] = (float)rng_uniform(r, -1, 1);
    pack_dtype(v, packed, s->output_elements, p->dtype);
    t->grad_out = host_buffer(ctx, s->output_bytes, packed);
    t->out = host_buffer(ctx, s->output_bytes, NULL);
    t->grad_value = host_buffer(ctx, s->value_bytes, NULL);
    t->grad_sampling = host_buffer(ctx, s->sampling_bytes, NULL);
  }
  free(v);
  free(packed);
  return ok && t->value && t->sampling && t->grad_out && t->out &&
         t->grad_value && t->grad_sampling;
}

static void release(fda_tensors *t) {
  cl_mem all[] = {t->value,    t->sampling,   t->out,
                  t->grad_out, t->grad_value, t->grad_sampling};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    host_release(all[i]);
}

static void bench_queries(dcnv4_context *ctx, const options *o,
                          dcnv4_dtype dtype, int batch, int queries,
                          results *res) {
  static const int32_t levels[4][2] = {
      {100, 134}, {50, 67}, {25, 34}, {13, 17}};
  dcnv4_fda_params p;
  dcnv4_fda_params_init(&p);
  p.batch = batch;
  p.queries = queries;
  p.group = 8;
  p.group_channels = 32;
  p.levels = 4;
  p.points = 4;
  p.dtype = dtype;
  for (int l = 0; l < 4; l++) {
    p.spatial_shapes[l][0] = levels[l][0];
    p.spatial_shapes[l][1] = levels[l][1];
    p.level_start[l] = p.value_len;
    p.value_len += levels[l][0] * levels[l][1];
  }
  dcnv4_fda_shape s;
  if (dcnv4_fda_get_shape(&p, &s) != DCNV4_SUCCESS)
    return;
  double err = verify(ctx, &p);
  double fwd_bytes =
      (double)(s.value_bytes + s.sampling_bytes + s.output_bytes);
  double bwd_bytes =
      (double)(2 * s.value_bytes + 2 * s.sampling_bytes + s.output_bytes);
  int nsets = input_sets(ctx, fwd_bytes + bwd_bytes);
  fda_tensors *sets = calloc((size_t)nsets, sizeof *sets);
  rng r = {77};
  int ok = sets != NULL;
  for (int i = 0; i < nsets && ok; i++)
    ok = fill(ctx, &p, &s, &sets[i], &r);
  double fwd_ms = -1, bwd_ms = -1;
  if (ok) {
    fda_launch l = {&p, sets};
    /* The forward is one kernel, timed by its own event as the DCNv4
     * forward's rows are (the anchors' kernel-only column is the same
     * measure); the backward from a marker: zeroing, scatter, conversion. */
    fwd_ms =
        time_launches(ctx, o->reps, nsets, TIME_OWN_EVENT, launch_forward, &l);
    if (o->backward)
      bwd_ms = time_launches(ctx, o->reps, nsets, TIME_FROM_MARKER,
                             launch_backward, &l);
  } else
    fprintf(stderr, "cannot allocate the FlashDeformAttn inputs\n");
  for (int i = 0; sets && i < nsets; i++)
    release(&sets[i]);
  free(sets);
  char shape_text[40];
  snprintf(shape_text, sizeof shape_text, "%dx%dx4lvl", p.batch, p.queries);
  measurement rows[] = {
      {"forward", "fda-detr", shape_text, "8x32", dtype, fwd_ms, fwd_bytes, err,
       nsets, o->reps},
      {"backward", "fda-detr", shape_text, "8x32", dtype, bwd_ms, bwd_bytes,
       err, nsets, o->reps},
      {"forward+backward", "fda-detr", shape_text, "8x32", dtype,
       fwd_ms + bwd_ms, fwd_bytes + bwd_bytes, err, nsets, o->reps},
  };
  for (size_t i = 0; i < (o->backward ? 3u : 1u); i++)
    record_row(res, &rows[i]);
}

void bench_fda(dcnv4_context *ctx, const options *o, dcnv4_dtype dtype,
               int is_gpu, results *res) {
  /* The encoder's queries (one per value pixel), then the decoder's:
   * Deformable DETR's 300 object queries and DINO's 900. */
  static const int gpu_queries[] = {20000, 900, 300};
  static const int cpu_queries[] = {2000, 300};
  int full = is_gpu || o->full_size;
  const int *q = full ? gpu_queries : cpu_queries;
  size_t n = full ? sizeof gpu_queries / sizeof gpu_queries[0]
                  : sizeof cpu_queries / sizeof cpu_queries[0];
  if (o->nqueries) { /* --queries */
    q = o->queries;
    n = (size_t)o->nqueries;
  }
  for (size_t i = 0; i < n; i++)
    bench_queries(ctx, o, dtype, full ? 2 : 1, q[i], res);
}
