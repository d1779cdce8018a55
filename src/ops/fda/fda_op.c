/* FlashDeformAttn core operator: parameter validation and the
 * forward/backward launchers (kernels in fda_forward.cl and
 * fda_backward.cl). */
#include "ops/common/op_common.h"
#include "tuning/tuning.h"

#include <stdio.h>
#include <string.h>

/* Sampling coordinates are split into an exact integer and a small float
 * part in the kernels; this bound keeps level sizes exact in float. */
#define MAX_EXTENT (1 << 24)

/* Mirrors fda_geometry in the kernels (all 4-byte fields, no padding). The
 * level tables always have DCNV4_FDA_MAX_LEVELS entries; the unused ones are
 * zero. */
typedef struct fda_geometry_arg {
  cl_int value_len, queries, group, group_channels, levels, points;
  cl_int height[DCNV4_FDA_MAX_LEVELS];
  cl_int width[DCNV4_FDA_MAX_LEVELS];
  cl_int start[DCNV4_FDA_MAX_LEVELS];
} fda_geometry_arg;

void dcnv4_fda_params_init(dcnv4_fda_params *p) {
  if (!p)
    return;
  memset(p, 0, sizeof *p);
  p->group = 1;
  p->levels = 1;
  p->points = 4;
  p->dtype = DCNV4_FLOAT32;
}

/* Validates the levels: shapes, and rows inside [0, Nv) without overlap. */
static dcnv4_status check_levels(dcnv4_context *ctx,
                                 const dcnv4_fda_params *p) {
  int64_t begin[DCNV4_FDA_MAX_LEVELS], end[DCNV4_FDA_MAX_LEVELS];
  for (int l = 0; l < p->levels; l++) {
    for (int a = 0; a < 2; a++) {
      int32_t v = p->spatial_shapes[l][a];
      if (v < 1)
        return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                        "spatial_shapes[%d][%d] (%s of level %d) is %d; it "
                        "must be at least 1",
                        l, a, a ? "width" : "height", l, (int)v);
      if (v > MAX_EXTENT)
        return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                        "spatial_shapes[%d][%d] is %d; level sizes must stay "
                        "at or below 2^24",
                        l, a, (int)v);
    }
    begin[l] = p->level_start[l];
    end[l] =
        begin[l] + (int64_t)p->spatial_shapes[l][0] * p->spatial_shapes[l][1];
    if (begin[l] < 0 || end[l] > p->value_len)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                      "level %d (level_start[%d] = %d, %dx%d) covers value "
                      "rows [%lld, %lld), outside [0, value_len = %d)",
                      l, l, (int)p->level_start[l],
                      (int)p->spatial_shapes[l][0],
                      (int)p->spatial_shapes[l][1], (long long)begin[l],
                      (long long)end[l], (int)p->value_len);
  }
  for (int l = 0; l < p->levels; l++)
    for (int m = 0; m < l; m++)
      if (begin[l] < end[m] && begin[m] < end[l])
        return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                        "levels %d (rows [%lld, %lld)) and %d (rows [%lld, "
                        "%lld)) overlap; check level_start",
                        m, (long long)begin[m], (long long)end[m], l,
                        (long long)begin[l], (long long)end[l]);
  return DCNV4_SUCCESS;
}

/* Validates and derives; messages go to ctx when given. */
static dcnv4_status compute_shape(dcnv4_context *ctx, const dcnv4_fda_params *p,
                                  dcnv4_fda_shape *s) {
  if (!p)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "params is NULL");
  const dcn_op_field ranges[] = {
      {"batch", p->batch, 1},         {"queries", p->queries, 1},
      {"group", p->group, 1},         {"group_channels", p->group_channels, 1},
      {"levels", p->levels, 1},       {"points", p->points, 1},
      {"value_len", p->value_len, 1},
  };
  dcnv4_status st;
  if ((st = dcn_op_check_fields(ctx, p->dtype, ranges,
                                sizeof ranges / sizeof ranges[0])) ||
      (st = dcn_op_check_flag(ctx, "deterministic", p->deterministic)))
    return st;
  if (p->levels > DCNV4_FDA_MAX_LEVELS)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "levels is %d; at most %d are supported", (int)p->levels,
                    DCNV4_FDA_MAX_LEVELS);
  int64_t samples = (int64_t)p->levels * p->points;
  if (samples > DCNV4_FDA_MAX_SAMPLES)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "levels * points is %lld; at most %d sampling points per "
                    "query and head are supported",
                    (long long)samples, DCNV4_FDA_MAX_SAMPLES);
  if ((st = check_levels(ctx, p)))
    return st;
  int64_t channels = (int64_t)p->group * p->group_channels;
  int64_t lanes = (int64_t)p->group * samples * 3;
  if (channels > INT32_MAX || lanes > INT32_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "group * group_channels (%lld) or group * levels * "
                    "points * 3 (%lld) exceeds 2^31-1",
                    (long long)channels, (long long)lanes);

  memset(s, 0, sizeof *s);
  s->sampling_stride = (int32_t)(samples * 3);
  size_t esize = dcnv4_dtype_size(p->dtype);
  uint64_t value_f[] = {(uint64_t)p->batch, (uint64_t)p->value_len,
                        (uint64_t)channels};
  uint64_t out_f[] = {(uint64_t)p->batch, (uint64_t)p->queries,
                      (uint64_t)channels};
  uint64_t samp_f[] = {(uint64_t)p->batch, (uint64_t)p->queries,
                       (uint64_t)lanes};
  if (!dcn_product_u64(value_f, 3, &s->value_elements) ||
      !dcn_product_u64(out_f, 3, &s->output_elements) ||
      !dcn_product_u64(samp_f, 3, &s->sampling_elements) ||
      !dcn_bytes(s->value_elements, esize, &s->value_bytes) ||
      !dcn_bytes(s->output_elements, esize, &s->output_bytes) ||
      !dcn_bytes(s->sampling_elements, esize, &s->sampling_bytes) ||
      !dcn_bytes(s->value_elements, 4, &(size_t){0}))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "tensor sizes overflow (batch %d, queries %d, value_len "
                    "%d, %lld channels, %lld sampling lanes)",
                    (int)p->batch, (int)p->queries, (int)p->value_len,
                    (long long)channels, (long long)lanes);
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_fda_get_shape(const dcnv4_fda_params *params,
                                 dcnv4_fda_shape *shape) {
  if (!shape)
    return DCNV4_ERROR_NULL_POINTER;
  return compute_shape(NULL, params, shape);
}

dcnv4_status dcnv4_fda_check_params(const dcnv4_fda_params *params,
                                    char *message, size_t message_size) {
  /* A blank context collects the message; nothing else of it is used. */
  dcnv4_context scratch;
  memset(&scratch, 0, sizeof scratch);
  dcnv4_fda_shape s;
  dcnv4_status st = compute_shape(&scratch, params, &s);
  return dcn_op_message(&scratch, st, message, message_size);
}

/* Buckets per (batch, head) of the deterministic backward: sum over the
 * levels of (H_l+1)*(W_l+1) (below 2^53: at most 16 levels of 2^48). */
static uint64_t buckets_per_head(const dcnv4_fda_params *p) {
  uint64_t n = 0;
  for (int l = 0; l < p->levels; l++)
    n += ((uint64_t)p->spatial_shapes[l][0] + 1) *
         ((uint64_t)p->spatial_shapes[l][1] + 1);
  return n;
}

/* The deterministic backward's workspace (see deterministic.h). */
static bool det_plan(const dcnv4_fda_params *p, const dcnv4_fda_shape *s,
                     dcn_det_plan *plan) {
  (void)s;
  uint64_t points, buckets;
  const uint64_t pf[] = {(uint64_t)p->batch, (uint64_t)p->queries,
                         (uint64_t)p->group, (uint64_t)p->levels,
                         (uint64_t)p->points};
  const uint64_t bf[] = {(uint64_t)p->batch, (uint64_t)p->group,
                         buckets_per_head(p)};
  return dcn_product_u64(pf, 5, &points) && dcn_product_u64(bf, 3, &buckets) &&
         dcn_det_plan_make(points, buckets, plan);
}

static const dcn_op_names op_names = {
    "value",
    "sampling_loc_attn",
    "grad_value",
    "grad_sampling_loc_attn",
    "fda_backward_deterministic",
    "fda_det_points",
    "fda_det_gather",
    "B*Q*G*L*K sampling points and B*G*sum (H_l+1)*(W_l+1) buckets"};

/* Validates (messages to ctx when given) and describes the call to the
 * skeleton (op_common.h). */
static dcnv4_status describe(dcnv4_context *ctx, const dcnv4_fda_params *p,
                             dcnv4_fda_shape *s, dcn_op_call *c) {
  dcnv4_status st = compute_shape(ctx, p, s);
  if (st != DCNV4_SUCCESS)
    return st;
  const dcn_op_tensor image = {s->value_elements, s->value_bytes},
                      sampling = {s->sampling_elements, s->sampling_bytes},
                      output = {s->output_elements, s->output_bytes};
  dcn_op_call_init(c, &op_names, p->dtype, p->group_channels,
                   p->deterministic != 0, image, sampling, output);
  c->det_fits = det_plan(p, s, &c->det);
  return DCNV4_SUCCESS;
}

/* Checks shared by forward and backward before anything is touched. */
static dcnv4_status check_call(dcnv4_context *ctx,
                               const dcnv4_fda_params *params,
                               dcnv4_fda_shape *s, dcn_op_call *c,
                               cl_uint num_wait, const cl_event *wait) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_status st = describe(ctx, params, s, c);
  return st != DCNV4_SUCCESS ? st : dcn_check_wait_list(ctx, num_wait, wait);
}

dcnv4_status dcnv4_fda_backward_workspace_size(const dcnv4_fda_params *params,
                                               size_t *bytes) {
  if (!bytes)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_fda_shape s;
  dcn_op_call c;
  dcnv4_status st = describe(NULL, params, &s, &c);
  return st != DCNV4_SUCCESS ? st : dcn_op_backward_workspace_size(&c, bytes);
}

/* Whether 32-bit signed indices cover every tensor of the call. */
static bool needs_64bit_indices(const dcnv4_fda_shape *s) {
  const uint64_t elements[] = {s->value_elements, s->output_elements,
                               s->sampling_elements};
  return dcn_needs_idx64(elements, 3);
}

static fda_geometry_arg make_geometry(const dcnv4_fda_params *p) {
  fda_geometry_arg g;
  memset(&g, 0, sizeof g);
  g.value_len = p->value_len;
  g.queries = p->queries;
  g.group = p->group;
  g.group_channels = p->group_channels;
  g.levels = p->levels;
  g.points = p->points;
  for (int l = 0; l < p->levels; l++) {
    g.height[l] = p->spatial_shapes[l][0];
    g.width[l] = p->spatial_shapes[l][1];
    g.start[l] = p->level_start[l];
  }
  return g;
}

/* The -D options shared by the forward and backward programs. */
static void kernel_options(const dcnv4_context *ctx, const dcnv4_fda_params *p,
                           int vec, bool idx64, int specialize, int max_regs,
                           char *out, size_t size) {
  int n = snprintf(out, size,
                   "-DDTYPE=%d -DVEC=%d -DIDX64=%d -DMAX_LEVELS=%d "
                   "-DMAX_SAMPLES=%d -DSPECIALIZE=%d",
                   (int)p->dtype, vec, idx64 ? 1 : 0, DCNV4_FDA_MAX_LEVELS,
                   DCNV4_FDA_MAX_SAMPLES, specialize ? 1 : 0);
  if (specialize && n > 0 && (size_t)n < size)
    snprintf(out + n, size - (size_t)n,
             " -DGROUP_CHANNELS=%d -DLEVELS=%d -DPOINTS=%d",
             (int)p->group_channels, (int)p->levels, (int)p->points);
  dcn_register_cap_option(ctx, max_regs, out, size);
}

/* Heads per block of the forward's work-item order (fda_forward.cl, HEAD_SPAN):
 * the tuned `groups` where it divides the heads, else 0 (all heads of a query
 * together). */
static int head_span(const dcn_fda_forward_tuning *cfg, int heads) {
  return cfg->groups > 0 && cfg->groups < heads && heads % cfg->groups == 0
             ? cfg->groups
             : 0;
}

/* The forward's work-group: its size and, with stages 1 and 2 (points
 * located once per head, fda_forward.cl), its local
 * buffers: stage 1 the weights and the corner references, stage 2 the
 * packed points (in `weights_bytes`; `corners_bytes` 0); both the partials
 * of the softmax. */
typedef struct forward_plan {
  size_t local;
  size_t weights_bytes, corners_bytes, partial_bytes;
} forward_plan;

/* The forward's stage for a configuration: 0 unless asked for 1 or 2 and
 * not `plain`; stage 2 packs an offset and a 4-bit corner mask into one
 * 32-bit int, so it needs 32-bit indices and offsets that are multiples of
 * 16 (G*D % 16 == 0), else it is stage 1. */
static int forward_stage(const dcn_fda_forward_tuning *cfg,
                         const dcnv4_fda_params *p, bool idx64, bool plain) {
  if (plain || (cfg->stage != 1 && cfg->stage != 2))
    return 0;
  if (cfg->stage == 2 &&
      (idx64 || ((int64_t)p->group * p->group_channels) % 16 != 0))
    return 1;
  return cfg->stage;
}

/* Heads per work-group of `chunks` work-items each: as many as the tuned
 * size (`local`, 0: 64) holds, at least one, within the kernel's work-item
 * limit and `budget` bytes of local memory at `per_head` each; 0 if not
 * even one fits. */
static size_t heads_per_group(size_t local, size_t chunks, size_t limit,
                              size_t per_head, size_t budget) {
  size_t heads = (local > 0 ? local : 64) / chunks;
  if (heads < 1)
    heads = 1;
  while (heads > 0 && (heads * chunks > limit || heads * per_head > budget))
    heads--;
  return heads;
}

/* Stages 1 and 2 need whole heads per work-group (a multiple of D/vec
 * work-items) and L*K located points per head (stage 1: 4 floats and an
 * offset and mask pair of the index type; stage 2: 16 bytes), plus two
 * partials per work-item, in half the device's local memory. False where
 * one head does not fit. */
static bool plan_staged(const dcnv4_context *ctx, cl_kernel kernel,
                        const dcnv4_fda_params *p, int vec, bool idx64,
                        const dcn_fda_forward_tuning *cfg, forward_plan *plan) {
  const size_t chunks = (size_t)p->group_channels / (size_t)vec;
  const size_t limit =
      dcn_kernel_item_limit(ctx, kernel, ctx->max_work_group_size);
  const size_t lk = (size_t)p->levels * (size_t)p->points;
  const size_t ref_bytes = cfg->stage == 2 ? 0 : idx64 ? 16 : 8;
  const size_t per_head = lk * (16 + ref_bytes) + chunks * 2 * sizeof(cl_float);
  /* At most half the device's local memory: NVIDIA refused
   * (CL_OUT_OF_RESOURCES) work-groups whose three buffers added up to
   * exactly its 48 KiB, padding between them not counted here, and a
   * work-group that fills it leaves one per multiprocessor. */
  const size_t budget = (size_t)(ctx->local_mem_bytes / 2);
  const size_t heads =
      heads_per_group(cfg->local_size, chunks, limit, per_head, budget);
  if (heads == 0)
    return false;
  const size_t local = heads * chunks;
  plan->local = local;
  plan->weights_bytes = heads * lk * 16;
  plan->corners_bytes = heads * lk * ref_bytes;
  plan->partial_bytes = local * 2 * sizeof(cl_float);
  return true;
}

/* The forward kernel: the tuned configuration, then the built-in default if
 * it differs and the tuned one does not build (logged); each with its
 * small-launch values where the launch is small. `plain` builds stage 0
 * whatever the configuration says; cfg->stage is the stage built. `rows`:
 * the storage of sampling_loc_attn, params->dtype or fp32. */
static dcnv4_status forward_kernel(dcnv4_context *ctx,
                                   const dcnv4_fda_params *params,
                                   dcnv4_dtype rows, const dcnv4_fda_shape *s,
                                   bool plain, dcn_fda_forward_tuning *cfg,
                                   int *vec, bool *idx64, cl_kernel *kernel) {
  dcn_fda_forward_tuning cfgs[2];
  const int ncfg =
      dcn_tuning_fda_forward(ctx, params->dtype, params->group_channels, cfgs);
  *idx64 = needs_64bit_indices(s);
  char options[2][256];
  const char *list[2];
  for (int c = 0; c < ncfg; c++) {
    /* A launch of few work-groups takes the small-launch values
     * (docs/tuning.md §3.9). */
    const uint64_t items =
        s->output_elements /
        (uint64_t)dcn_vector_width(params->group_channels, cfgs[c].max_vec);
    dcn_small_apply(ctx, &cfgs[c].small, items, &cfgs[c].local_size,
                    &cfgs[c].max_vec, NULL, &cfgs[c].max_regs);
    cfgs[c].stage = forward_stage(&cfgs[c], params, *idx64, plain);
    kernel_options(ctx, params,
                   dcn_vector_width(params->group_channels, cfgs[c].max_vec),
                   *idx64, cfgs[c].specialize, cfgs[c].max_regs, options[c],
                   sizeof options[c]);
    size_t n = strlen(options[c]);
    snprintf(options[c] + n, sizeof options[c] - n,
             " -DHEAD_SPAN=%d -DSTAGE=%d%s", head_span(&cfgs[c], params->group),
             cfgs[c].stage, rows != params->dtype ? " -DSAMPLING_F32=1" : "");
    list[c] = options[c];
  }
  int chosen = 0;
  dcnv4_status st = dcn_get_kernel_first(ctx, "fda_forward", list, ncfg,
                                         "fda_forward", kernel, &chosen);
  if (st != DCNV4_SUCCESS)
    return st;
  if (chosen > 0)
    dcn_tuning_log_fallback(ctx, DCN_KERNEL_FDA_FORWARD, &cfgs[0], &cfgs[1],
                            "does not build on this device");
  *cfg = cfgs[chosen];
  *vec = dcn_vector_width(params->group_channels, cfg->max_vec);
  return DCNV4_SUCCESS;
}

/* The forward kernel and its work-group plan; stage 0 where a staged
 * kernel's local memory does not fit (logged). */
static dcnv4_status forward_setup(dcnv4_context *ctx,
                                  const dcnv4_fda_params *params,
                                  dcnv4_dtype rows, const dcnv4_fda_shape *s,
                                  dcn_fda_forward_tuning *cfg, int *vec,
                                  bool *idx64, cl_kernel *kernel,
                                  forward_plan *plan) {
  dcnv4_status st =
      forward_kernel(ctx, params, rows, s, false, cfg, vec, idx64, kernel);
  if (st != DCNV4_SUCCESS)
    return st;
  if (cfg->stage != 0 &&
      !plan_staged(ctx, *kernel, params, *vec, *idx64, cfg, plan)) {
    dcn_log(ctx, DCN_LOG_INFO,
            "fda_forward: points shared per head (stage %d) do "
            "not fit a work-group (%d levels x %d points, %lu bytes of local "
            "memory); each work-item locates them itself (stage 0)",
            cfg->stage, (int)params->levels, (int)params->points,
            (unsigned long)ctx->local_mem_bytes);
    st = forward_kernel(ctx, params, rows, s, true, cfg, vec, idx64, kernel);
    if (st != DCNV4_SUCCESS)
      return st;
  }
  if (cfg->stage == 0) {
    memset(plan, 0, sizeof *plan);
    plan->local = cfg->local_size;
  }
  return DCNV4_SUCCESS;
}

/* fp32 rows beside 16-bit value and output, or the params' dtype. */
static dcnv4_status check_rows(dcnv4_context *ctx,
                               const dcnv4_fda_params *params,
                               dcnv4_dtype rows) {
  return rows == params->dtype || rows == DCNV4_FLOAT32
             ? DCNV4_SUCCESS
             : dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                        "sampling_loc_attn's storage must be the dtype or "
                        "fp32");
}

dcnv4_status dcn_fda_forward_prepare(dcnv4_context *ctx,
                                     const dcnv4_fda_params *params,
                                     dcnv4_dtype rows) {
  dcnv4_fda_shape s;
  dcnv4_status st = compute_shape(ctx, params, &s);
  if (st != DCNV4_SUCCESS || (st = check_rows(ctx, params, rows)))
    return st;
  dcn_fda_forward_tuning cfg;
  int vec;
  bool idx64;
  cl_kernel kernel;
  forward_plan plan;
  return forward_setup(ctx, params, rows, &s, &cfg, &vec, &idx64, &kernel,
                       &plan);
}

dcnv4_status dcnv4_fda_forward(dcnv4_context *ctx,
                               const dcnv4_fda_params *params, cl_mem value,
                               cl_mem sampling_loc_attn, cl_mem output,
                               cl_uint num_wait, const cl_event *wait,
                               cl_event *event) {
  return dcn_fda_forward_rows(ctx, params,
                              params ? params->dtype : DCNV4_FLOAT32, value,
                              sampling_loc_attn, output, num_wait, wait, event);
}

dcnv4_status dcn_fda_forward_rows(dcnv4_context *ctx,
                                  const dcnv4_fda_params *params,
                                  dcnv4_dtype rows, cl_mem value,
                                  cl_mem sampling_loc_attn, cl_mem output,
                                  cl_uint num_wait, const cl_event *wait,
                                  cl_event *event) {
  dcnv4_fda_shape s;
  dcn_op_call c;
  dcnv4_status st = check_call(ctx, params, &s, &c, num_wait, wait);
  if (st != DCNV4_SUCCESS || (st = check_rows(ctx, params, rows)))
    return st;
  if (rows != params->dtype &&
      !dcn_bytes(s.sampling_elements, sizeof(cl_float), &c.sampling.bytes))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "sampling_loc_attn's size overflows");
  if ((st = dcn_op_check_forward_buffers(ctx, &c, value, sampling_loc_attn,
                                         output)))
    return st;

  dcn_fda_forward_tuning cfg;
  int vec;
  bool idx64;
  cl_kernel kernel;
  forward_plan plan;
  if ((st = forward_setup(ctx, params, rows, &s, &cfg, &vec, &idx64, &kernel,
                          &plan)))
    return st;
  uint64_t items = s.output_elements / (uint64_t)vec;
  fda_geometry_arg geo = make_geometry(params);
  dcn_index_arg idx;
  /* Stages 1 and 2 add their local buffers (fda_forward.cl,
   * POINT_ARGS, then the partials). */
  dcn_arg args[8] = {DCN_ARG(value), DCN_ARG(sampling_loc_attn),
                     DCN_ARG(output), DCN_ARG(geo),
                     dcn_index_arg_make(&idx, idx64, items)};
  cl_uint nargs = 5;
  if (cfg.stage != 0) {
    args[nargs++] = DCN_LOCAL_ARG(plan.weights_bytes);
    if (cfg.stage == 1)
      args[nargs++] = DCN_LOCAL_ARG(plan.corners_bytes);
    args[nargs++] = DCN_LOCAL_ARG(plan.partial_bytes);
  }
  if ((st = dcn_set_args(ctx, kernel, args, nargs, "fda_forward")))
    return st;
  return dcn_enqueue_1d(ctx, kernel, items, plan.local, num_wait, wait, event,
                        "fda_forward");
}

/* The backward without float atomics (see deterministic.h); buffers are
 * already checked. The vector width depends on group_channels only. */
static dcnv4_status
backward_deterministic(dcnv4_context *ctx, const dcnv4_fda_params *params,
                       const dcn_op_call *c, const dcn_op_backward_buffers *b,
                       cl_uint num_wait, const cl_event *wait,
                       cl_event *event) {
  cl_mem ws;
  dcnv4_status st = dcn_op_det_workspace(ctx, c, b, &ws);
  if (st != DCNV4_SUCCESS)
    return st;
  dcn_fda_backward_deterministic_tuning cfg =
      dcn_tuning_fda_backward_deterministic(ctx, params->dtype,
                                            (int)params->group_channels);
  int vec = dcn_vector_width(params->group_channels, 4);
  char options[256];
  kernel_options(ctx, params, vec, c->idx64, cfg.specialize, cfg.max_regs,
                 options, sizeof options);
  fda_geometry_arg geo = make_geometry(params);
  cl_int per_head = (cl_int)buckets_per_head(params);
  const dcn_arg per_head_arg = DCN_ARG(per_head);
  const dcn_op_det_launch l = {options, vec, cfg.local_size, DCN_ARG(geo),
                               &per_head_arg};
  return dcn_op_det_run(ctx, c, b, ws, &l, num_wait, wait, event);
}

/* The split backward's work-group (fda_backward.cl, fda_backward_split):
 * whole heads of CHUNKS = D/vec work-items, and per head its located points
 * (16 bytes and a corner_ref each), 3*L*K + 1 lanes of CHUNKS partial sums
 * and two softmax partials per work-item, in at most half the device's
 * local memory (docs/perf-notes.md §30). `local` 0: not planned. */
typedef struct split_plan {
  size_t local;
  size_t located_bytes, corner_bytes, partial_bytes;
} split_plan;

/* False where one head does not fit. */
static bool plan_split(const dcnv4_context *ctx, cl_kernel kernel,
                       const dcnv4_fda_params *p, int vec, bool idx64,
                       size_t local_size, split_plan *plan) {
  const size_t chunks = (size_t)p->group_channels / (size_t)vec;
  const size_t lk = (size_t)p->levels * (size_t)p->points;
  const size_t ref_bytes = idx64 ? 16 : 8;
  const size_t slot_floats = (3 * lk + 1) * chunks;
  const size_t per_head =
      lk * (16 + ref_bytes) + (slot_floats + 2 * chunks) * sizeof(cl_float);
  const size_t limit =
      dcn_kernel_item_limit(ctx, kernel, ctx->max_work_group_size);
  const size_t budget = (size_t)(ctx->local_mem_bytes / 2);
  const size_t heads =
      heads_per_group(local_size, chunks, limit, per_head, budget);
  if (heads == 0)
    return false;
  plan->local = heads * chunks;
  plan->located_bytes = heads * lk * 16;
  plan->corner_bytes = heads * lk * ref_bytes;
  plan->partial_bytes =
      (heads * slot_floats + 2 * plan->local) * sizeof(cl_float);
  return true;
}

dcnv4_status dcnv4_fda_backward(dcnv4_context *ctx,
                                const dcnv4_fda_params *params,
                                const dcnv4_fda_backward_buffers *b,
                                cl_uint num_wait, const cl_event *wait,
                                cl_event *event) {
  dcnv4_fda_shape s;
  dcn_op_call c;
  dcnv4_status st = check_call(ctx, params, &s, &c, num_wait, wait);
  dcn_op_backward_buffers bb = {0};
  if (b)
    bb = (dcn_op_backward_buffers){
        b->value,      b->sampling_loc_attn,      b->grad_output,
        b->grad_value, b->grad_sampling_loc_attn, b->workspace};
  if (st != DCNV4_SUCCESS ||
      (st = dcn_op_check_backward_buffers(ctx, &c, b ? &bb : NULL)))
    return st;
  if (c.deterministic)
    return backward_deterministic(ctx, params, &c, &bb, num_wait, wait, event);
  dcn_op_accumulator acc;
  if ((st = dcn_op_accumulator_bind(ctx, &c, &bb, &acc)))
    return st;

  /* The tuned configuration, then the built-in default; for each, native
   * float atomics on NVIDIA, compare-and-swap elsewhere. */
  dcn_fda_backward_tuning cfgs[2];
  int ncfg = dcn_tuning_fda_backward(ctx, params->dtype,
                                     (int)params->group_channels, cfgs);
  bool idx64 = c.idx64;
  char base[2][DCN_OPTIONS_MAX], chosen[DCN_OPTIONS_MAX];
  for (int i = 0; i < ncfg; i++)
    kernel_options(
        ctx, params, dcn_vector_width(params->group_channels, cfgs[i].max_vec),
        idx64, cfgs[i].specialize, cfgs[i].max_regs, base[i], sizeof base[i]);
  cl_kernel kernel;
  int chosen_config = 0;
  if ((st = dcn_op_build_atomics(ctx, "fda_backward", "fda_backward", base,
                                 ncfg, &kernel, &chosen_config, chosen)))
    return st;
  dcn_fda_backward_tuning cfg = cfgs[0];
  if (chosen_config > 0) {
    cfg = cfgs[1];
    dcn_tuning_log_fallback(ctx, DCN_KERNEL_FDA_BACKWARD, &cfgs[0], &cfgs[1],
                            "does not build on this device");
  }
  /* split: D/vec work-items per head where its local memory fits (the
   * same program holds both kernels), else one work-item per (batch,
   * query, head). */
  const int vec = dcn_vector_width(params->group_channels, cfg.max_vec);
  split_plan plan = {0};
  const char *name = "fda_backward";
  if (cfg.split) {
    cl_kernel split_kernel;
    if ((st = dcn_get_kernel(ctx, "fda_backward", chosen, "fda_backward_split",
                             &split_kernel)))
      return st;
    if (plan_split(ctx, split_kernel, params, vec, idx64, cfg.local_size,
                   &plan)) {
      kernel = split_kernel;
      name = "fda_backward_split";
    } else
      dcn_log(ctx, DCN_LOG_INFO,
              "fda_backward: a head's partial sums (%d levels x %d points, "
              "%d channels) do not fit half of %lu bytes of local memory; "
              "one work-item per head (split 0)",
              (int)params->levels, (int)params->points,
              (int)params->group_channels, (unsigned long)ctx->local_mem_bytes);
  }
  uint64_t items = s.output_elements / (uint64_t)params->group_channels;
  size_t local = cfg.local_size;
  if (plan.local) {
    items *= (uint64_t)(params->group_channels / vec);
    local = plan.local;
  }
  fda_geometry_arg geo = make_geometry(params);
  dcn_index_arg idx;
  const dcn_arg args[] = {DCN_ARG(b->value),
                          DCN_ARG(b->sampling_loc_attn),
                          DCN_ARG(b->grad_output),
                          DCN_ARG(acc.buffer),
                          DCN_ARG(b->grad_sampling_loc_attn),
                          DCN_ARG(geo),
                          dcn_index_arg_make(&idx, idx64, items),
                          DCN_LOCAL_ARG(plan.located_bytes),
                          DCN_LOCAL_ARG(plan.corner_bytes),
                          DCN_LOCAL_ARG(plan.partial_bytes)};
  if ((st = dcn_set_args(ctx, kernel, args, plan.local ? 10 : 7, name)))
    return st;
  const dcn_op_launch scatter = {kernel, name, 0, items, local};
  return dcn_op_accumulate(ctx, &c, &bb, &acc, &scatter, num_wait, wait, event);
}
