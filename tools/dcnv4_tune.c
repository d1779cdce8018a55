/* dcnv4-tune: searches the launch parameters of the operators' kernels and
 * CLBlast's GEMM parameters on one device, for the given shapes (default:
 * the paper's, DESIGN.md §5, smaller on CPU devices as in dcnv4-bench), and
 * writes the winners to the tuning file the library reads at context
 * creation.
 *
 * Kernels: for each kernel x dtype x group_channels, a coordinate search
 * from the built-in default over the parameters the kernel takes (those
 * dcnv4_context_get_tuning lists): vec {1,2,4,8} (dividing group_channels),
 * local {32..512}, stage {0,3} (FlashDeformAttn {0,1,2}),
 * rows {1..8}, groups per work-group {all,1,2,4}, vectors per work-item
 * (pieces {1,2}), register caps and the kernel's 0/1 switches (split,
 * unroll, specialize); the forward kernels' small-launch rule as the default
 * has it or off (small 0; its values are not searched). Each candidate is
 * applied with dcnv4_context_set_tuning (the same mechanism as DCNV4_TUNING),
 * first checked against the float64 reference on a small problem (a candidate
 * that does not build or gives a wrong result is rejected), then timed on every
 * shape: median of several launches with profiling events, warm-up excluded.
 * Score: the mean over shapes of time / default time.
 *
 * GEMM: the layers' projections (M = N*H*W rows; C x C value and output
 * projections, C x ceil(3*K*G/8)*8 offset_mask projection) with a curated
 * list of CLBlast Xgemm and XgemmDirect parameter sets
 * (CLBlastOverrideParameters), each checked against a float64 reference on
 * sampled rows. Then the backend: the library's GEMM (dcnv4_linear_forward,
 * with a bias as the layers use it) on CLBlast with the winning sets against
 * this library's kernel (linear.cl) with each tile set of a curated
 * list; the faster is stored as the "linear" kernel entry (backend, tiles).
 * On linear.cl, last, the few-tile parameters (short tile rows, split-K
 * parts at most, work-groups per compute unit, k per part; coordinate
 * search over the
 * FlashInternImage MLP's shapes too, C x 4C and 4C x C, whose small-M
 * products split). Then, for each 16-bit dtype asked for, linear_mma (the
 * GEMM on 16-bit storage, tensor cores) where the device's 16-bit GEMMs
 * run it (or --mma): a list of tilings, then its staged / prefetch /
 * raster switches on the best, then small-launch rules, per shape class
 * (more than 64 columns, at most 64), on the same GEMM shapes
 * (tools/tune_mma.c).
 *
 * The file is merged: entries of kernels not tuned in this run are kept. */
#include "bench_timing.h"
#include "dcnv4_problem.h"
#include "fda_problem.h"
#include "tune_mma.h"

#include <cjson/cJSON.h>
#include <clblast_c.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ options */

enum { OP_DCNV4_FWD, OP_DCNV4_BWD, OP_FDA_FWD, OP_FDA_BWD, OP_GEMM, OPS };
static const char *const op_names[OPS] = {
    "dcnv4_forward", "dcnv4_backward", "fda_forward", "fda_backward", "gemm"};
/* The library's kernel names of the first four ops. */
static const char *const kernel_of_op[4] = {"dcnv4_forward", "dcnv4_backward",
                                            "fda_forward", "fda_backward"};

typedef struct shape {
  int n, h, w, c;
} shape;

typedef struct options {
  const char *device, *out;
  shape shapes[32];
  int nshapes;
  int gcs[8], ngcs;
  dcnv4_dtype dtypes[3];
  int ndtypes;
  int ops[OPS];
  double budget;
  int reps;
  int dry_run;
  int verbose;
  int mma; /* search linear_mma whatever the device's 16-bit GEMM */
} options;

/* DESIGN.md §5: the paper's Tables 2 and 5. */
static const shape paper_shapes[] = {
    {64, 56, 56, 128}, {64, 28, 28, 256},  {64, 14, 14, 512},  {64, 7, 7, 1024},
    {64, 14, 14, 768}, {1, 200, 320, 128}, {1, 100, 160, 256}, {1, 50, 80, 512},
    {1, 25, 40, 1024}, {1, 64, 64, 768}};
/* Deformable-DETR's encoder on an 800x1333 image: level 0 is 100x167. */
static const shape fda_default_shape = {1, 100, 167, 256};

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: dcnv4-tune [options]\n"
      "Searches kernel launch parameters and CLBlast GEMM parameters on a\n"
      "device and writes the winners to the tuning file the library reads.\n"
      "  --device SPEC         as DCNV4_DEVICE (default: $DCNV4_DEVICE, else\n"
      "                        the first GPU)\n"
      "  --shape NxHxWxC       a layer shape (repeatable; default the "
      "paper's,\n"
      "                        smaller on CPU devices). FlashDeformAttn: "
      "batch\n"
      "                        N, level 0 HxW (4 levels, halving), C channels\n"
      "  --group-channels D[,D] channels per group (default 16,32)\n"
      "  --dtype T[,T]         float32, float16, bfloat16 (default "
      "float32,float16)\n"
      "  --op OP               dcnv4_forward, dcnv4_backward, fda_forward,\n"
      "                        fda_backward, gemm or all (repeatable; default "
      "all)\n"
      "  --budget SECONDS      total search time (default 600); the defaults\n"
      "                        are always measured\n"
      "  --reps N              timed launches per measurement (default 20 on\n"
      "                        GPUs, 5 on CPUs)\n"
      "  --out FILE            default: $DCNV4_TUNING_FILE, else the cache\n"
      "                        folder's tuning/<device key>.json\n"
      "  --dry-run             print the plan and the output path; run "
      "nothing\n"
      "  --mma                 search linear_mma (16-bit GEMMs) even where\n"
      "                        the device's 16-bit GEMMs do not run it\n"
      "  --verbose             print every candidate\n");
}

static int parse_list_int(const char *s, int *out, int max) {
  int n = 0;
  while (*s && n < max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 4096)
      return -1;
    out[n++] = (int)v;
    if (*end == ',')
      end++;
    else if (*end)
      return -1;
    s = end;
  }
  return n;
}

static int parse_options(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->budget = 600;
  int any_op = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    } else if (!strcmp(a, "--dry-run"))
      o->dry_run = 1;
    else if (!strcmp(a, "--verbose"))
      o->verbose = 1;
    else if (!strcmp(a, "--mma"))
      o->mma = 1;
    else if (!v) {
      fprintf(stderr, "dcnv4-tune: %s needs a value\n", a);
      return -1;
    } else if (!strcmp(a, "--device"))
      o->device = argv[++i];
    else if (!strcmp(a, "--out"))
      o->out = argv[++i];
    else if (!strcmp(a, "--budget")) {
      char *end;
      o->budget = strtod(v, &end);
      if (*end || !(o->budget >= 0)) {
        fprintf(stderr, "dcnv4-tune: bad --budget %s\n", v);
        return -1;
      }
      i++;
    } else if (!strcmp(a, "--reps")) {
      o->reps = atoi(v);
      if (o->reps < 1 || o->reps > 10000) {
        fprintf(stderr, "dcnv4-tune: bad --reps %s\n", v);
        return -1;
      }
      i++;
    } else if (!strcmp(a, "--shape")) {
      shape s;
      char extra;
      if (o->nshapes == 32 ||
          sscanf(v, "%dx%dx%dx%d%c", &s.n, &s.h, &s.w, &s.c, &extra) != 4 ||
          s.n < 1 || s.h < 1 || s.w < 1 || s.c < 1) {
        fprintf(stderr, "dcnv4-tune: bad --shape %s (NxHxWxC)\n", v);
        return -1;
      }
      o->shapes[o->nshapes++] = s;
      i++;
    } else if (!strcmp(a, "--group-channels")) {
      o->ngcs = parse_list_int(v, o->gcs, 8);
      if (o->ngcs < 1) {
        fprintf(stderr, "dcnv4-tune: bad --group-channels %s\n", v);
        return -1;
      }
      i++;
    } else if (!strcmp(a, "--dtype")) {
      char buf[128];
      snprintf(buf, sizeof buf, "%s", v);
      o->ndtypes = 0;
      for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        if (o->ndtypes == 3 || parse_dtype(t, &o->dtypes[o->ndtypes]) != 0) {
          fprintf(stderr, "dcnv4-tune: bad --dtype %s\n", v);
          return -1;
        }
        o->ndtypes++;
      }
      i++;
    } else if (!strcmp(a, "--op")) {
      int found = 0;
      for (int k = 0; k < OPS; k++)
        if (!strcmp(v, op_names[k]) || !strcmp(v, "all")) {
          o->ops[k] = 1;
          found = 1;
        }
      if (!found) {
        fprintf(stderr, "dcnv4-tune: unknown --op %s\n", v);
        return -1;
      }
      any_op = 1;
      i++;
    } else {
      fprintf(stderr, "dcnv4-tune: unknown option %s\n", a);
      return -1;
    }
  }
  if (!any_op)
    for (int k = 0; k < OPS; k++)
      o->ops[k] = 1;
  if (!o->ngcs) {
    o->gcs[0] = 16;
    o->gcs[1] = 32;
    o->ngcs = 2;
  }
  if (!o->ndtypes) {
    o->dtypes[0] = DCNV4_FLOAT32;
    o->dtypes[1] = DCNV4_FLOAT16;
    o->ndtypes = 2;
  }
  return 0;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The shapes of a run: given, else the paper's (DCNv4) or DETR's (FDA);
 * CPU devices get smaller tensors unless shapes were given. */
static int run_shapes(const options *o, int fda, int is_gpu, shape *out) {
  if (o->nshapes) {
    memcpy(out, o->shapes, sizeof *out * (size_t)o->nshapes);
    return o->nshapes;
  }
  int n = 0;
  if (fda)
    out[n++] = fda_default_shape;
  else
    for (size_t i = 0; i < sizeof paper_shapes / sizeof paper_shapes[0]; i++)
      out[n++] = paper_shapes[i];
  for (int i = 0; !is_gpu && i < n; i++) {
    if (out[i].n > 1)
      out[i].n = 1;
    else {
      out[i].h = out[i].h / 4 > 4 ? out[i].h / 4 : 4;
      out[i].w = out[i].w / 4 > 4 ? out[i].w / 4 : 4;
    }
  }
  return n;
}

/* ------------------------------------------------- kernel parameters */

#define NPARAMS 12
static const char *const param_names[NPARAMS] = {
    "vec",  "local", "stage", "split",  "unroll", "specialize",
    "rows", "halo",  "regs",  "groups", "pieces", "small"};
/* What the device allows the search: work-group size, and whether register
 * caps exist (cl_nv_compiler_options; elsewhere `regs` has no effect and is
 * not searched). */
typedef struct search_limits {
  size_t max_wg;
  int reg_caps;
} search_limits;

typedef struct config {
  long v[NPARAMS];
} config;

/* Parses "vec=4;local=128;..." (dcnv4_context_get_tuning's format: the
 * parameters the kernel takes, which it marks in `takes`). */
static int parse_config(const char *text, config *c, int takes[NPARAMS]) {
  memset(c, 0, sizeof *c);
  memset(takes, 0, NPARAMS * sizeof *takes);
  char buf[512];
  snprintf(buf, sizeof buf, "%s", text);
  for (char *t = strtok(buf, ";"); t; t = strtok(NULL, ";")) {
    char *eq = strchr(t, '=');
    if (!eq)
      return -1;
    *eq = '\0';
    for (int p = 0; p < NPARAMS; p++)
      if (!strcmp(t, param_names[p])) {
        c->v[p] = atol(eq + 1);
        takes[p] = 1;
      }
  }
  return 0;
}

/* The override string of a candidate for `kernel`. */
static void config_override(int op, const int *takes, const config *c,
                            char *out, size_t size) {
  size_t n = 0;
  out[0] = '\0';
  for (int p = 0; p < NPARAMS && n < size; p++)
    if (takes[p]) {
      int w = snprintf(out + n, size - n, "%s%s.%s=%ld", n ? ";" : "",
                       kernel_of_op[op], param_names[p], c->v[p]);
      n += w > 0 ? (size_t)w : 0;
    }
}

static void config_text(const int *takes, const config *c, char *out,
                        size_t size) {
  size_t n = 0;
  out[0] = '\0';
  for (int p = 0; p < NPARAMS && n < size; p++)
    if (takes[p]) {
      int w = snprintf(out + n, size - n, "%s%s=%ld", n ? " " : "",
                       param_names[p], c->v[p]);
      n += w > 0 ? (size_t)w : 0;
    }
}

/* The values parameter p of operation op may take on this device and
 * group_channels. */
static int param_values(int op, int p, int gc, const search_limits *lim,
                        long *out) {
  const size_t max_wg = lim->max_wg;
  int n = 0;
  if (p == 0) {
    for (long v = 1; v <= 8; v *= 2)
      if (gc % v == 0)
        out[n++] = v;
  } else if (p == 1) {
    for (long v = 32; v <= 512; v *= 2)
      if ((size_t)v <= max_wg)
        out[n++] = v;
  } else if (p == 6) {
    for (long v = 1; v <= 8; v *= 2)
      out[n++] = v;
  } else if (p == 8) {
    /* regs: the compiler's choice, or caps that leave room for 6 and 4
     * work-groups of 256 per SM (NVIDIA's 64K registers) */
    out[n++] = 0;
    if (lim->reg_caps) {
      out[n++] = 40;
      out[n++] = 64;
    }
  } else if (p == 2) {
    /* stage: DCNv4 forward 0 global loads, 3 point footprints in local
     * memory; FlashDeformAttn forward 0 each work-item locates its points, 1
     * and 2 the work-items of a head share them through local memory (2
     * packed) */
    if (op == OP_FDA_FWD)
      for (long v = 0; v <= 2; v++)
        out[n++] = v;
    else {
      out[n++] = 0;
      out[n++] = 3;
    }
  } else if (p == 7) {
    /* halo: 0 to 2 pixels */
    for (long v = 0; v <= 2; v++)
      out[n++] = v;
  } else if (p == 10) {
    /* pieces: vectors of channels per work-item (1, 2) where they divide
     * group_channels at the smallest vector width */
    out[n++] = 1;
    if (gc % 2 == 0)
      out[n++] = 2;
  } else if (p == 11) {
    /* small: the forward kernels' small-launch rule as the default has it,
     * or off (0), so that the values written are the ones measured on
     * these shapes; its small* values are not searched */
    out[n++] = 0;
  } else if (p == 9) {
    /* groups (heads) per work-group: all, or 1, 2, 4 (a work-group then
     * spans more pixels or queries of fewer groups) */
    for (long v = 0; v <= 4; v = v ? 2 * v : 1)
      out[n++] = v;
  } else {
    out[n++] = 0;
    out[n++] = 1;
  }
  return n;
}

/* ------------------------------------------------------ one tuning task */

typedef struct tensors {
  cl_mem a, b, c, go, ga, gb; /* forward: a, b -> c; backward: go -> ga, gb */
} tensors;

static void release_tensors(tensors *t) {
  cl_mem all[] = {t->a, t->b, t->c, t->go, t->ga, t->gb};
  for (size_t i = 0; i < 6; i++)
    host_release(all[i]);
  memset(t, 0, sizeof *t);
}

typedef struct task {
  int op; /* OP_DCNV4_FWD .. OP_FDA_BWD */
  dcnv4_dtype dtype;
  int gc;
  int nshapes;
  shape shapes[32];
  dcnv4_params dp[32];
  dcnv4_fda_params fp[32];
  tensors t[32];
  double base_ms[32];
  /* results */
  int takes[NPARAMS]; /* the parameters the kernel takes */
  config best;
  double best_score, best_ms, default_ms_total;
  int tried, rejected, done;
} task;

static void make_dcnv4_params(const shape *s, int gc, dcnv4_dtype dtype,
                              dcnv4_params *p) {
  dcnv4_params_init(p);
  p->batch = s->n;
  p->height_in = s->h;
  p->width_in = s->w;
  p->group_channels = gc;
  p->group = s->c / gc;
  p->dtype = dtype;
}

static void make_fda_params(const shape *s, int gc, dcnv4_dtype dtype,
                            dcnv4_fda_params *p) {
  dcnv4_fda_params_init(p);
  p->batch = s->n;
  p->group_channels = gc;
  p->group = s->c / gc;
  p->dtype = dtype;
  p->levels = 4;
  p->points = 4;
  int h = s->h, w = s->w, start = 0;
  for (int l = 0; l < 4; l++) {
    p->spatial_shapes[l][0] = h;
    p->spatial_shapes[l][1] = w;
    p->level_start[l] = start;
    start += h * w;
    h = (h + 1) / 2;
    w = (w + 1) / 2;
  }
  p->value_len = start;
  p->queries = start; /* the encoder: one query per value row */
}

static int is_fda(int op) { return op == OP_FDA_FWD || op == OP_FDA_BWD; }
static int is_backward(int op) {
  return op == OP_DCNV4_BWD || op == OP_FDA_BWD;
}

/* Device tensors with realistic values for shape i of the task. */
static int prepare_tensors(dcnv4_context *ctx, task *tk, int i) {
  rng r = {99 + (uint64_t)i};
  tensors *t = &tk->t[i];
  memset(t, 0, sizeof *t);
  if (is_fda(tk->op)) {
    fda_problem pr;
    fda_problem_init(&pr, &tk->fp[i], &r, 0.0);
    t->a = upload_values(ctx, pr.value, pr.s.value_elements, tk->dtype);
    t->b = upload_values(ctx, pr.sampling, pr.s.sampling_elements, tk->dtype);
    t->c = poisoned_buffer(ctx, pr.s.output_elements, tk->dtype);
    if (is_backward(tk->op)) {
      t->go =
          upload_values(ctx, pr.grad_output, pr.s.output_elements, tk->dtype);
      t->ga = poisoned_buffer(ctx, pr.s.value_elements, tk->dtype);
      t->gb = poisoned_buffer(ctx, pr.s.sampling_elements, tk->dtype);
    }
    fda_problem_free(&pr);
  } else {
    dcnv4_problem pr;
    problem_init(&pr, &tk->dp[i], &r, 0.0);
    t->a = upload_values(ctx, pr.input, pr.s.input_elements, tk->dtype);
    t->b = upload_values(ctx, pr.offset_mask, pr.s.offset_mask_elements,
                         tk->dtype);
    t->c = poisoned_buffer(ctx, pr.s.output_elements, tk->dtype);
    if (is_backward(tk->op)) {
      t->go =
          upload_values(ctx, pr.grad_output, pr.s.output_elements, tk->dtype);
      t->ga = poisoned_buffer(ctx, pr.s.input_elements, tk->dtype);
      t->gb = poisoned_buffer(ctx, pr.s.offset_mask_elements, tk->dtype);
    }
    problem_free(&pr);
  }
  return t->a && t->b && t->c &&
         (!is_backward(tk->op) || (t->go && t->ga && t->gb));
}

static dcnv4_status enqueue_op(dcnv4_context *ctx, const task *tk, int i,
                               cl_event *event) {
  const tensors *t = &tk->t[i];
  switch (tk->op) {
  case OP_DCNV4_FWD:
    return dcnv4_forward(ctx, &tk->dp[i], t->a, t->b, t->c, 0, NULL, event);
  case OP_DCNV4_BWD: {
    dcnv4_backward_buffers b = {t->a, t->b, t->go, t->ga, t->gb, NULL};
    return dcnv4_backward(ctx, &tk->dp[i], &b, 0, NULL, event);
  }
  case OP_FDA_FWD:
    return dcnv4_fda_forward(ctx, &tk->fp[i], t->a, t->b, t->c, 0, NULL, event);
  default: {
    dcnv4_fda_backward_buffers b = {t->a, t->b, t->go, t->ga, t->gb, NULL};
    return dcnv4_fda_backward(ctx, &tk->fp[i], &b, 0, NULL, event);
  }
  }
}

/* Median ms of `reps` launches (2 warm-up launches excluded), or -1. */
static double time_shape(dcnv4_context *ctx, const task *tk, int i, int reps) {
  const int warm = 2, total = reps + warm;
  cl_event *marks = calloc((size_t)total, sizeof *marks);
  cl_event *ends = calloc((size_t)total, sizeof *ends);
  double *ms = calloc((size_t)reps, sizeof *ms);
  int ok = marks && ends && ms;
  for (int k = 0; k < total && ok; k++) {
    marks[k] = enqueue_marker(ctx);
    ok = marks[k] && enqueue_op(ctx, tk, i, &ends[k]) == DCNV4_SUCCESS;
  }
  ok = dcnv4_context_finish(ctx) == DCNV4_SUCCESS && ok;
  for (int k = 0; k < total; k++) {
    if (ok && k >= warm)
      ms[k - warm] = span_ms(marks[k], ends[k]);
    if (marks && marks[k])
      clReleaseEvent(marks[k]);
    if (ends && ends[k])
      clReleaseEvent(ends[k]);
  }
  double m = ok ? median(ms, reps) : -1;
  free(marks);
  free(ends);
  free(ms);
  return m;
}

/* The current configuration on a small problem against the float64
 * reference: 1 if right. */
static int verify_current(dcnv4_context *ctx, const task *tk) {
  double tol = tolerance_for(tk->dtype);
  rng r = {4321};
  if (is_fda(tk->op)) {
    shape small = {1, 9, 11, tk->shapes[0].c};
    dcnv4_fda_params p;
    make_fda_params(&small, tk->gc, tk->dtype, &p);
    p.queries = 37;
    fda_problem pr;
    fda_problem_init(&pr, &p, &r, 0.0);
    fda_errors e;
    int rc = fda_problem_run(ctx, &pr, is_backward(tk->op), &e);
    fda_problem_free(&pr);
    return rc == 0 && e.output <= tol &&
           (!is_backward(tk->op) ||
            (e.grad_value <= tol && e.grad_sampling <= tol));
  }
  shape small = {1, 9, 11, tk->shapes[0].c};
  dcnv4_params p;
  make_dcnv4_params(&small, tk->gc, tk->dtype, &p);
  dcnv4_problem pr;
  problem_init(&pr, &p, &r, 0.0);
  dcnv4_errors e;
  int rc = problem_run(ctx, &pr, is_backward(tk->op), &e);
  problem_free(&pr);
  return rc == 0 && e.output <= tol &&
         (!is_backward(tk->op) ||
          (e.grad_input <= tol && e.grad_offset_mask <= tol));
}

/* Score of the context's current configuration: mean over shapes of
 * time / default time (INFINITY if rejected). `first` measures the
 * default itself. */
static double evaluate(dcnv4_context *ctx, task *tk, int reps, int first,
                       double *total_ms) {
  uint64_t fallbacks = dcnv4_context_tuning_fallbacks(ctx);
  if (!verify_current(ctx, tk) ||
      dcnv4_context_tuning_fallbacks(ctx) != fallbacks)
    return INFINITY;
  double score = 0, total = 0;
  for (int i = 0; i < tk->nshapes; i++) {
    double ms = time_shape(ctx, tk, i, reps);
    if (ms <= 0 || dcnv4_context_tuning_fallbacks(ctx) != fallbacks)
      return INFINITY;
    if (first)
      tk->base_ms[i] = ms;
    score += ms / tk->base_ms[i];
    total += ms;
  }
  *total_ms = total;
  return score / tk->nshapes;
}

/* Coordinate search from the default until no parameter improves or the
 * deadline passes. Returns 0, or -1 if the default itself fails. */
static int run_task(dcnv4_context *ctx, task *tk, double deadline, int reps,
                    const search_limits *lim, int verbose) {
  const int op = tk->op;
  char text[512];
  dcnv4_context_set_tuning(ctx, NULL);
  if (dcnv4_context_get_tuning(ctx, kernel_of_op[op], tk->dtype, tk->gc, text,
                               sizeof text, NULL) != DCNV4_SUCCESS ||
      parse_config(text, &tk->best, tk->takes) != 0)
    return -1;
  for (int i = 0; i < tk->nshapes; i++)
    if (!prepare_tensors(ctx, tk, i)) {
      fprintf(stderr, "dcnv4-tune: cannot allocate the tensors of a shape\n");
      return -1;
    }
  double total;
  tk->best_score = evaluate(ctx, tk, reps, 1, &total);
  if (!isfinite(tk->best_score)) {
    fprintf(stderr,
            "dcnv4-tune: %s %s gc %d: the built-in default fails its "
            "check: %s\n",
            op_names[op], dcnv4_dtype_name(tk->dtype), tk->gc,
            dcnv4_context_last_error(ctx));
    return -1;
  }
  tk->best_ms = tk->default_ms_total = total;
  tk->tried = 1;
  config seen[256];
  int nseen = 0;
  seen[nseen++] = tk->best;
  for (int pass = 0; pass < 3; pass++) {
    int improved = 0;
    for (int p = 0; p < NPARAMS; p++) {
      if (!tk->takes[p])
        continue;
      long values[8];
      int nv = param_values(op, p, tk->gc, lim, values);
      config start = tk->best;
      for (int k = 0; k < nv; k++) {
        config c = start;
        c.v[p] = values[k];
        int dup = 0;
        for (int s = 0; s < nseen && !dup; s++)
          dup = !memcmp(&seen[s], &c, sizeof c);
        if (dup || nseen == 256)
          continue;
        if (now_s() > deadline)
          goto out;
        seen[nseen++] = c;
        char ov[512], desc[128];
        config_override(op, tk->takes, &c, ov, sizeof ov);
        config_text(tk->takes, &c, desc, sizeof desc);
        if (dcnv4_context_set_tuning(ctx, ov) != DCNV4_SUCCESS)
          continue;
        double score = evaluate(ctx, tk, reps, 0, &total);
        tk->tried++;
        if (!isfinite(score))
          tk->rejected++;
        if (verbose && isfinite(score))
          printf("    %-44s %.3f ms total, %.3f of default\n", desc, total,
                 score);
        else if (verbose)
          printf("    %-44s rejected (does not build or wrong)\n", desc);
        if (score < tk->best_score * 0.98) {
          tk->best_score = score;
          tk->best = c;
          tk->best_ms = total;
          improved = 1;
        }
      }
    }
    if (!improved)
      break;
  }
out:
  dcnv4_context_set_tuning(ctx, NULL);
  tk->done = 1;
  return 0;
}

/* ------------------------------------------------------------------ GEMM */

typedef struct gemm_shape {
  size_t m, n, k;
} gemm_shape;

#define XGEMM_PARAMS 16
static const char *const xgemm_names[XGEMM_PARAMS] = {
    "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
    "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN"};
/* MWG NWG KWG MDIMC NDIMC MDIMA NDIMB KWI VWM VWN STRM STRN SA SB */
static const int xgemm_sets[][14] = {
    {64, 64, 16, 16, 16, 16, 16, 2, 4, 4, 0, 0, 1, 1},
    {64, 64, 32, 16, 16, 16, 16, 2, 4, 4, 0, 0, 1, 1},
    {128, 128, 16, 16, 16, 16, 16, 2, 4, 4, 0, 0, 1, 1},
    {128, 128, 32, 16, 16, 16, 16, 2, 4, 4, 0, 0, 1, 1},
    {128, 128, 16, 16, 16, 16, 16, 2, 8, 8, 0, 0, 1, 1},
    {128, 128, 32, 16, 16, 16, 16, 2, 8, 8, 0, 0, 1, 1},
    {128, 128, 16, 16, 16, 16, 16, 2, 4, 4, 1, 1, 1, 1},
    {128, 128, 32, 16, 16, 16, 16, 2, 4, 4, 1, 1, 1, 1},
    {128, 128, 32, 16, 16, 16, 16, 4, 8, 8, 1, 1, 1, 1},
    {128, 128, 16, 16, 16, 32, 32, 2, 4, 4, 0, 0, 1, 1},
    {128, 128, 32, 32, 8, 32, 8, 2, 4, 4, 0, 0, 1, 1},
    {128, 128, 16, 8, 8, 8, 8, 2, 4, 4, 0, 0, 1, 1},
    {128, 64, 16, 16, 16, 16, 16, 2, 4, 4, 0, 0, 1, 1},
    {64, 128, 16, 16, 16, 16, 16, 2, 4, 4, 0, 0, 1, 1},
    {128, 64, 32, 16, 8, 16, 8, 2, 4, 4, 0, 0, 1, 1},
    {64, 128, 32, 8, 16, 8, 16, 2, 4, 4, 0, 0, 1, 1},
    {64, 64, 16, 8, 16, 8, 16, 2, 4, 2, 0, 0, 1, 1},
    {64, 64, 16, 8, 8, 8, 8, 2, 4, 4, 0, 0, 1, 1},
    {64, 64, 32, 8, 8, 8, 8, 2, 2, 2, 0, 0, 1, 1},
    {64, 64, 16, 16, 16, 16, 16, 1, 2, 2, 0, 0, 1, 1},
    {64, 64, 16, 16, 16, 16, 16, 2, 4, 4, 0, 0, 0, 0},
    {64, 64, 8, 8, 8, 8, 8, 1, 4, 4, 0, 0, 0, 0},
    {32, 32, 16, 8, 8, 8, 8, 2, 2, 2, 0, 0, 1, 1},
    {32, 32, 16, 16, 16, 16, 16, 2, 1, 1, 0, 0, 1, 1},
    {32, 64, 16, 8, 8, 8, 8, 2, 1, 2, 0, 0, 0, 0},
    {16, 16, 16, 8, 8, 8, 8, 1, 1, 1, 0, 0, 1, 1},
};

#define XDIRECT_PARAMS 10
static const char *const xdirect_names[XDIRECT_PARAMS] = {
    "KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD",
    "PADA", "PADB",   "VWMD",   "VWND",   "WGD"};
/* WGD MDIMCD NDIMCD MDIMAD NDIMBD KWID VWMD VWND PADA PADB */
static const int xdirect_sets[][10] = {
    {32, 8, 8, 8, 8, 2, 1, 1, 1, 1},     {32, 8, 8, 8, 8, 2, 2, 2, 1, 1},
    {32, 16, 16, 16, 16, 2, 2, 2, 1, 1}, {64, 16, 16, 16, 16, 2, 4, 4, 1, 1},
    {16, 8, 8, 8, 8, 1, 1, 1, 1, 1},     {64, 8, 8, 8, 8, 2, 4, 4, 1, 1},
    {32, 16, 16, 16, 16, 2, 1, 1, 0, 0}, {16, 16, 16, 16, 16, 1, 1, 1, 1, 1},
};

static int multiple(long x, long y) { return y > 0 && x % y == 0; }

/* CLBlast's Xgemm tuner constraints plus the device's limits. Fills
 * `values` in xgemm_names order. */
static int xgemm_valid(const int *s, size_t max_wg, cl_ulong local_bytes,
                       size_t *values) {
  long MWG = s[0], NWG = s[1], KWG = s[2], MDIMC = s[3], NDIMC = s[4],
       MDIMA = s[5], NDIMB = s[6], KWI = s[7], VWM = s[8], VWN = s[9],
       STRM = s[10], STRN = s[11], SA = s[12], SB = s[13];
  if (!multiple(KWG, KWI) || !multiple(MWG, MDIMC * VWM) ||
      !multiple(NWG, NDIMC * VWN) || !multiple(MWG, MDIMA * VWM) ||
      !multiple(NWG, NDIMB * VWN) || !multiple(KWG, MDIMC * NDIMC / MDIMA) ||
      !multiple(KWG, MDIMC * NDIMC / NDIMB) ||
      (size_t)(MDIMC * NDIMC) > max_wg ||
      (cl_ulong)(4 * (SA * KWG * MWG + SB * KWG * NWG)) > local_bytes)
    return 0;
  const long v[XGEMM_PARAMS] = {0,     1,   KWG, KWI, MDIMA, MDIMC, MWG, NDIMB,
                                NDIMC, NWG, SA,  SB,  STRM,  STRN,  VWM, VWN};
  for (int i = 0; i < XGEMM_PARAMS; i++)
    values[i] = (size_t)v[i];
  return 1;
}

static int xdirect_valid(const int *s, size_t max_wg, size_t *values) {
  long WGD = s[0], MDIMCD = s[1], NDIMCD = s[2], MDIMAD = s[3], NDIMBD = s[4],
       KWID = s[5], VWMD = s[6], VWND = s[7], PADA = s[8], PADB = s[9];
  if (!multiple(WGD, KWID) || !multiple(WGD, MDIMCD * VWMD) ||
      !multiple(WGD, NDIMCD * VWND) || !multiple(WGD, MDIMAD * VWMD) ||
      !multiple(WGD, NDIMBD * VWND) ||
      !multiple(WGD, MDIMCD * NDIMCD / MDIMAD) ||
      !multiple(WGD, MDIMCD * NDIMCD / NDIMBD) ||
      (size_t)(MDIMCD * NDIMCD) > max_wg)
    return 0;
  const long v[XDIRECT_PARAMS] = {KWID, MDIMAD, MDIMCD, NDIMBD, NDIMCD,
                                  PADA, PADB,   VWMD,   VWND,   WGD};
  for (int i = 0; i < XDIRECT_PARAMS; i++)
    values[i] = (size_t)v[i];
  return 1;
}

typedef struct gemm_data {
  cl_mem a, b, c, bias;
  float *ha, *hb, *hbias;
  gemm_shape s;
  int with_bias; /* verify_gemm adds hbias */
} gemm_data;

/* One GEMM of `g` on the context's queue; *end completes with it. */
typedef int (*gemm_launch)(dcnv4_context *ctx, gemm_data *g, cl_event *end);

/* Median ms of `reps` launches after 2 warm-up ones, or -1 if one fails. */
static double time_gemm_launches(dcnv4_context *ctx, gemm_data *g, int reps,
                                 gemm_launch launch) {
  const int warm = 2, total = reps + warm;
  double *ms = calloc((size_t)reps, sizeof *ms);
  int ok = ms != NULL;
  for (int k = 0; k < total && ok; k++) {
    cl_event mark = enqueue_marker(ctx), end = NULL;
    ok = mark && launch(ctx, g, &end) && end && clWaitForEvents(1, &end) == 0;
    if (ok && k >= warm)
      ms[k - warm] = span_ms(mark, end);
    if (mark)
      clReleaseEvent(mark);
    if (end)
      clReleaseEvent(end);
  }
  double m = ok ? median(ms, reps) : -1;
  free(ms);
  return m;
}

/* C = A B^T with CLBlast (row-major, as src/ops/linear/linear.c). */
static int clblast_gemm(dcnv4_context *ctx, gemm_data *g, cl_event *end) {
  cl_command_queue q = dcnv4_context_queue(ctx);
  return CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                      CLBlastTransposeYes, g->s.m, g->s.n, g->s.k, 1.0f, g->a,
                      0, g->s.k, g->b, 0, g->s.k, 0.0f, g->c, 0, g->s.n, &q,
                      end) == CLBlastSuccess;
}

/* CLBlast's GEMM: median ms of `reps`, or -1. */
static double time_gemm(dcnv4_context *ctx, gemm_data *g, int reps) {
  return time_gemm_launches(ctx, g, reps, clblast_gemm);
}

/* The last GEMM's C against float64 on up to 64 sampled rows. */
static int verify_gemm(dcnv4_context *ctx, gemm_data *g) {
  const size_t rows = g->s.m < 64 ? g->s.m : 64;
  float *row = malloc(sizeof *row * g->s.n);
  double *got = malloc(sizeof *got * rows * g->s.n);
  double *ref = malloc(sizeof *ref * rows * g->s.n);
  int ok = row && got && ref;
  for (size_t r = 0; ok && r < rows; r++) {
    size_t i = rows == g->s.m ? r : (r * 7919u) % g->s.m;
    ok = clEnqueueReadBuffer(dcnv4_context_queue(ctx), g->c, CL_TRUE,
                             sizeof(float) * i * g->s.n, sizeof(float) * g->s.n,
                             row, 0, NULL, NULL) == CL_SUCCESS;
    for (size_t j = 0; ok && j < g->s.n; j++) {
      double acc = g->with_bias ? (double)g->hbias[j] : 0.0;
      for (size_t k = 0; k < g->s.k; k++)
        acc += (double)g->ha[i * g->s.k + k] * (double)g->hb[j * g->s.k + k];
      ref[r * g->s.n + j] = acc;
      got[r * g->s.n + j] = row[j];
    }
  }
  ok = ok && rel_l2(got, ref, rows * g->s.n) <= TOL_FP32;
  free(row);
  free(got);
  free(ref);
  return ok;
}

/* Mean over shapes of time / default time of CLBlast's current parameters,
 * INFINITY if a GEMM fails or is wrong. */
static double gemm_score(dcnv4_context *ctx, gemm_data *g, int n,
                         const double *base, double *out_ms, int reps) {
  double score = 0;
  for (int i = 0; i < n; i++) {
    const float nan_pattern = NAN;
    clEnqueueFillBuffer(dcnv4_context_queue(ctx), g[i].c, &nan_pattern,
                        sizeof nan_pattern, 0,
                        sizeof(float) * g[i].s.m * g[i].s.n, 0, NULL, NULL);
    double ms = time_gemm(ctx, &g[i], reps);
    if (ms <= 0 || !verify_gemm(ctx, &g[i]))
      return INFINITY;
    out_ms[i] = ms;
    score += base ? ms / base[i] : 1.0;
  }
  return score / n;
}

typedef struct gemm_result {
  const char *kernel;
  int found;
  size_t values[XGEMM_PARAMS];
  const char *const *names;
  int count;
  double score, ms_total, default_ms_total;
  int tried, rejected;
} gemm_result;

static void search_gemm_family(dcnv4_context *ctx, gemm_data *g, int n,
                               const double *base, int reps, double deadline,
                               int direct, size_t max_wg, cl_ulong local,
                               gemm_result *res, int verbose) {
  cl_device_id dev = dcnv4_context_device(ctx);
  const int count = direct ? (int)(sizeof xdirect_sets / sizeof xdirect_sets[0])
                           : (int)(sizeof xgemm_sets / sizeof xgemm_sets[0]);
  res->kernel = direct ? "XgemmDirect" : "Xgemm";
  res->names = direct ? xdirect_names : xgemm_names;
  res->count = direct ? XDIRECT_PARAMS : XGEMM_PARAMS;
  res->score = 1.0;
  double *ms = calloc((size_t)n, sizeof *ms);
  for (int c = 0; c < count && ms; c++) {
    size_t values[XGEMM_PARAMS];
    int valid = direct ? xdirect_valid(xdirect_sets[c], max_wg, values)
                       : xgemm_valid(xgemm_sets[c], max_wg, local, values);
    if (!valid)
      continue;
    if (now_s() > deadline)
      break;
    CLBlastStatusCode s = CLBlastOverrideParameters(
        dev, res->kernel, CLBlastPrecisionSingle, (size_t)res->count,
        (const char **)res->names, values);
    res->tried++;
    if (s != CLBlastSuccess) {
      res->rejected++;
      if (verbose)
        printf("    %s set %d refused by CLBlast (%d)\n", res->kernel, c,
               (int)s);
      continue;
    }
    double total = 0, score = gemm_score(ctx, g, n, base, ms, reps);
    for (int i = 0; i < n; i++)
      total += ms[i];
    if (!isfinite(score))
      res->rejected++;
    if (verbose)
      printf("    %s set %d: %s %.3f\n", res->kernel, c,
             isfinite(score) ? "score" : "rejected", score);
    if (score < res->score * 0.98) {
      res->score = score;
      res->found = 1;
      res->ms_total = total;
      memcpy(res->values, values, sizeof values);
    }
  }
  free(ms);
  /* Leave CLBlast on the winner (or its defaults) for the next family. */
  CLBlastClearCache();
}

/* linear.cl tile sets: tilem tilen tilek vec local (rows per work-item
 * follow; the library rejects, as a fallback, what the device cannot run). */
static const int linear_sets[][5] = {
    {256, 128, 8, 8, 256}, {128, 128, 16, 8, 256}, {128, 128, 8, 8, 256},
    {128, 64, 16, 4, 256}, {128, 64, 16, 8, 128},  {64, 128, 16, 8, 128},
    {256, 64, 16, 4, 256}, {128, 128, 16, 8, 128}, {64, 64, 16, 4, 256},
    {128, 32, 16, 4, 128}, {64, 64, 16, 4, 64},    {64, 32, 16, 4, 64},
    {32, 32, 16, 4, 16},
};

/* dcnv4_linear_forward with a bias under the context's tuning. */
static int library_linear(dcnv4_context *ctx, gemm_data *g, cl_event *end) {
  return dcnv4_linear_forward(ctx, g->s.m, (int32_t)g->s.n, (int32_t)g->s.k,
                              g->a, g->b, g->bias, g->c, 0, NULL,
                              end) == DCNV4_SUCCESS;
}

/* The library's linear: median ms of `reps`, or -1. */
static double time_linear(dcnv4_context *ctx, gemm_data *g, int reps) {
  return time_gemm_launches(ctx, g, reps, library_linear);
}

/* Mean over shapes of time / base time under `tuning` (checked against
 * float64 with the bias), INFINITY if a GEMM fails, is wrong or the
 * configuration falls back; total ms in *total. */
static double linear_score(dcnv4_context *ctx, gemm_data *g, int n,
                           const char *tuning, const double *base,
                           double *out_ms, int reps, double *total) {
  uint64_t fallbacks = dcnv4_context_tuning_fallbacks(ctx);
  double score = 0;
  *total = 0;
  if (dcnv4_context_set_tuning(ctx, tuning) != DCNV4_SUCCESS)
    return INFINITY;
  for (int i = 0; i < n; i++) {
    const float nan_pattern = NAN;
    clEnqueueFillBuffer(dcnv4_context_queue(ctx), g[i].c, &nan_pattern,
                        sizeof nan_pattern, 0,
                        sizeof(float) * g[i].s.m * g[i].s.n, 0, NULL, NULL);
    double ms = time_linear(ctx, &g[i], reps);
    g[i].with_bias = 1;
    int right = ms > 0 && verify_gemm(ctx, &g[i]);
    g[i].with_bias = 0;
    if (!right || dcnv4_context_tuning_fallbacks(ctx) != fallbacks)
      return INFINITY;
    out_ms[i] = ms;
    *total += ms;
    score += base ? ms / base[i] : 1.0;
  }
  return score / n;
}

typedef struct linear_result {
  int found;   /* a candidate beat the built-in default by 2 % */
  int error;   /* the built-in default failed its check */
  int backend; /* 0 CLBlast, 1 linear.cl */
  int set;     /* index in linear_sets when backend 1 */
  double ms_total, default_ms_total, clblast_ms_total;
  int tried, rejected;
  /* linear.cl's few-tile parameters, where a set beat the tiles alone */
  int split_found, short_m, ksplit, fill, kmin;
} linear_result;

static void linear_tuning_text(int set, char *out, size_t size) {
  const int *t = linear_sets[set];
  snprintf(out, size,
           "linear.backend=1;linear.tilem=%d;linear.tilen=%d;linear.tilek=%d;"
           "linear.vec=%d;linear.local=%d;linear.unroll=1",
           t[0], t[1], t[2], t[3], t[4]);
}

/* The few-tile parameters on top of the tiles chosen (res; the built-in
 * ones where none won): a coordinate search, shortm then ksplit then fill
 * then kmin, each value kept where it beats the best score so far by 2 %.
 * `base`: the built-in default's times; `best` the score to beat. */
static void search_split(dcnv4_context *ctx, gemm_data *g, int n, int reps,
                         double deadline, const double *base, double best,
                         linear_result *res, int verbose) {
  /* -1 ends a list (shortm 0: no short tile) */
  static const int values[4][6] = {{0, 32, 64, 128, -1},
                                   {1, 4, 8, 16, 32, -1},
                                   {1, 2, 4, 8, -1},
                                   {32, 64, 128, 256, -1}};
  static const char *const names[4] = {"shortm", "ksplit", "fill", "kmin"};
  char tiles[200] = "";
  if (res->found)
    linear_tuning_text(res->set, tiles, sizeof tiles);
  /* the starting point: the device's built-in values */
  char from[200];
  int cur[4] = {0, 1, 2, 64};
  if (dcnv4_context_set_tuning(ctx, tiles) != DCNV4_SUCCESS ||
      dcnv4_context_get_tuning(ctx, "linear", DCNV4_FLOAT32, 0, from,
                               sizeof from, NULL) != DCNV4_SUCCESS ||
      !strstr(from, "backend=1"))
    return; /* CLBlast: nothing to split */
  for (int p = 0; p < 4; p++) {
    char key[16];
    snprintf(key, sizeof key, "%s=", names[p]);
    const char *at = strstr(from, key);
    if (at)
      cur[p] = atoi(at + strlen(key));
  }
  /* A short tile not below the tiles' rows is none (shortm 0). */
  const char *tm = strstr(from, "tilem=");
  const int tile_m = tm ? atoi(tm + strlen("tilem=")) : 0;
  if (cur[0] >= tile_m)
    cur[0] = 0;
  double *ms = calloc((size_t)n, sizeof *ms);
  int timed = 0; /* the first candidate whatever the time left */
  for (int p = 0; p < 4 && ms; p++)
    for (int v = 0; values[p][v] >= 0; v++) {
      if (p > 1 && cur[1] < 2)
        break; /* unsplit: fill and kmin do nothing */
      if ((timed && now_s() > deadline) || values[p][v] == cur[p] ||
          (p == 0 && values[p][v] >= tile_m))
        continue;
      timed++;
      int trial[4] = {cur[0], cur[1], cur[2], cur[3]};
      trial[p] = values[p][v];
      char tuning[360];
      snprintf(tuning, sizeof tuning,
               "%s%slinear.shortm=%d;linear.ksplit=%d;linear.fill=%d;"
               "linear.kmin=%d",
               tiles, *tiles ? ";" : "", trial[0], trial[1], trial[2],
               trial[3]);
      double total = 0;
      double score = linear_score(ctx, g, n, tuning, base, ms, reps, &total);
      res->tried++;
      if (!isfinite(score))
        res->rejected++;
      if (verbose)
        printf("    linear %s: %s %.3f (%.3f ms)\n", tuning,
               isfinite(score) ? "score" : "rejected", score, total);
      if (score < best * 0.98) {
        best = score;
        memcpy(cur, trial, sizeof cur);
        res->split_found = 1;
        res->short_m = trial[0];
        res->ksplit = trial[1];
        res->fill = trial[2];
        res->kmin = trial[3];
        res->ms_total = total;
      }
    }
  free(ms);
}

/* CLBlast (with the parameter sets now applied) against every tile set of
 * linear.cl, each relative to the library's built-in choice. */
static void search_linear(dcnv4_context *ctx, gemm_data *g, int n, int reps,
                          double deadline, linear_result *res, int verbose) {
  double *base = calloc((size_t)n, sizeof *base);
  double *ms = calloc((size_t)n, sizeof *ms);
  memset(res, 0, sizeof *res);
  double total = 0;
  if (!base || !ms ||
      !isfinite(linear_score(ctx, g, n, "", NULL, base, reps, &total))) {
    fprintf(stderr, "dcnv4-tune: the library's default GEMM fails its "
                    "check\n");
    res->error = 1;
    goto out;
  }
  res->default_ms_total = total;
  /* Scores are relative to the built-in default: a candidate must beat it
   * by 2 %, as for the kernels (a search cut short by the budget keeps the
   * default rather than the best of what it tried). */
  double best = 0.98;
  double score =
      linear_score(ctx, g, n, "linear.backend=0", base, ms, reps, &total);
  res->tried++;
  res->clblast_ms_total = total;
  if (!isfinite(score))
    res->rejected++;
  else if (score < best) {
    best = score;
    res->found = 1;
    res->backend = 0;
    res->ms_total = total;
  }
  if (verbose)
    printf("    CLBlast + bias pass: score %.3f (%.3f ms)\n", score, total);
  /* A third of the time left is the few-tile search's: on a slow device
   * the tile sets alone would take it all. The first set whatever the
   * time left, as the few-tile search's first candidate. */
  const double left = deadline - now_s();
  const double tiles_deadline = now_s() + (left > 0 ? left * 2 / 3 : 0);
  for (int c = 0; c < (int)(sizeof linear_sets / sizeof linear_sets[0]); c++) {
    if (c > 0 && now_s() > tiles_deadline)
      break;
    char tuning[200];
    linear_tuning_text(c, tuning, sizeof tuning);
    score = linear_score(ctx, g, n, tuning, base, ms, reps, &total);
    res->tried++;
    if (!isfinite(score))
      res->rejected++;
    if (verbose)
      printf("    linear %dx%dx%d vec %d local %d: %s %.3f (%.3f ms)\n",
             linear_sets[c][0], linear_sets[c][1], linear_sets[c][2],
             linear_sets[c][3], linear_sets[c][4],
             isfinite(score) ? "score" : "rejected", score, total);
    if (score < best) {
      best = score;
      res->found = 1;
      res->backend = 1;
      res->set = c;
      res->ms_total = total;
    }
  }
  if (!res->found || res->backend)
    search_split(ctx, g, n, reps, deadline, base, res->found ? best : 1.0, res,
                 verbose);
out:
  dcnv4_context_set_tuning(ctx, NULL);
  free(base);
  free(ms);
}

/* ------------------------------------------------------------ the file */

static int make_parent_dirs(const char *path) {
  char *copy = strdup(path);
  if (!copy)
    return -1;
  for (char *p = copy + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
      free(copy);
      return -1;
    }
    *p = '/';
  }
  free(copy);
  return 0;
}

/* The existing file's root if it is a tuning file of this device. */
static cJSON *load_existing(const char *path, const dcnv4_device_info *dev) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *text = NULL;
  size_t size = 0, cap = 0, got;
  char buf[4096];
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
    if (size + got + 1 > cap) {
      cap = 2 * (size + got + 1);
      char *grown = realloc(text, cap);
      if (!grown)
        break;
      text = grown;
    }
    memcpy(text + size, buf, got);
    size += got;
  }
  fclose(f);
  if (!text)
    return NULL;
  text[size] = '\0';
  cJSON *root = cJSON_Parse(text);
  free(text);
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "device");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "name");
  const cJSON *vendor = cJSON_GetObjectItemCaseSensitive(d, "vendor");
  if (!cJSON_IsString(name) || !cJSON_IsString(vendor) ||
      strcmp(name->valuestring, dev->device_name) ||
      strcmp(vendor->valuestring, dev->vendor)) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

static cJSON *shape_list(const shape *s, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) {
    char t[64];
    snprintf(t, sizeof t, "%dx%dx%dx%d", s[i].n, s[i].h, s[i].w, s[i].c);
    cJSON_AddItemToArray(a, cJSON_CreateString(t));
  }
  return a;
}

static int write_file(const char *path, const dcnv4_device_info *dev,
                      task *tasks, int ntasks, const gemm_result *gemm,
                      int ngemm, int gemm_run, const linear_result *linear,
                      const mma_result *mma, int nmma, const shape *gshapes,
                      int ngshapes) {
  cJSON *old = load_existing(path, dev);
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "format", "dcnv4-tuning");
  cJSON_AddNumberToObject(root, "version", 1);
  cJSON *d = cJSON_AddObjectToObject(root, "device");
  cJSON_AddStringToObject(d, "name", dev->device_name);
  cJSON_AddStringToObject(d, "vendor", dev->vendor);
  cJSON_AddStringToObject(d, "driver", dev->driver_version);
  char when[64];
  time_t now = time(NULL);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  char by[64];
  snprintf(by, sizeof by, "dcnv4-tune %s", dcnv4_version_string());
  cJSON_AddStringToObject(root, "generated_by", by);
  cJSON_AddStringToObject(root, "created", when);
  cJSON *kernels = cJSON_AddArrayToObject(root, "kernels");
  /* Old entries not re-tuned now stay. */
  const cJSON *ok_old = cJSON_GetObjectItemCaseSensitive(old, "kernels");
  for (const cJSON *e = cJSON_IsArray(ok_old) ? ok_old->child : NULL; e;
       e = e->next) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "kernel");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(e, "group_channels");
    int replaced = linear && (linear->found || linear->split_found) &&
                   cJSON_IsString(k) && !strcmp(k->valuestring, "linear");
    for (int i = 0; i < nmma && !replaced; i++)
      for (int c = 0; c < 2 && !replaced; c++)
        replaced = mma[i].cls[c].found && cJSON_IsString(k) &&
                   cJSON_IsString(t) && cJSON_IsNumber(g) &&
                   !strcmp(k->valuestring, "linear_mma") &&
                   !strcmp(t->valuestring, dcnv4_dtype_name(mma[i].dtype)) &&
                   (int)g->valuedouble == mma[i].cls[c].group_channels;
    for (int i = 0; i < ntasks && !replaced; i++)
      replaced = tasks[i].done && cJSON_IsString(k) && cJSON_IsString(t) &&
                 cJSON_IsNumber(g) &&
                 !strcmp(k->valuestring, kernel_of_op[tasks[i].op]) &&
                 !strcmp(t->valuestring, dcnv4_dtype_name(tasks[i].dtype)) &&
                 (int)g->valuedouble == tasks[i].gc;
    if (!replaced)
      cJSON_AddItemToArray(kernels, cJSON_Duplicate(e, 1));
  }
  for (int i = 0; i < ntasks; i++) {
    const task *tk = &tasks[i];
    if (!tk->done)
      continue;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "kernel", kernel_of_op[tk->op]);
    cJSON_AddStringToObject(e, "dtype", dcnv4_dtype_name(tk->dtype));
    cJSON_AddNumberToObject(e, "group_channels", tk->gc);
    cJSON *p = cJSON_AddObjectToObject(e, "params");
    for (int k = 0; k < NPARAMS; k++)
      if (tk->takes[k])
        cJSON_AddNumberToObject(p, param_names[k], (double)tk->best.v[k]);
    cJSON_AddNumberToObject(e, "ms", tk->best_ms);
    cJSON_AddNumberToObject(e, "default_ms", tk->default_ms_total);
    cJSON_AddItemToObject(e, "shapes", shape_list(tk->shapes, tk->nshapes));
    cJSON_AddItemToArray(kernels, e);
  }
  if (linear && (linear->found || linear->split_found)) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "kernel", "linear");
    cJSON *p = cJSON_AddObjectToObject(e, "params");
    if (linear->found)
      cJSON_AddNumberToObject(p, "backend", linear->backend);
    if (linear->found && linear->backend) {
      const int *t = linear_sets[linear->set];
      cJSON_AddNumberToObject(p, "tilem", t[0]);
      cJSON_AddNumberToObject(p, "tilen", t[1]);
      cJSON_AddNumberToObject(p, "tilek", t[2]);
      cJSON_AddNumberToObject(p, "vec", t[3]);
      cJSON_AddNumberToObject(p, "local", t[4]);
      cJSON_AddNumberToObject(p, "unroll", 1);
    }
    if (linear->split_found) {
      cJSON_AddNumberToObject(p, "shortm", linear->short_m);
      cJSON_AddNumberToObject(p, "ksplit", linear->ksplit);
      cJSON_AddNumberToObject(p, "fill", linear->fill);
      cJSON_AddNumberToObject(p, "kmin", linear->kmin);
    }
    cJSON_AddNumberToObject(e, "ms", linear->ms_total);
    cJSON_AddNumberToObject(e, "default_ms", linear->default_ms_total);
    cJSON_AddItemToObject(e, "shapes", shape_list(gshapes, ngshapes));
    cJSON_AddItemToArray(kernels, e);
  }
  for (int i = 0; i < nmma; i++)
    for (int c = 0; c < 2; c++) {
      const mma_class_result *r = &mma[i].cls[c];
      if (!r->found)
        continue;
      cJSON *e = cJSON_CreateObject();
      cJSON_AddStringToObject(e, "kernel", "linear_mma");
      cJSON_AddStringToObject(e, "dtype", dcnv4_dtype_name(mma[i].dtype));
      cJSON_AddNumberToObject(e, "group_channels", r->group_channels);
      cJSON *p = cJSON_AddObjectToObject(e, "params");
      for (int k = 0; k < MMA_PARAMS; k++)
        cJSON_AddNumberToObject(p, mma_param_names[k], r->values[k]);
      cJSON_AddNumberToObject(e, "ms", r->ms_total);
      cJSON_AddNumberToObject(e, "default_ms", r->default_ms_total);
      cJSON_AddItemToObject(e, "shapes", shape_list(gshapes, ngshapes));
      cJSON_AddItemToArray(kernels, e);
    }
  cJSON *gemm_arr = cJSON_AddArrayToObject(root, "gemm");
  const cJSON *og = cJSON_GetObjectItemCaseSensitive(old, "gemm");
  for (const cJSON *e = !gemm_run && cJSON_IsArray(og) ? og->child : NULL; e;
       e = e->next)
    cJSON_AddItemToArray(gemm_arr, cJSON_Duplicate(e, 1));
  for (int i = 0; i < ngemm; i++) {
    const gemm_result *r = &gemm[i];
    if (!r->found)
      continue;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "kernel", r->kernel);
    cJSON_AddStringToObject(e, "precision", "float32");
    cJSON *p = cJSON_AddObjectToObject(e, "params");
    for (int k = 0; k < r->count; k++)
      cJSON_AddNumberToObject(p, r->names[k], (double)r->values[k]);
    cJSON_AddNumberToObject(e, "ms", r->ms_total);
    cJSON_AddNumberToObject(e, "default_ms", r->default_ms_total);
    cJSON_AddItemToObject(e, "shapes", shape_list(gshapes, ngshapes));
    cJSON_AddItemToArray(gemm_arr, e);
  }
  cJSON_Delete(old);
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  if (!text)
    return -1;
  char *tmp = malloc(strlen(path) + 32);
  int rc = -1;
  if (tmp && make_parent_dirs(path) == 0) {
    sprintf(tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f) {
      int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
      ok = fclose(f) == 0 && ok;
      if (ok && rename(tmp, path) == 0)
        rc = 0;
      else
        remove(tmp);
    }
  }
  free(tmp);
  cJSON_free(text);
  return rc;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  options o;
  if (parse_options(argc, argv, &o) != 0) {
    usage(stderr);
    return 2;
  }
  /* The search measures candidates against the built-in defaults, so
   * neither the user's override nor an older tuning file may apply. The
   * file's path is taken from a context first. */
  unsetenv("DCNV4_TUNING");
  dcnv4_context_options co;
  dcnv4_context_options_init(&co);
  co.device = o.device;
  co.enable_profiling = 1;
  char err[512] = "";
  co.error_buffer = err;
  co.error_buffer_size = sizeof err;
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(&co, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4-tune: no context: %s\n", err);
    return 1;
  }
  dcnv4_context_set_tuning_file_enabled(ctx, 0);
  CLBlastClearCache(); /* CLBlast's own defaults for the GEMM baseline */
  char path[4096] = "";
  if (o.out)
    snprintf(path, sizeof path, "%s", o.out);
  else
    dcnv4_context_tuning_file(ctx, path, sizeof path, NULL);
  dcnv4_device_info dev;
  dcnv4_context_device_info(ctx, &dev);
  cl_device_id device = dcnv4_context_device(ctx);
  size_t max_wg = 0;
  cl_ulong local_bytes = 0;
  clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg,
                  NULL);
  clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_bytes,
                  &local_bytes, NULL);
  search_limits lim = {max_wg, 0};
  char extensions[8192] = "";
  if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, sizeof extensions,
                      extensions, NULL) == CL_SUCCESS)
    lim.reg_caps = strstr(extensions, "cl_nv_compiler_options") != NULL;
  const int reps = o.reps ? o.reps : dev.is_gpu ? 20 : 5;

  /* The tasks. */
  task *tasks = calloc(4 * 3 * 8, sizeof *tasks);
  int ntasks = 0;
  for (int op = 0; op < 4 && tasks; op++) {
    if (!o.ops[op])
      continue;
    for (int t = 0; t < o.ndtypes; t++)
      for (int g = 0; g < o.ngcs; g++) {
        task *tk = &tasks[ntasks];
        memset(tk, 0, sizeof *tk);
        tk->op = op;
        tk->dtype = o.dtypes[t];
        tk->gc = o.gcs[g];
        char text[512];
        config def;
        if (dcnv4_context_get_tuning(ctx, kernel_of_op[op], tk->dtype, tk->gc,
                                     text, sizeof text,
                                     NULL) != DCNV4_SUCCESS ||
            parse_config(text, &def, tk->takes) != 0)
          continue;
        shape all[32];
        int n = run_shapes(&o, is_fda(op), dev.is_gpu, all);
        for (int i = 0; i < n; i++) {
          if (all[i].c % tk->gc)
            continue;
          int k = tk->nshapes;
          tk->shapes[k] = all[i];
          make_dcnv4_params(&all[i], tk->gc, tk->dtype, &tk->dp[k]);
          make_fda_params(&all[i], tk->gc, tk->dtype, &tk->fp[k]);
          tk->nshapes++;
        }
        if (tk->nshapes)
          ntasks++;
      }
  }
  /* GEMM shapes of the DCNv4 layer over the shapes and group_channels. */
  gemm_shape gshapes[64];
  shape gsrc[64];
  int ngemm = 0;
  if (o.ops[OP_GEMM]) {
    shape all[32];
    int n = run_shapes(&o, 0, dev.is_gpu, all);
    for (int i = 0; i < n; i++)
      for (int g = 0; g < o.ngcs; g++) {
        if (all[i].c % o.gcs[g])
          continue;
        size_t m = (size_t)all[i].n * (size_t)all[i].h * (size_t)all[i].w;
        size_t c = (size_t)all[i].c;
        size_t om = ((size_t)(all[i].c / o.gcs[g]) * 27 + 7) / 8 * 8;
        /* the layer's projections, then FlashInternImage's MLP (ratio 4) */
        gemm_shape cand[4] = {
            {m, c, c}, {m, om, c}, {m, 4 * c, c}, {m, c, 4 * c}};
        for (int k = 0; k < 4; k++) {
          int dup = 0;
          for (int j = 0; j < ngemm && !dup; j++)
            dup = gshapes[j].m == cand[k].m && gshapes[j].n == cand[k].n &&
                  gshapes[j].k == cand[k].k;
          if (!dup && ngemm < 64) {
            gsrc[ngemm] = all[i];
            gshapes[ngemm++] = cand[k];
          }
        }
      }
  }

  /* 16-bit dtypes whose GEMMs (linear_mma) are searched; `mma_tensor`:
   * the device's 16-bit GEMMs are linear_mma's tensor-core build. */
  const int mma_tensor = ngemm ? mma_is_default(ctx) : 0;
  dcnv4_dtype mma_dtypes[3];
  int nmma = 0;
  if (ngemm && (o.mma || mma_tensor))
    for (int t = 0; t < o.ndtypes; t++)
      if (o.dtypes[t] != DCNV4_FLOAT32)
        mma_dtypes[nmma++] = o.dtypes[t];

  printf("dcnv4-tune on %s (%s, driver %s)\n", dev.device_name,
         dev.platform_name, dev.driver_version);
  printf("output: %s\n", *path ? path : "(none: no cache folder; use --out)");
  printf("budget %.0f s, %d timed launches per measurement\n", o.budget, reps);
  for (int i = 0; i < ntasks; i++) {
    int space = 1;
    for (int p = 0; p < NPARAMS; p++)
      if (tasks[i].takes[p]) {
        long v[8];
        space *= param_values(tasks[i].op, p, tasks[i].gc, &lim, v);
      }
    printf("  %-15s %-8s gc %-3d %d shapes, %d configurations in the space\n",
           op_names[tasks[i].op], dcnv4_dtype_name(tasks[i].dtype), tasks[i].gc,
           tasks[i].nshapes, space);
  }
  if (o.ops[OP_GEMM])
    printf("  gemm            float32         %d GEMM shapes, %zu Xgemm + %zu "
           "XgemmDirect candidate sets, %zu linear.cl tile sets\n",
           ngemm, sizeof xgemm_sets / sizeof xgemm_sets[0],
           sizeof xdirect_sets / sizeof xdirect_sets[0],
           sizeof linear_sets / sizeof linear_sets[0]);
  for (int t = 0; t < nmma; t++)
    printf("  gemm            %-8s        %d GEMM shapes, linear_mma (%s)\n",
           dcnv4_dtype_name(mma_dtypes[t]), ngemm,
           mma_tensor ? "tensor cores" : "portable fragments");
  if (o.dry_run) {
    printf("dry run: nothing measured or written\n");
    free(tasks);
    dcnv4_context_destroy(ctx);
    return 0;
  }
  if (!*path) {
    fprintf(stderr, "dcnv4-tune: no output path (the disk cache is off); "
                    "give --out\n");
    free(tasks);
    dcnv4_context_destroy(ctx);
    return 1;
  }

  int failures = 0;
  const double t0 = now_s();
  const int jobs = ntasks + (ngemm ? 1 : 0);
  for (int i = 0; i < ntasks; i++) {
    task *tk = &tasks[i];
    double left = o.budget - (now_s() - t0);
    double deadline = now_s() + (left > 0 ? left / (jobs - i) : 0);
    printf("%s %s gc %d ...\n", op_names[tk->op], dcnv4_dtype_name(tk->dtype),
           tk->gc);
    fflush(stdout);
    if (run_task(ctx, tk, deadline, reps, &lim, o.verbose) != 0) {
      failures++;
      tk->done = 0;
    } else {
      char desc[128];
      config_text(tk->takes, &tk->best, desc, sizeof desc);
      printf("  best: %s  (%.3f ms vs %.3f ms default over %d shapes, %d "
             "tried, %d rejected)\n",
             desc, tk->best_ms, tk->default_ms_total, tk->nshapes, tk->tried,
             tk->rejected);
    }
    for (int k = 0; k < tk->nshapes; k++)
      release_tensors(&tk->t[k]);
    dcnv4_context_release_scratch(ctx);
  }

  gemm_result gres[2];
  memset(gres, 0, sizeof gres);
  linear_result lres;
  memset(&lres, 0, sizeof lres);
  int gemm_done = 0;
  if (ngemm) {
    printf("gemm float32 (%d shapes) ...\n", ngemm);
    fflush(stdout);
    gemm_data *g = calloc((size_t)ngemm, sizeof *g);
    double *base = calloc((size_t)ngemm, sizeof *base);
    int ok = g && base;
    rng r = {2024};
    for (int i = 0; ok && i < ngemm; i++) {
      g[i].s = gshapes[i];
      size_t na = g[i].s.m * g[i].s.k, nb = g[i].s.n * g[i].s.k;
      g[i].ha = malloc(sizeof(float) * na);
      g[i].hb = malloc(sizeof(float) * nb);
      ok = g[i].ha && g[i].hb;
      for (size_t k = 0; ok && k < na; k++)
        g[i].ha[k] = (float)rng_uniform(&r, -1, 1);
      for (size_t k = 0; ok && k < nb; k++)
        g[i].hb[k] = (float)rng_uniform(&r, -1, 1);
      g[i].a = ok ? upload_values(ctx, g[i].ha, na, DCNV4_FLOAT32) : NULL;
      g[i].b = ok ? upload_values(ctx, g[i].hb, nb, DCNV4_FLOAT32) : NULL;
      g[i].c =
          ok ? poisoned_buffer(ctx, g[i].s.m * g[i].s.n, DCNV4_FLOAT32) : NULL;
      g[i].hbias = ok ? malloc(sizeof(float) * g[i].s.n) : NULL;
      ok = ok && g[i].hbias;
      for (size_t k = 0; ok && k < g[i].s.n; k++)
        g[i].hbias[k] = (float)rng_uniform(&r, -1, 1);
      g[i].bias =
          ok ? upload_values(ctx, g[i].hbias, g[i].s.n, DCNV4_FLOAT32) : NULL;
      ok = ok && g[i].a && g[i].b && g[i].c && g[i].bias;
    }
    double base_total = 0;
    if (ok && isfinite(gemm_score(ctx, g, ngemm, NULL, base, reps))) {
      for (int i = 0; i < ngemm; i++)
        base_total += base[i];
      double left = o.budget - (now_s() - t0);
      /* the 16-bit searches after this one take their shares */
      double deadline = now_s() + (left > 0 ? left / (1 + nmma) : 0);
      /* Xgemm (large GEMMs) first, then XgemmDirect with the Xgemm winner
       * in place (CLBlast picks the direct kernel for small ones), then
       * CLBlast so tuned against linear.cl. */
      const double span = deadline - now_s();
      search_gemm_family(ctx, g, ngemm, base, reps, now_s() + span / 2, 0,
                         max_wg, local_bytes, &gres[0], o.verbose);
      if (gres[0].found)
        CLBlastOverrideParameters(device, "Xgemm", CLBlastPrecisionSingle,
                                  XGEMM_PARAMS, (const char **)xgemm_names,
                                  gres[0].values);
      search_gemm_family(ctx, g, ngemm, base, reps, now_s() + span / 4, 1,
                         max_wg, local_bytes, &gres[1], o.verbose);
      if (gres[1].found)
        CLBlastOverrideParameters(device, "XgemmDirect", CLBlastPrecisionSingle,
                                  XDIRECT_PARAMS, (const char **)xdirect_names,
                                  gres[1].values);
      search_linear(ctx, g, ngemm, reps, deadline, &lres, o.verbose);
      gemm_done = 1;
      for (int k = 0; k < 2; k++) {
        gres[k].default_ms_total = base_total;
        printf("  %-11s %s (%d sets tried, %d rejected)", gres[k].kernel,
               gres[k].found ? "tuned" : "CLBlast's default kept",
               gres[k].tried, gres[k].rejected);
        if (gres[k].found)
          printf(": %.3f ms vs %.3f ms default", gres[k].ms_total, base_total);
        printf("\n");
      }
      if (lres.found && lres.backend)
        printf("  linear      linear.cl %dx%dx%d vec %d local %d: %.3f ms "
               "with bias (CLBlast + bias pass %.3f ms, built-in default "
               "%.3f ms; %d tried, %d rejected)\n",
               linear_sets[lres.set][0], linear_sets[lres.set][1],
               linear_sets[lres.set][2], linear_sets[lres.set][3],
               linear_sets[lres.set][4], lres.ms_total, lres.clblast_ms_total,
               lres.default_ms_total, lres.tried, lres.rejected);
      else if (lres.found)
        printf("  linear      CLBlast: %.3f ms with its bias pass (built-in "
               "default %.3f ms; %d tried, %d rejected)\n",
               lres.ms_total, lres.default_ms_total, lres.tried, lres.rejected);
      else if (lres.error)
        failures++;
      else if (!lres.split_found)
        printf("  linear      the built-in default kept: %.3f ms (%d tried, "
               "%d rejected)\n",
               lres.default_ms_total, lres.tried, lres.rejected);
      if (lres.split_found)
        printf("  linear      few-tile GEMMs: shortm %d, ksplit %d, fill %d, "
               "kmin %d: %.3f ms (built-in default %.3f ms)\n",
               lres.short_m, lres.ksplit, lres.fill, lres.kmin, lres.ms_total,
               lres.default_ms_total);
    } else {
      fprintf(stderr, "dcnv4-tune: CLBlast's default SGEMM fails its check\n");
      failures++;
    }
    for (int i = 0; g && i < ngemm; i++) {
      host_release(g[i].a);
      host_release(g[i].b);
      host_release(g[i].c);
      host_release(g[i].bias);
      free(g[i].ha);
      free(g[i].hb);
      free(g[i].hbias);
    }
    free(g);
    free(base);
  }

  mma_result mres[3];
  memset(mres, 0, sizeof mres);
  size_t(*mshapes)[3] = calloc((size_t)ngemm + 1, sizeof *mshapes);
  for (int i = 0; mshapes && i < ngemm; i++) {
    mshapes[i][0] = gshapes[i].m;
    mshapes[i][1] = gshapes[i].n;
    mshapes[i][2] = gshapes[i].k;
  }
  for (int t = 0; t < nmma && mshapes; t++) {
    printf("gemm %s: linear_mma (%d shapes) ...\n",
           dcnv4_dtype_name(mma_dtypes[t]), ngemm);
    fflush(stdout);
    double left = o.budget - (now_s() - t0);
    double deadline = now_s() + (left > 0 ? left / (nmma - t) : 0);
    mma_search(ctx, mma_dtypes[t], (const size_t(*)[3])mshapes, ngemm, reps,
               deadline, now_s, o.verbose, &mres[t]);
    failures += mres[t].error;
    for (int c = 0; c < 2; c++) {
      const mma_class_result *r = &mres[t].cls[c];
      if (!r->shapes)
        continue;
      printf("  linear_mma  %s, %s 64 columns: ",
             dcnv4_dtype_name(mres[t].dtype), c ? "at most" : "more than");
      if (r->found) {
        for (int k = 0; k < MMA_PARAMS; k++)
          printf("%s%s=%d", k ? ";" : "", mma_param_names[k], r->values[k]);
        printf(": %.3f ms vs %.3f ms built-in", r->ms_total,
               r->default_ms_total);
      } else
        printf("the built-in default kept: %.3f ms", r->default_ms_total);
      printf(" (%d tried, %d rejected)\n", r->tried, r->rejected);
    }
    dcnv4_context_release_scratch(ctx);
  }
  free(mshapes);

  int rc = failures ? 1 : 0;
  if (write_file(path, &dev, tasks, ntasks, gres, gemm_done ? 2 : 0, gemm_done,
                 gemm_done ? &lres : NULL, mres, nmma, gsrc, ngemm) != 0) {
    fprintf(stderr, "dcnv4-tune: cannot write %s\n", path);
    rc = 1;
  } else
    printf("wrote %s (%.1f s)\n", path, now_s() - t0);
  free(tasks);
  dcnv4_context_destroy(ctx);
  return rc;
}
