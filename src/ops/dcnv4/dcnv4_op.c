/* DCNv4 core operator: parameter validation and the forward/backward
 * launchers (kernels in dcnv4_forward.cl and dcnv4_backward.cl). */
#include "ops/common/op_common.h"
#include "tuning/tuning.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Coordinates are split into an exact integer and a small float part in the
 * kernels; both bounds keep the integer part exact in float. */
#define MAX_EXTENT (1 << 24)
#define MAX_KERNEL_POINTS 1024

/* Mirrors dcnv4_geometry in the kernels (all 4-byte fields, no padding). */
typedef struct geometry_arg {
  cl_int height_in, width_in, height_out, width_out, group;
  cl_int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  cl_float offset_scale;
  cl_int offset_mask_stride;
  cl_int group_channels, kernel_h, kernel_w, remove_center, softmax;
  cl_int batch;
} geometry_arg;

void dcnv4_params_init(dcnv4_params *p) {
  if (!p)
    return;
  memset(p, 0, sizeof *p);
  p->group = 1;
  p->kernel_h = p->kernel_w = 3;
  p->stride_h = p->stride_w = 1;
  p->pad_h = p->pad_w = 1;
  p->dilation_h = p->dilation_w = 1;
  p->offset_scale = 1.0f;
  p->dtype = DCNV4_FLOAT32;
}

/* Validates and derives; messages go to ctx when given. */
static dcnv4_status compute_shape(dcnv4_context *ctx, const dcnv4_params *p,
                                  dcnv4_shape *s) {
  if (!p)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "params is NULL");
  const dcn_op_field ranges[] = {
      {"batch", p->batch, 1},
      {"height_in", p->height_in, 1},
      {"width_in", p->width_in, 1},
      {"group", p->group, 1},
      {"group_channels", p->group_channels, 1},
      {"kernel_h", p->kernel_h, 1},
      {"kernel_w", p->kernel_w, 1},
      {"stride_h", p->stride_h, 1},
      {"stride_w", p->stride_w, 1},
      {"pad_h", p->pad_h, 0},
      {"pad_w", p->pad_w, 0},
      {"dilation_h", p->dilation_h, 1},
      {"dilation_w", p->dilation_w, 1},
      {"offset_mask_stride", p->offset_mask_stride, 0},
  };
  dcnv4_status st;
  if ((st = dcn_op_check_fields(ctx, p->dtype, ranges,
                                sizeof ranges / sizeof ranges[0])) ||
      (st = dcn_op_check_flag(ctx, "remove_center", p->remove_center)) ||
      (st = dcn_op_check_flag(ctx, "softmax", p->softmax)) ||
      (st = dcn_op_check_flag(ctx, "deterministic", p->deterministic)))
    return st;
  if (!isfinite(p->offset_scale))
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "offset_scale must be finite");
  /* 64-bit intermediates: none of these can overflow for int32 inputs. */
  int64_t span_h = (int64_t)p->dilation_h * (p->kernel_h - 1) + 1;
  int64_t span_w = (int64_t)p->dilation_w * (p->kernel_w - 1) + 1;
  int64_t padded_h = (int64_t)p->height_in + 2 * (int64_t)p->pad_h;
  int64_t padded_w = (int64_t)p->width_in + 2 * (int64_t)p->pad_w;
  if (span_h > MAX_EXTENT || span_w > MAX_EXTENT || padded_h > MAX_EXTENT ||
      padded_w > MAX_EXTENT)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "spatial extents (padded input %lldx%lld, kernel span "
                    "%lldx%lld) must stay below 2^24",
                    (long long)padded_h, (long long)padded_w, (long long)span_h,
                    (long long)span_w);
  int64_t points = (int64_t)p->kernel_h * p->kernel_w - p->remove_center;
  if (points < 1 || points > MAX_KERNEL_POINTS)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "the kernel has %lld sampling points; 1 to %d are "
                    "supported",
                    (long long)points, MAX_KERNEL_POINTS);
  if (padded_h < span_h || padded_w < span_w)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "the kernel span %lldx%lld exceeds the padded input "
                    "%lldx%lld: the output would be empty",
                    (long long)span_h, (long long)span_w, (long long)padded_h,
                    (long long)padded_w);
  int64_t channels = (int64_t)p->group * p->group_channels;
  int64_t lanes = (int64_t)p->group * points * 3;
  if (channels > INT32_MAX || lanes > INT32_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "group * group_channels (%lld) or group * K * 3 (%lld) "
                    "exceeds 2^31-1",
                    (long long)channels, (long long)lanes);
  int64_t stride = p->offset_mask_stride;
  if (stride == 0) {
    stride = (lanes + 7) / 8 * 8;
    if (stride > INT32_MAX)
      return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                      "the default offset_mask_stride exceeds 2^31-1");
  } else if (stride < lanes)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "offset_mask_stride is %lld; it must be at least "
                    "group*K*3 = %lld",
                    (long long)stride, (long long)lanes);

  memset(s, 0, sizeof *s);
  s->height_out = (int32_t)((padded_h - span_h) / p->stride_h + 1);
  if ((int64_t)p->batch * s->height_out > INT32_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "batch * height_out (%lld) exceeds 2^31-1",
                    (long long)p->batch * s->height_out);
  s->width_out = (int32_t)((padded_w - span_w) / p->stride_w + 1);
  s->channels = (int32_t)channels;
  s->points = (int32_t)points;
  s->offset_mask_stride = (int32_t)stride;
  size_t esize = dcnv4_dtype_size(p->dtype);
  uint64_t in_f[] = {(uint64_t)p->batch, (uint64_t)p->height_in,
                     (uint64_t)p->width_in, (uint64_t)channels};
  uint64_t out_f[] = {(uint64_t)p->batch, (uint64_t)s->height_out,
                      (uint64_t)s->width_out, (uint64_t)channels};
  uint64_t om_f[] = {(uint64_t)p->batch, (uint64_t)s->height_out,
                     (uint64_t)s->width_out, (uint64_t)stride};
  if (!dcn_product_u64(in_f, 4, &s->input_elements) ||
      !dcn_product_u64(out_f, 4, &s->output_elements) ||
      !dcn_product_u64(om_f, 4, &s->offset_mask_elements) ||
      !dcn_bytes(s->input_elements, esize, &s->input_bytes) ||
      !dcn_bytes(s->output_elements, esize, &s->output_bytes) ||
      !dcn_bytes(s->offset_mask_elements, esize, &s->offset_mask_bytes) ||
      !dcn_bytes(s->input_elements, 4, &(size_t){0}))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "tensor sizes overflow (batch %d, %dx%d in, %dx%d out, "
                    "%lld channels)",
                    (int)p->batch, (int)p->height_in, (int)p->width_in,
                    (int)s->height_out, (int)s->width_out, (long long)channels);
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_get_shape(const dcnv4_params *params, dcnv4_shape *shape) {
  if (!shape)
    return DCNV4_ERROR_NULL_POINTER;
  return compute_shape(NULL, params, shape);
}

dcnv4_status dcnv4_check_params(const dcnv4_params *params, char *message,
                                size_t message_size) {
  /* A blank context collects the message; nothing else of it is used. */
  dcnv4_context scratch;
  memset(&scratch, 0, sizeof scratch);
  dcnv4_shape s;
  dcnv4_status st = compute_shape(&scratch, params, &s);
  return dcn_op_message(&scratch, st, message, message_size);
}

/* The deterministic backward's workspace (see deterministic.h): one point
 * per (pixel, group, k), (H_in+1)*(W_in+1) buckets per (image, group). */
static bool det_plan(const dcnv4_params *p, const dcnv4_shape *s,
                     dcn_det_plan *plan) {
  uint64_t points, buckets;
  const uint64_t pf[] = {(uint64_t)p->batch, (uint64_t)s->height_out,
                         (uint64_t)s->width_out, (uint64_t)p->group,
                         (uint64_t)s->points};
  const uint64_t bf[] = {(uint64_t)p->batch, (uint64_t)p->group,
                         (uint64_t)p->height_in + 1, (uint64_t)p->width_in + 1};
  return dcn_product_u64(pf, 5, &points) && dcn_product_u64(bf, 4, &buckets) &&
         dcn_det_plan_make(points, buckets, plan);
}

static const dcn_op_names op_names = {
    "input",
    "offset_mask",
    "grad_input",
    "grad_offset_mask",
    "dcnv4_backward_deterministic",
    "dcnv4_det_points",
    "dcnv4_det_gather",
    "N*H_out*W_out*group*K and N*group*(H_in+1)*(W_in+1)"};

/* Validates (messages to ctx when given) and describes the call to the
 * skeleton (op_common.h). */
static dcnv4_status describe(dcnv4_context *ctx, const dcnv4_params *p,
                             dcnv4_shape *s, dcn_op_call *c) {
  dcnv4_status st = compute_shape(ctx, p, s);
  if (st != DCNV4_SUCCESS)
    return st;
  const dcn_op_tensor image = {s->input_elements, s->input_bytes},
                      sampling = {s->offset_mask_elements,
                                  s->offset_mask_bytes},
                      output = {s->output_elements, s->output_bytes};
  dcn_op_call_init(c, &op_names, p->dtype, p->group_channels,
                   p->deterministic != 0, image, sampling, output);
  c->det_fits = det_plan(p, s, &c->det);
  return DCNV4_SUCCESS;
}

/* Checks shared by forward and backward before anything is touched. */
static dcnv4_status check_call(dcnv4_context *ctx, const dcnv4_params *params,
                               dcnv4_shape *s, dcn_op_call *c, cl_uint num_wait,
                               const cl_event *wait) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_status st = describe(ctx, params, s, c);
  return st != DCNV4_SUCCESS ? st : dcn_check_wait_list(ctx, num_wait, wait);
}

dcnv4_status dcnv4_backward_workspace_size(const dcnv4_params *params,
                                           size_t *bytes) {
  if (!bytes)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_shape s;
  dcn_op_call c;
  dcnv4_status st = describe(NULL, params, &s, &c);
  return st != DCNV4_SUCCESS ? st : dcn_op_backward_workspace_size(&c, bytes);
}

/* Whether 32-bit signed indices cover every tensor of the call. */
static bool needs_64bit_indices(const dcnv4_shape *s) {
  const uint64_t elements[] = {s->input_elements, s->output_elements,
                               s->offset_mask_elements};
  return dcn_needs_idx64(elements, 3);
}

static geometry_arg make_geometry(const dcnv4_params *p, const dcnv4_shape *s) {
  geometry_arg g = {p->height_in,
                    p->width_in,
                    s->height_out,
                    s->width_out,
                    p->group,
                    p->stride_h,
                    p->stride_w,
                    p->pad_h,
                    p->pad_w,
                    p->dilation_h,
                    p->dilation_w,
                    p->offset_scale,
                    s->offset_mask_stride,
                    p->group_channels,
                    p->kernel_h,
                    p->kernel_w,
                    p->remove_center,
                    p->softmax,
                    p->batch};
  return g;
}

/* The -D options shared by the forward and backward programs, then `extra`. */
static void kernel_options(const dcnv4_context *ctx, const dcnv4_params *p,
                           int vec, bool idx64, int unroll, int specialize,
                           int max_regs, const char *extra, char *out,
                           size_t size) {
  int n = snprintf(out, size,
                   "-DDCNV4_OP=1 -DDTYPE=%d -DVEC=%d -DIDX64=%d -DUNROLL=%d "
                   "-DSPECIALIZE=%d",
                   (int)p->dtype, vec, idx64 ? 1 : 0, unroll ? 1 : 0,
                   specialize ? 1 : 0);
  if (specialize && n > 0 && (size_t)n < size)
    n += snprintf(out + n, size - (size_t)n,
                  " -DGROUP_CHANNELS=%d -DKH=%d -DKW=%d -DREMOVE_CENTER=%d "
                  "-DSOFTMAX=%d",
                  (int)p->group_channels, (int)p->kernel_h, (int)p->kernel_w,
                  (int)p->remove_center, (int)p->softmax);
  if (specialize && n > 0 && (size_t)n < size) {
    /* offset_scale as its bit pattern: exact, and independent of the
     * locale's decimal point. One program per geometry, as for the shape. */
    float scale = p->offset_scale;
    uint32_t bits;
    memcpy(&bits, &scale, sizeof bits);
    n += snprintf(out + n, size - (size_t)n,
                  " -DFIXED_GEOMETRY=1 -DSTRIDE_H=%d -DSTRIDE_W=%d -DPAD_H=%d "
                  "-DPAD_W=%d -DDILATION_H=%d -DDILATION_W=%d "
                  "-DOFFSET_SCALE_BITS=0x%08" PRIx32,
                  (int)p->stride_h, (int)p->stride_w, (int)p->pad_h,
                  (int)p->pad_w, (int)p->dilation_h, (int)p->dilation_w, bits);
  }
  if (n > 0 && (size_t)n < size)
    snprintf(out + n, size - (size_t)n, "%s", extra);
  dcn_register_cap_option(ctx, max_regs, out, size);
}

/* The 3-D range of the forward and backward kernels (see
 * dcnv4_forward.cl): dimension 0 spans whole groups of channel chunks,
 * dimension 1 output columns, dimension 2 output rows of all images. */
typedef struct range_plan {
  size_t global[3], local[3];
  size_t local_bytes; /* the __local argument */
} range_plan;

/* What a launch asks of plan_range: about `target` work-items; `fixed`
 * (shape-independent programs) keeps one work-group shape for every shape;
 * local memory of `item_floats` per work-item plus `group_floats` per
 * (column, group); `rows` > 1 (kernels without per-item local memory that
 * skip the padding rows of dimension 2) spreads the work-group over that
 * many output rows; `groups` > 0 caps the groups per work-group, so that a
 * work-group covers more pixels of fewer groups (0: all that fit). */
typedef struct range_request {
  size_t target;
  bool fixed;
  size_t item_floats, group_floats;
  int rows, groups;
} range_request;

/* Picks the work-group shape for `q` within what the device and the kernel
 * allow. False if not even one group's chunks fit. */
static bool plan_range(const dcnv4_context *ctx, cl_kernel kernel,
                       const dcnv4_params *p, const dcnv4_shape *s, int vec,
                       const range_request *q, range_plan *r) {
  const size_t target = q->target, item_floats = q->item_floats,
               group_floats = q->group_floats;
  const int rows = q->rows;
  /* What the device and the kernel allow, then the tuned size within it. */
  size_t hard = dcn_kernel_item_limit(ctx, kernel, ctx->max_item_sizes[0]);
  size_t limit = target < hard ? target : hard;
  const size_t chunks = (size_t)s->channels / (size_t)vec;
  const size_t per_group = (size_t)p->group_channels / (size_t)vec;
  if (q->fixed && item_floats == 0 && group_floats == 0) {
    /* A shape-independent program gets a shape-independent work-group too:
     * PoCL compiles a work-group function per local size. */
    r->local[0] = target < limit ? target : limit;
    r->local[1] = r->local[2] = 1;
    r->local_bytes = 4;
    r->global[0] = (chunks + r->local[0] - 1) / r->local[0] * r->local[0];
    r->global[1] = (size_t)s->width_out;
    r->global[2] = (size_t)p->batch * (size_t)s->height_out;
    return true;
  }
  /* A group's chunks share one work-group: a tuned size below that (e.g.
   * 128 for 129 channels at width 1) grows to it where the device allows. */
  if (per_group > limit && per_group <= hard)
    limit = per_group;
  if (per_group > limit)
    return false;
  size_t l0 = chunks <= limit ? chunks : per_group * (limit / per_group);
  if (q->groups > 0 && l0 > per_group * (size_t)q->groups)
    l0 = per_group * (size_t)q->groups;
  const size_t all_rows = (size_t)p->batch * (size_t)s->height_out;
  size_t l2 = 1;
  if (rows > 1 && item_floats == 0) {
    l2 = (size_t)rows;
    if (l2 > all_rows)
      l2 = all_rows;
    if (l2 > ctx->max_item_sizes[2])
      l2 = ctx->max_item_sizes[2];
    if (l2 > limit / l0)
      l2 = limit / l0 > 0 ? limit / l0 : 1;
  }
  size_t l1 = limit / (l0 * l2) > 0 ? limit / (l0 * l2) : 1;
  if (l1 > (size_t)s->width_out)
    l1 = (size_t)s->width_out;
  if (l1 > ctx->max_item_sizes[1])
    l1 = ctx->max_item_sizes[1];
#define LOCAL_BYTES(a, b)                                                      \
  (4 * ((a) * (b)*item_floats + l2 * (b) * ((a) / per_group) * group_floats))
  const size_t avail = (size_t)ctx->local_mem_bytes;
  while (LOCAL_BYTES(l0, l1) > avail && l2 > 1)
    l2 /= 2;
  while (LOCAL_BYTES(l0, l1) > avail && l1 > 1)
    l1 /= 2;
  while (LOCAL_BYTES(l0, l1) > avail && l0 > per_group)
    l0 -= per_group;
  if (LOCAL_BYTES(l0, l1) > avail)
    return false;
  r->local_bytes = LOCAL_BYTES(l0, l1) > 0 ? LOCAL_BYTES(l0, l1) : 4;
#undef LOCAL_BYTES
  r->local[0] = l0;
  r->local[1] = l1;
  r->local[2] = l2;
  r->global[0] = (chunks + l0 - 1) / l0 * l0;
  r->global[1] = ((size_t)s->width_out + l1 - 1) / l1 * l1;
  r->global[2] = (all_rows + l2 - 1) / l2 * l2;
  return true;
}

/* The tiled backward's range (dcnv4_backward.cl, dcnv4_backward_tiled):
 * a tile of `rows` x tw output pixels of one group per work-group, about
 * `local` work-items, and its region's fixed-point accumulators in local
 * memory. False where it does not apply (no halo, no room, sizes beyond
 * int). */
typedef struct tile_plan {
  range_plan range;
  cl_int ext_h, ext_w, region_h, region_w, tiles_w;
} tile_plan;

static bool plan_tiles(const dcnv4_context *ctx, cl_kernel kernel,
                       const dcnv4_params *p, const dcnv4_shape *s, int vec,
                       const dcn_dcnv4_backward_tuning *cfg, tile_plan *t) {
  if (cfg->halo <= 0 || !cfg->specialize)
    return false;
  size_t limit = dcn_kernel_item_limit(ctx, kernel, ctx->max_item_sizes[0]);
  if (cfg->local_size < limit)
    limit = cfg->local_size;
  const size_t chunks = (size_t)p->group_channels / (size_t)vec;
  if (chunks > limit)
    return false;
  size_t th = cfg->rows > 0 ? (size_t)cfg->rows : 1;
  if (th > (size_t)s->height_out)
    th = (size_t)s->height_out;
  if (th * chunks > limit)
    th = limit / chunks;
  if (th > ctx->max_item_sizes[1])
    th = ctx->max_item_sizes[1];
  size_t tw = limit / (chunks * th);
  if (tw > (size_t)s->width_out)
    tw = (size_t)s->width_out;
  if (tw * chunks > ctx->max_item_sizes[0])
    tw = ctx->max_item_sizes[0] / chunks;
  if (th == 0 || tw == 0)
    return false;
  /* The built-in default leaves narrow images to the per-point kernel: on
   * the H100 the tiled one gained 5-20 % from 25 output columns up, 8-11 %
   * at 14 columns with group_channels 16, and lost 6-25 % at 14 columns with
   * 32 and up to 4 % at 7 columns (partial edge tiles). A tuned or
   * overridden halo is taken as given. */
  const size_t min_width = p->group_channels <= 16 ? 12 : 24;
  if (cfg->source == DCN_TUNING_BUILTIN && (size_t)s->width_out < min_width)
    return false;
  /* The sampling grid spans offset_scale * dilation * (kernel - 1) around
   * a pixel's base; `tile` more pixels of offsets on each side. */
  const double scale = fabs((double)p->offset_scale);
  const double span_h = scale * p->dilation_h * (p->kernel_h - 1);
  const double span_w = scale * p->dilation_w * (p->kernel_w - 1);
  if (!(span_h <= 64.0 && span_w <= 64.0))
    return false;
  const size_t ext_h = (size_t)ceil(span_h) + (size_t)cfg->halo;
  const size_t ext_w = (size_t)ceil(span_w) + (size_t)cfg->halo;
  const size_t region_h = (th - 1) * (size_t)p->stride_h + 2 * ext_h + 2;
  const size_t region_w = (tw - 1) * (size_t)p->stride_w + 2 * ext_w + 2;
  /* dcnv4_backward.cl's layout: one word per channel of each region
   * pixel, D + 1 words apart, and `vec` bounds per work-item; later the
   * partials, 3K per work-item. */
  const size_t items = chunks * tw * th;
  size_t floats = region_h * region_w * ((size_t)p->group_channels + 1) +
                  items * (size_t)vec;
  if (items * (size_t)s->points * 3 > floats)
    floats = items * (size_t)s->points * 3;
  if (region_h > 4096 || region_w > 4096 ||
      4 * floats > (size_t)ctx->local_mem_bytes)
    return false;
  const size_t tiles_w = ((size_t)s->width_out + tw - 1) / tw;
  const size_t tiles_h = ((size_t)s->height_out + th - 1) / th;
  if ((uint64_t)p->batch * tiles_w > INT32_MAX || tiles_h * th > INT32_MAX ||
      (size_t)p->group * chunks * tw > INT32_MAX)
    return false;
  range_plan *r = &t->range;
  r->local[0] = chunks * tw;
  r->local[1] = th;
  r->local[2] = 1;
  r->global[0] = (size_t)p->group * r->local[0];
  r->global[1] = tiles_h * th;
  r->global[2] = (size_t)p->batch * tiles_w;
  r->local_bytes = 4 * floats;
  t->ext_h = (cl_int)ext_h;
  t->ext_w = (cl_int)ext_w;
  t->region_h = (cl_int)region_h;
  t->region_w = (cl_int)region_w;
  t->tiles_w = (cl_int)tiles_w;
  return true;
}

/* The forward kernel of a validated parameter set (built on first use),
 * `vec` channels per work-item, stage 0 or 3. */
static dcnv4_status
forward_kernel(dcnv4_context *ctx, const dcnv4_params *params,
               const dcnv4_shape *s, const dcn_dcnv4_forward_tuning *cfg,
               int stage, int vec, int pieces, cl_kernel *kernel) {
  /* 256-byte L2 fetches (PTX .L2::256B, compute capability 8 or later):
   * H100, fp32 forward x0.96-0.99, 16-bit storage's corners with one
   * piece x0.95-1.00 (the kernel leaves the hint out where it lost;
   * docs/perf-notes.md §10). Tried first, then the portable
   * loads if that build fails. */
  const bool fetch256 =
      ctx->vendor == DCN_VENDOR_NVIDIA && ctx->nv_compute_major >= 8;
  char portable[DCN_OPTIONS_MAX], hinted[DCN_OPTIONS_MAX + 32], extra[64];
  snprintf(extra, sizeof extra, " -DOM_STAGE=%d -DPIECES=%d", stage, pieces);
  kernel_options(ctx, params, vec, needs_64bit_indices(s), cfg->unroll,
                 cfg->specialize, cfg->max_regs, extra, portable,
                 sizeof portable);
  if (!fetch256)
    return dcn_get_kernel(ctx, "dcnv4_forward", portable, "dcnv4_forward",
                          kernel);
  snprintf(hinted, sizeof hinted, "%s -DNV_L2_FETCH_256=1", portable);
  const char *const list[] = {hinted, portable};
  return dcn_get_kernel_first(ctx, "dcnv4_forward", list, 2, "dcnv4_forward",
                              kernel, NULL);
}

/* The vector width and pieces of `cfg` for `stage`: pieces at stage 0 only,
 * and only where they divide the group's chunks. */
static void forward_width(const dcnv4_params *params,
                          const dcn_dcnv4_forward_tuning *cfg, int stage,
                          int *vec, int *pieces) {
  *vec = dcn_vector_width(params->group_channels, cfg->max_vec);
  *pieces = stage == 0 && cfg->pieces > 1 &&
                    params->group_channels % (*vec * cfg->pieces) == 0
                ? cfg->pieces
                : 1;
}

/* The forward kernel of a validated call and its range: the tuned
 * configuration, with its stage (3 needs 32-bit indices and local memory for
 * the footprints; without them, or if that build is rejected, stage 0), then
 * the built-in default if the tuned configuration does not build. The
 * tuning layer accepts stages 0 and 3 only. */
static dcnv4_status select_forward(dcnv4_context *ctx,
                                   const dcnv4_params *params,
                                   const dcnv4_shape *s, cl_kernel *kernel,
                                   range_plan *r) {
  dcn_dcnv4_forward_tuning cfgs[2];
  int ncfg = dcn_tuning_dcnv4_forward(ctx, params->dtype,
                                      (int)params->group_channels, cfgs);
  dcnv4_status st = DCNV4_ERROR_BUILD_FAILED;
  for (int i = 0; i < ncfg; i++) {
    /* The asked stage, then plain global loads. */
    for (int stage = cfgs[i].stage; stage >= 0; stage = stage ? 0 : -1) {
      if (stage == 3 && needs_64bit_indices(s))
        continue;
      dcn_dcnv4_forward_tuning small = cfgs[i];
      const dcn_dcnv4_forward_tuning *cfg = &cfgs[i];
      int vec, pieces;
      forward_width(params, cfg, stage, &vec, &pieces);
      /* A launch of few work-groups takes the small-launch values
       * (docs/tuning.md §3.9). */
      const uint64_t pixels = s->output_elements / (uint64_t)s->channels;
      const uint64_t items =
          pixels * (uint64_t)params->group *
          (uint64_t)(params->group_channels / (vec * pieces));
      if (dcn_small_apply(ctx, &small.small, items, &small.local_size,
                          &small.max_vec, &small.pieces, &small.max_regs)) {
        cfg = &small;
        forward_width(params, cfg, stage, &vec, &pieces);
      }
      st = forward_kernel(ctx, params, s, cfg, stage, vec, pieces, kernel);
      if (st == DCNV4_ERROR_BUILD_FAILED)
        continue;
      if (st != DCNV4_SUCCESS)
        return st;
      /* Local memory per (pixel, group): stage 3 a footprint of 8 words
       * per point (dcnv4_forward.cl). */
      const size_t group_floats = stage == 3 ? (size_t)s->points * 8 : 0;
      const range_request q = {cfg->local_size, !cfg->specialize, 0,
                               group_floats,    cfg->rows,        cfg->groups};
      if (plan_range(ctx, *kernel, params, s, vec * pieces, &q, r))
        return DCNV4_SUCCESS;
      if (!stage)
        return dcn_fail(ctx, DCNV4_ERROR_UNSUPPORTED,
                        "group_channels %d needs more work-items per group "
                        "than the device allows",
                        (int)params->group_channels);
    }
    if (i + 1 < ncfg)
      dcn_tuning_log_fallback(ctx, DCN_KERNEL_DCNV4_FORWARD, &cfgs[0], &cfgs[1],
                              "does not build on this device");
  }
  return st;
}

dcnv4_status dcn_dcnv4_forward_prepare(dcnv4_context *ctx,
                                       const dcnv4_params *params) {
  dcnv4_shape s;
  dcnv4_status st = compute_shape(ctx, params, &s);
  if (st != DCNV4_SUCCESS)
    return st;
  cl_kernel kernel;
  range_plan r;
  return select_forward(ctx, params, &s, &kernel, &r);
}

dcnv4_status dcnv4_forward(dcnv4_context *ctx, const dcnv4_params *params,
                           cl_mem input, cl_mem offset_mask, cl_mem output,
                           cl_uint num_wait, const cl_event *wait,
                           cl_event *event) {
  dcnv4_shape s;
  dcn_op_call c;
  dcnv4_status st = check_call(ctx, params, &s, &c, num_wait, wait);
  if (st != DCNV4_SUCCESS ||
      (st = dcn_op_check_forward_buffers(ctx, &c, input, offset_mask, output)))
    return st;

  cl_kernel kernel;
  range_plan r;
  if ((st = select_forward(ctx, params, &s, &kernel, &r)))
    return st;
  geometry_arg geo = make_geometry(params, &s);
  const dcn_arg args[] = {DCN_ARG(input), DCN_ARG(offset_mask), DCN_ARG(output),
                          DCN_ARG(geo), DCN_LOCAL_ARG(r.local_bytes)};
  if ((st = dcn_set_args(ctx, kernel, args, 5, "dcnv4_forward")))
    return st;
  return dcn_enqueue_nd(ctx, kernel, 3, r.global, r.local, num_wait, wait,
                        event, "dcnv4_forward");
}

/* The backward without float atomics (see deterministic.h); buffers are
 * already checked. The vector width depends on group_channels only, so the
 * results do not depend on tuning other than the program options. */
static dcnv4_status
backward_deterministic(dcnv4_context *ctx, const dcnv4_params *params,
                       const dcnv4_shape *s, const dcn_op_call *c,
                       const dcn_op_backward_buffers *b, cl_uint num_wait,
                       const cl_event *wait, cl_event *event) {
  cl_mem ws;
  dcnv4_status st = dcn_op_det_workspace(ctx, c, b, &ws);
  if (st != DCNV4_SUCCESS)
    return st;
  dcn_dcnv4_backward_deterministic_tuning cfg =
      dcn_tuning_dcnv4_backward_deterministic(ctx, params->dtype,
                                              (int)params->group_channels);
  int vec = dcn_vector_width(params->group_channels, 4);
  char options[DCN_OPTIONS_MAX];
  kernel_options(ctx, params, vec, c->idx64, cfg.unroll, cfg.specialize,
                 cfg.max_regs, "", options, sizeof options);
  geometry_arg geo = make_geometry(params, s);
  const dcn_op_det_launch l = {options, vec, cfg.local_size, DCN_ARG(geo),
                               NULL};
  return dcn_op_det_run(ctx, c, b, ws, &l, num_wait, wait, event);
}

dcnv4_status dcnv4_backward(dcnv4_context *ctx, const dcnv4_params *params,
                            const dcnv4_backward_buffers *b, cl_uint num_wait,
                            const cl_event *wait, cl_event *event) {
  dcnv4_shape s;
  dcn_op_call c;
  dcnv4_status st = check_call(ctx, params, &s, &c, num_wait, wait);
  dcn_op_backward_buffers bb = {0};
  if (b)
    bb = (dcn_op_backward_buffers){
        b->input,      b->offset_mask,      b->grad_output,
        b->grad_input, b->grad_offset_mask, b->workspace};
  if (st != DCNV4_SUCCESS ||
      (st = dcn_op_check_backward_buffers(ctx, &c, b ? &bb : NULL)))
    return st;
  if (c.deterministic)
    return backward_deterministic(ctx, params, &s, &c, &bb, num_wait, wait,
                                  event);
  dcn_op_accumulator acc;
  if ((st = dcn_op_accumulator_bind(ctx, &c, &bb, &acc)))
    return st;

  bool idx64 = c.idx64;
  /* The tuned configuration, then the built-in default; for each, NVIDIA's
   * native float atomics through inline PTX first, falling back to the
   * portable compare-and-swap build if the compiler rejects them. */
  dcn_dcnv4_backward_tuning cfgs[2];
  int ncfg = dcn_tuning_dcnv4_backward(ctx, params->dtype,
                                       (int)params->group_channels, cfgs);
  char base[2][DCN_OPTIONS_MAX], chosen[DCN_OPTIONS_MAX];
  for (int i = 0; i < ncfg; i++) {
    int vec_c = dcn_vector_width(params->group_channels, cfgs[i].max_vec);
    kernel_options(ctx, params, vec_c, idx64, cfgs[i].unroll,
                   cfgs[i].specialize, cfgs[i].max_regs, "", base[i],
                   sizeof base[i]);
  }
  cl_kernel kernel;
  int chosen_config = 0;
  if ((st = dcn_op_build_atomics(ctx, "dcnv4_backward", "dcnv4_backward", base,
                                 ncfg, &kernel, &chosen_config, chosen)))
    return st;
  dcn_dcnv4_backward_tuning cfg = cfgs[0];
  if (chosen_config > 0) {
    cfg = cfgs[1];
    dcn_tuning_log_fallback(ctx, DCN_KERNEL_DCNV4_BACKWARD, &cfgs[0], &cfgs[1],
                            "does not build on this device");
  }
  int vec = dcn_vector_width(params->group_channels, cfg.max_vec);
  geometry_arg geo = make_geometry(params, &s);
  range_plan r;
  uint64_t pixel_items = s.output_elements / (uint64_t)params->group_channels;
  dcn_index_arg idx;
  /* PoCL 3.1 miscompiles the split kernel built for run-time shapes
   * (specialize 0) with more than two work-items per group: wrong input
   * gradients for G=1 and small D (Oclgrind runs the same program
   * correctly). CPU devices take the per-pixel kernel instead. */
  bool split = cfg.split;
  if (split && !cfg.specialize && ctx->vendor == DCN_VENDOR_CPU) {
    dcn_log(ctx, DCN_LOG_INFO,
            "dcnv4_backward: split=1 needs specialize=1 on CPU devices; "
            "using the per-pixel kernel");
    split = false;
  }
  /* The tiled kernel where the configuration asks for it and the region
   * fits local memory, else the per-point kernel, else the per-pixel one. */
  tile_plan tp;
  cl_kernel tiled = NULL;
  bool tiles = split && cfg.halo > 0 && cfg.specialize;
  if (tiles && (st = dcn_get_kernel(ctx, "dcnv4_backward", chosen,
                                    "dcnv4_backward_tiled", &tiled)))
    return st;
  tiles = tiles && plan_tiles(ctx, tiled, params, &s, vec, &cfg, &tp);
  const range_request q = {
      cfg.local_size, !cfg.specialize, (size_t)s.points * 3, 0, 1, 0};
  bool per_pixel =
      !tiles && (!split || !plan_range(ctx, kernel, params, &s, vec, &q, &r));
  /* The three kernels share their first six arguments. */
  dcn_arg args[12] = {DCN_ARG(b->input),
                      DCN_ARG(b->offset_mask),
                      DCN_ARG(b->grad_output),
                      DCN_ARG(acc.buffer),
                      DCN_ARG(b->grad_offset_mask),
                      DCN_ARG(geo)};
  size_t nargs = 6;
  const char *name = "dcnv4_backward";
  if (tiles) {
    kernel = tiled;
    r = tp.range;
    name = "dcnv4_backward_tiled";
    args[nargs++] = DCN_LOCAL_ARG(r.local_bytes);
    args[nargs++] = DCN_ARG(tp.ext_h);
    args[nargs++] = DCN_ARG(tp.ext_w);
    args[nargs++] = DCN_ARG(tp.region_h);
    args[nargs++] = DCN_ARG(tp.region_w);
    args[nargs++] = DCN_ARG(tp.tiles_w);
  } else if (per_pixel) {
    /* Chosen, or partial sums too large for local memory: one work-item per
     * (pixel, group) walks all channels. */
    name = "dcnv4_backward_pixel";
    if ((st = dcn_get_kernel(ctx, "dcnv4_backward", chosen, name, &kernel)))
      return st;
    args[nargs++] = dcn_index_arg_make(&idx, idx64, pixel_items);
  } else {
    args[nargs++] = DCN_LOCAL_ARG(r.local_bytes);
  }
  if ((st = dcn_set_args(ctx, kernel, args, nargs, name)))
    return st;
  /* One work-item per (pixel, group), or the planned range. */
  dcn_op_launch scatter = {kernel, name, 0, pixel_items, cfg.local_size};
  if (!per_pixel) {
    scatter.dims = 3;
    memcpy(scatter.global, r.global, sizeof r.global);
    memcpy(scatter.local, r.local, sizeof r.local);
  }
  return dcn_op_accumulate(ctx, &c, &bb, &acc, &scatter, num_wait, wait, event);
}
