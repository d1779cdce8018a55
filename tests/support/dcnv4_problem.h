/* A DCNv4 test problem: parameters, random inputs, and a check of the
 * device's forward and backward against the float64 reference. */
#ifndef DCNV4_TEST_PROBLEM_H
#define DCNV4_TEST_PROBLEM_H

#include "test_util.h"

typedef struct dcnv4_problem {
  dcnv4_params p;
  dcnv4_shape s;
  /* Inputs as the device sees them (already rounded to the dtype). */
  float *input, *offset_mask, *grad_output;
} dcnv4_problem;

/* Offsets: mostly within a few pixels, `far_fraction` of them far outside
 * the image (up to 1e6); padding lanes hold 1e4 and must not matter. */
void problem_init(dcnv4_problem *pr, const dcnv4_params *p, rng *r,
                  double far_fraction);
void problem_free(dcnv4_problem *pr);

typedef struct dcnv4_errors {
  double output, grad_input, grad_offset_mask;
} dcnv4_errors;

/* Runs forward (and backward if asked) on the device into poisoned buffers
 * and measures relative L2 errors against the reference. Returns 0, or -1 if
 * a library call failed (message printed). */
int problem_run(dcnv4_context *ctx, const dcnv4_problem *pr, int backward,
                dcnv4_errors *err);

/* A DCNv4 configuration as a row of a test table. */
typedef struct dcnv4_test_case {
  int n, h, w, g, d, kh, kw, sh, sw, ph, pw, dh, dw;
  float os;
  int rc, sm;
  /* 0: the default offset-row stride; else group*K*3 + extra_stride - 1 */
  int extra_stride;
} dcnv4_test_case;

/* The parameters of a table row in `dtype`. */
void dcnv4_case_params(const dcnv4_test_case *c, dcnv4_dtype dtype,
                       dcnv4_params *p);

/* One-line description for failure messages. */
void problem_describe(const dcnv4_params *p, char *out, size_t size);

#endif
