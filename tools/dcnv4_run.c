/* dcnv4-run CASE_DIR OUT_DIR [--device SPEC] [--forward-only]
 *
 * Runs a case folder (shared/golden layout) through the library and writes
 * the results as <f4 .npy files. Bad input: exit 2, one line on stderr, no
 * file written. Device or library failure: exit 1. */
#include "run_case.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
  const char *op;
  run_fn run;
} runners[] = {
    {"dcnv4", run_dcnv4},
    {"flash_deform_attn", run_fda},
    {"dcnv4_layer", run_dcnv4_layer},
    {"flash_deform_attn_layer", run_fda_layer},
    {"flash_intern_image", run_fii},
};

static void usage(FILE *to) {
  fprintf(to,
          "usage: dcnv4-run CASE_DIR OUT_DIR [--device SPEC] [--forward-only]\n"
          "                 [--deterministic]\n"
          "  Runs the case in CASE_DIR (meta.json + .npy inputs) and writes\n"
          "  its outputs to OUT_DIR as float32 .npy files.\n"
          "  --device SPEC    \"platform:device\" or part of a device name\n"
          "                   (default: $DCNV4_DEVICE, else the first GPU)\n"
          "  --forward-only   skip the backward pass\n"
          "  --deterministic  backward without float atomics (bitwise\n"
          "                   reproducible; dcnv4 and flash_deform_attn)\n"
          "  Exit status: 0 done, 1 device/library failure, 2 bad input.\n");
}

run_output *run_add_output(run_outputs *outs, const char *name, int ndim,
                           const int64_t *shape, float *data) {
  if (outs->count >= RUN_MAX_OUTPUTS) {
    free(data);
    return NULL;
  }
  run_output *o = &outs->items[outs->count++];
  o->name = name;
  o->ndim = ndim;
  memcpy(o->shape, shape, (size_t)ndim * sizeof *shape);
  o->data = data;
  return o;
}

void run_free_outputs(run_outputs *outs) {
  for (int i = 0; i < outs->count; i++)
    free(outs->items[i].data);
  outs->count = 0;
}

int run_open_context(const run_request *req, dcnv4_context **ctx,
                     case_error *e) {
  char why[512] = "";
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.device = req->device;
  o.error_buffer = why;
  o.error_buffer_size = sizeof why;
  dcnv4_status st = dcnv4_context_create(&o, ctx);
  if (st != DCNV4_SUCCESS) {
    case_fail(e, "cannot open a device: %s", why);
    return RUN_FAILED;
  }
  return RUN_OK;
}

static int make_dirs(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return -1;
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
      *p = '/';
    }
  return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Writes every output or, on failure, none (removes what was written). */
static int write_outputs(const char *dir, const run_outputs *outs,
                         case_error *e) {
  if (make_dirs(dir) != 0)
    return case_fail(e, "cannot create output folder %s", dir);
  char path[4096], err[512];
  for (int i = 0; i < outs->count; i++) {
    const run_output *o = &outs->items[i];
    snprintf(path, sizeof path, "%s/%s.npy", dir, o->name);
    if (npy_write(path, NPY_FLOAT32, o->data, o->ndim, o->shape, err,
                  sizeof err) != 0) {
      for (int j = 0; j < i; j++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, outs->items[j].name);
        remove(path);
      }
      return case_fail(e, "%s", err);
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *positional[2] = {NULL, NULL};
  int npos = 0;
  run_request req = {NULL, NULL, NULL, 0, 0};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return RUN_OK;
    } else if (strcmp(argv[i], "--forward-only") == 0)
      req.forward_only = 1;
    else if (strcmp(argv[i], "--deterministic") == 0)
      req.deterministic = 1;
    else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
      req.device = argv[++i];
    else if (strncmp(argv[i], "--device=", 9) == 0)
      req.device = argv[i] + 9;
    else if (strcmp(argv[i], "--device") == 0) {
      fprintf(stderr, "dcnv4-run: --device needs a value (see --help)\n");
      return RUN_BAD_INPUT;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "dcnv4-run: unknown option %s (see --help)\n", argv[i]);
      return RUN_BAD_INPUT;
    } else if (npos < 2)
      positional[npos++] = argv[i];
    else {
      fprintf(stderr, "dcnv4-run: too many arguments (see --help)\n");
      return RUN_BAD_INPUT;
    }
  }
  if (npos != 2) {
    fprintf(stderr, "dcnv4-run: expected CASE_DIR and OUT_DIR (see --help)\n");
    return RUN_BAD_INPUT;
  }
  req.case_dir = positional[0];
  const char *out_dir = positional[1];
  struct stat st;
  if (stat(out_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "dcnv4-run: %s exists and is not a folder\n", out_dir);
    return RUN_BAD_INPUT;
  }

  case_error e = {""};
  cJSON *meta = NULL;
  if (meta_load(req.case_dir, &meta, &e) != 0) {
    fprintf(stderr, "dcnv4-run: %s\n", e.text);
    return RUN_BAD_INPUT;
  }
  req.meta = meta;
  const char *op = NULL;
  int rc = RUN_BAD_INPUT;
  run_outputs outs = {.count = 0};
  if (meta_string(meta, "op", &op, &e) == 0) {
    run_fn run = NULL;
    for (size_t i = 0; i < sizeof runners / sizeof runners[0]; i++)
      if (strcmp(runners[i].op, op) == 0)
        run = runners[i].run;
    if (!run)
      case_fail(&e, "unknown op \"%s\"", op);
    else {
      rc = run(&req, &outs, &e);
      if (rc == RUN_OK && write_outputs(out_dir, &outs, &e) != 0)
        rc = RUN_FAILED;
    }
  }
  if (rc != RUN_OK)
    fprintf(stderr, "dcnv4-run: %s\n", e.text);
  run_free_outputs(&outs);
  cJSON_Delete(meta);
  return rc;
}
