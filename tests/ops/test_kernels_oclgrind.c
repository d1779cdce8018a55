/* Every kernel under Oclgrind (the OpenCL device simulator that checks
 * each memory access): out-of-bounds reads and writes, data races in global
 * and local memory, uses of uninitialized values and invalid API calls.
 * Results are checked against the float64 reference too.
 *
 * usage: oclgrind --log LOG [checks] test_kernels_oclgrind SRC_DIR PART
 *   SRC_DIR the source tree's src/ folder, read for the layer kernels
 *   PART    dcnv4:V  DCNv4 forward + backward in build variant V (0..4)
 *           fda:V    FlashDeformAttn forward + backward in variant V (0..5)
 *           layer    layer_ops.cl, convert.cl and zero.cl, built directly
 *           linear   linear.cl through dcnv4_linear_forward, its tile
 *                    variants, full and partial tiles, with and without bias
 *           linear_mma  linear_mma.cl's portable fragments: fp16 and bf16,
 *                    fp32 and 16-bit output, each epilogue, two tilings
 *           linear16 linear.cl on 16-bit storage (the same cases, small
 *                    tiles; CMake runs it without --uninitialized)
 *           fii      the FlashInternImage kernels (src/ops/fii): conv2d
 *                    (both layouts and tiles), LayerNorm (each epilogue,
 *                    aliased), residual, avgpool, the GEMM epilogues fused
 *                    into linear.cl and CLBlast's GELU pass
 * The test fails on any byte Oclgrind writes to LOG ($OCLGRIND_LOG) and
 * refuses to run on a device other than Oclgrind's.
 *
 * The layer kernels are built here from CL_DIR with the options
 * src/ops/layer_ops/layer_ops.c uses and launched the way its launchers do: the
 * layers themselves need a GEMM, and CLBlast's kernels under Oclgrind are not
 * this project's to check (the layers' own GEMM kernel is the `linear` part).
 */
#include "dcnv4_problem.h"
#include "fda_problem.h"
#include "fii_check.h"
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------- Oclgrind's findings */

static const char *log_path;
static long log_seen;

static long log_size(void) {
  struct stat st;
  return stat(log_path, &st) == 0 ? (long)st.st_size : 0;
}

/* Fails `what` if Oclgrind logged anything since the last call, and shows
 * the start of it. */
static void check_log(const char *what) {
  long now = log_size();
  if (now <= log_seen)
    return;
  FILE *f = fopen(log_path, "r");
  if (f) {
    char text[4096];
    fseek(f, log_seen, SEEK_SET);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    fprintf(stderr, "---- Oclgrind (%s):\n%s%s\n----\n", what, text,
            now - log_seen > (long)n ? "\n[...]" : "");
  }
  CHECK(0, "%s: Oclgrind reported %ld bytes of diagnostics", what,
        now - log_seen);
  log_seen = now;
}

/* One case's outcome: it ran, within `tol` of the float64 reference, and
 * Oclgrind logged nothing. */
static void check_result(dcnv4_context *ctx, const char *what, dcnv4_status st,
                         double e, double tol) {
  if (st != DCNV4_SUCCESS)
    CHECK(0, "%s: %s", what, dcnv4_context_last_error(ctx));
  else
    CHECK(e <= tol, "%s: error %.3g", what, e);
  check_log(what);
}

/* Oclgrind 21.10's --uninitialized check does not record that
 * clEnqueueFillBuffer initializes memory, so every read of a zero-filled
 * accumulator (the backward passes) would be reported. This definition in
 * the executable takes the library's calls to clEnqueueFillBuffer (the
 * executable comes first in symbol lookup) and performs the fill as a
 * blocking write, which Oclgrind does track. The arguments are checked as
 * clEnqueueFillBuffer would. Default visibility: the project builds with
 * hidden symbols, and only an exported definition interposes. */
__attribute__((visibility("default"))) CL_API_ENTRY cl_int CL_API_CALL
clEnqueueFillBuffer(cl_command_queue queue, cl_mem buffer, const void *pattern,
                    size_t pattern_size, size_t offset, size_t size,
                    cl_uint num_wait, const cl_event *wait, cl_event *event) {
  if (!pattern || pattern_size == 0 || pattern_size > 128 ||
      (pattern_size & (pattern_size - 1)) || offset % pattern_size ||
      size % pattern_size)
    return CL_INVALID_VALUE;
  unsigned char *host = malloc(size ? size : 1);
  if (!host)
    return CL_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < size; i++)
    host[i] = ((const unsigned char *)pattern)[i % pattern_size];
  cl_int err = clEnqueueWriteBuffer(queue, buffer, CL_TRUE, offset, size, host,
                                    num_wait, wait, event);
  free(host);
  return err;
}

/* A context on Oclgrind with DCNV4_TUNING = tuning, no disk cache. */
static dcnv4_context *oclgrind_context(const char *tuning) {
  setenv("DCNV4_TUNING", tuning, 1);
  char why[512] = "";
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.cache_dir = "";
  o.device = "oclgrind"; /* whatever DCNV4_DEVICE names for the other tests */
  o.error_buffer = why;
  o.error_buffer_size = sizeof why;
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(&o, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "cannot create a context: %s\n", why);
    exit(1);
  }
  dcnv4_device_info info;
  dcnv4_context_device_info(ctx, &info);
  if (!strstr(info.device_name, "Oclgrind")) {
    fprintf(stderr, "device is %s, not Oclgrind: run under oclgrind\n",
            info.device_name);
    exit(1);
  }
  printf("tuning %s\n", tuning);
  return ctx;
}

/* ------------------------------------------------------------ DCNv4 */

typedef dcnv4_test_case dcnv4_config;

/* Tiny shapes with the corners: 1x1 images, odd channel counts (vector
 * widths 1, 2, 4, 8 and their tails), remove_center, softmax, long
 * offset rows, strides, dilations, even kernels. */
static const dcnv4_config dcnv4_configs[] = {
    /* n h  w  g  d kh kw sh sw ph pw dh dw  os  rc sm extra */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1.0f, 0, 0, 0},
    {1, 1, 1, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0},
    {1, 3, 4, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 1, 0, 37},
    {2, 3, 3, 2, 7, 3, 3, 2, 1, 1, 1, 1, 1, 1.5f, 0, 1, 0},
    {1, 4, 3, 2, 8, 2, 3, 1, 1, 0, 1, 2, 1, 1.0f, 0, 0, 5},
    {1, 3, 3, 2, 4, 3, 3, 1, 1, 1, 1, 1, 1, -0.7f, 1, 1, 64},
    {1, 2, 5, 1, 2, 1, 3, 1, 2, 0, 1, 1, 1, 1.0f, 1, 0, 0},
    {1, 2, 2, 1, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0},
    {2, 5, 6, 2, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 3},
    /* 33 chunks of one channel: more than the tuned work-group size */
    {1, 2, 3, 1, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1.0f, 0, 1, 0},
};

/* Build variants of both DCNv4 kernels: every value of vec, stage, split,
 * unroll and specialize, small work-groups so that tiny shapes still span
 * several groups (and the local-memory paths several work-items). */
static const char *const dcnv4_variants[] = {
    /* PoCL's defaults: generic programs, rolled loops, per-pixel backward */
    "dcnv4_forward.vec=8;dcnv4_forward.local=256;dcnv4_forward.stage=0;"
    "dcnv4_forward.unroll=0;dcnv4_forward.specialize=0;"
    "dcnv4_backward.vec=8;dcnv4_backward.local=64;dcnv4_backward.split=0;"
    "dcnv4_backward.unroll=0;dcnv4_backward.specialize=0",
    /* the GPU paths: specialized, unrolled, split backward */
    "dcnv4_forward.vec=4;dcnv4_forward.local=32;dcnv4_forward.stage=0;"
    "dcnv4_forward.unroll=1;dcnv4_forward.specialize=1;"
    "dcnv4_backward.vec=4;dcnv4_backward.local=32;dcnv4_backward.split=1;"
    "dcnv4_backward.unroll=1;dcnv4_backward.specialize=1",
    /* split backward, generic programs */
    "dcnv4_forward.vec=2;dcnv4_forward.local=16;dcnv4_forward.stage=0;"
    "dcnv4_forward.unroll=0;dcnv4_forward.specialize=0;"
    "dcnv4_backward.vec=2;dcnv4_backward.local=16;dcnv4_backward.split=1;"
    "dcnv4_backward.unroll=0;dcnv4_backward.specialize=0",
    /* specialized and unrolled, per-pixel backward, scalar; the
     * forward's work-groups of one group over two rows (as NVIDIA's), two
     * pieces per work-item where group_channels is even */
    "dcnv4_forward.vec=1;dcnv4_forward.local=8;dcnv4_forward.stage=0;"
    "dcnv4_forward.unroll=1;dcnv4_forward.specialize=1;"
    "dcnv4_forward.groups=1;dcnv4_forward.rows=2;dcnv4_forward.pieces=2;"
    "dcnv4_backward.vec=1;dcnv4_backward.local=8;dcnv4_backward.split=0;"
    "dcnv4_backward.unroll=1;dcnv4_backward.specialize=1",
    /* point footprints in local memory over two-row work-groups, tiled
     * backward (fixed-point region in local memory), two-row tiles */
    "dcnv4_forward.vec=4;dcnv4_forward.local=32;dcnv4_forward.stage=3;"
    "dcnv4_forward.rows=2;dcnv4_forward.unroll=1;dcnv4_forward.specialize=1;"
    "dcnv4_backward.vec=2;dcnv4_backward.local=16;dcnv4_backward.split=1;"
    "dcnv4_backward.unroll=1;dcnv4_backward.specialize=1;"
    "dcnv4_backward.halo=1;dcnv4_backward.rows=2",
};

static const dcnv4_dtype dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16,
                                     DCNV4_BFLOAT16};

static int run_dcnv4(int variant, rng *r) {
  dcnv4_context *ctx = oclgrind_context(dcnv4_variants[variant]);
  int done = 0;
  for (size_t t = 0; t < 3; t++)
    for (size_t i = 0; i < sizeof dcnv4_configs / sizeof dcnv4_configs[0];
         i++) {
      dcnv4_params p;
      dcnv4_case_params(&dcnv4_configs[i], dtypes[t], &p);
      dcnv4_problem pr;
      /* A third of the offsets far outside the image. */
      problem_init(&pr, &p, r, 0.3);
      char what[256];
      problem_describe(&p, what, sizeof what);
      dcnv4_errors e;
      double tol = tolerance_for(p.dtype);
      if (problem_run(ctx, &pr, 1, &e) != 0)
        CHECK(0, "%s: library call failed", what);
      else {
        CHECK(e.output <= tol, "%s: output error %.3g", what, e.output);
        CHECK(e.grad_input <= tol, "%s: grad_input error %.3g", what,
              e.grad_input);
        CHECK(e.grad_offset_mask <= tol, "%s: grad_offset_mask error %.3g",
              what, e.grad_offset_mask);
      }
      check_log(what);
      problem_free(&pr);
      done++;
    }
  dcnv4_context_destroy(ctx);
  return done;
}

/* ------------------------------------------------------ FlashDeformAttn */

typedef struct fda_config {
  int b, q, g, d, k, levels;
  int shapes[4][2];
  int gaps; /* rows before, between and after the levels */
} fda_config;

static const fda_config fda_configs[] = {
    {1, 3, 1, 1, 1, 1, {{1, 1}}, 0},
    {1, 4, 2, 3, 2, 2, {{3, 2}, {1, 1}}, 0},
    {2, 3, 1, 5, 1, 3, {{2, 3}, {2, 2}, {1, 1}}, 1},
    {1, 2, 3, 7, 3, 1, {{4, 4}}, 0},
    {1, 3, 2, 8, 2, 2, {{3, 3}, {2, 1}}, 1},
    {1, 2, 1, 4, 2, 1, {{2, 2}}, 0},
    {1, 2, 2, 2, 1, 4, {{1, 1}, {1, 2}, {2, 1}, {3, 2}}, 0},
    {1, 2, 1, 16, 2, 1, {{2, 3}}, 0},
    {2, 5, 2, 6, 4, 2, {{5, 4}, {2, 3}}, 1},
    {1, 3, 1, 33, 2, 1, {{3, 3}}, 0},
};

static const char *const fda_variants[] = {
    "fda_forward.vec=8;fda_forward.local=256;"
    "fda_forward.specialize=0;"
    "fda_backward.vec=8;fda_backward.local=64;"
    "fda_backward.specialize=0",
    "fda_forward.vec=4;fda_forward.local=32;"
    "fda_forward.specialize=1;"
    "fda_forward.groups=1;fda_forward.stage=2;"
    "fda_backward.vec=4;fda_backward.local=32;"
    "fda_backward.specialize=1",
    "fda_forward.vec=2;fda_forward.local=16;"
    "fda_forward.specialize=0;fda_forward.stage=1;"
    "fda_backward.vec=2;fda_backward.local=16;"
    "fda_backward.specialize=0",
    "fda_forward.vec=1;fda_forward.local=8;"
    "fda_forward.specialize=1;"
    "fda_backward.vec=1;fda_backward.local=8;"
    "fda_backward.specialize=1",
    /* The split backward (D/vec work-items per head, partials in local
     * memory): specialized with NVIDIA's vec, then the generic program
     * with work-groups that the launcher rounds to whole heads. */
    "fda_backward.split=1;fda_backward.vec=4;fda_backward.local=32;"
    "fda_backward.specialize=1",
    "fda_backward.split=1;fda_backward.vec=2;fda_backward.local=20;"
    "fda_backward.specialize=0",
};

static void fda_params(const fda_config *c, dcnv4_dtype dtype,
                       dcnv4_fda_params *p) {
  dcnv4_fda_params_init(p);
  p->batch = c->b;
  p->queries = c->q;
  p->group = c->g;
  p->group_channels = c->d;
  p->points = c->k;
  p->levels = c->levels;
  p->dtype = dtype;
  int32_t row = c->gaps ? 2 : 0;
  for (int l = 0; l < c->levels; l++) {
    p->spatial_shapes[l][0] = c->shapes[l][0];
    p->spatial_shapes[l][1] = c->shapes[l][1];
    p->level_start[l] = row;
    row += c->shapes[l][0] * c->shapes[l][1] + (c->gaps ? 1 : 0);
  }
  p->value_len = row;
}

static int run_fda(int variant, rng *r) {
  dcnv4_context *ctx = oclgrind_context(fda_variants[variant]);
  int done = 0;
  for (size_t t = 0; t < 3; t++)
    for (size_t i = 0; i < sizeof fda_configs / sizeof fda_configs[0]; i++) {
      dcnv4_fda_params p;
      fda_params(&fda_configs[i], dtypes[t], &p);
      fda_problem pr;
      /* Many special locations: exactly 0 or 1, far outside, inf, NaN. */
      fda_problem_init(&pr, &p, r, 0.3);
      char what[256];
      fda_problem_describe(&p, what, sizeof what);
      fda_errors e;
      double tol = tolerance_for(p.dtype);
      if (fda_problem_run(ctx, &pr, 1, &e) != 0)
        CHECK(0, "%s: library call failed", what);
      else {
        CHECK(e.output <= tol, "%s: output error %.3g", what, e.output);
        CHECK(e.grad_value <= tol, "%s: grad_value error %.3g", what,
              e.grad_value);
        CHECK(e.grad_sampling <= tol, "%s: grad_sampling error %.3g", what,
              e.grad_sampling);
      }
      check_log(what);
      fda_problem_free(&pr);
      done++;
    }
  dcnv4_context_destroy(ctx);
  return done;
}

/* ------------------------------------------------------- layer kernels */

typedef struct cl_env {
  dcnv4_context *ctx;
  cl_context cl;
  cl_device_id dev;
  cl_command_queue q;
  const char *dir;
} cl_env;

static char *read_text(const char *dir, const char *name, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)n + 1);
  *len = fread(text, 1, (size_t)n, f);
  text[*len] = 0;
  fclose(f);
  return text;
}

/* common.clh followed by `file`, as src/programs/program_registry.c assembles
 * them. */
static cl_kernel build_kernel(const cl_env *env, const char *file,
                              const char *options, const char *name) {
  size_t len[2];
  char *text[2] = {read_text(env->dir, "ops/common/common.clh", &len[0]),
                   read_text(env->dir, file, &len[1])};
  cl_int err;
  cl_program prog =
      clCreateProgramWithSource(env->cl, 2, (const char **)text, len, &err);
  free(text[0]);
  free(text[1]);
  char full[512];
  snprintf(full, sizeof full, "-cl-std=CL1.2 %s", options);
  if (err == CL_SUCCESS)
    err = clBuildProgram(prog, 1, &env->dev, full, NULL, NULL);
  if (err != CL_SUCCESS) {
    char log[8192] = "";
    clGetProgramBuildInfo(prog, env->dev, CL_PROGRAM_BUILD_LOG, sizeof log, log,
                          NULL);
    fprintf(stderr, "building %s (%s) failed: %d\n%s\n", file, full, err, log);
    exit(1);
  }
  cl_kernel k = clCreateKernel(prog, name, &err);
  clReleaseProgram(prog);
  if (err != CL_SUCCESS) {
    fprintf(stderr, "no kernel %s\n", name);
    exit(1);
  }
  return k;
}

/* Launches a 1-D range of `items` work-items in groups of `local` (global
 * rounded up, as dcn_enqueue_1d does) and waits. */
static void launch_1d(const cl_env *env, cl_kernel k, size_t items,
                      size_t local) {
  size_t global = (items + local - 1) / local * local;
  cl_int err = clEnqueueNDRangeKernel(env->q, k, 1, NULL, &global, &local, 0,
                                      NULL, NULL);
  if (err == CL_SUCCESS)
    err = clFinish(env->q);
  CHECK(err == CL_SUCCESS, "enqueue failed: %d", err);
}

static void set_arg(cl_kernel k, cl_uint i, size_t size, const void *v) {
  cl_int err = clSetKernelArg(k, i, size, v);
  CHECK(err == CL_SUCCESS, "clSetKernelArg %u: %d", i, err);
}

static void random_values(rng *r, float *v, size_t n, dcnv4_dtype dtype) {
  for (size_t i = 0; i < n; i++)
    v[i] = round_to_dtype((float)rng_uniform(r, -2, 2), dtype);
}

/* Reads `n` elements of `dtype` back as floats and compares them. */
static void expect(const cl_env *env, cl_mem m, const double *ref, size_t n,
                   dcnv4_dtype dtype, const char *what) {
  double *got = download_values(env->ctx, m, n, dtype);
  double err = rel_l2(got, ref, n);
  CHECK(err <= tolerance_for(dtype), "%s: error %.3g", what, err);
  free(got);
}

/* to_float, bias_store with and without bias, convert_from_float. */
static void layer_elementwise(const cl_env *env, dcnv4_dtype dtype, rng *r) {
  const int rows = 7, cols = 5;
  const size_t n = (size_t)rows * cols;
  float src[35], bias[5];
  double ref[35];
  random_values(r, src, n, dtype);
  random_values(r, bias, (size_t)cols, DCNV4_FLOAT32);
  char opts[128], what[128];
  cl_int count = (cl_int)n, c = cols;

  /* to_float: storage -> fp32 */
  snprintf(opts, sizeof opts, "-DDTYPE=%d -DIDX64=0 -DHAS_BIAS=1", (int)dtype);
  cl_kernel k =
      build_kernel(env, "ops/layer_ops/layer_ops.cl", opts, "to_float");
  cl_mem in = upload_values(env->ctx, src, n, dtype);
  cl_mem out = poisoned_buffer(env->ctx, n, DCNV4_FLOAT32);
  set_arg(k, 0, sizeof in, &in);
  set_arg(k, 1, sizeof out, &out);
  set_arg(k, 2, sizeof count, &count);
  launch_1d(env, k, n, 16);
  for (size_t i = 0; i < n; i++)
    ref[i] = src[i];
  snprintf(what, sizeof what, "to_float %s", dcnv4_dtype_name(dtype));
  expect(env, out, ref, n, DCNV4_FLOAT32, what);
  check_log(what);
  clReleaseKernel(k);
  host_release(in);
  host_release(out);

  /* bias_store (HAS_BIAS=1 and 0): fp32 -> storage, out of place */
  for (int has_bias = 1; has_bias >= 0; has_bias--) {
    snprintf(opts, sizeof opts, "-DDTYPE=%d -DIDX64=0 -DHAS_BIAS=%d",
             (int)dtype, has_bias);
    k = build_kernel(env, "ops/layer_ops/layer_ops.cl", opts, "bias_store");
    float src32[35];
    random_values(r, src32, n, DCNV4_FLOAT32);
    in = upload_values(env->ctx, src32, n, DCNV4_FLOAT32);
    cl_mem b = upload_values(env->ctx, bias, (size_t)cols, DCNV4_FLOAT32);
    out = poisoned_buffer(env->ctx, n, dtype);
    set_arg(k, 0, sizeof in, &in);
    set_arg(k, 1, sizeof b, has_bias ? &b : &in);
    set_arg(k, 2, sizeof out, &out);
    set_arg(k, 3, sizeof count, &count);
    set_arg(k, 4, sizeof c, &c);
    launch_1d(env, k, n, 16);
    for (size_t i = 0; i < n; i++)
      ref[i] = src32[i] + (has_bias ? bias[i % (size_t)cols] : 0.0f);
    snprintf(what, sizeof what, "bias_store %s bias %d",
             dcnv4_dtype_name(dtype), has_bias);
    expect(env, out, ref, n, dtype, what);
    check_log(what);
    clReleaseKernel(k);
    host_release(in);
    host_release(b);
    host_release(out);
  }

  /* bias_store in place on fp32 (the layers' scratch) */
  if (dtype == DCNV4_FLOAT32) {
    k = build_kernel(env, "ops/layer_ops/layer_ops.cl",
                     "-DDTYPE=0 -DIDX64=0 -DHAS_BIAS=1", "bias_store");
    float src32[35];
    random_values(r, src32, n, DCNV4_FLOAT32);
    in = upload_values(env->ctx, src32, n, DCNV4_FLOAT32);
    cl_mem b = upload_values(env->ctx, bias, (size_t)cols, DCNV4_FLOAT32);
    set_arg(k, 0, sizeof in, &in);
    set_arg(k, 1, sizeof b, &b);
    set_arg(k, 2, sizeof in, &in);
    set_arg(k, 3, sizeof count, &count);
    set_arg(k, 4, sizeof c, &c);
    launch_1d(env, k, n, 16);
    for (size_t i = 0; i < n; i++)
      ref[i] = src32[i] + bias[i % (size_t)cols];
    expect(env, in, ref, n, DCNV4_FLOAT32, "bias_store in place");
    check_log("bias_store in place");
    clReleaseKernel(k);
    host_release(in);
    host_release(b);
  }

  /* convert_from_float (convert.cl): the backward passes' last step, 8 per
   * work-item as the library builds it; 35 leaves a tail of 3 */
  snprintf(opts, sizeof opts, "-DDTYPE=%d -DIDX64=0 -DVEC=8", (int)dtype);
  k = build_kernel(env, "ops/common/convert.cl", opts, "convert_from_float");
  float src32[35];
  random_values(r, src32, n, DCNV4_FLOAT32);
  in = upload_values(env->ctx, src32, n, DCNV4_FLOAT32);
  out = poisoned_buffer(env->ctx, n, dtype);
  set_arg(k, 0, sizeof in, &in);
  set_arg(k, 1, sizeof out, &out);
  set_arg(k, 2, sizeof count, &count);
  launch_1d(env, k, (n + 7) / 8, 4);
  for (size_t i = 0; i < n; i++)
    ref[i] = src32[i];
  snprintf(what, sizeof what, "convert_from_float %s", dcnv4_dtype_name(dtype));
  expect(env, out, ref, n, dtype, what);
  check_log(what);
  clReleaseKernel(k);
  host_release(in);
  host_release(out);
}

/* zero_words (zero.cl): `words` of a buffer 3 words longer become 0, the
 * others keep their poison; groups of `local` (the last one partial where
 * the 16-byte stores do not fill it). */
static void zero_words(const cl_env *env, cl_ulong words, size_t local) {
  const size_t n = (size_t)words + 3;
  cl_kernel k = build_kernel(env, "ops/common/zero.cl", "", "zero_words");
  cl_mem buf = poisoned_buffer(env->ctx, n, DCNV4_FLOAT32);
  set_arg(k, 0, sizeof buf, &buf);
  set_arg(k, 1, sizeof words, &words);
  launch_1d(env, k, (size_t)(words + 3) / 4, local);
  double *got = download_values(env->ctx, buf, n, DCNV4_FLOAT32);
  char what[64];
  snprintf(what, sizeof what, "zero_words %llu", (unsigned long long)words);
  for (size_t i = 0; i < n; i++)
    CHECK(i < words ? got[i] == 0 : got[i] != 0, "%s: word %zu is %g", what, i,
          got[i]);
  check_log(what);
  free(got);
  clReleaseKernel(k);
  host_release(buf);
}

/* Mirrors image_geometry in layer_ops.cl (and src/ops/layer_ops/layer_ops.c).
 */
typedef struct image_geometry_arg {
  cl_int height, width, channels;
} image_geometry_arg;

static void layer_dwconv(const cl_env *env, int K, int batch, int height,
                         int width, int channels, rng *r) {
  const size_t n = (size_t)batch * height * width * channels;
  const size_t nw = (size_t)K * K * channels;
  float *src = malloc(n * sizeof *src), *w = malloc(nw * sizeof *w);
  float *bias = malloc((size_t)channels * sizeof *bias);
  double *ref = malloc(n * sizeof *ref);
  random_values(r, src, n, DCNV4_FLOAT32);
  random_values(r, w, nw, DCNV4_FLOAT32);
  random_values(r, bias, (size_t)channels, DCNV4_FLOAT32);
  const int p = (K - 1) / 2;
  for (int b = 0; b < batch; b++)
    for (int h = 0; h < height; h++)
      for (int x = 0; x < width; x++)
        for (int c = 0; c < channels; c++) {
          double acc = bias[c];
          for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
              int y = h + i - p, xx = x + j - p;
              if (y < 0 || y >= height || xx < 0 || xx >= width)
                continue;
              acc +=
                  (double)w[(i * K + j) * channels + c] *
                  src[(((size_t)b * height + y) * width + xx) * channels + c];
            }
          ref[(((size_t)b * height + h) * width + x) * channels + c] = acc;
        }
  char opts[128], what[128];
  snprintf(opts, sizeof opts, "-DDTYPE=0 -DIDX64=0 -DHAS_BIAS=1 -DDW_K=%d", K);
  cl_kernel k = build_kernel(env, "ops/layer_ops/layer_ops.cl", opts, "dwconv");
  cl_mem d_src = upload_values(env->ctx, src, n, DCNV4_FLOAT32);
  cl_mem d_w = upload_values(env->ctx, w, nw, DCNV4_FLOAT32);
  cl_mem d_b = upload_values(env->ctx, bias, (size_t)channels, DCNV4_FLOAT32);
  cl_mem d_out = poisoned_buffer(env->ctx, n, DCNV4_FLOAT32);
  image_geometry_arg g = {height, width, channels};
  cl_int count = (cl_int)n;
  set_arg(k, 0, sizeof d_src, &d_src);
  set_arg(k, 1, sizeof d_w, &d_w);
  set_arg(k, 2, sizeof d_b, &d_b);
  set_arg(k, 3, sizeof d_out, &d_out);
  set_arg(k, 4, sizeof g, &g);
  set_arg(k, 5, sizeof count, &count);
  launch_1d(env, k, n, 16);
  snprintf(what, sizeof what, "dwconv k%d N%d %dx%d C%d", K, batch, height,
           width, channels);
  expect(env, d_out, ref, n, DCNV4_FLOAT32, what);
  check_log(what);
  clReleaseKernel(k);
  host_release(d_src);
  host_release(d_w);
  host_release(d_b);
  host_release(d_out);
  free(src);
  free(w);
  free(bias);
  free(ref);
}

static void layer_cfs_blend(const cl_env *env, int rows, int group, int D,
                            rng *r) {
  const size_t n = (size_t)rows * group * D, nl = (size_t)rows * group;
  float *x = malloc(n * sizeof *x), *v = malloc(n * sizeof *v);
  float *logits = malloc(nl * sizeof *logits);
  float *bias = malloc((size_t)group * sizeof *bias);
  double *ref = malloc(n * sizeof *ref);
  random_values(r, x, n, DCNV4_FLOAT32);
  random_values(r, v, n, DCNV4_FLOAT32);
  random_values(r, logits, nl, DCNV4_FLOAT32);
  random_values(r, bias, (size_t)group, DCNV4_FLOAT32);
  for (size_t i = 0; i < n; i++) {
    size_t pixel = i / ((size_t)group * D);
    int g = (int)(i % ((size_t)group * D)) / D;
    double s =
        1.0 / (1.0 + exp(-((double)logits[pixel * group + g] + bias[g])));
    ref[i] = x[i] * (1 - s) + v[i] * s;
  }
  char opts[128], what[128];
  snprintf(opts, sizeof opts,
           "-DDTYPE=0 -DIDX64=0 -DHAS_BIAS=1 -DGROUP_CHANNELS=%d", D);
  cl_kernel k =
      build_kernel(env, "ops/layer_ops/layer_ops.cl", opts, "cfs_blend");
  cl_mem d_x = upload_values(env->ctx, x, n, DCNV4_FLOAT32);
  cl_mem d_v = upload_values(env->ctx, v, n, DCNV4_FLOAT32);
  cl_mem d_l = upload_values(env->ctx, logits, nl, DCNV4_FLOAT32);
  cl_mem d_b = upload_values(env->ctx, bias, (size_t)group, DCNV4_FLOAT32);
  cl_int g = group, count = (cl_int)n;
  set_arg(k, 0, sizeof d_x, &d_x);
  set_arg(k, 1, sizeof d_v, &d_v);
  set_arg(k, 2, sizeof d_l, &d_l);
  set_arg(k, 3, sizeof d_b, &d_b);
  set_arg(k, 4, sizeof g, &g);
  set_arg(k, 5, sizeof count, &count);
  launch_1d(env, k, n, 16);
  snprintf(what, sizeof what, "cfs_blend rows %d G%d D%d", rows, group, D);
  expect(env, d_x, ref, n, DCNV4_FLOAT32, what);
  check_log(what);
  clReleaseKernel(k);
  host_release(d_x);
  host_release(d_v);
  host_release(d_l);
  host_release(d_b);
  free(x);
  free(v);
  free(logits);
  free(bias);
  free(ref);
}

/* mask_rows: rows of a padded position zeroed in place, in the storage
 * dtype (the FlashDeformAttn layer's value); NaN in a padded row too. */
static void layer_mask_rows(const cl_env *env, dcnv4_dtype dtype, rng *r) {
  enum { ROWS = 6, COLS = 5 };
  const size_t n = (size_t)ROWS * COLS;
  float x[ROWS * COLS];
  double ref[ROWS * COLS];
  const cl_uchar mask[ROWS] = {0, 1, 0, 0, 1, 1};
  random_values(r, x, n, dtype);
  x[COLS + 2] = NAN;
  for (size_t i = 0; i < n; i++)
    ref[i] = mask[i / COLS] ? 0.0 : x[i];
  char opts[128], what[128];
  snprintf(opts, sizeof opts, "-DDTYPE=%d -DIDX64=0 -DHAS_BIAS=1", (int)dtype);
  cl_kernel k =
      build_kernel(env, "ops/layer_ops/layer_ops.cl", opts, "mask_rows");
  cl_mem d_x = upload_values(env->ctx, x, n, dtype);
  cl_int err;
  cl_mem d_m = clCreateBuffer(env->cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                              sizeof mask, (void *)mask, &err);
  cl_int count = (cl_int)n, c = COLS;
  set_arg(k, 0, sizeof d_x, &d_x);
  set_arg(k, 1, sizeof d_m, &d_m);
  set_arg(k, 2, sizeof count, &count);
  set_arg(k, 3, sizeof c, &c);
  launch_1d(env, k, n, 16);
  snprintf(what, sizeof what, "mask_rows %s", dcnv4_dtype_name(dtype));
  CHECK(err == CL_SUCCESS, "%s: mask buffer", what);
  expect(env, d_x, ref, n, dtype, what);
  check_log(what);
  clReleaseKernel(k);
  host_release(d_x);
  clReleaseMemObject(d_m);
}

static int run_layer(const char *dir, rng *r) {
  cl_env env;
  env.ctx = oclgrind_context("");
  env.cl = dcnv4_context_cl_context(env.ctx);
  env.dev = dcnv4_context_device(env.ctx);
  env.q = dcnv4_context_queue(env.ctx);
  env.dir = dir;
  for (size_t t = 0; t < 3; t++)
    layer_elementwise(&env, dtypes[t], r);
  layer_dwconv(&env, 3, 1, 1, 1, 1, r);
  layer_dwconv(&env, 3, 2, 3, 4, 5, r);
  layer_dwconv(&env, 5, 1, 2, 3, 3, r);
  layer_dwconv(&env, 7, 1, 4, 2, 7, r);
  layer_cfs_blend(&env, 3, 2, 3, r);
  layer_cfs_blend(&env, 1, 1, 1, r);
  layer_cfs_blend(&env, 2, 3, 8, r);
  layer_mask_rows(&env, DCNV4_FLOAT32, r);
  layer_mask_rows(&env, DCNV4_FLOAT16, r);
  zero_words(&env, 1, 16);
  zero_words(&env, 37, 4);
  zero_words(&env, 64, 16);
  dcnv4_context_destroy(env.ctx);
  return 3 * 5 + 1 + 4 + 3 + 2 + 3;
}

/* ------------------------------------------------------------ linear */

/* linear.cl's variants: rolled and unrolled k loops, 4, 8 and 16 rows
 * per work-item, 4 and 8 columns, up to 256 work-items (within Oclgrind's
 * 32 KiB of local memory). */
static const char *const linear_variants[] = {
    "linear.backend=1;linear.tilem=32;linear.tilen=32;linear.tilek=4;"
    "linear.vec=4;linear.local=16;linear.unroll=0",
    "linear.backend=1;linear.tilem=64;linear.tilen=32;linear.tilek=16;"
    "linear.vec=4;linear.local=64;linear.unroll=1",
    "linear.backend=1;linear.tilem=32;linear.tilen=64;linear.tilek=8;"
    "linear.vec=8;linear.local=64;linear.unroll=1",
    "linear.backend=1;linear.tilem=128;linear.tilen=64;linear.tilek=16;"
    "linear.vec=4;linear.local=256;linear.unroll=1",
    /* split along K (parts of 2 chunks) and its reduction */
    "linear.backend=1;linear.tilem=32;linear.tilen=32;linear.tilek=4;"
    "linear.vec=4;linear.local=16;linear.unroll=0;linear.ksplit=4;"
    "linear.fill=16;linear.kmin=8",
};

/* rows, out_features, in_features: 1 x 1 x 1, odd sizes (partial tiles
 * on every side, K not a multiple of 4), and whole tiles with K a multiple
 * of 4 (the float4 loads and stores). */
static const int linear_shapes[][3] = {
    {1, 1, 1}, {7, 5, 3}, {33, 20, 17}, {70, 40, 24}, {130, 64, 36}};

static int run_linear(rng *r) {
  int done = 0;
  for (size_t v = 0; v < sizeof linear_variants / sizeof *linear_variants;
       v++) {
    dcnv4_context *ctx = oclgrind_context(linear_variants[v]);
    for (size_t s = 0; s < sizeof linear_shapes / sizeof *linear_shapes; s++)
      for (int with_bias = 0; with_bias < 2; with_bias++) {
        const int m = linear_shapes[s][0], n = linear_shapes[s][1],
                  k = linear_shapes[s][2];
        /* the large tiles on the small shapes only; the largest shape (a
         * third of the part's time) with the bias only: 70x40x24 has the
         * same float4 path without it */
        if ((v == 3 && m > 70) || (m > 70 && !with_bias))
          continue;
        char what[256];
        snprintf(what, sizeof what, "linear %s: %dx%dx%d%s", linear_variants[v],
                 m, n, k, with_bias ? " + bias" : "");
        dcnv4_status st;
        double e = linear_product_error(ctx, r, m, n, k, with_bias, &st);
        check_result(ctx, what, st, e, TOL_FP32);
        CHECK(dcnv4_context_tuning_fallbacks(ctx) == 0,
              "%s: fell back to the default", what);
        done++;
      }
    dcnv4_context_destroy(ctx);
  }
  return done;
}

/* One FlashInternImage-kernel case against its float64 reference. */
static int fii_run(dcnv4_context *ctx, fii_case *c, rng *r) {
  char what[200];
  fii_case_name(c, what, sizeof what);
  dcnv4_status st;
  const double e = fii_check(c, ctx, r, &st);
  check_result(ctx, what, st, e, tolerance_for(c->dtype));
  return 1;
}

/* -------------------------------------------------------- linear_mma */

/* linear_mma.cl's portable fragments: two warps of 16x32 through 2
 * buffers (PoCL's default), four of 32x16 through a ring of 3 (within
 * Oclgrind's 32 KiB of local memory), two of 32x16 with swizzled rows, the
 * staged epilogue, prefetched fragments and a raster of 2. */
static const char *const mma_variants[] = {
    "linear_mma.tilem=32;linear_mma.tilen=32;linear_mma.tilek=16;"
    "linear_mma.local=64;linear_mma.stages=2",
    "linear_mma.tilem=64;linear_mma.tilen=32;linear_mma.tilek=32;"
    "linear_mma.local=128;linear_mma.stages=3;linear_mma.ksplit=4;"
    "linear_mma.fill=16;linear_mma.kmin=32",
    "linear_mma.tilem=32;linear_mma.tilen=32;linear_mma.tilek=32;"
    "linear_mma.local=64;linear_mma.stages=2;linear_mma.swizzle=1;"
    "linear_mma.staged=1;linear_mma.prefetch=1;linear_mma.raster=2",
};

/* m, n, k: 1 x 1 x 1, odd sizes (K value by value), K a multiple of 8
 * (16-byte copies) over several chunks with partial tiles. */
static const int mma_shapes[][3] = {
    {1, 1, 1}, {7, 5, 3}, {33, 20, 17}, {70, 40, 24}, {40, 34, 72}};

/* 16-bit GEMMs: linear_mma.cl's portable fragments (mma_variants; part
 * linear_mma), or linear.cl's 16-bit loads and stores on small tiles (what
 * devices without the PTX run; part linear16). */
static int run_linear_mma(rng *r, bool linear16) {
  /* storage, output, epilogue: each dtype, output and epilogue once */
  const struct {
    dcnv4_dtype dtype, out;
    dcn_gemm_epilogue_kind epilogue;
  } combos[] = {{DCNV4_FLOAT16, DCNV4_FLOAT32, DCN_GEMM_NONE},
                {DCNV4_FLOAT16, DCNV4_FLOAT16, DCN_GEMM_GELU},
                {DCNV4_BFLOAT16, DCNV4_BFLOAT16, DCN_GEMM_RESIDUAL}};
  const size_t variants = sizeof mma_variants / sizeof *mma_variants;
  int done = 0;
  for (size_t v = linear16 ? variants : 0; v < variants + linear16; v++) {
    dcnv4_context *ctx = oclgrind_context(
        v < variants ? mma_variants[v]
                     : "linear.backend=1;linear.tilem=32;linear.tilen=32;"
                       "linear.tilek=4;linear.vec=4;linear.local=16;"
                       "linear.unroll=0");
    /* Oclgrind runs the portable fragments' barriers slowly (about 13 s a
     * case, 800 s for everything): the 2-buffer tiling takes fp16 -> fp32
     * on the 1x1x1, odd (values one by one) and multi-chunk shapes and the
     * 1x1x1 and multi-chunk shapes in the other
     * combinations; the ring of 3 bf16 -> bf16 with the residual on the
     * multi-chunk shape, split in 2 parts of K (64 and 8: the reduction
     * kernel of linear.cl adds them); the swizzled, staged tiling fp16 -> fp16
     * GELU on 70x40x24 (16-byte rows, partial tiles) and bf16 -> bf16 residual
     * on the odd shape. linear.cl (linear16) takes everything. */
    const size_t last = sizeof mma_shapes / sizeof *mma_shapes - 1;
    for (size_t c = v == 1 ? 2 : 0; c < sizeof combos / sizeof *combos; c++)
      for (size_t s = 0; s <= last; s++) {
        if ((v == 0 && c == 0 && (s == 2 || s == 3)) ||
            (v == 0 && c > 0 && s != 0 && s != last) || (v == 1 && s != last) ||
            (v == 2 && (c == 0 || (c == 1 && s != 3) || (c == 2 && s != 1))))
          continue;
        fii_case fc;
        memset(&fc, 0, sizeof fc);
        fc.op = FII_GEMM;
        fc.mma = v < variants; /* else the device's choice: linear.cl */
        fc.dtype = combos[c].dtype;
        fc.out_dtype = combos[c].out;
        fc.epilogue = combos[c].epilogue;
        fc.m = mma_shapes[s][0];
        fc.n = mma_shapes[s][1];
        fc.k = mma_shapes[s][2];
        fc.with_bias = (int)(s % 2);
        fc.with_scale = (int)(s % 2);
        done += fii_run(ctx, &fc, r);
      }
    CHECK(dcnv4_context_tuning_fallbacks(ctx) == 0,
          "linear_mma tiling %zu: fell back to the default", v);
    dcnv4_context_destroy(ctx);
  }
  return done;
}

/* ------------------------------------------------------------ fii */

/* CLBlast's GELU epilogue pass (bias_gelu) on its own: the GEMM before it
 * is CLBlast's, not this project's to check. */
static int fii_gelu_pass(dcnv4_context *ctx, rng *r) {
  enum { ROWS = 5, COLS = 7 };
  float c[ROWS * COLS], b[COLS];
  double ref[ROWS * COLS];
  for (int j = 0; j < COLS; j++)
    b[j] = (float)rng_uniform(r, -1, 1);
  for (int i = 0; i < ROWS * COLS; i++) {
    c[i] = (float)rng_uniform(r, -3, 3);
    ref[i] = ref_gelu((double)c[i] + (double)b[i % COLS]);
  }
  cl_mem C = upload_values(ctx, c, ROWS * COLS, DCNV4_FLOAT32),
         B = upload_values(ctx, b, COLS, DCNV4_FLOAT32);
  cl_kernel k;
  dcnv4_status st = dcn_gemm_epilogue_kernel(ctx, DCN_GEMM_GELU, false, &k);
  if (st == DCNV4_SUCCESS)
    st = dcn_run_gemm_epilogue(ctx, k, DCN_GEMM_GELU, false, C, B, NULL, NULL,
                               ROWS, COLS, NULL);
  if (st == DCNV4_SUCCESS)
    st = dcnv4_context_finish(ctx);
  CHECK(st == DCNV4_SUCCESS, "bias_gelu: %s", dcnv4_context_last_error(ctx));
  double *got = download_values(ctx, C, ROWS * COLS, DCNV4_FLOAT32);
  const double e = rel_l2(got, ref, ROWS * COLS);
  CHECK(e <= TOL_FP32, "bias_gelu: error %.3g", e);
  free(got);
  host_release(C);
  host_release(B);
  check_log("bias_gelu");
  return 1;
}

/* Split along K: the parts' kernel and the reduction with each epilogue
 * (K 17: two parts, the second shorter), in a context of their own: after
 * other GEMMs in the same context Oclgrind 21.10 reported every store of
 * the reduction as uninitialized, though every partial sum it reads had been
 * written and was right (checked element by element against float64); in a
 * fresh context it reports nothing. */
static int run_fii_split(rng *r) {
  dcnv4_context *ctx = oclgrind_context(
      "linear.backend=1;linear.tilem=32;linear.tilen=32;linear.tilek=4;"
      "linear.vec=4;linear.local=16;linear.unroll=0;linear.ksplit=4;"
      "linear.fill=16;linear.kmin=8");
  int done = 0;
  for (int e = 0; e < 3; e++) {
    fii_case c;
    memset(&c, 0, sizeof c);
    c.op = FII_GEMM;
    c.epilogue = (dcn_gemm_epilogue_kind)e;
    c.m = 33;
    c.n = e == 1 ? 8 : 7;
    c.k = 17;
    c.with_bias = e != 0;
    c.with_scale = 1;
    done += fii_run(ctx, &c, r);
  }
  dcnv4_context_destroy(ctx);
  return done;
}

static int run_fii(rng *r) {
  dcnv4_context *ctx = oclgrind_context(
      "linear.backend=1;linear.tilem=32;linear.tilen=32;linear.tilek=4;"
      "linear.vec=4;linear.local=16;linear.unroll=0");
  int done = 0;
  /* conv2d: NCHW with the 128x32 tile (<= 32 output channels), 1x1 input,
   * channels-last with the 64x64 tile and 2 channel tiles. */
  const dcn_conv2d_shape convs[] = {{1, 5, 4, 3, 6, 3, 2, 1, true},
                                    {1, 1, 1, 3, 5, 3, 2, 1, true},
                                    {2, 3, 3, 5, 70, 3, 2, 1, false},
                                    {1, 4, 5, 17, 9, 3, 1, 1, false}};
  for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
    fii_case c;
    memset(&c, 0, sizeof c);
    c.op = FII_CONV2D;
    c.conv = convs[i];
    c.with_bias = (int)(i % 2 == 0);
    done += fii_run(ctx, &c, r);
  }
  /* LayerNorm: 1 channel, a team of 16 on 70 channels with a partial last
   * group of rows, 300 channels on teams of 64; each epilogue, aliased. */
  const int ln[][2] = {{3, 1}, {9, 70}, {2, 300}};
  for (size_t i = 0; i < sizeof ln / sizeof *ln; i++)
    for (int e = 0; e < 3; e++) {
      fii_case c;
      memset(&c, 0, sizeof c);
      c.op = FII_LAYERNORM;
      c.ln = (dcn_layernorm_desc){(uint64_t)ln[i][0], ln[i][1], 1e-6f,
                                  (dcn_norm_epilogue)e};
      c.with_scale = e == 2;
      c.alias = (int)(i % 2);
      done += fii_run(ctx, &c, r);
    }
  fii_case c;
  memset(&c, 0, sizeof c);
  c.op = FII_RESIDUAL;
  c.ln.rows = 3;
  c.ln.channels = 7;
  c.with_scale = 1;
  done += fii_run(ctx, &c, r);
  memset(&c, 0, sizeof c);
  c.op = FII_AVGPOOL;
  c.batch = 2;
  c.positions = 5;
  c.ln.channels = 3;
  done += fii_run(ctx, &c, r);
  /* 16-bit activations (16-bit models): the stem's convolution from the
   * fp32 image in fp16, a channels-last one in bf16, LayerNorm's residual
   * form in fp16 (aliased), the pooling in bf16. */
  const dcn_conv2d_shape convs16[] = {{1, 5, 4, 3, 6, 3, 2, 1, true},
                                      {2, 3, 3, 5, 70, 3, 2, 1, false}};
  for (size_t i = 0; i < 2; i++) {
    memset(&c, 0, sizeof c);
    c.op = FII_CONV2D;
    c.dtype = i ? DCNV4_BFLOAT16 : DCNV4_FLOAT16;
    c.conv = convs16[i];
    c.with_bias = 1;
    done += fii_run(ctx, &c, r);
  }
  memset(&c, 0, sizeof c);
  c.op = FII_LAYERNORM;
  c.dtype = DCNV4_FLOAT16;
  c.ln = (dcn_layernorm_desc){9, 70, 1e-6f, DCN_NORM_RESIDUAL};
  c.with_scale = 1;
  c.alias = 1;
  done += fii_run(ctx, &c, r);
  memset(&c, 0, sizeof c);
  c.op = FII_AVGPOOL;
  c.dtype = DCNV4_BFLOAT16;
  c.batch = 2;
  c.positions = 5;
  c.ln.channels = 3;
  done += fii_run(ctx, &c, r);
  /* The GEMM epilogues in linear.cl: partial tiles, N a multiple of 4
   * (float4 stores) and not. */
  const int gemm[][3] = {{7, 5, 3}, {33, 8, 17}};
  for (size_t i = 0; i < sizeof gemm / sizeof *gemm; i++)
    for (int e = 1; e < 3; e++) {
      memset(&c, 0, sizeof c);
      c.op = FII_GEMM;
      c.epilogue = (dcn_gemm_epilogue_kind)e;
      c.m = gemm[i][0];
      c.n = gemm[i][1];
      c.k = gemm[i][2];
      c.with_bias = 1;
      c.with_scale = (int)i;
      done += fii_run(ctx, &c, r);
    }
  done += fii_gelu_pass(ctx, r);
  dcnv4_context_destroy(ctx);
  return done + run_fii_split(r);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr,
            "usage: oclgrind --log LOG ... %s CL_DIR "
            "dcnv4:V|fda:V|layer|linear|linear_mma|linear16|fii\n",
            argv[0]);
    return 2;
  }
  log_path = getenv("OCLGRIND_LOG");
  if (!log_path || !*log_path) {
    fprintf(stderr, "OCLGRIND_LOG is not set: run under oclgrind --log FILE "
                    "so that its findings can be checked\n");
    return 1;
  }
  rng r = {test_seed(20250301)};
  const char *part = argv[2];
  int done = 0, variant = -1;
  if (!strncmp(part, "dcnv4:", 6) || !strncmp(part, "fda:", 4))
    variant = atoi(strchr(part, ':') + 1);
  if (!strncmp(part, "dcnv4:", 6) && variant >= 0 &&
      variant < (int)(sizeof dcnv4_variants / sizeof *dcnv4_variants))
    done = run_dcnv4(variant, &r);
  else if (!strncmp(part, "fda:", 4) && variant >= 0 &&
           variant < (int)(sizeof fda_variants / sizeof *fda_variants))
    done = run_fda(variant, &r);
  else if (!strcmp(part, "layer"))
    done = run_layer(argv[1], &r);
  else if (!strcmp(part, "linear"))
    done = run_linear(&r);
  else if (!strcmp(part, "linear_mma"))
    done = run_linear_mma(&r, false);
  else if (!strcmp(part, "linear16"))
    done = run_linear_mma(&r, true);
  else if (!strcmp(part, "fii"))
    done = run_fii(&r);
  else {
    fprintf(stderr, "unknown part %s\n", part);
    return 2;
  }
  check_log("end of run");
  printf("%d cases run under Oclgrind\n", done);
  return test_finish("test_kernels_oclgrind");
}
