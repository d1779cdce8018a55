/* See fii_check.h. */
#include "fii_check.h"
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n random values in [lo, hi) rounded to `dtype`, on the device in that
 * dtype and as the doubles they are. */
static cl_mem random_buffer_dtype(dcnv4_context *ctx, rng *r, size_t n,
                                  double lo, double hi, dcnv4_dtype dtype,
                                  double **values) {
  float *f = malloc(n * sizeof *f + 1);
  for (size_t i = 0; i < n; i++)
    f[i] = round_to_dtype((float)rng_uniform(r, lo, hi), dtype);
  cl_mem m = upload_values(ctx, f, n, dtype);
  *values = to_doubles(f, n);
  free(f);
  return m;
}

static cl_mem random_buffer(dcnv4_context *ctx, rng *r, size_t n, double lo,
                            double hi, double **values) {
  return random_buffer_dtype(ctx, r, n, lo, hi, DCNV4_FLOAT32, values);
}

/* The output's storage: a GEMM's out_dtype, the residual pass's fp32, else
 * the activations' dtype. */
static dcnv4_dtype out_dtype(const fii_case *c) {
  return c->op == FII_GEMM       ? c->out_dtype
         : c->op == FII_RESIDUAL ? DCNV4_FLOAT32
                                 : c->dtype;
}

/* out_init as the output's bytes (malloc'd, `*bytes` long). */
static void *packed_init(const fii_case *c, size_t *bytes) {
  *bytes = c->out_count * dcnv4_dtype_size(out_dtype(c));
  void *p = malloc(*bytes + 1);
  pack_dtype(c->out_init, p, c->out_count, out_dtype(c));
  return p;
}

static float *floats_of(const double *v, size_t n) {
  float *f = malloc(n * sizeof *f + 1);
  for (size_t i = 0; i < n; i++)
    f[i] = (float)v[i];
  return f;
}

static float *nans(size_t n) {
  float *f = malloc(n * sizeof *f + 1);
  for (size_t i = 0; i < n; i++)
    f[i] = NAN;
  return f;
}

static void setup_conv2d(fii_case *c, dcnv4_context *ctx, rng *r) {
  c->conv.dtype = c->dtype;
  const dcn_conv2d_shape *s = &c->conv;
  const int ho =
                dcn_conv2d_out_size(s->in_height, s->kernel, s->stride, s->pad),
            wo = dcn_conv2d_out_size(s->in_width, s->kernel, s->stride, s->pad);
  const size_t nin = (size_t)s->batch * s->in_height * s->in_width *
                     s->in_channels,
               nw = (size_t)s->out_channels * s->in_channels * s->kernel *
                    s->kernel;
  double *x, *w, *b;
  /* The image (NCHW) is fp32 whatever the dtype. */
  c->in[0] = random_buffer_dtype(ctx, r, nin, -1, 1,
                                 s->input_nchw ? DCNV4_FLOAT32 : c->dtype, &x);
  c->in[1] = random_buffer(ctx, r, nw, -1, 1, &w);
  c->in[2] = random_buffer(ctx, r, (size_t)s->out_channels, -1, 1, &b);
  c->out_count = (size_t)s->batch * ho * wo * s->out_channels;
  c->ref = malloc(c->out_count * sizeof *c->ref + 1);
  ref_conv2d(s->batch, s->in_height, s->in_width, s->in_channels,
             s->out_channels, s->kernel, s->stride, s->pad, s->input_nchw, x, w,
             c->with_bias ? b : NULL, c->ref);
  c->out_init = nans(c->out_count);
  free(x);
  free(w);
  free(b);
}

static void setup_layernorm(fii_case *c, dcnv4_context *ctx, rng *r) {
  c->ln.dtype = c->dtype;
  const size_t C = (size_t)c->ln.channels, n = c->ln.rows * C;
  double *x, *w, *b, *s, *res = NULL;
  /* An offset per case, so that |mean| may exceed the spread. */
  const double shift = rng_uniform(r, -3, 3);
  c->in[0] = random_buffer_dtype(ctx, r, n, shift - 1, shift + 1, c->dtype, &x);
  c->in[1] = random_buffer(ctx, r, C, 0.5, 1.5, &w);
  c->in[2] = random_buffer(ctx, r, C, -1, 1, &b);
  c->in[3] = random_buffer(ctx, r, C, 0.5, 1.5, &s);
  const bool residual = c->ln.epilogue == DCN_NORM_RESIDUAL;
  if (residual)
    c->in[4] = random_buffer_dtype(ctx, r, n, -1, 1, c->dtype, &res);
  c->out_count = n;
  c->ref = malloc(n * sizeof *c->ref + 1);
  ref_layernorm(c->ln.rows, c->ln.channels, c->ln.eps, (int)c->ln.epilogue, x,
                w, b, c->with_scale ? s : NULL, res, c->ref);
  c->out_init = c->alias ? floats_of(residual ? res : x, n) : nans(n);
  free(x);
  free(w);
  free(b);
  free(s);
  free(res);
}

static void setup_residual(fii_case *c, dcnv4_context *ctx, rng *r) {
  const size_t C = (size_t)c->ln.channels, n = c->ln.rows * C;
  double *y, *s, *io;
  c->in[0] = random_buffer(ctx, r, n, -1, 1, &y);
  c->in[1] = random_buffer(ctx, r, C, 0.5, 1.5, &s);
  host_release(random_buffer(ctx, r, n, -1, 1, &io));
  c->out_init = floats_of(io, n);
  ref_residual(c->ln.rows, c->ln.channels, y, c->with_scale ? s : NULL, io);
  c->out_count = n;
  c->ref = io;
  free(y);
  free(s);
}

static void setup_avgpool(fii_case *c, dcnv4_context *ctx, rng *r) {
  const size_t C = (size_t)c->ln.channels;
  double *x;
  c->in[0] = random_buffer_dtype(ctx, r, (size_t)c->batch * c->positions * C,
                                 -1, 1, c->dtype, &x);
  c->out_count = (size_t)c->batch * C;
  c->ref = malloc(c->out_count * sizeof *c->ref + 1);
  ref_avgpool(c->batch, (size_t)c->positions, c->ln.channels, x, c->ref);
  c->out_init = nans(c->out_count);
  free(x);
}

static void setup_gemm(fii_case *c, dcnv4_context *ctx, rng *r) {
  const size_t m = (size_t)c->m, n = (size_t)c->n, k = (size_t)c->k;
  double *a, *b, *bias, *s, *res = NULL;
  c->in[0] = random_buffer_dtype(ctx, r, m * k, -1, 1, c->dtype, &a);
  c->in[1] = random_buffer_dtype(ctx, r, n * k, -1, 1, c->dtype, &b);
  c->in[2] = random_buffer(ctx, r, n, -1, 1, &bias);
  c->in[3] = random_buffer(ctx, r, n, 0.5, 1.5, &s);
  c->out_count = m * n;
  c->ref = malloc(m * n * sizeof *c->ref + 1);
  if (c->epilogue == DCN_GEMM_RESIDUAL) {
    /* The residual's values as its dtype holds them. */
    host_release(random_buffer_dtype(ctx, r, m * n, -1, 1, c->out_dtype, &res));
    c->out_init = floats_of(res, m * n);
    c->scratch = poisoned_buffer(ctx, m * n, DCNV4_FLOAT32);
  } else
    c->out_init = nans(m * n);
  ref_gemm_epilogue(m, c->n, c->k, a, b, c->with_bias ? bias : NULL,
                    (int)c->epilogue, c->with_scale ? s : NULL, c->ref, res);
  if (res) {
    memcpy(c->ref, res, m * n * sizeof *res);
    free(res);
  }
  free(a);
  free(b);
  free(bias);
  free(s);
}

void fii_case_setup(fii_case *c, dcnv4_context *ctx, rng *r) {
  memset(c->in, 0, sizeof c->in);
  c->scratch = NULL;
  switch (c->op) {
  case FII_CONV2D: setup_conv2d(c, ctx, r); break;
  case FII_LAYERNORM: setup_layernorm(c, ctx, r); break;
  case FII_RESIDUAL: setup_residual(c, ctx, r); break;
  case FII_AVGPOOL: setup_avgpool(c, ctx, r); break;
  case FII_GEMM: setup_gemm(c, ctx, r); break;
  }
  c->out = upload_values(ctx, c->out_init, c->out_count, out_dtype(c));
}

void fii_case_reset(const fii_case *c, dcnv4_context *ctx) {
  size_t bytes;
  void *init = packed_init(c, &bytes);
  const int failed = host_write(ctx, c->out, init, bytes);
  free(init);
  if (failed) {
    fprintf(stderr, "cannot write a device buffer\n");
    exit(1);
  }
}

dcnv4_status fii_case_run(const fii_case *c, dcnv4_context *ctx) {
  switch (c->op) {
  case FII_CONV2D:
    return dcn_conv2d_forward(ctx, &c->conv, c->in[0], c->in[1],
                              c->with_bias ? c->in[2] : NULL, c->out, NULL);
  case FII_LAYERNORM: {
    const bool res = c->ln.epilogue == DCN_NORM_RESIDUAL;
    cl_mem x = c->alias && !res ? c->out : c->in[0];
    cl_mem residual = res ? (c->alias ? c->out : c->in[4]) : NULL;
    return dcn_layernorm_forward(ctx, &c->ln, x, c->in[1], c->in[2],
                                 c->with_scale ? c->in[3] : NULL, residual,
                                 c->out, NULL);
  }
  case FII_RESIDUAL:
    return dcn_residual_forward(ctx, c->ln.rows, c->ln.channels, c->in[0],
                                c->with_scale ? c->in[1] : NULL, c->out, NULL);
  case FII_AVGPOOL:
    return dcn_avgpool_forward(ctx, c->batch, c->positions, c->ln.channels,
                               c->dtype, c->in[0], c->out, NULL);
  case FII_GEMM: {
    dcn_gemm g;
    const dcn_gemm_spec spec = {c->dtype,          c->out_dtype, c->epilogue,
                                c->with_bias != 0, false,        c->mma != 0};
    dcnv4_status st = dcn_gemm_prepare_spec(ctx, &spec, &g);
    if (st != DCNV4_SUCCESS)
      return st;
    const bool res = c->epilogue == DCN_GEMM_RESIDUAL;
    dcn_gemm_epilogue e = {c->epilogue, res ? c->out : NULL,
                           res && c->with_scale ? c->in[3] : NULL};
    return dcn_gemm_linear_epilogue(
        ctx, &g, (uint64_t)c->m, (uint64_t)c->n, (uint64_t)c->k, c->in[0],
        c->in[1], c->with_bias ? c->in[2] : NULL, res ? c->scratch : c->out, &e,
        NULL, "test");
  }
  }
  return DCNV4_ERROR_INVALID_PARAMETER;
}

double fii_case_error(const fii_case *c, dcnv4_context *ctx) {
  double *got = download_values(ctx, c->out, c->out_count, out_dtype(c));
  double e = rel_l2_stored(got, c->ref, c->out_count, out_dtype(c));
  free(got);
  return e;
}

int fii_case_untouched(const fii_case *c, dcnv4_context *ctx) {
  size_t bytes;
  void *init = packed_init(c, &bytes), *now = malloc(bytes + 1);
  int same =
      host_read(ctx, c->out, now, bytes) == 0 && memcmp(now, init, bytes) == 0;
  free(now);
  free(init);
  return same;
}

void fii_case_free(fii_case *c) {
  for (int i = 0; i < 6; i++)
    if (c->in[i])
      host_release(c->in[i]);
  if (c->scratch)
    host_release(c->scratch);
  host_release(c->out);
  free(c->out_init);
  free(c->ref);
  memset(c->in, 0, sizeof c->in);
  c->out = c->scratch = NULL;
  c->out_init = NULL;
  c->ref = NULL;
}

void fii_case_name(const fii_case *c, char *out, size_t size) {
  static const char *const norms[] = {"plain", "gelu", "residual"};
  static const char *const gemms[] = {"none", "gelu", "residual"};
  switch (c->op) {
  case FII_CONV2D:
    snprintf(out, size, "conv2d %dx%dx%dx%d->%d k%d s%d p%d %s%s %s",
             c->conv.batch, c->conv.in_height, c->conv.in_width,
             c->conv.in_channels, c->conv.out_channels, c->conv.kernel,
             c->conv.stride, c->conv.pad, c->conv.input_nchw ? "nchw" : "nhwc",
             c->with_bias ? " +bias" : "", dcnv4_dtype_name(c->dtype));
    break;
  case FII_LAYERNORM:
    snprintf(out, size, "layernorm %llux%d %s%s%s %s",
             (unsigned long long)c->ln.rows, c->ln.channels,
             norms[c->ln.epilogue], c->with_scale ? " +scale" : "",
             c->alias ? " aliased" : "", dcnv4_dtype_name(c->dtype));
    break;
  case FII_RESIDUAL:
    snprintf(out, size, "residual %llux%d%s", (unsigned long long)c->ln.rows,
             c->ln.channels, c->with_scale ? " +scale" : "");
    break;
  case FII_AVGPOOL:
    snprintf(out, size, "avgpool %dx%llux%d %s", c->batch,
             (unsigned long long)c->positions, c->ln.channels,
             dcnv4_dtype_name(c->dtype));
    break;
  case FII_GEMM:
    snprintf(out, size, "gemm %dx%dx%d %s%s%s %s->%s", c->m, c->n, c->k,
             gemms[c->epilogue], c->with_bias ? " +bias" : "",
             c->with_scale ? " +scale" : "", dcnv4_dtype_name(c->dtype),
             dcnv4_dtype_name(c->out_dtype));
    break;
  }
}

double fii_check(fii_case *c, dcnv4_context *ctx, rng *r,
                 dcnv4_status *status) {
  fii_case_setup(c, ctx, r);
  double e = INFINITY;
  *status = fii_case_run(c, ctx);
  if (*status == DCNV4_SUCCESS)
    *status = dcnv4_context_finish(ctx);
  if (*status == DCNV4_SUCCESS)
    e = fii_case_error(c, ctx);
  fii_case_free(c);
  return e;
}
