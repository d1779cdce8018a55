/* Non-finite inputs (include/dcnv4.h, "Non-finite values" at
 * dcnv4_backward): NaN, +-Inf and huge finite values (+-1e30, 3e38) in the
 * input / value, offsets / locations, weights / logits and grad_output of
 * both operators, forward and backward in every mode (default, the split
 * GPU-path backward, deterministic, NVIDIA's stage-0 forward), every
 * dtype.
 *
 * Checks, against the float64 reference on the same (dtype-rounded) data:
 *  (a) every call returns within a bounded time (alarm) without a crash;
 *  (b) the class of every output element (finite, NaN, +Inf, -Inf) is the
 *      reference's, and the elements finite in both agree within the
 *      tolerances of DESIGN.md §1.4.
 * Exact agreement needs the sampling positions to be the same in fp32 and
 * float64 (the documented condition): the finite data are on coarse dyadic
 * grids (offsets multiples of 1/4, including integers, so that zero
 * bilinear weights occur; locations multiples of 1/32; values multiples of
 * 1/32), which makes every position and weight exact in both.
 *
 * usage: test_nonfinite [--count N] */
#include "reference.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double grid(rng *r, int lo, int hi, int denom) {
  return (double)rng_int(r, lo, hi) / denom;
}

/* A special value, or NAN_NONE for a regular one. */
static float special(rng *r, int huge) {
  switch (rng_int(r, 0, huge ? 5 : 2)) {
  case 0: return NAN;
  case 1: return INFINITY;
  case 2: return -INFINITY;
  case 3: return 1e30f;
  case 4: return -1e30f;
  default: return 3e38f;
  }
}

static int classify(double v) {
  return isnan(v) ? 1 : isinf(v) ? (v > 0 ? 2 : 3) : 0;
}

/* Compares one tensor; returns 0 if it agrees. */
static int compare(const char *what, const char *tensor, const double *got,
                   const double *ref, size_t n, double tol) {
  size_t bad = 0, first = 0, nonfinite = 0;
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    int cg = classify(got[i]), cr = classify(ref[i]);
    nonfinite += cr != 0;
    if (cg != cr) {
      if (!bad)
        first = i;
      bad++;
      continue;
    }
    if (cg == 0) {
      num += (got[i] - ref[i]) * (got[i] - ref[i]);
      den += ref[i] * ref[i];
    }
  }
  double err = den > 0 ? sqrt(num / den) : sqrt(num);
  CHECK(bad == 0,
        "%s: %s: %zu of %zu elements have another class than the reference "
        "(first [%zu]: got %g, expected %g)",
        what, tensor, bad, n, first, bad ? got[first] : 0.0,
        bad ? ref[first] : 0.0);
  CHECK(err <= tol, "%s: %s: finite elements differ by %.3g > %.0e", what,
        tensor, err, tol);
  if (getenv("TEST_VERBOSE"))
    printf("%-60s %-16s %6zu non-finite of %6zu, err %.2e\n", what, tensor,
           nonfinite, n, err);
  return bad == 0 && err <= tol ? 0 : 1;
}

/* ------------------------------------------------------------ DCNv4 */

static void dcnv4_case(dcnv4_context *const *ctxs, int nctx, rng *r,
                       dcnv4_dtype dtype, int index) {
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = rng_int(r, 1, 2);
  p.height_in = rng_int(r, 2, 9);
  p.width_in = rng_int(r, 2, 9);
  p.group = rng_int(r, 1, 3);
  static const int ds[] = {1, 3, 4, 8, 16};
  p.group_channels = ds[rng_int(r, 0, 4)];
  p.kernel_h = rng_int(r, 1, 3);
  p.kernel_w = rng_int(r, 1, 3);
  p.pad_h = p.kernel_h / 2;
  p.pad_w = p.kernel_w / 2;
  p.stride_h = rng_int(r, 1, 2);
  p.remove_center = p.kernel_h * p.kernel_w > 1 && rng_int(r, 0, 3) == 0;
  p.softmax = rng_int(r, 0, 2) == 0;
  static const float scales[] = {1.0f, 0.5f, 2.0f, 0.0f};
  p.offset_scale = scales[rng_int(r, 0, 3)];
  p.offset_mask_stride = 0;
  p.dtype = dtype;
  dcnv4_shape s;
  if (dcnv4_get_shape(&p, &s) != DCNV4_SUCCESS) {
    CHECK(0, "bad generated shape");
    return;
  }
  const double rate = index % 3 == 0 ? 0.15 : 0.03;
  const size_t ni = s.input_elements, nm = s.offset_mask_elements,
               no = s.output_elements;
  float *in = malloc(ni * sizeof *in), *om = malloc(nm * sizeof *om),
        *go = malloc(no * sizeof *go);
  for (size_t i = 0; i < ni; i++)
    in[i] = rng_uniform(r, 0, 1) < rate ? special(r, 0)
                                        : (float)grid(r, -32, 32, 32);
  for (size_t i = 0; i < no; i++)
    go[i] = rng_uniform(r, 0, 1) < rate / 3 ? special(r, 0)
                                            : (float)grid(r, -32, 32, 32);
  const int K = s.points;
  for (size_t row = 0; row < nm / (size_t)s.offset_mask_stride; row++) {
    float *o = om + row * (size_t)s.offset_mask_stride;
    for (int g = 0; g < p.group; g++) {
      float *q = o + g * K * 3;
      for (int k = 0; k < 2 * K; k++)
        q[k] = rng_uniform(r, 0, 1) < rate ? special(r, 1)
                                           : (float)grid(r, -10, 10, 4);
      for (int k = 0; k < K; k++)
        q[2 * K + k] =
            rng_uniform(r, 0, 1) < rate / (p.softmax ? 4 : 1)
                ? special(r, 0)
                : (float)(p.softmax ? grid(r, -12, 12, 4) : grid(r, -8, 8, 8));
    }
    for (int lane = p.group * K * 3; lane < s.offset_mask_stride; lane++)
      o[lane] = NAN; /* padding: never read */
  }
  for (size_t i = 0; i < ni; i++)
    in[i] = round_to_dtype(in[i], dtype);
  for (size_t i = 0; i < nm; i++)
    om[i] = round_to_dtype(om[i], dtype);
  for (size_t i = 0; i < no; i++)
    go[i] = round_to_dtype(go[i], dtype);
  double *din = to_doubles(in, ni), *dom = to_doubles(om, nm),
         *dgo = to_doubles(go, no);
  double *ref_out = malloc(no * sizeof(double)),
         *ref_gi = malloc(ni * sizeof(double)),
         *ref_gom = malloc(nm * sizeof(double));
  ref_dcnv4_forward(&p, din, dom, ref_out);
  ref_dcnv4_backward(&p, din, dom, dgo, ref_gi, ref_gom);
  double tol = tolerance_for(dtype);
  char desc[200];
  snprintf(desc, sizeof desc,
           "dcnv4 %s N%d %dx%d G%d D%d k%dx%d s%d os%g rc%d sm%d",
           dcnv4_dtype_name(dtype), (int)p.batch, (int)p.height_in,
           (int)p.width_in, (int)p.group, (int)p.group_channels,
           (int)p.kernel_h, (int)p.kernel_w, (int)p.stride_h,
           (double)p.offset_scale, (int)p.remove_center, (int)p.softmax);
  /* Each mode's context (see main) and name; mode 2 is the deterministic
   * backward. */
  static const struct {
    int context;
    const char *name;
  } modes[] = {{0, "default"},
               {1, "gpu paths"},
               {0, "deterministic"},
               {2, "tiled backward, footprints"},
               {3, "NVIDIA forward"}};
  for (int mode = 0; mode < (int)(sizeof modes / sizeof modes[0]); mode++) {
    if (modes[mode].context >= nctx)
      continue;
    dcnv4_context *ctx = ctxs[modes[mode].context];
    p.deterministic = mode == 2;
    char what[260];
    snprintf(what, sizeof what, "%s [%s]", desc, modes[mode].name);
    cl_mem d_in = upload_values(ctx, in, ni, dtype);
    cl_mem d_om = upload_values(ctx, om, nm, dtype);
    cl_mem d_go = upload_values(ctx, go, no, dtype);
    cl_mem d_out = poisoned_buffer(ctx, no, dtype);
    cl_mem d_gi = poisoned_buffer(ctx, ni, dtype);
    cl_mem d_gom = poisoned_buffer(ctx, nm, dtype);
    dcnv4_backward_buffers b = {d_in, d_om, d_go, d_gi, d_gom, NULL};
    if (dcnv4_forward(ctx, &p, d_in, d_om, d_out, 0, NULL, NULL) ||
        dcnv4_backward(ctx, &p, &b, 0, NULL, NULL) ||
        dcnv4_context_finish(ctx)) {
      CHECK(0, "%s: call failed: %s", what, dcnv4_context_last_error(ctx));
    } else {
      double *out = download_values(ctx, d_out, no, dtype);
      double *gi = download_values(ctx, d_gi, ni, dtype);
      double *gom = download_values(ctx, d_gom, nm, dtype);
      /* The padding lanes hold zeros; the reference too. */
      compare(what, "output", out, ref_out, no, tol);
      compare(what, "grad_input", gi, ref_gi, ni, tol);
      compare(what, "grad_offset_mask", gom, ref_gom, nm, tol);
      free(out);
      free(gi);
      free(gom);
    }
    host_release(d_in);
    host_release(d_om);
    host_release(d_go);
    host_release(d_out);
    host_release(d_gi);
    host_release(d_gom);
  }
  free(in);
  free(om);
  free(go);
  free(din);
  free(dom);
  free(dgo);
  free(ref_out);
  free(ref_gi);
  free(ref_gom);
}

/* ------------------------------------------------------------ FDA */

static void fda_case(dcnv4_context *const *ctxs, int nctx, rng *r,
                     dcnv4_dtype dtype, int index) {
  dcnv4_fda_params p;
  dcnv4_fda_params_init(&p);
  p.batch = rng_int(r, 1, 2);
  p.queries = rng_int(r, 1, 12);
  p.group = rng_int(r, 1, 3);
  static const int ds[] = {1, 3, 4, 8, 16};
  p.group_channels = ds[rng_int(r, 0, 4)];
  p.levels = rng_int(r, 1, 3);
  p.points = rng_int(r, 1, 4);
  p.dtype = dtype;
  int32_t row = 0;
  for (int l = 0; l < p.levels; l++) {
    p.spatial_shapes[l][0] = 1 << rng_int(r, 0, 3); /* 1..8: exact grids */
    p.spatial_shapes[l][1] = 1 << rng_int(r, 0, 3);
    p.level_start[l] = row;
    row += p.spatial_shapes[l][0] * p.spatial_shapes[l][1];
  }
  p.value_len = row;
  dcnv4_fda_shape s;
  if (dcnv4_fda_get_shape(&p, &s) != DCNV4_SUCCESS) {
    CHECK(0, "bad generated shape");
    return;
  }
  const double rate = index % 3 == 0 ? 0.15 : 0.03;
  const size_t nv = s.value_elements, ns = s.sampling_elements,
               no = s.output_elements;
  const int LK = p.levels * p.points;
  float *val = malloc(nv * sizeof *val), *sa = malloc(ns * sizeof *sa),
        *go = malloc(no * sizeof *go);
  for (size_t i = 0; i < nv; i++)
    val[i] = rng_uniform(r, 0, 1) < rate ? special(r, 0)
                                         : (float)grid(r, -32, 32, 32);
  for (size_t i = 0; i < no; i++)
    go[i] = rng_uniform(r, 0, 1) < rate / 3 ? special(r, 0)
                                            : (float)grid(r, -32, 32, 32);
  for (size_t q = 0; q < ns / (size_t)(3 * LK); q++) {
    float *o = sa + q * 3 * (size_t)LK;
    int kind = rng_int(r, 0, 19); /* a few rows: all outside, odd logits */
    for (int i = 0; i < 2 * LK; i++)
      o[i] = kind == 0                     ? 5.0f
             : rng_uniform(r, 0, 1) < rate ? special(r, 1)
                                           : (float)grid(r, -6, 38, 32);
    for (int i = 0; i < LK; i++)
      o[2 * LK + i] = kind == 1 ? -INFINITY
                      : rng_uniform(r, 0, 1) < rate / 4
                          ? special(r, 0)
                          : (float)grid(r, -12, 12, 4);
    if (kind == 0)
      o[2 * LK] = NAN;
  }
  for (size_t i = 0; i < nv; i++)
    val[i] = round_to_dtype(val[i], dtype);
  for (size_t i = 0; i < ns; i++)
    sa[i] = round_to_dtype(sa[i], dtype);
  for (size_t i = 0; i < no; i++)
    go[i] = round_to_dtype(go[i], dtype);
  double *dv = to_doubles(val, nv), *ds_ = to_doubles(sa, ns),
         *dgo = to_doubles(go, no);
  double *ref_out = malloc(no * sizeof(double)),
         *ref_gv = malloc(nv * sizeof(double)),
         *ref_gsa = malloc(ns * sizeof(double));
  ref_fda_forward(&p, dv, ds_, ref_out);
  ref_fda_backward(&p, dv, ds_, dgo, ref_gv, ref_gsa);
  double tol = tolerance_for(dtype);
  char desc[200];
  snprintf(desc, sizeof desc, "fda %s B%d Q%d G%d D%d L%d K%d",
           dcnv4_dtype_name(dtype), (int)p.batch, (int)p.queries, (int)p.group,
           (int)p.group_channels, (int)p.levels, (int)p.points);
  /* Context 0 in both backward modes; the others (forward variants) in
   * the default mode. */
  for (int run = 0; run < nctx + 1; run++) {
    const int mode = run == 1;
    const int c = run < 2 ? 0 : run - 1;
    dcnv4_context *ctx = ctxs[c];
    p.deterministic = mode;
    char what[260];
    snprintf(what, sizeof what, "%s [context %d, %s]", desc, c,
             mode ? "deterministic" : "default");
    cl_mem d_v = upload_values(ctx, val, nv, dtype);
    cl_mem d_sa = upload_values(ctx, sa, ns, dtype);
    cl_mem d_go = upload_values(ctx, go, no, dtype);
    cl_mem d_out = poisoned_buffer(ctx, no, dtype);
    cl_mem d_gv = poisoned_buffer(ctx, nv, dtype);
    cl_mem d_gsa = poisoned_buffer(ctx, ns, dtype);
    dcnv4_fda_backward_buffers b = {d_v, d_sa, d_go, d_gv, d_gsa, NULL};
    if (dcnv4_fda_forward(ctx, &p, d_v, d_sa, d_out, 0, NULL, NULL) ||
        dcnv4_fda_backward(ctx, &p, &b, 0, NULL, NULL) ||
        dcnv4_context_finish(ctx)) {
      CHECK(0, "%s: call failed: %s", what, dcnv4_context_last_error(ctx));
    } else {
      double *out = download_values(ctx, d_out, no, dtype);
      double *gv = download_values(ctx, d_gv, nv, dtype);
      double *gsa = download_values(ctx, d_gsa, ns, dtype);
      compare(what, "output", out, ref_out, no, tol);
      compare(what, "grad_value", gv, ref_gv, nv, tol);
      compare(what, "grad_sampling", gsa, ref_gsa, ns, tol);
      free(out);
      free(gv);
      free(gsa);
    }
    host_release(d_v);
    host_release(d_sa);
    host_release(d_go);
    host_release(d_out);
    host_release(d_gv);
    host_release(d_gsa);
  }
  free(val);
  free(sa);
  free(go);
  free(dv);
  free(ds_);
  free(dgo);
  free(ref_out);
  free(ref_gv);
  free(ref_gsa);
}

int main(int argc, char **argv) {
  int count = 12;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atoi(argv[++i]);
    else {
      fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  /* (a): a hang (e.g. a compare-and-swap loop on a NaN) ends the test. */
  alarm(300);
  rng r = {test_seed(20250302)};
  dcnv4_context *ctxs[4];
  ctxs[0] = test_context();
  /* The GPU code paths of the default mode on any device (the forward's
   * stage 0 in its shape-generic program); FlashDeformAttn's forward with
   * its points packed in local memory (stage 2), specialized, in blocks of
   * 2 heads (NVIDIA's defaults). */
  setenv("DCNV4_TUNING",
         "dcnv4_forward.stage=0;dcnv4_backward.split=1;"
         "dcnv4_backward.specialize=1;fda_forward.stage=2;"
         "fda_forward.specialize=1;"
         "fda_forward.groups=2",
         1);
  ctxs[1] = test_context();
  /* The tiled backward, two-row tiles, on any device and image width, and
   * the forward's point footprints in local memory (stage 3);
   * FlashDeformAttn's forward with 24- or 32-byte points in local memory
   * (stage 1) and its split backward, generic programs, small
   * work-groups. */
  setenv("DCNV4_TUNING",
         "dcnv4_backward.split=1;dcnv4_backward.specialize=1;"
         "dcnv4_backward.halo=1;dcnv4_backward.rows=2;"
         "dcnv4_forward.stage=3;dcnv4_forward.rows=2;"
         "fda_forward.stage=1;fda_forward.local=24;"
         "fda_backward.split=1;fda_backward.local=24",
         1);
  ctxs[2] = test_context();
  /* NVIDIA's forward defaults on any device: stage 0 specialized, 2 groups
   * per work-group over 4 rows; FlashDeformAttn's fp16 one (stage 2, one
   * head per block of queries) and the split backward, specialized,
   * 4-wide. */
  setenv("DCNV4_TUNING",
         "dcnv4_forward.stage=0;dcnv4_forward.specialize=1;"
         "dcnv4_forward.unroll=1;dcnv4_forward.groups=2;"
         "dcnv4_forward.rows=4;"
         "fda_forward.stage=2;"
         "fda_forward.specialize=1;"
         "fda_forward.groups=1;"
         "fda_backward.split=1;fda_backward.specialize=1;"
         "fda_backward.vec=4",
         1);
  ctxs[3] = test_context();
  const dcnv4_dtype dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  int done = 0;
  for (int i = 0; i < count; i++, done++)
    dcnv4_case(ctxs, 4, &r, dtypes[i % 3], i);
  for (int i = 0; i < count; i++, done++)
    fda_case(ctxs, 4, &r, dtypes[i % 3], i);
  printf("%d configurations checked\n", done);
  for (int i = 0; i < 4; i++)
    dcnv4_context_destroy(ctxs[i]);
  return test_finish("test_nonfinite");
}
