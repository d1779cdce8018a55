/* GEMM rows of the benchmark (issue 32): the layers' GEMM alone, c = a b^T
 * without bias or epilogue, at the shapes of FlashInternImage-T and -B at
 * batch 64 (M = 64*H*W at each level's resolution, 224x224 images): the
 * DCNv4 layer's C x C projections and the MLP's fc1 (C -> 4C) and fc2 (4C
 * -> C). fp32 runs linear.cl or CLBlast as tuned (exact fp32, no TF32);
 * fp16 and bf16 run linear_mma.cl (tensor cores on NVIDIA from compute
 * capability 8). Each row: a check of the same configuration on 257 rows
 * against the float64 reference, then the median time, TFLOP/s (2*M*N*K
 * per launch) and the minimum bytes (a, b and c once each). The anchor:
 * bench/anchor/gemm_anchor.py (torch.matmul on the same shapes). CPU
 * devices: batch 1. --gemm MxNxK: those shapes instead (set "custom"). */
#include "bench.h"
#include "bench_timing.h"
#include "cl_host.h"
#include "fii_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gemm_shape {
  const char *set, *what;
  uint64_t m, n, k;
} gemm_shape;

typedef struct gemm_launch {
  const dcn_gemm *g;
  uint64_t m, n, k;
  cl_mem *a, b, c;
} gemm_launch;

static dcnv4_status launch_gemm(dcnv4_context *ctx, int set, void *arg,
                                cl_event *end) {
  gemm_launch *l = arg;
  return dcn_gemm_linear(ctx, l->g, l->m, l->n, l->k, l->a[set], l->b, NULL,
                         l->c, end, "bench");
}

static void bench_one(dcnv4_context *ctx, const options *o, const gemm_shape *s,
                      dcnv4_dtype dtype, results *res) {
  const uint64_t m = s->m, n = s->n, k = s->k;
  /* The same configuration on 257 rows against the float64 reference. */
  fii_case c;
  memset(&c, 0, sizeof c);
  c.op = FII_GEMM;
  c.dtype = dtype;
  c.out_dtype = dtype;
  c.m = 257;
  c.n = (int)n;
  c.k = (int)k;
  rng r = {(uint64_t)(n * 31 + k)};
  dcnv4_status st;
  const double err = fii_check(&c, ctx, &r, &st);
  const dcn_gemm_spec spec = {dtype, dtype, DCN_GEMM_NONE, false,
                              m * (n > k ? n : k) >= ((uint64_t)1 << 31)};
  dcn_gemm g;
  const size_t es = dcnv4_dtype_size(dtype);
  const double bytes = (double)es * (double)(m * k + n * k + m * n);
  int nsets = input_sets(ctx, bytes);
  cl_mem *a = calloc((size_t)nsets, sizeof *a);
  cl_mem b = bench_random_input(ctx, dtype, n * k, &r, NULL);
  cl_mem out = host_buffer(ctx, m * n * es, NULL);
  int ok =
      a && b && out && dcn_gemm_prepare_spec(ctx, &spec, &g) == DCNV4_SUCCESS;
  for (int i = 0; i < nsets && ok; i++)
    ok = (a[i] = bench_random_input(ctx, dtype, m * k, &r, NULL)) != NULL;
  double ms = -1;
  if (ok) {
    gemm_launch l = {&g, m, n, k, a, b, out};
    /* Back to back, as gemm_anchor.py times torch.matmul: all launches
     * queued before the first runs, each from the previous one's end to
     * its last command's end (a GEMM split along K is two commands, the
     * parts and linear_reduce). A marker before each launch would also
     * time the device waiting for the host to submit the next one. */
    ms = time_launches(ctx, o->reps, nsets, TIME_BACK_TO_BACK, launch_gemm, &l);
  } else
    fprintf(stderr, "GEMM %llux%llux%llu: cannot set up (%s)\n",
            (unsigned long long)m, (unsigned long long)n, (unsigned long long)k,
            dcnv4_context_last_error(ctx));
  for (int i = 0; a && i < nsets; i++)
    host_release(a[i]);
  free(a);
  host_release(b);
  host_release(out);
  char shape_text[40];
  snprintf(shape_text, sizeof shape_text, "%llux%llux%llu",
           (unsigned long long)m, (unsigned long long)n, (unsigned long long)k);
  const measurement x = {.op = "gemm",
                         .set = s->set,
                         .shape = shape_text,
                         .config = s->what,
                         .dtype = dtype,
                         .ms = ms,
                         .bytes = bytes,
                         .verify_error = err,
                         .sets = nsets,
                         .reps = o->reps,
                         .flops = 2.0 * (double)m * (double)n * (double)k};
  record_row(res, &x);
}

void bench_gemm(dcnv4_context *ctx, const options *o, int is_gpu,
                results *res) {
  /* FlashInternImage-T (C 64) and -B (C 112), levels 0-3: the projection,
   * fc1 and fc2 of each. --quick: T's levels 0 and 2. */
  static const struct {
    const char *set;
    int channels;
  } models[] = {{"fii-t", 64}, {"fii-b", 112}};
  static const struct {
    const char *what;
    int mult_n, mult_k;
  } kinds[] = {{"proj", 1, 1}, {"fc1", 4, 1}, {"fc2", 1, 4}};
  const dcnv4_dtype all[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  const dcnv4_dtype *dtypes = o->dtypes_given ? o->dtypes : all;
  const int ndtypes = o->dtypes_given ? o->ndtypes : 3;
  const uint64_t batch = is_gpu ? 64 : 1;
  for (int t = 0; t < ndtypes; t++) {
    /* --gemm: these shapes only */
    for (int i = 0; i < o->ngemms; i++) {
      const gemm_shape s = {"custom", "gemm", (uint64_t)o->gemms[i][0],
                            (uint64_t)o->gemms[i][1], (uint64_t)o->gemms[i][2]};
      bench_one(ctx, o, &s, dtypes[t], res);
    }
    for (size_t v = 0; v < sizeof models / sizeof *models && !o->ngemms; v++)
      for (int level = 0; level < 4; level++)
        for (size_t kd = 0; kd < sizeof kinds / sizeof *kinds; kd++) {
          if (o->quick && (v > 0 || level % 2))
            continue;
          const uint64_t side = (uint64_t)(56 >> level),
                         c = (uint64_t)models[v].channels << level;
          const gemm_shape s = {models[v].set, kinds[kd].what,
                                batch * side * side, c * kinds[kd].mult_n,
                                c * kinds[kd].mult_k};
          bench_one(ctx, o, &s, dtypes[t], res);
        }
  }
}
