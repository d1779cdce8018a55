/* The threading rule of dcnv4.h: "a context is used by one thread at a time;
 * separate contexts may run in parallel, also on the same device".
 *
 * 1. A single-threaded run of DCNv4 forward/backward and FlashDeformAttn
 *    forward/backward (fp32 and fp16) gives the expected results (checked
 *    against the float64 reference).
 * 2. THREADS threads, each with its own context on the same device, run the
 *    same calls ROUNDS times at once. Results that no two work-items
 *    accumulate into (forward outputs, grad_offset_mask,
 *    grad_sampling_loc_attn) must equal the single-threaded ones bitwise;
 *    gradients accumulated with float atomics (grad_input, grad_value) may
 *    differ in summation order, so they must agree to 1e-6 relative.
 * 3. One context handed from thread to thread (each joined before the next
 *    starts) works, and gives the same bits.
 *
 * usage: test_concurrency [--threads N] [--rounds N] */
#include "dcnv4_problem.h"
#include "fda_problem.h"
#include "reference.h"
#include "test_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NCALLS 6
#define MAX_OUT 2

/* One call and its results (raw bytes of each output). */
typedef struct call {
  const char *name;
  int fda, backward;
  dcnv4_dtype dtype;
  dcnv4_problem dpr;
  fda_problem fpr;
  size_t out_bytes[MAX_OUT];
  size_t out_count[MAX_OUT];
  int atomic[MAX_OUT]; /* accumulated with atomics */
  int outs;
  unsigned char *expected[MAX_OUT];
} call;

static call calls[NCALLS];

static void setup(void) {
  static const struct {
    const char *name;
    int fda, backward;
    dcnv4_dtype dtype;
  } list[NCALLS] = {
      {"dcnv4_forward fp32", 0, 0, DCNV4_FLOAT32},
      {"dcnv4_backward fp32", 0, 1, DCNV4_FLOAT32},
      {"dcnv4_forward fp16", 0, 0, DCNV4_FLOAT16},
      {"dcnv4_backward fp16", 0, 1, DCNV4_FLOAT16},
      {"fda_forward fp32", 1, 0, DCNV4_FLOAT32},
      {"fda_backward fp32", 1, 1, DCNV4_FLOAT32},
  };
  rng r = {test_seed(0xc0cc)};
  for (int i = 0; i < NCALLS; i++) {
    call *c = &calls[i];
    c->name = list[i].name;
    c->fda = list[i].fda;
    c->backward = list[i].backward;
    c->dtype = list[i].dtype;
    size_t es = dcnv4_dtype_size(c->dtype);
    if (!c->fda) {
      dcnv4_params p;
      dcnv4_params_init(&p);
      p.batch = 2;
      p.height_in = 9;
      p.width_in = 7;
      p.group = 2;
      p.group_channels = 8;
      p.dtype = c->dtype;
      problem_init(&c->dpr, &p, &r, 0.05);
      const dcnv4_shape *s = &c->dpr.s;
      if (c->backward) {
        c->outs = 2;
        c->out_count[0] = s->input_elements;
        c->atomic[0] = 1;
        c->out_count[1] = s->offset_mask_elements;
      } else {
        c->outs = 1;
        c->out_count[0] = s->output_elements;
      }
    } else {
      dcnv4_fda_params p;
      dcnv4_fda_params_init(&p);
      p.batch = 2;
      p.queries = 30;
      p.group = 2;
      p.group_channels = 8;
      p.levels = 2;
      p.points = 4;
      p.spatial_shapes[0][0] = 6;
      p.spatial_shapes[0][1] = 5;
      p.spatial_shapes[1][0] = 3;
      p.spatial_shapes[1][1] = 3;
      p.level_start[1] = 30;
      p.value_len = 39;
      p.dtype = c->dtype;
      fda_problem_init(&c->fpr, &p, &r, 0.05);
      const dcnv4_fda_shape *s = &c->fpr.s;
      if (c->backward) {
        c->outs = 2;
        c->out_count[0] = s->value_elements;
        c->atomic[0] = 1;
        c->out_count[1] = s->sampling_elements;
      } else {
        c->outs = 1;
        c->out_count[0] = s->output_elements;
      }
    }
    for (int o = 0; o < c->outs; o++)
      c->out_bytes[o] = c->out_count[o] * es;
  }
}

/* Device copies of one call's inputs and outputs in a context. */
typedef struct bound {
  cl_mem in[3], out[MAX_OUT];
} bound;

static void bind(dcnv4_context *ctx, const call *c, bound *b) {
  memset(b, 0, sizeof *b);
  if (!c->fda) {
    const dcnv4_shape *s = &c->dpr.s;
    b->in[0] = upload_values(ctx, c->dpr.input, s->input_elements, c->dtype);
    b->in[1] = upload_values(ctx, c->dpr.offset_mask, s->offset_mask_elements,
                             c->dtype);
    b->in[2] =
        upload_values(ctx, c->dpr.grad_output, s->output_elements, c->dtype);
  } else {
    const dcnv4_fda_shape *s = &c->fpr.s;
    b->in[0] = upload_values(ctx, c->fpr.value, s->value_elements, c->dtype);
    b->in[1] =
        upload_values(ctx, c->fpr.sampling, s->sampling_elements, c->dtype);
    b->in[2] =
        upload_values(ctx, c->fpr.grad_output, s->output_elements, c->dtype);
  }
  for (int o = 0; o < c->outs; o++)
    b->out[o] = poisoned_buffer(ctx, c->out_count[o], c->dtype);
}

static void unbind(const call *c, bound *b) {
  for (int i = 0; i < 3; i++)
    host_release(b->in[i]);
  for (int o = 0; o < c->outs; o++)
    host_release(b->out[o]);
}

/* Runs the call and reads its outputs (malloc'd bytes in `got`). */
static dcnv4_status run_call(dcnv4_context *ctx, const call *c, const bound *b,
                             unsigned char **got) {
  dcnv4_status st;
  if (!c->fda && !c->backward)
    st = dcnv4_forward(ctx, &c->dpr.p, b->in[0], b->in[1], b->out[0], 0, NULL,
                       NULL);
  else if (!c->fda) {
    dcnv4_backward_buffers bb = {b->in[0],  b->in[1],  b->in[2],
                                 b->out[0], b->out[1], NULL};
    st = dcnv4_backward(ctx, &c->dpr.p, &bb, 0, NULL, NULL);
  } else if (!c->backward)
    st = dcnv4_fda_forward(ctx, &c->fpr.p, b->in[0], b->in[1], b->out[0], 0,
                           NULL, NULL);
  else {
    dcnv4_fda_backward_buffers bb = {b->in[0],  b->in[1],  b->in[2],
                                     b->out[0], b->out[1], NULL};
    st = dcnv4_fda_backward(ctx, &c->fpr.p, &bb, 0, NULL, NULL);
  }
  if (st == DCNV4_SUCCESS)
    st = dcnv4_context_finish(ctx);
  for (int o = 0; o < c->outs; o++) {
    got[o] = malloc(c->out_bytes[o]);
    if (st == DCNV4_SUCCESS &&
        host_read(ctx, b->out[o], got[o], c->out_bytes[o]) != 0)
      st = DCNV4_ERROR_OPENCL;
  }
  return st;
}

static double *as_doubles(const unsigned char *bytes, size_t n,
                          dcnv4_dtype dtype) {
  double *d = malloc(n * sizeof *d);
  for (size_t i = 0; i < n; i++) {
    if (dtype == DCNV4_FLOAT32) {
      float f;
      memcpy(&f, bytes + 4 * i, 4);
      d[i] = f;
    } else {
      uint16_t h;
      memcpy(&h, bytes + 2 * i, 2);
      d[i] = dtype == DCNV4_FLOAT16 ? half_to_float(h) : bf16_to_float(h);
    }
  }
  return d;
}

/* 0 when `got` matches the single-threaded result as the rule asks. */
static int compare(const call *c, unsigned char *const *got, char *why,
                   size_t size) {
  for (int o = 0; o < c->outs; o++) {
    if (!c->atomic[o]) {
      if (memcmp(got[o], c->expected[o], c->out_bytes[o]) != 0) {
        snprintf(why, size, "output %d differs bitwise", o);
        return -1;
      }
      continue;
    }
    double *a = as_doubles(got[o], c->out_count[o], c->dtype);
    double *e = as_doubles(c->expected[o], c->out_count[o], c->dtype);
    double err = rel_l2(a, e, c->out_count[o]);
    double tol = c->dtype == DCNV4_FLOAT32 ? 1e-6 : tolerance_for(c->dtype);
    free(a);
    free(e);
    if (!(err <= tol)) {
      snprintf(why, size, "output %d differs by %g (atomic sums)", o, err);
      return -1;
    }
  }
  return 0;
}

/* ---------------------------------------------------------- 1. reference */

static void check_reference(const call *c) {
  for (int o = 0; o < c->outs; o++) {
    size_t n = c->out_count[o];
    double *ref = calloc(n, sizeof *ref), *ref2 = NULL;
    if (!c->fda) {
      const dcnv4_shape *s = &c->dpr.s;
      double *in = to_doubles(c->dpr.input, s->input_elements);
      double *om = to_doubles(c->dpr.offset_mask, s->offset_mask_elements);
      double *go = to_doubles(c->dpr.grad_output, s->output_elements);
      if (!c->backward)
        ref_dcnv4_forward(&c->dpr.p, in, om, ref);
      else {
        double *gi = calloc(s->input_elements, sizeof *gi);
        ref2 = calloc(s->offset_mask_elements, sizeof *ref2);
        ref_dcnv4_backward(&c->dpr.p, in, om, go, gi, ref2);
        if (o == 0)
          memcpy(ref, gi, n * sizeof *ref);
        else
          memcpy(ref, ref2, n * sizeof *ref);
        free(gi);
      }
      free(in);
      free(om);
      free(go);
    } else {
      const dcnv4_fda_shape *s = &c->fpr.s;
      double *v = to_doubles(c->fpr.value, s->value_elements);
      double *sa = to_doubles(c->fpr.sampling, s->sampling_elements);
      double *go = to_doubles(c->fpr.grad_output, s->output_elements);
      if (!c->backward)
        ref_fda_forward(&c->fpr.p, v, sa, ref);
      else {
        double *gv = calloc(s->value_elements, sizeof *gv);
        ref2 = calloc(s->sampling_elements, sizeof *ref2);
        ref_fda_backward(&c->fpr.p, v, sa, go, gv, ref2);
        if (o == 0)
          memcpy(ref, gv, n * sizeof *ref);
        else
          memcpy(ref, ref2, n * sizeof *ref);
        free(gv);
      }
      free(v);
      free(sa);
      free(go);
    }
    double *got = as_doubles(c->expected[o], n, c->dtype);
    double e = rel_l2(got, ref, n);
    CHECK(e <= tolerance_for(c->dtype), "%s output %d: error %g vs reference",
          c->name, o, e);
    free(got);
    free(ref);
    free(ref2);
  }
}

/* ---------------------------------------------------------- 2. parallel */

static int rounds = 3;

typedef struct worker {
  int index;
  dcnv4_context *ctx; /* NULL: the worker creates its own */
  int failures;
  char first_failure[512];
} worker;

static void worker_fail(worker *w, const char *fmt, const char *a,
                        const char *b) {
  if (w->failures++ == 0)
    snprintf(w->first_failure, sizeof w->first_failure, fmt, a, b);
}

static void *work(void *arg) {
  worker *w = arg;
  dcnv4_context *ctx = w->ctx;
  char why[512] = "";
  if (!ctx) {
    dcnv4_context_options o;
    dcnv4_context_options_init(&o);
    o.error_buffer = why;
    o.error_buffer_size = sizeof why;
    if (dcnv4_context_create(&o, &ctx) != DCNV4_SUCCESS) {
      worker_fail(w, "context creation: %s%s", why, "");
      return NULL;
    }
  }
  for (int round = 0; round < rounds; round++)
    for (int k = 0; k < NCALLS; k++) {
      /* Each thread walks the calls in its own order, so different
       * kernels overlap. */
      const call *c = &calls[(k + w->index) % NCALLS];
      bound b;
      bind(ctx, c, &b);
      unsigned char *got[MAX_OUT] = {NULL, NULL};
      dcnv4_status st = run_call(ctx, c, &b, got);
      if (st != DCNV4_SUCCESS)
        worker_fail(w, "%s: %s", c->name, dcnv4_context_last_error(ctx));
      else if (compare(c, got, why, sizeof why) != 0)
        worker_fail(w, "%s: %s", c->name, why);
      for (int o = 0; o < c->outs; o++)
        free(got[o]);
      unbind(c, &b);
    }
  if (!w->ctx)
    dcnv4_context_destroy(ctx);
  return NULL;
}

int main(int argc, char **argv) {
  int threads = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--threads") == 0)
      threads = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--rounds") == 0)
      rounds = atoi(argv[i + 1]);
  }
  if (threads < 1 || threads > 64 || rounds < 1) {
    fprintf(stderr, "usage: test_concurrency [--threads N] [--rounds N]\n");
    return 2;
  }
  setup();

  /* 1. Single-threaded results. */
  dcnv4_context *ctx = test_context();
  for (int i = 0; i < NCALLS; i++) {
    call *c = &calls[i];
    bound b;
    bind(ctx, c, &b);
    dcnv4_status st = run_call(ctx, c, &b, c->expected);
    CHECK(st == DCNV4_SUCCESS, "%s (single thread): %s", c->name,
          dcnv4_context_last_error(ctx));
    unbind(c, &b);
    if (st == DCNV4_SUCCESS)
      check_reference(c);
  }
  if (test_failures)
    return test_finish("test_concurrency");

  /* 2. One context per thread, all at once. */
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  worker *w = calloc((size_t)threads, sizeof *w);
  for (int t = 0; t < threads; t++) {
    w[t].index = t;
    CHECK(pthread_create(&tid[t], NULL, work, &w[t]) == 0, "pthread_create %d",
          t);
  }
  for (int t = 0; t < threads; t++) {
    pthread_join(tid[t], NULL);
    CHECK(w[t].failures == 0, "thread %d: %d failure(s), first: %s", t,
          w[t].failures, w[t].first_failure);
  }
  printf("%d threads x %d rounds x %d calls on separate contexts\n", threads,
         rounds, NCALLS);

  /* 3. One context handed from thread to thread. */
  for (int t = 0; t < 3; t++) {
    worker h;
    memset(&h, 0, sizeof h);
    h.index = t;
    h.ctx = ctx;
    pthread_t one;
    CHECK(pthread_create(&one, NULL, work, &h) == 0, "pthread_create");
    pthread_join(one, NULL);
    CHECK(h.failures == 0, "hand-off %d: %d failure(s), first: %s", t,
          h.failures, h.first_failure);
  }
  printf("one context used by 3 threads in turn\n");

  free(tid);
  free(w);
  for (int i = 0; i < NCALLS; i++) {
    for (int o = 0; o < calls[i].outs; o++)
      free(calls[i].expected[o]);
    if (calls[i].fda)
      fda_problem_free(&calls[i].fpr);
    else
      problem_free(&calls[i].dpr);
  }
  dcnv4_context_destroy(ctx);
  return test_finish("test_concurrency");
}
