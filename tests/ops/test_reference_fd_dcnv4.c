/* Finite-difference check of the float64 reference's DCNv4 gradients: for
 * L = <grad_output, forward(input, offset_mask)>, central differences of L
 * along single elements must match ref_dcnv4_backward.
 *
 * Tolerance: |fd - analytic| <= 1e-6 * (1 + |analytic|) with step 1e-5.
 * Bilinear sampling is only piecewise smooth: an element whose one-sided
 * differences disagree (a cell border or the window edge lies within the
 * step) is skipped and counted; the test fails if too many are skipped. */
#include "reference.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fd_problem {
  dcnv4_params p;
  dcnv4_shape s;
  double *in, *om, *go, *out;
} fd_problem;

static double loss(fd_problem *f) {
  ref_dcnv4_forward(&f->p, f->in, f->om, f->out);
  double l = 0;
  for (uint64_t i = 0; i < f->s.output_elements; i++)
    l += f->go[i] * f->out[i];
  return l;
}

/* Checks d loss / d x[i] for x one of the inputs; returns 1 if skipped. */
static int check_element(fd_problem *f, double *x, uint64_t i, double analytic,
                         const char *what) {
  const double h = 1e-5;
  double x0 = x[i];
  double l0 = loss(f);
  x[i] = x0 + h;
  double lp = loss(f);
  x[i] = x0 - h;
  double lm = loss(f);
  x[i] = x0;
  double right = (lp - l0) / h, left = (l0 - lm) / h;
  if (fabs(right - left) > 1e-4 * (1 + fabs(right)))
    return 1; /* a kink inside the step */
  double fd = (lp - lm) / (2 * h);
  CHECK(fabs(fd - analytic) <= 1e-6 * (1 + fabs(analytic)),
        "%s[%llu]: finite difference %.9g, reference gradient %.9g", what,
        (unsigned long long)i, fd, analytic);
  return 0;
}

static void run_config(const dcnv4_params *p, rng *r) {
  fd_problem f;
  f.p = *p;
  dcnv4_get_shape(p, &f.s);
  const dcnv4_shape *s = &f.s;
  f.in = malloc(sizeof(double) * s->input_elements);
  f.om = malloc(sizeof(double) * s->offset_mask_elements);
  f.go = malloc(sizeof(double) * s->output_elements);
  f.out = malloc(sizeof(double) * s->output_elements);
  double *gin = malloc(sizeof(double) * s->input_elements);
  double *gom = malloc(sizeof(double) * s->offset_mask_elements);
  for (uint64_t i = 0; i < s->input_elements; i++)
    f.in[i] = rng_uniform(r, -1, 1);
  for (uint64_t i = 0; i < s->output_elements; i++)
    f.go[i] = rng_uniform(r, -1, 1);
  const int K = s->points, lanes = p->group * K * 3;
  for (uint64_t i = 0; i < s->offset_mask_elements; i++) {
    int lane = (int)(i % (uint64_t)s->offset_mask_stride);
    int in_group = lane % (3 * K);
    f.om[i] = lane >= lanes      ? 1e4
              : in_group < 2 * K ? rng_normal(r) * 1.5
                                 : rng_uniform(r, -1, 1);
  }
  ref_dcnv4_backward(p, f.in, f.om, f.go, gin, gom);

  int skipped = 0, checked = 0;
  for (int t = 0; t < 40; t++) {
    uint64_t i = rng_next(r) % s->input_elements;
    skipped += check_element(&f, f.in, i, gin[i], "grad_input");
    checked++;
  }
  for (int t = 0; t < 150; t++) {
    uint64_t i = rng_next(r) % s->offset_mask_elements;
    if ((int)(i % (uint64_t)s->offset_mask_stride) >= lanes) {
      CHECK(gom[i] == 0.0, "padding lane %llu has gradient %g",
            (unsigned long long)i, gom[i]);
      continue;
    }
    skipped += check_element(&f, f.om, i, gom[i], "grad_offset_mask");
    checked++;
  }
  CHECK(skipped * 10 <= checked, "%d of %d elements sat on kinks", skipped,
        checked);
  free(f.in);
  free(f.om);
  free(f.go);
  free(f.out);
  free(gin);
  free(gom);
}

int main(void) {
  rng r = {test_seed(99)};
  struct {
    int kh, kw, sh, sw, ph, pw, dh, dw, rc, sm;
    float os;
    int extra;
  } configs[] = {
      {3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1.0f, 0},
      {3, 3, 2, 1, 0, 1, 2, 1, 1, 0, 0.5f, 3},
      {5, 3, 1, 2, 2, 1, 1, 2, 0, 1, 1.7f, 0},
      {1, 4, 1, 1, 0, 2, 1, 1, 1, 1, 1.0f, 1},
      {2, 2, 1, 1, 1, 0, 3, 1, 0, 0, -0.8f, 0},
  };
  for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
    dcnv4_params p;
    dcnv4_params_init(&p);
    p.batch = 2;
    p.height_in = 5;
    p.width_in = 6;
    p.group = 2;
    p.group_channels = 3;
    p.kernel_h = configs[c].kh;
    p.kernel_w = configs[c].kw;
    p.stride_h = configs[c].sh;
    p.stride_w = configs[c].sw;
    p.pad_h = configs[c].ph;
    p.pad_w = configs[c].pw;
    p.dilation_h = configs[c].dh;
    p.dilation_w = configs[c].dw;
    p.remove_center = configs[c].rc;
    p.softmax = configs[c].sm;
    p.offset_scale = configs[c].os;
    int K = p.kernel_h * p.kernel_w - p.remove_center;
    p.offset_mask_stride =
        configs[c].extra ? p.group * K * 3 + configs[c].extra : 0;
    dcnv4_shape s;
    if (dcnv4_get_shape(&p, &s) != DCNV4_SUCCESS) {
      CHECK(0, "config %zu invalid", c);
      continue;
    }
    run_config(&p, &r);
  }
  return test_finish("test_reference_fd_dcnv4");
}
