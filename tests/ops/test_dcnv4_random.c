/* DCNv4 forward and backward on the device against the float64 reference:
 * a fixed list of unusual configurations, then random ones.
 *
 * usage: test_dcnv4_random [--count N] [--dtype NAME] [--no-fixed]
 *   --no-fixed  random configurations only (skip the list of corners)
 * Tolerances (DESIGN.md §1.4, relative L2): fp32 1e-5, fp16 1e-3, bf16 8e-3,
 * for the output and both gradients. */
#include "dcnv4_problem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef dcnv4_test_case config;

/* Shapes upstream gets wrong or refuses, and other corners. */
static const config fixed[] = {
    /* n  h  w  g  d kh kw sh sw ph pw dh dw   os rc sm extra */
    {2, 9, 9, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0},  /* upstream's */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1.0f, 0, 0, 0},   /* 1x1 image */
    {1, 1, 1, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0},   /* 1x1, pad */
    {1, 5, 7, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0},   /* odd D */
    {1, 6, 6, 7, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0},   /* D = 1 */
    {1, 6, 5, 1, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0}, /* wide */
    {2, 8, 8, 2, 8, 2, 2, 1, 1, 0, 0, 1, 1, 1.0f, 0, 0, 0},   /* even k */
    {1, 9, 9, 2, 4, 4, 4, 2, 2, 1, 2, 1, 1, 1.0f, 1, 0, 0},   /* even, rc */
    {1, 7, 9, 2, 8, 1, 3, 1, 1, 0, 1, 1, 1, 1.0f, 1, 0, 3},   /* 1x3, rc */
    {1, 9, 9, 1, 8, 7, 7, 1, 1, 3, 3, 1, 1, 1.0f, 1, 1, 0},   /* 7x7 softmax */
    {1, 11, 13, 2, 8, 3, 5, 3, 2, 2, 0, 3, 2, 1.5f, 0, 0, 1}, /* big dil */
    {1, 8, 8, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1, 0.0f, 0, 0, 0},  /* scale 0 */
    {1, 8, 8, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1, -0.7f, 0, 1, 0}, /* negative */
    {3, 5, 4, 3, 6, 3, 3, 2, 2, 0, 0, 1, 1, 2.0f, 0, 0, 5},   /* pad 0 */
    {1, 4, 30, 2, 4, 1, 9, 1, 3, 0, 4, 1, 2, 1.0f, 0, 0, 0},  /* 1x9 */
};

static const int channel_choices[] = {1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 64};

static void random_params(rng *r, dcnv4_dtype dtype, dcnv4_params *p) {
  config c;
  c.n = rng_int(r, 1, 2);
  c.kh = rng_int(r, 1, 5);
  c.kw = rng_int(r, 1, 5);
  c.dh = rng_int(r, 1, 3);
  c.dw = rng_int(r, 1, 3);
  c.sh = rng_int(r, 1, 3);
  c.sw = rng_int(r, 1, 3);
  c.ph = rng_int(r, 0, 3);
  c.pw = rng_int(r, 0, 3);
  c.h = rng_int(r, 1, 12);
  c.w = rng_int(r, 1, 12);
  /* Keep the output non-empty. */
  while (c.h + 2 * c.ph < c.dh * (c.kh - 1) + 1)
    c.ph++;
  while (c.w + 2 * c.pw < c.dw * (c.kw - 1) + 1)
    c.pw++;
  c.g = rng_int(r, 1, 4);
  c.d = channel_choices[rng_int(
      r, 0, (int)(sizeof channel_choices / sizeof channel_choices[0]) - 1)];
  c.rc = c.kh * c.kw > 1 && rng_int(r, 0, 3) == 0;
  c.sm = rng_int(r, 0, 4) == 0;
  c.os = (float)(rng_int(r, 0, 2) == 0 ? rng_uniform(r, 0.25, 2.5) : 1.0);
  c.extra_stride = rng_int(r, 0, 2) == 0 ? rng_int(r, 1, 9) : 0;
  dcnv4_case_params(&c, dtype, p);
}

static void check_problem(dcnv4_context *ctx, const dcnv4_params *p, rng *r,
                          int *count) {
  dcnv4_problem pr;
  problem_init(&pr, p, r, 0.1);
  dcnv4_errors e;
  char what[256];
  problem_describe(p, what, sizeof what);
  double tol = tolerance_for(p->dtype);
  if (problem_run(ctx, &pr, 1, &e) != 0)
    CHECK(0, "%s: library call failed", what);
  else {
    CHECK(e.output <= tol, "%s: output error %.3g > %.0e", what, e.output, tol);
    CHECK(e.grad_input <= tol, "%s: grad_input error %.3g > %.0e", what,
          e.grad_input, tol);
    CHECK(e.grad_offset_mask <= tol, "%s: grad_offset_mask error %.3g > %.0e",
          what, e.grad_offset_mask, tol);
    if (getenv("TEST_VERBOSE"))
      printf("%-80s out %.2e gin %.2e gom %.2e\n", what, e.output, e.grad_input,
             e.grad_offset_mask);
  }
  (*count)++;
  problem_free(&pr);
}

int main(int argc, char **argv) {
  int count = 40;
  int only_dtype = -1;
  bool with_fixed = true;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-fixed"))
      with_fixed = false;
    else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
      dcnv4_dtype d;
      if (parse_dtype(argv[++i], &d) != 0) {
        fprintf(stderr, "unknown dtype %s\n", argv[i]);
        return 2;
      }
      only_dtype = (int)d;
    }
  }
  rng r = {test_seed(20240117)};
  dcnv4_context *ctx = test_context();
  const dcnv4_dtype dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  int done = 0;
  for (size_t t = 0; t < 3; t++) {
    if (!with_fixed || (only_dtype >= 0 && (int)dtypes[t] != only_dtype))
      continue;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
      dcnv4_params p;
      dcnv4_case_params(&fixed[i], dtypes[t], &p);
      check_problem(ctx, &p, &r, &done);
    }
  }
  for (int i = 0; i < count; i++) {
    dcnv4_params p;
    dcnv4_dtype dtype =
        only_dtype >= 0 ? (dcnv4_dtype)only_dtype : dtypes[rng_int(&r, 0, 2)];
    random_params(&r, dtype, &p);
    check_problem(ctx, &p, &r, &done);
  }
  printf("%d configurations checked\n", done);
  dcnv4_context_destroy(ctx);
  return test_finish("test_dcnv4_random");
}
