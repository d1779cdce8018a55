/* Bad input to dcnv4_forward / dcnv4_backward / the shape queries: each
 * call must return its specific status with a message, enqueue nothing and
 * leave the (NaN-poisoned) output buffers and the event pointer untouched. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct buffers {
  cl_mem in, om, out, go, gi, gom;
  size_t n_in, n_om, n_out;
} buffers;

static dcnv4_params base_params(dcnv4_dtype dtype) {
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = 1;
  p.height_in = 5;
  p.width_in = 6;
  p.group = 2;
  p.group_channels = 4;
  p.dtype = dtype;
  return p;
}

static buffers make_buffers(dcnv4_context *ctx, const dcnv4_params *p) {
  dcnv4_shape s;
  dcnv4_get_shape(p, &s);
  buffers b;
  b.n_in = s.input_elements;
  b.n_om = s.offset_mask_elements;
  b.n_out = s.output_elements;
  float *ones = malloc(sizeof(float) * (b.n_in + b.n_om + b.n_out));
  for (size_t i = 0; i < b.n_in + b.n_om + b.n_out; i++)
    ones[i] = 0.25f;
  b.in = upload_values(ctx, ones, b.n_in, p->dtype);
  b.om = upload_values(ctx, ones, b.n_om, p->dtype);
  b.go = upload_values(ctx, ones, b.n_out, p->dtype);
  b.out = poisoned_buffer(ctx, b.n_out, p->dtype);
  b.gi = poisoned_buffer(ctx, b.n_in, p->dtype);
  b.gom = poisoned_buffer(ctx, b.n_om, p->dtype);
  free(ones);
  return b;
}

static void release_buffers(buffers *b) {
  cl_mem all[] = {b->in, b->om, b->out, b->go, b->gi, b->gom};
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

static void expect(dcnv4_context *ctx, dcnv4_status got, dcnv4_status want,
                   const char *what, const buffers *b, dcnv4_dtype t,
                   cl_event ev) {
  clFinish(dcnv4_context_queue(ctx));
  CHECK(got == want, "%s: status %s, expected %s", what,
        dcnv4_status_string(got), dcnv4_status_string(want));
  CHECK(*dcnv4_context_last_error(ctx) != '\0', "%s: no message", what);
  CHECK(ev == NULL, "%s: an event was returned", what);
  CHECK(untouched(ctx, b->out, b->n_out, t), "%s: output was written", what);
  CHECK(untouched(ctx, b->gi, b->n_in, t), "%s: grad_input was written", what);
  CHECK(untouched(ctx, b->gom, b->n_om, t), "%s: grad_offset_mask written",
        what);
  /* Always printed: the last line shows where a driver stalled. */
  printf("%-40s -> %s: %s\n", what, dcnv4_status_string(got),
         dcnv4_context_last_error(ctx));
  fflush(stdout);
}

/* Forward and backward with the same parameters; both must fail alike. */
static void expect_both(dcnv4_context *ctx, const dcnv4_params *p,
                        dcnv4_status want, const char *what, const buffers *b,
                        dcnv4_dtype t) {
  cl_event ev = NULL;
  dcnv4_status st = dcnv4_forward(ctx, p, b->in, b->om, b->out, 0, NULL, &ev);
  expect(ctx, st, want, what, b, t, ev);
  dcnv4_backward_buffers bb = {b->in, b->om, b->go, b->gi, b->gom, NULL};
  st = dcnv4_backward(ctx, p, &bb, 0, NULL, &ev);
  expect(ctx, st, want, what, b, t, ev);
}

typedef struct param_case {
  const char *what;
  void (*mutate)(dcnv4_params *);
  dcnv4_status want;
} param_case;

#define MUTATION(name, body)                                                   \
  static void name(dcnv4_params *p) { body; }
MUTATION(zero_batch, p->batch = 0)
MUTATION(neg_height, p->height_in = -3)
MUTATION(zero_width, p->width_in = 0)
MUTATION(zero_group, p->group = 0)
MUTATION(zero_channels, p->group_channels = 0)
MUTATION(zero_kernel, p->kernel_h = 0)
MUTATION(neg_kernel_w, p->kernel_w = -1)
MUTATION(zero_stride, p->stride_h = 0)
MUTATION(neg_stride, p->stride_w = -2)
MUTATION(neg_pad, p->pad_h = -1)
MUTATION(zero_dilation, p->dilation_w = 0)
MUTATION(bad_rc, p->remove_center = 2)
MUTATION(bad_softmax, p->softmax = -1)
MUTATION(nan_scale, p->offset_scale = NAN)
MUTATION(inf_scale, p->offset_scale = INFINITY)
MUTATION(bad_dtype, p->dtype = (dcnv4_dtype)7)
MUTATION(short_stride, p->offset_mask_stride = 2 * 9 * 3 - 1)
MUTATION(neg_om_stride, p->offset_mask_stride = -8)
MUTATION(rc_1x1, {
  p->kernel_h = p->kernel_w = 1;
  p->remove_center = 1;
})
MUTATION(empty_output, {
  p->kernel_h = 9;
  p->pad_h = 0;
})
MUTATION(huge_kernel, p->kernel_h = p->kernel_w = 40)
MUTATION(huge_extent, p->pad_w = 1 << 24)
MUTATION(huge_dilation, p->dilation_h = 1 << 25)
MUTATION(overflow_elements, {
  p->batch = INT32_MAX;
  p->height_in = p->width_in = 1 << 20;
  p->group = 1 << 20;
})
MUTATION(overflow_channels, {
  p->group = 1 << 20;
  p->group_channels = 1 << 12;
})
MUTATION(overflow_lanes, {
  p->group = (1 << 30) / 9;
  p->group_channels = 1;
})

static const param_case param_cases[] = {
    {"batch 0", zero_batch, DCNV4_ERROR_INVALID_PARAMETER},
    {"height_in -3", neg_height, DCNV4_ERROR_INVALID_PARAMETER},
    {"width_in 0", zero_width, DCNV4_ERROR_INVALID_PARAMETER},
    {"group 0", zero_group, DCNV4_ERROR_INVALID_PARAMETER},
    {"group_channels 0", zero_channels, DCNV4_ERROR_INVALID_PARAMETER},
    {"kernel_h 0", zero_kernel, DCNV4_ERROR_INVALID_PARAMETER},
    {"kernel_w -1", neg_kernel_w, DCNV4_ERROR_INVALID_PARAMETER},
    {"stride_h 0", zero_stride, DCNV4_ERROR_INVALID_PARAMETER},
    {"stride_w -2", neg_stride, DCNV4_ERROR_INVALID_PARAMETER},
    {"pad_h -1", neg_pad, DCNV4_ERROR_INVALID_PARAMETER},
    {"dilation_w 0", zero_dilation, DCNV4_ERROR_INVALID_PARAMETER},
    {"remove_center 2", bad_rc, DCNV4_ERROR_INVALID_PARAMETER},
    {"softmax -1", bad_softmax, DCNV4_ERROR_INVALID_PARAMETER},
    {"offset_scale NaN", nan_scale, DCNV4_ERROR_INVALID_PARAMETER},
    {"offset_scale inf", inf_scale, DCNV4_ERROR_INVALID_PARAMETER},
    {"dtype 7", bad_dtype, DCNV4_ERROR_INVALID_PARAMETER},
    {"offset_mask_stride < G*K*3", short_stride, DCNV4_ERROR_INVALID_PARAMETER},
    {"offset_mask_stride -8", neg_om_stride, DCNV4_ERROR_INVALID_PARAMETER},
    {"remove_center on 1x1", rc_1x1, DCNV4_ERROR_INVALID_PARAMETER},
    {"empty output", empty_output, DCNV4_ERROR_INVALID_SHAPE},
    {"40x40 kernel", huge_kernel, DCNV4_ERROR_INVALID_PARAMETER},
    {"pad 2^24", huge_extent, DCNV4_ERROR_SIZE_OVERFLOW},
    {"dilation 2^25", huge_dilation, DCNV4_ERROR_SIZE_OVERFLOW},
    {"elements overflow", overflow_elements, DCNV4_ERROR_SIZE_OVERFLOW},
    {"channels overflow", overflow_channels, DCNV4_ERROR_SIZE_OVERFLOW},
    {"offset lanes overflow", overflow_lanes, DCNV4_ERROR_SIZE_OVERFLOW},
};

static void check_parameters(dcnv4_context *ctx, dcnv4_dtype t,
                             const buffers *b) {
  for (size_t i = 0; i < sizeof param_cases / sizeof param_cases[0]; i++) {
    dcnv4_params p = base_params(t);
    param_cases[i].mutate(&p);
    expect_both(ctx, &p, param_cases[i].want, param_cases[i].what, b, t);
    /* The context-free queries agree and explain. */
    dcnv4_shape s;
    char msg[256];
    size_t ws;
    CHECK(dcnv4_get_shape(&p, &s) == param_cases[i].want,
          "%s: dcnv4_get_shape disagrees", param_cases[i].what);
    CHECK(dcnv4_check_params(&p, msg, sizeof msg) == param_cases[i].want &&
              msg[0] != '\0',
          "%s: dcnv4_check_params gives no explanation", param_cases[i].what);
    CHECK(dcnv4_backward_workspace_size(&p, &ws) == param_cases[i].want,
          "%s: workspace size query disagrees", param_cases[i].what);
  }
}

static void check_buffers(dcnv4_context *ctx, dcnv4_dtype t, const buffers *b) {
  dcnv4_params p = base_params(t);
  size_t es = dcnv4_dtype_size(t);
  cl_event ev = NULL;
  cl_mem small_in = host_buffer(ctx, b->n_in * es - 1, NULL);
  cl_mem small_om = host_buffer(ctx, b->n_om * es - 1, NULL);
  cl_mem small_out = host_buffer(ctx, b->n_out * es - 1, NULL);
  /* A buffer of a different OpenCL context on the same device. */
  cl_device_id dev = dcnv4_context_device(ctx);
  cl_int err;
  cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cl_mem foreign =
      clCreateBuffer(other, CL_MEM_READ_WRITE, b->n_out * es * 4, NULL, &err);
  struct {
    const char *what;
    cl_mem in, om, out;
    dcnv4_status want;
  } fwd[] = {
      {"input NULL", NULL, b->om, b->out, DCNV4_ERROR_NULL_POINTER},
      {"offset_mask NULL", b->in, NULL, b->out, DCNV4_ERROR_NULL_POINTER},
      {"output NULL", b->in, b->om, NULL, DCNV4_ERROR_NULL_POINTER},
      {"input 1 byte short", small_in, b->om, b->out,
       DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"offset_mask 1 byte short", b->in, small_om, b->out,
       DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"input of another context", foreign, b->om, b->out,
       DCNV4_ERROR_INVALID_BUFFER},
      {"output aliases input", b->out, b->om, b->out,
       DCNV4_ERROR_INVALID_BUFFER},
      {"output aliases offset_mask", b->in, b->out, b->out,
       DCNV4_ERROR_INVALID_BUFFER},
  };
  for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) {
    dcnv4_status st =
        dcnv4_forward(ctx, &p, fwd[i].in, fwd[i].om, fwd[i].out, 0, NULL, &ev);
    expect(ctx, st, fwd[i].want, fwd[i].what, b, t, ev);
  }
  /* output too small: the poisoned outputs are not involved. */
  dcnv4_status st =
      dcnv4_forward(ctx, &p, b->in, b->om, small_out, 0, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_BUFFER_TOO_SMALL, "output 1 byte short", b, t,
         ev);

  dcnv4_backward_buffers good = {b->in, b->om, b->go, b->gi, b->gom, NULL};
  struct {
    const char *what;
    dcnv4_backward_buffers bb;
    dcnv4_status want;
  } bwd[] = {
      {"grad_output NULL",
       {b->in, b->om, NULL, b->gi, b->gom, NULL},
       DCNV4_ERROR_NULL_POINTER},
      {"grad_input NULL",
       {b->in, b->om, b->go, NULL, b->gom, NULL},
       DCNV4_ERROR_NULL_POINTER},
      {"grad_offset_mask NULL",
       {b->in, b->om, b->go, b->gi, NULL, NULL},
       DCNV4_ERROR_NULL_POINTER},
      {"grad_output short",
       {b->in, b->om, small_out, b->gi, b->gom, NULL},
       DCNV4_ERROR_BUFFER_TOO_SMALL},
      {"grad_input aliases input",
       {b->gi, b->om, b->go, b->gi, b->gom, NULL},
       DCNV4_ERROR_INVALID_BUFFER},
      {"grad_input aliases grad_offset_mask",
       {b->in, b->om, b->go, b->gi, b->gi, NULL},
       DCNV4_ERROR_INVALID_BUFFER},
      {"workspace aliases grad_input",
       {b->in, b->om, b->go, b->gi, b->gom, b->gi},
       DCNV4_ERROR_INVALID_BUFFER},
  };
  for (size_t i = 0; i < sizeof bwd / sizeof bwd[0]; i++) {
    st = dcnv4_backward(ctx, &p, &bwd[i].bb, 0, NULL, &ev);
    expect(ctx, st, bwd[i].want, bwd[i].what, b, t, ev);
  }
  st = dcnv4_backward(ctx, &p, NULL, 0, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_NULL_POINTER, "backward buffers NULL", b, t, ev);
  if (t != DCNV4_FLOAT32) {
    size_t ws = 0;
    dcnv4_backward_workspace_size(&p, &ws);
    CHECK(ws == b->n_in * 4, "workspace size %zu, expected %zu", ws,
          b->n_in * 4);
    cl_mem small_ws = host_buffer(ctx, ws - 1, NULL);
    dcnv4_backward_buffers bb = good;
    bb.workspace = small_ws;
    st = dcnv4_backward(ctx, &p, &bb, 0, NULL, &ev);
    expect(ctx, st, DCNV4_ERROR_BUFFER_TOO_SMALL, "workspace 1 byte short", b,
           t, ev);
    host_release(small_ws);
  }

  /* Wait lists. */
  cl_event user = clCreateUserEvent(other, &err);
  st = dcnv4_forward(ctx, &p, b->in, b->om, b->out, 2, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_NULL_POINTER, "wait list NULL with count 2", b, t,
         ev);
  st = dcnv4_forward(ctx, &p, b->in, b->om, b->out, 0, &user, &ev);
  expect(ctx, st, DCNV4_ERROR_INVALID_PARAMETER, "wait list with count 0", b, t,
         ev);
  st = dcnv4_forward(ctx, &p, b->in, b->om, b->out, 1, &user, &ev);
  expect(ctx, st, DCNV4_ERROR_INVALID_PARAMETER,
         "wait list event of another context", b, t, ev);
  st = dcnv4_backward(ctx, &p, &good, 1, &user, &ev);
  expect(ctx, st, DCNV4_ERROR_INVALID_PARAMETER,
         "backward wait event of another context", b, t, ev);
  /* A user event left incomplete can stall some drivers at clFinish. */
  clSetUserEventStatus(user, CL_COMPLETE);
  clReleaseEvent(user);

  /* NULL context and params. */
  CHECK(dcnv4_forward(NULL, &p, b->in, b->om, b->out, 0, NULL, &ev) ==
            DCNV4_ERROR_NULL_POINTER,
        "NULL context accepted");
  CHECK(dcnv4_backward(NULL, &p, &good, 0, NULL, &ev) ==
            DCNV4_ERROR_NULL_POINTER,
        "NULL context accepted by backward");
  st = dcnv4_forward(ctx, NULL, b->in, b->om, b->out, 0, NULL, &ev);
  expect(ctx, st, DCNV4_ERROR_NULL_POINTER, "params NULL", b, t, ev);

  host_release(small_in);
  host_release(small_om);
  host_release(small_out);
  host_release(foreign);
  clReleaseContext(other);
}

/* After all the failures the context still works and writes everything. */
static void check_still_usable(dcnv4_context *ctx, dcnv4_dtype t,
                               const buffers *b) {
  dcnv4_params p = base_params(t);
  cl_event ev = NULL;
  CHECK(dcnv4_forward(ctx, &p, b->in, b->om, b->out, 0, NULL, &ev) ==
            DCNV4_SUCCESS,
        "valid call after failures: %s", dcnv4_context_last_error(ctx));
  CHECK(ev != NULL, "no completion event");
  if (ev) {
    clWaitForEvents(1, &ev);
    clReleaseEvent(ev);
  }
  double *v = download_values(ctx, b->out, b->n_out, t);
  int finite = 1;
  for (size_t i = 0; i < b->n_out; i++)
    finite &= isfinite(v[i]) != 0;
  CHECK(finite, "valid call left unwritten elements");
  free(v);
}

int main(void) {
  dcnv4_context *ctx = test_context();
  const dcnv4_dtype dtypes[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  for (size_t i = 0; i < 3; i++) {
    dcnv4_params p = base_params(dtypes[i]);
    buffers b = make_buffers(ctx, &p);
    check_parameters(ctx, dtypes[i], &b);
    check_buffers(ctx, dtypes[i], &b);
    check_still_usable(ctx, dtypes[i], &b);
    release_buffers(&b);
  }
  /* Queries with NULL results. */
  dcnv4_params p = base_params(DCNV4_FLOAT32);
  CHECK(dcnv4_get_shape(&p, NULL) == DCNV4_ERROR_NULL_POINTER,
        "get_shape(NULL)");
  CHECK(dcnv4_backward_workspace_size(&p, NULL) == DCNV4_ERROR_NULL_POINTER,
        "workspace_size(NULL)");
  CHECK(dcnv4_check_params(NULL, NULL, 0) == DCNV4_ERROR_NULL_POINTER,
        "check_params(NULL)");
  dcnv4_context_destroy(ctx);
  return test_finish("test_dcnv4_validation");
}
