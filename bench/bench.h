/* Shared by the benchmark's files: the options, the result table and how a
 * row is recorded and printed. */
#ifndef DCNV4_BENCH_H
#define DCNV4_BENCH_H

#include "dcnv4.h"

typedef struct shape {
  const char *set;
  int n, h, w, c;
} shape;

typedef struct options {
  const char *device;
  const char *out_dir;
  int quick, full_size, reps, plot;
  int reps_given, dtypes_given; /* --reps, --dtype on the command line */
  dcnv4_dtype dtypes[3];
  int ndtypes;
  int group_channels[4];
  int nd;
  int forward, backward;
  int ops;          /* BENCH_OP_* bits */
  shape shapes[16]; /* --shape: instead of the paper's */
  int nshapes;
  int queries[8]; /* --queries: FlashDeformAttn rows instead of the default */
  int nqueries;
  int gemms[16][3]; /* --gemm: M, N, K of GEMM rows instead of the models' */
  int ngemms;
} options;

enum {
  BENCH_OP_CORE = 1,
  BENCH_OP_LAYER = 2,
  BENCH_OP_FDA = 4,
  BENCH_OP_FII = 8,
  BENCH_OP_GEMM = 16
};

typedef struct row {
  char op[24], set[16], shape[40], config[16];
  dcnv4_dtype dtype;
  double ms, bytes, gbps, fraction, verify_error, tolerance;
  double images_per_s, share; /* FlashInternImage rows, else 0 */
  double tflops;              /* GEMM rows, else 0 */
  int sets, reps;
} row;

typedef struct results {
  row *rows;
  int count, capacity;
  double copy_gbps;
  double launch_floor_ms; /* an empty kernel's own event (bench_timing.h) */
  int failures;
} results;

/* What one row measured (the CUDA anchors are timed apart, by
 * bench/anchor/op_anchor.py, and joined by bench/anchor/join.py).
 * tolerance 0: the operators' (DESIGN.md §1.4). images: per launch, for an
 * images-per-second figure; share: of the forward, for a model stage;
 * flops: per launch, for a TFLOP/s figure (GEMM rows). */
typedef struct measurement {
  const char *op, *set, *shape, *config;
  dcnv4_dtype dtype;
  double ms, bytes, verify_error;
  int sets, reps;
  double tolerance;
  int images;
  double share;
  double flops;
} measurement;

/* Adds the row (fraction of the copy bandwidth of this run), prints it, and
 * counts a verification failure. */
void record_row(results *res, const measurement *m);
struct rng;
/* Random values in [-1, 1) of n elements in the dtype: the device copy (or
 * NULL), and the rounded values as doubles when `exact` is not NULL
 * (bench_layer.c). */
cl_mem bench_random_input(dcnv4_context *ctx, dcnv4_dtype dtype, size_t n,
                          struct rng *r, double *exact);

/* Number of input sets whose one pass is several times the device cache. */
int input_sets(dcnv4_context *ctx, double bytes_per_set);

/* The FlashDeformAttn operator on Deformable DETR's encoder and decoder
 * shapes. */
void bench_fda(dcnv4_context *ctx, const options *o, dcnv4_dtype dtype,
               int is_gpu, results *res);

/* Forward of the full DCNv4 layer (projections, core, output projection). */
void bench_dcnv4_layer(dcnv4_context *ctx, const options *o, const shape *s,
                       int d, dcnv4_dtype dtype, results *res);

/* FlashInternImage-T/S/B/L forward (issue 31): throughput, batch-1
 * latency and the time of each stage. */
void bench_fii(dcnv4_context *ctx, const options *o, int is_gpu, results *res);

/* The layers' GEMM alone (issue 32) at FlashInternImage-T/B's projection
 * and MLP shapes, batch 64: TFLOP/s in fp32, fp16 and bf16. */
void bench_gemm(dcnv4_context *ctx, const options *o, int is_gpu, results *res);

#endif
