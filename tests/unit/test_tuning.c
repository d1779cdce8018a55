/* Tuning files and overrides.
 *
 *   test_tuning file KERNEL_SOURCE_DIR
 *     a good file is applied (most specific entry wins), malformed or
 *     foreign files are ignored without failing context creation,
 *     precedence built-in < file < DCNV4_TUNING < dcnv4_context_set_tuning,
 *     a tuned configuration that does not build (kernels copied with an
 *     #error for VEC == 2) falls back to the default with correct results,
 *     and the DCNv4 forward's removed stages are rejected, saying why.
 *   test_tuning tool DCNV4_TUNE
 *     dcnv4-tune with a small budget on a tiny shape writes a file that a
 *     new context reads and computes correctly with.
 *   test_tuning tool_gemm DCNV4_TUNE
 *     its GEMM search: CLBlast's sets, linear.cl's tiles and the few-tile
 *     parameters each timed; the file loads and dcnv4_linear_forward is
 *     right under it.
 *   test_tuning gemm TEST_GOLDEN GOLDEN_DIR
 *     the file's CLBlast parameters are applied to the layers' GEMMs; sets
 *     the device cannot run, and kernels the library does not tune, leave
 *     CLBlast's defaults (DCNV4_LOG says so) and the layer results stay
 *     right. */
#include "dcnv4_problem.h"
#include "fda_problem.h"
#include "run_tool_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *tmp_dir;
static dcnv4_device_info dev;
static size_t max_work_group; /* CL_DEVICE_MAX_WORK_GROUP_SIZE */

static void write_file(const char *name, const char *text) {
  write_text(tmp_dir, name, text);
}

/* A tuning file for this device with `body` (JSON members after device). */
static void write_tuning(const char *name, const char *body) {
  size_t n = strlen(body) + 1024;
  char *text = malloc(n);
  snprintf(text, n,
           "{\"format\": \"dcnv4-tuning\", \"version\": 1,\n"
           " \"device\": {\"name\": \"%s\", \"vendor\": \"%s\", \"driver\": "
           "\"%s\"}%s%s}\n",
           dev.device_name, dev.vendor, dev.driver_version, *body ? ",\n" : "",
           body);
  write_file(name, text);
  free(text);
}

static char *path_of(const char *name) {
  char *p = malloc(strlen(tmp_dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", tmp_dir, name);
  return p;
}

/* A context reading `name` (NULL: no tuning file). */
static dcnv4_context *open_with(const char *name) {
  if (name) {
    char *p = path_of(name);
    setenv("DCNV4_TUNING_FILE", p, 1);
    free(p);
  } else
    setenv("DCNV4_TUNING_FILE", "", 1);
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(NULL, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "cannot create a context\n");
    exit(1);
  }
  return ctx;
}

static void expect(dcnv4_context *ctx, const char *kernel, dcnv4_dtype dtype,
                   int gc, const char *want_sub, dcnv4_tuning_source want_src,
                   const char *what) {
  char got[256] = "";
  dcnv4_tuning_source src = (dcnv4_tuning_source)-1;
  dcnv4_status st =
      dcnv4_context_get_tuning(ctx, kernel, dtype, gc, got, sizeof got, &src);
  CHECK(st == DCNV4_SUCCESS, "%s: get_tuning failed", what);
  CHECK(strstr(got, want_sub) != NULL, "%s: \"%s\" lacks \"%s\"", what, got,
        want_sub);
  CHECK(src == want_src, "%s: source %d, expected %d (%s)", what, (int)src,
        (int)want_src, got);
}

static int loaded(dcnv4_context *ctx) {
  char p[4096];
  int l = -1;
  dcnv4_context_tuning_file(ctx, p, sizeof p, &l);
  return l;
}

static const char *good_body =
    "\"generated_by\": \"test\",\n"
    "\"kernels\": [\n"
    " {\"kernel\": \"dcnv4_forward\", \"params\": {\"vec\": 2, \"local\": "
    "32}},\n"
    " {\"kernel\": \"dcnv4_forward\", \"dtype\": \"float16\",\n"
    "  \"params\": {\"local\": 64}},\n"
    " {\"kernel\": \"dcnv4_forward\", \"dtype\": \"float32\",\n"
    "  \"group_channels\": 16, \"params\": {\"vec\": 4, \"unroll\": 1},\n"
    "  \"ms\": 0.1, \"default_ms\": 0.2, \"shapes\": [\"1x8x8x32\"]},\n"
    " {\"kernel\": \"fda_backward\", \"dtype\": \"any\",\n"
    "  \"params\": {\"local\": 128}}\n"
    "]";

static void test_good_file(void) {
  write_tuning("good.json", good_body);
  dcnv4_context *ctx = open_with("good.json");
  CHECK(loaded(ctx) == 1, "good file not loaded");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 8, "vec=2;local=32;",
         DCNV4_TUNING_FILE, "generic entry");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT16, 8, "vec=2;local=64;",
         DCNV4_TUNING_FILE, "dtype entry over generic");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "vec=4;local=32;",
         DCNV4_TUNING_FILE, "shape-class entry over generic");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "unroll=1;",
         DCNV4_TUNING_FILE, "shape-class entry's unroll");
  expect(ctx, "fda_backward", DCNV4_BFLOAT16, 32, "local=128",
         DCNV4_TUNING_FILE, "any dtype");
  expect(ctx, "dcnv4_backward", DCNV4_FLOAT32, 16, "", DCNV4_TUNING_BUILTIN,
         "kernel without entries");
  /* The tuned configuration computes correctly. */
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = 1;
  p.height_in = 7;
  p.width_in = 9;
  p.group = 2;
  p.group_channels = 16;
  rng r = {5};
  dcnv4_problem pr;
  problem_init(&pr, &p, &r, 0.0);
  dcnv4_errors e;
  CHECK(problem_run(ctx, &pr, 1, &e) == 0 && e.output <= TOL_FP32 &&
            e.grad_input <= TOL_FP32 && e.grad_offset_mask <= TOL_FP32,
        "wrong results with the good file (%.3g %.3g %.3g)", e.output,
        e.grad_input, e.grad_offset_mask);
  problem_free(&pr);
  /* Disabled: the built-in defaults. */
  dcnv4_context_set_tuning_file_enabled(ctx, 0);
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "", DCNV4_TUNING_BUILTIN,
         "file disabled");
  dcnv4_context_destroy(ctx);
}

static void test_malformed(void) {
  struct {
    const char *name, *text; /* text NULL: write_tuning(body) */
    const char *body;
  } cases[] = {
      {"garbage", "this is not json", NULL},
      {"truncated", "{\"format\": \"dcnv4-tuning\", \"version\": 1,", NULL},
      {"array", "[1, 2]", NULL},
      {"format", "{\"format\": \"other\", \"version\": 1}", NULL},
      {"version", "{\"format\": \"dcnv4-tuning\", \"version\": 2}", NULL},
      {"unknown_top", NULL, "\"colour\": \"blue\""},
      {"unknown_kernel", NULL,
       "\"kernels\": [{\"kernel\": \"nope\", \"params\": {\"vec\": 4}}]"},
      {"unknown_param", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": "
       "{\"warp\": 4}}]"},
      {"vec3", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": "
       "{\"vec\": 3}}]"},
      {"local0", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": "
       "{\"local\": 0}}]"},
      {"fraction", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": "
       "{\"local\": 64.5}}]"},
      {"string_value", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": "
       "{\"local\": \"64\"}}]"},
      {"empty_params", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": {}}]"},
      {"bad_dtype", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"dtype\": \"int8\", "
       "\"params\": {\"vec\": 4}}]"},
      {"negative_gc", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"group_channels\": "
       "-1, \"params\": {\"vec\": 4}}]"},
      {"duplicate", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": {\"vec\": "
       "4}}, {\"kernel\": \"dcnv4_forward\", \"params\": {\"vec\": 2}}]"},
      {"unknown_entry_key", NULL,
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"speed\": 1, "
       "\"params\": {\"vec\": 4}}]"},
      {"foreign_param", NULL,
       "\"kernels\": [{\"kernel\": \"fda_backward\", \"params\": "
       "{\"unroll\": 1}}]"},
      {"fda_stage3", NULL,
       "\"kernels\": [{\"kernel\": \"fda_forward\", \"params\": "
       "{\"stage\": 3}}]"},
      {"gemm_kernel", NULL,
       "\"gemm\": [{\"kernel\": \"X-gemm\", \"params\": {\"MWG\": 64}}]"},
      {"gemm_name", NULL,
       "\"gemm\": [{\"kernel\": \"Xgemm\", \"params\": {\"mwg\": 64}}]"},
      {"gemm_precision", NULL,
       "\"gemm\": [{\"kernel\": \"Xgemm\", \"precision\": \"float64\", "
       "\"params\": {\"MWG\": 64}}]"},
      {"kernels_object", NULL, "\"kernels\": {}"},
      {"other_device",
       "{\"format\": \"dcnv4-tuning\", \"version\": 1, \"device\": "
       "{\"name\": \"Some GPU\", \"vendor\": \"Nobody\", \"driver\": \"1\"}, "
       "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": {\"vec\": "
       "2}}]}",
       NULL},
  };
  /* A valid entry precedes the bad part, so a partly applied file shows. */
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[64];
    snprintf(name, sizeof name, "bad_%s.json", cases[i].name);
    if (cases[i].text)
      write_file(name, cases[i].text);
    else {
      char body[2048];
      snprintf(body, sizeof body, "\"created\": \"x\", %s%s", cases[i].body,
               strstr(cases[i].body, "\"kernels\"")
                   ? ""
                   : ", \"kernels\": [{\"kernel\": \"dcnv4_forward\", "
                     "\"params\": {\"vec\": 2}}]");
      write_tuning(name, body);
    }
    dcnv4_context *ctx = open_with(name);
    CHECK(loaded(ctx) == 0, "malformed file %s was loaded", name);
    expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "", DCNV4_TUNING_BUILTIN,
           name);
    dcnv4_context_destroy(ctx);
  }
  /* A NUL byte in the middle. */
  const char nul[] = "{\"format\": \"dcnv4-tuning\"\0, \"version\": 1}";
  write_bytes(tmp_dir, "bad_nul.json", nul, sizeof nul - 1);
  dcnv4_context *ctx = open_with("bad_nul.json");
  CHECK(loaded(ctx) == 0, "file with a NUL byte was loaded");
  dcnv4_context_destroy(ctx);
  /* A missing file is no error either. */
  ctx = open_with("does_not_exist.json");
  CHECK(loaded(ctx) == 0, "missing file reported as loaded");
  dcnv4_context_destroy(ctx);
}

static void test_precedence(void) {
  write_tuning("prec.json",
               "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": "
               "{\"vec\": 2, \"local\": 32}}]");
  setenv("DCNV4_TUNING", "dcnv4_forward.vec=4", 1);
  dcnv4_context *ctx = open_with("prec.json");
  unsetenv("DCNV4_TUNING");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "vec=4;local=32;",
         DCNV4_TUNING_OVERRIDE, "env over file");
  CHECK(dcnv4_context_set_tuning(ctx, "dcnv4_forward.vec=3") ==
            DCNV4_ERROR_INVALID_PARAMETER,
        "set_tuning accepted vec=3");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "vec=4;local=32;",
         DCNV4_TUNING_OVERRIDE, "rejected set_tuning changed nothing");
  CHECK(dcnv4_context_set_tuning(ctx, "dcnv4_forward.local=128") ==
            DCNV4_SUCCESS,
        "set_tuning failed");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "vec=2;local=128;",
         DCNV4_TUNING_OVERRIDE, "set_tuning replaces the env override");
  dcnv4_context_set_tuning(ctx, NULL);
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "vec=2;local=32;",
         DCNV4_TUNING_FILE, "override removed: the file");
  char buf[64];
  CHECK(dcnv4_context_get_tuning(ctx, "nope", DCNV4_FLOAT32, 0, buf, sizeof buf,
                                 NULL) == DCNV4_ERROR_INVALID_PARAMETER,
        "unknown kernel accepted");
  /* The register cap: 0 (the compiler's choice) to 255; devices without
   * cl_nv_compiler_options ignore it. */
  CHECK(dcnv4_context_set_tuning(ctx, "dcnv4_backward.regs=256") ==
            DCNV4_ERROR_INVALID_PARAMETER,
        "set_tuning accepted regs=256");
  CHECK(dcnv4_context_set_tuning(ctx, "dcnv4_backward.regs=64") ==
            DCNV4_SUCCESS,
        "set_tuning refused regs=64");
  expect(ctx, "dcnv4_backward", DCNV4_FLOAT32, 16, "regs=64",
         DCNV4_TUNING_OVERRIDE, "regs override");
  /* Groups per forward work-group: 0 (all that fit) to 64. */
  CHECK(dcnv4_context_set_tuning(ctx, "dcnv4_forward.groups=65") ==
            DCNV4_ERROR_INVALID_PARAMETER,
        "set_tuning accepted groups=65");
  CHECK(dcnv4_context_set_tuning(ctx, "dcnv4_forward.groups=-1") ==
            DCNV4_ERROR_INVALID_PARAMETER,
        "set_tuning accepted groups=-1");
  CHECK(dcnv4_context_set_tuning(ctx, "dcnv4_forward.groups=2") ==
            DCNV4_SUCCESS,
        "set_tuning refused groups=2");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, ";groups=2",
         DCNV4_TUNING_OVERRIDE, "groups override");
  /* Typed parameters: one a kernel does not take is refused, naming it. */
  CHECK(dcnv4_context_set_tuning(ctx, "fda_forward.split=1") ==
                DCNV4_ERROR_INVALID_PARAMETER &&
            strstr(dcnv4_context_last_error(ctx),
                   "fda_forward does not take \"split\""),
        "set_tuning fda_forward.split=1: %s", dcnv4_context_last_error(ctx));
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, ";groups=2",
         DCNV4_TUNING_OVERRIDE, "refused parameter changed nothing");
  /* get_tuning lists the kernel's own parameters only. */
  char own[256];
  CHECK(dcnv4_context_get_tuning(ctx, "fda_backward", DCNV4_FLOAT32, 16, own,
                                 sizeof own, NULL) == DCNV4_SUCCESS &&
            !strncmp(own, "vec=", 4) && strstr(own, ";regs=") &&
            !strstr(own, "halo") && !strstr(own, "stage") &&
            !strstr(own, "tilem"),
        "fda_backward's parameters: \"%s\"", own);
  CHECK(dcnv4_context_get_tuning(ctx, "layer_dwconv", DCNV4_FLOAT32, 0, own,
                                 sizeof own, NULL) == DCNV4_SUCCESS &&
            !strncmp(own, "local=", 6) && !strchr(own, ';'),
        "layer_dwconv's parameters: \"%s\"", own);
  dcnv4_context_destroy(ctx);
}

/* Copies the kernel sources, adding an #error for VEC == 2 to `files`. */
static char *broken_kernels(const char *src_dir, int vec) {
  char *dir = path_of("kernels");
  copy_case(src_dir, dir);
  const char *files[] = {"ops/dcnv4/dcnv4_forward.cl",
                         "ops/dcnv4/dcnv4_backward.cl",
                         "ops/fda/fda_forward.cl", "ops/fda/fda_backward.cl"};
  for (size_t i = 0; i < 4; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", src_dir, files[i]);
    FILE *f = fopen(path, "rb");
    if (!f) {
      fprintf(stderr, "cannot read %s\n", path);
      exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char head[96];
    snprintf(head, sizeof head,
             "#if VEC == %d\n#error \"test: VEC %d rejected\"\n#endif\n", vec,
             vec);
    char *text = malloc((size_t)n + strlen(head) + 1);
    strcpy(text, head);
    size_t got = fread(text + strlen(head), 1, (size_t)n, f);
    text[strlen(head) + got] = '\0';
    fclose(f);
    write_text(dir, files[i], text);
    free(text);
  }
  return dir;
}

/* A `vec` that none of the four operators' defaults uses on this device
 * (fp32, 8 channels per group), or 0. */
static int vec_no_default_uses(void) {
  static const char *kernels[] = {"dcnv4_forward", "dcnv4_backward",
                                  "fda_forward", "fda_backward"};
  static const int candidates[] = {2, 1, 4, 8};
  dcnv4_context *ctx = open_with(NULL);
  int used[9] = {0};
  for (size_t k = 0; k < 4; k++) {
    char def[256];
    dcnv4_context_get_tuning(ctx, kernels[k], DCNV4_FLOAT32, 8, def, sizeof def,
                             NULL);
    const char *v = strstr(def, "vec=");
    long vec = v ? strtol(v + 4, NULL, 10) : 0;
    if (vec > 0 && vec <= 8)
      used[vec] = 1;
  }
  dcnv4_context_destroy(ctx);
  for (size_t i = 0; i < 4; i++)
    if (!used[candidates[i]])
      return candidates[i];
  return 0;
}

static void test_build_fallback(const char *src_dir) {
  /* The kernels refuse one `vec` that the tuning file asks for and no
   * default uses, so every tuned program fails to build and falls back. */
  const int vec = vec_no_default_uses();
  if (!vec) {
    printf("build fallback: skipped (the defaults use every vec)\n");
    return;
  }
  char *kdir = broken_kernels(src_dir, vec);
  setenv("DCNV4_KERNEL_DIR", kdir, 1);
  char kernels[512];
  snprintf(kernels, sizeof kernels,
           "\"kernels\": [\n"
           "{\"kernel\": \"dcnv4_forward\", \"params\": {\"vec\": %d}},\n"
           "{\"kernel\": \"dcnv4_backward\", \"params\": {\"vec\": %d}},\n"
           "{\"kernel\": \"fda_forward\", \"params\": {\"vec\": %d}},\n"
           "{\"kernel\": \"fda_backward\", \"params\": {\"vec\": %d}}]",
           vec, vec, vec, vec);
  write_tuning("unbuildable.json", kernels);
  dcnv4_context *ctx = open_with("unbuildable.json");
  CHECK(loaded(ctx) == 1, "file not loaded");

  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = 1;
  p.height_in = 6;
  p.width_in = 7;
  p.group = 2;
  p.group_channels = 8;
  rng r = {11};
  dcnv4_problem pr;
  problem_init(&pr, &p, &r, 0.0);
  dcnv4_errors e = {1, 1, 1};
  CHECK(problem_run(ctx, &pr, 1, &e) == 0 && e.output <= TOL_FP32 &&
            e.grad_input <= TOL_FP32 && e.grad_offset_mask <= TOL_FP32,
        "DCNv4 after fallback: %s (%.3g %.3g %.3g)",
        dcnv4_context_last_error(ctx), e.output, e.grad_input,
        e.grad_offset_mask);
  problem_free(&pr);
  uint64_t after_dcnv4 = dcnv4_context_tuning_fallbacks(ctx);
  CHECK(after_dcnv4 >= 2,
        "expected forward and backward fallbacks, counted %llu",
        (unsigned long long)after_dcnv4);

  dcnv4_fda_params fp;
  dcnv4_fda_params_init(&fp);
  fp.batch = 1;
  fp.queries = 5;
  fp.group = 2;
  fp.group_channels = 8;
  fp.levels = 2;
  fp.points = 2;
  fp.spatial_shapes[0][0] = 4;
  fp.spatial_shapes[0][1] = 5;
  fp.spatial_shapes[1][0] = 2;
  fp.spatial_shapes[1][1] = 3;
  fp.level_start[1] = 20;
  fp.value_len = 26;
  fda_problem fpr;
  fda_problem_init(&fpr, &fp, &r, 0.0);
  fda_errors fe = {1, 1, 1};
  CHECK(fda_problem_run(ctx, &fpr, 1, &fe) == 0 && fe.output <= TOL_FP32 &&
            fe.grad_value <= TOL_FP32 && fe.grad_sampling <= TOL_FP32,
        "FDA after fallback: %s (%.3g %.3g %.3g)",
        dcnv4_context_last_error(ctx), fe.output, fe.grad_value,
        fe.grad_sampling);
  fda_problem_free(&fpr);
  CHECK(dcnv4_context_tuning_fallbacks(ctx) >= after_dcnv4 + 2,
        "expected FDA fallbacks");
  dcnv4_context_destroy(ctx);

  /* Without the file the broken sources build (the defaults avoid `vec`),
   * and nothing falls back. */
  ctx = open_with(NULL);
  dcnv4_problem pr2;
  problem_init(&pr2, &p, &r, 0.0);
  CHECK(problem_run(ctx, &pr2, 1, &e) == 0, "defaults: %s",
        dcnv4_context_last_error(ctx));
  CHECK(dcnv4_context_tuning_fallbacks(ctx) == 0, "fallback without a file");
  problem_free(&pr2);
  dcnv4_context_destroy(ctx);
  unsetenv("DCNV4_KERNEL_DIR");
  free(kdir);
}

/* The DCNv4 forward's removed stages (1, 2, 4) are rejected with a message
 * that says so, from every layer: set_tuning, DCNV4_TUNING and the file;
 * the stages that remain, and FlashDeformAttn's, are accepted. */
static void test_removed_stages(void) {
  dcnv4_context *ctx = open_with(NULL);
  const char *const removed[] = {
      "dcnv4_forward.stage=1", "dcnv4_forward.stage=2", "dcnv4_forward.stage=4",
      "fda_forward.stage=3"};
  for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
    CHECK(dcnv4_context_set_tuning(ctx, removed[i]) ==
              DCNV4_ERROR_INVALID_PARAMETER,
          "set_tuning accepted %s", removed[i]);
    const char *why = dcnv4_context_last_error(ctx);
    CHECK(strstr(why, removed[i]) &&
              (strstr(why, "(0 or 3;") || strstr(why, "(0 to 2)")),
          "%s: unclear message \"%s\"", removed[i], why);
  }
  CHECK(dcnv4_context_set_tuning(ctx, "dcnv4_forward.stage=4") ==
                DCNV4_ERROR_INVALID_PARAMETER &&
            strstr(dcnv4_context_last_error(ctx), "were removed"),
        "stage 4: \"%s\"", dcnv4_context_last_error(ctx));
  const char *const kept[] = {"dcnv4_forward.stage=0", "dcnv4_forward.stage=3",
                              "fda_forward.stage=1", "fda_forward.stage=2"};
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
    CHECK(dcnv4_context_set_tuning(ctx, kept[i]) == DCNV4_SUCCESS,
          "set_tuning refused %s: %s", kept[i], dcnv4_context_last_error(ctx));
  dcnv4_context_destroy(ctx);

  /* DCNV4_TUNING: context creation fails and says why. */
  setenv("DCNV4_TUNING", "dcnv4_forward.stage=2", 1);
  setenv("DCNV4_TUNING_FILE", "", 1);
  char why[256] = "";
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.error_buffer = why;
  o.error_buffer_size = sizeof why;
  ctx = NULL;
  CHECK(dcnv4_context_create(&o, &ctx) == DCNV4_ERROR_INVALID_PARAMETER &&
            ctx == NULL && strstr(why, "stages 1, 2 and 4 were removed"),
        "DCNV4_TUNING with stage 2: \"%s\"", why);
  if (ctx)
    dcnv4_context_destroy(ctx);
  unsetenv("DCNV4_TUNING");

  /* A file asking for a removed stage is ignored as a whole. */
  write_tuning("removed_stage.json",
               "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": "
               "{\"vec\": 2, \"stage\": 4}}]");
  ctx = open_with("removed_stage.json");
  CHECK(loaded(ctx) == 0, "file with dcnv4_forward stage 4 was loaded");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "", DCNV4_TUNING_BUILTIN,
         "file with a removed stage");
  dcnv4_context_destroy(ctx);
}

/* "gemm" entries are stored as read: a CLBlast kernel linear.c does not
 * tune is skipped there (logged; mode gemm), the file's kernel entries
 * apply. */
static void test_unknown_gemm_kernel(void) {
  write_tuning("gemm_unknown.json",
               "\"kernels\": [{\"kernel\": \"dcnv4_forward\", \"params\": "
               "{\"vec\": 2}}],\n"
               "\"gemm\": [{\"kernel\": \"Xfoo\", \"params\": {\"MWG\": 64}}]");
  dcnv4_context *ctx = open_with("gemm_unknown.json");
  CHECK(loaded(ctx) == 1, "file with an unknown CLBlast kernel not loaded");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "vec=2;", DCNV4_TUNING_FILE,
         "kernel entry beside an unknown CLBlast kernel");
  dcnv4_context_destroy(ctx);
}

static int mode_file(const char *src_dir) {
  test_good_file();
  test_malformed();
  test_unknown_gemm_kernel();
  test_precedence();
  test_build_fallback(src_dir);
  test_removed_stages();
  return 0;
}

/* dcnv4-tune end to end. */
static int mode_tool(const char *tool) {
  char *out = path_of("tuned.json");
  char args[8192];
  snprintf(args, sizeof args,
           "--shape 1x10x12x32 --group-channels 16 --dtype float32 "
           "--op dcnv4_forward --op fda_backward --budget 15 --reps 3 "
           "--out '%s'",
           out);
  char err[512] = "";
  int lines = 0;
  int rc = run_tool(tool, args, err, sizeof err, &lines);
  CHECK(rc == 0, "dcnv4-tune exited with %d: %s", rc, err);
  /* --dry-run writes nothing. */
  char *dry = path_of("dry.json");
  snprintf(args, sizeof args, "--dry-run --shape 1x10x12x32 --out '%s'", dry);
  CHECK(run_tool(tool, args, err, sizeof err, &lines) == 0, "dry run: %s", err);
  FILE *f = fopen(dry, "rb");
  CHECK(f == NULL, "--dry-run wrote %s", dry);
  if (f)
    fclose(f);
  free(dry);

  setenv("DCNV4_TUNING_FILE", out, 1);
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(NULL, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "no context\n");
    return 1;
  }
  CHECK(loaded(ctx) == 1, "the tuned file was not loaded");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "vec=", DCNV4_TUNING_FILE,
         "tuned forward");
  expect(ctx, "fda_backward", DCNV4_FLOAT32, 16, "vec=", DCNV4_TUNING_FILE,
         "tuned FDA backward");
  expect(ctx, "dcnv4_forward", DCNV4_FLOAT16, 16, "", DCNV4_TUNING_BUILTIN,
         "dtype not tuned");
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = 1;
  p.height_in = 10;
  p.width_in = 12;
  p.group = 2;
  p.group_channels = 16;
  rng r = {3};
  dcnv4_problem pr;
  problem_init(&pr, &p, &r, 0.05);
  dcnv4_errors e = {1, 1, 1};
  CHECK(problem_run(ctx, &pr, 1, &e) == 0 && e.output <= TOL_FP32 &&
            e.grad_input <= TOL_FP32 && e.grad_offset_mask <= TOL_FP32,
        "wrong results with the tuned file (%.3g %.3g %.3g)", e.output,
        e.grad_input, e.grad_offset_mask);
  problem_free(&pr);
  CHECK(dcnv4_context_tuning_fallbacks(ctx) == 0,
        "the tuner stored a configuration that does not build");
  dcnv4_context_destroy(ctx);

  /* A second run of another op keeps the first run's entries. */
  snprintf(args, sizeof args,
           "--shape 1x10x12x32 --group-channels 16 --dtype float32 "
           "--op fda_forward --budget 3 --reps 2 --out '%s'",
           out);
  rc = run_tool(tool, args, err, sizeof err, &lines);
  CHECK(rc == 0, "second dcnv4-tune run exited with %d: %s", rc, err);
  if (dcnv4_context_create(NULL, &ctx) == DCNV4_SUCCESS) {
    expect(ctx, "dcnv4_forward", DCNV4_FLOAT32, 16, "vec=", DCNV4_TUNING_FILE,
           "entry kept by the merge");
    expect(ctx, "fda_forward", DCNV4_FLOAT32, 16, "vec=", DCNV4_TUNING_FILE,
           "entry added by the merge");
    dcnv4_context_destroy(ctx);
  }
  unsetenv("DCNV4_TUNING_FILE");
  free(out);
  return 0;
}

/* dcnv4-tune's GEMM search end to end (the fp32 projections of one tiny
 * layer shape), on a budget that the first candidates exhaust: CLBlast's
 * sets, then linear.cl's tile sets and the few-tile parameters, each of
 * these two timing its first candidate whatever the time left (so the
 * checks hold on a slow or busy machine); the file it writes loads, and
 * dcnv4_linear_forward under it is right and falls back nowhere. */
static int mode_tool_gemm(const char *tool) {
  char *out = path_of("tuned_gemm.json");
  char *log = path_of("tune_gemm.log");
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "'%s' --op gemm --dtype float32 --shape 1x8x8x32 "
           "--group-channels 16 --budget 8 --reps 2 --verbose --out '%s' "
           ">'%s' 2>&1",
           tool, out, log);
  const int rc = system(cmd);
  CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "dcnv4-tune --op gemm: %d", rc);
  int summary = 0, tiles = 0, few = 0;
  char line[4096];
  FILE *f = fopen(log, "r");
  while (f && fgets(line, sizeof line, f)) {
    summary += strstr(line, "gemm float32 (") != NULL;
    tiles += strncmp(line, "    linear ", 11) == 0 && strstr(line, " vec ");
    few += strstr(line, "linear.shortm=") != NULL;
  }
  if (f)
    fclose(f);
  CHECK(summary == 1 && tiles >= 1 && few >= 1,
        "dcnv4-tune's GEMM search: %d summary, %d tile set(s), %d few-tile "
        "candidate(s) (log %s)",
        summary, tiles, few, log);

  setenv("DCNV4_TUNING_FILE", out, 1);
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(NULL, &ctx) == DCNV4_SUCCESS) {
    CHECK(loaded(ctx) == 1, "the tuned GEMM file was not loaded");
    /* 64 rows x 40 outputs x 32 inputs, as the layer's projections */
    enum { ROWS = 64, OUTS = 40, INS = 32 };
    static float x[ROWS * INS], w[OUTS * INS], b[OUTS], y0[ROWS * OUTS];
    rng r = {5};
    for (int i = 0; i < ROWS * INS; i++)
      x[i] = (float)rng_uniform(&r, -1, 1);
    for (int i = 0; i < OUTS * INS; i++)
      w[i] = (float)rng_uniform(&r, -1, 1);
    for (int i = 0; i < OUTS; i++)
      b[i] = (float)rng_uniform(&r, -1, 1);
    cl_mem dx = upload_values(ctx, x, ROWS * INS, DCNV4_FLOAT32),
           dw = upload_values(ctx, w, OUTS * INS, DCNV4_FLOAT32),
           db = upload_values(ctx, b, OUTS, DCNV4_FLOAT32),
           dy = upload_values(ctx, y0, ROWS * OUTS, DCNV4_FLOAT32);
    const dcnv4_status st = dcnv4_linear_forward(ctx, ROWS, OUTS, INS, dx, dw,
                                                 db, dy, 0, NULL, NULL);
    CHECK(st == DCNV4_SUCCESS, "linear under the tuned file: %s",
          dcnv4_context_last_error(ctx));
    double *y = download_values(ctx, dy, ROWS * OUTS, DCNV4_FLOAT32);
    double num = 0, den = 0;
    for (int i = 0; y && i < ROWS; i++)
      for (int o = 0; o < OUTS; o++) {
        double want = b[o];
        for (int k = 0; k < INS; k++)
          want += (double)x[i * INS + k] * (double)w[o * INS + k];
        const double d = y[i * OUTS + o] - want;
        num += d * d;
        den += want * want;
      }
    CHECK(y && sqrt(num / den) <= TOL_FP32,
          "linear under the tuned file: rel L2 %.3g",
          y ? sqrt(num / den) : -1.0);
    CHECK(dcnv4_context_tuning_fallbacks(ctx) == 0,
          "the tuner stored a GEMM configuration that does not build");
    free(y);
    clReleaseMemObject(dx);
    clReleaseMemObject(dw);
    clReleaseMemObject(db);
    clReleaseMemObject(dy);
    dcnv4_context_destroy(ctx);
  } else
    CHECK(0, "no context with the tuned GEMM file");
  unsetenv("DCNV4_TUNING_FILE");
  free(out);
  free(log);
  return 0;
}

/* Runs the golden layer cases with `file`; returns the exit status and
 * whether stderr (DCNV4_LOG) contains `needle`. */
static int golden_with(const char *golden, const char *dir, const char *file,
                       const char *needle, int *found) {
  char *log = path_of("golden.log");
  size_t n = strlen(golden) + strlen(dir) + strlen(file) + strlen(log) + 256;
  char *cmd = malloc(n);
  snprintf(cmd, n,
           "DCNV4_TUNING_FILE='%s' DCNV4_LOG=debug '%s' '%s' dcnv4_layer "
           ">/dev/null 2>'%s'",
           file, golden, dir, log);
  int rc = system(cmd);
  free(cmd);
  *found = 0;
  FILE *f = fopen(log, "rb");
  char line[2048];
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, needle))
      *found = 1;
  if (f)
    fclose(f);
  free(log);
  return rc;
}

static int mode_gemm(const char *golden, const char *dir) {
  /* Sets that fit CLBlast's constraints for a small work-group. */
  write_tuning("gemm_good.json",
               "\"gemm\": [{\"kernel\": \"Xgemm\", \"params\": {"
               "\"GEMMK\": 0, \"KREG\": 1, \"KWG\": 16, \"KWI\": 2, "
               "\"MDIMA\": 8, \"MDIMC\": 8, \"MWG\": 32, \"NDIMB\": 8, "
               "\"NDIMC\": 8, \"NWG\": 32, \"SA\": 1, \"SB\": 1, \"STRM\": 0, "
               "\"STRN\": 0, \"VWM\": 2, \"VWN\": 2}},\n"
               "{\"kernel\": \"XgemmDirect\", \"params\": {\"KWID\": 2, "
               "\"MDIMAD\": 8, \"MDIMCD\": 8, \"NDIMBD\": 8, \"NDIMCD\": 8, "
               "\"PADA\": 1, \"PADB\": 1, \"VWMD\": 2, \"VWND\": 2, "
               "\"WGD\": 16}}]");
  char *good = path_of("gemm_good.json");
  int found = 0;
  int rc = golden_with(golden, dir, good,
                       "XgemmDirect parameters from the "
                       "tuning file: applied",
                       &found);
  CHECK(rc == 0, "golden layer cases with tuned GEMMs failed (%d)", rc);
  CHECK(found, "the tuning file's XgemmDirect parameters were not applied");
  free(good);
  /* Work-groups of 64 x n items, n the first power of 2 above the device's
   * limit / 64 (128 on most devices; Intel's CPU runtime allows 8192). */
  size_t n = 128;
  while (64 * n <= max_work_group)
    n *= 2;
  char bad_sets[1024];
  snprintf(bad_sets, sizeof bad_sets,
           "\"gemm\": [{\"kernel\": \"Xgemm\", \"params\": {"
           "\"GEMMK\": 0, \"KREG\": 1, \"KWG\": %zu, \"KWI\": 2, "
           "\"MDIMA\": 64, \"MDIMC\": 64, \"MWG\": 64, \"NDIMB\": %zu, "
           "\"NDIMC\": %zu, \"NWG\": %zu, \"SA\": 0, \"SB\": 0, "
           "\"STRM\": 0, \"STRN\": 0, \"VWM\": 1, \"VWN\": 1}},\n"
           "{\"kernel\": \"XgemmDirect\", \"params\": {\"KWID\": 2, "
           "\"MDIMAD\": 64, \"MDIMCD\": 64, \"NDIMBD\": %zu, "
           "\"NDIMCD\": %zu, \"PADA\": 1, \"PADB\": 1, \"VWMD\": 1, "
           "\"VWND\": 1, \"WGD\": %zu}}]",
           n, n, n, n, n, n, n);
  write_tuning("gemm_bad.json", bad_sets);
  char *bad = path_of("gemm_bad.json");
  rc = golden_with(golden, dir, bad, "cannot run on this device", &found);
  CHECK(rc == 0,
        "golden layer cases with unusable GEMM parameters failed "
        "(%d)",
        rc);
  CHECK(found, "the unusable CLBlast parameters were not reported");
  free(bad);
  /* A kernel linear.c does not tune: skipped, said so. */
  write_tuning("gemm_unknown.json",
               "\"gemm\": [{\"kernel\": \"Xfoo\", \"params\": {\"MWG\": 64}}]");
  char *unknown = path_of("gemm_unknown.json");
  rc =
      golden_with(golden, dir, unknown, "is not one the library tunes", &found);
  CHECK(rc == 0, "golden layer cases beside an unknown CLBlast kernel (%d)",
        rc);
  CHECK(found, "the unknown CLBlast kernel was not reported");
  free(unknown);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_tuning file KERNEL_DIR | tool DCNV4_TUNE | "
                    "gemm TEST_GOLDEN GOLDEN_DIR\n");
    return 2;
  }
  tmp_dir = make_temp_dir("tuning");
  unsetenv("DCNV4_TUNING");
  dcnv4_context *ctx = open_with(NULL);
  dcnv4_context_device_info(ctx, &dev);
  if (clGetDeviceInfo(dcnv4_context_device(ctx), CL_DEVICE_MAX_WORK_GROUP_SIZE,
                      sizeof max_work_group, &max_work_group,
                      NULL) != CL_SUCCESS) {
    fprintf(stderr, "cannot query the maximum work-group size\n");
    return 1;
  }
  dcnv4_context_destroy(ctx);
  if (!strcmp(argv[1], "file"))
    mode_file(argv[2]);
  else if (!strcmp(argv[1], "tool"))
    mode_tool(argv[2]);
  else if (!strcmp(argv[1], "tool_gemm"))
    mode_tool_gemm(argv[2]);
  else if (!strcmp(argv[1], "gemm") && argc >= 4)
    mode_gemm(argv[2], argv[3]);
  else {
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
  }
  remove_tree(tmp_dir);
  free(tmp_dir);
  return test_finish(argv[1]);
}
