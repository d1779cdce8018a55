/* dcnv4-tune's search of linear_mma (the GEMM on 16-bit storage,
 * src/ops/linear/linear_mma.cl): tilings, then the layout, epilogue and
 * order switches, then the small-launch rule, per shape class
 * (docs/tuning.md §3.8). */
#ifndef DCNV4_TUNE_MMA_H
#define DCNV4_TUNE_MMA_H

#include "dcnv4.h"

#include <stddef.h>

/* The parameters in tuning-string order. */
enum {
  MMA_LOCAL,
  MMA_TILE_M,
  MMA_TILE_N,
  MMA_TILE_K,
  MMA_STAGES,
  MMA_SWIZZLE,
  MMA_STAGED,
  MMA_PREFETCH,
  MMA_RASTER,
  MMA_SMALL,
  MMA_SMALL_TILE_M,
  MMA_SMALL_TILE_N,
  MMA_SMALL_LOCAL,
  MMA_PARAMS
};
extern const char *const mma_param_names[MMA_PARAMS];
/* A tiling: the first MMA_TILING parameters (local .. swizzle). */
#define MMA_TILING 6
/* A small-launch rule: the last MMA_SMALL_RULE parameters (small ..
 * smalllocal). */
#define MMA_SMALL_RULE 4

/* One shape class (group_channels 0: more than 64 columns; 64: at most). */
typedef struct mma_class_result {
  int group_channels;
  int shapes; /* GEMM shapes of the class timed */
  int found;  /* a candidate beat the built-in default by 2 % */
  int values[MMA_PARAMS];
  double ms_total, default_ms_total;
  int tried, rejected;
} mma_class_result;

typedef struct mma_result {
  dcnv4_dtype dtype;
  int ran;   /* 0: the device's 16-bit GEMMs are not linear_mma.cl's */
  int error; /* the built-in default failed its check */
  mma_class_result cls[2];
} mma_result;

/* Whether the device's 16-bit GEMMs run linear_mma.cl (tensor-core PTX). */
int mma_is_default(dcnv4_context *ctx);

/* Searches linear_mma for `dtype` on the GEMMs (m, n, k) of `shapes`
 * until `deadline` (now_s() clock: `now`; at least one tiling and one
 * small-launch rule per class whatever the time left), each candidate checked
 * against the float64 reference on small products first, then timed (median of
 * `reps`) on every shape of its class; scores relative to the built-in
 * default. `ctx` times with profiling events (created with
 * enable_profiling). Leaves the context's override empty. */
void mma_search(dcnv4_context *ctx, dcnv4_dtype dtype,
                const size_t (*shapes)[3], int n, int reps, double deadline,
                double (*now)(void), int verbose, mma_result *res);
/* The same over the given tilings and small-launch rules instead of the
 * built-in lists (for the tests: small tilings build fast on PoCL). */
void mma_search_tilings(dcnv4_context *ctx, dcnv4_dtype dtype,
                        const size_t (*shapes)[3], int n, int reps,
                        double deadline, double (*now)(void), int verbose,
                        const int (*tilings)[MMA_TILING], int ntilings,
                        const int (*smalls)[MMA_SMALL_RULE], int nsmalls,
                        mma_result *res);

#endif
