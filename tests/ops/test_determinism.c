/* The deterministic backward (params->deterministic = 1) of both operators:
 *  - accuracy against the float64 reference with the tolerances of the
 *    default mode (DESIGN.md §1.4), on corner cases and random shapes;
 *  - bitwise reproducibility: grad_input / grad_offset_mask (grad_value /
 *    grad_sampling_loc_attn) from two runs in one context (one with a user
 *    workspace, one with context scratch) and one run in a second context
 *    whose work-group sizes differ (DCNV4_TUNING) are compared with memcmp;
 *  - the forward of both operators run twice is bitwise identical;
 *  - argument checks: deterministic outside {0, 1}, a workspace smaller than
 *    the query says: an error, nothing written.
 *
 * usage: test_determinism [--count N]   (N random shapes per operator) */
#include "dcnv4_problem.h"
#include "fda_problem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

static void *read_raw(dcnv4_context *ctx, cl_mem m, size_t bytes) {
  void *out = malloc(bytes + 1);
  if (host_read(ctx, m, out, bytes) != 0) {
    fprintf(stderr, "read failed\n");
    exit(1);
  }
  return out;
}

/* Bitwise results of one forward + backward. */
typedef struct raw_result {
  void *out, *grad_a, *grad_b; /* output; grad_input/value; grad_om/sampling */
} raw_result;

static void raw_free(raw_result *r) {
  free(r->out);
  free(r->grad_a);
  free(r->grad_b);
  memset(r, 0, sizeof *r);
}

static int same_bits(const raw_result *x, const raw_result *y, size_t out_bytes,
                     size_t a_bytes, size_t b_bytes, const char *what,
                     const char *how) {
  int ok = 1;
  if (memcmp(x->out, y->out, out_bytes) != 0) {
    CHECK(0, "%s: forward output differs bitwise (%s)", what, how);
    ok = 0;
  }
  if (memcmp(x->grad_a, y->grad_a, a_bytes) != 0) {
    CHECK(0, "%s: input/value gradient differs bitwise (%s)", what, how);
    ok = 0;
  }
  if (memcmp(x->grad_b, y->grad_b, b_bytes) != 0) {
    CHECK(0, "%s: offset/sampling gradient differs bitwise (%s)", what, how);
    ok = 0;
  }
  return ok;
}

/* ------------------------------------------------------------ DCNv4 */

static int dcnv4_raw(dcnv4_context *ctx, const dcnv4_problem *pr,
                     int user_workspace, raw_result *r) {
  const dcnv4_params *p = &pr->p;
  const dcnv4_shape *s = &pr->s;
  cl_mem in = upload_values(ctx, pr->input, s->input_elements, p->dtype);
  cl_mem om =
      upload_values(ctx, pr->offset_mask, s->offset_mask_elements, p->dtype);
  cl_mem go = upload_values(ctx, pr->grad_output, s->output_elements, p->dtype);
  cl_mem out = poisoned_buffer(ctx, s->output_elements, p->dtype);
  cl_mem gi = poisoned_buffer(ctx, s->input_elements, p->dtype);
  cl_mem gom = poisoned_buffer(ctx, s->offset_mask_elements, p->dtype);
  cl_mem ws = NULL;
  size_t ws_bytes = 0;
  int rc = -1;
  if (dcnv4_backward_workspace_size(p, &ws_bytes) != DCNV4_SUCCESS)
    goto done;
  if (user_workspace && !(ws = host_buffer(ctx, ws_bytes ? ws_bytes : 4, NULL)))
    goto done;
  dcnv4_backward_buffers b = {in, om, go, gi, gom, ws};
  if (dcnv4_forward(ctx, p, in, om, out, 0, NULL, NULL) != DCNV4_SUCCESS ||
      dcnv4_backward(ctx, p, &b, 0, NULL, NULL) != DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4: %s\n", dcnv4_context_last_error(ctx));
    goto done;
  }
  r->out = read_raw(ctx, out, s->output_bytes);
  r->grad_a = read_raw(ctx, gi, s->input_bytes);
  r->grad_b = read_raw(ctx, gom, s->offset_mask_bytes);
  rc = 0;
done:
  host_release(in);
  host_release(om);
  host_release(go);
  host_release(out);
  host_release(gi);
  host_release(gom);
  host_release(ws);
  return rc;
}

/* Offsets that send every point of every pixel close to one spot (one huge
 * bucket per image and group: the heapsort path). */
static void converge(dcnv4_problem *pr, rng *r) {
  const dcnv4_params *p = &pr->p;
  const dcnv4_shape *s = &pr->s;
  const int K = s->points;
  double tx = 0.5 * (p->width_in - 1) + 0.3,
         ty = 0.5 * (p->height_in - 1) + 0.2;
  for (int n = 0; n < p->batch; n++)
    for (int ho = 0; ho < s->height_out; ho++)
      for (int wo = 0; wo < s->width_out; wo++) {
        float *row = pr->offset_mask +
                     (((size_t)n * s->height_out + ho) * s->width_out + wo) *
                         (size_t)s->offset_mask_stride;
        int base_w = (p->dilation_w * (p->kernel_w - 1)) / 2;
        int base_h = (p->dilation_h * (p->kernel_h - 1)) / 2;
        double p0w = base_w - p->pad_w + wo * p->stride_w - base_w;
        double p0h = base_h - p->pad_h + ho * p->stride_h - base_h;
        for (int g = 0; g < p->group; g++) {
          int k = 0;
          for (int i = 0; i < p->kernel_w; i++)
            for (int j = 0; j < p->kernel_h; j++) {
              if (p->remove_center && i == p->kernel_w / 2 &&
                  j == p->kernel_h / 2)
                continue;
              double jit = rng_uniform(r, -0.05, 0.05);
              float *o = row + (size_t)g * K * 3 + 2 * k;
              o[0] = round_to_dtype((float)(tx - p0w - i * p->dilation_w + jit),
                                    p->dtype);
              o[1] = round_to_dtype((float)(ty - p0h - j * p->dilation_h - jit),
                                    p->dtype);
              k++;
            }
        }
      }
}

typedef struct dcfg {
  int n, h, w, g, d, kh, kw, sh, sw, ph, pw, dh, dw;
  float os;
  int rc, sm, extra, converge;
} dcfg;

static const dcfg dcnv4_fixed[] = {
    /* n  h  w  g  d kh kw sh sw ph pw dh dw   os rc sm extra conv */
    {2, 9, 9, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0, 0},
    {1, 1, 1, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0, 0},
    {1, 5, 7, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0, 0},
    {1, 6, 6, 7, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0, 0},
    {1, 9, 9, 2, 4, 4, 4, 2, 2, 1, 2, 1, 1, 1.0f, 1, 0, 0, 0},
    {1, 9, 9, 1, 8, 7, 7, 1, 1, 3, 3, 1, 1, 1.0f, 1, 1, 0, 0},
    {1, 11, 13, 2, 8, 3, 5, 3, 2, 2, 0, 3, 2, 1.5f, 0, 0, 1, 0},
    {1, 8, 8, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1, 0.0f, 0, 0, 0, 0},
    {1, 8, 8, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1, -0.7f, 0, 1, 0, 0},
    {3, 5, 4, 3, 6, 3, 3, 2, 2, 0, 0, 1, 1, 2.0f, 0, 0, 5, 0},
    {2, 12, 12, 2, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0, 1},
    {1, 10, 9, 1, 4, 5, 5, 1, 1, 2, 2, 1, 1, 1.0f, 1, 1, 0, 1},
};

static void dcnv4_params_of(const dcfg *c, dcnv4_dtype dtype, dcnv4_params *p) {
  const dcnv4_test_case row = {c->n,  c->h,  c->w,  c->g,  c->d,    c->kh,
                               c->kw, c->sh, c->sw, c->ph, c->pw,   c->dh,
                               c->dw, c->os, c->rc, c->sm, c->extra};
  dcnv4_case_params(&row, dtype, p);
  p->deterministic = 1;
}

static const int channel_choices[] = {1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 64};
#define NCHOICES (int)(sizeof channel_choices / sizeof channel_choices[0])

static void dcnv4_random(rng *r, dcnv4_dtype dtype, dcfg *c) {
  c->n = rng_int(r, 1, 2);
  c->kh = rng_int(r, 1, 5);
  c->kw = rng_int(r, 1, 5);
  c->dh = rng_int(r, 1, 3);
  c->dw = rng_int(r, 1, 3);
  c->sh = rng_int(r, 1, 3);
  c->sw = rng_int(r, 1, 3);
  c->ph = rng_int(r, 0, 3);
  c->pw = rng_int(r, 0, 3);
  c->h = rng_int(r, 1, 12);
  c->w = rng_int(r, 1, 12);
  while (c->h + 2 * c->ph < c->dh * (c->kh - 1) + 1)
    c->ph++;
  while (c->w + 2 * c->pw < c->dw * (c->kw - 1) + 1)
    c->pw++;
  c->g = rng_int(r, 1, 4);
  c->d = channel_choices[rng_int(r, 0, NCHOICES - 1)];
  c->rc = c->kh * c->kw > 1 && rng_int(r, 0, 3) == 0;
  c->sm = rng_int(r, 0, 4) == 0;
  c->os = (float)(rng_int(r, 0, 2) == 0 ? rng_uniform(r, 0.25, 2.5) : 1.0);
  c->extra = rng_int(r, 0, 2) == 0 ? rng_int(r, 1, 9) : 0;
  c->converge = rng_int(r, 0, 6) == 0;
  (void)dtype;
}

static void dcnv4_case(dcnv4_context *a, dcnv4_context *b, const dcfg *c,
                       dcnv4_dtype dtype, rng *r) {
  dcnv4_params p;
  dcnv4_params_of(c, dtype, &p);
  dcnv4_problem pr;
  problem_init(&pr, &p, r, 0.1);
  if (c->converge)
    converge(&pr, r);
  char what[256];
  problem_describe(&p, what, sizeof what);
  if (c->converge)
    strncat(what, " converging", sizeof what - strlen(what) - 1);
  double tol = tolerance_for(dtype);
  dcnv4_errors e;
  if (problem_run(a, &pr, 1, &e) != 0)
    CHECK(0, "%s: library call failed", what);
  else {
    CHECK(e.output <= tol, "%s: output error %.3g", what, e.output);
    CHECK(e.grad_input <= tol, "%s: grad_input error %.3g > %.0e", what,
          e.grad_input, tol);
    CHECK(e.grad_offset_mask <= tol, "%s: grad_offset_mask error %.3g > %.0e",
          what, e.grad_offset_mask, tol);
    if (getenv("TEST_VERBOSE"))
      printf("%-90s gin %.2e gom %.2e\n", what, e.grad_input,
             e.grad_offset_mask);
  }
  raw_result x = {0}, y = {0}, z = {0};
  if (dcnv4_raw(a, &pr, 1, &x) || dcnv4_raw(a, &pr, 0, &y) ||
      dcnv4_raw(b, &pr, 0, &z))
    CHECK(0, "%s: library call failed", what);
  else {
    const dcnv4_shape *s = &pr.s;
    if (same_bits(&x, &y, s->output_bytes, s->input_bytes, s->offset_mask_bytes,
                  what, "second run"))
      same_bits(&x, &z, s->output_bytes, s->input_bytes, s->offset_mask_bytes,
                what, "other work-group sizes");
  }
  raw_free(&x);
  raw_free(&y);
  raw_free(&z);
  problem_free(&pr);
}

/* ------------------------------------------------------------ FDA */

static int fda_raw(dcnv4_context *ctx, const fda_problem *pr,
                   int user_workspace, raw_result *r) {
  const dcnv4_fda_params *p = &pr->p;
  const dcnv4_fda_shape *s = &pr->s;
  cl_mem val = upload_values(ctx, pr->value, s->value_elements, p->dtype);
  cl_mem sa = upload_values(ctx, pr->sampling, s->sampling_elements, p->dtype);
  cl_mem go = upload_values(ctx, pr->grad_output, s->output_elements, p->dtype);
  cl_mem out = poisoned_buffer(ctx, s->output_elements, p->dtype);
  cl_mem gv = poisoned_buffer(ctx, s->value_elements, p->dtype);
  cl_mem gsa = poisoned_buffer(ctx, s->sampling_elements, p->dtype);
  cl_mem ws = NULL;
  size_t ws_bytes = 0;
  int rc = -1;
  if (dcnv4_fda_backward_workspace_size(p, &ws_bytes) != DCNV4_SUCCESS)
    goto done;
  if (user_workspace && !(ws = host_buffer(ctx, ws_bytes ? ws_bytes : 4, NULL)))
    goto done;
  dcnv4_fda_backward_buffers b = {val, sa, go, gv, gsa, ws};
  if (dcnv4_fda_forward(ctx, p, val, sa, out, 0, NULL, NULL) != DCNV4_SUCCESS ||
      dcnv4_fda_backward(ctx, p, &b, 0, NULL, NULL) != DCNV4_SUCCESS) {
    fprintf(stderr, "fda: %s\n", dcnv4_context_last_error(ctx));
    goto done;
  }
  r->out = read_raw(ctx, out, s->output_bytes);
  r->grad_a = read_raw(ctx, gv, s->value_bytes);
  r->grad_b = read_raw(ctx, gsa, s->sampling_bytes);
  rc = 0;
done:
  host_release(val);
  host_release(sa);
  host_release(go);
  host_release(out);
  host_release(gv);
  host_release(gsa);
  host_release(ws);
  return rc;
}

static void fda_random(rng *r, dcnv4_dtype dtype, dcnv4_fda_params *p) {
  dcnv4_fda_params_init(p);
  p->batch = rng_int(r, 1, 2);
  p->queries = rng_int(r, 1, 24);
  p->group = rng_int(r, 1, 4);
  p->group_channels = channel_choices[rng_int(r, 0, NCHOICES - 1)];
  p->points = rng_int(r, 1, 8);
  p->dtype = dtype;
  p->deterministic = 1;
  int levels = rng_int(r, 0, 5) == 0 ? rng_int(r, 6, 16) : rng_int(r, 1, 4);
  int big = rng_int(r, 0, 3) == 0;
  for (int l = 0; l < levels; l++) {
    p->spatial_shapes[l][0] = rng_int(r, 1, big ? 40 : 12);
    p->spatial_shapes[l][1] = rng_int(r, 1, big ? 40 : 12);
  }
  p->levels = levels;
  /* Sometimes gaps between levels and levels in reverse order. */
  int gaps = rng_int(r, 0, 3) == 0, reverse = rng_int(r, 0, 3) == 0;
  int32_t row = gaps ? rng_int(r, 0, 5) : 0;
  for (int i = 0; i < levels; i++) {
    int l = reverse ? levels - 1 - i : i;
    p->level_start[l] = row;
    row += p->spatial_shapes[l][0] * p->spatial_shapes[l][1] +
           (gaps ? rng_int(r, 0, 5) : 0);
  }
  p->value_len = row + (gaps ? rng_int(r, 0, 3) : 0);
}

static void fda_case(dcnv4_context *a, dcnv4_context *b,
                     const dcnv4_fda_params *p, double special, int converge,
                     rng *r) {
  fda_problem pr;
  fda_problem_init(&pr, p, r, special);
  if (converge) { /* every location near one spot: huge buckets */
    const int LK = p->levels * p->points;
    const uint64_t rows = pr.s.sampling_elements / (uint64_t)(3 * LK);
    for (uint64_t q = 0; q < rows; q++)
      for (int i = 0; i < 2 * LK; i++)
        pr.sampling[q * 3 * LK + i] = round_to_dtype(
            (float)(0.43 + rng_uniform(r, -0.01, 0.01)), p->dtype);
  }
  char what[512];
  fda_problem_describe(p, what, sizeof what);
  if (converge)
    strncat(what, " converging", sizeof what - strlen(what) - 1);
  double tol = tolerance_for(p->dtype);
  fda_errors e;
  if (fda_problem_run(a, &pr, 1, &e) != 0)
    CHECK(0, "%s: library call failed", what);
  else {
    CHECK(e.output <= tol, "%s: output error %.3g", what, e.output);
    CHECK(e.grad_value <= tol, "%s: grad_value error %.3g > %.0e", what,
          e.grad_value, tol);
    CHECK(e.grad_sampling <= tol,
          "%s: grad_sampling_loc_attn error %.3g > %.0e", what, e.grad_sampling,
          tol);
    if (getenv("TEST_VERBOSE"))
      printf("%-90s gv %.2e gsa %.2e\n", what, e.grad_value, e.grad_sampling);
  }
  raw_result x = {0}, y = {0}, z = {0};
  if (fda_raw(a, &pr, 1, &x) || fda_raw(a, &pr, 0, &y) ||
      fda_raw(b, &pr, 0, &z))
    CHECK(0, "%s: library call failed", what);
  else {
    const dcnv4_fda_shape *s = &pr.s;
    if (same_bits(&x, &y, s->output_bytes, s->value_bytes, s->sampling_bytes,
                  what, "second run"))
      same_bits(&x, &z, s->output_bytes, s->value_bytes, s->sampling_bytes,
                what, "other work-group sizes");
  }
  raw_free(&x);
  raw_free(&y);
  raw_free(&z);
  fda_problem_free(&pr);
}

/* ------------------------------------------------------------ checks */

static void argument_checks(dcnv4_context *ctx) {
  dcnv4_params p;
  dcnv4_params_init(&p);
  CHECK(p.deterministic == 0, "dcnv4_params_init: deterministic is not 0");
  p.batch = 1;
  p.height_in = p.width_in = 6;
  p.group = 2;
  p.group_channels = 4;
  p.deterministic = 2;
  size_t bytes = 0;
  CHECK(dcnv4_backward_workspace_size(&p, &bytes) ==
            DCNV4_ERROR_INVALID_PARAMETER,
        "deterministic = 2 accepted");
  p.deterministic = 1;
  CHECK(dcnv4_backward_workspace_size(&p, &bytes) == DCNV4_SUCCESS,
        "workspace query failed");
  /* P = 36*2*9, B = 2*7*7: 4 * (2B + 1 + ceil(B/256) + 3P) */
  size_t expect = 4 * (2 * 98 + 1 + 1 + 3 * 648);
  CHECK(bytes == expect, "dcnv4 workspace %zu, expected %zu", bytes, expect);
  rng r = {7};
  dcnv4_problem pr;
  problem_init(&pr, &p, &r, 0);
  const dcnv4_shape *s = &pr.s;
  cl_mem in = upload_values(ctx, pr.input, s->input_elements, p.dtype);
  cl_mem om =
      upload_values(ctx, pr.offset_mask, s->offset_mask_elements, p.dtype);
  cl_mem go = upload_values(ctx, pr.grad_output, s->output_elements, p.dtype);
  cl_mem gi = poisoned_buffer(ctx, s->input_elements, p.dtype);
  cl_mem gom = poisoned_buffer(ctx, s->offset_mask_elements, p.dtype);
  cl_mem small = host_buffer(ctx, bytes - 4, NULL);
  dcnv4_backward_buffers b = {in, om, go, gi, gom, small};
  CHECK(dcnv4_backward(ctx, &p, &b, 0, NULL, NULL) ==
            DCNV4_ERROR_BUFFER_TOO_SMALL,
        "a workspace 4 bytes short was accepted");
  CHECK(strstr(dcnv4_context_last_error(ctx), "workspace") != NULL,
        "message does not name the workspace: %s",
        dcnv4_context_last_error(ctx));
  p.deterministic = -1;
  b.workspace = NULL;
  CHECK(dcnv4_backward(ctx, &p, &b, 0, NULL, NULL) ==
            DCNV4_ERROR_INVALID_PARAMETER,
        "deterministic = -1 accepted by dcnv4_backward");
  double *g = download_values(ctx, gi, s->input_elements, p.dtype);
  CHECK(isnan(g[0]), "grad_input was written by a failed call");
  free(g);
  host_release(in);
  host_release(om);
  host_release(go);
  host_release(gi);
  host_release(gom);
  host_release(small);
  problem_free(&pr);

  dcnv4_fda_params f;
  dcnv4_fda_params_init(&f);
  CHECK(f.deterministic == 0, "dcnv4_fda_params_init: deterministic is not 0");
  f.batch = 1;
  f.queries = 5;
  f.group = 2;
  f.group_channels = 4;
  f.levels = 2;
  f.points = 3;
  f.spatial_shapes[0][0] = 4;
  f.spatial_shapes[0][1] = 3;
  f.spatial_shapes[1][0] = 2;
  f.spatial_shapes[1][1] = 2;
  f.level_start[1] = 12;
  f.value_len = 16;
  f.deterministic = 3;
  CHECK(dcnv4_fda_backward_workspace_size(&f, &bytes) ==
            DCNV4_ERROR_INVALID_PARAMETER,
        "fda: deterministic = 3 accepted");
  f.deterministic = 1;
  CHECK(dcnv4_fda_backward_workspace_size(&f, &bytes) == DCNV4_SUCCESS,
        "fda workspace query failed");
  /* P = 5*2*6 = 60, U = 2*(5*4 + 3*3) = 58 */
  expect = 4 * (2 * 58 + 1 + 1 + 3 * 60);
  CHECK(bytes == expect, "fda workspace %zu, expected %zu", bytes, expect);
  fda_problem fp;
  fda_problem_init(&fp, &f, &r, 0);
  cl_mem val = upload_values(ctx, fp.value, fp.s.value_elements, f.dtype);
  cl_mem sa = upload_values(ctx, fp.sampling, fp.s.sampling_elements, f.dtype);
  cl_mem fgo =
      upload_values(ctx, fp.grad_output, fp.s.output_elements, f.dtype);
  cl_mem gv = poisoned_buffer(ctx, fp.s.value_elements, f.dtype);
  cl_mem gsa = poisoned_buffer(ctx, fp.s.sampling_elements, f.dtype);
  cl_mem fsmall = host_buffer(ctx, bytes - 4, NULL);
  dcnv4_fda_backward_buffers fb = {val, sa, fgo, gv, gsa, fsmall};
  CHECK(dcnv4_fda_backward(ctx, &f, &fb, 0, NULL, NULL) ==
            DCNV4_ERROR_BUFFER_TOO_SMALL,
        "fda: a workspace 4 bytes short was accepted");
  g = download_values(ctx, gv, fp.s.value_elements, f.dtype);
  CHECK(isnan(g[0]), "grad_value was written by a failed call");
  free(g);
  host_release(val);
  host_release(sa);
  host_release(fgo);
  host_release(gv);
  host_release(gsa);
  host_release(fsmall);
  fda_problem_free(&fp);
}

int main(int argc, char **argv) {
  int count = 25;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atoi(argv[++i]);
    else {
      fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  rng r = {test_seed(20250301)};
  dcnv4_context *a = test_context();
  /* The second context runs the deterministic kernels with other (odd)
   * work-group sizes. */
  setenv("DCNV4_TUNING",
         "dcnv4_backward_deterministic.local=7;"
         "fda_backward_deterministic.local=13",
         1);
  dcnv4_context *b = test_context();
  argument_checks(a);
  const dcnv4_dtype dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  int done = 0;
  for (size_t i = 0; i < sizeof dcnv4_fixed / sizeof dcnv4_fixed[0]; i++)
    for (int t = 0; t < 3; t++, done++)
      dcnv4_case(a, b, &dcnv4_fixed[i], dtypes[t], &r);
  for (int i = 0; i < count; i++, done++) {
    dcfg c;
    dcnv4_dtype dtype = dtypes[rng_int(&r, 0, 2)];
    dcnv4_random(&r, dtype, &c);
    dcnv4_case(a, b, &c, dtype, &r);
  }
  for (int i = 0; i < count + 6; i++, done++) {
    dcnv4_fda_params p;
    fda_random(&r, dtypes[i % 3], &p);
    /* the first ones: many special locations, then converging ones */
    fda_case(a, b, &p, i < 3 ? 0.6 : 0.05, i >= 3 && i < 6, &r);
  }
  printf("%d configurations checked\n", done);
  dcnv4_context_destroy(a);
  dcnv4_context_destroy(b);
  return test_finish("test_determinism");
}
