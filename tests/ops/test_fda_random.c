/* FlashDeformAttn forward and backward on the device against the float64
 * reference: a fixed list of unusual configurations, then random ones.
 *
 * usage: test_fda_random [--count N] [--dtype NAME] [--fixed-dtypes LIST]
 *   --count N          random configurations (default 20)
 *   --dtype NAME       only this dtype
 *   --fixed-dtypes L   dtypes the fixed list runs in: "all" (default) or
 *                      "float32" (the random ones always mix all three)
 * Tolerances (DESIGN.md §1.4, relative L2): fp32 1e-5, fp16 1e-3, bf16 8e-3,
 * for the output and both gradients. */
#include "fda_problem.h"

#include <stdlib.h>
#include <string.h>

typedef struct config {
  int b, q, g, d, k;
  /* "HxW,HxW,...": the levels; "auto:N" picks N small random levels */
  const char *levels;
  /* 0: levels packed in order (exclusive cumulative sum, Nv = sum H*W);
   * 1: gaps before, between and after the levels, stored in reverse order */
  int layout;
  const char *what;
  /* fraction of special locations (exactly 0 or 1, far outside, huge,
   * infinite, NaN); 0 means the default 0.05 */
  double special;
} config;

static const config fixed[] = {
    {2, 10, 2, 16, 4, "8x8,4x4", 0, "upstream-like"},
    {1, 7, 1, 1, 1, "5x7", 0, "1 level, 1 point, D=1, G=1"},
    {2, 9, 3, 3, 2, "9x7,5x4,3x2", 0, "D=3"},
    {1, 6, 2, 5, 1, "1x1", 0, "1x1 level, D=5"},
    {1, 5, 1, 48, 3, "6x5,3x3", 0, "D=48"},
    {1, 8, 2, 4, 2, "1x1,2x1,1x3,4x4,7x2", 0, "5 levels with 1x1"},
    {1, 4, 2, 2, 1, "auto:16", 0, "16 levels"},
    {1, 6, 1, 2, 4, "2x3000,1500x3", 0, "large levels (precision)"},
    {2, 5, 2, 6, 3, "4x5,3x3,2x2", 1, "gaps, levels out of order"},
    {3, 1, 1, 7, 8, "6x4,3x2", 0, "Q=1, K=8, D=7"},
    {1, 12, 8, 32, 4, "13x17,7x9,4x5,2x3", 0, "paper-like heads"},
    {2, 3, 1, 4, 64, "auto:16", 0, "L*K = 1024"},
    {2, 16, 2, 8, 4, "7x9,3x5", 0, "mostly special locations", 0.6},
};

/* Fills the level tables from a description. */
static void set_levels(dcnv4_fda_params *p, const char *levels, int layout,
                       rng *r) {
  int n = 0;
  if (!strncmp(levels, "auto:", 5)) {
    n = atoi(levels + 5);
    for (int l = 0; l < n; l++) {
      p->spatial_shapes[l][0] = rng_int(r, 1, 5);
      p->spatial_shapes[l][1] = rng_int(r, 1, 5);
    }
  } else {
    const char *c = levels;
    while (*c && n < DCNV4_FDA_MAX_LEVELS) {
      char *end;
      p->spatial_shapes[n][0] = (int32_t)strtol(c, &end, 10);
      p->spatial_shapes[n][1] = (int32_t)strtol(end + 1, &end, 10);
      n++;
      c = *end == ',' ? end + 1 : end;
    }
  }
  p->levels = n;
  int32_t row = layout ? 3 : 0;
  for (int i = 0; i < n; i++) {
    int l = layout ? n - 1 - i : i;
    p->level_start[l] = row;
    row += p->spatial_shapes[l][0] * p->spatial_shapes[l][1] + (layout ? 2 : 0);
  }
  p->value_len = row + (layout ? 1 : 0);
}

static void to_params(const config *c, dcnv4_dtype dtype, rng *r,
                      dcnv4_fda_params *p) {
  dcnv4_fda_params_init(p);
  p->batch = c->b;
  p->queries = c->q;
  p->group = c->g;
  p->group_channels = c->d;
  p->points = c->k;
  p->dtype = dtype;
  set_levels(p, c->levels, c->layout, r);
}

static const int channel_choices[] = {1, 2,  3,  4,  5,  6,  7,
                                      8, 12, 16, 24, 32, 48, 64};

static void random_params(rng *r, dcnv4_dtype dtype, dcnv4_fda_params *p) {
  dcnv4_fda_params_init(p);
  p->batch = rng_int(r, 1, 2);
  p->queries = rng_int(r, 1, 24);
  p->group = rng_int(r, 1, 4);
  p->group_channels = channel_choices[rng_int(
      r, 0, (int)(sizeof channel_choices / sizeof channel_choices[0]) - 1)];
  p->points = rng_int(r, 1, 8);
  p->dtype = dtype;
  int levels = rng_int(r, 0, 5) == 0 ? rng_int(r, 6, 16) : rng_int(r, 1, 5);
  int big = rng_int(r, 0, 3) == 0;
  for (int l = 0; l < levels; l++) {
    p->spatial_shapes[l][0] = rng_int(r, 1, big ? 60 : 12);
    p->spatial_shapes[l][1] = rng_int(r, 1, big ? 60 : 12);
  }
  p->levels = levels;
  int gaps = rng_int(r, 0, 3) == 0;
  int32_t row = gaps ? rng_int(r, 0, 5) : 0;
  for (int l = 0; l < levels; l++) {
    p->level_start[l] = row;
    row += p->spatial_shapes[l][0] * p->spatial_shapes[l][1] +
           (gaps ? rng_int(r, 0, 5) : 0);
  }
  p->value_len = row;
}

static void check_problem(dcnv4_context *ctx, const dcnv4_fda_params *p,
                          double special, rng *r, int *count) {
  fda_problem pr;
  fda_problem_init(&pr, p, r, special);
  fda_errors e;
  char what[512];
  fda_problem_describe(p, what, sizeof what);
  double tol = tolerance_for(p->dtype);
  if (fda_problem_run(ctx, &pr, 1, &e) != 0)
    CHECK(0, "%s: library call failed", what);
  else {
    CHECK(e.output <= tol, "%s: output error %.3g > %.0e", what, e.output, tol);
    CHECK(e.grad_value <= tol, "%s: grad_value error %.3g > %.0e", what,
          e.grad_value, tol);
    CHECK(e.grad_sampling <= tol,
          "%s: grad_sampling_loc_attn error %.3g > %.0e", what, e.grad_sampling,
          tol);
    if (getenv("TEST_VERBOSE"))
      printf("%-72s out %.2e gv %.2e gsa %.2e\n", what, e.output, e.grad_value,
             e.grad_sampling);
  }
  (*count)++;
  fda_problem_free(&pr);
}

int main(int argc, char **argv) {
  int count = 20;
  int only_dtype = -1, fixed_all = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
      dcnv4_dtype d;
      if (parse_dtype(argv[++i], &d) != 0) {
        fprintf(stderr, "unknown dtype %s\n", argv[i]);
        return 2;
      }
      only_dtype = (int)d;
    } else if (!strcmp(argv[i], "--fixed-dtypes") && i + 1 < argc)
      fixed_all = strcmp(argv[++i], "float32") != 0;
    else {
      fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  rng r = {test_seed(20240521)};
  dcnv4_context *ctx = test_context();
  const dcnv4_dtype dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  int done = 0;
  for (size_t t = 0; t < 3; t++) {
    if ((only_dtype >= 0 && (int)dtypes[t] != only_dtype) ||
        (!fixed_all && dtypes[t] != DCNV4_FLOAT32))
      continue;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
      dcnv4_fda_params p;
      to_params(&fixed[i], dtypes[t], &r, &p);
      check_problem(ctx, &p, fixed[i].special > 0 ? fixed[i].special : 0.05, &r,
                    &done);
    }
  }
  for (int i = 0; i < count; i++) {
    dcnv4_fda_params p;
    dcnv4_dtype dtype =
        only_dtype >= 0 ? (dcnv4_dtype)only_dtype : dtypes[rng_int(&r, 0, 2)];
    random_params(&r, dtype, &p);
    check_problem(ctx, &p, 0.05, &r, &done);
  }
  printf("%d configurations checked\n", done);
  dcnv4_context_destroy(ctx);
  return test_finish("test_fda_random");
}
