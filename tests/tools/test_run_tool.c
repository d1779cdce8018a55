/* dcnv4-run on `dcnv4` cases: golden cases give the expected arrays (fp32
 * 1e-5, fp16 1e-3, bf16 8e-3 relative L2); every kind of bad input exits
 * with status 2, prints one line on stderr and writes no file.
 *
 * usage: test_run_tool DCNV4_RUN GOLDEN_DIR */
#include "npy.h"
#include "run_tool_util.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tool, *golden;

static void compare_file(const char *out_dir, const char *case_dir,
                         const char *name, double tol) {
  char got_path[4096], want_path[4096], err[512];
  snprintf(got_path, sizeof got_path, "%s/%s.npy", out_dir, name);
  snprintf(want_path, sizeof want_path, "%s/%s.npy", case_dir, name);
  npy_array got, want;
  if (npy_read(got_path, &got, err, sizeof err) != 0) {
    CHECK(0, "%s", err);
    return;
  }
  if (npy_read(want_path, &want, err, sizeof err) != 0) {
    CHECK(0, "%s", err);
    npy_free(&got);
    return;
  }
  CHECK(got.dtype == NPY_FLOAT32, "%s is %s, not <f4", got_path,
        npy_dtype_descr(got.dtype));
  CHECK(npy_shape_equals(&got, want.ndim, want.shape), "%s: shape differs",
        got_path);
  if (got.count == want.count) {
    double *g = malloc(sizeof(double) * got.count);
    double *w = malloc(sizeof(double) * got.count);
    for (uint64_t i = 0; i < got.count; i++) {
      g[i] = npy_get(&got, i);
      w[i] = npy_get(&want, i);
    }
    double e = rel_l2(g, w, (size_t)got.count);
    CHECK(e <= tol, "%s: error %.3g > %.0e", got_path, e, tol);
    free(g);
    free(w);
  }
  npy_free(&got);
  npy_free(&want);
}

static void check_good_case(const char *name, double tol) {
  char case_dir[4096], args[16384];
  snprintf(case_dir, sizeof case_dir, "%s/%s", golden, name);
  char *out = make_temp_dir("run-out");
  char err[512];
  snprintf(args, sizeof args, "'%s' '%s/results'", case_dir, out);
  char results[4096];
  snprintf(results, sizeof results, "%s/results", out);
  int rc = run_tool(tool, args, err, sizeof err, NULL);
  CHECK(rc == 0, "%s: exit %d: %s", name, rc, err);
  compare_file(results, case_dir, "output", tol);
  compare_file(results, case_dir, "grad_input", tol);
  compare_file(results, case_dir, "grad_offset_mask", tol);
  /* --forward-only writes just output.npy */
  remove_tree(results);
  snprintf(args, sizeof args, "--forward-only '%s' '%s'", case_dir, results);
  rc = run_tool(tool, args, err, sizeof err, NULL);
  CHECK(rc == 0 && count_entries(results) == 1,
        "%s --forward-only: exit %d, %d files", name, rc,
        count_entries(results));
  compare_file(results, case_dir, "output", tol);
  remove_tree(out);
  free(out);
}

/* A copy of the `basic` case, spoiled by `spoil`, must be refused. */
typedef void (*spoil_fn)(const char *dir);

static void expect_refused(const char *what, spoil_fn spoil,
                           const char *extra_args) {
  char *work = make_temp_dir("run-bad");
  char case_dir[4096], out_dir[4096], src[4096], args[16384], err[512];
  snprintf(case_dir, sizeof case_dir, "%s/case", work);
  snprintf(out_dir, sizeof out_dir, "%s/out", work);
  snprintf(src, sizeof src, "%s/basic", golden);
  copy_case(src, case_dir);
  if (spoil)
    spoil(case_dir);
  snprintf(args, sizeof args, "'%s' '%s' %s", case_dir, out_dir,
           extra_args ? extra_args : "");
  int lines = 0;
  int rc = run_tool(tool, args, err, sizeof err, &lines);
  CHECK(rc == 2, "%s: exit status %d, expected 2 (%s)", what, rc, err);
  CHECK(lines == 1, "%s: %d lines on stderr", what, lines);
  CHECK(count_entries(out_dir) == 0, "%s: files were written", what);
  if (getenv("TEST_VERBOSE"))
    printf("%-34s %s", what, err);
  remove_tree(work);
  free(work);
}

static void set_meta(const char *dir, const char *from, const char *to) {
  char path[4096];
  snprintf(path, sizeof path, "%s/meta.json", dir);
  FILE *f = fopen(path, "rb");
  char text[8192];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char *at = strstr(text, from);
  if (!at) {
    CHECK(0, "meta.json has no \"%s\"", from);
    return;
  }
  char out[8192];
  snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to,
           at + strlen(from));
  write_text(dir, "meta.json", out);
}

#define SPOIL_META(name, from, to)                                             \
  static void name(const char *d) { set_meta(d, from, to); }
SPOIL_META(unknown_op, "\"op\": \"dcnv4\"", "\"op\": \"conv9\"")
SPOIL_META(unknown_dtype, "\"dtype\": \"float32\"", "\"dtype\": \"float8\"")
SPOIL_META(negative_group, "\"group\": 2", "\"group\": -2")
SPOIL_META(fraction, "\"group\": 2", "\"group\": 2.5")
SPOIL_META(string_number, "\"group\": 2", "\"group\": \"2\"")
SPOIL_META(wrong_h_out, "\"H_out\": 9", "\"H_out\": 8")
SPOIL_META(short_stride, "\"offset_mask_channels\": 56",
           "\"offset_mask_channels\": 53")
SPOIL_META(no_group, "\"group\": 2,", "")
SPOIL_META(zero_stride, "\"stride_h\": 1", "\"stride_h\": 0")
SPOIL_META(bad_flag, "\"softmax\": 0", "\"softmax\": 3")
SPOIL_META(huge, "\"N\": 2", "\"N\": 1e30")
SPOIL_META(trailing, "\"dtype\": \"float32\"\n}",
           "\"dtype\": \"float32\"\n} {}")
static void no_meta(const char *d) {
  char p[4096];
  snprintf(p, sizeof p, "%s/meta.json", d);
  remove(p);
}
static void not_json(const char *d) { write_text(d, "meta.json", "{\"op\": "); }
static void json_array(const char *d) { write_text(d, "meta.json", "[1, 2]"); }
static void no_input(const char *d) {
  char p[4096];
  snprintf(p, sizeof p, "%s/input.npy", d);
  remove(p);
}
static void no_grad_output(const char *d) {
  char p[4096];
  snprintf(p, sizeof p, "%s/grad_output.npy", d);
  remove(p);
}
static void truncated_npy(const char *d) {
  char p[4096];
  snprintf(p, sizeof p, "%s/offset_mask.npy", d);
  FILE *f = fopen(p, "r+b");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  CHECK(truncate(p, n - 4) == 0, "truncate");
}
/* A valid prefix whose header is cut short. */
static void garbage_npy(const char *d) {
  static const char bytes[] = "\x93NUMPY\x01\x00\x40\x00{'descr': '<f4'";
  write_bytes(d, "input.npy", bytes, sizeof bytes - 1);
}
static void wrong_shape_npy(const char *d) {
  float v[4] = {0};
  int64_t shape[2] = {2, 2};
  char err[256], p[4096];
  snprintf(p, sizeof p, "%s/input.npy", d);
  npy_write(p, NPY_FLOAT32, v, 2, shape, err, sizeof err);
}
static void int_npy(const char *d) {
  int32_t v[2 * 9 * 9 * 32] = {0};
  int64_t shape[4] = {2, 9, 9, 32};
  char err[256], p[4096];
  snprintf(p, sizeof p, "%s/input.npy", d);
  npy_write(p, NPY_INT32, v, 4, shape, err, sizeof err);
}
static void fortran_npy(const char *d) {
  static const char bytes[] =
      "\x93NUMPY\x01\x00\x3d\x00{'descr': '<f4', 'fortran_order': True, "
      "'shape': (1,), }    \n\x00\x00\x00\x00";
  write_bytes(d, "input.npy", bytes, sizeof bytes - 1);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_run_tool DCNV4_RUN GOLDEN_DIR\n");
    return 2;
  }
  tool = argv[1];
  golden = argv[2];
  check_good_case("basic", TOL_FP32);
  check_good_case("kernel7x7_rc", TOL_FP32);
  check_good_case("fp16", TOL_FP16);
  check_good_case("bf16", TOL_BF16);

  const struct {
    const char *what;
    spoil_fn spoil;
    const char *args;
  } bad[] = {
      {"missing meta.json", no_meta, NULL},
      {"meta.json not JSON", not_json, NULL},
      {"meta.json an array", json_array, NULL},
      {"trailing JSON", trailing, NULL},
      {"unknown op", unknown_op, NULL},
      {"unknown dtype", unknown_dtype, NULL},
      {"negative group", negative_group, NULL},
      {"fractional group", fraction, NULL},
      {"group as a string", string_number, NULL},
      {"missing group", no_group, NULL},
      {"stride 0", zero_stride, NULL},
      {"softmax 3", bad_flag, NULL},
      {"N 1e30", huge, NULL},
      {"H_out disagrees", wrong_h_out, NULL},
      {"offset_mask_channels too small", short_stride, NULL},
      {"missing input.npy", no_input, NULL},
      {"missing grad_output.npy", no_grad_output, NULL},
      {"truncated offset_mask.npy", truncated_npy, NULL},
      {"garbage input.npy", garbage_npy, NULL},
      {"input.npy of another shape", wrong_shape_npy, NULL},
      {"input.npy of int32", int_npy, NULL},
      {"fortran-order input.npy", fortran_npy, NULL},
      {"unknown option", NULL, "--fast"},
      {"too many arguments", NULL, "extra"},
      {"--device without value at end", NULL, "--device"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_refused(bad[i].what, bad[i].spoil, bad[i].args);

  /* Usage errors without a case folder at all. */
  int lines;
  CHECK(run_tool(tool, "", NULL, 0, &lines) == 2 && lines == 1,
        "no arguments: not exit 2 with one line");
  /* OUT_DIR that is a file. */
  char *work = make_temp_dir("run-file");
  write_text(work, "afile", "x");
  char args[8192];
  snprintf(args, sizeof args, "'%s/basic' '%s/afile'", golden, work);
  CHECK(run_tool(tool, args, NULL, 0, &lines) == 2 && lines == 1,
        "OUT_DIR a file: not exit 2");
  /* A device that does not exist: a failure (1), not bad input, no file. */
  snprintf(args, sizeof args, "'%s/basic' '%s/out' --device nonexistent",
           golden, work);
  char out[4096];
  snprintf(out, sizeof out, "%s/out", work);
  CHECK(run_tool(tool, args, NULL, 0, &lines) == 1 && count_entries(out) == 0,
        "unknown device: not exit 1 or files written");
  remove_tree(work);
  free(work);
  return test_finish("test_run_tool");
}
