/* dcnv4-tune's search of linear_mma (tune_mma.h). */
#include "tune_mma.h"

#include "bench_timing.h"
#include "cl_host.h"
#include "fii_check.h"
#include "host_dtype.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mma_param_names[MMA_PARAMS] = {
    "local",      "tilem",      "tilen",     "tilek",  "stages",
    "swizzle",    "staged",     "prefetch",  "raster", "small",
    "smalltilem", "smalltilen", "smalllocal"};

/* Tilings: local tilem tilen tilek stages swizzle. 48 KiB of local memory
 * holds 128x128x32 with 3 stages or 128x256x32 with 2 only with swizzle
 * (rows of tilek values); NVIDIA's PTX build may use up to the
 * multiprocessor's per-block limit (the last six: 80 to 120 KiB). The
 * library rejects, as a fallback, what the device cannot run. */
static const int mma_sets[][MMA_TILING] = {
    {256, 128, 128, 32, 2, 0}, {256, 128, 128, 32, 3, 1},
    {256, 128, 128, 16, 4, 1}, {256, 128, 128, 16, 4, 0},
    {128, 128, 128, 32, 3, 1}, {256, 128, 256, 32, 2, 1},
    {256, 256, 128, 32, 2, 1}, {512, 128, 256, 32, 2, 1},
    {512, 256, 128, 32, 2, 1}, {128, 128, 64, 32, 3, 0},
    {128, 128, 64, 32, 4, 1},  {128, 64, 128, 32, 4, 1},
    {128, 64, 64, 32, 4, 1},   {256, 64, 256, 32, 3, 1},
    {256, 128, 128, 32, 4, 0}, {256, 128, 128, 32, 5, 0},
    {128, 128, 128, 32, 4, 0}, {256, 128, 256, 32, 3, 0},
    {256, 256, 128, 32, 3, 0}, {256, 128, 128, 64, 3, 0},
};
/* Then, on the best tiling, one switch at a time: staged, prefetch,
 * raster. */
static const int switch_values[3][4] = {
    {1, 0, 0, 0}, {1, 0, 0, 0}, {4, 8, 16, 0}};
/* Then small-launch rules (small smalltilem smalltilen smalllocal): GEMMs
 * of fewer than 2 or 3 of the class's tiles per compute unit (the 14x14
 * and 7x7 levels at batch 64 on an H100) on tiles a half or a quarter as
 * big, several work-groups to a compute unit. */
static const int small_wide[][MMA_SMALL_RULE] = {
    {2, 64, 64, 128}, {2, 64, 128, 128}, {2, 128, 64, 128}, {3, 64, 64, 128}};
static const int small_narrow[][MMA_SMALL_RULE] = {{2, 64, 64, 128},
                                                   {2, 64, 32, 64}};

int mma_is_default(dcnv4_context *ctx) {
  const dcn_gemm_spec spec = {DCNV4_FLOAT16, DCNV4_FLOAT16, DCN_GEMM_NONE,
                              true,          false,         false};
  dcn_gemm g;
  return dcn_gemm_prepare_spec(ctx, &spec, &g) == DCNV4_SUCCESS && g.mma &&
         g.ptx;
}

/* A device buffer of count values of dtype repeating 32 random values in
 * [-1, 1) (the timing does not depend on them; the host never holds the
 * big operands), or NULL. */
static cl_mem filled(dcnv4_context *ctx, dcnv4_dtype dtype, size_t count,
                     rng *r) {
  float v[32];
  unsigned char pattern[128];
  for (int i = 0; i < 32; i++)
    v[i] = (float)rng_uniform(r, -1, 1);
  pack_dtype(v, pattern, 32, dtype);
  const size_t size = 32 * dcnv4_dtype_size(dtype);
  const size_t bytes =
      (count * dcnv4_dtype_size(dtype) + size - 1) / size * size;
  cl_mem m = host_buffer(ctx, bytes, NULL);
  if (m && clEnqueueFillBuffer(dcnv4_context_queue(ctx), m, pattern, size, 0,
                               bytes, 0, NULL, NULL) != CL_SUCCESS) {
    host_release(m);
    m = NULL;
  }
  return m;
}

typedef struct mma_launch {
  dcn_gemm g;
  size_t m, n, k;
  cl_mem a, b, bias, c;
} mma_launch;

static dcnv4_status launch_mma(dcnv4_context *ctx, int set, void *arg,
                               cl_event *end) {
  (void)set;
  mma_launch *l = arg;
  return dcn_gemm_linear(ctx, &l->g, l->m, l->n, l->k, l->a, l->b, l->bias,
                         l->c, end, "dcnv4-tune");
}

/* The current override on two small products (16-byte rows and not; the
 * class's column count) against float64: 1 if right and not fallen back. */
static int mma_right(dcnv4_context *ctx, dcnv4_dtype dtype, int narrow) {
  static const int checks[2][3] = {{257, 136, 264}, {129, 129, 129}};
  const uint64_t fallbacks = dcnv4_context_tuning_fallbacks(ctx);
  rng r = {77};
  for (int i = 0; i < 2; i++) {
    fii_case fc;
    memset(&fc, 0, sizeof fc);
    fc.op = FII_GEMM;
    fc.dtype = dtype;
    fc.out_dtype = dtype;
    fc.mma = 1;
    fc.with_bias = 1;
    fc.m = checks[i][0];
    fc.n = narrow ? (i ? 40 : 64) : checks[i][1];
    fc.k = checks[i][2];
    dcnv4_status st;
    if (!(fii_check(&fc, ctx, &r, &st) <= tolerance_for(dtype)))
      return 0;
  }
  return dcnv4_context_tuning_fallbacks(ctx) == fallbacks;
}

/* Mean over the class's shapes of time / base time under `tuning`
 * (INFINITY if wrong, fallen back or failed); total ms in *total. */
static double mma_score(dcnv4_context *ctx, dcnv4_dtype dtype, mma_launch *l,
                        int n, int narrow, const char *tuning,
                        const double *base, double *ms, int reps,
                        double *total) {
  *total = 0;
  if (dcnv4_context_set_tuning(ctx, tuning) != DCNV4_SUCCESS ||
      !mma_right(ctx, dtype, narrow))
    return INFINITY;
  const uint64_t fallbacks = dcnv4_context_tuning_fallbacks(ctx);
  double score = 0;
  for (int i = 0; i < n; i++) {
    const dcn_gemm_spec spec = {dtype,
                                dtype,
                                DCN_GEMM_NONE,
                                true,
                                l[i].m * (l[i].n > l[i].k ? l[i].n : l[i].k) >=
                                    ((size_t)1 << 31),
                                true};
    if (dcn_gemm_prepare_spec(ctx, &spec, &l[i].g) != DCNV4_SUCCESS)
      return INFINITY;
    /* marker to last command: split-K launches are two commands */
    ms[i] = time_launches(ctx, reps, 1, TIME_FROM_MARKER, launch_mma, &l[i]);
    if (ms[i] <= 0)
      return INFINITY;
    *total += ms[i];
    score += base ? ms[i] / base[i] : 1.0;
  }
  if (dcnv4_context_tuning_fallbacks(ctx) != fallbacks)
    return INFINITY;
  return score / n;
}

static void tuning_text(const int *v, char *out, size_t size) {
  int len = 0;
  for (int p = 0; p < MMA_PARAMS && len >= 0 && (size_t)len < size; p++)
    len += snprintf(out + len, size - (size_t)len, "%slinear_mma.%s=%d",
                    p ? ";" : "", mma_param_names[p], v[p]);
}

/* What one class's search times its candidates with. */
typedef struct class_search {
  dcnv4_context *ctx;
  dcnv4_dtype dtype;
  mma_launch *l;
  int n, narrow, reps, verbose;
  const double *base;
  double *ms;
  mma_class_result *res;
} class_search;

/* The tilings searched, the one whose switches are tried when none
 * beats the built-in row, and the small-launch rules, per class. */
typedef struct tiling_list {
  const int (*sets)[MMA_TILING];
  int count, fallback[2]; /* per class */
  const int (*smalls[2])[MMA_SMALL_RULE];
  int nsmalls[2];
} tiling_list;

/* Times candidate v; where it beats *best it becomes the best and cur. */
static void try_candidate(const class_search *s, const int *v, double *best,
                          int *cur) {
  char tuning[400];
  double total = 0;
  tuning_text(v, tuning, sizeof tuning);
  const double score = mma_score(s->ctx, s->dtype, s->l, s->n, s->narrow,
                                 tuning, s->base, s->ms, s->reps, &total);
  s->res->tried++;
  s->res->rejected += !isfinite(score);
  if (s->verbose)
    printf("    %s: %s %.3f (%.3f ms)\n", tuning,
           isfinite(score) ? "score" : "rejected", score, total);
  if (score < *best) {
    *best = score;
    s->res->found = 1;
    s->res->ms_total = total;
    memcpy(cur, v, MMA_PARAMS * sizeof *cur);
    memcpy(s->res->values, v, MMA_PARAMS * sizeof *cur);
  }
}

/* One class: the tilings, then the switches on the best one. */
static void search_class(dcnv4_context *ctx, dcnv4_dtype dtype, mma_launch *l,
                         int n, int narrow, int reps, double deadline,
                         double (*now)(void), int verbose,
                         const tiling_list *tl, mma_class_result *res) {
  double *base = calloc((size_t)n, sizeof *base);
  double *ms = calloc((size_t)n, sizeof *ms);
  double total = 0;
  if (!base || !ms ||
      !isfinite(
          mma_score(ctx, dtype, l, n, narrow, "", NULL, base, reps, &total))) {
    res->rejected = -1;
    goto out;
  }
  res->default_ms_total = total;
  double best = 0.98; /* relative to the built-in default */
  const class_search search = {ctx,  dtype,   l,    n,  narrow,
                               reps, verbose, base, ms, res};
  int cur[MMA_PARAMS] = {0};
  /* The first tiling whatever the time left: a search times something. */
  for (int s = 0; s < tl->count && (s == 0 || now() < deadline); s++) {
    int v[MMA_PARAMS] = {0};
    for (int p = 0; p < MMA_TILING; p++)
      v[p] = tl->sets[s][p];
    try_candidate(&search, v, &best, cur);
  }
  /* The switches on the winner (or on the built-in tiling's set 0). */
  if (!res->found)
    for (int p = 0; p < MMA_TILING; p++)
      cur[p] = tl->sets[tl->fallback[narrow]][p];
  for (int p = 0; p < 3; p++)
    for (int k = 0; k < 4 && switch_values[p][k] && now() < deadline; k++) {
      int v[MMA_PARAMS];
      memcpy(v, cur, sizeof v);
      v[MMA_STAGED + p] = switch_values[p][k];
      try_candidate(&search, v, &best, cur);
    }
  /* The small-launch rules on the best so far; the first whatever the
   * time left. */
  int base_v[MMA_PARAMS];
  memcpy(base_v, cur, sizeof base_v);
  for (int s = 0; s < tl->nsmalls[narrow] && (s == 0 || now() < deadline);
       s++) {
    int v[MMA_PARAMS];
    memcpy(v, base_v, sizeof v);
    for (int p = 0; p < MMA_SMALL_RULE; p++)
      v[MMA_SMALL + p] = tl->smalls[narrow][s][p];
    try_candidate(&search, v, &best, cur);
  }
out:
  dcnv4_context_set_tuning(ctx, NULL);
  free(base);
  free(ms);
}

static void search(dcnv4_context *ctx, dcnv4_dtype dtype,
                   const size_t (*shapes)[3], int n, int reps, double deadline,
                   double (*now)(void), int verbose, const tiling_list *tl,
                   mma_result *res);

void mma_search(dcnv4_context *ctx, dcnv4_dtype dtype,
                const size_t (*shapes)[3], int n, int reps, double deadline,
                double (*now)(void), int verbose, mma_result *res) {
  /* Fallbacks: NVIDIA's built-in tilings (sets 0 and 9). */
  const tiling_list tl = {mma_sets,
                          (int)(sizeof mma_sets / sizeof *mma_sets),
                          {0, 9},
                          {small_wide, small_narrow},
                          {(int)(sizeof small_wide / sizeof *small_wide),
                           (int)(sizeof small_narrow / sizeof *small_narrow)}};
  search(ctx, dtype, shapes, n, reps, deadline, now, verbose, &tl, res);
}

void mma_search_tilings(dcnv4_context *ctx, dcnv4_dtype dtype,
                        const size_t (*shapes)[3], int n, int reps,
                        double deadline, double (*now)(void), int verbose,
                        const int (*tilings)[MMA_TILING], int ntilings,
                        const int (*smalls)[MMA_SMALL_RULE], int nsmalls,
                        mma_result *res) {
  const tiling_list tl = {
      tilings, ntilings, {0, 0}, {smalls, smalls}, {nsmalls, nsmalls}};
  search(ctx, dtype, shapes, n, reps, deadline, now, verbose, &tl, res);
}

static void search(dcnv4_context *ctx, dcnv4_dtype dtype,
                   const size_t (*shapes)[3], int n, int reps, double deadline,
                   double (*now)(void), int verbose, const tiling_list *tl,
                   mma_result *res) {
  memset(res, 0, sizeof *res);
  res->dtype = dtype;
  res->ran = 1;
  mma_launch *l = calloc((size_t)n, sizeof *l);
  rng r = {2025};
  for (int c = 0; c < 2 && l; c++) {
    mma_class_result *cr = &res->cls[c];
    cr->group_channels = c ? 64 : 0;
    int count = 0, ok = 1;
    for (int i = 0; i < n && ok; i++) {
      if ((shapes[i][1] <= 64) != (c == 1))
        continue;
      mma_launch *x = &l[count++];
      x->m = shapes[i][0];
      x->n = shapes[i][1];
      x->k = shapes[i][2];
      x->a = filled(ctx, dtype, x->m * x->k, &r);
      x->b = filled(ctx, dtype, x->n * x->k, &r);
      x->bias = filled(ctx, DCNV4_FLOAT32, x->n, &r);
      x->c = poisoned_buffer(ctx, x->m * x->n, dtype);
      ok = x->a && x->b && x->bias && x->c;
    }
    cr->shapes = count;
    if (!ok) {
      fprintf(stderr,
              "dcnv4-tune: linear_mma %s: cannot allocate the "
              "GEMMs\n",
              dcnv4_dtype_name(dtype));
      res->error = 1;
    } else if (count) {
      /* The remaining time, half to the first class when both have shapes. */
      const double left = deadline - now();
      search_class(ctx, dtype, l, count, c, reps,
                   c == 0 ? now() + left / 2 : deadline, now, verbose, tl, cr);
      if (cr->rejected < 0) {
        fprintf(stderr,
                "dcnv4-tune: linear_mma's built-in default fails "
                "its check (%s)\n",
                dcnv4_dtype_name(dtype));
        res->error = 1;
        cr->rejected = 0;
      }
    }
    for (int i = 0; i < count; i++) {
      host_release(l[i].a);
      host_release(l[i].b);
      host_release(l[i].bias);
      host_release(l[i].c);
      memset(&l[i], 0, sizeof l[i]);
    }
  }
  free(l);
}
