/* The layers' GEMM (dcnv4_linear_forward: y = x W^T + b, fp32) against a
 * float64 product, for odd sizes (1, 7, 129, 216, ... rows, columns and
 * inner dimension, none a multiple of any tile), with and without a bias,
 * on every tile variant of linear.cl (split along K, short tiles) and on
 * CLBlast; bad few-tile parameters are refused; a tuned
 * configuration the device cannot run falls back to the default; bad
 * arguments are rejected before anything is written.
 *
 * usage: test_linear [--count N]
 * Tolerance (DESIGN.md §1.4, relative L2 per product): fp32 1e-5. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The backends and tile variants (tilem x tilen x tilek, vec columns and
 * local work-items; rows per work-item follow), each within OpenCL 1.2's
 * minimum of 32 KiB local memory and 256 work-items. */
static const char *const variants[] = {
    "linear.backend=0",
    "linear.backend=1;linear.tilem=128;linear.tilen=128;linear.tilek=16;"
    "linear.vec=8;linear.local=256",
    "linear.backend=1;linear.tilem=128;linear.tilen=64;linear.tilek=16;"
    "linear.vec=4;linear.local=256",
    "linear.backend=1;linear.tilem=64;linear.tilen=64;linear.tilek=16;"
    "linear.vec=4;linear.local=256",
    "linear.backend=1;linear.tilem=64;linear.tilen=32;linear.tilek=16;"
    "linear.vec=4;linear.local=64",
    "linear.backend=1;linear.tilem=128;linear.tilen=128;linear.tilek=8;"
    "linear.vec=8;linear.local=256",
    "linear.backend=1;linear.tilem=32;linear.tilen=64;linear.tilek=32;"
    "linear.vec=8;linear.local=64",
    "linear.backend=1;linear.tilem=256;linear.tilen=64;linear.tilek=8;"
    "linear.vec=4;linear.local=256",
    "linear.backend=1;linear.tilem=32;linear.tilen=32;linear.tilek=4;"
    "linear.vec=4;linear.local=16",
    /* Few-tile GEMMs (linear.c): split along K into up to 64 parts of one
     * chunk and more, as many work-groups as 16 per compute unit (so that
     * the products here split on any device); then 32-row short tiles,
     * themselves split (on a few compute units only 1-tile products take
     * them). */
    "linear.backend=1;linear.tilem=32;linear.tilen=32;linear.tilek=4;"
    "linear.vec=4;linear.local=16;linear.ksplit=64;linear.fill=16;"
    "linear.kmin=4",
    "linear.backend=1;linear.tilem=64;linear.tilen=32;linear.tilek=16;"
    "linear.vec=4;linear.local=64;linear.shortm=32;linear.ksplit=8;"
    "linear.fill=16;linear.kmin=16",
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

static const int sizes_m[] = {1, 7, 129, 300, 1031};
static const int sizes_nk[] = {1, 3, 7, 8, 16, 27, 56, 129, 216};

static void random_products(dcnv4_context *ctx, rng *r, int count) {
  for (size_t v = 0; v < NVARIANTS; v++) {
    CHECK(dcnv4_context_set_tuning(ctx, variants[v]) == DCNV4_SUCCESS,
          "set_tuning %s", variants[v]);
    uint64_t fallbacks = dcnv4_context_tuning_fallbacks(ctx);
    double worst = 0;
    /* The corners first (1 x 1 x 1, a tile's edge on every side), then
     * random odd sizes. */
    for (int c = 0; c < count + 2; c++) {
      int m, n, k;
      if (c == 0)
        m = n = k = 1;
      else if (c == 1)
        m = 129, n = 216, k = 129;
      else {
        m = sizes_m[rng_int(r, 0, (int)(sizeof sizes_m / sizeof *sizes_m) - 1)];
        n = sizes_nk[rng_int(r, 0,
                             (int)(sizeof sizes_nk / sizeof *sizes_nk) - 1)];
        k = sizes_nk[rng_int(r, 0,
                             (int)(sizeof sizes_nk / sizeof *sizes_nk) - 1)];
      }
      for (int with_bias = 0; with_bias < 2; with_bias++) {
        dcnv4_status st;
        double err = linear_product_error(ctx, r, m, n, k, with_bias, &st);
        if (st != DCNV4_SUCCESS)
          fprintf(stderr, "  %dx%dx%d: %s\n", m, n, k,
                  dcnv4_context_last_error(ctx));
        CHECK(err <= TOL_FP32, "%s: %dx%dx%d%s: rel L2 %.3g > %.0e",
              variants[v], m, n, k, with_bias ? " + bias" : "", err, TOL_FP32);
        if (err > worst)
          worst = err;
      }
    }
    CHECK(dcnv4_context_tuning_fallbacks(ctx) == fallbacks,
          "%s fell back to the default", variants[v]);
    printf("%-100s worst rel L2 %.2e\n", variants[v], worst);
  }
}

/* A tuned tile the device cannot run (4 x 4 tiles of 8-column work-items)
 * falls back to the built-in configuration, counted and still right. */
static void fallback(dcnv4_context *ctx, rng *r) {
  CHECK(dcnv4_context_set_tuning(
            ctx, "linear.backend=1;linear.tilem=4;linear.tilen=4;linear.vec=8;"
                 "linear.local=64") == DCNV4_SUCCESS,
        "set_tuning");
  uint64_t before = dcnv4_context_tuning_fallbacks(ctx);
  dcnv4_status st;
  double err = linear_product_error(ctx, r, 33, 20, 17, 1, &st);
  CHECK(err <= TOL_FP32, "fallback: rel L2 %.3g (%s)", err,
        st == DCNV4_SUCCESS ? "ran" : dcnv4_context_last_error(ctx));
  CHECK(dcnv4_context_tuning_fallbacks(ctx) == before + 1,
        "an unusable tile was not counted as a fallback");
  dcnv4_context_set_tuning(ctx, "");
}

/* Bad arguments: a status, a message, and the output untouched. */
static void bad_arguments(dcnv4_context *ctx) {
  float x[16] = {0}, w[16] = {0};
  cl_mem X = upload_values(ctx, x, 16, DCNV4_FLOAT32),
         W = upload_values(ctx, w, 16, DCNV4_FLOAT32),
         Y = poisoned_buffer(ctx, 16, DCNV4_FLOAT32);
  CHECK(dcnv4_linear_forward(NULL, 3, 4, 4, X, W, NULL, Y, 0, NULL, NULL) ==
            DCNV4_ERROR_NULL_POINTER,
        "NULL context");
  CHECK(dcnv4_linear_forward(ctx, 0, 4, 4, X, W, NULL, Y, 0, NULL, NULL) ==
            DCNV4_ERROR_INVALID_SHAPE,
        "0 rows");
  CHECK(dcnv4_linear_forward(ctx, 3, 0, 4, X, W, NULL, Y, 0, NULL, NULL) ==
            DCNV4_ERROR_INVALID_SHAPE,
        "0 out_features");
  CHECK(dcnv4_linear_forward(ctx, 3, 4, -1, X, W, NULL, Y, 0, NULL, NULL) ==
            DCNV4_ERROR_INVALID_SHAPE,
        "negative in_features");
  CHECK(dcnv4_linear_forward(ctx, 5, 4, 4, X, W, NULL, Y, 0, NULL, NULL) !=
            DCNV4_SUCCESS,
        "an input too small");
  CHECK(dcnv4_linear_forward(ctx, 3, 4, 4, X, NULL, NULL, Y, 0, NULL, NULL) !=
            DCNV4_SUCCESS,
        "NULL weight");
  CHECK(dcnv4_linear_forward(ctx, 3, 4, 4, X, W, NULL, X, 0, NULL, NULL) !=
            DCNV4_SUCCESS,
        "output aliasing the input");
  CHECK(dcnv4_linear_forward(ctx, 3, 4, 4, X, W, W, Y, 0, NULL, NULL) ==
            DCNV4_SUCCESS,
        "bias sharing the weight's buffer (both read-only): %s",
        dcnv4_context_last_error(ctx));
  CHECK(dcnv4_linear_forward(ctx, 3, 4, 4, X, W, NULL, Y, 1, NULL, NULL) !=
            DCNV4_SUCCESS,
        "a wait list count without a list");
  CHECK(dcnv4_context_last_error(ctx)[0] != '\0', "no message");
  /* The few-tile parameters out of range: refused, named. */
  const char *const bad_tuning[] = {"linear.ksplit=0", "linear.fill=0",
                                    "linear.kmin=3", "linear.shortm=2"};
  for (size_t i = 0; i < sizeof bad_tuning / sizeof *bad_tuning; i++) {
    char param[16];
    sscanf(bad_tuning[i], "linear.%15[a-z]", param);
    CHECK(dcnv4_context_set_tuning(ctx, bad_tuning[i]) ==
                  DCNV4_ERROR_INVALID_PARAMETER &&
              strstr(dcnv4_context_last_error(ctx), param),
          "%s: %s", bad_tuning[i], dcnv4_context_last_error(ctx));
  }
  clReleaseMemObject(X);
  clReleaseMemObject(W);
  clReleaseMemObject(Y);
}

int main(int argc, char **argv) {
  int count = 6;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atoi(argv[++i]);
  rng r = {test_seed(0x11ea5)};
  dcnv4_context *ctx = test_context();
  random_products(ctx, &r, count);
  fallback(ctx, &r);
  bad_arguments(ctx);
  dcnv4_context_destroy(ctx);
  return test_finish("linear");
}
