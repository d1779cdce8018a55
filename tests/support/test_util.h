/* Helpers shared by the tests: random numbers, contexts, device tensors in
 * any dtype, error measures and failure reporting. */
#ifndef DCNV4_TEST_UTIL_H
#define DCNV4_TEST_UTIL_H

#include "cl_host.h"
#include "dcnv4.h"
#include "host_dtype.h"

#include <stdint.h>
#include <stdio.h>

/* Relative L2 tolerances of DESIGN.md §1.4. */
#define TOL_FP32 1e-5
#define TOL_FP16 1e-3
#define TOL_BF16 8e-3
double tolerance_for(dcnv4_dtype dtype);

/* ------------------------------------------------------------ failures */

extern int test_failures;
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      test_failures++;                                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
    }                                                                          \
  } while (0)
/* Prints the summary; returns the process exit status. */
int test_finish(const char *name);

/* ------------------------------------------------------------ random */

typedef struct rng {
  uint64_t state;
} rng;
uint64_t rng_next(rng *r);
double rng_uniform(rng *r, double lo, double hi);
int rng_int(rng *r, int lo, int hi); /* inclusive */
double rng_normal(rng *r);
/* Seed from TEST_SEED if set, else `fallback`; printed for reproduction. */
uint64_t test_seed(uint64_t fallback);

/* ------------------------------------------------------------ devices */

/* A context on $DCNV4_DEVICE / the default; aborts the test if none. */
dcnv4_context *test_context(void);
/* The same with profiling events (what the benchmark and tuner time with). */
dcnv4_context *test_profiling_context(void);

/* A device tensor holding `values` (rounded to dtype by the caller). */
cl_mem upload_values(dcnv4_context *ctx, const float *values, size_t count,
                     dcnv4_dtype dtype);
/* A device tensor of `count` elements filled with a NaN pattern, so that an
 * element the kernel forgets to write is caught. */
cl_mem poisoned_buffer(dcnv4_context *ctx, size_t count, dcnv4_dtype dtype);
/* Reads back `count` elements as doubles (malloc'd). */
double *download_values(dcnv4_context *ctx, cl_mem m, size_t count,
                        dcnv4_dtype dtype);

/* One product of dcnv4_linear_forward on random fp32 data (m x k inputs,
 * n x k weights, with or without a bias) against its float64 reference:
 * the relative L2 error, or +inf with *status set where the call failed. */
double linear_product_error(dcnv4_context *ctx, rng *r, int m, int n, int k,
                            int with_bias, dcnv4_status *status);

/* ------------------------------------------------------------ measures */

/* ||got - ref|| / ||ref|| (||got - ref|| if ref is all zero); NaN anywhere in
 * got gives +inf. */
double rel_l2(const double *got, const double *ref, size_t n);
/* rel_l2 of values stored in dtype, relative to at least the type's
 * smallest normal: a reference below it (an output of one value 4e-12,
 * which fp16 stores as 0) is compared absolutely at that scale, where its
 * own rounding to the type is no error. */
double rel_l2_stored(const double *got, const double *ref, size_t n,
                     dcnv4_dtype dtype);
double *to_doubles(const float *v, size_t n);

/* Temporary folder (mkdtemp) and recursive removal. */
char *make_temp_dir(const char *tag);
void remove_tree(const char *path);

#endif
