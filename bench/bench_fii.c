/* FlashInternImage rows of the benchmark (issue 31): the classifier's
 * forward, T, S and B at 224x224 and L at 384x384, batch 1 and a throughput
 * batch (64; 16 for L), in images per second and ms per batch, with the
 * time of each stage (stem, levels 0-3 each with its downsampling, head)
 * from dcnv4_fii_forward_profiled's markers, and at batch 1 the latency of
 * one synchronous call (host clock, enqueue to finish).
 *
 * Random weights (timing does not depend on their values). Before timing,
 * each variant and dtype runs a batch of 2 small images (40x36) against the
 * float64 reference (tests/support/reference_fii.c) with the model's
 * tolerances (relative L2 of the logits: fp32 1e-4, fp16 1e-2, bf16 5e-2);
 * a row that fails is reported as failed and not timed.
 *
 * CPU devices (unless --full-size): T at 64x64, batches 1 and 2, two
 * launches. --quick: T only (on a CPU device batch 1 only). The anchor (PyTorch
 * with upstream's CUDA operator) is timed by bench/anchor/fii_anchor.py in the
 * same GPU job and joined by bench/anchor/join.py on (op, set, shape, dtype).
 */
#include "bench.h"
#include "bench_timing.h"
#include "cl_host.h"
#include "host_dtype.h"
#include "reference_fii.h"
#include "st_writer.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_KEYS 2048
#define VERIFY_N 2
#define VERIFY_H 40
#define VERIFY_W 36

static double fii_tolerance(dcnv4_dtype d) {
  return d == DCNV4_FLOAT32 ? 1e-4 : d == DCNV4_FLOAT16 ? 1e-2 : 5e-2;
}

static const char *st_dtype(dcnv4_dtype d) {
  return d == DCNV4_FLOAT32 ? "F32" : d == DCNV4_FLOAT16 ? "F16" : "BF16";
}

/* One variant's configuration and its random state dict (fp32 values; the
 * file holds them in the model's dtype, which rounds them). */
typedef struct fii_weights {
  dcnv4_fii_config c;
  size_t count;
  ref_fii_key *keys;
  float **values;
} fii_weights;

static void free_weights(fii_weights *w) {
  for (size_t i = 0; w->values && i < w->count; i++)
    free(w->values[i]);
  free(w->values);
  free(w->keys);
  memset(w, 0, sizeof *w);
}

/* Values by role as the model tests draw them, but matrices at half their
 * gain: at unit gain, deep variants (T's 30 blocks) amplify fp32 rounding
 * through the sampling offsets to ~1e-1 against the float64 reference (a
 * random network's sensitivity, not an error of the model: one block per
 * level agrees to 1e-5); at half gain the offsets stay within about a
 * pixel, as a trained model's, and T and S agree to 1e-6. On failure the
 * list is empty (the model then fails to load and its rows are reported
 * as failed). */
static int fill_weights(const char *variant, fii_weights *w, rng *r) {
  memset(w, 0, sizeof *w);
  if (dcnv4_fii_config_preset(&w->c, variant) != DCNV4_SUCCESS)
    return -1;
  w->keys = malloc(MAX_KEYS * sizeof *w->keys);
  if (!w->keys)
    return -1;
  w->count = ref_fii_keys(&w->c, w->keys, MAX_KEYS);
  if (w->count > MAX_KEYS)
    return -1;
  w->values = calloc(w->count, sizeof *w->values);
  if (!w->values)
    return -1;
  for (size_t i = 0; i < w->count; i++) {
    const ref_fii_key *k = &w->keys[i];
    float *v = malloc(k->elements * sizeof *v);
    if (!(w->values[i] = v))
      return -1;
    for (uint64_t j = 0; j < k->elements; j++) {
      v[j] = (float)ref_fii_random_value(r, k, 0.5);
    }
  }
  return 0;
}

static int make_weights(const char *variant, fii_weights *w) {
  rng r = {(uint64_t)variant[0]};
  int rc = fill_weights(variant, w, &r);
  if (rc != 0) {
    dcnv4_fii_config c = w->c;
    free_weights(w);
    w->c = c;
  }
  return rc;
}

static int write_weights(const fii_weights *w, dcnv4_dtype dtype,
                         const char *path) {
  st_tensor *t = calloc(w->count, sizeof *t);
  if (!t)
    return -1;
  for (size_t i = 0; i < w->count; i++) {
    const ref_fii_key *k = &w->keys[i];
    t[i].name = k->key;
    t[i].dtype = st_dtype(dtype);
    t[i].ndim = k->ndim;
    memcpy(t[i].shape, k->shape, sizeof k->shape);
    t[i].values = w->values[i];
  }
  int rc = st_write(path, t, w->count);
  free(t);
  return rc;
}

/* The logits of VERIFY_N small images against the float64 reference run on
 * the weights as the dtype rounds them. +inf when anything fails. */
static double verify(dcnv4_context *ctx, dcnv4_fii *model, const fii_weights *w,
                     dcnv4_dtype dtype) {
  const size_t pixels = (size_t)VERIFY_N * 3 * VERIFY_H * VERIFY_W;
  const int width = dcnv4_fii_output_width(model);
  const size_t outs = (size_t)VERIFY_N * (size_t)width;
  ref_weight *rw = calloc(w->count, sizeof *rw);
  double **d = calloc(w->count, sizeof *d);
  float *image = malloc(pixels * sizeof *image);
  double *dimage = malloc(pixels * sizeof *dimage);
  double *ref = malloc(outs * sizeof *ref), *got = NULL;
  double err = INFINITY;
  cl_mem in = NULL, out = NULL;
  int ok = rw && d && image && dimage && ref;
  for (size_t i = 0; ok && i < w->count; i++) {
    uint64_t n = w->keys[i].elements;
    ok = (d[i] = malloc(n * sizeof **d)) != NULL;
    for (uint64_t j = 0; ok && j < n; j++)
      d[i][j] = round_to_dtype(w->values[i][j], dtype);
    rw[i] = (ref_weight){w->keys[i].key, d[i]};
  }
  rng r = {2024};
  for (size_t i = 0; ok && i < pixels; i++)
    dimage[i] = image[i] = (float)rng_uniform(&r, -2, 2);
  ok = ok && ref_fii_forward(&w->c, VERIFY_N, VERIFY_H, VERIFY_W, rw, w->count,
                             dimage, ref, NULL) == 0;
  if (ok) {
    in = upload_values(ctx, image, pixels, DCNV4_FLOAT32);
    out = host_buffer(ctx, outs * sizeof(float), NULL);
    ok = in && out &&
         dcnv4_fii_forward(model, VERIFY_N, VERIFY_H, VERIFY_W, in, out, NULL,
                           NULL, 0, NULL, NULL) == DCNV4_SUCCESS &&
         (got = download_values(ctx, out, outs, DCNV4_FLOAT32)) != NULL;
  }
  if (ok)
    err = rel_l2(got, ref, outs);
  else
    fprintf(stderr, "fii verification could not run: %s\n",
            dcnv4_context_last_error(ctx));
  host_release(in);
  host_release(out);
  for (size_t i = 0; d && i < w->count; i++)
    free(d[i]);
  free(d);
  free(rw);
  free(image);
  free(dimage);
  free(ref);
  free(got);
  return err;
}

typedef struct fii_launch {
  dcnv4_fii *model;
  int n, size;
  cl_mem image, logits;
} fii_launch;

static dcnv4_status launch_fii(dcnv4_context *ctx, int set, void *arg,
                               cl_event *end) {
  (void)ctx;
  (void)set;
  fii_launch *l = arg;
  return dcnv4_fii_forward(l->model, l->n, l->size, l->size, l->image,
                           l->logits, NULL, NULL, 0, NULL, end);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* Median host time of one call waited for (enqueue to clFinish), after a
 * warm-up call (time_launches warmed the model up). -1 on failure. */
static double time_sync(dcnv4_context *ctx, int reps, fii_launch *l) {
  double *ms = malloc(sizeof *ms * (size_t)reps);
  int ok = ms != NULL;
  for (int i = -1; i < reps && ok; i++) {
    double t0 = now_ms();
    ok =
        dcnv4_fii_forward(l->model, l->n, l->size, l->size, l->image, l->logits,
                          NULL, NULL, 0, NULL, NULL) == DCNV4_SUCCESS &&
        clFinish(dcnv4_context_queue(ctx)) == CL_SUCCESS;
    if (i >= 0)
      ms[i] = now_ms() - t0;
  }
  double m = ok ? median(ms, reps) : -1;
  free(ms);
  return m;
}

/* Median of each stage over `reps` profiled forwards (after a warm-up
 * one), all enqueued before the first is waited for. 0 on success. */
static int time_stages(dcnv4_context *ctx, int reps, fii_launch *l,
                       double stage_ms[DCNV4_FII_STAGES]) {
  const int warm = 1, total = reps + warm, per = DCNV4_FII_STAGES + 1;
  cl_event *ev = calloc((size_t)total * (size_t)per, sizeof *ev);
  double *ms = malloc(sizeof *ms * (size_t)reps);
  int ok = ev && ms;
  for (int i = 0; i < total && ok; i++)
    ok = dcnv4_fii_forward_profiled(l->model, l->n, l->size, l->size, l->image,
                                    l->logits, NULL, NULL, 0, NULL,
                                    &ev[(size_t)i * per]) == DCNV4_SUCCESS;
  clFinish(dcnv4_context_queue(ctx));
  for (int s = 0; s < DCNV4_FII_STAGES && ok; s++) {
    for (int i = 0; i < reps; i++) {
      const cl_event *e = &ev[(size_t)(i + warm) * per];
      ms[i] = span_ms(e[s], e[s + 1]);
    }
    stage_ms[s] = median(ms, reps);
  }
  for (int i = 0; ev && i < total * per; i++)
    if (ev[i])
      clReleaseEvent(ev[i]);
  free(ev);
  free(ms);
  return ok ? 0 : -1;
}

typedef struct fii_row {
  const char *variant;
  int size, batch;
} fii_row;

/* One (variant, dtype): verification, then each batch of the variant. */
static void bench_variant(dcnv4_context *ctx, const char *dir,
                          const fii_weights *w, const char *variant,
                          const fii_row *rows, int nrows, dcnv4_dtype dtype,
                          int reps, results *res) {
  char set[16], path[4200];
  snprintf(set, sizeof set, "fii-%s", variant);
  snprintf(path, sizeof path, "%s/%s.safetensors", dir, variant);
  dcnv4_fii *model = NULL;
  double err = INFINITY;
  if (write_weights(w, dtype, path) != 0)
    fprintf(stderr, "cannot write %s\n", path);
  else if (dcnv4_fii_create(ctx, &w->c, dtype, &model) != DCNV4_SUCCESS ||
           dcnv4_fii_load_safetensors(model, path) != DCNV4_SUCCESS)
    fprintf(stderr, "FlashInternImage-%s: %s\n", variant,
            dcnv4_context_last_error(ctx));
  else
    err = verify(ctx, model, w, dtype);
  remove(path);
  const double tol = fii_tolerance(dtype);
  for (int i = 0; i < nrows; i++) {
    const fii_row *x = &rows[i];
    char shape_text[40];
    snprintf(shape_text, sizeof shape_text, "%dx3x%dx%d", x->batch, x->size,
             x->size);
    measurement fwd = {"fii forward", set, shape_text, "-", dtype,   -1, 0,
                       err,           1,   reps,       tol, x->batch};
    if (!(err <= tol)) { /* failed (or NaN): reported, never timed */
      record_row(res, &fwd);
      continue;
    }
    const size_t pixels = (size_t)x->batch * 3 * (size_t)x->size * x->size;
    const size_t outs = (size_t)x->batch * dcnv4_fii_output_width(model);
    float *image = malloc(pixels * sizeof *image);
    rng r = {(uint64_t)(x->size * 31 + x->batch)};
    for (size_t k = 0; image && k < pixels; k++)
      image[k] = (float)rng_uniform(&r, -2, 2);
    fii_launch l = {model, x->batch, x->size,
                    image ? upload_values(ctx, image, pixels, DCNV4_FLOAT32)
                          : NULL,
                    host_buffer(ctx, outs * sizeof(float), NULL)};
    free(image);
    double stage_ms[DCNV4_FII_STAGES] = {0}, sync_ms = -1;
    int stages_ok = -1;
    if (l.image && l.logits) {
      fwd.ms = time_launches(ctx, reps, 1, TIME_FROM_MARKER, launch_fii, &l);
      if (fwd.ms > 0)
        stages_ok = time_stages(ctx, reps, &l, stage_ms);
      if (fwd.ms > 0 && x->batch == 1)
        sync_ms = time_sync(ctx, reps, &l);
    } else
      fprintf(stderr, "FlashInternImage-%s %s: cannot allocate\n", variant,
              shape_text);
    host_release(l.image);
    host_release(l.logits);
    record_row(res, &fwd);
    if (x->batch == 1) {
      measurement lat = fwd;
      lat.op = "fii latency";
      lat.ms = sync_ms;
      record_row(res, &lat);
    }
    if (stages_ok != 0)
      continue;
    static const char *const names[DCNV4_FII_STAGES] = {
        "fii stem",   "fii level0", "fii level1",
        "fii level2", "fii level3", "fii head"};
    double sum = 0;
    for (int s = 0; s < DCNV4_FII_STAGES; s++)
      sum += stage_ms[s];
    for (int s = 0; s < DCNV4_FII_STAGES; s++) {
      measurement st = fwd;
      st.op = names[s];
      st.ms = stage_ms[s];
      st.images = 0;
      st.share = sum > 0 ? stage_ms[s] / sum : 0;
      record_row(res, &st);
    }
  }
  dcnv4_fii_destroy(model);
}

void bench_fii(dcnv4_context *ctx, const options *o, int is_gpu, results *res) {
  static const fii_row gpu_rows[] = {
      {"t", 224, 1}, {"t", 224, 64}, {"s", 224, 1}, {"s", 224, 64},
      {"b", 224, 1}, {"b", 224, 64}, {"l", 384, 1}, {"l", 384, 16}};
  /* CPU devices: T only; its deep, narrow levels take seconds per forward
   * on PoCL whatever the image size (the GEMMs read every weight). */
  static const fii_row cpu_rows[] = {{"t", 64, 1}, {"t", 64, 2}};
  const int full = is_gpu || o->full_size;
  const fii_row *rows = full ? gpu_rows : cpu_rows;
  int nrows = full ? (int)(sizeof gpu_rows / sizeof gpu_rows[0])
                   : (int)(sizeof cpu_rows / sizeof cpu_rows[0]);
  if (o->quick) /* T only; batch 1 only on a CPU device */
    nrows = full ? 2 : 1;
  int reps = o->reps;
  if (!full && !o->reps_given)
    reps = 2;
  const dcnv4_dtype all[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  const dcnv4_dtype *dtypes = o->dtypes_given ? o->dtypes : all;
  const int ndtypes = o->dtypes_given ? o->ndtypes : 3;
  /* The weights files, written in the dtype and removed once loaded. */
  char *dir = make_temp_dir("fii-bench");
  if (!dir) {
    fprintf(stderr, "FlashInternImage rows: no temporary folder\n");
    return;
  }
  printf("%-17s %-9s %-16s %-6s %-8s %9s %9s %7s %8s %7s %9s\n", "op", "set",
         "shape NxCxHxW", "", "dtype", "ms", "img/s", "share", "", "",
         "verify");
  for (int i = 0; i < nrows;) {
    int j = i; /* the rows of one variant */
    while (j < nrows && strcmp(rows[j].variant, rows[i].variant) == 0)
      j++;
    fii_weights w;
    if (make_weights(rows[i].variant, &w) != 0)
      fprintf(stderr, "FlashInternImage-%s: cannot make its weights\n",
              rows[i].variant);
    for (int t = 0; t < ndtypes; t++)
      bench_variant(ctx, dir, &w, rows[i].variant, &rows[i], j - i, dtypes[t],
                    reps, res);
    free_weights(&w);
    i = j;
  }
  remove_tree(dir);
  free(dir);
}
