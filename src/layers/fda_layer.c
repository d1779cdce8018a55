/* The FlashDeformAttn layer (DESIGN.md §1.3): upstream's PyTorch module
 * (Deformable-DETR's MSDeformAttn), forward.
 *
 * With Mq = N*Lq query rows, Mv = N*Len_in value rows, P = G*L*K, Q and X
 * the query and input_flatten:
 *   V   = X @ value_proj.weight^T + bias, rows of    GEMM with bias
 *         padded positions zeroed                    (+ mask_rows)
 *   OFF = Q @ sampling_offsets.weight^T              GEMM (Mq, 2P), fp32 out
 *   A   = Q @ attention_weights.weight^T             GEMM (Mq, P), fp32 out
 *   SLA = locations from OFF + bias and the          kernel (fda_sampling),
 *         reference points, then A + bias            fp32
 *   Y   = flash_deform_attn_core(V, SLA)             core operator
 *   out = Y @ output_proj.weight^T + bias            GEMM with bias
 * The intermediates live in regions of one workspace. V and Y are in the
 * layer's dtype: fp16/bf16 layers run 16-bit GEMMs (fp32 sums, rounded
 * once) and the core operator on 16-bit value and output, as PyTorch's
 * module in half precision. The sampling locations and logits (OFF, A,
 * SLA) stay fp32 in every dtype (DESIGN.md §1.3: upstream rounds the
 * locations to fp16 before its kernel, and a half module computes them in
 * half; this library keeps them in the compute precision). */
#include "layers/layer.h"

#include <stdio.h>
#include <string.h>

void dcnv4_layer_fda_config_init(dcnv4_layer_fda_config *c) {
  if (!c)
    return;
  memset(c, 0, sizeof *c);
  c->d_model = 256;
  c->n_levels = 4;
  c->n_heads = 8;
  c->n_points = 4;
}

void dcnv4_layer_fda_shape_init(dcnv4_layer_fda_shape *s) {
  if (!s)
    return;
  memset(s, 0, sizeof *s);
  s->reference_dim = 2;
}

static dcnv4_status check_config(dcnv4_context *ctx,
                                 const dcnv4_layer_fda_config *c,
                                 dcnv4_dtype dtype) {
  const dcn_config_range ranges[] = {
      {"d_model", c->d_model, 1, INT32_MAX},
      {"n_levels", c->n_levels, 1, DCNV4_FDA_MAX_LEVELS},
      {"n_heads", c->n_heads, 1, INT32_MAX},
      {"n_points", c->n_points, 1, DCNV4_FDA_MAX_SAMPLES},
  };
  dcnv4_status st = dcn_check_layer_config(ctx, dtype, ranges,
                                           sizeof ranges / sizeof ranges[0]);
  if (st != DCNV4_SUCCESS)
    return st;
  if (c->d_model % c->n_heads != 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "d_model (%d) must be a multiple of n_heads (%d)",
                    (int)c->d_model, (int)c->n_heads);
  int64_t samples = (int64_t)c->n_levels * c->n_points;
  if (samples > DCNV4_FDA_MAX_SAMPLES)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "n_levels * n_points is %lld; at most %d sampling points "
                    "per query and head are supported",
                    (long long)samples, DCNV4_FDA_MAX_SAMPLES);
  /* The offsets projection has 2P outputs and the core operator's rows
   * 3P lanes per query. */
  if ((int64_t)c->n_heads * samples * 3 > INT32_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "n_heads * n_levels * n_points * 3 (%lld) exceeds 2^31-1",
                    (long long)((int64_t)c->n_heads * samples * 3));
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_layer_fda_create(dcnv4_context *ctx,
                                    const dcnv4_layer_fda_config *config,
                                    dcnv4_dtype dtype, dcnv4_layer **out) {
  dcnv4_status st = dcn_layer_check_create(ctx, out, config != NULL);
  if (st != DCNV4_SUCCESS || (st = check_config(ctx, config, dtype)))
    return st;
  const int64_t C = config->d_model, P = (int64_t)config->n_heads *
                                         config->n_levels * config->n_points;
  /* The module's registration order (its state_dict order). */
  const dcn_weight_decl weights[] = {
      {"sampling_offsets.weight", 2, {2 * P, C}, NULL, true},
      {"sampling_offsets.bias", 1, {2 * P}, NULL, true},
      {"attention_weights.weight", 2, {P, C}, NULL, true},
      {"attention_weights.bias", 1, {P}, NULL, true},
      {"value_proj.weight", 2, {C, C}, NULL, true},
      {"value_proj.bias", 1, {C}, NULL, true},
      {"output_proj.weight", 2, {C, C}, NULL, true},
      {"output_proj.bias", 1, {C}, NULL, true},
  };
  const dcn_layer_config lc = {.fda = *config};
  return dcn_layer_create(ctx, DCNV4_LAYER_FLASH_DEFORM_ATTN, dtype, &lc,
                          weights, sizeof weights / sizeof weights[0], out);
}

/* ------------------------------------------------------------ forward */

/* Everything one forward call needs to know, derived before any work. */
typedef struct forward_plan {
  dcnv4_fda_params core;
  dcn_fda_sampling_geometry geo;
  uint64_t q_rows, v_rows; /* Mq = N*Lq, Mv = N*Len_in */
  int32_t C, P;            /* d_model, G*L*K */
  /* Bytes of the caller's buffers. */
  size_t query_bytes, ref_bytes, input_bytes, mask_bytes, output_bytes;
  bool f32, idx64;
  dcnv4_dtype act; /* V's and Y's storage (and the GEMMs' a and b) */
  dcn_scratch_plan scratch;
  /* Scratch regions. */
  int r_v, r_off, r_att, r_sla, r_y;
} forward_plan;

static dcnv4_status make_plan(dcnv4_layer *layer,
                              const dcnv4_layer_fda_shape *shape,
                              forward_plan *f) {
  dcnv4_context *ctx = layer->ctx;
  const dcnv4_layer_fda_config *c = &layer->config.fda;
  memset(f, 0, sizeof *f);
  if (!shape)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "shape is NULL");
  if (shape->batch < 1 || shape->queries < 1 || shape->input_len < 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "batch, queries and input_len are %d, %d, %d; each must "
                    "be at least 1",
                    (int)shape->batch, (int)shape->queries,
                    (int)shape->input_len);
  if (shape->reference_dim != 2 && shape->reference_dim != 4)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "reference_dim is %d; it must be 2 (points) or 4 (boxes)",
                    (int)shape->reference_dim);
  /* The core operator's parameters: validates the levels against Len_in
   * (inside [0, input_len), no overlap) exactly as dcnv4_fda_forward does. */
  dcnv4_fda_params *p = &f->core;
  dcnv4_fda_params_init(p);
  p->batch = shape->batch;
  p->queries = shape->queries;
  p->group = c->n_heads;
  p->group_channels = c->d_model / c->n_heads;
  p->levels = c->n_levels;
  p->points = c->n_points;
  p->value_len = shape->input_len;
  for (int l = 0; l < c->n_levels; l++) {
    p->spatial_shapes[l][0] = shape->spatial_shapes[l][0];
    p->spatial_shapes[l][1] = shape->spatial_shapes[l][1];
    p->level_start[l] = shape->level_start[l];
  }
  p->dtype = layer->dtype;
  char why[256];
  dcnv4_fda_shape s;
  dcnv4_status st = dcnv4_fda_check_params(p, why, sizeof why);
  if (st != DCNV4_SUCCESS)
    return dcn_fail(ctx, st, "%s", why);
  (void)dcnv4_fda_get_shape(p, &s);

  f->geo.heads = c->n_heads;
  f->geo.levels = c->n_levels;
  f->geo.points = c->n_points;
  f->geo.reference_dim = shape->reference_dim;
  for (int l = 0; l < c->n_levels; l++) {
    f->geo.height[l] = shape->spatial_shapes[l][0];
    f->geo.width[l] = shape->spatial_shapes[l][1];
  }
  f->C = c->d_model;
  f->P = c->n_heads * c->n_levels * c->n_points;
  f->f32 = layer->dtype == DCNV4_FLOAT32;
  f->act = layer->dtype;
  const size_t esize = dcnv4_dtype_size(layer->dtype);
  const uint64_t C = (uint64_t)f->C, P = (uint64_t)f->P;
  uint64_t qc = 0, vc = 0, q3p = 0, refs = 0;
  size_t qcs = 0, vcs = 0, q2p4 = 0, qp4 = 0, q3p4 = 0;
  if (!dcn_mul_u64((uint64_t)shape->batch, (uint64_t)shape->queries,
                   &f->q_rows) ||
      !dcn_mul_u64((uint64_t)shape->batch, (uint64_t)shape->input_len,
                   &f->v_rows) ||
      !dcn_mul_u64(f->q_rows, C, &qc) || !dcn_mul_u64(f->v_rows, C, &vc) ||
      !dcn_mul_u64(f->q_rows, 3 * P, &q3p) ||
      !dcn_mul_u64(f->q_rows,
                   (uint64_t)c->n_levels * (uint64_t)shape->reference_dim,
                   &refs) ||
      !dcn_bytes(qc, esize, &f->query_bytes) ||
      !dcn_bytes(qc, esize, &f->output_bytes) ||
      !dcn_bytes(vc, esize, &f->input_bytes) ||
      !dcn_bytes(refs, esize, &f->ref_bytes) ||
      !dcn_bytes(f->v_rows, 1, &f->mask_bytes) || !dcn_bytes(qc, esize, &qcs) ||
      !dcn_bytes(vc, esize, &vcs) || !dcn_bytes(q3p, sizeof(cl_float), &q3p4))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "tensor sizes overflow (batch %d, queries %d, input_len "
                    "%d, d_model %d, %lld sampling points per query)",
                    (int)shape->batch, (int)shape->queries,
                    (int)shape->input_len, (int)f->C, (long long)P);
  q2p4 = q3p4 / 3 * 2;
  qp4 = q3p4 / 3;
  const uint64_t limit = (uint64_t)1 << 31;
  f->idx64 = qc >= limit || vc >= limit || q3p >= limit || refs >= limit ||
             s.value_elements >= limit;

  dcn_scratch_plan *sp = &f->scratch;
  dcn_scratch_init(sp, layer->align);
  bool ok = (f->r_v = dcn_scratch_add(sp, vcs)) >= 0;
  ok = ok && (f->r_off = dcn_scratch_add(sp, q2p4)) >= 0;
  ok = ok && (f->r_att = dcn_scratch_add(sp, qp4)) >= 0;
  ok = ok && (f->r_sla = dcn_scratch_add(sp, q3p4)) >= 0;
  ok = ok && (f->r_y = dcn_scratch_add(sp, qcs)) >= 0;
  if (!ok)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "the workspace size overflows");
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_layer_fda_workspace_size(const dcnv4_layer *layer,
                                            const dcnv4_layer_fda_shape *shape,
                                            size_t *bytes) {
  dcnv4_status st =
      dcn_layer_check_size_call(layer, DCNV4_LAYER_FLASH_DEFORM_ATTN, bytes);
  forward_plan f;
  /* make_plan only reads the layer (and writes messages to the context). */
  if (st != DCNV4_SUCCESS || (st = make_plan((dcnv4_layer *)layer, shape, &f)))
    return st;
  *bytes = f.scratch.total;
  return DCNV4_SUCCESS;
}

/* The kernels of one call, built before anything is enqueued. */
typedef struct forward_kernels {
  cl_kernel mask_rows, sampling;
  dcn_gemm gemm;      /* output in the layer's dtype */
  dcn_gemm gemm_rows; /* fp32 output (OFF, A); 16-bit layers only */
} forward_kernels;

static dcnv4_status prepare_kernels(dcnv4_layer *layer, const forward_plan *f,
                                    bool masked, forward_kernels *k) {
  dcnv4_context *ctx = layer->ctx;
  memset(k, 0, sizeof *k);
  dcnv4_status st;
  const dcn_gemm_spec spec = {f->act, f->act,   DCN_GEMM_NONE,
                              true,   f->idx64, false};
  const dcn_gemm_spec rows = {f->act, DCNV4_FLOAT32, DCN_GEMM_NONE,
                              false,  f->idx64,      false};
  if ((st = dcn_gemm_prepare_spec(ctx, &spec, &k->gemm)) ||
      (!f->f32 && (st = dcn_gemm_prepare_spec(ctx, &rows, &k->gemm_rows))))
    return st;
  if (masked && (st = dcn_layer_kernel(ctx, DCN_LK_MASK_ROWS, f->act, 0,
                                       f->idx64, &k->mask_rows)))
    return st;
  if ((st = dcn_layer_kernel(ctx, DCN_LK_FDA_SAMPLING, layer->dtype, 0,
                             f->idx64, &k->sampling)))
    return st;
  return dcn_fda_forward_prepare(ctx, &f->core, DCNV4_FLOAT32);
}

/* Enqueues the steps; `event` goes to the last one. */
static dcnv4_status enqueue_forward(dcnv4_layer *layer, const forward_plan *f,
                                    const forward_kernels *k, cl_mem query,
                                    cl_mem reference_points, cl_mem input,
                                    cl_mem mask, cl_mem output, const cl_mem *r,
                                    cl_event *event) {
  dcnv4_context *ctx = layer->ctx;
  const uint64_t Mq = f->q_rows, Mv = f->v_rows, C = (uint64_t)f->C,
                 P = (uint64_t)f->P;
  dcnv4_status st;
#define W(key) dcn_layer_weight_buffer(layer, key)
  /* The GEMMs' matrices in the activations' storage. */
#define GW(key) dcn_layer_gemm_weight(layer, key, f->act)
  const dcn_gemm *g_rows = f->f32 ? &k->gemm : &k->gemm_rows;

  cl_mem V = r[f->r_v];
  if ((st = dcn_gemm_linear(ctx, &k->gemm, Mv, C, C, input,
                            GW("value_proj.weight"), W("value_proj.bias"), V,
                            NULL, "value_proj")))
    return st;
  if (mask && (st = dcn_run_mask_rows(ctx, k->mask_rows, f->idx64, V, mask, Mv,
                                      f->C, NULL)))
    return st;
  cl_mem OFF = r[f->r_off], A = r[f->r_att], SLA = r[f->r_sla];
  if ((st = dcn_gemm_linear(ctx, g_rows, Mq, 2 * P, C, query,
                            GW("sampling_offsets.weight"), NULL, OFF, NULL,
                            "sampling_offsets")) ||
      (st = dcn_gemm_linear(ctx, g_rows, Mq, P, C, query,
                            GW("attention_weights.weight"), NULL, A, NULL,
                            "attention_weights")) ||
      (st = dcn_run_fda_sampling(ctx, k->sampling, f->idx64, OFF,
                                 W("sampling_offsets.bias"), A,
                                 W("attention_weights.bias"), reference_points,
                                 SLA, &f->geo, Mq, NULL)))
    return st;
  cl_mem Y = r[f->r_y];
  if ((st = dcn_fda_forward_rows(ctx, &f->core, DCNV4_FLOAT32, V, SLA, Y, 0,
                                 NULL, NULL)))
    return st;
  return dcn_gemm_linear(ctx, &k->gemm, Mq, C, C, Y, GW("output_proj.weight"),
                         W("output_proj.bias"), output, event, "output_proj");
#undef GW
#undef W
}

dcnv4_status dcnv4_layer_fda_forward(dcnv4_layer *layer,
                                     const dcnv4_layer_fda_shape *shape,
                                     cl_mem query, cl_mem reference_points,
                                     cl_mem input_flatten, cl_mem padding_mask,
                                     cl_mem output, cl_mem workspace,
                                     cl_uint num_wait, const cl_event *wait,
                                     cl_event *event) {
  dcnv4_status st = dcn_layer_check_kind(layer, DCNV4_LAYER_FLASH_DEFORM_ATTN);
  forward_plan f;
  if (st != DCNV4_SUCCESS || (st = make_plan(layer, shape, &f)) ||
      (st = dcn_layer_check_ready(layer, num_wait, wait)))
    return st;
  dcnv4_context *ctx = layer->ctx;
  const dcn_layer_buffer bufs[] = {
      {"query", query, f.query_bytes, true, false},
      {"reference_points", reference_points, f.ref_bytes, true, false},
      {"input_flatten", input_flatten, f.input_bytes, true, false},
      {"padding_mask", padding_mask, f.mask_bytes, true, true},
      {"output", output, f.output_bytes, false, false},
  };
  forward_kernels k;
  cl_mem regions[DCN_SCRATCH_MAX_REGIONS];
  if ((st =
           dcn_layer_check_buffers(ctx, bufs, 5, workspace, f.scratch.total)) ||
      (st = prepare_kernels(layer, &f, padding_mask != NULL, &k)) ||
      (st = dcn_layer_begin_enqueue(ctx, workspace, &f.scratch, regions,
                                    num_wait, wait)))
    return st;
  st = enqueue_forward(layer, &f, &k, query, reference_points, input_flatten,
                       padding_mask, output, regions, event);
  /* Released now, freed by OpenCL once the enqueued commands are done. */
  dcn_scratch_release(regions, f.scratch.count);
  return st;
}
