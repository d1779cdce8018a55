/* DCNv4 core operator: parameter validation and the forward/backward
 * launchers (kernels in cl/dcnv4_forward.cl and cl/dcnv4_backward.cl). */
#include "deterministic.h"
#include "tuning.h"

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
  if (dcnv4_dtype_size(p->dtype) == 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER, "unknown dtype %d",
                    (int)p->dtype);
  struct {
    const char *name;
    int32_t value, min;
  } ranges[] = {
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
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
    if (ranges[i].value < ranges[i].min)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                      "%s is %d; it must be at least %d", ranges[i].name,
                      (int)ranges[i].value, (int)ranges[i].min);
  if (p->remove_center != 0 && p->remove_center != 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "remove_center is %d; it must be 0 or 1",
                    (int)p->remove_center);
  if (p->softmax != 0 && p->softmax != 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "softmax is %d; it must be 0 or 1", (int)p->softmax);
  if (p->deterministic != 0 && p->deterministic != 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "deterministic is %d; it must be 0 or 1",
                    (int)p->deterministic);
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
  if (message && message_size > 0)
    snprintf(message, message_size, "%s",
             st == DCNV4_SUCCESS ? "" : scratch.error_fixed);
  return st;
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

dcnv4_status dcnv4_backward_workspace_size(const dcnv4_params *params,
                                           size_t *bytes) {
  if (!bytes)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_shape s;
  dcnv4_status st = compute_shape(NULL, params, &s);
  if (st != DCNV4_SUCCESS)
    return st;
  *bytes = 0;
  if (params->deterministic) {
    dcn_det_plan plan;
    if (!det_plan(params, &s, &plan))
      return DCNV4_ERROR_SIZE_OVERFLOW;
    *bytes = plan.bytes;
    return DCNV4_SUCCESS;
  }
  if (params->dtype != DCNV4_FLOAT32 &&
      !dcn_bytes(s.input_elements, sizeof(cl_float), bytes))
    return DCNV4_ERROR_SIZE_OVERFLOW;
  return DCNV4_SUCCESS;
}

/* Whether 32-bit signed indices cover every tensor of the call. */
static bool needs_64bit_indices(const dcnv4_shape *s) {
  return s->input_elements >= ((uint64_t)1 << 31) ||
         s->output_elements >= ((uint64_t)1 << 31) ||
         s->offset_mask_elements >= ((uint64_t)1 << 31);
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
                           int vec, bool idx64, const dcn_launch_config *cfg,
                           const char *extra, char *out, size_t size) {
  int n = snprintf(out, size,
                   "-DDCNV4_OP=1 -DDTYPE=%d -DVEC=%d -DIDX64=%d -DUNROLL=%d "
                   "-DSPECIALIZE=%d",
                   (int)p->dtype, vec, idx64 ? 1 : 0, cfg->unroll ? 1 : 0,
                   cfg->specialize ? 1 : 0);
  if (cfg->specialize && n > 0 && (size_t)n < size)
    n += snprintf(out + n, size - (size_t)n,
                  " -DGROUP_CHANNELS=%d -DKH=%d -DKW=%d -DREMOVE_CENTER=%d "
                  "-DSOFTMAX=%d",
                  (int)p->group_channels, (int)p->kernel_h, (int)p->kernel_w,
                  (int)p->remove_center, (int)p->softmax);
  if (cfg->specialize && n > 0 && (size_t)n < size) {
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
  dcn_register_cap_option(ctx, cfg, out, size);
}

/* The kernels' `items` argument has the kernel's index type. */
typedef union index_arg {
  cl_int i32;
  cl_long i64;
} index_arg;

static dcn_arg make_index_arg(index_arg *storage, bool idx64, uint64_t value) {
  if (idx64) {
    storage->i64 = (cl_long)value;
    return (dcn_arg){sizeof(cl_long), &storage->i64};
  }
  storage->i32 = (cl_int)value;
  return (dcn_arg){sizeof(cl_int), &storage->i32};
}

/* The 3-D range of the forward and backward kernels (see
 * cl/dcnv4_forward.cl): dimension 0 spans whole groups of channel chunks,
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

/* The tiled backward's range (cl/dcnv4_backward.cl, dcnv4_backward_tiled):
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
                       const dcn_launch_config *cfg, tile_plan *t) {
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
  /* cl/dcnv4_backward.cl's layout: one word per channel of each region
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

/* Checks shared by forward and backward before anything is touched. */
static dcnv4_status check_call(dcnv4_context *ctx, const dcnv4_params *params,
                               dcnv4_shape *s, cl_uint num_wait,
                               const cl_event *wait) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_status st = compute_shape(ctx, params, s);
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_check_wait_list(ctx, num_wait, wait);
}

/* The forward kernel of a validated parameter set (built on first use),
 * `vec` channels per work-item, stage 0 or 3. */
static dcnv4_status forward_kernel(dcnv4_context *ctx,
                                   const dcnv4_params *params,
                                   const dcnv4_shape *s,
                                   const dcn_launch_config *cfg, int stage,
                                   int vec, int pieces, cl_kernel *kernel) {
  /* 256-byte L2 fetches (PTX .L2::256B, compute capability 8 or later):
   * H100, fp32 forward x0.96-0.99 (bench/results/2026-12-06-h100-v15),
   * 16-bit storage's corners with one piece x0.95-1.00 (v16; the kernel
   * leaves the hint out where it lost). Tried first, then the portable
   * loads if that build fails. */
  const bool fetch256 =
      ctx->vendor == DCN_VENDOR_NVIDIA && ctx->nv_compute_major >= 8;
  char portable[DCN_OPTIONS_MAX], hinted[DCN_OPTIONS_MAX + 32], extra[64];
  snprintf(extra, sizeof extra, " -DOM_STAGE=%d -DPIECES=%d", stage, pieces);
  kernel_options(ctx, params, vec, needs_64bit_indices(s), cfg, extra, portable,
                 sizeof portable);
  if (!fetch256)
    return dcn_get_kernel(ctx, "dcnv4_forward", portable, "dcnv4_forward",
                          kernel);
  snprintf(hinted, sizeof hinted, "%s -DNV_L2_FETCH_256=1", portable);
  const char *const list[] = {hinted, portable};
  return dcn_get_kernel_first(ctx, "dcnv4_forward", list, 2, "dcnv4_forward",
                              kernel, NULL);
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
  dcn_launch_config cfgs[2];
  int ncfg = dcn_tuning_candidates(ctx, DCN_KERNEL_DCNV4_FORWARD, params->dtype,
                                   (int)params->group_channels, cfgs);
  dcnv4_status st = DCNV4_ERROR_BUILD_FAILED;
  for (int i = 0; i < ncfg; i++) {
    const dcn_launch_config *cfg = &cfgs[i];
    /* The asked stage, then plain global loads. */
    for (int stage = cfg->stage; stage >= 0; stage = stage ? 0 : -1) {
      const int vec = dcn_vector_width(params->group_channels, cfg->max_vec);
      if (stage == 3 && needs_64bit_indices(s))
        continue;
      /* Pieces: stage 0, and only where they divide the group's chunks. */
      const int pieces =
          stage == 0 && cfg->pieces > 1 &&
                  params->group_channels % (vec * cfg->pieces) == 0
              ? cfg->pieces
              : 1;
      st = forward_kernel(ctx, params, s, cfg, stage, vec, pieces, kernel);
      if (st == DCNV4_ERROR_BUILD_FAILED)
        continue;
      if (st != DCNV4_SUCCESS)
        return st;
      /* Local memory per (pixel, group): stage 3 a footprint of 8 words
       * per point (cl/dcnv4_forward.cl). */
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
  dcnv4_status st = check_call(ctx, params, &s, num_wait, wait);
  if (st != DCNV4_SUCCESS)
    return st;
  const cl_mem bufs[] = {input, offset_mask, output};
  const char *const names[] = {"input", "offset_mask", "output"};
  const bool readonly[] = {true, true, false};
  if ((st = dcn_check_no_alias(ctx, bufs, names, readonly, 3)) ||
      (st = dcn_check_buffer(ctx, input, "input", s.input_bytes)) ||
      (st = dcn_check_buffer(ctx, offset_mask, "offset_mask",
                             s.offset_mask_bytes)) ||
      (st = dcn_check_buffer(ctx, output, "output", s.output_bytes)))
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
                       const dcnv4_shape *s, const dcnv4_backward_buffers *b,
                       cl_uint num_wait, const cl_event *wait,
                       cl_event *event) {
  dcn_det_plan plan;
  if (!det_plan(params, s, &plan))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "the deterministic backward's workspace would exceed "
                    "2^31-1 words (N*H_out*W_out*group*K and "
                    "N*group*(H_in+1)*(W_in+1) too large); use the default "
                    "mode");
  cl_mem ws = NULL;
  dcnv4_status st = dcn_workspace(ctx, b->workspace, plan.bytes, &ws);
  if (st != DCNV4_SUCCESS)
    return st;
  dcn_launch_config cfg =
      dcn_tuning_lookup(ctx, DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC,
                        params->dtype, (int)params->group_channels);
  int vec = dcn_vector_width(params->group_channels, 4);
  bool idx64 = needs_64bit_indices(s);
  char options[DCN_OPTIONS_MAX];
  kernel_options(ctx, params, vec, idx64, &cfg, "", options, sizeof options);
  cl_kernel points, gather;
  dcn_det_kernels det;
  if ((st = dcn_get_kernel(ctx, "dcnv4_backward_deterministic", options,
                           "dcnv4_det_points", &points)) ||
      (st = dcn_get_kernel(ctx, "dcnv4_backward_deterministic", options,
                           "dcnv4_det_gather", &gather)) ||
      (st = dcn_det_prepare(ctx, ws, &plan, &det)))
    return st;
  geometry_arg geo = make_geometry(params, s);
  uint64_t rows = s->output_elements / (uint64_t)params->group_channels;
  uint64_t chunks = s->input_elements / (uint64_t)vec;
  index_arg rows_arg, chunks_arg;
  const dcn_arg pargs[] = {DCN_ARG(b->input),
                           DCN_ARG(b->offset_mask),
                           DCN_ARG(b->grad_output),
                           DCN_ARG(b->grad_offset_mask),
                           DCN_ARG(geo),
                           DCN_ARG(ws),
                           DCN_ARG(plan.off_count),
                           DCN_ARG(plan.off_key),
                           DCN_ARG(plan.off_m),
                           DCN_ARG(plan.off_record),
                           make_index_arg(&rows_arg, idx64, rows)};
  const dcn_arg gargs[] = {DCN_ARG(b->offset_mask),
                           DCN_ARG(b->grad_output),
                           DCN_ARG(b->grad_input),
                           DCN_ARG(geo),
                           DCN_ARG(ws),
                           DCN_ARG(plan.off_offset),
                           DCN_ARG(plan.off_m),
                           DCN_ARG(plan.off_record),
                           make_index_arg(&chunks_arg, idx64, chunks)};
  if ((st = dcn_set_args(ctx, points, pargs, 11, "dcnv4_det_points")) ||
      (st = dcn_set_args(ctx, gather, gargs, 9, "dcnv4_det_gather")))
    return st;
  /* Everything is validated and built: zero the counts, then the steps. */
  if ((st = dcn_enqueue_zero(ctx, ws, (size_t)plan.buckets * 4, num_wait, wait,
                             NULL)) ||
      (st = dcn_enqueue_1d(ctx, points, rows, cfg.local_size, 0, NULL, NULL,
                           "dcnv4_det_points")) ||
      (st = dcn_det_enqueue_buckets(ctx, &det, &plan, cfg.local_size)))
    return st;
  return dcn_enqueue_1d(ctx, gather, chunks, cfg.local_size, 0, NULL, event,
                        "dcnv4_det_gather");
}

dcnv4_status dcnv4_backward(dcnv4_context *ctx, const dcnv4_params *params,
                            const dcnv4_backward_buffers *b, cl_uint num_wait,
                            const cl_event *wait, cl_event *event) {
  dcnv4_shape s;
  dcnv4_status st = check_call(ctx, params, &s, num_wait, wait);
  if (st != DCNV4_SUCCESS)
    return st;
  if (!b)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "buffers is NULL");
  const cl_mem bufs[] = {b->input,      b->offset_mask,      b->grad_output,
                         b->grad_input, b->grad_offset_mask, b->workspace};
  const char *const names[] = {"input",      "offset_mask",      "grad_output",
                               "grad_input", "grad_offset_mask", "workspace"};
  const bool readonly[] = {true, true, true, false, false, false};
  if ((st = dcn_check_no_alias(ctx, bufs, names, readonly, 6)) ||
      (st = dcn_check_buffer(ctx, b->input, "input", s.input_bytes)) ||
      (st = dcn_check_buffer(ctx, b->offset_mask, "offset_mask",
                             s.offset_mask_bytes)) ||
      (st = dcn_check_buffer(ctx, b->grad_output, "grad_output",
                             s.output_bytes)) ||
      (st =
           dcn_check_buffer(ctx, b->grad_input, "grad_input", s.input_bytes)) ||
      (st = dcn_check_buffer(ctx, b->grad_offset_mask, "grad_offset_mask",
                             s.offset_mask_bytes)))
    return st;
  if (params->deterministic)
    return backward_deterministic(ctx, params, &s, b, num_wait, wait, event);
  size_t ws_bytes = 0;
  bool direct = params->dtype == DCNV4_FLOAT32;
  if (!direct)
    (void)dcn_bytes(s.input_elements, sizeof(cl_float), &ws_bytes);
  cl_mem acc = b->grad_input;
  if (!direct && (st = dcn_workspace(ctx, b->workspace, ws_bytes, &acc)))
    return st;

  bool idx64 = needs_64bit_indices(&s);
  /* The tuned configuration, then the built-in default; for each, NVIDIA's
   * native float atomics through inline PTX first, falling back to the
   * portable compare-and-swap build if the compiler rejects them. */
  dcn_launch_config cfgs[2];
  int ncfg =
      dcn_tuning_candidates(ctx, DCN_KERNEL_DCNV4_BACKWARD, params->dtype,
                            (int)params->group_channels, cfgs);
  char base[DCN_OPTIONS_MAX], options[6][DCN_OPTIONS_MAX];
  const char *list[6];
  int tries = 0, per_config[2] = {0, 0}, chosen_index = 0;
  for (int c = 0; c < ncfg; c++) {
    int vec_c = dcn_vector_width(params->group_channels, cfgs[c].max_vec);
    kernel_options(ctx, params, vec_c, idx64, &cfgs[c], "", base, sizeof base);
    dcn_atomics_options(ctx, base, options + tries, &per_config[c]);
    tries += per_config[c];
  }
  for (int i = 0; i < tries; i++)
    list[i] = options[i];
  cl_kernel kernel, convert = NULL;
  if ((st = dcn_get_kernel_first(ctx, "dcnv4_backward", list, tries,
                                 "dcnv4_backward", &kernel, &chosen_index)))
    return st;
  const char *chosen = list[chosen_index];
  dcn_launch_config cfg = cfgs[0];
  if (chosen_index >= per_config[0]) {
    cfg = cfgs[1];
    dcn_tuning_log_fallback(ctx, DCN_KERNEL_DCNV4_BACKWARD, &cfgs[0], &cfgs[1],
                            "does not build on this device");
  }
  int vec = dcn_vector_width(params->group_channels, cfg.max_vec);
  geometry_arg geo = make_geometry(params, &s);
  range_plan r;
  uint64_t pixel_items = s.output_elements / (uint64_t)params->group_channels;
  index_arg idx, count;
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
  dcn_arg args[12] = {
      DCN_ARG(b->input), DCN_ARG(b->offset_mask),      DCN_ARG(b->grad_output),
      DCN_ARG(acc),      DCN_ARG(b->grad_offset_mask), DCN_ARG(geo)};
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
    args[nargs++] = make_index_arg(&idx, idx64, pixel_items);
  } else {
    args[nargs++] = DCN_LOCAL_ARG(r.local_bytes);
  }
  if ((st = dcn_set_args(ctx, kernel, args, nargs, name)))
    return st;
  if (!direct) {
    char copts[64];
    snprintf(copts, sizeof copts, "-DDTYPE=%d -DIDX64=%d", (int)params->dtype,
             idx64 ? 1 : 0);
    if ((st = dcn_get_kernel(ctx, "convert", copts, "convert_from_float",
                             &convert)))
      return st;
    const dcn_arg cargs[] = {DCN_ARG(acc), DCN_ARG(b->grad_input),
                             make_index_arg(&count, idx64, s.input_elements)};
    if ((st = dcn_set_args(ctx, convert, cargs, 3, "convert_from_float")))
      return st;
  }
  /* Everything is validated and built: enqueue zero, scatter, convert. */
  size_t acc_bytes = direct ? s.input_bytes : ws_bytes;
  cl_event *scatter_event = direct ? event : NULL;
  if ((st = dcn_enqueue_zero(ctx, acc, acc_bytes, num_wait, wait, NULL)))
    return st;
  st = per_pixel
           ? dcn_enqueue_1d(ctx, kernel, pixel_items, cfg.local_size, 0, NULL,
                            scatter_event, "dcnv4_backward_pixel")
           : dcn_enqueue_nd(ctx, kernel, 3, r.global, r.local, 0, NULL,
                            scatter_event,
                            tiles ? "dcnv4_backward_tiled" : "dcnv4_backward");
  if (st != DCNV4_SUCCESS || direct)
    return st;
  return dcn_enqueue_1d(ctx, convert, s.input_elements, 256, 0, NULL, event,
                        "convert_from_float");
}
