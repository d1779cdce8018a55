/* dcnv4-run on flash_deform_attn and flash_deform_attn_layer case folders:
 * the golden cases give their expected outputs (DESIGN.md §1.4
 * tolerances); malformed cases exit with status 2, one line on stderr, and
 * write nothing.
 *
 * usage: test_run_tool_fda DCNV4_RUN GOLDEN_DIR */
#include "case_meta.h"
#include "layer_case.h"
#include "test_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *tool;

/* Runs the tool; returns its exit status (-1 if it did not exit) and the
 * number of lines it wrote on stderr. */
static int run(const char *args, int *stderr_lines, char *first, size_t n) {
  char *tmp = make_temp_dir("fda-stderr");
  char cmd[8192], path[4096], line[1024];
  snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s/err'", tool, args, tmp);
  int rc = system(cmd);
  snprintf(path, sizeof path, "%s/err", tmp);
  FILE *f = fopen(path, "r");
  *stderr_lines = 0;
  first[0] = '\0';
  while (f && fgets(line, sizeof line, f))
    if ((*stderr_lines)++ == 0)
      snprintf(first, n, "%s", line);
  if (f)
    fclose(f);
  remove_tree(tmp);
  free(tmp);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  if (d)
    closedir(d);
  return n;
}

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  char buf[65536];
  size_t n;
  while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  if (in)
    fclose(in);
  if (out)
    fclose(out);
}

/* Copies the golden case's input files into dst (a new folder). */
static void copy_inputs(const char *src, const char *dst) {
  static const char *const files[] = {"value.npy", "sampling_loc_attn.npy",
                                      "grad_output.npy", "meta.json"};
  mkdir(dst, 0755);
  for (size_t i = 0; i < 4; i++) {
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", src, files[i]);
    snprintf(to, sizeof to, "%s/%s", dst, files[i]);
    copy_file(from, to);
  }
}

/* Runs a golden case and compares every output written. */
static void check_golden(const char *golden, const char *name,
                         int forward_only) {
  char dir[4096], args[12288], first[1024];
  snprintf(dir, sizeof dir, "%s/%s", golden, name);
  char *out = make_temp_dir("fda-out");
  snprintf(args, sizeof args, "'%s' '%s'%s", dir, out,
           forward_only ? " --forward-only" : "");
  int lines = 0;
  int rc = run(args, &lines, first, sizeof first);
  CHECK(rc == 0, "%s: exit status %d (%s)", name, rc, first);
  cJSON *meta = NULL;
  case_error e;
  fda_case c;
  if (meta_load(dir, &meta, &e) || fda_case_read(meta, &c, &e)) {
    CHECK(0, "%s: %s", name, e.text);
    cJSON_Delete(meta);
    remove_tree(out);
    free(out);
    return;
  }
  struct {
    const char *file;
    int ndim;
    const int64_t *shape;
    uint64_t n;
  } outputs[] = {
      {"output", 3, c.output_shape, c.shape.output_elements},
      {"grad_value", 4, c.value_shape, c.shape.value_elements},
      {"grad_sampling_loc_attn", 4, c.sampling_shape,
       c.shape.sampling_elements},
  };
  int expected_files = forward_only ? 1 : 3;
  CHECK(count_entries(out) == expected_files, "%s: %d files written, not %d",
        name, count_entries(out), expected_files);
  for (int i = 0; i < expected_files && rc == 0; i++) {
    double *got = NULL, *want = NULL;
    if (case_load_expected(out, outputs[i].file, outputs[i].ndim,
                           outputs[i].shape, &got, &e) ||
        case_load_expected(dir, outputs[i].file, outputs[i].ndim,
                           outputs[i].shape, &want, &e))
      CHECK(0, "%s: %s", name, e.text);
    else {
      double err = rel_l2(got, want, (size_t)outputs[i].n);
      double tol = tolerance_for(c.params.dtype);
      printf("  %-16s %-24s rel err %.2e (tol %.0e)\n", name, outputs[i].file,
             err, tol);
      CHECK(err <= tol, "%s: %s error %.3g > %.0e", name, outputs[i].file, err,
            tol);
    }
    free(got);
    free(want);
  }
  cJSON_Delete(meta);
  remove_tree(out);
  free(out);
}

typedef struct bad_case {
  const char *what;
  const char *key;   /* meta.json key to replace (NULL: none) */
  const char *value; /* its new JSON value (NULL: remove the key) */
  const char *file;  /* a file to damage instead (NULL: none) */
} bad_case;

static const bad_case bad_cases[] = {
    {"spatial_shapes not an array", "spatial_shapes", "8", NULL},
    {"spatial_shapes flat", "spatial_shapes", "[8, 8, 4, 4]", NULL},
    {"spatial_shapes one pair short", "spatial_shapes", "[[8, 8]]", NULL},
    {"spatial_shapes one pair too many", "spatial_shapes",
     "[[8, 8], [4, 4], [2, 2]]", NULL},
    {"spatial_shapes triple", "spatial_shapes", "[[8, 8, 1], [4, 4]]", NULL},
    {"spatial_shapes fraction", "spatial_shapes", "[[8, 8.5], [4, 4]]", NULL},
    {"spatial_shapes string", "spatial_shapes", "[[8, \"8\"], [4, 4]]", NULL},
    {"spatial_shapes zero", "spatial_shapes", "[[8, 8], [0, 4]]", NULL},
    {"spatial_shapes negative", "spatial_shapes", "[[8, -8], [4, 4]]", NULL},
    {"spatial_shapes huge", "spatial_shapes", "[[8, 8], [4, 1e12]]", NULL},
    {"spatial_shapes null", "spatial_shapes", "null", NULL},
    {"spatial_shapes missing", "spatial_shapes", NULL, NULL},
    {"level_start_index one short", "level_start_index", "[0]", NULL},
    {"level_start_index not an array", "level_start_index", "{\"a\": 0}", NULL},
    {"level_start_index overlapping", "level_start_index", "[0, 63]", NULL},
    {"level_start_index beyond value_len", "level_start_index", "[0, 65]",
     NULL},
    {"level_start_index negative", "level_start_index", "[-1, 64]", NULL},
    {"value_len too small", "value_len", "79", NULL},
    {"value_len disagrees with value.npy", "value_len", "81", NULL},
    {"levels 0", "levels", "0", NULL},
    {"levels 17", "levels", "17", NULL},
    {"levels disagrees with the tables", "levels", "1", NULL},
    {"points disagrees with the arrays", "points", "3", NULL},
    {"points missing", "points", NULL, NULL},
    {"B disagrees with the arrays", "B", "3", NULL},
    {"group_channels 0", "group_channels", "0", NULL},
    {"unknown dtype", "dtype", "\"float64\"", NULL},
    {"value.npy truncated", NULL, NULL, "value.npy"},
    {"sampling_loc_attn.npy truncated", NULL, NULL, "sampling_loc_attn.npy"},
    {"grad_output.npy missing", NULL, NULL, "grad_output.npy"},
};

static void check_bad(const char *golden, const bad_case *b) {
  char src[2048], args[8192], first[1024], path[4096];
  snprintf(src, sizeof src, "%s/fda_basic", golden);
  char *root = make_temp_dir("fda-bad");
  char dir[2048], out[2048];
  snprintf(dir, sizeof dir, "%s/case", root);
  snprintf(out, sizeof out, "%s/out", root);
  copy_inputs(src, dir);
  if (b->key) {
    cJSON *meta = NULL;
    case_error e;
    if (meta_load(dir, &meta, &e) != 0) {
      CHECK(0, "%s", e.text);
      return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(meta, b->key);
    if (b->value)
      cJSON_AddItemToObject(meta, b->key, cJSON_Parse(b->value));
    char *text = cJSON_Print(meta);
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    cJSON_Delete(meta);
  }
  if (b->file) {
    snprintf(path, sizeof path, "%s/%s", dir, b->file);
    if (!strcmp(b->file, "grad_output.npy"))
      remove(path);
    else
      CHECK(truncate(path, 200) == 0, "cannot truncate %s", path);
  }
  int lines = 0;
  snprintf(args, sizeof args, "'%s' '%s'", dir, out);
  int rc = run(args, &lines, first, sizeof first);
  CHECK(rc == 2, "%s: exit status %d, expected 2 (%s)", b->what, rc, first);
  CHECK(lines == 1, "%s: %d lines on stderr, expected 1", b->what, lines);
  CHECK(count_entries(out) == 0, "%s: %d files written", b->what,
        count_entries(out));
  if (getenv("TEST_VERBOSE"))
    printf("%-38s -> %d: %s", b->what, rc, first);
  remove_tree(root);
  free(root);
}

/* ------------------------------------------------------------ layer */

/* Copies the regular files of src into dst (created), and of src/weights
 * into dst/weights. */
static void copy_layer_case(const char *src, const char *dst) {
  const char *sub[] = {"", "/weights"};
  for (int k = 0; k < 2; k++) {
    char from_dir[4096], to_dir[4096];
    snprintf(from_dir, sizeof from_dir, "%s%s", src, sub[k]);
    snprintf(to_dir, sizeof to_dir, "%s%s", dst, sub[k]);
    mkdir(to_dir, 0755);
    DIR *d = opendir(from_dir);
    struct dirent *ent;
    while (d && (ent = readdir(d))) {
      char from[8300], to[8300];
      snprintf(from, sizeof from, "%s/%s", from_dir, ent->d_name);
      snprintf(to, sizeof to, "%s/%s", to_dir, ent->d_name);
      struct stat info;
      if (stat(from, &info) == 0 && S_ISREG(info.st_mode))
        copy_file(from, to);
    }
    if (d)
      closedir(d);
  }
}

static void check_layer_golden(const char *golden, const char *name) {
  char dir[4096], args[12288], first[1024];
  snprintf(dir, sizeof dir, "%s/%s", golden, name);
  char *out = make_temp_dir("fda-layer-out");
  snprintf(args, sizeof args, "'%s' '%s'", dir, out);
  int lines = 0;
  int rc = run(args, &lines, first, sizeof first);
  CHECK(rc == 0, "%s: exit status %d (%s)", name, rc, first);
  cJSON *meta = NULL;
  case_error e;
  fda_layer_case c;
  double *got = NULL, *want = NULL;
  if (meta_load(dir, &meta, &e) || fda_layer_case_read(meta, &c, &e))
    CHECK(0, "%s: %s", name, e.text);
  else {
    CHECK(count_entries(out) == 1, "%s: %d files written, not 1", name,
          count_entries(out));
    if (rc == 0 &&
        (case_load_expected(out, "output", 3, c.query_shape, &got, &e) ||
         case_load_expected(dir, "output", 3, c.query_shape, &want, &e)))
      CHECK(0, "%s: %s", name, e.text);
    else if (rc == 0) {
      double err = rel_l2(got, want, (size_t)c.query_elements);
      double tol = tolerance_for(c.dtype);
      printf("  %-18s %-24s rel err %.2e (tol %.0e)\n", name, "output", err,
             tol);
      CHECK(err <= tol, "%s: output error %.3g > %.0e", name, err, tol);
    }
  }
  free(got);
  free(want);
  cJSON_Delete(meta);
  remove_tree(out);
  free(out);
}

typedef struct bad_layer_case {
  const char *what;
  const char *key;   /* meta.json key to replace (NULL: none) */
  const char *value; /* its new JSON value (NULL: remove the key) */
  const char *file;  /* a file to damage (NULL: none) */
  int action;        /* on `file`: 0 remove, 1 truncate, 2 replace by
                        `value` (another file of the case) */
} bad_layer_case;

static const bad_layer_case bad_layer_cases[] = {
    {"reference_dim 3", "reference_dim", "3", NULL, 0},
    {"reference_dim 2 with boxes", "reference_dim", "2", NULL, 0},
    {"levels overlap", "level_start_index", "[0, 100, 150]", NULL, 0},
    {"level beyond input_len", "level_start_index", "[0, 120, 151]", NULL, 0},
    {"input_len too short", "input_len", "158", NULL, 0},
    {"spatial_shapes zero", "spatial_shapes", "[[10, 12], [0, 6], [3, 3]]",
     NULL, 0},
    {"spatial_shapes one pair short", "spatial_shapes", "[[10, 12], [5, 6]]",
     NULL, 0},
    {"n_levels 17", "n_levels", "17", NULL, 0},
    {"n_heads does not divide d_model", "n_heads", "6", NULL, 0},
    {"n_points disagrees with the weights", "n_points", "3", NULL, 0},
    {"d_model disagrees with the arrays", "d_model", "32", NULL, 0},
    {"padding_mask 2", "padding_mask", "2", NULL, 0},
    {"unknown dtype", "dtype", "\"float64\"", NULL, 0},
    {"padding_mask.npy missing", NULL, NULL, "padding_mask.npy", 0},
    {"padding_mask.npy not bytes", NULL, "query.npy", "padding_mask.npy", 2},
    {"reference_points.npy truncated", NULL, NULL, "reference_points.npy", 1},
    {"query.npy missing", NULL, NULL, "query.npy", 0},
    {"weight missing", NULL, NULL, "weights/value_proj.bias.npy", 0},
    {"weight misshaped", NULL, "weights/attention_weights.weight.npy",
     "weights/sampling_offsets.weight.npy", 2},
    {"stray weight file", NULL, "weights/value_proj.bias.npy",
     "weights/value_proj.bias2.npy", 2},
};

static void check_layer_bad(const char *golden, const bad_layer_case *b) {
  char src[2048], args[8192], first[1024], path[4096];
  snprintf(src, sizeof src, "%s/fda_layer_4d_mask", golden);
  char *root = make_temp_dir("fda-layer-bad");
  char dir[2048], out[2048];
  snprintf(dir, sizeof dir, "%s/case", root);
  snprintf(out, sizeof out, "%s/out", root);
  copy_layer_case(src, dir);
  if (b->key) {
    cJSON *meta = NULL;
    case_error e;
    if (meta_load(dir, &meta, &e) != 0) {
      CHECK(0, "%s", e.text);
      return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(meta, b->key);
    if (b->value)
      cJSON_AddItemToObject(meta, b->key, cJSON_Parse(b->value));
    char *text = cJSON_Print(meta);
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    cJSON_Delete(meta);
  }
  if (b->file) {
    snprintf(path, sizeof path, "%s/%s", dir, b->file);
    if (b->action == 0)
      CHECK(remove(path) == 0, "cannot remove %s", path);
    else if (b->action == 1)
      CHECK(truncate(path, 100) == 0, "cannot truncate %s", path);
    else {
      char from[4096];
      snprintf(from, sizeof from, "%s/%s", dir, b->value);
      copy_file(from, path);
    }
  }
  int lines = 0;
  snprintf(args, sizeof args, "'%s' '%s'", dir, out);
  int rc = run(args, &lines, first, sizeof first);
  CHECK(rc == 2, "%s: exit status %d, expected 2 (%s)", b->what, rc, first);
  CHECK(lines == 1, "%s: %d lines on stderr, expected 1", b->what, lines);
  CHECK(count_entries(out) == 0, "%s: %d files written", b->what,
        count_entries(out));
  if (getenv("TEST_VERBOSE"))
    printf("%-38s -> %d: %s", b->what, rc, first);
  remove_tree(root);
  free(root);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_run_tool_fda DCNV4_RUN GOLDEN_DIR\n");
    return 2;
  }
  tool = argv[1];
  const char *golden = argv[2];
  static const char *const cases[] = {"fda_basic", "fda_3lvl", "fda_fp16",
                                      "fda_4lvl_k8_d8"};
  for (size_t i = 0; i < 4; i++)
    check_golden(golden, cases[i], 0);
  check_golden(golden, "fda_3lvl", 1);
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
    check_bad(golden, &bad_cases[i]);
  static const char *const layer_cases[] = {"fda_layer_2d", "fda_layer_4d_mask",
                                            "fda_layer_fp16"};
  for (size_t i = 0; i < 3; i++)
    check_layer_golden(golden, layer_cases[i]);
  for (size_t i = 0; i < sizeof bad_layer_cases / sizeof bad_layer_cases[0];
       i++)
    check_layer_bad(golden, &bad_layer_cases[i]);
  return test_finish("test_run_tool_fda");
}
