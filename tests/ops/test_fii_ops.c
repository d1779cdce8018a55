/* The FlashInternImage model's kernels (src/ops/fii/fii_ops.h): dense
 * convolution, LayerNorm with its GELU and residual epilogues, residual
 * with layer scale, global average pooling and the GEMM epilogues (fused
 * into linear.cl, a pass after CLBlast) against the float64 reference, on
 * random shapes with the corners: 1x1 images, odd sizes, channel counts
 * that are multiples of nothing, 1 to 4096 channels per LayerNorm row, the
 * output aliasing the input (LayerNorm) or the residual; the GEMMs split
 * along K (deterministic: the same bits twice); then bad arguments: a status, a
 * message and the output untouched.
 *
 * The convolution, LayerNorm and pooling also on 16-bit activations (a few
 * fixed cases per dtype, at the model's shapes: each is a kernel variant).
 *
 * usage: test_fii_ops [--count N] [--only conv|norm|gemm|split|half|bad]
 * Tolerance (DESIGN.md §1.4): relative L2 of each output against the
 * float64 reference <= 1e-5 (fp32), 1e-3 (fp16), 8e-3 (bf16); 16-bit
 * outputs are rounded once, from fp32 sums, against an unrounded
 * reference. */
#include "fii_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double worst[5];
static int cases[5];

static void expect(fii_case *c, dcnv4_context *ctx, rng *r) {
  char name[160];
  fii_case_name(c, name, sizeof name);
  dcnv4_status st;
  double e = fii_check(c, ctx, r, &st);
  CHECK(st == DCNV4_SUCCESS, "%s: %s: %s", name, dcnv4_status_string(st),
        dcnv4_context_last_error(ctx));
  const double tol = tolerance_for(c->dtype);
  CHECK(e <= tol, "%s: rel L2 %.3g > %.0e", name, e, tol);
  if (getenv("TEST_VERBOSE"))
    printf("  %-60s %.2e\n", name, e);
  if (!(e <= worst[c->op]))
    worst[c->op] = e;
  cases[c->op]++;
}

static fii_case conv_case(int batch, int h, int w, int cin, int cout, int k,
                          int stride, int pad, int nchw, int bias) {
  fii_case c;
  memset(&c, 0, sizeof c);
  c.op = FII_CONV2D;
  c.conv =
      (dcn_conv2d_shape){batch, h, w, cin, cout, k, stride, pad, nchw != 0};
  c.with_bias = bias;
  return c;
}

static void convolutions(dcnv4_context *ctx, rng *r, int count) {
  /* The model's: the stem from the image (NCHW, 3 -> C/2 with bias, then
   * C/2 -> C channels-last), downsampling (no bias), odd sizes and 1x1. */
  fii_case fixed[] = {
      conv_case(1, 1, 1, 3, 8, 3, 2, 1, 1, 1),
      conv_case(2, 17, 15, 3, 32, 3, 2, 1, 1, 1),
      conv_case(1, 9, 9, 32, 64, 3, 2, 1, 0, 1),
      conv_case(2, 7, 5, 64, 128, 3, 2, 1, 0, 0),
      conv_case(1, 3, 3, 5, 70, 3, 2, 1, 0, 0),
      conv_case(1, 1, 1, 17, 33, 3, 2, 1, 0, 0),
      conv_case(1, 2, 2, 3, 5, 2, 2, 0, 1, 1),
  };
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
    expect(&fixed[i], ctx, r);
  for (int i = 0; i < count; i++) {
    const int k = rng_int(r, 1, 3), stride = rng_int(r, 1, 2),
              pad = rng_int(r, 0, 1);
    int h = rng_int(r, 1, 13), w = rng_int(r, 1, 13);
    if (h + 2 * pad < k)
      h = k;
    if (w + 2 * pad < k)
      w = k;
    fii_case c =
        conv_case(rng_int(r, 1, 2), h, w, rng_int(r, 1, 40), rng_int(r, 1, 80),
                  k, stride, pad, rng_int(r, 0, 1), rng_int(r, 0, 1));
    expect(&c, ctx, r);
  }
}

static void norms(dcnv4_context *ctx, rng *r, int count) {
  static const int channels[] = {1,  2,  3,   7,   8,   31,  64,   65,
                                 80, 96, 129, 160, 257, 320, 1000, 4096};
  for (int i = 0; i < 3 * count + 6; i++) {
    fii_case c;
    memset(&c, 0, sizeof c);
    c.op = FII_LAYERNORM;
    c.ln.channels =
        i < 6 ? (i % 2 ? 1 : 4096)
              : channels[rng_int(
                    r, 0, (int)(sizeof channels / sizeof *channels) - 1)];
    c.ln.rows = (uint64_t)(c.ln.channels > 1000 ? rng_int(r, 1, 9)
                                                : rng_int(r, 1, 300));
    c.ln.eps = i % 2 ? 1e-6f : 1e-5f;
    c.ln.epilogue = (dcn_norm_epilogue)(i % 3);
    c.with_scale = rng_int(r, 0, 1);
    c.alias = rng_int(r, 0, 1);
    expect(&c, ctx, r);
  }
  for (int i = 0; i < count; i++) {
    fii_case c;
    memset(&c, 0, sizeof c);
    c.op = FII_RESIDUAL;
    c.ln.rows = (uint64_t)rng_int(r, 1, 500);
    c.ln.channels = rng_int(r, 1, 300);
    c.with_scale = i % 2;
    expect(&c, ctx, r);
  }
  for (int i = 0; i < count; i++) {
    fii_case c;
    memset(&c, 0, sizeof c);
    c.op = FII_AVGPOOL;
    c.batch = rng_int(r, 1, 3);
    c.positions = (uint64_t)(i == 0 ? 1 : rng_int(r, 1, 200));
    c.ln.channels = rng_int(r, 1, 300);
    expect(&c, ctx, r);
  }
}

/* 16-bit activations: the stem's convolutions (fp32 image in), the
 * downsampling, LayerNorm's three forms and the pooling, per dtype. */
static void halves(dcnv4_context *ctx, rng *r) {
  static const dcnv4_dtype dtypes[] = {DCNV4_FLOAT16, DCNV4_BFLOAT16};
  for (int d = 0; d < 2; d++) {
    fii_case conv[] = {
        conv_case(2, 17, 15, 3, 32, 3, 2, 1, 1, 1),
        conv_case(1, 9, 9, 32, 64, 3, 2, 1, 0, 1),
        conv_case(2, 7, 5, 64, 128, 3, 2, 1, 0, 0),
    };
    for (size_t i = 0; i < sizeof conv / sizeof *conv; i++) {
      conv[i].dtype = dtypes[d];
      expect(&conv[i], ctx, r);
    }
    /* plain, GELU, residual with and without its scale */
    for (int e = 0; e < 4; e++) {
      fii_case c;
      memset(&c, 0, sizeof c);
      c.op = FII_LAYERNORM;
      c.dtype = dtypes[d];
      c.ln.channels = 64;
      c.ln.rows = (uint64_t)rng_int(r, 1, 300);
      c.ln.eps = 1e-6f;
      c.ln.epilogue = (dcn_norm_epilogue)(e < 2 ? e : 2);
      c.with_scale = e == 2;
      c.alias = e != 1;
      expect(&c, ctx, r);
    }
    fii_case c;
    memset(&c, 0, sizeof c);
    c.op = FII_AVGPOOL;
    c.dtype = dtypes[d];
    c.batch = 2;
    c.positions = 49;
    c.ln.channels = 96;
    expect(&c, ctx, r);
  }
}

/* The GEMM epilogues on linear.cl and on CLBlast. linear.cl runs with the
 * device's default tiles, the ones the model's tests use: PoCL specializes
 * a kernel per work-group size at its first launch, about a minute each for
 * linear.cl, and its cache then serves both tests (the shapes cover several
 * tiles and partial ones; the epilogue code is the same for every tile). */
#define OWN_GEMM "linear.backend=1"

static void gemms(dcnv4_context *ctx, rng *r, int count) {
  static const char *const backends[] = {OWN_GEMM, "linear.backend=0"};
  static const int sizes_m[] = {1, 7, 129, 300};
  static const int sizes_nk[] = {1, 3, 8, 27, 64, 129};
  for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) {
    CHECK(dcnv4_context_set_tuning(ctx, backends[b]) == DCNV4_SUCCESS,
          "set_tuning %s", backends[b]);
    const uint64_t fallbacks = dcnv4_context_tuning_fallbacks(ctx);
    for (int i = 0; i < count + 3; i++) {
      fii_case c;
      memset(&c, 0, sizeof c);
      c.op = FII_GEMM;
      c.epilogue = (dcn_gemm_epilogue_kind)(i % 3);
      c.m = sizes_m[rng_int(r, 0, 3)];
      c.n = sizes_nk[rng_int(r, 0, 5)];
      c.k = sizes_nk[rng_int(r, 0, 5)];
      c.with_bias = rng_int(r, 0, 1);
      c.with_scale = rng_int(r, 0, 1);
      expect(&c, ctx, r);
    }
    CHECK(dcnv4_context_tuning_fallbacks(ctx) == fallbacks,
          "%s fell back to another backend", backends[b]);
  }
  dcnv4_context_set_tuning(ctx, "");
}

/* Split-K (linear.c's GEMMs with few tiles) on the default tiles, asked for
 * on any device (up to 8 parts of at least 16 k, 16 work-groups per compute
 * unit): every epilogue, with and without bias and scale, M 1..300, N and K
 * up to 2048 (N halved until the plan splits: on a few compute units only
 * narrow products do), against float64, and the same bits on a second
 * run. Two large products run as planned, split or not. */
#define SPLIT_GEMM OWN_GEMM ";linear.ksplit=8;linear.fill=16;linear.kmin=16"

static int log_uniform(rng *r, int hi) {
  return (int)floor(exp(rng_uniform(r, 0, log((double)hi + 1))));
}

static void split_gemms(dcnv4_context *ctx, rng *r, int count) {
  CHECK(dcnv4_context_set_tuning(ctx, SPLIT_GEMM) == DCNV4_SUCCESS,
        "set_tuning %s", SPLIT_GEMM);
  const uint64_t fallbacks = dcnv4_context_tuning_fallbacks(ctx);
  int split = 0, total = 0;
  for (int i = 0; i < count + 2; i++) {
    fii_case c;
    memset(&c, 0, sizeof c);
    c.op = FII_GEMM;
    c.epilogue = (dcn_gemm_epilogue_kind)(i % 3);
    c.with_bias = rng_int(r, 0, 1);
    c.with_scale = rng_int(r, 0, 1);
    dcn_gemm g;
    if (dcn_gemm_prepare_epilogue(ctx, false, c.with_bias != 0, c.epilogue,
                                  &g) != DCNV4_SUCCESS) {
      CHECK(0, "prepare: %s", dcnv4_context_last_error(ctx));
      break;
    }
    bool want_split = i >= 2;
    if (!want_split) {
      c.m = i ? 200 : 300;
      c.n = i ? 1024 : 2048;
      c.k = i ? 2047 : 2048;
    } else {
      c.m = rng_int(r, 1, 300);
      c.k = 32 + log_uniform(r, 2016);
      c.n = log_uniform(r, 2048) + 1;
      while (c.n > 1 && dcn_gemm_plan_for(ctx, &g, (uint64_t)c.m, (uint64_t)c.n,
                                          (uint64_t)c.k)
                                .parts < 2)
        c.n /= 2;
    }
    const dcn_gemm_plan p =
        dcn_gemm_plan_for(ctx, &g, (uint64_t)c.m, (uint64_t)c.n, (uint64_t)c.k);
    split += p.parts > 1;
    total++;
    char name[160];
    fii_case_name(&c, name, sizeof name);
    fii_case_setup(&c, ctx, r);
    dcnv4_status st = fii_case_run(&c, ctx);
    float *first = malloc(c.out_count * sizeof *first + 1);
    if (st == DCNV4_SUCCESS)
      st = dcnv4_context_finish(ctx);
    CHECK(st == DCNV4_SUCCESS && first &&
              host_read(ctx, c.out, first, c.out_count * sizeof *first) == 0,
          "%s: %s", name, dcnv4_context_last_error(ctx));
    const double e = fii_case_error(&c, ctx);
    CHECK(e <= TOL_FP32, "%s in %llu parts of %llu: rel L2 %.3g > %.0e", name,
          (unsigned long long)p.parts, (unsigned long long)p.k_part, e,
          TOL_FP32);
    fii_case_reset(&c, ctx);
    st = fii_case_run(&c, ctx);
    if (st == DCNV4_SUCCESS)
      st = dcnv4_context_finish(ctx);
    float *second = malloc(c.out_count * sizeof *second + 1);
    CHECK(st == DCNV4_SUCCESS && first && second &&
              host_read(ctx, c.out, second, c.out_count * sizeof *second) ==
                  0 &&
              !memcmp(first, second, c.out_count * sizeof *first),
          "%s: a second run gave other bits", name);
    if (getenv("TEST_VERBOSE"))
      printf("  %-60s %llu parts  %.2e\n", name, (unsigned long long)p.parts,
             e);
    if (!(e <= worst[FII_GEMM]))
      worst[FII_GEMM] = e;
    cases[FII_GEMM]++;
    free(first);
    free(second);
    fii_case_free(&c);
  }
  CHECK(split >= total - 2, "only %d of %d GEMMs split", split, total);
  CHECK(dcnv4_context_tuning_fallbacks(ctx) == fallbacks,
        "%s fell back to the default", SPLIT_GEMM);
  dcnv4_context_set_tuning(ctx, "");
}

/* ------------------------------------------------------- bad arguments */

/* A failed call: the status, a message, nothing written. */
#define REJECTS(call, want, out, what)                                         \
  do {                                                                         \
    dcnv4_status got_ = (call);                                                \
    CHECK(got_ == (want), "%s: %s, expected %s", what,                         \
          dcnv4_status_string(got_), dcnv4_status_string(want));               \
    if (ctx)                                                                   \
      CHECK(dcnv4_context_last_error(ctx)[0] != '\0', "%s: no message", what); \
    dcnv4_context_finish(ctx);                                                 \
    CHECK(untouched(ctx, out), "%s: the output was written", what);            \
  } while (0)

/* A call on a NULL context: the status alone (there is no message). */
#define REJECTS_NO_CONTEXT(call, out, what)                                    \
  do {                                                                         \
    CHECK((call) == DCNV4_ERROR_NULL_POINTER, "%s", what);                     \
    CHECK(untouched(ctx, out), "%s: the output was written", what);            \
  } while (0)

#define BIG 4096
static float *zeros;

static cl_mem buf(dcnv4_context *ctx, size_t n) {
  return upload_values(ctx, zeros, n, DCNV4_FLOAT32);
}

/* The output buffers below start as zeros; 1 when still so. */
static int untouched(dcnv4_context *ctx, cl_mem m) {
  size_t bytes = 0;
  clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
  float *v = malloc(bytes + 1);
  int same = host_read(ctx, m, v, bytes) == 0 && !memcmp(v, zeros, bytes);
  free(v);
  return same;
}

static void bad_conv2d(dcnv4_context *ctx) {
  cl_mem x = buf(ctx, 2 * 3 * 5 * 5), w = buf(ctx, 4 * 3 * 9), b = buf(ctx, 4),
         y = buf(ctx, 2 * 3 * 3 * 4), small = buf(ctx, 3);
  const dcn_conv2d_shape ok = {2, 5, 5, 3, 4, 3, 2, 1, true};
  dcn_conv2d_shape s = ok;
  REJECTS_NO_CONTEXT(dcn_conv2d_forward(NULL, &s, x, w, b, y, NULL), y,
                     "conv2d NULL context");
  REJECTS(dcn_conv2d_forward(ctx, NULL, x, w, b, y, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "conv2d NULL shape");
  const struct {
    int field, value;
    const char *what;
  } shapes[] = {{0, 0, "batch 0"},
                {1, 0, "height 0"},
                {2, -1, "width -1"},
                {3, 0, "no input channels"},
                {4, 0, "no output channels"},
                {5, 0, "kernel 0"},
                {5, 8, "kernel larger than the padded input"},
                {6, 0, "stride 0"},
                {7, -1, "pad -1"}};
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    s = ok;
    int32_t *f[] = {&s.batch,        &s.in_height, &s.in_width, &s.in_channels,
                    &s.out_channels, &s.kernel,    &s.stride,   &s.pad};
    *f[shapes[i].field] = shapes[i].value;
    REJECTS(dcn_conv2d_forward(ctx, &s, x, w, b, y, NULL),
            DCNV4_ERROR_INVALID_SHAPE, y, shapes[i].what);
  }
  s = ok;
  s.dtype = (dcnv4_dtype)7;
  REJECTS(dcn_conv2d_forward(ctx, &s, x, w, b, y, NULL),
          DCNV4_ERROR_INVALID_SHAPE, y, "conv2d dtype 7");
  s = ok;
  REJECTS(dcn_conv2d_forward(ctx, &s, NULL, w, b, y, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "conv2d NULL input");
  REJECTS(dcn_conv2d_forward(ctx, &s, x, NULL, b, y, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "conv2d NULL weight");
  REJECTS(dcn_conv2d_forward(ctx, &s, x, w, b, NULL, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "conv2d NULL output");
  REJECTS(dcn_conv2d_forward(ctx, &s, small, w, b, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "conv2d input too small");
  REJECTS(dcn_conv2d_forward(ctx, &s, x, small, b, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "conv2d weight too small");
  REJECTS(dcn_conv2d_forward(ctx, &s, x, w, small, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "conv2d bias too small");
  REJECTS(dcn_conv2d_forward(ctx, &s, x, w, b, small, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, small, "conv2d output too small");
  s.out_channels = 3; /* so that the input is large enough as the output */
  REJECTS(dcn_conv2d_forward(ctx, &s, x, w, b, x, NULL),
          DCNV4_ERROR_INVALID_BUFFER, x, "conv2d output is input");
  CHECK(dcn_conv2d_out_size(5, 3, 2, 1) == 3 &&
            dcn_conv2d_out_size(4, 3, 2, 1) == 2 &&
            dcn_conv2d_out_size(1, 3, 2, 1) == 1 &&
            dcn_conv2d_out_size(1, 3, 1, 0) == 0 &&
            dcn_conv2d_out_size(7, 3, 0, 1) == 0,
        "dcn_conv2d_out_size");
  host_release(x);
  host_release(w);
  host_release(b);
  host_release(y);
  host_release(small);
}

static void bad_norms(dcnv4_context *ctx) {
  cl_mem x = buf(ctx, 6 * 5), w = buf(ctx, 5), b = buf(ctx, 5), s = buf(ctx, 5),
         res = buf(ctx, 6 * 5), y = buf(ctx, 6 * 5), small = buf(ctx, 4);
  const dcn_layernorm_desc ok = {6, 5, 1e-6f, DCN_NORM_RESIDUAL};
  dcn_layernorm_desc d = ok;
  REJECTS_NO_CONTEXT(dcn_layernorm_forward(NULL, &d, x, w, b, s, res, y, NULL),
                     y, "layernorm NULL context");
  REJECTS(dcn_layernorm_forward(ctx, NULL, x, w, b, s, res, y, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "layernorm NULL descriptor");
  d.rows = 0;
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, res, y, NULL),
          DCNV4_ERROR_INVALID_SHAPE, y, "layernorm 0 rows");
  d = ok;
  d.channels = -2;
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, res, y, NULL),
          DCNV4_ERROR_INVALID_SHAPE, y, "layernorm -2 channels");
  d = ok;
  d.eps = 0;
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, res, y, NULL),
          DCNV4_ERROR_INVALID_PARAMETER, y, "layernorm eps 0");
  d.eps = NAN;
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, res, y, NULL),
          DCNV4_ERROR_INVALID_PARAMETER, y, "layernorm eps NaN");
  d = ok;
  d.epilogue = (dcn_norm_epilogue)7;
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, res, y, NULL),
          DCNV4_ERROR_INVALID_PARAMETER, y, "layernorm epilogue 7");
  d = ok;
  d.dtype = (dcnv4_dtype)7;
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, res, y, NULL),
          DCNV4_ERROR_INVALID_PARAMETER, y, "layernorm dtype 7");
  d = ok;
  REJECTS(dcn_layernorm_forward(ctx, &d, x, NULL, b, s, res, y, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "layernorm NULL weight");
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, NULL, y, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "layernorm NULL residual");
  REJECTS(dcn_layernorm_forward(ctx, &d, small, w, b, s, res, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "layernorm input too small");
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, small, s, res, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "layernorm bias too small");
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, small, res, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "layernorm scale too small");
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, small, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "layernorm residual too small");
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, res, small, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, small, "layernorm output too small");
  d.rows = 1;
  REJECTS(dcn_layernorm_forward(ctx, &d, x, w, b, s, res, w, NULL),
          DCNV4_ERROR_INVALID_BUFFER, w, "layernorm output is the weight");

  REJECTS_NO_CONTEXT(dcn_residual_forward(NULL, 6, 5, x, s, y, NULL), y,
                     "residual NULL context");
  REJECTS(dcn_residual_forward(ctx, 0, 5, x, s, y, NULL),
          DCNV4_ERROR_INVALID_SHAPE, y, "residual 0 rows");
  REJECTS(dcn_residual_forward(ctx, 6, 0, x, s, y, NULL),
          DCNV4_ERROR_INVALID_SHAPE, y, "residual 0 channels");
  REJECTS(dcn_residual_forward(ctx, 6, 5, NULL, s, y, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "residual NULL input");
  REJECTS(dcn_residual_forward(ctx, 6, 5, x, small, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "residual scale too small");
  REJECTS(dcn_residual_forward(ctx, 6, 5, x, s, small, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, small, "residual inout too small");
  REJECTS(dcn_residual_forward(ctx, 6, 5, y, s, y, NULL),
          DCNV4_ERROR_INVALID_BUFFER, y, "residual input is inout");

  REJECTS_NO_CONTEXT(
      dcn_avgpool_forward(NULL, 2, 3, 5, DCNV4_FLOAT32, x, y, NULL), y,
      "avgpool NULL context");
  REJECTS(dcn_avgpool_forward(ctx, 0, 3, 5, DCNV4_FLOAT32, x, y, NULL),
          DCNV4_ERROR_INVALID_SHAPE, y, "avgpool batch 0");
  REJECTS(dcn_avgpool_forward(ctx, 2, 0, 5, DCNV4_FLOAT32, x, y, NULL),
          DCNV4_ERROR_INVALID_SHAPE, y, "avgpool 0 positions");
  REJECTS(dcn_avgpool_forward(ctx, 2, 3, -5, DCNV4_FLOAT32, x, y, NULL),
          DCNV4_ERROR_INVALID_SHAPE, y, "avgpool -5 channels");
  REJECTS(dcn_avgpool_forward(ctx, 2, 4, 5, DCNV4_FLOAT32, x, y, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, y, "avgpool input too small");
  REJECTS(dcn_avgpool_forward(ctx, 2, 3, 5, DCNV4_FLOAT32, x, small, NULL),
          DCNV4_ERROR_BUFFER_TOO_SMALL, small, "avgpool output too small");
  REJECTS(dcn_avgpool_forward(ctx, 2, 3, 5, DCNV4_FLOAT32, x, NULL, NULL),
          DCNV4_ERROR_NULL_POINTER, y, "avgpool NULL output");
  REJECTS(dcn_avgpool_forward(ctx, 2, 3, 5, (dcnv4_dtype)7, x, y, NULL),
          DCNV4_ERROR_INVALID_PARAMETER, y, "avgpool dtype 7");
  REJECTS(dcn_avgpool_forward(ctx, 1, 3, 5, DCNV4_FLOAT32, y, y, NULL),
          DCNV4_ERROR_INVALID_BUFFER, y, "avgpool output is input");
  host_release(x);
  host_release(w);
  host_release(b);
  host_release(s);
  host_release(res);
  host_release(y);
  host_release(small);
}

static void bad_gemm(dcnv4_context *ctx) {
  const char *const backends[] = {OWN_GEMM, "linear.backend=0"};
  cl_mem a = buf(ctx, 6 * 4), b = buf(ctx, 5 * 4), bias = buf(ctx, 5),
         s = buf(ctx, 5), res = buf(ctx, 6 * 5), c = buf(ctx, 6 * 5),
         small = buf(ctx, 4);
  for (int k = 0; k < 2; k++) {
    dcnv4_context_set_tuning(ctx, backends[k]);
    dcn_gemm plain, gelu, resid;
    CHECK(dcn_gemm_prepare_epilogue(ctx, false, true, (dcn_gemm_epilogue_kind)9,
                                    &plain) == DCNV4_ERROR_INVALID_PARAMETER,
          "GEMM epilogue 9 prepared");
    CHECK(dcn_gemm_prepare(ctx, false, true, &plain) == DCNV4_SUCCESS &&
              dcn_gemm_prepare_epilogue(ctx, false, true, DCN_GEMM_GELU,
                                        &gelu) == DCNV4_SUCCESS &&
              dcn_gemm_prepare_epilogue(ctx, false, true, DCN_GEMM_RESIDUAL,
                                        &resid) == DCNV4_SUCCESS,
          "%s: GEMM prepare: %s", backends[k], dcnv4_context_last_error(ctx));
    dcn_gemm_epilogue eg = {DCN_GEMM_GELU, NULL, NULL},
                      er = {DCN_GEMM_RESIDUAL, res, s};
    REJECTS(dcn_gemm_linear_epilogue(ctx, &plain, 6, 5, 4, a, b, bias, c, &eg,
                                     NULL, "t"),
            DCNV4_ERROR_INVALID_PARAMETER, c, "GELU on a plain GEMM");
    REJECTS(dcn_gemm_linear_epilogue(ctx, &gelu, 6, 5, 4, a, b, bias, c, NULL,
                                     NULL, "t"),
            DCNV4_ERROR_INVALID_PARAMETER, c, "no epilogue on a GELU GEMM");
    REJECTS(dcn_gemm_linear(ctx, &resid, 6, 5, 4, a, b, bias, c, NULL, "t"),
            DCNV4_ERROR_INVALID_PARAMETER, c, "dcn_gemm_linear on residual");
    er.residual = NULL;
    REJECTS(dcn_gemm_linear_epilogue(ctx, &resid, 6, 5, 4, a, b, bias, c, &er,
                                     NULL, "t"),
            DCNV4_ERROR_NULL_POINTER, c, "GEMM NULL residual");
    er.residual = small;
    REJECTS(dcn_gemm_linear_epilogue(ctx, &resid, 6, 5, 4, a, b, bias, c, &er,
                                     NULL, "t"),
            DCNV4_ERROR_BUFFER_TOO_SMALL, small, "GEMM residual too small");
    er.residual = res;
    er.scale = small;
    REJECTS(dcn_gemm_linear_epilogue(ctx, &resid, 6, 5, 4, a, b, bias, c, &er,
                                     NULL, "t"),
            DCNV4_ERROR_BUFFER_TOO_SMALL, res, "GEMM scale too small");
    er.scale = s;
    if (!resid.own)
      REJECTS(dcn_gemm_linear_epilogue(ctx, &resid, 6, 5, 4, a, b, bias, small,
                                       &er, NULL, "t"),
              DCNV4_ERROR_BUFFER_TOO_SMALL, res, "GEMM scratch too small");
    er.residual = a;
    REJECTS(dcn_gemm_linear_epilogue(ctx, &resid, 6, 4, 4, a, b, bias, c, &er,
                                     NULL, "t"),
            DCNV4_ERROR_INVALID_BUFFER, a, "GEMM residual is the input");
    er.residual = res;
    REJECTS(dcn_gemm_linear_epilogue(ctx, &resid, 0, 5, 4, a, b, bias, c, &er,
                                     NULL, "t"),
            DCNV4_ERROR_INVALID_SHAPE, res, "GEMM 0 rows");
  }
  dcnv4_context_set_tuning(ctx, "");
  host_release(a);
  host_release(b);
  host_release(bias);
  host_release(s);
  host_release(res);
  host_release(c);
  host_release(small);
}

int main(int argc, char **argv) {
  int count = 8;
  const char *only = "";
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
#define PART(name) (!*only || !strcmp(only, name))
  rng r = {test_seed(0xf11)};
  dcnv4_context *ctx = test_context();
  if (PART("conv"))
    convolutions(ctx, &r, count);
  if (PART("norm"))
    norms(ctx, &r, count);
  if (PART("gemm"))
    gemms(ctx, &r, count);
  if (PART("split"))
    split_gemms(ctx, &r, count);
  if (PART("half"))
    halves(ctx, &r);
  static const char *const names[] = {"conv2d", "layernorm", "residual",
                                      "avgpool", "gemm epilogues"};
  for (int i = 0; i < 5; i++)
    printf("%-16s %3d cases, worst rel L2 %.2e\n", names[i], cases[i],
           worst[i]);
  zeros = calloc(BIG, sizeof *zeros);
  if (PART("bad")) {
    bad_conv2d(ctx);
    bad_norms(ctx);
    bad_gemm(ctx);
  }
  free(zeros);
  dcnv4_context_destroy(ctx);
  return test_finish("fii_ops");
}
