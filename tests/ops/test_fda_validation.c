/* Bad input to dcnv4_fda_forward / dcnv4_fda_backward / the shape queries:
 * each call must return its specific status with a message naming the
 * culprit, enqueue nothing and leave the (NaN-poisoned) output buffers and
 * the event pointer untouched. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* An event pointer value no call may overwrite on failure. */
#define SENTINEL ((cl_event)(uintptr_t)0x5e5e5e50u)

typedef struct buffers {
  cl_mem val, sa, out, go, gv, gsa;
  size_t n_val, n_sa, n_out;
} buffers;

static dcnv4_fda_params base_params(dcnv4_dtype dtype) {
  dcnv4_fda_params p;
  dcnv4_fda_params_init(&p);
  p.batch = 1;
  p.queries = 5;
  p.group = 2;
  p.group_channels = 4;
  p.levels = 2;
  p.points = 2;
  p.spatial_shapes[0][0] = 3;
  p.spatial_shapes[0][1] = 4;
  p.spatial_shapes[1][0] = 2;
  p.spatial_shapes[1][1] = 2;
  p.level_start[0] = 0;
  p.level_start[1] = 12;
  p.value_len = 16;
  p.dtype = dtype;
  return p;
}

static buffers make_buffers(dcnv4_context *ctx, const dcnv4_fda_params *p) {
  dcnv4_fda_shape s;
  dcnv4_fda_get_shape(p, &s);
  buffers b;
  b.n_val = s.value_elements;
  b.n_sa = s.sampling_elements;
  b.n_out = s.output_elements;
  size_t n = b.n_val + b.n_sa + b.n_out;
  float *quarter = malloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++)
    quarter[i] = 0.25f;
  b.val = upload_values(ctx, quarter, b.n_val, p->dtype);
  b.sa = upload_values(ctx, quarter, b.n_sa, p->dtype);
  b.go = upload_values(ctx, quarter, b.n_out, p->dtype);
  b.out = poisoned_buffer(ctx, b.n_out, p->dtype);
  b.gv = poisoned_buffer(ctx, b.n_val, p->dtype);
  b.gsa = poisoned_buffer(ctx, b.n_sa, p->dtype);
  free(quarter);
  return b;
}

static void release_buffers(buffers *b) {
  cl_mem all[] = {b->val, b->sa, b->out, b->go, b->gv, b->gsa};
  for (size_t i = 0; i < 6; i++)
    host_release(all[i]);
}

/* True if every element of the buffer is still NaN. */
static int untouched(dcnv4_context *ctx, cl_mem m, size_t n, dcnv4_dtype t) {
  double *v = download_values(ctx, m, n, t);
  int ok = 1;
  for (size_t i = 0; i < n; i++)
    ok &= isnan(v[i]);
  free(v);
  return ok;
}

/* Leaves a marker message on the context, so that expect() can tell a
 * fresh message from a stale one (a successful call keeps the last). */
#define MARKER "batch is -424242"
static void mark(dcnv4_context *ctx) {
  dcnv4_fda_params p;
  dcnv4_fda_params_init(&p);
  p.batch = -424242;
  dcnv4_fda_forward(ctx, &p, NULL, NULL, NULL, 0, NULL, NULL);
}

/* `needle` (may be NULL) must appear in the context's fresh message. */
static void expect(dcnv4_context *ctx, dcnv4_status got, dcnv4_status want,
                   const char *what, const char *needle, const buffers *b,
                   dcnv4_dtype t, cl_event ev) {
  clFinish(dcnv4_context_queue(ctx));
  const char *msg = dcnv4_context_last_error(ctx);
  CHECK(got == want, "%s: status %s, expected %s (%s)", what,
        dcnv4_status_string(got), dcnv4_status_string(want), msg);
  CHECK(*msg != '\0' && !strstr(msg, MARKER), "%s: no message", what);
  CHECK(!needle || strstr(msg, needle), "%s: message \"%s\" does not name %s",
        what, msg, needle);
  CHECK(ev == SENTINEL, "%s: the event pointer was written", what);
  CHECK(untouched(ctx, b->out, b->n_out, t), "%s: output was written", what);
  CHECK(untouched(ctx, b->gv, b->n_val, t), "%s: grad_value was written", what);
  CHECK(untouched(ctx, b->gsa, b->n_sa, t),
        "%s: grad_sampling_loc_attn was written", what);
  if (getenv("TEST_VERBOSE"))
    printf("%-44s -> %s: %s\n", what, dcnv4_status_string(got), msg);
  mark(ctx);
}

/* Forward and backward with the same parameters; both must fail alike. */
static void expect_both(dcnv4_context *ctx, const dcnv4_fda_params *p,
                        dcnv4_status want, const char *what, const char *needle,
                        const buffers *b, dcnv4_dtype t) {
  cl_event ev = SENTINEL;
  dcnv4_status st =
      dcnv4_fda_forward(ctx, p, b->val, b->sa, b->out, 0, NULL, &ev);
  expect(ctx, st, want, what, needle, b, t, ev);
  dcnv4_fda_backward_buffers bb = {b->val, b->sa,  b->gv == NULL ? NULL : b->go,
                                   b->gv,  b->gsa, NULL};
  st = dcnv4_fda_backward(ctx, p, &bb, 0, NULL, &ev);
  expect(ctx, st, want, what, needle, b, t, ev);
}

typedef struct param_case {
  const char *what;
  void (*mutate)(dcnv4_fda_params *);
  dcnv4_status want;
  const char *needle; /* text the message must contain */
} param_case;

#define MUTATION(name, body)                                                   \
  static void name(dcnv4_fda_params *p) { body; }
MUTATION(zero_batch, p->batch = 0)
MUTATION(neg_queries, p->queries = -1)
MUTATION(zero_group, p->group = 0)
MUTATION(zero_channels, p->group_channels = 0)
MUTATION(zero_points, p->points = 0)
MUTATION(zero_value_len, p->value_len = 0)
MUTATION(zero_levels, p->levels = 0)
MUTATION(many_levels, p->levels = DCNV4_FDA_MAX_LEVELS + 1)
MUTATION(too_many_samples, p->points = DCNV4_FDA_MAX_SAMPLES / 2 + 1)
MUTATION(zero_height, p->spatial_shapes[1][0] = 0)
MUTATION(neg_width, p->spatial_shapes[0][1] = -2)
MUTATION(huge_width, {
  p->spatial_shapes[1][0] = 1;
  p->spatial_shapes[1][1] = (1 << 24) + 1;
  p->value_len = INT32_MAX;
})
MUTATION(overlap, p->level_start[1] = 11)
MUTATION(overlap_reordered, {
  p->level_start[0] = 3; /* rows [3, 15) and [0, 4) */
  p->level_start[1] = 0;
})
MUTATION(beyond_nv, p->value_len = 15)
MUTATION(neg_start, p->level_start[0] = -1)
MUTATION(huge_start, p->level_start[1] = INT32_MAX)
MUTATION(bad_dtype, p->dtype = (dcnv4_dtype)7)
MUTATION(neg_dtype, p->dtype = (dcnv4_dtype)-1)
MUTATION(overflow_elements, {
  p->batch = INT32_MAX;
  p->queries = INT32_MAX;
  p->group = 1 << 15;
  p->group_channels = 1 << 15;
})
MUTATION(overflow_bytes, {
  p->batch = INT32_MAX;
  p->value_len = INT32_MAX;
  p->group = 1;
  p->group_channels = 2;
})
MUTATION(overflow_channels, {
  p->group = 1 << 20;
  p->group_channels = 1 << 12;
})
MUTATION(overflow_lanes, {
  p->group = 1 << 28;
  p->group_channels = 1;
})

static const param_case param_cases[] = {
    {"batch 0", zero_batch, DCNV4_ERROR_INVALID_PARAMETER, "batch"},
    {"queries -1", neg_queries, DCNV4_ERROR_INVALID_PARAMETER, "queries"},
    {"group 0", zero_group, DCNV4_ERROR_INVALID_PARAMETER, "group"},
    {"group_channels 0", zero_channels, DCNV4_ERROR_INVALID_PARAMETER,
     "group_channels"},
    {"points 0", zero_points, DCNV4_ERROR_INVALID_PARAMETER, "points"},
    {"value_len 0", zero_value_len, DCNV4_ERROR_INVALID_PARAMETER, "value_len"},
    {"levels 0", zero_levels, DCNV4_ERROR_INVALID_PARAMETER, "levels"},
    {"levels 17", many_levels, DCNV4_ERROR_INVALID_PARAMETER, "levels"},
    {"levels * points > max", too_many_samples, DCNV4_ERROR_INVALID_PARAMETER,
     "points"},
    {"level height 0", zero_height, DCNV4_ERROR_INVALID_PARAMETER,
     "spatial_shapes[1][0]"},
    {"level width -2", neg_width, DCNV4_ERROR_INVALID_PARAMETER,
     "spatial_shapes[0][1]"},
    {"level width 2^24+1", huge_width, DCNV4_ERROR_SIZE_OVERFLOW,
     "spatial_shapes[1][1]"},
    {"overlapping levels", overlap, DCNV4_ERROR_INVALID_SHAPE, "overlap"},
    {"overlapping levels out of order", overlap_reordered,
     DCNV4_ERROR_INVALID_SHAPE, "overlap"},
    {"level beyond value_len", beyond_nv, DCNV4_ERROR_INVALID_SHAPE,
     "value_len"},
    {"level_start -1", neg_start, DCNV4_ERROR_INVALID_SHAPE, "level_start[0]"},
    {"level_start INT32_MAX", huge_start, DCNV4_ERROR_INVALID_SHAPE,
     "level_start[1]"},
    {"dtype 7", bad_dtype, DCNV4_ERROR_INVALID_PARAMETER, "dtype"},
    {"dtype -1", neg_dtype, DCNV4_ERROR_INVALID_PARAMETER, "dtype"},
    {"elements overflow", overflow_elements, DCNV4_ERROR_SIZE_OVERFLOW,
     "overflow"},
    {"bytes overflow", overflow_bytes, DCNV4_ERROR_SIZE_OVERFLOW, "overflow"},
    {"channels overflow", overflow_channels, DCNV4_ERROR_SIZE_OVERFLOW,
     "group_channels"},
    {"sampling lanes overflow", overflow_lanes, DCNV4_ERROR_SIZE_OVERFLOW,
     "points"},
};

static void check_parameters(dcnv4_context *ctx, dcnv4_dtype t,
                             const buffers *b) {
  for (size_t i = 0; i < sizeof param_cases / sizeof param_cases[0]; i++) {
    const param_case *c = &param_cases[i];
    dcnv4_fda_params p = base_params(t);
    c->mutate(&p);
    expect_both(ctx, &p, c->want, c->what, c->needle, b, t);
    /* The context-free queries agree and explain. */
    dcnv4_fda_shape s;
    char msg[512];
    size_t ws;
    CHECK(dcnv4_fda_get_shape(&p, &s) == c->want,
          "%s: dcnv4_fda_get_shape disagrees", c->what);
    CHECK(dcnv4_fda_check_params(&p, msg, sizeof msg) == c->want &&
              strstr(msg, c->needle),
          "%s: dcnv4_fda_check_params gives no explanation (\"%s\")", c->what,
          msg);
    CHECK(dcnv4_fda_backward_workspace_size(&p, &ws) == c->want,
          "%s: workspace size query disagrees", c->what);
  }
}

/* Layouts the rules allow: gaps between levels and levels in any order. */
static void check_accepted_layouts(void) {
  dcnv4_fda_params p = base_params(DCNV4_FLOAT32);
  char msg[512];
  p.level_start[0] = 4; /* rows [4, 16) */
  p.level_start[1] = 0; /* rows [0, 4) */
  CHECK(dcnv4_fda_check_params(&p, msg, sizeof msg) == DCNV4_SUCCESS,
        "levels in reverse order refused: %s", msg);
  p = base_params(DCNV4_FLOAT32);
  p.level_start[0] = 2;  /* rows [2, 14) */
  p.level_start[1] = 15; /* rows [15, 19) */
  p.value_len = 21;
  CHECK(dcnv4_fda_check_params(&p, msg, sizeof msg) == DCNV4_SUCCESS,
        "levels with gaps refused: %s", msg);
  /* Entries beyond `levels` are ignored. */
  p = base_params(DCNV4_FLOAT32);
  p.spatial_shapes[2][0] = -5;
  p.level_start[5] = -7;
  CHECK(dcnv4_fda_check_params(&p, msg, sizeof msg) == DCNV4_SUCCESS,
        "unused level entries checked: %s", msg);
  dcnv4_fda_shape s;
  CHECK(dcnv4_fda_get_shape(&p, &s) == DCNV4_SUCCESS &&
            s.value_elements == 16 * 8 && s.sampling_elements == 5 * 2 * 12 &&
            s.output_elements == 5 * 8 && s.sampling_stride == 12 &&
            s.value_bytes == 16 * 8 * 4,
        "wrong derived sizes");
}

static void check_buffers(dcnv4_context *ctx, dcnv4_dtype t, const buffers *b) {
  dcnv4_fda_params p = base_params(t);
  size_t es = dcnv4_dtype_size(t);
  cl_event ev = SENTINEL;
  cl_mem small_val = host_buffer(ctx, b->n_val * es - 1, NULL);
  cl_mem small_sa = host_buffer(ctx, b->n_sa * es - 1, NULL);
  cl_mem small_out = host_buffer(ctx, b->n_out * es - 1, NULL);
  /* A buffer of a different OpenCL context on the same device. */
  cl_device_id dev = dcnv4_context_device(ctx);
  cl_int err;
  cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cl_mem foreign = clCreateBuffer(other, CL_MEM_READ_WRITE,
                                  (b->n_val + b->n_sa) * 4, NULL, &err);
  struct {
    const char *what;
    cl_mem val, sa, out;
    dcnv4_status want;
    const char *needle;
  } fwd[] = {
      {"value NULL", NULL, b->sa, b->out, DCNV4_ERROR_NULL_POINTER, "value"},
      {"sampling_loc_attn NULL", b->val, NULL, b->out, DCNV4_ERROR_NULL_POINTER,
       "sampling_loc_attn"},
      {"output NULL", b->val, b->sa, NULL, DCNV4_ERROR_NULL_POINTER, "output"},
      {"value 1 byte short", small_val, b->sa, b->out,
       DCNV4_ERROR_BUFFER_TOO_SMALL, "value"},
      {"sampling_loc_attn 1 byte short", b->val, small_sa, b->out,
       DCNV4_ERROR_BUFFER_TOO_SMALL, "sampling_loc_attn"},
      {"value of another context", foreign, b->sa, b->out,
       DCNV4_ERROR_INVALID_BUFFER, "value"},
      {"sampling_loc_attn of another context", b->val, foreign, b->out,
       DCNV4_ERROR_INVALID_BUFFER, "sampling_loc_attn"},
      {"output aliases value", b->out, b->sa, b->out,
       DCNV4_ERROR_INVALID_BUFFER, "output"},
      {"output aliases sampling_loc_attn", b->val, b->out, b->out,
       DCNV4_ERROR_INVALID_BUFFER, "output"},
  };
  for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) {
    dcnv4_status st = dcnv4_fda_forward(ctx, &p, fwd[i].val, fwd[i].sa,
                                        fwd[i].out, 0, NULL, &ev);
    expect(ctx, st, fwd[i].want, fwd[i].what, fwd[i].needle, b, t, ev);
  }
  /* Output too small or foreign: the poisoned outputs are not involved. */
  dcnv4_status st =
      dcnv4_fda_forward(ctx, &p, b->val, b->sa, small_out, 0, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_BUFFER_TOO_SMALL, "output 1 byte short", "output",
         b, t, ev);
  st = dcnv4_fda_forward(ctx, &p, b->val, b->sa, foreign, 0, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_INVALID_BUFFER, "output of another context",
         "output", b, t, ev);

  dcnv4_fda_backward_buffers good = {b->val, b->sa, b->go, b->gv, b->gsa, NULL};
  struct {
    const char *what;
    dcnv4_fda_backward_buffers bb;
    dcnv4_status want;
    const char *needle;
  } bwd[] = {
      {"backward value NULL",
       {NULL, b->sa, b->go, b->gv, b->gsa, NULL},
       DCNV4_ERROR_NULL_POINTER,
       "value"},
      {"backward sampling_loc_attn NULL",
       {b->val, NULL, b->go, b->gv, b->gsa, NULL},
       DCNV4_ERROR_NULL_POINTER,
       "sampling_loc_attn"},
      {"grad_output NULL",
       {b->val, b->sa, NULL, b->gv, b->gsa, NULL},
       DCNV4_ERROR_NULL_POINTER,
       "grad_output"},
      {"grad_value NULL",
       {b->val, b->sa, b->go, NULL, b->gsa, NULL},
       DCNV4_ERROR_NULL_POINTER,
       "grad_value"},
      {"grad_sampling_loc_attn NULL",
       {b->val, b->sa, b->go, b->gv, NULL, NULL},
       DCNV4_ERROR_NULL_POINTER,
       "grad_sampling_loc_attn"},
      {"grad_output 1 byte short",
       {b->val, b->sa, small_out, b->gv, b->gsa, NULL},
       DCNV4_ERROR_BUFFER_TOO_SMALL,
       "grad_output"},
      {"backward value 1 byte short",
       {small_val, b->sa, b->go, b->gv, b->gsa, NULL},
       DCNV4_ERROR_BUFFER_TOO_SMALL,
       "value"},
      {"backward sampling_loc_attn 1 byte short",
       {b->val, small_sa, b->go, b->gv, b->gsa, NULL},
       DCNV4_ERROR_BUFFER_TOO_SMALL,
       "sampling_loc_attn"},
      {"grad_output of another context",
       {b->val, b->sa, foreign, b->gv, b->gsa, NULL},
       DCNV4_ERROR_INVALID_BUFFER,
       "grad_output"},
      {"grad_value aliases value",
       {b->gv, b->sa, b->go, b->gv, b->gsa, NULL},
       DCNV4_ERROR_INVALID_BUFFER,
       "grad_value"},
      {"grad_sampling_loc_attn aliases sampling_loc_attn",
       {b->val, b->gsa, b->go, b->gv, b->gsa, NULL},
       DCNV4_ERROR_INVALID_BUFFER,
       "grad_sampling_loc_attn"},
      {"grad_value aliases grad_output",
       {b->val, b->sa, b->gv, b->gv, b->gsa, NULL},
       DCNV4_ERROR_INVALID_BUFFER,
       "grad_value"},
      {"grad_value aliases grad_sampling_loc_attn",
       {b->val, b->sa, b->go, b->gv, b->gv, NULL},
       DCNV4_ERROR_INVALID_BUFFER,
       "grad_value"},
      {"workspace aliases grad_value",
       {b->val, b->sa, b->go, b->gv, b->gsa, b->gv},
       DCNV4_ERROR_INVALID_BUFFER,
       "workspace"},
      {"workspace aliases value",
       {b->val, b->sa, b->go, b->gv, b->gsa, b->val},
       DCNV4_ERROR_INVALID_BUFFER,
       "workspace"},
  };
  for (size_t i = 0; i < sizeof bwd / sizeof bwd[0]; i++) {
    st = dcnv4_fda_backward(ctx, &p, &bwd[i].bb, 0, NULL, &ev);
    expect(ctx, st, bwd[i].want, bwd[i].what, bwd[i].needle, b, t, ev);
  }
  /* Too small outputs of the backward (only those are then unpoisoned). */
  {
    cl_mem small_gv = host_buffer(ctx, b->n_val * es - 1, NULL);
    cl_mem small_gsa = host_buffer(ctx, b->n_sa * es - 1, NULL);
    dcnv4_fda_backward_buffers bb = good;
    bb.grad_value = small_gv;
    st = dcnv4_fda_backward(ctx, &p, &bb, 0, NULL, &ev);
    expect(ctx, st, DCNV4_ERROR_BUFFER_TOO_SMALL, "grad_value 1 byte short",
           "grad_value", b, t, ev);
    bb = good;
    bb.grad_sampling_loc_attn = small_gsa;
    st = dcnv4_fda_backward(ctx, &p, &bb, 0, NULL, &ev);
    expect(ctx, st, DCNV4_ERROR_BUFFER_TOO_SMALL,
           "grad_sampling_loc_attn 1 byte short", "grad_sampling_loc_attn", b,
           t, ev);
    host_release(small_gv);
    host_release(small_gsa);
  }
  st = dcnv4_fda_backward(ctx, &p, NULL, 0, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_NULL_POINTER, "backward buffers NULL", "buffers",
         b, t, ev);
  size_t ws = 1;
  CHECK(dcnv4_fda_backward_workspace_size(&p, &ws) == DCNV4_SUCCESS,
        "workspace size query failed");
  if (t == DCNV4_FLOAT32)
    CHECK(ws == 0, "fp32 workspace size %zu, expected 0", ws);
  else {
    CHECK(ws == b->n_val * 4, "workspace size %zu, expected %zu", ws,
          b->n_val * 4);
    cl_mem small_ws = host_buffer(ctx, ws - 1, NULL);
    dcnv4_fda_backward_buffers bb = good;
    bb.workspace = small_ws;
    st = dcnv4_fda_backward(ctx, &p, &bb, 0, NULL, &ev);
    expect(ctx, st, DCNV4_ERROR_BUFFER_TOO_SMALL, "workspace 1 byte short",
           "workspace", b, t, ev);
    bb.workspace = foreign;
    st = dcnv4_fda_backward(ctx, &p, &bb, 0, NULL, &ev);
    expect(ctx, st, DCNV4_ERROR_INVALID_BUFFER, "workspace of another context",
           "workspace", b, t, ev);
    host_release(small_ws);
  }

  /* Wait lists. */
  cl_event user = clCreateUserEvent(other, &err);
  cl_event null_event = NULL;
  st = dcnv4_fda_forward(ctx, &p, b->val, b->sa, b->out, 2, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_NULL_POINTER, "wait list NULL with count 2",
         "event_wait_list", b, t, ev);
  st = dcnv4_fda_forward(ctx, &p, b->val, b->sa, b->out, 0, &user, &ev);
  expect(ctx, st, DCNV4_ERROR_INVALID_PARAMETER, "wait list with count 0",
         "event_wait_list", b, t, ev);
  st = dcnv4_fda_forward(ctx, &p, b->val, b->sa, b->out, 1, &null_event, &ev);
  expect(ctx, st, DCNV4_ERROR_INVALID_PARAMETER, "NULL event in wait list",
         "event_wait_list[0]", b, t, ev);
  st = dcnv4_fda_forward(ctx, &p, b->val, b->sa, b->out, 1, &user, &ev);
  expect(ctx, st, DCNV4_ERROR_INVALID_PARAMETER,
         "wait list event of another context", "event_wait_list[0]", b, t, ev);
  st = dcnv4_fda_backward(ctx, &p, &good, 1, &user, &ev);
  expect(ctx, st, DCNV4_ERROR_INVALID_PARAMETER,
         "backward wait event of another context", "event_wait_list[0]", b, t,
         ev);
  st = dcnv4_fda_backward(ctx, &p, &good, 3, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_NULL_POINTER, "backward wait list NULL",
         "event_wait_list", b, t, ev);
  /* An incomplete user event can hold up the release of its context on
   * some drivers (the test hung on NVIDIA's once). */
  clSetUserEventStatus(user, CL_COMPLETE);
  clReleaseEvent(user);

  /* NULL context and params. */
  ev = SENTINEL;
  CHECK(dcnv4_fda_forward(NULL, &p, b->val, b->sa, b->out, 0, NULL, &ev) ==
            DCNV4_ERROR_NULL_POINTER,
        "NULL context accepted");
  CHECK(dcnv4_fda_backward(NULL, &p, &good, 0, NULL, &ev) ==
            DCNV4_ERROR_NULL_POINTER,
        "NULL context accepted by backward");
  CHECK(ev == SENTINEL, "NULL context: event written");
  st = dcnv4_fda_forward(ctx, NULL, b->val, b->sa, b->out, 0, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_NULL_POINTER, "params NULL", "params", b, t, ev);
  st = dcnv4_fda_backward(ctx, NULL, &good, 0, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_NULL_POINTER, "backward params NULL", "params", b,
         t, ev);

  host_release(small_val);
  host_release(small_sa);
  host_release(small_out);
  host_release(foreign);
  clReleaseContext(other);
}

/* After all the failures the context still works and writes everything. */
static void check_still_usable(dcnv4_context *ctx, dcnv4_dtype t,
                               const buffers *b) {
  dcnv4_fda_params p = base_params(t);
  cl_event ev = NULL;
  CHECK(dcnv4_fda_forward(ctx, &p, b->val, b->sa, b->out, 0, NULL, &ev) ==
            DCNV4_SUCCESS,
        "valid call after failures: %s", dcnv4_context_last_error(ctx));
  CHECK(ev != NULL, "no completion event");
  if (ev) {
    clWaitForEvents(1, &ev);
    clReleaseEvent(ev);
  }
  dcnv4_fda_backward_buffers bb = {b->val, b->sa, b->go, b->gv, b->gsa, NULL};
  ev = NULL;
  CHECK(dcnv4_fda_backward(ctx, &p, &bb, 0, NULL, &ev) == DCNV4_SUCCESS,
        "valid backward after failures: %s", dcnv4_context_last_error(ctx));
  CHECK(ev != NULL, "no completion event from the backward");
  if (ev) {
    clWaitForEvents(1, &ev);
    clReleaseEvent(ev);
  }
  cl_mem all[] = {b->out, b->gv, b->gsa};
  size_t n[] = {b->n_out, b->n_val, b->n_sa};
  for (int i = 0; i < 3; i++) {
    double *v = download_values(ctx, all[i], n[i], t);
    int finite = 1;
    for (size_t j = 0; j < n[i]; j++)
      finite &= isfinite(v[j]) != 0;
    CHECK(finite, "valid call left unwritten elements (buffer %d)", i);
    free(v);
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress visible if a driver hangs */
  dcnv4_context *ctx = test_context();
  mark(ctx);
  CHECK(strstr(dcnv4_context_last_error(ctx), MARKER), "no marker message");
  const dcnv4_dtype dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  for (size_t i = 0; i < 3; i++) {
    dcnv4_fda_params p = base_params(dtypes[i]);
    buffers b = make_buffers(ctx, &p);
    check_parameters(ctx, dtypes[i], &b);
    check_buffers(ctx, dtypes[i], &b);
    check_still_usable(ctx, dtypes[i], &b);
    release_buffers(&b);
  }
  check_accepted_layouts();
  /* Queries with NULL arguments. */
  dcnv4_fda_params p = base_params(DCNV4_FLOAT32);
  char msg[256];
  CHECK(dcnv4_fda_get_shape(&p, NULL) == DCNV4_ERROR_NULL_POINTER,
        "get_shape(NULL)");
  CHECK(dcnv4_fda_get_shape(NULL, &(dcnv4_fda_shape){0}) ==
            DCNV4_ERROR_NULL_POINTER,
        "get_shape(NULL params)");
  CHECK(dcnv4_fda_backward_workspace_size(&p, NULL) == DCNV4_ERROR_NULL_POINTER,
        "workspace_size(NULL)");
  CHECK(dcnv4_fda_backward_workspace_size(NULL, &(size_t){0}) ==
            DCNV4_ERROR_NULL_POINTER,
        "workspace_size(NULL params)");
  CHECK(dcnv4_fda_check_params(NULL, msg, sizeof msg) ==
                DCNV4_ERROR_NULL_POINTER &&
            msg[0] != '\0',
        "check_params(NULL)");
  CHECK(dcnv4_fda_check_params(&p, NULL, 0) == DCNV4_SUCCESS,
        "check_params without a message buffer");
  dcnv4_fda_params_init(NULL); /* must not crash */
  dcnv4_context_destroy(ctx);
  return test_finish("test_fda_validation");
}
