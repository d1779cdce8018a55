/* DCNv4 layer rows of the benchmark: the PyTorch module's forward (value
 * projection, offset/mask projection, the core operator, output projection;
 * PyTorch's defaults otherwise) on the paper's shapes. Minimum bytes: the
 * input and the output, once each. The anchor (PyTorch's module with the
 * CUDA operator) is bench/anchor/op_anchor.py's. */
#include "bench.h"
#include "bench_timing.h"
#include "cl_host.h"
#include "host_dtype.h"
#include "reference.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WEIGHTS 16

/* Random weights of a layer, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), rounded to
 * the layer's dtype, set on the layer and kept as doubles for the
 * reference. Returns the number of weights, or -1. */
static int set_weights(dcnv4_layer *layer, dcnv4_dtype dtype, rng *r,
                       ref_weight *w, double **store) {
  size_t count = dcnv4_layer_weight_count(layer);
  if (count > MAX_WEIGHTS)
    return -1;
  for (size_t i = 0; i < count; i++) {
    dcnv4_weight_info info;
    if (dcnv4_layer_weight_info(layer, i, &info) != DCNV4_SUCCESS)
      return -1;
    uint64_t fan_in = info.ndim > 1 ? info.elements / (uint64_t)info.shape[0]
                                    : (uint64_t)info.shape[0];
    double bound = 1.0 / sqrt((double)fan_in);
    float *v = malloc(sizeof(float) * info.elements);
    void *packed = malloc(4 * info.elements);
    store[i] = malloc(sizeof(double) * info.elements);
    if (!v || !packed || !store[i]) {
      free(v);
      free(packed);
      return -1;
    }
    for (uint64_t e = 0; e < info.elements; e++)
      v[e] = (float)rng_uniform(r, -bound, bound);
    pack_dtype(v, packed, info.elements, dtype);
    unpack_dtype(packed, v, info.elements, dtype);
    for (uint64_t e = 0; e < info.elements; e++)
      store[i][e] = v[e];
    w[i].key = info.key;
    w[i].data = store[i];
    dcnv4_status st =
        dcnv4_layer_set_weight(layer, info.key, v, info.shape, info.ndim);
    free(v);
    free(packed);
    if (st != DCNV4_SUCCESS)
      return -1;
  }
  return (int)count;
}

cl_mem bench_random_input(dcnv4_context *ctx, dcnv4_dtype dtype, size_t n,
                          rng *r, double *exact) {
  /* (+1: no malloc(0)) */
  float *v = malloc(n * sizeof *v + 1);
  void *packed = malloc(n * dcnv4_dtype_size(dtype) + 1);
  cl_mem m = NULL;
  if (v && packed) {
    for (size_t i = 0; i < n; i++)
      v[i] = (float)rng_uniform(r, -1, 1);
    pack_dtype(v, packed, n, dtype);
    m = host_buffer(ctx, n * dcnv4_dtype_size(dtype), packed);
    if (exact) {
      unpack_dtype(packed, v, n, dtype);
      for (size_t i = 0; i < n; i++)
        exact[i] = v[i];
    }
  }
  free(v);
  free(packed);
  return m;
}

/* The layer on a 9x11 image against the float64 reference. */
static double verify(dcnv4_context *ctx, dcnv4_layer *layer,
                     const dcnv4_layer_dcnv4_config *c, dcnv4_dtype dtype,
                     const ref_weight *w, int count) {
  const int H = 9, W = 11;
  size_t n = (size_t)H * W * (size_t)c->channels;
  double *in = malloc(sizeof(double) * n), *ref = malloc(sizeof(double) * n);
  float *got = malloc(sizeof(float) * n);
  void *raw = malloc(4 * n);
  rng r = {99};
  double err = INFINITY;
  cl_mem input = in ? bench_random_input(ctx, dtype, n, &r, in) : NULL;
  cl_mem output = host_buffer(ctx, n * dcnv4_dtype_size(dtype), NULL);
  if (input && output && ref && got && raw &&
      ref_dcnv4_layer_forward(c, 1, H, W, w, (size_t)count, in, ref) == 0 &&
      dcnv4_layer_dcnv4_forward(layer, 1, H, W, input, output, NULL, 0, NULL,
                                NULL) == DCNV4_SUCCESS &&
      host_read(ctx, output, raw, n * dcnv4_dtype_size(dtype)) == 0) {
    unpack_dtype(raw, got, n, dtype);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
      num += (got[i] - ref[i]) * (got[i] - ref[i]);
      den += ref[i] * ref[i];
    }
    err = den > 0 ? sqrt(num / den) : INFINITY;
  }
  host_release(input);
  host_release(output);
  free(in);
  free(ref);
  free(got);
  free(raw);
  return err;
}

typedef struct layer_launch {
  dcnv4_layer *layer;
  int n, h, w;
  cl_mem *in, out;
} layer_launch;

static dcnv4_status launch_layer(dcnv4_context *ctx, int set, void *arg,
                                 cl_event *end) {
  (void)ctx;
  layer_launch *l = arg;
  return dcnv4_layer_dcnv4_forward(l->layer, l->n, l->h, l->w, l->in[set],
                                   l->out, NULL, 0, NULL, end);
}

void bench_dcnv4_layer(dcnv4_context *ctx, const options *o, const shape *s,
                       int d, dcnv4_dtype dtype, results *res) {
  dcnv4_layer_dcnv4_config c;
  dcnv4_layer_dcnv4_config_init(&c);
  c.channels = s->c;
  c.group = s->c / d;
  dcnv4_layer *layer = NULL;
  ref_weight w[MAX_WEIGHTS];
  double *store[MAX_WEIGHTS] = {NULL};
  rng r = {(uint64_t)(s->h * 7 + d)};
  int count = -1;
  if (dcnv4_layer_dcnv4_create(ctx, &c, dtype, &layer) == DCNV4_SUCCESS)
    count = set_weights(layer, dtype, &r, w, store);
  double err = count > 0 ? verify(ctx, layer, &c, dtype, w, count) : INFINITY;
  size_t n = (size_t)s->n * (size_t)s->h * (size_t)s->w * (size_t)s->c;
  double bytes = 2.0 * (double)n * (double)dcnv4_dtype_size(dtype);
  int nsets = input_sets(ctx, bytes);
  cl_mem *inputs = calloc((size_t)nsets, sizeof *inputs);
  cl_mem output = host_buffer(ctx, n * dcnv4_dtype_size(dtype), NULL);
  int ok = count > 0 && inputs && output;
  for (int i = 0; i < nsets && ok; i++)
    ok = (inputs[i] = bench_random_input(ctx, dtype, n, &r, NULL)) != NULL;
  double ms = -1;
  if (ok) {
    layer_launch l = {layer, s->n, s->h, s->w, inputs, output};
    ms = time_launches(ctx, o->reps, nsets, TIME_FROM_MARKER, launch_layer, &l);
  } else
    fprintf(stderr, "DCNv4 layer %dx%dx%dx%d: cannot set up (%s)\n", s->n, s->h,
            s->w, s->c, dcnv4_context_last_error(ctx));
  for (int i = 0; inputs && i < nsets; i++)
    host_release(inputs[i]);
  free(inputs);
  host_release(output);
  for (int i = 0; i < MAX_WEIGHTS; i++)
    free(store[i]);
  dcnv4_layer_destroy(layer);
  char shape_text[40], config[16];
  snprintf(shape_text, sizeof shape_text, "%dx%dx%dx%d", s->n, s->h, s->w,
           s->c);
  snprintf(config, sizeof config, "%dx%d", c.group, d);
  measurement m = {"layer forward", s->set, shape_text, config, dtype, ms,
                   bytes,           err,    nsets,      o->reps};
  record_row(res, &m);
}
