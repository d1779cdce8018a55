/* dcnv4-run on `flash_intern_image` cases: the golden fii_* cases give the
 * expected logits and level features (relative L2 against upstream's model
 * in float64: fp32 1e-4, fp16 1e-2, bf16 5e-2; each figure is printed); a
 * case whose weights or meta do not fit the model exits with status 2, one
 * line on stderr and no file.
 *
 * usage: test_run_tool_fii DCNV4_RUN GOLDEN_DIR */
#include "npy.h"
#include "run_tool_util.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *tool, *golden;

static double compare_file(const char *out_dir, const char *case_dir,
                           const char *name, double tol) {
  char got_path[8400], want_path[8400], err[512];
  snprintf(got_path, sizeof got_path, "%s/%s.npy", out_dir, name);
  snprintf(want_path, sizeof want_path, "%s/%s.npy", case_dir, name);
  npy_array got, want;
  double e = INFINITY;
  if (npy_read(got_path, &got, err, sizeof err) != 0) {
    CHECK(0, "%s", err);
    return e;
  }
  if (npy_read(want_path, &want, err, sizeof err) != 0) {
    CHECK(0, "%s", err);
    npy_free(&got);
    return e;
  }
  CHECK(got.dtype == NPY_FLOAT32, "%s is not <f4", got_path);
  CHECK(npy_shape_equals(&got, want.ndim, want.shape), "%s: shape differs",
        got_path);
  if (got.count == want.count) {
    double *g = malloc(sizeof(double) * got.count);
    double *w = malloc(sizeof(double) * got.count);
    for (uint64_t i = 0; i < got.count; i++) {
      g[i] = npy_get(&got, i);
      w[i] = npy_get(&want, i);
    }
    e = rel_l2(g, w, (size_t)got.count);
    CHECK(e <= tol, "%s: error %.3g > %.0e", got_path, e, tol);
    free(g);
    free(w);
  }
  npy_free(&got);
  npy_free(&want);
  return e;
}

static void check_case(const char *name, double tol) {
  char case_dir[4096], args[16384], results[4096], err[512];
  snprintf(case_dir, sizeof case_dir, "%s/%s", golden, name);
  char *out = make_temp_dir("run-fii");
  snprintf(results, sizeof results, "%s/results", out);
  snprintf(args, sizeof args, "'%s' '%s'", case_dir, results);
  int rc = run_tool(tool, args, err, sizeof err, NULL);
  CHECK(rc == 0, "%s: exit %d: %s", name, rc, err);
  CHECK(count_entries(results) == 5, "%s: %d files", name,
        count_entries(results));
  static const char *const outputs[] = {"logits", "features_0", "features_1",
                                        "features_2", "features_3"};
  printf("%-12s", name);
  for (int i = 0; i < 5 && rc == 0; i++)
    printf(" %s %.2e", outputs[i],
           compare_file(results, case_dir, outputs[i], tol));
  printf("\n");
  remove_tree(out);
  free(out);
}

/* A copy of fii_t_tiny, spoiled, must be refused. */
static void expect_refused(const char *what, const char *file, const char *from,
                           const char *to) {
  char *work = make_temp_dir("run-fii-bad");
  char case_dir[4096], out_dir[4096], src[4096], args[16384], err[512];
  snprintf(case_dir, sizeof case_dir, "%s/case", work);
  snprintf(out_dir, sizeof out_dir, "%s/out", work);
  snprintf(src, sizeof src, "%s/fii_t_tiny", golden);
  copy_case(src, case_dir);
  if (from) {
    char path[4200], text[8192], spoilt[8192];
    snprintf(path, sizeof path, "%s/meta.json", case_dir);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
      fclose(f);
    text[n] = '\0';
    char *at = strstr(text, from);
    CHECK(at != NULL, "meta.json has no \"%s\"", from);
    if (at) {
      snprintf(spoilt, sizeof spoilt, "%.*s%s%s", (int)(at - text), text, to,
               at + strlen(from));
      write_text(case_dir, "meta.json", spoilt);
    }
  } else
    write_bytes(case_dir, file, "12345678", 8);
  snprintf(args, sizeof args, "'%s' '%s'", case_dir, out_dir);
  int lines = 0;
  int rc = run_tool(tool, args, err, sizeof err, &lines);
  CHECK(rc == 2, "%s: exit status %d, expected 2 (%s)", what, rc, err);
  CHECK(lines == 1, "%s: %d lines on stderr", what, lines);
  CHECK(count_entries(out_dir) == 0, "%s: files were written", what);
  if (getenv("TEST_VERBOSE"))
    printf("%-28s %s", what, err);
  remove_tree(work);
  free(work);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_run_tool_fii DCNV4_RUN GOLDEN_DIR\n");
    return 2;
  }
  tool = argv[1];
  golden = argv[2];
  check_case("fii_t_tiny", 1e-4);
  check_case("fii_s_odd", 1e-4);
  check_case("fii_l_fp16", 1e-2);
  /* A model the weights were not saved from: a key is missing or has
   * another shape. */
  expect_refused("other depths", NULL, "\"depths\": [\n   1,\n   1,\n   2",
                 "\"depths\": [\n   1,\n   1,\n   3");
  expect_refused("other channels", NULL, "\"channels\": 16",
                 "\"channels\": 32");
  expect_refused("post_norm", NULL, "\"post_norm\": false",
                 "\"post_norm\": true");
  expect_refused("unknown act_layer", NULL, "\"GELU\"", "\"ReLU\"");
  expect_refused("no layer_scale key", NULL, "\"layer_scale\": null,", "");
  expect_refused("corrupt weights", "weights.safetensors", NULL, NULL);
  expect_refused("corrupt image", "image.npy", NULL, NULL);
  return test_finish("test_run_tool_fii");
}
