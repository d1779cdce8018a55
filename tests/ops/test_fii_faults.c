/* Fault injection (build with DCNV4_FAULT_INJECTION) for the
 * FlashInternImage model's kernels (src/ops/fii/fii_ops.h): convolution
 * (both input layouts), LayerNorm (each epilogue), residual, average
 * pooling and the GEMM epilogues (on the default GEMM backend; the test
 * fii_faults_linear0 runs them on CLBlast and its epilogue pass,
 * fii_faults_split split along K, with the partial sums' allocation).
 *
 * For each call, the whole life of a context (create_from_cl on a filled
 * program-binary cache, the call, finish) runs with the n-th allocation or
 * wrapped OpenCL call failing, for every n until a run meets no fault. Each
 * run must fail with a status and a message (or succeed where the library
 * tolerates the fault, with the right answer), leave the output as it was
 * unless the fault came after an earlier command of the same call (CLBlast's
 * GEMM before its epilogue pass) or hit the finish, and leave the context
 * usable: a clean call then gives the float64 reference's answer (relative L2
 * <= 1e-5, DESIGN.md §1.4 fp32).
 *
 * usage: test_fii_faults */
#include "fii_check.h"

#include <stdlib.h>
#include <string.h>

/* Exported by the library in fault-injection builds only. */
void dcnv4_test_fault_set(long fail_at);
long dcnv4_test_fault_count(void);
const char *dcnv4_test_fault_site(void);

static dcnv4_context *base; /* owns the cl_context, queue and buffers */

static dcnv4_status make_context(const char *cache_dir, char *why,
                                 size_t why_size, dcnv4_context **ctx) {
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.cache_dir = cache_dir;
  o.error_buffer = why;
  o.error_buffer_size = why_size;
  why[0] = '\0';
  return dcnv4_context_create_from_cl(dcnv4_context_cl_context(base),
                                      dcnv4_context_device(base),
                                      dcnv4_context_queue(base), &o, ctx);
}

static dcnv4_status run(const fii_case *c, dcnv4_context *ctx) {
  dcnv4_status st = fii_case_run(c, ctx);
  return st == DCNV4_SUCCESS ? dcnv4_context_finish(ctx) : st;
}

/* Commands the driver accepts (CLBlast's SGEMM enqueues its kernels). */
static int is_enqueue(const char *site) {
  return site && (strncmp(site, "clEnqueue", 9) == 0 ||
                  strncmp(site, "CLBlast", 7) == 0);
}

static void sweep(fii_case *c, const char *dir) {
  char name[160];
  fii_case_name(c, name, sizeof name);
  long first_enqueue = 0, n = 1, hits = 0, tolerated = 0;
  for (;; n++) {
    fii_case_reset(c, base);
    char why[512];
    dcnv4_context *ctx = NULL;
    dcnv4_test_fault_set(n);
    dcnv4_status st = make_context(dir, why, sizeof why, &ctx);
    const int created = st == DCNV4_SUCCESS;
    if (created)
      st = run(c, ctx);
    const long seen = dcnv4_test_fault_count();
    const char *site = dcnv4_test_fault_site();
    dcnv4_test_fault_set(0);
    if (!site)
      site = "?";
    if (seen < n) {
      CHECK(st == DCNV4_SUCCESS, "%s: no fault at %ld, yet %s: %s", name, n,
            dcnv4_status_string(st), ctx ? dcnv4_context_last_error(ctx) : why);
      const double e = fii_case_error(c, base);
      CHECK(e <= TOL_FP32, "%s: fault-free run error %g", name, e);
      dcnv4_context_destroy(ctx);
      break;
    }
    hits++;
    if (is_enqueue(site) && first_enqueue == 0)
      first_enqueue = n;
    if (!created) {
      CHECK(ctx == NULL && why[0] != '\0',
            "%s: creation fault %ld at %s: a context, or no reason", name, n,
            site);
      CHECK(fii_case_untouched(c, base), "%s: creation fault %ld wrote", name,
            n);
    } else if (st != DCNV4_SUCCESS) {
      CHECK(dcnv4_context_last_error(ctx)[0] != '\0',
            "%s: fault %ld at %s: %s without a message", name, n, site,
            dcnv4_status_string(st));
      /* Any fault after the call's first command (CLBlast's GEMM before
       * the epilogue pass sets its arguments) meets accepted work. */
      const int late = (first_enqueue > 0 && n > first_enqueue) ||
                       strcmp(site, "clFinish") == 0;
      if (!late)
        CHECK(fii_case_untouched(c, base), "%s: fault %ld at %s (%s) wrote",
              name, n, site, dcnv4_context_last_error(ctx));
    } else {
      tolerated++;
      const double e = fii_case_error(c, base);
      CHECK(e <= TOL_FP32, "%s: tolerated fault %ld at %s, error %g", name, n,
            site, e);
    }
    if (!ctx)
      CHECK(make_context(dir, why, sizeof why, &ctx) == DCNV4_SUCCESS,
            "%s: context after fault %ld: %s", name, n, why);
    if (ctx) {
      fii_case_reset(c, base);
      const dcnv4_status again = run(c, ctx);
      CHECK(again == DCNV4_SUCCESS, "%s: after fault %ld at %s: %s", name, n,
            site, dcnv4_context_last_error(ctx));
      const double e = fii_case_error(c, base);
      CHECK(e <= TOL_FP32, "%s: after fault %ld at %s: error %g", name, n, site,
            e);
      dcnv4_context_destroy(ctx);
    }
  }
  printf("%-44s %3ld fault points, %3ld failed, %ld tolerated\n", name, n - 1,
         hits - tolerated, tolerated);
}

int main(void) {
  rng r = {test_seed(0xfa17)};
  base = test_context();
  char *dir = make_temp_dir("fii_faults");
  fii_case cases[10];
  memset(cases, 0, sizeof cases);
  cases[0].op = cases[1].op = FII_CONV2D;
  cases[0].conv = (dcn_conv2d_shape){1, 5, 4, 3, 6, 3, 2, 1, true};
  cases[0].with_bias = 1;
  cases[1].conv = (dcn_conv2d_shape){2, 3, 3, 5, 7, 3, 2, 1, false};
  for (int e = 0; e < 3; e++) {
    cases[2 + e].op = FII_LAYERNORM;
    cases[2 + e].ln = (dcn_layernorm_desc){5, 13, 1e-6f, (dcn_norm_epilogue)e};
    cases[2 + e].with_scale = 1;
    cases[2 + e].alias = e == 2;
  }
  cases[5].op = FII_RESIDUAL;
  cases[5].ln.rows = 4;
  cases[5].ln.channels = 9;
  cases[5].with_scale = 1;
  cases[6].op = FII_AVGPOOL;
  cases[6].batch = 2;
  cases[6].positions = 5;
  cases[6].ln.channels = 7;
  for (int e = 0; e < 3; e++) {
    cases[7 + e].op = FII_GEMM;
    cases[7 + e].epilogue = (dcn_gemm_epilogue_kind)e;
    cases[7 + e].m = 9;
    cases[7 + e].n = 6;
    cases[7 + e].k = 13; /* 2 parts where split (fii_faults_split) */
    cases[7 + e].with_bias = 1;
    cases[7 + e].with_scale = 1;
  }
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fii_case_setup(&cases[i], base, &r);
    /* A clean call first: the program binaries into the cache folder. */
    char why[512];
    dcnv4_context *ctx = NULL;
    CHECK(make_context(dir, why, sizeof why, &ctx) == DCNV4_SUCCESS,
          "context: %s", why);
    if (ctx) {
      CHECK(run(&cases[i], ctx) == DCNV4_SUCCESS, "clean call: %s",
            dcnv4_context_last_error(ctx));
      dcnv4_context_destroy(ctx);
    }
    sweep(&cases[i], dir);
    fii_case_free(&cases[i]);
  }
  remove_tree(dir);
  free(dir);
  dcnv4_context_destroy(base);
  return test_finish("fii_faults");
}
