/* Finite-difference check of the float64 reference's FlashDeformAttn
 * gradients: for loss = <grad_output, forward(value, sampling_loc_attn)>,
 * central differences along single elements must match ref_fda_backward.
 * No OpenCL device is used.
 *
 * Step h = 1e-6 for value elements and locations, 1e-5 for logits.
 * Tolerance: |fd - analytic| <= 1e-6 * (1 + |analytic|). The loss is linear
 * in value and, within a bilinear cell, in each location coordinate, so
 * those differences are exact up to rounding; the softmax makes the logit
 * differences O(h^2) accurate. Bilinear sampling is only piecewise smooth: a
 * location whose sampling coordinate (loc * size - 0.5) lies within 1e-3
 * pixels of an integer or of the window edges -1 and size is skipped before
 * any difference is taken (and counted; the test fails if more than a tenth
 * of the sampled locations are skipped). */
#include "reference.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KINK_MARGIN 1e-3 /* pixels */

typedef struct fd_problem {
  dcnv4_fda_params p;
  dcnv4_fda_shape s;
  double *value, *sampling, *go, *out;
} fd_problem;

static double loss(fd_problem *f) {
  ref_fda_forward(&f->p, f->value, f->sampling, f->out);
  double l = 0;
  for (uint64_t i = 0; i < f->s.output_elements; i++)
    l += f->go[i] * f->out[i];
  return l;
}

static void check_element(fd_problem *f, double *x, uint64_t i, double h,
                          double analytic, const char *what) {
  double x0 = x[i];
  x[i] = x0 + h;
  double lp = loss(f);
  x[i] = x0 - h;
  double lm = loss(f);
  x[i] = x0;
  double fd = (lp - lm) / (2 * h);
  CHECK(fabs(fd - analytic) <= 1e-6 * (1 + fabs(analytic)),
        "%s[%llu]: finite difference %.9g, reference gradient %.9g", what,
        (unsigned long long)i, fd, analytic);
}

/* Whether the coordinate of location lane `lane` of a row sits near a kink
 * of the bilinear interpolation or the window edge. */
static int near_kink(const dcnv4_fda_params *p, double loc, int lane) {
  int point = lane / 2, l = point / p->points;
  int size = p->spatial_shapes[l][lane % 2 ? 0 : 1];
  double c = loc * size - 0.5;
  if (c <= -1 - KINK_MARGIN || c >= size + KINK_MARGIN)
    return 0; /* well outside: the gradient is 0 on both sides */
  return fabs(c - floor(c + 0.5)) < KINK_MARGIN + 1e-6 * size ||
         fabs(c - size) < KINK_MARGIN;
}

static void run_config(const dcnv4_fda_params *p, rng *r) {
  fd_problem f;
  f.p = *p;
  if (dcnv4_fda_get_shape(p, &f.s) != DCNV4_SUCCESS) {
    CHECK(0, "invalid config");
    return;
  }
  const dcnv4_fda_shape *s = &f.s;
  const int LK = p->levels * p->points, stride = s->sampling_stride;
  f.value = malloc(sizeof(double) * s->value_elements);
  f.sampling = malloc(sizeof(double) * s->sampling_elements);
  f.go = malloc(sizeof(double) * s->output_elements);
  f.out = malloc(sizeof(double) * s->output_elements);
  double *gv = malloc(sizeof(double) * s->value_elements);
  double *gs = malloc(sizeof(double) * s->sampling_elements);
  for (uint64_t i = 0; i < s->value_elements; i++)
    f.value[i] = rng_uniform(r, -1, 1);
  for (uint64_t i = 0; i < s->output_elements; i++)
    f.go[i] = rng_uniform(r, -1, 1);
  for (uint64_t i = 0; i < s->sampling_elements; i++)
    f.sampling[i] = (int)(i % (uint64_t)stride) < 2 * LK
                        ? rng_uniform(r, -0.2, 1.2)
                        : rng_normal(r) * 2;
  ref_fda_backward(p, f.value, f.sampling, f.go, gv, gs);

  for (int t = 0; t < 40; t++) {
    uint64_t i = rng_next(r) % s->value_elements;
    check_element(&f, f.value, i, 1e-6, gv[i], "grad_value");
  }
  int skipped = 0, locations = 0;
  for (int t = 0; t < 150; t++) {
    uint64_t i = rng_next(r) % s->sampling_elements;
    int lane = (int)(i % (uint64_t)stride);
    if (lane >= 2 * LK) {
      check_element(&f, f.sampling, i, 1e-5, gs[i], "grad_logit");
      continue;
    }
    locations++;
    if (near_kink(p, f.sampling[i], lane)) {
      skipped++;
      continue;
    }
    check_element(&f, f.sampling, i, 1e-6, gs[i], "grad_location");
  }
  CHECK(skipped * 10 <= locations, "%d of %d locations sat near kinks", skipped,
        locations);
  printf("B%d Q%d G%d D%d L%d K%d: %d locations checked, %d skipped near "
         "kinks\n",
         (int)p->batch, (int)p->queries, (int)p->group, (int)p->group_channels,
         (int)p->levels, (int)p->points, locations - skipped, skipped);
  /* The logit gradients of a row sum to zero (softmax invariance). */
  for (uint64_t row = 0; row < s->sampling_elements / (uint64_t)stride; row++) {
    double sum = 0, mag = 0;
    for (int i = 0; i < LK; i++) {
      sum += gs[row * (uint64_t)stride + 2 * (uint64_t)LK + (uint64_t)i];
      mag += fabs(gs[row * (uint64_t)stride + 2 * (uint64_t)LK + (uint64_t)i]);
    }
    CHECK(fabs(sum) <= 1e-12 * (1 + mag), "row %llu: logit gradients sum to %g",
          (unsigned long long)row, sum);
  }
  free(f.value);
  free(f.sampling);
  free(f.go);
  free(f.out);
  free(gv);
  free(gs);
}

int main(void) {
  rng r = {test_seed(77)};
  struct {
    int b, q, g, d, l, k, shapes[4][2], gap;
  } configs[] = {
      {2, 3, 2, 3, 2, 4, {{6, 5}, {3, 2}}, 0},
      {1, 4, 1, 1, 1, 1, {{4, 7}}, 0},
      {1, 2, 3, 2, 3, 2, {{5, 5}, {1, 1}, {2, 3}}, 2},
      {2, 2, 2, 5, 4, 3, {{9, 4}, {4, 2}, {2, 1}, {1, 3}}, 0},
      {1, 3, 1, 4, 2, 5, {{40, 37}, {13, 11}}, 1},
  };
  for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
    dcnv4_fda_params p;
    dcnv4_fda_params_init(&p);
    p.batch = configs[c].b;
    p.queries = configs[c].q;
    p.group = configs[c].g;
    p.group_channels = configs[c].d;
    p.levels = configs[c].l;
    p.points = configs[c].k;
    int32_t row = configs[c].gap;
    for (int l = 0; l < p.levels; l++) {
      p.spatial_shapes[l][0] = configs[c].shapes[l][0];
      p.spatial_shapes[l][1] = configs[c].shapes[l][1];
      p.level_start[l] = row;
      row += configs[c].shapes[l][0] * configs[c].shapes[l][1] + configs[c].gap;
    }
    p.value_len = row;
    run_config(&p, &r);
  }
  return test_finish("test_reference_fd_fda");
}
