#include "test_util.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int test_failures = 0;

double tolerance_for(dcnv4_dtype dtype) {
  return dtype == DCNV4_FLOAT32   ? TOL_FP32
         : dtype == DCNV4_FLOAT16 ? TOL_FP16
                                  : TOL_BF16;
}

int test_finish(const char *name) {
  if (test_failures) {
    fprintf(stderr, "%s: %d check(s) FAILED\n", name, test_failures);
    return 1;
  }
  printf("%s: all checks passed\n", name);
  return 0;
}

uint64_t rng_next(rng *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double rng_uniform(rng *r, double lo, double hi) {
  return lo + (hi - lo) * ((double)(rng_next(r) >> 11) * 0x1.0p-53);
}

int rng_int(rng *r, int lo, int hi) {
  return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

double rng_normal(rng *r) {
  double u = rng_uniform(r, 1e-12, 1.0), v = rng_uniform(r, 0.0, 1.0);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint64_t test_seed(uint64_t fallback) {
  const char *s = getenv("TEST_SEED");
  uint64_t seed = s && *s ? strtoull(s, NULL, 0) : fallback;
  printf("seed %llu (set TEST_SEED to reproduce)\n", (unsigned long long)seed);
  return seed;
}

static dcnv4_context *open_context(int profiling) {
  char why[512] = "";
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.enable_profiling = profiling;
  o.error_buffer = why;
  o.error_buffer_size = sizeof why;
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(&o, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "cannot create a context: %s\n", why);
    exit(1);
  }
  dcnv4_device_info info;
  dcnv4_context_device_info(ctx, &info);
  printf("device %u:%u %s (%s)\n", info.platform_index, info.device_index,
         info.device_name, info.platform_name);
  return ctx;
}

dcnv4_context *test_context(void) { return open_context(0); }

dcnv4_context *test_profiling_context(void) { return open_context(1); }

cl_mem upload_values(dcnv4_context *ctx, const float *values, size_t count,
                     dcnv4_dtype dtype) {
  size_t esize = dcnv4_dtype_size(dtype);
  void *packed = malloc(count * esize + 1);
  pack_dtype(values, packed, count, dtype);
  cl_mem m = host_buffer(ctx, count * esize, packed);
  free(packed);
  if (!m) {
    fprintf(stderr, "cannot allocate a device buffer\n");
    exit(1);
  }
  return m;
}

cl_mem poisoned_buffer(dcnv4_context *ctx, size_t count, dcnv4_dtype dtype) {
  float *nan = malloc(count * sizeof *nan + 1);
  for (size_t i = 0; i < count; i++)
    nan[i] = NAN;
  cl_mem m = upload_values(ctx, nan, count, dtype);
  free(nan);
  return m;
}

double *download_values(dcnv4_context *ctx, cl_mem m, size_t count,
                        dcnv4_dtype dtype) {
  size_t esize = dcnv4_dtype_size(dtype);
  void *raw = malloc(count * esize + 1);
  float *f = malloc(count * sizeof *f + 1);
  if (host_read(ctx, m, raw, count * esize) != 0) {
    fprintf(stderr, "cannot read a device buffer\n");
    exit(1);
  }
  unpack_dtype(raw, f, count, dtype);
  double *d = to_doubles(f, count);
  free(raw);
  free(f);
  return d;
}

double rel_l2(const double *got, const double *ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(got[i]))
      return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

double rel_l2_stored(const double *got, const double *ref, size_t n,
                     dcnv4_dtype dtype) {
  double den = 0;
  for (size_t i = 0; i < n; i++)
    den += ref[i] * ref[i];
  const double norm = sqrt(den), e = rel_l2(got, ref, n);
  /* fp16's smallest normal; bf16 has fp32's range */
  const double floor_norm = dtype == DCNV4_FLOAT16 ? 6.103515625e-05 : FLT_MIN;
  if (norm >= floor_norm)
    return e;
  /* rel_l2 is absolute where ref is all zero */
  return (norm > 0 ? e * norm : e) / floor_norm;
}

double *to_doubles(const float *v, size_t n) {
  double *d = malloc(n * sizeof *d + 1);
  for (size_t i = 0; i < n; i++)
    d[i] = v[i];
  return d;
}

char *make_temp_dir(const char *tag) {
  const char *base = getenv("TMPDIR");
  char *path = malloc(4096);
  snprintf(path, 4096, "%s/dcnv4-%s-XXXXXX", base && *base ? base : "/tmp",
           tag);
  if (!mkdtemp(path)) {
    fprintf(stderr, "mkdtemp failed\n");
    exit(1);
  }
  return path;
}

void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      char child[4096];
      snprintf(child, sizeof child, "%s/%s", path, e->d_name);
      struct stat st;
      if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
        remove_tree(child);
      else
        unlink(child);
    }
    closedir(d);
  }
  rmdir(path);
}

double linear_product_error(dcnv4_context *ctx, rng *r, int m, int n, int k,
                            int with_bias, dcnv4_status *status) {
  const size_t nx = (size_t)m * k, nw = (size_t)n * k, ny = (size_t)m * n;
  float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w),
        *b = malloc((size_t)n * sizeof *b);
  double *ref = malloc(ny * sizeof *ref);
  for (size_t i = 0; i < nx; i++)
    x[i] = (float)rng_uniform(r, -1, 1);
  for (size_t i = 0; i < nw; i++)
    w[i] = (float)rng_uniform(r, -1, 1);
  for (int i = 0; i < n; i++)
    b[i] = (float)rng_uniform(r, -1, 1);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = with_bias ? (double)b[j] : 0.0;
      for (int t = 0; t < k; t++)
        s += (double)x[(size_t)i * k + t] * (double)w[(size_t)j * k + t];
      ref[(size_t)i * n + j] = s;
    }
  cl_mem X = upload_values(ctx, x, nx, DCNV4_FLOAT32),
         W = upload_values(ctx, w, nw, DCNV4_FLOAT32),
         B = upload_values(ctx, b, (size_t)n, DCNV4_FLOAT32),
         Y = poisoned_buffer(ctx, ny, DCNV4_FLOAT32);
  double err = INFINITY;
  *status = dcnv4_linear_forward(ctx, (uint64_t)m, n, k, X, W,
                                 with_bias ? B : NULL, Y, 0, NULL, NULL);
  if (*status == DCNV4_SUCCESS) {
    double *got = download_values(ctx, Y, ny, DCNV4_FLOAT32);
    err = rel_l2(got, ref, ny);
    free(got);
  }
  clReleaseMemObject(X);
  clReleaseMemObject(W);
  clReleaseMemObject(B);
  clReleaseMemObject(Y);
  free(x);
  free(w);
  free(b);
  free(ref);
  return err;
}
