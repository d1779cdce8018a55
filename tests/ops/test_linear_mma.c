/* The GEMM on 16-bit storage (linear_mma.cl, and linear.cl's 16-bit build
 * where the device has no tensor-core PTX, through dcn_gemm_prepare_spec
 * and dcn_gemm_linear_epilogue, src/layers/layer.h): fp16 and bf16 inputs,
 * fp32 or 16-bit output, every epilogue (none, GELU, residual with and
 * without a scale), with and without a bias, against the float64 product
 * of the same (rounded) inputs, on random sizes with the corners: 1 x 1 x
 * 1, M, N and K multiples of no tile, K a multiple of 8 (16-byte copies)
 * and not (value by value), N odd (no paired stores), N a multiple of 4
 * and not 8 (the staged epilogue's 16-byte rows in fp32 only), N at most
 * 64 (the narrow shape class). With a tuned small-launch tiling (tuning
 * `small`), exactly the cases with fewer tiles than `small` per compute unit
 * take it, and some do. Then a tuned tile the device
 * cannot run (falls back to the built-in one, counted), a small-launch
 * tiling that cannot run (left out: the class's tiling, not a fallback),
 * and bad specs and buffers (a status, a message, nothing written).
 *
 * On devices without tensor-core PTX this checks the portable fragments,
 * which compute what ldmatrix and mma.sync compute, fragment for fragment;
 * on NVIDIA devices of compute capability 8 or later, the PTX build (the
 * line "tensor cores: yes" says which ran). The default choice without the
 * PTX, linear.cl loading 16-bit values into fp32 tiles (split-K included),
 * runs three of the combinations (lines "linear.cl"). PoCL compiles each
 * program at its first launch: the combinations below cover each dtype,
 * output and epilogue with few programs.
 *
 * usage: test_linear_mma [--count N] [--all | --few]
 *   --all: every combination of dtype, output and epilogue (12 programs);
 *   --few: two (fp16 -> fp16 residual, bf16 -> fp32 GELU), for tile
 *          variants (DCNV4_TUNING)
 * Tolerance (DESIGN.md §1.4, relative L2 of each output against the
 * float64 reference): fp16 1e-3, bf16 8e-3, whether the output is 16-bit
 * (rounded once) or fp32. */
#include "fii_check.h"
#include "tuning/tuning.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct combo {
  dcnv4_dtype dtype, out;
  dcn_gemm_epilogue_kind epilogue;
} combo;

static const char *const epilogue_names[] = {"none", "gelu", "residual"};

/* `mma`: linear_mma.cl whatever the device; else the default choice. */
static void random_gemms(dcnv4_context *ctx, rng *r, const combo *c, int count,
                         bool mma) {
  static const int sizes_m[] = {1, 7, 33, 129, 300};
  static const int sizes_nk[] = {1, 3, 8, 16, 27, 40, 64, 72, 129};
  /* Which build runs (the cases prepare their own). */
  const dcn_gemm_spec spec = {c->dtype, c->out, c->epilogue, true, false, mma};
  dcn_gemm g;
  dcnv4_status st = dcn_gemm_prepare_spec(ctx, &spec, &g);
  CHECK(st == DCNV4_SUCCESS, "prepare %s -> %s%s: %s",
        dcnv4_dtype_name(c->dtype), dcnv4_dtype_name(c->out),
        epilogue_names[c->epilogue], dcnv4_context_last_error(ctx));
  if (st != DCNV4_SUCCESS)
    return;
  const double tol = tolerance_for(c->dtype);
  /* A tuned variant (DCNV4_TUNING) must run as given, not fall back. */
  const uint64_t fallbacks = dcnv4_context_tuning_fallbacks(ctx);
  /* A tuned split-K (ksplit >= 2) must have built its kernels, and split
   * some of the cases (checked after them). */
  dcn_linear_mma_tuning tuned[2];
  memset(tuned, 0, sizeof tuned);
  const bool tuned_row =
      g.mma && dcn_tuning_linear_mma(ctx, c->dtype, 0, tuned) > 0;
  const bool tuned_split = tuned_row && tuned[0].ksplit >= 2;
  /* A tuned small-launch tiling (small, smalltilem, ...) must have built,
   * run some of the cases, and carry the split where there is one. */
  const dcn_gemm_mma_class *wide = &g.mma_class[DCN_GEMM_MMA_WIDE];
  const bool tuned_small = tuned_row && tuned[0].small.below > 0;
  dcnv4_device_info dev;
  const long compute_units =
      dcnv4_context_device_info(ctx, &dev) == DCNV4_SUCCESS
          ? (long)dev.compute_units
          : 1;
  CHECK(!tuned_small ||
            (wide->small.kernel && wide->small_below == tuned[0].small.below),
        "small %d, yet no small-launch tiling", tuned[0].small.below);
  const dcn_gemm_mma *few = tuned_small ? &wide->small : &wide->tiling;
  CHECK(!tuned_split || (few->split.partial &&
                         !(tuned_small && wide->tiling.split.partial)),
        "ksplit %d, yet no split-K kernels on the few-tile tiling",
        tuned[0].ksplit);
  double worst = 0;
  int split = 0, small = 0;
  for (int i = 0; i < count + 4; i++) {
    fii_case fc;
    memset(&fc, 0, sizeof fc);
    fc.op = FII_GEMM;
    fc.dtype = c->dtype;
    fc.out_dtype = c->out;
    fc.epilogue = c->epilogue;
    fc.mma = mma;
    if (i == 0)
      fc.m = fc.n = fc.k = 1;
    else if (i == 1) { /* partial tiles everywhere, K by 16-byte copies */
      fc.m = 129;
      fc.n = 72;
      fc.k = 136;
    } else if (i == 2) { /* odd N, K value by value over several chunks */
      fc.m = 300;
      fc.n = 129;
      fc.k = 129;
    } else if (i == 3) { /* N a multiple of 4, not of 8 (the staged
                            epilogue: 16-byte fp32 rows, 16-bit values one
                            by one), a partial row tile */
      fc.m = 70;
      fc.n = 36;
      fc.k = 24;
    } else {
      fc.m =
          sizes_m[rng_int(r, 0, (int)(sizeof sizes_m / sizeof *sizes_m) - 1)];
      fc.n = sizes_nk[rng_int(r, 0,
                              (int)(sizeof sizes_nk / sizeof *sizes_nk) - 1)];
      fc.k = sizes_nk[rng_int(r, 0,
                              (int)(sizeof sizes_nk / sizeof *sizes_nk) - 1)];
    }
    fc.with_bias = rng_int(r, 0, 1);
    fc.with_scale = c->epilogue == DCN_GEMM_RESIDUAL && rng_int(r, 0, 1);
    const dcn_gemm_plan plan = dcn_gemm_plan_for(
        ctx, &g, (uint64_t)fc.m, (uint64_t)fc.n, (uint64_t)fc.k);
    split += plan.parts > 1;
    if (g.mma) {
      /* The small-launch rule: the class's tiles fewer than small_below
       * per compute unit. */
      const dcn_gemm_mma_class *cls =
          fc.n <= DCN_GEMM_NARROW_COLUMNS &&
                  g.mma_class[DCN_GEMM_MMA_NARROW].tiling.kernel
              ? &g.mma_class[DCN_GEMM_MMA_NARROW]
              : wide;
      const int tm = cls->tiling.tile_m, tn = cls->tiling.tile_n;
      const long tiles = (long)((fc.m + tm - 1) / tm) * ((fc.n + tn - 1) / tn);
      const bool want = cls->small.kernel &&
                        tiles < (long)cls->small_below * (long)compute_units;
      /* its kernel, or its split's partial sums */
      const bool took =
          cls->small.kernel && (plan.kernel == cls->small.kernel ||
                                plan.kernel == cls->small.split.partial);
      CHECK(took == want, "%dx%dx%d: %ld tiles of %dx%d, small %d: %s", fc.m,
            fc.n, fc.k, tiles, tm, tn, cls->small_below,
            took ? "took the small tiling" : "did not take the small tiling");
      small += took;
    }
    char name[160];
    fii_case_name(&fc, name, sizeof name);
    const double err = fii_check(&fc, ctx, r, &st);
    CHECK(err <= tol, "%s: rel L2 %.3g > %.0e (%s)", name, err, tol,
          st == DCNV4_SUCCESS ? "ran" : dcnv4_context_last_error(ctx));
    if (err > worst)
      worst = err;
  }
  CHECK(dcnv4_context_tuning_fallbacks(ctx) == fallbacks,
        "the tuned configuration fell back (DCNV4_LOG=info says why)");
  CHECK(!tuned_split || split > 0, "ksplit %d, yet no case split K",
        tuned[0].ksplit);
  CHECK(!tuned_small || small > 0,
        "small %d, yet no case on the small-launch tiling",
        tuned[0].small.below);
  printf("%-8s -> %-8s %-9s %s  worst rel L2 %.2e  split K: %d, small "
         "tiles: %d of %d\n",
         dcnv4_dtype_name(c->dtype), dcnv4_dtype_name(c->out),
         epilogue_names[c->epilogue],
         g.mma ? (g.ptx ? "tensor cores: yes" : "tensor cores: no")
               : "linear.cl        ",
         worst, split, small, count + 4);
}

/* A tuned tile that does not split into its warps falls back to the
 * built-in configuration, counted and still right; a small-launch tiling
 * that does not is left out, not counted. */
static void fallback(dcnv4_context *ctx, rng *r) {
  CHECK(dcnv4_context_set_tuning(ctx,
                                 "linear_mma.tilem=16;linear_mma.tilen="
                                 "16;linear_mma.local=256") == DCNV4_SUCCESS,
        "set_tuning");
  const uint64_t before = dcnv4_context_tuning_fallbacks(ctx);
  fii_case fc;
  memset(&fc, 0, sizeof fc);
  fc.op = FII_GEMM;
  fc.dtype = DCNV4_FLOAT16;
  fc.mma = 1;
  fc.m = 33;
  fc.n = 20;
  fc.k = 17;
  fc.with_bias = 1;
  dcnv4_status st;
  const double err = fii_check(&fc, ctx, r, &st);
  CHECK(err <= TOL_FP16, "fallback: rel L2 %.3g (%s)", err,
        st == DCNV4_SUCCESS ? "ran" : dcnv4_context_last_error(ctx));
  CHECK(dcnv4_context_tuning_fallbacks(ctx) > before,
        "an unusable tile was not counted as a fallback");

  /* A small-launch tiling that does not split into its warps is left out:
   * the class's tiling runs every GEMM, and nothing falls back. */
  CHECK(dcnv4_context_set_tuning(
            ctx, "linear_mma.small=1024;linear_mma.smalltilem=16;"
                 "linear_mma.smalltilen=16;linear_mma.smalllocal=256") ==
            DCNV4_SUCCESS,
        "set_tuning small");
  const uint64_t before_small = dcnv4_context_tuning_fallbacks(ctx);
  const dcn_gemm_spec spec = {DCNV4_FLOAT16, DCNV4_FLOAT32, DCN_GEMM_NONE,
                              true,          false,         true};
  dcn_gemm g;
  st = dcn_gemm_prepare_spec(ctx, &spec, &g);
  CHECK(st == DCNV4_SUCCESS && g.mma &&
            !g.mma_class[DCN_GEMM_MMA_WIDE].small.kernel &&
            dcn_gemm_plan_for(ctx, &g, 1, 100, 1).kernel ==
                g.mma_class[DCN_GEMM_MMA_WIDE].tiling.kernel,
        "an unusable small-launch tiling: %s",
        st == DCNV4_SUCCESS ? "built or taken" : dcnv4_context_last_error(ctx));
  const double err_small = fii_check(&fc, ctx, r, &st);
  CHECK(err_small <= TOL_FP16, "unusable small tiling: rel L2 %.3g (%s)",
        err_small, st == DCNV4_SUCCESS ? "ran" : dcnv4_context_last_error(ctx));
  CHECK(dcnv4_context_tuning_fallbacks(ctx) == before_small,
        "an unusable small-launch tiling was counted as a fallback");
  dcnv4_context_set_tuning(ctx, "");
}

/* A failed call: the status, a message. */
#define REJECTS(call, want, what)                                              \
  do {                                                                         \
    dcnv4_status got_ = (call);                                                \
    CHECK(got_ == (want), "%s: %s, expected %s", what,                         \
          dcnv4_status_string(got_), dcnv4_status_string(want));               \
    CHECK(dcnv4_context_last_error(ctx)[0] != '\0', "%s: no message", what);   \
  } while (0)

static void bad_arguments(dcnv4_context *ctx) {
  dcn_gemm g;
  const dcn_gemm_spec bad_specs[] = {
      {(dcnv4_dtype)7, DCNV4_FLOAT32, DCN_GEMM_NONE, false, false},
      {DCNV4_BFLOAT16, DCNV4_FLOAT16, DCN_GEMM_NONE, false, false},
      {DCNV4_FLOAT32, DCNV4_FLOAT16, DCN_GEMM_NONE, false, false},
      {DCNV4_FLOAT16, DCNV4_FLOAT16, (dcn_gemm_epilogue_kind)5, false, false},
  };
  const char *const what[] = {"unknown dtype", "bf16 -> fp16", "fp32 -> fp16",
                              "unknown epilogue"};
  for (size_t i = 0; i < sizeof bad_specs / sizeof *bad_specs; i++)
    REJECTS(dcn_gemm_prepare_spec(ctx, &bad_specs[i], &g),
            DCNV4_ERROR_INVALID_PARAMETER, what[i]);
  REJECTS(dcnv4_context_set_tuning(ctx, "linear_mma.stages=7"),
          DCNV4_ERROR_INVALID_PARAMETER, "stages 7");
  REJECTS(dcnv4_context_set_tuning(ctx, "linear_mma.vec=4"),
          DCNV4_ERROR_INVALID_PARAMETER, "linear_mma.vec");
  REJECTS(dcnv4_context_set_tuning(ctx, "linear_mma.swizzle=2"),
          DCNV4_ERROR_INVALID_PARAMETER, "swizzle 2");
  REJECTS(dcnv4_context_set_tuning(ctx, "linear_mma.raster=65"),
          DCNV4_ERROR_INVALID_PARAMETER, "raster 65");
  /* A residual of fp16 values sized as 6 x 4 (the GEMM is 6 x 5), and the
   * residual aliasing an operand: nothing is written. */
  const dcn_gemm_spec spec = {DCNV4_FLOAT16, DCNV4_FLOAT16, DCN_GEMM_RESIDUAL,
                              true, false};
  if (dcn_gemm_prepare_spec(ctx, &spec, &g) != DCNV4_SUCCESS) {
    CHECK(0, "prepare residual: %s", dcnv4_context_last_error(ctx));
    return;
  }
  float ones[30];
  for (int i = 0; i < 30; i++)
    ones[i] = 1.0f;
  cl_mem a = upload_values(ctx, ones, 24, DCNV4_FLOAT16),
         b = upload_values(ctx, ones, 20, DCNV4_FLOAT16),
         small = upload_values(ctx, ones, 24, DCNV4_FLOAT16);
  dcn_gemm_epilogue e = {DCN_GEMM_RESIDUAL, small, NULL};
  REJECTS(dcn_gemm_linear_epilogue(ctx, &g, 6, 5, 4, a, b, NULL, NULL, &e, NULL,
                                   "test"),
          DCNV4_ERROR_BUFFER_TOO_SMALL, "residual too small");
  e.residual = a;
  REJECTS(dcn_gemm_linear_epilogue(ctx, &g, 6, 4, 4, a, b, NULL, NULL, &e, NULL,
                                   "test"),
          DCNV4_ERROR_INVALID_BUFFER, "residual aliasing a");
  dcnv4_context_finish(ctx);
  double *v = download_values(ctx, small, 24, DCNV4_FLOAT16);
  int same = 1;
  for (int i = 0; i < 24; i++)
    same &= v[i] == 1.0;
  CHECK(same, "a rejected call wrote its residual");
  free(v);
  clReleaseMemObject(a);
  clReleaseMemObject(b);
  clReleaseMemObject(small);
}

int main(int argc, char **argv) {
  int count = 6;
  bool all = false, few = false;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--all"))
      all = true;
    else if (!strcmp(argv[i], "--few"))
      few = true;
  rng r = {test_seed(0x3ac16)};
  dcnv4_context *ctx = test_context();
  const dcnv4_dtype f16 = DCNV4_FLOAT16, b16 = DCNV4_BFLOAT16,
                    f32 = DCNV4_FLOAT32;
  /* Each dtype with each output and each epilogue, in six programs. */
  const combo six[] = {
      {f16, f32, DCN_GEMM_NONE},     {f16, f16, DCN_GEMM_GELU},
      {f16, f16, DCN_GEMM_RESIDUAL}, {b16, b16, DCN_GEMM_NONE},
      {b16, f32, DCN_GEMM_GELU},     {b16, f32, DCN_GEMM_RESIDUAL},
  };
  if (all) {
    for (int d = 0; d < 2; d++)
      for (int o = 0; o < 2; o++)
        for (int e = 0; e < 3; e++) {
          const dcnv4_dtype dt = d ? b16 : f16;
          const combo c = {dt, o ? dt : f32, (dcn_gemm_epilogue_kind)e};
          random_gemms(ctx, &r, &c, count, true);
        }
  } else {
    for (size_t i = 0; i < sizeof six / sizeof *six; i++)
      if (!few || i == 2 || i == 4)
        random_gemms(ctx, &r, &six[i], count, true);
  }
  /* The default choice (linear.cl where there is no PTX): both dtypes,
   * both outputs, every epilogue. */
  if (!few)
    for (size_t i = 2; i < 5; i++)
      random_gemms(ctx, &r, &six[i], count, false);
  fallback(ctx, &r);
  bad_arguments(ctx);
  dcnv4_context_destroy(ctx);
  return test_finish("linear_mma");
}
