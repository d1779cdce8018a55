/* The FlashDeformAttn layer against its float64 reference
 * (tests/support/reference.c) on fixed and random configurations: 1 to 4 levels
 * of odd sizes, level tables with gaps and in any order, heads, points, d_model
 * not a power of 2, 2-d and 4-d reference points, padding mask on and off,
 * query and input_flatten the same buffer, fp32/fp16/bf16, each way of giving
 * scratch memory; weights from safetensors files written here; bad
 * configurations, weights, level tables and forward arguments rejected with the
 * right status, a message, and the output untouched.
 *
 * usage: test_fda_layer [--count N] [--dtype NAME] [--skip-fixed]
 * Tolerances (DESIGN.md §1.4, relative L2): fp32 1e-5, fp16 1e-3,
 * bf16 8e-3. */
#include "reference.h"
#include "st_writer.h"
#include "test_util.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NW 8 /* weights of the layer */

/* ------------------------------------------------------------ problems */

typedef struct fl_problem {
  dcnv4_layer_fda_config c;
  dcnv4_layer_fda_shape s;
  dcnv4_dtype dtype;
  int masked; /* a padding mask is passed */
  int same;   /* query and input_flatten are one buffer (Lq == Len_in) */
  const char *keys[NW];
  int ndim[NW];
  int64_t shape[NW][2];
  size_t elements[NW];
  float *values[NW]; /* rounded to the dtype */
  float *query, *ref, *input;
  unsigned char *mask;
} fl_problem;

static size_t n_query(const fl_problem *p) {
  return (size_t)p->s.batch * p->s.queries * p->c.d_model;
}
static size_t n_ref(const fl_problem *p) {
  return (size_t)p->s.batch * p->s.queries * p->c.n_levels * p->s.reference_dim;
}
static size_t n_input(const fl_problem *p) {
  return (size_t)p->s.batch * p->s.input_len * p->c.d_model;
}
static size_t n_mask(const fl_problem *p) {
  return (size_t)p->s.batch * p->s.input_len;
}

/* The module's weights, written independently of the library from
 * upstream's module (registration order). */
static void expected_keys(fl_problem *p) {
  const int64_t C = p->c.d_model,
                P = (int64_t)p->c.n_heads * p->c.n_levels * p->c.n_points;
  static const char *const keys[NW] = {
      "sampling_offsets.weight",  "sampling_offsets.bias",
      "attention_weights.weight", "attention_weights.bias",
      "value_proj.weight",        "value_proj.bias",
      "output_proj.weight",       "output_proj.bias"};
  const int64_t rows[NW] = {2 * P, 2 * P, P, P, C, C, C, C};
  for (int i = 0; i < NW; i++) {
    p->keys[i] = keys[i];
    p->ndim[i] = i % 2 == 0 ? 2 : 1;
    p->shape[i][0] = rows[i];
    p->shape[i][1] = C;
    p->elements[i] = (size_t)rows[i] * (i % 2 == 0 ? (size_t)C : 1);
  }
}

/* Scale of a weight's random values: offsets of about a pixel, logits of
 * order 1, fan-in scaled projections, small biases. */
static double weight_scale(const fl_problem *p, int i) {
  double C = p->c.d_model;
  switch (i) {
  case 0: return 2.0 * sqrt(3.0 / C);
  case 1: return 2.0;
  case 2: return 2.0 * sqrt(3.0 / C);
  case 3: return 0.5;
  default: return i % 2 == 0 ? sqrt(3.0 / C) : 0.1;
  }
}

/* Lays the levels out in input_flatten: one after the other (the usual
 * cumulative sum), or in reverse order with gaps (`scattered`). */
static void layout_levels(fl_problem *p, int scattered, rng *r) {
  int L = p->c.n_levels;
  int32_t at = 0;
  if (!scattered) {
    for (int l = 0; l < L; l++) {
      p->s.level_start[l] = at;
      at += p->s.spatial_shapes[l][0] * p->s.spatial_shapes[l][1];
    }
  } else {
    at = rng_int(r, 0, 3);
    for (int l = L - 1; l >= 0; l--) {
      p->s.level_start[l] = at;
      at += p->s.spatial_shapes[l][0] * p->s.spatial_shapes[l][1] +
            rng_int(r, 0, 3);
    }
  }
  p->s.input_len = at;
}

static void problem_fill(fl_problem *p, rng *r) {
  expected_keys(p);
  for (int i = 0; i < NW; i++) {
    double a = weight_scale(p, i);
    p->values[i] = malloc(p->elements[i] * sizeof(float));
    for (size_t j = 0; j < p->elements[i]; j++)
      p->values[i][j] = round_to_dtype((float)rng_uniform(r, -a, a), p->dtype);
  }
  size_t nq = n_query(p), nr = n_ref(p), nv = n_input(p), nm = n_mask(p);
  p->query = malloc(nq * sizeof(float) + 1);
  for (size_t j = 0; j < nq; j++)
    p->query[j] = round_to_dtype((float)rng_uniform(r, -1, 1), p->dtype);
  p->ref = malloc(nr * sizeof(float) + 1);
  for (size_t j = 0; j < nr; j++) {
    double v = p->s.reference_dim == 4 && j % 4 >= 2
                   ? rng_uniform(r, 0.05, 0.8)    /* box w, h */
                   : rng_uniform(r, -0.05, 1.05); /* point or box centre */
    p->ref[j] = round_to_dtype((float)v, p->dtype);
  }
  if (p->same)
    p->input = p->query;
  else {
    p->input = malloc(nv * sizeof(float) + 1);
    for (size_t j = 0; j < nv; j++)
      p->input[j] = round_to_dtype((float)rng_uniform(r, -1, 1), p->dtype);
  }
  p->mask = malloc(nm + 1);
  for (size_t j = 0; j < nm; j++)
    p->mask[j] = rng_int(r, 0, 9) < 3 ? (unsigned char)rng_int(r, 1, 255) : 0;
}

static void problem_release(fl_problem *p) {
  for (int i = 0; i < NW; i++)
    free(p->values[i]);
  free(p->query);
  if (!p->same)
    free(p->input);
  free(p->ref);
  free(p->mask);
}

static void describe(const fl_problem *p, char *out, size_t size) {
  int used =
      snprintf(out, size, "%s N%d Lq%d Len%d C%d G%d L%d K%d R%d%s%s [",
               dcnv4_dtype_name(p->dtype), (int)p->s.batch, (int)p->s.queries,
               (int)p->s.input_len, (int)p->c.d_model, (int)p->c.n_heads,
               (int)p->c.n_levels, (int)p->c.n_points, (int)p->s.reference_dim,
               p->masked ? " mask" : "", p->same ? " same" : "");
  for (int l = 0; l < p->c.n_levels && used > 0 && (size_t)used < size; l++)
    used += snprintf(out + used, size - (size_t)used, "%s%dx%d@%d",
                     l ? " " : "", (int)p->s.spatial_shapes[l][0],
                     (int)p->s.spatial_shapes[l][1], (int)p->s.level_start[l]);
  if (used > 0 && (size_t)used < size)
    snprintf(out + used, size - (size_t)used, "]");
}

/* The float64 reference output (malloc'd), with a 16-bit layer's value and
 * core output rounded to its dtype where the layer stores them, so that
 * the operator tolerance checked here holds the layer to its own rounding. */
static double *reference_output(const fl_problem *p) {
  ref_weight w[NW];
  double *store[NW];
  for (int i = 0; i < NW; i++) {
    store[i] = to_doubles(p->values[i], p->elements[i]);
    w[i].key = p->keys[i];
    w[i].data = store[i];
  }
  double *q = to_doubles(p->query, n_query(p));
  double *rp = to_doubles(p->ref, n_ref(p));
  double *in = to_doubles(p->input, n_input(p));
  double *out = malloc(n_query(p) * sizeof *out + 1);
  if (ref_fda_layer_forward_dtype(&p->c, p->dtype, &p->s, w, NW, q, rp, in,
                                  p->masked ? p->mask : NULL, out) != 0) {
    fprintf(stderr, "reference: a weight is missing\n");
    exit(1);
  }
  for (int i = 0; i < NW; i++)
    free(store[i]);
  free(q);
  free(rp);
  free(in);
  return out;
}

static dcnv4_layer *create_layer(dcnv4_context *ctx, const fl_problem *p) {
  dcnv4_layer *layer = NULL;
  if (dcnv4_layer_fda_create(ctx, &p->c, p->dtype, &layer) != DCNV4_SUCCESS) {
    fprintf(stderr, "create: %s\n", dcnv4_context_last_error(ctx));
    exit(1);
  }
  return layer;
}

static int set_all(dcnv4_context *ctx, dcnv4_layer *layer,
                   const fl_problem *p) {
  for (int i = 0; i < NW; i++)
    if (dcnv4_layer_set_weight(layer, p->keys[i], p->values[i], p->shape[i],
                               p->ndim[i]) != DCNV4_SUCCESS) {
      fprintf(stderr, "set %s: %s\n", p->keys[i],
              dcnv4_context_last_error(ctx));
      return -1;
    }
  return 0;
}

static void check_table(const dcnv4_layer *layer, const fl_problem *p,
                        const char *what) {
  CHECK(dcnv4_layer_get_kind(layer) == DCNV4_LAYER_FLASH_DEFORM_ATTN &&
            dcnv4_layer_get_dtype(layer) == p->dtype,
        "%s: kind or dtype", what);
  CHECK(dcnv4_layer_weight_count(layer) == NW, "%s: %zu weights, expected %d",
        what, dcnv4_layer_weight_count(layer), NW);
  for (size_t i = 0; i < NW && i < dcnv4_layer_weight_count(layer); i++) {
    dcnv4_weight_info w;
    CHECK(dcnv4_layer_weight_info(layer, i, &w) == DCNV4_SUCCESS, "info");
    bool same = !strcmp(w.key, p->keys[i]) && w.ndim == p->ndim[i] &&
                w.elements == p->elements[i];
    for (int k = 0; same && k < w.ndim; k++)
      same = w.shape[k] == p->shape[i][k];
    CHECK(same, "%s: weight %zu is %s, expected %s with its shape", what, i,
          w.key, p->keys[i]);
  }
}

/* ---------------------------------------------------- device helpers */

static size_t base_align(dcnv4_context *ctx) {
  cl_uint bits = 0;
  clGetDeviceInfo(dcnv4_context_device(ctx), CL_DEVICE_MEM_BASE_ADDR_ALIGN,
                  sizeof bits, &bits, NULL);
  return bits / 8 > 1 ? bits / 8 : 1;
}

static unsigned char *read_bytes(dcnv4_context *ctx, cl_mem m, size_t n) {
  unsigned char *b = malloc(n + 1);
  if (host_read(ctx, m, b, n) != 0) {
    fprintf(stderr, "cannot read a buffer\n");
    exit(1);
  }
  return b;
}

/* The problem's inputs on the device. */
typedef struct fl_buffers {
  cl_mem query, ref, input, mask, out;
} fl_buffers;

static fl_buffers upload(dcnv4_context *ctx, const fl_problem *p) {
  fl_buffers b;
  b.query = upload_values(ctx, p->query, n_query(p), p->dtype);
  b.ref = upload_values(ctx, p->ref, n_ref(p), p->dtype);
  b.input =
      p->same ? b.query : upload_values(ctx, p->input, n_input(p), p->dtype);
  b.mask = p->masked ? host_buffer(ctx, n_mask(p), p->mask) : NULL;
  b.out = poisoned_buffer(ctx, n_query(p), p->dtype);
  return b;
}

static void release_buffers(fl_buffers *b) {
  host_release(b->query);
  if (b->input != b->query)
    host_release(b->input);
  host_release(b->ref);
  host_release(b->mask);
  host_release(b->out);
}

enum { WS_CONTEXT, WS_BUFFER, WS_SUB_BUFFER, WS_MODES };

/* Runs the layer; returns the output (doubles) or NULL if the call failed.
 * WS_BUFFER also goes through an event wait list; the completion event is
 * waited for before the output is read. */
static double *run_layer(dcnv4_context *ctx, dcnv4_layer *layer,
                         const fl_problem *p, int mode) {
  fl_buffers b = upload(ctx, p);
  cl_mem ws = NULL, parent = NULL;
  size_t bytes = 0;
  double *result = NULL;
  cl_event marker = NULL, done_event = NULL;
  if (dcnv4_layer_fda_workspace_size(layer, &p->s, &bytes) != DCNV4_SUCCESS) {
    fprintf(stderr, "workspace_size: %s\n", dcnv4_context_last_error(ctx));
    goto done;
  }
  if (mode == WS_BUFFER)
    ws = host_buffer(ctx, bytes, NULL);
  else if (mode == WS_SUB_BUFFER) {
    size_t align = base_align(ctx);
    parent = host_buffer(ctx, bytes + 3 * align, NULL);
    cl_buffer_region region = {align, bytes + align};
    cl_int err;
    ws = clCreateSubBuffer(parent, CL_MEM_READ_WRITE,
                           CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
  }
  if (mode == WS_BUFFER)
    clEnqueueMarkerWithWaitList(dcnv4_context_queue(ctx), 0, NULL, &marker);
  dcnv4_status st = dcnv4_layer_fda_forward(
      layer, &p->s, b.query, b.ref, b.input, b.mask, b.out, ws, marker ? 1 : 0,
      marker ? &marker : NULL, &done_event);
  if (st != DCNV4_SUCCESS) {
    fprintf(stderr, "forward: %s\n", dcnv4_context_last_error(ctx));
    goto done;
  }
  cl_int status = -1;
  CHECK(done_event && clWaitForEvents(1, &done_event) == CL_SUCCESS &&
            clGetEventInfo(done_event, CL_EVENT_COMMAND_EXECUTION_STATUS,
                           sizeof status, &status, NULL) == CL_SUCCESS &&
            status == CL_COMPLETE,
        "the forward's completion event is missing or failed");
  if (done_event)
    clReleaseEvent(done_event);
  result = download_values(ctx, b.out, n_query(p), p->dtype);
done:
  if (marker)
    clReleaseEvent(marker);
  host_release(ws);
  host_release(parent);
  release_buffers(&b);
  return result;
}

/* ---------------------------------------------------- configurations */

static int test_verbose;

static void check_problem(dcnv4_context *ctx, fl_problem *p, int mode) {
  char what[512];
  describe(p, what, sizeof what);
  dcnv4_layer *layer = create_layer(ctx, p);
  check_table(layer, p, what);
  double *ref = reference_output(p);
  if (set_all(ctx, layer, p) != 0)
    CHECK(0, "%s: setting the weights failed", what);
  else {
    CHECK(dcnv4_layer_missing_weight(layer) == NULL,
          "%s: a weight is reported missing after setting all", what);
    double *got = run_layer(ctx, layer, p, mode);
    if (!got)
      CHECK(0, "%s: forward failed", what);
    else {
      double err = rel_l2(got, ref, n_query(p));
      double tol = tolerance_for(p->dtype);
      CHECK(err <= tol, "%s (workspace mode %d): error %.3g > %.0e", what, mode,
            err, tol);
      if (test_verbose)
        printf("%-100s ws%d err %.2e\n", what, mode, err);
    }
    free(got);
  }
  free(ref);
  dcnv4_layer_destroy(layer);
}

typedef struct fixed_config {
  int N, Lq, C, G, L, K, R, masked, same, scattered;
  int hw[4][2];
} fixed_config;

static const fixed_config fixed[] = {
    /* N Lq  C  G  L  K  R  mask same scat  levels */
    {2, 30, 64, 4, 2, 2, 2, 0, 0, 0, {{8, 8}, {4, 4}}}, /* golden-like */
    {1, 25, 36, 3, 3, 4, 4, 1, 0, 0, {{10, 12}, {5, 6}, {3, 3}}}, /* boxes */
    {2, 7, 1, 1, 4, 1, 2, 1, 0, 0, {{5, 3}, {1, 1}, {2, 7}, {1, 4}}}, /* C=1 */
    {1, 9, 35, 7, 1, 8, 4, 0, 0, 0, {{9, 11}}},                /* D = 5 */
    {2, 6, 24, 2, 3, 3, 2, 1, 0, 1, {{6, 5}, {3, 3}, {2, 1}}}, /* gaps */
    {2, 0, 20, 4, 2, 2, 2, 1, 1, 0, {{4, 3}, {2, 2}}},         /* self-attn */
    {2,
     300,
     256,
     8,
     4,
     4,
     2,
     1,
     0,
     0,
     {{32, 30}, {16, 15}, {8, 8}, {4, 4}}}, /* big GEMMs */
};

static void problem_from(const fixed_config *f, dcnv4_dtype dtype, rng *r,
                         fl_problem *p) {
  memset(p, 0, sizeof *p);
  p->dtype = dtype;
  p->c.d_model = f->C;
  p->c.n_heads = f->G;
  p->c.n_levels = f->L;
  p->c.n_points = f->K;
  dcnv4_layer_fda_shape_init(&p->s);
  p->s.batch = f->N;
  p->s.queries = f->Lq;
  p->s.reference_dim = f->R;
  for (int l = 0; l < f->L; l++) {
    p->s.spatial_shapes[l][0] = f->hw[l][0];
    p->s.spatial_shapes[l][1] = f->hw[l][1];
  }
  layout_levels(p, f->scattered, r);
  p->masked = f->masked;
  p->same = f->same;
  if (p->same)
    p->s.queries = p->s.input_len;
  problem_fill(p, r);
}

static const int head_channels[] = {1, 2, 3, 4, 5, 8, 12, 16, 32};

static void random_problem(rng *r, dcnv4_dtype dtype, fl_problem *p) {
  memset(p, 0, sizeof *p);
  p->dtype = dtype;
  p->c.n_heads = rng_int(r, 0, 4) == 0 ? 8 : rng_int(r, 1, 4);
  p->c.d_model = p->c.n_heads * head_channels[rng_int(r, 0, 8)];
  p->c.n_levels = rng_int(r, 1, 4);
  p->c.n_points = rng_int(r, 0, 5) == 0 ? 8 : rng_int(r, 1, 4);
  dcnv4_layer_fda_shape_init(&p->s);
  p->s.batch = rng_int(r, 1, 2);
  p->s.queries = rng_int(r, 1, 13);
  p->s.reference_dim = rng_int(r, 0, 1) ? 4 : 2;
  for (int l = 0; l < p->c.n_levels; l++) {
    int big = l == 0 ? 12 : 9;
    p->s.spatial_shapes[l][0] = rng_int(r, 1, big);
    p->s.spatial_shapes[l][1] = rng_int(r, 1, big);
  }
  layout_levels(p, rng_int(r, 0, 4) == 0, r);
  p->masked = rng_int(r, 0, 1);
  problem_fill(p, r);
}

/* ------------------------------------------------------ safetensors */

static void to_entries(const fl_problem *p, const char *prefix,
                       const char *dtype, st_tensor *t, char **names) {
  for (int i = 0; i < NW; i++) {
    names[i] = malloc(strlen(prefix) + strlen(p->keys[i]) + 1);
    strcpy(names[i], prefix);
    strcat(names[i], p->keys[i]);
    t[i].name = names[i];
    t[i].dtype = dtype;
    t[i].ndim = p->ndim[i];
    for (int k = 0; k < p->ndim[i]; k++)
      t[i].shape[k] = p->shape[i][k];
    t[i].values = p->values[i];
  }
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
}

static void round_weights(fl_problem *p, const char *dtype) {
  for (int i = 0; i < NW; i++)
    for (size_t j = 0; j < p->elements[i]; j++) {
      float v = p->values[i][j];
      if (!strcmp(dtype, "F16"))
        v = half_to_float(float_to_half(v));
      else if (!strcmp(dtype, "BF16"))
        v = bf16_to_float(float_to_bf16(v));
      p->values[i][j] = v;
    }
}

static int contains(const char *text, const char *part) {
  return strstr(text, part) != NULL;
}

#define EXPECT_STATUS(call, want)                                              \
  do {                                                                         \
    dcnv4_status got_ = (call);                                                \
    CHECK(got_ == (want), "%s: status %s, expected %s (%s)", #call,            \
          dcnv4_status_string(got_), dcnv4_status_string(want),                \
          dcnv4_context_last_error(ctx));                                      \
    CHECK(got_ == DCNV4_SUCCESS || dcnv4_context_last_error(ctx)[0] != '\0',   \
          "%s: failed without a message", #call);                              \
  } while (0)

/* Loading by prefix gives exactly what set_weight gives, for each float
 * dtype of the file, beside another layer's tensors; a misshaped or absent
 * tensor is refused naming its key, and sets nothing. */
static void test_safetensors(dcnv4_context *ctx, const char *dir, rng *r) {
  static const char *const file_dtypes[] = {"F32", "F16", "BF16"};
  static const dcnv4_dtype layer_dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16,
                                             DCNV4_BFLOAT16};
  const fixed_config f = {2, 11, 24, 3, 2, 3, 4, 1, 0, 0, {{5, 6}, {3, 2}}};
  const char *prefix = "encoder.layers.0.self_attn.";
  for (size_t d = 0; d < 3; d++) {
    fl_problem p, other;
    problem_from(&f, layer_dtypes[d], r, &p);
    problem_from(&f, DCNV4_FLOAT32, r, &other);
    st_tensor t[2 * NW + 1];
    char *names[2 * NW];
    to_entries(&p, prefix, file_dtypes[d], t, names);
    /* A layer whose prefix extends this one's. */
    to_entries(&other, "encoder.layers.0.self_attn.x.", "F32", t + NW,
               names + NW);
    /* ... is a tensor under the prefix that is no weight: refused. Then the
     * same file without it. */
    char path[4200];
    snprintf(path, sizeof path, "%s/fda_%s.safetensors", dir, file_dtypes[d]);
    CHECK(st_write(path, t, 2 * NW) == 0, "cannot write %s", path);
    dcnv4_layer *loaded = create_layer(ctx, &p);
    EXPECT_STATUS(dcnv4_layer_load_safetensors(loaded, path, prefix),
                  DCNV4_ERROR_INVALID_WEIGHT);
    CHECK(dcnv4_layer_missing_weight(loaded) != NULL, "a refused load set");
    t[NW] = (st_tensor){"decoder.step", "I64", 1, {3}, NULL};
    CHECK(st_write(path, t, NW + 1) == 0, "cannot write %s", path);
    free_names(names, 2 * NW);
    EXPECT_STATUS(dcnv4_layer_load_safetensors(loaded, path, prefix),
                  DCNV4_SUCCESS);
    CHECK(dcnv4_layer_missing_weight(loaded) == NULL,
          "%s: a weight is missing after loading", path);
    round_weights(&p, file_dtypes[d]);
    dcnv4_layer *direct = create_layer(ctx, &p);
    set_all(ctx, direct, &p);
    double *a = run_layer(ctx, loaded, &p, WS_CONTEXT);
    double *b = run_layer(ctx, direct, &p, WS_CONTEXT);
    CHECK(a && b && !memcmp(a, b, n_query(&p) * sizeof *a),
          "%s: the layer loaded from the file differs from set_weight", path);
    double *ref = reference_output(&p);
    double err = a ? rel_l2(a, ref, n_query(&p)) : INFINITY;
    CHECK(err <= tolerance_for(p.dtype), "%s: error %.3g", path, err);
    free(a);
    free(b);
    free(ref);
    dcnv4_layer_destroy(direct);

    /* Misshaped and missing tensors name their key; nothing is set. */
    dcnv4_layer *fresh = create_layer(ctx, &p);
    to_entries(&p, "m.", "F32", t, names);
    t[2].shape[0] -= 1; /* attention_weights.weight, one row short */
    CHECK(st_write(path, t, NW) == 0, "write");
    EXPECT_STATUS(dcnv4_layer_load_safetensors(fresh, path, "m."),
                  DCNV4_ERROR_INVALID_WEIGHT);
    CHECK(contains(dcnv4_context_last_error(ctx), "attention_weights.weight"),
          "the message does not name the misshaped weight: %s",
          dcnv4_context_last_error(ctx));
    t[2].shape[0] += 1;
    t[5] = t[NW - 1]; /* drops value_proj.bias */
    CHECK(st_write(path, t, NW - 1) == 0, "write");
    EXPECT_STATUS(dcnv4_layer_load_safetensors(fresh, path, "m."),
                  DCNV4_ERROR_MISSING_WEIGHT);
    CHECK(contains(dcnv4_context_last_error(ctx), "value_proj.bias"),
          "the message does not name the missing weight: %s",
          dcnv4_context_last_error(ctx));
    CHECK(!strcmp(dcnv4_layer_missing_weight(fresh), p.keys[0]),
          "a failed load set a weight");
    free_names(names, NW);
    dcnv4_layer_destroy(fresh);
    dcnv4_layer_destroy(loaded);
    problem_release(&p);
    problem_release(&other);
  }
}

/* ------------------------------------------------ bad configurations */

static void test_bad_configs(dcnv4_context *ctx) {
  struct {
    const char *what;
    int C, L, G, K;
  } bad[] = {
      {"d_model not a multiple of n_heads", 30, 4, 8, 4},
      {"d_model 0", 0, 4, 8, 4},
      {"n_levels 0", 256, 0, 8, 4},
      {"n_levels 17", 256, 17, 8, 4},
      {"n_heads 0", 256, 4, 0, 4},
      {"n_heads -8", 256, 4, -8, 4},
      {"n_points 0", 256, 4, 8, 0},
      {"n_levels * n_points > 1024", 256, 16, 8, 65},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    dcnv4_layer_fda_config c = {bad[i].C, bad[i].L, bad[i].G, bad[i].K};
    dcnv4_layer *layer = (dcnv4_layer *)&c; /* must be reset to NULL */
    dcnv4_status st = dcnv4_layer_fda_create(ctx, &c, DCNV4_FLOAT32, &layer);
    CHECK(st == DCNV4_ERROR_INVALID_PARAMETER && layer == NULL &&
              dcnv4_context_last_error(ctx)[0],
          "%s: status %s (%s)", bad[i].what, dcnv4_status_string(st),
          dcnv4_context_last_error(ctx));
  }
  dcnv4_layer_fda_config c;
  dcnv4_layer_fda_config_init(&c);
  CHECK(c.d_model == 256 && c.n_levels == 4 && c.n_heads == 8 &&
            c.n_points == 4,
        "config defaults");
  dcnv4_layer *layer = NULL;
  EXPECT_STATUS(dcnv4_layer_fda_create(ctx, &c, (dcnv4_dtype)5, &layer),
                DCNV4_ERROR_INVALID_PARAMETER);
  EXPECT_STATUS(dcnv4_layer_fda_create(ctx, NULL, DCNV4_FLOAT32, &layer),
                DCNV4_ERROR_NULL_POINTER);
  EXPECT_STATUS(dcnv4_layer_fda_create(ctx, &c, DCNV4_FLOAT32, NULL),
                DCNV4_ERROR_NULL_POINTER);
  CHECK(dcnv4_layer_fda_create(NULL, &c, DCNV4_FLOAT32, &layer) ==
            DCNV4_ERROR_NULL_POINTER,
        "NULL context accepted");
}

/* ------------------------------------------------ bad forward calls */

static void test_bad_forward(dcnv4_context *ctx, rng *r) {
  /* fp16, masked, 4-d boxes: every buffer size is exercised. */
  const fixed_config f = {2, 5, 12, 2, 2, 2, 4, 1, 0, 0, {{4, 3}, {2, 2}}};
  fl_problem p;
  problem_from(&f, DCNV4_FLOAT16, r, &p);
  dcnv4_layer *layer = create_layer(ctx, &p);
  fl_buffers b = upload(ctx, &p);
  const size_t out_bytes = n_query(&p) * 2;
  unsigned char *before = read_bytes(ctx, b.out, out_bytes);
  const dcnv4_layer_fda_shape *s = &p.s;

  /* Weights: unknown key, misshaped (naming it), missing at forward. */
  float big[64 * 12];
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
    big[i] = 0.01f;
  int64_t wrong[] = {24, 12};
  EXPECT_STATUS(
      dcnv4_layer_set_weight(layer, "sampling_offset.weight", big, wrong, 2),
      DCNV4_ERROR_INVALID_WEIGHT);
  CHECK(contains(dcnv4_context_last_error(ctx), "sampling_offset.weight"),
        "unknown key not named: %s", dcnv4_context_last_error(ctx));
  EXPECT_STATUS(
      dcnv4_layer_set_weight(layer, "attention_weights.weight", big, wrong, 2),
      DCNV4_ERROR_INVALID_WEIGHT);
  CHECK(contains(dcnv4_context_last_error(ctx), "attention_weights.weight") &&
            contains(dcnv4_context_last_error(ctx), "(8, 12)") &&
            contains(dcnv4_context_last_error(ctx), "(24, 12)"),
        "misshaped weight message lacks the key or shapes: %s",
        dcnv4_context_last_error(ctx));
  EXPECT_STATUS(dcnv4_layer_set_weight(layer, "output_proj.bias", big,
                                       (int64_t[]){12, 1}, 2),
                DCNV4_ERROR_INVALID_WEIGHT);
  EXPECT_STATUS(
      dcnv4_layer_set_weight(layer, "offset_mask.weight", big, wrong, 2),
      DCNV4_ERROR_INVALID_WEIGHT); /* a DCNv4 key */
  for (int i = 0; i < NW; i++)
    if (strcmp(p.keys[i], "value_proj.bias") != 0)
      dcnv4_layer_set_weight(layer, p.keys[i], p.values[i], p.shape[i],
                             p.ndim[i]);
  EXPECT_STATUS(dcnv4_layer_fda_forward(layer, s, b.query, b.ref, b.input,
                                        b.mask, b.out, NULL, 0, NULL, NULL),
                DCNV4_ERROR_MISSING_WEIGHT);
  CHECK(contains(dcnv4_context_last_error(ctx), "value_proj.bias"),
        "the missing weight is not named: %s", dcnv4_context_last_error(ctx));
  set_all(ctx, layer, &p);

  /* Sizes and level tables. */
  struct {
    const char *what;
    int field; /* 0 batch, 1 queries, 2 input_len, 3 reference_dim,
                  4 H of level 1, 5 start of level 1, 6 W of level 0,
                  7 start of level 0 */
    int value;
    dcnv4_status want;
  } shapes[] = {
      {"batch 0", 0, 0, DCNV4_ERROR_INVALID_PARAMETER},
      {"queries -1", 1, -1, DCNV4_ERROR_INVALID_PARAMETER},
      {"input_len 0", 2, 0, DCNV4_ERROR_INVALID_PARAMETER},
      {"reference_dim 3", 3, 3, DCNV4_ERROR_INVALID_PARAMETER},
      {"reference_dim 0", 3, 0, DCNV4_ERROR_INVALID_PARAMETER},
      {"level height 0", 4, 0, DCNV4_ERROR_INVALID_PARAMETER},
      {"levels overlap", 5, 11, DCNV4_ERROR_INVALID_SHAPE},
      {"level beyond input_len", 5, 13, DCNV4_ERROR_INVALID_SHAPE},
      {"input_len too short", 2, 15, DCNV4_ERROR_INVALID_SHAPE},
      {"level too wide", 6, 5, DCNV4_ERROR_INVALID_SHAPE},
      {"negative level start", 7, -1, DCNV4_ERROR_INVALID_SHAPE},
      {"level too large", 6, (1 << 24) + 1, DCNV4_ERROR_SIZE_OVERFLOW},
      {"sizes overflow", 0, INT32_MAX, DCNV4_ERROR_SIZE_OVERFLOW},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    dcnv4_layer_fda_shape bad = *s;
    int32_t *fields[] = {&bad.batch,
                         &bad.queries,
                         &bad.input_len,
                         &bad.reference_dim,
                         &bad.spatial_shapes[1][0],
                         &bad.level_start[1],
                         &bad.spatial_shapes[0][1],
                         &bad.level_start[0]};
    *fields[shapes[i].field] = shapes[i].value;
    if (shapes[i].field == 0 && shapes[i].value == INT32_MAX)
      bad.queries = INT32_MAX;
    dcnv4_status st =
        dcnv4_layer_fda_forward(layer, &bad, b.query, b.ref, b.input, b.mask,
                                b.out, NULL, 0, NULL, NULL);
    CHECK(st == shapes[i].want && dcnv4_context_last_error(ctx)[0],
          "%s: status %s, expected %s (%s)", shapes[i].what,
          dcnv4_status_string(st), dcnv4_status_string(shapes[i].want),
          dcnv4_context_last_error(ctx));
    size_t bytes = 0;
    st = dcnv4_layer_fda_workspace_size(layer, &bad, &bytes);
    CHECK(st == shapes[i].want, "%s (workspace_size): status %s",
          shapes[i].what, dcnv4_status_string(st));
  }
  /* Levels beyond n_levels are ignored. */
  dcnv4_layer_fda_shape extra = *s;
  extra.spatial_shapes[2][0] = -5;
  extra.level_start[3] = 1 << 30;
  size_t ws_bytes = 0;
  EXPECT_STATUS(dcnv4_layer_fda_workspace_size(layer, &extra, &ws_bytes),
                DCNV4_SUCCESS);

  /* Buffers: too small, NULL, aliased, wrong workspace, wait lists. */
  cl_mem small = host_buffer(ctx, 8, NULL);
  cl_mem ws_small = host_buffer(ctx, ws_bytes - 1, NULL);
  cl_int err;
  cl_mem ws_ro = clCreateBuffer(dcnv4_context_cl_context(ctx), CL_MEM_READ_ONLY,
                                ws_bytes, NULL, &err);
  cl_mem mask_short = host_buffer(ctx, n_mask(&p) - 1, NULL);
  cl_mem ref_2d = host_buffer(ctx, n_ref(&p) * 2 - 2, NULL); /* 1 short */
  cl_event fake = NULL;
  struct {
    const char *what;
    cl_mem q, rp, in, m, out, ws;
    cl_uint nw;
    const cl_event *wl;
    dcnv4_status want;
  } calls[] = {
      {"query small", small, b.ref, b.input, b.mask, b.out, NULL, 0, NULL,
       DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"reference_points small", b.query, ref_2d, b.input, b.mask, b.out, NULL,
       0, NULL, DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"input_flatten small", b.query, b.ref, small, b.mask, b.out, NULL, 0,
       NULL, DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"padding_mask small", b.query, b.ref, b.input, mask_short, b.out, NULL,
       0, NULL, DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"output small", b.query, b.ref, b.input, b.mask, small, NULL, 0, NULL,
       DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"workspace small", b.query, b.ref, b.input, b.mask, b.out, ws_small, 0,
       NULL, DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"workspace read-only", b.query, b.ref, b.input, b.mask, b.out, ws_ro, 0,
       NULL, DCNV4_ERROR_INVALID_BUFFER},
      {"query NULL", NULL, b.ref, b.input, b.mask, b.out, NULL, 0, NULL,
       DCNV4_ERROR_NULL_POINTER},
      {"reference_points NULL", b.query, NULL, b.input, b.mask, b.out, NULL, 0,
       NULL, DCNV4_ERROR_NULL_POINTER},
      {"input_flatten NULL", b.query, b.ref, NULL, b.mask, b.out, NULL, 0, NULL,
       DCNV4_ERROR_NULL_POINTER},
      {"output NULL", b.query, b.ref, b.input, b.mask, NULL, NULL, 0, NULL,
       DCNV4_ERROR_NULL_POINTER},
      {"output is query", b.out, b.ref, b.input, b.mask, b.out, NULL, 0, NULL,
       DCNV4_ERROR_INVALID_BUFFER},
      {"workspace is output", b.query, b.ref, b.input, b.mask, b.out, b.out, 0,
       NULL, DCNV4_ERROR_INVALID_BUFFER},
      {"wait list NULL", b.query, b.ref, b.input, b.mask, b.out, NULL, 1, NULL,
       DCNV4_ERROR_NULL_POINTER},
      {"wait list of a NULL event", b.query, b.ref, b.input, b.mask, b.out,
       NULL, 1, &fake, DCNV4_ERROR_INVALID_PARAMETER},
      {"wait list without count", b.query, b.ref, b.input, b.mask, b.out, NULL,
       0, &fake, DCNV4_ERROR_INVALID_PARAMETER},
  };
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    dcnv4_status st = dcnv4_layer_fda_forward(
        layer, s, calls[i].q, calls[i].rp, calls[i].in, calls[i].m,
        calls[i].out, calls[i].ws, calls[i].nw, calls[i].wl, NULL);
    CHECK(st == calls[i].want && dcnv4_context_last_error(ctx)[0],
          "%s: status %s, expected %s (%s)", calls[i].what,
          dcnv4_status_string(st), dcnv4_status_string(calls[i].want),
          dcnv4_context_last_error(ctx));
  }
  EXPECT_STATUS(dcnv4_layer_fda_forward(layer, NULL, b.query, b.ref, b.input,
                                        b.mask, b.out, NULL, 0, NULL, NULL),
                DCNV4_ERROR_NULL_POINTER);
  CHECK(dcnv4_layer_fda_forward(NULL, s, b.query, b.ref, b.input, b.mask, b.out,
                                NULL, 0, NULL,
                                NULL) == DCNV4_ERROR_NULL_POINTER,
        "NULL layer accepted");
  EXPECT_STATUS(dcnv4_layer_fda_workspace_size(layer, s, NULL),
                DCNV4_ERROR_NULL_POINTER);
  EXPECT_STATUS(dcnv4_layer_fda_workspace_size(layer, NULL, &ws_bytes),
                DCNV4_ERROR_NULL_POINTER);
  /* The calls of the other kind. */
  EXPECT_STATUS(dcnv4_layer_dcnv4_forward(layer, 1, 4, 4, b.query, b.out, NULL,
                                          0, NULL, NULL),
                DCNV4_ERROR_INVALID_PARAMETER);
  EXPECT_STATUS(dcnv4_layer_dcnv4_workspace_size(layer, 1, 4, 4, &ws_bytes),
                DCNV4_ERROR_INVALID_PARAMETER);
  dcnv4_layer_dcnv4_config dc;
  dcnv4_layer_dcnv4_config_init(&dc);
  dcnv4_layer *dcn = NULL;
  EXPECT_STATUS(dcnv4_layer_dcnv4_create(ctx, &dc, DCNV4_FLOAT16, &dcn),
                DCNV4_SUCCESS);
  EXPECT_STATUS(dcnv4_layer_fda_forward(dcn, s, b.query, b.ref, b.input, b.mask,
                                        b.out, NULL, 0, NULL, NULL),
                DCNV4_ERROR_INVALID_PARAMETER);
  EXPECT_STATUS(dcnv4_layer_fda_workspace_size(dcn, s, &ws_bytes),
                DCNV4_ERROR_INVALID_PARAMETER);
  dcnv4_layer_destroy(dcn);

  dcnv4_context_finish(ctx);
  unsigned char *after = read_bytes(ctx, b.out, out_bytes);
  CHECK(!memcmp(before, after, out_bytes),
        "a rejected forward wrote its output");
  /* The same layer still works, and its output matches the reference. */
  double *got = run_layer(ctx, layer, &p, WS_BUFFER);
  double *ref = reference_output(&p);
  double e = got ? rel_l2(got, ref, n_query(&p)) : INFINITY;
  CHECK(e <= tolerance_for(p.dtype), "after the bad calls: error %.3g", e);
  free(got);
  free(ref);
  free(before);
  free(after);
  host_release(small);
  host_release(ws_small);
  host_release(ws_ro);
  host_release(mask_short);
  host_release(ref_2d);
  release_buffers(&b);
  dcnv4_layer_destroy(layer);
  problem_release(&p);
}

/* A padded position's value row is zero whatever input_flatten holds there
 * (NaN included), as masked_fill makes it. */
static void test_mask_nan(dcnv4_context *ctx, rng *r) {
  const fixed_config f = {1, 6, 16, 2, 2, 2, 2, 1, 0, 0, {{4, 4}, {2, 3}}};
  fl_problem p;
  problem_from(&f, DCNV4_FLOAT32, r, &p);
  double *ref = reference_output(&p);
  for (size_t m = 0; m < n_mask(&p); m++)
    if (p.mask[m])
      for (int c = 0; c < p.c.d_model; c++)
        p.input[m * (size_t)p.c.d_model + (size_t)c] = NAN;
  dcnv4_layer *layer = create_layer(ctx, &p);
  set_all(ctx, layer, &p);
  double *got = run_layer(ctx, layer, &p, WS_CONTEXT);
  double e = got ? rel_l2(got, ref, n_query(&p)) : INFINITY;
  CHECK(e <= tolerance_for(p.dtype), "NaN in padded rows: error %.3g", e);
  free(got);
  free(ref);
  dcnv4_layer_destroy(layer);
  problem_release(&p);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv) {
  int count = 12, skip_fixed = 0, only_dtype = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--skip-fixed"))
      skip_fixed = 1;
    else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
      dcnv4_dtype d;
      if (parse_dtype(argv[++i], &d) != 0) {
        fprintf(stderr, "unknown dtype %s\n", argv[i]);
        return 2;
      }
      only_dtype = (int)d;
    }
  }
  test_verbose = getenv("TEST_VERBOSE") != NULL;
  rng r = {test_seed(20240611)};
  dcnv4_context *ctx = test_context();
  char *dir = make_temp_dir("fda-layer");

  test_bad_configs(ctx);
  test_bad_forward(ctx, &r);
  test_mask_nan(ctx, &r);
  test_safetensors(ctx, dir, &r);

  const dcnv4_dtype dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  int done = 0, mode = 0;
  for (size_t t = 0; t < 3 && !skip_fixed; t++) {
    if (only_dtype >= 0 && (int)dtypes[t] != only_dtype)
      continue;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
      fl_problem p;
      problem_from(&fixed[i], dtypes[t], &r, &p);
      check_problem(ctx, &p, mode++ % WS_MODES);
      problem_release(&p);
      done++;
    }
  }
  for (int i = 0; i < count; i++) {
    dcnv4_dtype dtype =
        only_dtype >= 0 ? (dcnv4_dtype)only_dtype : dtypes[rng_int(&r, 0, 2)];
    fl_problem p;
    random_problem(&r, dtype, &p);
    check_problem(ctx, &p, mode++ % WS_MODES);
    problem_release(&p);
    done++;
  }
  printf("%d configurations checked\n", done);
  remove_tree(dir);
  free(dir);
  dcnv4_context_destroy(ctx);
  return test_finish("test_fda_layer");
}
