/* dcnv4-tune's search of linear_mma (tools/tune_mma.c), called directly on
 * one GEMM of each shape class (more than 64 columns; at most 64) with a
 * near deadline: it must time a tiling and a small-launch rule of each
 * class, reject none of the ones the device runs for a wrong result, store only
 * values that beat the built-in row, and leave the context's override empty. */
#include "tune_mma.h"

#include "test_util.h"

#include <string.h>
#include <time.h>

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
  /* The search times with profiling events, as dcnv4-tune's context. */
  dcnv4_context *ctx = test_profiling_context();
  /* Odd sizes: edges in every direction. */
  static const size_t shapes[2][3] = {{97, 72, 40}, {65, 40, 24}};
  mma_result res;
  /* A deadline already near: the search still times one candidate per
   * class (the rest is cut short). */
  /* Small tilings (PoCL builds the built-in list's 128x128 tiles of 8
   * warps for about a minute each): 2 warps of 16x32 padded, and swizzled
   * through a ring of 3. */
  static const int tilings[2][MMA_TILING] = {{64, 32, 32, 16, 2, 0},
                                             {64, 32, 32, 32, 3, 1}};
  /* And one small-launch rule every GEMM takes: 16x32 tiles of one warp. */
  static const int smalls[1][MMA_SMALL_RULE] = {{1024, 16, 32, 32}};
  mma_search_tilings(ctx, DCNV4_FLOAT16, shapes, 2, 2, now_seconds() + 5,
                     now_seconds, 0, tilings, 2, smalls, 1, &res);
  CHECK(res.ran && !res.error, "the search did not run (error %d)", res.error);
  for (int c = 0; c < 2; c++) {
    const mma_class_result *r = &res.cls[c];
    CHECK(r->group_channels == (c ? 64 : 0), "class %d keyed %d", c,
          r->group_channels);
    CHECK(r->shapes == 1, "class %d timed %d shapes, expected 1", c, r->shapes);
    CHECK(r->default_ms_total > 0, "class %d: no baseline time", c);
    if (r->found)
      CHECK(r->ms_total > 0 && r->ms_total < r->default_ms_total &&
                r->values[MMA_LOCAL] % 32 == 0 && r->values[MMA_TILE_M] >= 16,
            "class %d stored %.3f ms against %.3f (local %d, tilem %d)", c,
            r->ms_total, r->default_ms_total, r->values[MMA_LOCAL],
            r->values[MMA_TILE_M]);
  }
  for (int c = 0; c < 2; c++) {
    /* a tiling and a small-launch rule, whatever the time */
    CHECK(res.cls[c].tried >= 2, "class %d: %d candidates timed", c,
          res.cls[c].tried);
    CHECK(res.cls[c].rejected == 0, "class %d: %d of %d candidates rejected", c,
          res.cls[c].rejected, res.cls[c].tried);
  }
  char text[256] = "";
  dcnv4_tuning_source src = DCNV4_TUNING_OVERRIDE;
  CHECK(dcnv4_context_get_tuning(ctx, "linear_mma", DCNV4_FLOAT16, 0, text,
                                 sizeof text, &src) == DCNV4_SUCCESS &&
            src != DCNV4_TUNING_OVERRIDE,
        "the search left an override (%s)", text);
  dcnv4_context_destroy(ctx);
  return test_finish("tune_mma");
}
