/* A FlashDeformAttn test problem: parameters, random inputs, and a check of
 * the device's forward and backward against the float64 reference. */
#ifndef DCNV4_FDA_PROBLEM_H
#define DCNV4_FDA_PROBLEM_H

#include "test_util.h"

typedef struct fda_problem {
  dcnv4_fda_params p;
  dcnv4_fda_shape s;
  /* Inputs as the device sees them (already rounded to the dtype). */
  float *value, *sampling, *grad_output;
} fda_problem;

/* Locations mostly in [-0.15, 1.15] (so the window edges are crossed);
 * `special_fraction` of them are exactly 0 or 1, far outside (up to 1e30),
 * infinite or NaN. Logits ~ N(0, 2^2), a fifth of the rows shifted by
 * +-(100..1000) (the softmax must subtract the row maximum). */
void fda_problem_init(fda_problem *pr, const dcnv4_fda_params *p, rng *r,
                      double special_fraction);
void fda_problem_free(fda_problem *pr);

typedef struct fda_errors {
  double output, grad_value, grad_sampling;
} fda_errors;

/* Runs forward (and backward if asked) on the device into NaN-poisoned
 * buffers and measures relative L2 errors against the reference. Returns 0,
 * or -1 if a library call failed (message printed). */
int fda_problem_run(dcnv4_context *ctx, const fda_problem *pr, int backward,
                    fda_errors *err);

/* One-line description for failure messages. */
void fda_problem_describe(const dcnv4_fda_params *p, char *out, size_t size);

#endif
