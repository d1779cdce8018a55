/* Fault injection (build with DCNV4_FAULT_INJECTION) for every core
 * operator, context creation and the program-binary disk cache.
 *
 * For each operator call (DCNv4 forward/backward, FlashDeformAttn
 * forward/backward, fp32 and fp16) and each disk-cache state (empty: the
 * programs are built from source and stored; filled: they are loaded), the
 * whole life of a context (create_from_cl with a cache folder, the call,
 * finish) runs with the n-th allocation or wrapped OpenCL call failing, for
 * every n until a run meets no fault. Each run must:
 *   - fail with a status and a non-empty message (context creation: NULL
 *     context and the reason in the error buffer), or succeed when the fault
 *     hit a call whose failure the library tolerates (a cache store);
 *   - leave the caller's output buffers as they were (a byte pattern), unless
 *     the fault hit an enqueue after another enqueue of the same call (the
 *     documented exception: the driver accepted the earlier command);
 *   - leave the context usable: a clean call on it gives the float64
 *     reference's answer;
 *   - leak nothing (the test also runs under AddressSanitizer).
 * dcnv4_context_create (device enumeration, context and queue creation) gets
 * the same treatment.
 *
 * usage: test_op_faults [CASE]
 *   CASE  only the call of that name (e.g. "dcnv4_backward fp16"), its
 *         cache kept from the first run, without context creation's sweep */
#include "dcnv4_problem.h"
#include "fda_problem.h"
#include "reference.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

/* Exported by the library in fault-injection builds only. */
void dcnv4_test_fault_set(long fail_at);
long dcnv4_test_fault_count(void);
const char *dcnv4_test_fault_site(void);

#define POISON 0xA5
#define MAX_OUT 2

typedef enum op_kind {
  OP_DCNV4_FORWARD,
  OP_DCNV4_BACKWARD,
  OP_FDA_FORWARD,
  OP_FDA_BACKWARD
} op_kind;

typedef struct op_case {
  const char *name;
  op_kind kind;
  dcnv4_dtype dtype;
  /* device inputs and outputs (in the base context's cl_context) */
  cl_mem in[3];
  cl_mem out[MAX_OUT];
  size_t out_count[MAX_OUT];
  size_t out_bytes[MAX_OUT];
  int outs;
  double *ref[MAX_OUT];
  dcnv4_params dp;
  dcnv4_fda_params fp;
  dcnv4_problem dpr;
  fda_problem fpr;
} op_case;

static dcnv4_context *base; /* owns the cl_context, queue and buffers */

static double *doubles(const float *v, size_t n) { return to_doubles(v, n); }

static void setup_dcnv4(op_case *c, rng *r) {
  dcnv4_params_init(&c->dp);
  c->dp.batch = 1;
  c->dp.height_in = 5;
  c->dp.width_in = 6;
  c->dp.group = 2;
  c->dp.group_channels = 4;
  c->dp.dtype = c->dtype;
  problem_init(&c->dpr, &c->dp, r, 0.0);
  const dcnv4_shape *s = &c->dpr.s;
  c->in[0] = upload_values(base, c->dpr.input, s->input_elements, c->dtype);
  c->in[1] = upload_values(base, c->dpr.offset_mask, s->offset_mask_elements,
                           c->dtype);
  c->in[2] =
      upload_values(base, c->dpr.grad_output, s->output_elements, c->dtype);
  double *in = doubles(c->dpr.input, s->input_elements);
  double *om = doubles(c->dpr.offset_mask, s->offset_mask_elements);
  double *go = doubles(c->dpr.grad_output, s->output_elements);
  size_t es = dcnv4_dtype_size(c->dtype);
  if (c->kind == OP_DCNV4_FORWARD) {
    c->outs = 1;
    c->out_count[0] = s->output_elements;
    c->ref[0] = calloc(s->output_elements, sizeof(double));
    ref_dcnv4_forward(&c->dp, in, om, c->ref[0]);
  } else {
    c->outs = 2;
    c->out_count[0] = s->input_elements;
    c->out_count[1] = s->offset_mask_elements;
    c->ref[0] = calloc(s->input_elements, sizeof(double));
    c->ref[1] = calloc(s->offset_mask_elements, sizeof(double));
    ref_dcnv4_backward(&c->dp, in, om, go, c->ref[0], c->ref[1]);
  }
  for (int i = 0; i < c->outs; i++) {
    c->out_bytes[i] = c->out_count[i] * es;
    c->out[i] = host_buffer(base, c->out_bytes[i], NULL);
  }
  free(in);
  free(om);
  free(go);
}

static void setup_fda(op_case *c, rng *r) {
  dcnv4_fda_params_init(&c->fp);
  c->fp.batch = 1;
  c->fp.queries = 5;
  c->fp.group = 2;
  c->fp.group_channels = 4;
  c->fp.levels = 2;
  c->fp.points = 2;
  c->fp.spatial_shapes[0][0] = 3;
  c->fp.spatial_shapes[0][1] = 4;
  c->fp.spatial_shapes[1][0] = 2;
  c->fp.spatial_shapes[1][1] = 2;
  c->fp.level_start[0] = 0;
  c->fp.level_start[1] = 12;
  c->fp.value_len = 16;
  c->fp.dtype = c->dtype;
  fda_problem_init(&c->fpr, &c->fp, r, 0.0);
  const dcnv4_fda_shape *s = &c->fpr.s;
  c->in[0] = upload_values(base, c->fpr.value, s->value_elements, c->dtype);
  c->in[1] =
      upload_values(base, c->fpr.sampling, s->sampling_elements, c->dtype);
  c->in[2] =
      upload_values(base, c->fpr.grad_output, s->output_elements, c->dtype);
  double *v = doubles(c->fpr.value, s->value_elements);
  double *sa = doubles(c->fpr.sampling, s->sampling_elements);
  double *go = doubles(c->fpr.grad_output, s->output_elements);
  size_t es = dcnv4_dtype_size(c->dtype);
  if (c->kind == OP_FDA_FORWARD) {
    c->outs = 1;
    c->out_count[0] = s->output_elements;
    c->ref[0] = calloc(s->output_elements, sizeof(double));
    ref_fda_forward(&c->fp, v, sa, c->ref[0]);
  } else {
    c->outs = 2;
    c->out_count[0] = s->value_elements;
    c->out_count[1] = s->sampling_elements;
    c->ref[0] = calloc(s->value_elements, sizeof(double));
    c->ref[1] = calloc(s->sampling_elements, sizeof(double));
    ref_fda_backward(&c->fp, v, sa, go, c->ref[0], c->ref[1]);
  }
  for (int i = 0; i < c->outs; i++) {
    c->out_bytes[i] = c->out_count[i] * es;
    c->out[i] = host_buffer(base, c->out_bytes[i], NULL);
  }
  free(v);
  free(sa);
  free(go);
}

static void case_free(op_case *c) {
  for (int i = 0; i < 3; i++)
    host_release(c->in[i]);
  for (int i = 0; i < c->outs; i++) {
    host_release(c->out[i]);
    free(c->ref[i]);
  }
  if (c->kind == OP_DCNV4_FORWARD || c->kind == OP_DCNV4_BACKWARD)
    problem_free(&c->dpr);
  else
    fda_problem_free(&c->fpr);
}

/* The call itself, then finish. */
static dcnv4_status run_op(dcnv4_context *ctx, const op_case *c) {
  dcnv4_status st = DCNV4_SUCCESS;
  switch (c->kind) {
  case OP_DCNV4_FORWARD:
    st = dcnv4_forward(ctx, &c->dp, c->in[0], c->in[1], c->out[0], 0, NULL,
                       NULL);
    break;
  case OP_DCNV4_BACKWARD: {
    dcnv4_backward_buffers b = {c->in[0],  c->in[1],  c->in[2],
                                c->out[0], c->out[1], NULL};
    st = dcnv4_backward(ctx, &c->dp, &b, 0, NULL, NULL);
    break;
  }
  case OP_FDA_FORWARD:
    st = dcnv4_fda_forward(ctx, &c->fp, c->in[0], c->in[1], c->out[0], 0, NULL,
                           NULL);
    break;
  case OP_FDA_BACKWARD: {
    dcnv4_fda_backward_buffers b = {c->in[0],  c->in[1],  c->in[2],
                                    c->out[0], c->out[1], NULL};
    st = dcnv4_fda_backward(ctx, &c->fp, &b, 0, NULL, NULL);
    break;
  }
  }
  if (st == DCNV4_SUCCESS)
    st = dcnv4_context_finish(ctx);
  return st;
}

static void poison_outputs(const op_case *c) {
  for (int i = 0; i < c->outs; i++) {
    unsigned char *p = malloc(c->out_bytes[i]);
    memset(p, POISON, c->out_bytes[i]);
    host_write(base, c->out[i], p, c->out_bytes[i]);
    free(p);
  }
}

/* 1 when every output still holds the pattern. */
static int outputs_untouched(const op_case *c) {
  int ok = 1;
  for (int i = 0; i < c->outs; i++) {
    unsigned char *p = malloc(c->out_bytes[i]);
    if (host_read(base, c->out[i], p, c->out_bytes[i]) != 0)
      ok = 0;
    for (size_t k = 0; ok && k < c->out_bytes[i]; k++)
      if (p[k] != POISON)
        ok = 0;
    free(p);
  }
  return ok;
}

/* Largest relative L2 error of the outputs against the reference. */
static double output_error(const op_case *c) {
  double worst = 0;
  for (int i = 0; i < c->outs; i++) {
    double *got = download_values(base, c->out[i], c->out_count[i], c->dtype);
    double e = rel_l2(got, c->ref[i], c->out_count[i]);
    if (!(e <= worst))
      worst = e;
    free(got);
  }
  return worst;
}

static dcnv4_status make_context(const char *cache_dir, char *why,
                                 size_t why_size, dcnv4_context **ctx) {
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.cache_dir = cache_dir;
  o.error_buffer = why;
  o.error_buffer_size = why_size;
  why[0] = '\0';
  return dcnv4_context_create_from_cl(dcnv4_context_cl_context(base),
                                      dcnv4_context_device(base),
                                      dcnv4_context_queue(base), &o, ctx);
}

static int is_enqueue(const char *site) {
  return site && strncmp(site, "clEnqueue", 9) == 0;
}

/* Every fault point of one context life; `fresh_cache`: empty the cache
 * folder before each run (source builds and stores), else leave it filled
 * (loads). */
static void sweep(op_case *c, const char *dir, int fresh_cache) {
  double tol = tolerance_for(c->dtype);
  /* Fault index of the call's first enqueue; a fault in a later one (or in
   * the finish) meets commands the driver has already accepted. */
  long first_enqueue = 0;
  long n = 1, hits = 0, tolerated = 0;
  for (;; n++) {
    if (fresh_cache)
      remove_tree(dir);
    poison_outputs(c);
    char why[512];
    dcnv4_context *ctx = NULL;
    dcnv4_test_fault_set(n);
    dcnv4_status st = make_context(dir, why, sizeof why, &ctx);
    int created = st == DCNV4_SUCCESS;
    if (created)
      st = run_op(ctx, c);
    long seen = dcnv4_test_fault_count();
    const char *site = dcnv4_test_fault_site();
    dcnv4_test_fault_set(0);
    if (!site)
      site = "?";
    if (seen < n) {
      CHECK(st == DCNV4_SUCCESS, "%s: no fault at %ld, yet status %s: %s",
            c->name, n, dcnv4_status_string(st),
            ctx ? dcnv4_context_last_error(ctx) : why);
      double e = output_error(c);
      CHECK(e <= tol, "%s: fault-free run error %g", c->name, e);
      dcnv4_context_destroy(ctx);
      break;
    }
    hits++;
    if (is_enqueue(site) && first_enqueue == 0)
      first_enqueue = n;
    if (!created) {
      CHECK(ctx == NULL, "%s: failed creation (fault %ld at %s) left a context",
            c->name, n, site);
      CHECK(why[0] != '\0', "%s: creation fault %ld at %s: %s without reason",
            c->name, n, site, dcnv4_status_string(st));
      CHECK(outputs_untouched(c), "%s: creation fault %ld wrote outputs",
            c->name, n);
    } else if (st != DCNV4_SUCCESS) {
      CHECK(dcnv4_context_last_error(ctx)[0] != '\0',
            "%s: fault %ld at %s: %s without a message", c->name, n, site,
            dcnv4_status_string(st));
      /* A later enqueue of the call failing after the driver accepted an
       * earlier one is the documented exception. */
      int late = (is_enqueue(site) && first_enqueue > 0 && n > first_enqueue) ||
                 strcmp(site, "clFinish") == 0;
      if (!late)
        CHECK(outputs_untouched(c),
              "%s: fault %ld at %s (%s) wrote to the outputs", c->name, n, site,
              dcnv4_context_last_error(ctx));
    } else {
      tolerated++;
      if (getenv("TEST_VERBOSE"))
        printf("  tolerated fault %ld at %s\n", n, site);
      double e = output_error(c);
      CHECK(e <= tol, "%s: tolerated fault %ld at %s, error %g", c->name, n,
            site, e);
    }
    /* Faults stopped: the context (or a new one) works. */
    if (!ctx)
      CHECK(make_context(dir, why, sizeof why, &ctx) == DCNV4_SUCCESS,
            "%s: context after fault %ld: %s", c->name, n, why);
    if (ctx) {
      poison_outputs(c);
      dcnv4_status again = run_op(ctx, c);
      CHECK(again == DCNV4_SUCCESS, "%s: after fault %ld at %s: %s", c->name, n,
            site, dcnv4_context_last_error(ctx));
      double e = output_error(c);
      CHECK(e <= tol, "%s: after fault %ld at %s: error %g", c->name, n, site,
            e);
      dcnv4_context_destroy(ctx);
    }
  }
  printf("%-22s %s cache: %3ld fault points, %3ld failed, %ld tolerated\n",
         c->name, fresh_cache ? "empty " : "filled", n - 1, hits - tolerated,
         tolerated);
}

/* dcnv4_context_create: device enumeration, OpenCL context and queue. */
static void sweep_create(const char *dir) {
  long n = 1;
  for (;; n++) {
    char why[512] = "";
    dcnv4_context_options o;
    dcnv4_context_options_init(&o);
    o.cache_dir = dir;
    o.error_buffer = why;
    o.error_buffer_size = sizeof why;
    dcnv4_context *ctx = (dcnv4_context *)&o;
    dcnv4_test_fault_set(n);
    dcnv4_status st = dcnv4_context_create(&o, &ctx);
    long seen = dcnv4_test_fault_count();
    const char *site = dcnv4_test_fault_site();
    dcnv4_test_fault_set(0);
    if (seen < n) {
      CHECK(st == DCNV4_SUCCESS && ctx, "create: no fault, status %s: %s",
            dcnv4_status_string(st), why);
      dcnv4_context_destroy(ctx);
      break;
    }
    if (st != DCNV4_SUCCESS) {
      CHECK(ctx == NULL, "create: fault %ld at %s left a context", n,
            site ? site : "?");
      CHECK(why[0] != '\0', "create: fault %ld at %s: no reason", n,
            site ? site : "?");
    } else {
      dcnv4_context_destroy(ctx);
    }
  }
  printf("%-22s %ld fault points\n", "context_create", n - 1);
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  rng r = {test_seed(0x0fa17)};
  base = test_context();
  char *dir = make_temp_dir("opfaults");
  char cache[4200];
  snprintf(cache, sizeof cache, "%s/cache", dir);
  if (!only)
    sweep_create(cache);
  static const struct {
    const char *name;
    op_kind kind;
    dcnv4_dtype dtype;
  } cases[] = {
      {"dcnv4_forward fp32", OP_DCNV4_FORWARD, DCNV4_FLOAT32},
      {"dcnv4_backward fp32", OP_DCNV4_BACKWARD, DCNV4_FLOAT32},
      {"dcnv4_backward fp16", OP_DCNV4_BACKWARD, DCNV4_FLOAT16},
      {"fda_forward fp32", OP_FDA_FORWARD, DCNV4_FLOAT32},
      {"fda_backward fp32", OP_FDA_BACKWARD, DCNV4_FLOAT32},
      {"fda_backward bf16", OP_FDA_BACKWARD, DCNV4_BFLOAT16},
  };
  int ran = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (only && strcmp(only, cases[i].name))
      continue;
    ran++;
    op_case c;
    memset(&c, 0, sizeof c);
    c.name = cases[i].name;
    c.kind = cases[i].kind;
    c.dtype = cases[i].dtype;
    if (c.kind == OP_DCNV4_FORWARD || c.kind == OP_DCNV4_BACKWARD)
      setup_dcnv4(&c, &r);
    else
      setup_fda(&c, &r);
    /* One call alone: the cache kept from the start (each program's build
     * and its cached binary's load each meet a fault once). */
    if (!only)
      sweep(&c, cache, 1);
    sweep(&c, cache, 0);
    case_free(&c);
  }
  CHECK(ran > 0, "no call named \"%s\"", only ? only : "");
  remove_tree(dir);
  free(dir);
  dcnv4_context_destroy(base);
  return test_finish("test_op_faults");
}
