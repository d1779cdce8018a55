/* dcnv4-bench: times the operators on the paper's shapes (DESIGN.md §5) and
 * reports each as a fraction of the copy bandwidth measured in the same run;
 * and the FlashInternImage models (bench_fii.c) in images per second.
 *
 * For every row: a check of the same configuration against the float64
 * reference on a small shape first, then the median of many launches timed
 * with profiling events (warm-up excluded, several input sets rotated so
 * that caches do not flatter), the minimum bytes the operator must move,
 * GB/s and the fraction of copy bandwidth. Output: a table on the terminal,
 * results.csv and results.json, and fractions.png when gnuplot is there.
 * Exit status 1 if any verification fails. */
#include "bench.h"
#include "bench_timing.h"
#include "cl_host.h"
#include "dcnv4_problem.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifndef DCNV4_BENCH_PLOT_SCRIPT
#define DCNV4_BENCH_PLOT_SCRIPT "plot_fractions.gp"
#endif

/* DESIGN.md §5: the paper's Tables 2 and 5. */
static const shape paper_shapes[] = {
    {"standard", 64, 56, 56, 128},  {"standard", 64, 28, 28, 256},
    {"standard", 64, 14, 14, 512},  {"standard", 64, 7, 7, 1024},
    {"standard", 64, 14, 14, 768},  {"high-res", 1, 200, 320, 128},
    {"high-res", 1, 100, 160, 256}, {"high-res", 1, 50, 80, 512},
    {"high-res", 1, 25, 40, 1024},  {"high-res", 1, 64, 64, 768},
};

static row *add_row(results *r) {
  if (r->count == r->capacity) {
    r->capacity = r->capacity ? 2 * r->capacity : 64;
    r->rows = realloc(r->rows, sizeof *r->rows * (size_t)r->capacity);
  }
  row *x = &r->rows[r->count++];
  memset(x, 0, sizeof *x);
  return x;
}

/* ---------------------------------------------------------- verification */

/* The same configuration on a small shape against the float64 reference:
 * forward and backward; returns the worst relative error. */
static double verify(dcnv4_context *ctx, const dcnv4_params *big) {
  dcnv4_params p = *big;
  p.batch = 1;
  p.height_in = 9;
  p.width_in = 11;
  rng r = {1234};
  dcnv4_problem pr;
  problem_init(&pr, &p, &r, 0.05);
  dcnv4_errors e;
  double worst = INFINITY;
  if (problem_run(ctx, &pr, 1, &e) == 0)
    worst = fmax(e.output, fmax(e.grad_input, e.grad_offset_mask));
  problem_free(&pr);
  return worst;
}

/* --------------------------------------------------------------- timing */

typedef struct tensors {
  cl_mem in, om, out, go, gi, gom;
} tensors;

/* Realistic inputs: offsets of a trained model are mostly within a pixel or
 * two; random values, never zeros (DESIGN.md, METHOD: zeros flatter). */
static int fill_tensors(dcnv4_context *ctx, const dcnv4_params *p,
                        const dcnv4_shape *s, tensors *t, rng *r,
                        int backward) {
  size_t es = dcnv4_dtype_size(p->dtype);
  size_t most = s->input_elements > s->offset_mask_elements
                    ? s->input_elements
                    : s->offset_mask_elements;
  if (s->output_elements > most)
    most = s->output_elements;
  float *v = malloc(sizeof(float) * most);
  void *packed = malloc(es * most);
  memset(t, 0, sizeof *t);
  int ok = v && packed;
  for (uint64_t i = 0; ok && i < s->input_elements; i++)
    v[i] = (float)rng_uniform(r, -1, 1);
  if (ok) {
    pack_dtype(v, packed, s->input_elements, p->dtype);
    t->in = host_buffer(ctx, s->input_bytes, packed);
  }
  const int K = s->points;
  for (uint64_t i = 0; ok && i < s->offset_mask_elements; i++) {
    int lane = (int)(i % (uint64_t)s->offset_mask_stride) % (3 * K);
    v[i] = lane < 2 * K ? (float)(rng_normal(r) * 1.5)
                        : (float)rng_uniform(r, 0, 0.25);
  }
  if (ok) {
    pack_dtype(v, packed, s->offset_mask_elements, p->dtype);
    t->om = host_buffer(ctx, s->offset_mask_bytes, packed);
    t->out = host_buffer(ctx, s->output_bytes, NULL);
  }
  if (ok && backward) {
    for (uint64_t i = 0; i < s->output_elements; i++)
      v[i] = (float)rng_uniform(r, -1, 1);
    pack_dtype(v, packed, s->output_elements, p->dtype);
    t->go = host_buffer(ctx, s->output_bytes, packed);
    t->gi = host_buffer(ctx, s->input_bytes, NULL);
    t->gom = host_buffer(ctx, s->offset_mask_bytes, NULL);
  }
  free(v);
  free(packed);
  return ok && t->in && t->om && t->out &&
         (!backward || (t->go && t->gi && t->gom));
}

static void release_tensors(tensors *t) {
  cl_mem all[] = {t->in, t->om, t->out, t->go, t->gi, t->gom};
  for (size_t i = 0; i < 6; i++)
    host_release(all[i]);
}

/* Input sets so that one pass over them is several times the cache. */
int input_sets(dcnv4_context *ctx, double bytes_per_set) {
  cl_ulong cache = 0;
  clGetDeviceInfo(dcnv4_context_device(ctx), CL_DEVICE_GLOBAL_MEM_CACHE_SIZE,
                  sizeof cache, &cache, NULL);
  double want = 4.0 * (double)(cache > (64u << 20) ? cache : (64u << 20));
  int sets = (int)ceil(want / bytes_per_set);
  return sets < 1 ? 1 : sets > 16 ? 16 : sets;
}

typedef struct core_launch {
  const dcnv4_params *p;
  tensors *sets;
} core_launch;

static dcnv4_status launch_forward(dcnv4_context *ctx, int set, void *arg,
                                   cl_event *end) {
  core_launch *l = arg;
  tensors *t = &l->sets[set];
  return dcnv4_forward(ctx, l->p, t->in, t->om, t->out, 0, NULL, end);
}

static dcnv4_status launch_backward(dcnv4_context *ctx, int set, void *arg,
                                    cl_event *end) {
  core_launch *l = arg;
  tensors *t = &l->sets[set];
  dcnv4_backward_buffers b = {t->in, t->om, t->go, t->gi, t->gom, NULL};
  return dcnv4_backward(ctx, l->p, &b, 0, NULL, end);
}

static void bench_dcnv4(dcnv4_context *ctx, const options *o, const shape *sh,
                        int d, dcnv4_dtype dtype, results *res) {
  shape s = *sh;
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = s.n;
  p.height_in = s.h;
  p.width_in = s.w;
  p.group_channels = d;
  p.group = s.c / d;
  p.dtype = dtype;
  dcnv4_shape shp;
  if (dcnv4_get_shape(&p, &shp) != DCNV4_SUCCESS)
    return;
  double err = verify(ctx, &p);
  double fwd_bytes =
      (double)(shp.input_bytes + shp.offset_mask_bytes + shp.output_bytes);
  double bwd_bytes = (double)(2 * shp.input_bytes + 2 * shp.offset_mask_bytes +
                              shp.output_bytes);
  int backward = o->backward;
  int nsets = input_sets(ctx, fwd_bytes + (backward ? bwd_bytes : 0));
  tensors *sets = calloc((size_t)nsets, sizeof *sets);
  rng r = {(uint64_t)(s.h * 131 + d)};
  int ok = 1;
  for (int i = 0; i < nsets && ok; i++)
    ok = fill_tensors(ctx, &p, &shp, &sets[i], &r, backward);
  char shape_text[32], config[16];
  snprintf(shape_text, sizeof shape_text, "%dx%dx%dx%d", s.n, s.h, s.w, s.c);
  snprintf(config, sizeof config, "%dx%d", p.group, d);
  double fwd_ms = -1, bwd_ms = -1;
  if (!ok)
    fprintf(stderr, "cannot allocate %s (%d sets)\n", shape_text, nsets);
  else {
    if (o->forward || o->backward)
      fwd_ms = time_launches(ctx, o->reps, nsets, TIME_OWN_EVENT,
                             launch_forward, &(core_launch){&p, sets});
    if (backward)
      bwd_ms = time_launches(ctx, o->reps, nsets, TIME_FROM_MARKER,
                             launch_backward, &(core_launch){&p, sets});
  }
  for (int i = 0; i < nsets; i++)
    release_tensors(&sets[i]);
  free(sets);
  const struct {
    const char *op;
    double ms, bytes;
    int want;
  } out[] = {
      {"forward", fwd_ms, fwd_bytes, o->forward},
      {"backward", bwd_ms, bwd_bytes, backward},
      {"forward+backward", fwd_ms + bwd_ms, fwd_bytes + bwd_bytes,
       backward && o->forward},
  };
  for (size_t i = 0; i < 3; i++) {
    if (!out[i].want)
      continue;
    measurement m = {out[i].op, s.set,        shape_text, config, dtype,
                     out[i].ms, out[i].bytes, err,        nsets,  o->reps};
    record_row(res, &m);
  }
}

/* CPU devices: the same configurations on smaller tensors. */
static shape scaled(const options *o, const shape *sh, int is_gpu) {
  shape s = *sh;
  if (!is_gpu && !o->full_size && strcmp(s.set, "custom") != 0) {
    if (s.n > 1)
      s.n = 1;
    else {
      s.h = s.h / 4 > 4 ? s.h / 4 : 4;
      s.w = s.w / 4 > 4 ? s.w / 4 : 4;
    }
  }
  return s;
}

void record_row(results *res, const measurement *m) {
  row *x = add_row(res);
  snprintf(x->op, sizeof x->op, "%s", m->op);
  snprintf(x->set, sizeof x->set, "%s", m->set);
  snprintf(x->shape, sizeof x->shape, "%s", m->shape);
  snprintf(x->config, sizeof x->config, "%s", m->config);
  x->dtype = m->dtype;
  x->ms = m->ms;
  x->bytes = m->bytes;
  x->gbps = x->ms > 0 ? x->bytes / (x->ms * 1e-3) * 1e-9 : 0;
  x->fraction = res->copy_gbps > 0 ? x->gbps / res->copy_gbps : 0;
  x->verify_error = m->verify_error;
  x->tolerance = m->tolerance > 0 ? m->tolerance : tolerance_for(m->dtype);
  x->images_per_s = m->images > 0 && x->ms > 0 ? m->images / (x->ms * 1e-3) : 0;
  x->share = m->share;
  x->tflops = m->flops > 0 && x->ms > 0 ? m->flops / (x->ms * 1e-3) * 1e-12 : 0;
  x->sets = m->sets;
  x->reps = m->reps;
  int ok = x->verify_error <= x->tolerance && x->ms > 0;
  if (!ok)
    res->failures++;
  /* Model rows show images/s and a stage's share of the forward where the
   * operators show GB/s and the fraction of copy bandwidth. */
  int model = x->images_per_s > 0 || x->share > 0 || x->bytes == 0;
  char tflops[32] = "";
  if (x->tflops > 0)
    snprintf(tflops, sizeof tflops, " %.3g TFLOP/s", x->tflops);
  printf("%-17s %-9s %-16s %-6s %-8s %9.4f %9.1f %7.3f %9.2e%s%s\n", x->op,
         x->set, x->shape, x->config, dcnv4_dtype_name(x->dtype), x->ms,
         model ? x->images_per_s : x->gbps, model ? x->share : x->fraction,
         x->verify_error, ok ? "" : " FAILED", tflops);
  fflush(stdout);
}

/* ---------------------------------------------------------------- output */

static void write_csv(const char *path, const results *r) {
  FILE *f = fopen(path, "w");
  if (!f)
    return;
  fprintf(f, "op,set,shape,groups_x_channels,dtype,median_ms,min_bytes,gbps,"
             "fraction_of_copy,copy_gbps,verify_error,"
             "tolerance,input_sets,launches,images_per_s,share_of_forward,"
             "tflops,launch_floor_ms\n");
  for (int i = 0; i < r->count; i++) {
    const row *x = &r->rows[i];
    fprintf(f,
            "%s,%s,%s,%s,%s,%.5f,%.0f,%.2f,%.4f,%.1f,%.3e,%.0e,%d,%d,%.2f,"
            "%.4f,%.2f,%.5f\n",
            x->op, x->set, x->shape, x->config, dcnv4_dtype_name(x->dtype),
            x->ms, x->bytes, x->gbps, x->fraction, r->copy_gbps,
            x->verify_error, x->tolerance, x->sets, x->reps, x->images_per_s,
            x->share, x->tflops, r->launch_floor_ms);
  }
  fclose(f);
}

static void write_json(const char *path, const results *r,
                       const dcnv4_device_info *dev, const char *when) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "date", when);
  cJSON_AddStringToObject(root, "library_version", dcnv4_version_string());
  cJSON *d = cJSON_AddObjectToObject(root, "device");
  cJSON_AddStringToObject(d, "name", dev->device_name);
  cJSON_AddStringToObject(d, "platform", dev->platform_name);
  cJSON_AddStringToObject(d, "driver", dev->driver_version);
  cJSON_AddNumberToObject(d, "compute_units", dev->compute_units);
  cJSON_AddNumberToObject(root, "copy_bandwidth_gbps", r->copy_gbps);
  cJSON_AddNumberToObject(root, "launch_floor_ms", r->launch_floor_ms);
  cJSON *rows = cJSON_AddArrayToObject(root, "rows");
  for (int i = 0; i < r->count; i++) {
    const row *x = &r->rows[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "op", x->op);
    cJSON_AddStringToObject(o, "set", x->set);
    cJSON_AddStringToObject(o, "shape", x->shape);
    cJSON_AddStringToObject(o, "groups_x_channels", x->config);
    cJSON_AddStringToObject(o, "dtype", dcnv4_dtype_name(x->dtype));
    cJSON_AddNumberToObject(o, "median_ms", x->ms);
    cJSON_AddNumberToObject(o, "min_bytes", x->bytes);
    cJSON_AddNumberToObject(o, "gbps", x->gbps);
    cJSON_AddNumberToObject(o, "fraction_of_copy", x->fraction);
    if (x->images_per_s > 0)
      cJSON_AddNumberToObject(o, "images_per_s", x->images_per_s);
    if (x->share > 0)
      cJSON_AddNumberToObject(o, "share_of_forward", x->share);
    if (x->tflops > 0)
      cJSON_AddNumberToObject(o, "tflops", x->tflops);
    cJSON_AddNumberToObject(o, "verify_error", x->verify_error);
    cJSON_AddNumberToObject(o, "tolerance", x->tolerance);
    cJSON_AddNumberToObject(o, "input_sets", x->sets);
    cJSON_AddNumberToObject(o, "launches", x->reps);
    cJSON_AddItemToArray(rows, o);
  }
  char *text = cJSON_Print(root);
  FILE *f = fopen(path, "w");
  if (f && text) {
    fputs(text, f);
    fputc('\n', f);
  }
  if (f)
    fclose(f);
  free(text);
  cJSON_Delete(root);
}

/* One line per configuration (shape, GxD, dtype) with the fraction of each
 * op in its own column, for a clustered bar chart. */
static const char *const plot_ops[] = {"forward", "backward",
                                       "forward+backward", "layer forward"};
#define PLOT_OPS (sizeof plot_ops / sizeof plot_ops[0])

static int is_plot_op(const char *op) {
  for (size_t k = 0; k < PLOT_OPS; k++)
    if (!strcmp(op, plot_ops[k]))
      return 1;
  return 0;
}

static void write_plot_data(const char *path, const results *r) {
  FILE *f = fopen(path, "w");
  if (!f)
    return;
  fprintf(f, "configuration");
  for (size_t k = 0; k < PLOT_OPS; k++) { /* gnuplot splits titles at spaces */
    fputc('\t', f);
    for (const char *c = plot_ops[k]; *c; c++)
      fputc(*c == ' ' ? '-' : *c, f);
  }
  fprintf(f, "\n");
  for (int i = 0; i < r->count; i++) {
    const row *x = &r->rows[i];
    if (!is_plot_op(x->op)) /* the model rows have no bandwidth fraction */
      continue;
    int first = 1;
    for (int j = 0; j < i && first; j++)
      first =
          !is_plot_op(r->rows[j].op) || strcmp(r->rows[j].shape, x->shape) ||
          strcmp(r->rows[j].config, x->config) || r->rows[j].dtype != x->dtype;
    if (!first)
      continue;
    fprintf(f, "\"%s %s %s\"", x->shape, x->config, dcnv4_dtype_name(x->dtype));
    for (size_t k = 0; k < PLOT_OPS; k++) {
      double v = NAN;
      for (int j = i; j < r->count; j++)
        if (!strcmp(r->rows[j].shape, x->shape) &&
            !strcmp(r->rows[j].config, x->config) &&
            r->rows[j].dtype == x->dtype && !strcmp(r->rows[j].op, plot_ops[k]))
          v = r->rows[j].fraction;
      if (isnan(v))
        fprintf(f, "\t-");
      else
        fprintf(f, "\t%.4f", v);
    }
    fprintf(f, "\n");
  }
  fclose(f);
}

static void plot(const char *out_dir, const char *title) {
  const char *script = DCNV4_BENCH_PLOT_SCRIPT;
#ifdef DCNV4_BENCH_PLOT_SCRIPT_LOCAL
  struct stat st;
  if (stat(DCNV4_BENCH_PLOT_SCRIPT_LOCAL, &st) == 0)
    script = DCNV4_BENCH_PLOT_SCRIPT_LOCAL;
#endif
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "command -v gnuplot >/dev/null 2>&1 && gnuplot -e \"data='%s/"
           "fractions.dat'; png='%s/fractions.png'; title='%s'\" '%s'",
           out_dir, out_dir, title, script);
  if (system(cmd) == 0)
    printf("plot: %s/fractions.png\n", out_dir);
  else
    printf("plot: skipped (gnuplot not found or failed)\n");
}

/* --------------------------------------------------------------- options */

static void usage(void) {
  printf(
      "usage: dcnv4-bench [options]\n"
      "  --quick            two shapes per set, fewer launches\n"
      "  --device SPEC      \"platform:device\" or part of its name\n"
      "  --dtype NAME       float32, float16 or bfloat16 (repeatable;\n"
      "                     default float32 and float16)\n"
      "  --group-channels D 16 or 32 or any divisor of C (repeatable;\n"
      "                     default 16 and 32)\n"
      "  --shape NxHxWxC    this shape instead of the paper's (repeatable)\n"
      "  --forward-only     skip backward rows\n"
      "  --queries Q        FlashDeformAttn rows at Q queries per image\n"
      "                     (repeatable; default 20000, 900, 300 on GPUs)\n"
      "  --ops LIST         what to time, of core,layer,fda,fii,gemm\n"
      "                     (default all): the DCNv4 operator, the DCNv4\n"
      "                     layer's forward, FlashDeformAttn on Deformable\n"
      "                     DETR's encoder and decoder, FlashInternImage-\n"
      "                     T/S/B/L's forward (fp32, fp16 and bf16 unless\n"
      "                     --dtype is given; --quick: T only), the layers'\n"
      "                     GEMM alone at FlashInternImage-T/B's shapes,\n"
      "                     batch 64 (TFLOP/s; fp32, fp16 and bf16 unless\n"
      "                     --dtype)\n"
      "  --gemm MxNxK       GEMM rows at this shape instead of the models'\n"
      "                     (repeatable; set \"custom\")\n"
      "  --reps N           launches per row (default 50, quick 15; fii on\n"
      "                     CPU devices 2)\n"
      "  --full-size        paper sizes on CPU devices too (default: smaller;\n"
      "                     fii: T at 64x64, batches 1 and 2)\n"
      "  --out DIR          where results.{csv,json} and fractions.png go\n"
      "                     (default bench-out)\n"
      "  --no-plot          do not run gnuplot\n");
}

static int parse_options(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->out_dir = "bench-out";
  o->plot = 1;
  o->forward = o->backward = 1;
  o->ops = BENCH_OP_CORE | BENCH_OP_LAYER | BENCH_OP_FDA | BENCH_OP_FII |
           BENCH_OP_GEMM;
  o->reps = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quick"))
      o->quick = 1;
    else if (!strcmp(a, "--full-size"))
      o->full_size = 1;
    else if (!strcmp(a, "--forward-only"))
      o->backward = 0;
    else if (!strcmp(a, "--no-plot"))
      o->plot = 0;
    else if (v && !strcmp(a, "--ops")) {
      o->ops = 0;
      char list[128];
      snprintf(list, sizeof list, "%s", argv[++i]);
      for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        if (!strcmp(t, "core"))
          o->ops |= BENCH_OP_CORE;
        else if (!strcmp(t, "layer"))
          o->ops |= BENCH_OP_LAYER;
        else if (!strcmp(t, "fda"))
          o->ops |= BENCH_OP_FDA;
        else if (!strcmp(t, "fii"))
          o->ops |= BENCH_OP_FII;
        else if (!strcmp(t, "gemm"))
          o->ops |= BENCH_OP_GEMM;
        else {
          fprintf(stderr, "dcnv4-bench: unknown op %s in --ops\n", t);
          return -1;
        }
      }
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage();
      exit(0);
    } else if (v && !strcmp(a, "--device"))
      o->device = argv[++i];
    else if (v && !strcmp(a, "--out"))
      o->out_dir = argv[++i];
    else if (v && !strcmp(a, "--reps")) {
      o->reps = atoi(argv[++i]);
      o->reps_given = o->reps > 0;
    } else if (v && !strcmp(a, "--dtype") && o->ndtypes < 3) {
      o->dtypes_given = 1;
      if (parse_dtype(argv[++i], &o->dtypes[o->ndtypes++]) != 0) {
        fprintf(stderr, "dcnv4-bench: unknown dtype %s\n", argv[i]);
        return -1;
      }
    } else if (v && !strcmp(a, "--shape") && o->nshapes < 16) {
      shape *x = &o->shapes[o->nshapes++];
      x->set = "custom";
      if (sscanf(argv[++i], "%dx%dx%dx%d", &x->n, &x->h, &x->w, &x->c) != 4 ||
          x->n < 1 || x->h < 1 || x->w < 1 || x->c < 1) {
        fprintf(stderr, "dcnv4-bench: --shape wants NxHxWxC\n");
        return -1;
      }
      for (size_t k = 0; k < sizeof paper_shapes / sizeof paper_shapes[0]; k++)
        if (paper_shapes[k].n == x->n && paper_shapes[k].h == x->h &&
            paper_shapes[k].w == x->w && paper_shapes[k].c == x->c)
          x->set = paper_shapes[k].set;
    } else if (v && !strcmp(a, "--gemm") && o->ngemms < 16) {
      int *g = o->gemms[o->ngemms++];
      char end;
      if (sscanf(argv[++i], "%dx%dx%d%c", &g[0], &g[1], &g[2], &end) != 3 ||
          g[0] < 1 || g[1] < 1 || g[2] < 1) {
        fprintf(stderr, "dcnv4-bench: --gemm wants MxNxK\n");
        return -1;
      }
    } else if (v && !strcmp(a, "--queries") && o->nqueries < 8) {
      o->queries[o->nqueries] = atoi(argv[++i]);
      if (o->queries[o->nqueries++] < 1) {
        fprintf(stderr, "dcnv4-bench: bad --queries\n");
        return -1;
      }
    } else if (v && !strcmp(a, "--group-channels") && o->nd < 4) {
      o->group_channels[o->nd++] = atoi(argv[++i]);
      if (o->group_channels[o->nd - 1] < 1) {
        fprintf(stderr, "dcnv4-bench: bad --group-channels\n");
        return -1;
      }
    } else {
      fprintf(stderr, "dcnv4-bench: unknown option %s (see --help)\n", a);
      return -1;
    }
  }
  if (!o->ndtypes) {
    o->dtypes[0] = DCNV4_FLOAT32;
    o->dtypes[1] = DCNV4_FLOAT16;
    o->ndtypes = 2;
  }
  if (!o->nd) {
    o->group_channels[0] = 16;
    o->group_channels[1] = 32;
    o->nd = 2;
  }
  if (o->reps <= 0)
    o->reps = o->quick ? 15 : 50;
  return 0;
}

int main(int argc, char **argv) {
  options o;
  if (parse_options(argc, argv, &o) != 0)
    return 2;
  char why[512] = "";
  dcnv4_context_options co;
  dcnv4_context_options_init(&co);
  co.device = o.device;
  co.enable_profiling = 1;
  co.error_buffer = why;
  co.error_buffer_size = sizeof why;
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(&co, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4-bench: %s\n", why);
    return 1;
  }
  dcnv4_device_info dev;
  dcnv4_context_device_info(ctx, &dev);
  time_t now = time(NULL);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));

  results res;
  memset(&res, 0, sizeof res);
  size_t copy_bytes = dev.is_gpu ? (size_t)1 << 30 : (size_t)256 << 20;
  if (copy_bytes * 3 > dev.global_memory_bytes)
    copy_bytes = (size_t)(dev.global_memory_bytes / 8);
  res.copy_gbps = copy_bandwidth(ctx, copy_bytes, o.quick ? 10 : 30) * 1e-9;
  res.launch_floor_ms = launch_floor_ms(ctx, o.quick ? 20 : 100);
  printf("dcnv4 %s benchmark, %s\n", dcnv4_version_string(), when);
  printf("device: %s (%s, driver %s, %u compute units)\n", dev.device_name,
         dev.platform_name, dev.driver_version, dev.compute_units);
  printf("copy bandwidth (clEnqueueCopyBuffer, read+write, %zu MiB): %.1f "
         "GB/s\n",
         copy_bytes >> 20, res.copy_gbps);
  printf("launch floor (an empty kernel of one work-item, its own event): "
         "%.4f ms\n",
         res.launch_floor_ms);
  if (!dev.is_gpu && !o.full_size)
    printf("CPU device: standard shapes at N=1, high-resolution at 1/4 size "
           "(--full-size for the paper's)\n");
  printf("%-17s %-9s %-16s %-6s %-8s %9s %9s %7s %9s\n", "op", "set",
         "shape NxHxWxC", "GxD", "dtype", "ms", "GB/s", "frac", "verify");

  const shape *shapes = o.nshapes ? o.shapes : paper_shapes;
  size_t nshapes = o.nshapes ? (size_t)o.nshapes
                             : sizeof paper_shapes / sizeof paper_shapes[0];
  for (int t = 0; t < o.ndtypes; t++)
    for (int di = 0; di < o.nd; di++)
      for (size_t si = 0; si < nshapes; si++) {
        if (o.quick && !o.nshapes && si != 0 && si != 5)
          continue;
        if (shapes[si].c % o.group_channels[di] != 0)
          continue;
        shape s = scaled(&o, &shapes[si], dev.is_gpu);
        if (o.ops & BENCH_OP_CORE)
          bench_dcnv4(ctx, &o, &s, o.group_channels[di], o.dtypes[t], &res);
        if (o.ops & BENCH_OP_LAYER)
          bench_dcnv4_layer(ctx, &o, &s, o.group_channels[di], o.dtypes[t],
                            &res);
      }
  if (o.ops & BENCH_OP_FDA)
    for (int t = 0; t < o.ndtypes; t++)
      bench_fda(ctx, &o, o.dtypes[t], dev.is_gpu, &res);
  if (o.ops & BENCH_OP_FII)
    bench_fii(ctx, &o, dev.is_gpu, &res);
  if (o.ops & BENCH_OP_GEMM)
    bench_gemm(ctx, &o, dev.is_gpu, &res);

  mkdir(o.out_dir, 0755);
  char path[4096];
  snprintf(path, sizeof path, "%s/results.csv", o.out_dir);
  write_csv(path, &res);
  snprintf(path, sizeof path, "%s/results.json", o.out_dir);
  write_json(path, &res, &dev, when);
  snprintf(path, sizeof path, "%s/fractions.dat", o.out_dir);
  write_plot_data(path, &res);
  printf("results: %s/results.csv, %s/results.json\n", o.out_dir, o.out_dir);
  if (o.plot) {
    char title[256];
    snprintf(title, sizeof title, "dcnv4 on %s (%s)", dev.device_name, when);
    for (char *c = title; *c; c++)
      if (*c == '\'' || *c == '"')
        *c = ' ';
    plot(o.out_dir, title);
  }
  if (res.failures)
    printf("%d row(s) FAILED verification\n", res.failures);
  free(res.rows);
  dcnv4_context_destroy(ctx);
  return res.failures ? 1 : 0;
}
