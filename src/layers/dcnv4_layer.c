/* The DCNv4 layer (DESIGN.md §1.3): upstream's PyTorch module, forward.
 *
 * With M = N*H*W rows, X the input:
 *   V  = X @ value_proj.weight^T + bias            GEMM with bias
 *        (V = X without_pointwise)
 *   Xo = dwconv(X) with offset_mask_dw, or X       kernel
 *   OM = Xo @ offset_mask.weight^T + bias          GEMM with bias
 *   Y  = dcnv4_core(V, OM)                         core operator
 *   with center_feature_scale:
 *   L  = Y @ center_feature_scale_proj_weight^T    GEMM (M, G)
 *   Y  = Y*(1-s) + V*s, s = sigmoid(L + bias)      kernel, in place
 *   out = Y @ output_proj.weight^T (+ bias)        GEMM (+ bias or convert)
 *        (out = Y without_pointwise)
 * Every intermediate is in the layer's dtype, in regions of one workspace:
 * fp16/bf16 layers run 16-bit GEMMs (fp32 sums, dcn_gemm_spec), the core
 * operator and the small kernels in their dtype, each step rounding its
 * output once, as PyTorch's module in half precision. The model's entry
 * (dcn_dcnv4_layer_forward_model) is the same forward on the model's
 * regions, with the output projection's epilogue. */
#include "layers/layer.h"
#include "ops/fii/fii_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Largest depthwise kernel (its loops are unrolled at compile time). */
#define MAX_DW_KERNEL 63

void dcnv4_layer_dcnv4_config_init(dcnv4_layer_dcnv4_config *c) {
  if (!c)
    return;
  memset(c, 0, sizeof *c);
  c->channels = 64;
  c->kernel_size = 3;
  c->stride = 1;
  c->pad = 1;
  c->dilation = 1;
  c->group = 4;
  c->offset_scale = 1.0f;
  c->dw_kernel_size = 0;
  c->center_feature_scale = 0;
  c->remove_center = 0;
  c->output_bias = 1;
  c->without_pointwise = 0;
}

/* The core operator's parameters for an N x H x W input. */
static void core_params(const dcnv4_layer_dcnv4_config *c, int32_t batch,
                        int32_t height, int32_t width, dcnv4_params *p) {
  dcnv4_params_init(p);
  p->batch = batch;
  p->height_in = height;
  p->width_in = width;
  p->group = c->group;
  p->group_channels = c->group > 0 ? c->channels / c->group : 0;
  p->kernel_h = p->kernel_w = c->kernel_size;
  p->stride_h = p->stride_w = c->stride;
  p->pad_h = p->pad_w = c->pad;
  p->dilation_h = p->dilation_w = c->dilation;
  p->offset_scale = c->offset_scale;
  p->remove_center = c->remove_center;
  p->softmax = 0;
  p->offset_mask_stride = 0; /* ceil(G*K*3/8)*8, as upstream's Linear */
  p->dtype = DCNV4_FLOAT32;
}

static dcnv4_status check_config(dcnv4_context *ctx,
                                 const dcnv4_layer_dcnv4_config *c,
                                 dcnv4_dtype dtype, int32_t *om_channels) {
  const dcn_config_range ranges[] = {
      {"channels", c->channels, 1, INT32_MAX},
      {"group", c->group, 1, INT32_MAX},
      {"kernel_size", c->kernel_size, 1, INT32_MAX},
      {"stride", c->stride, 1, INT32_MAX},
      {"pad", c->pad, 0, INT32_MAX},
      {"dilation", c->dilation, 1, INT32_MAX},
      {"dw_kernel_size", c->dw_kernel_size, 0, MAX_DW_KERNEL},
      {"center_feature_scale", c->center_feature_scale, 0, 1},
      {"remove_center", c->remove_center, 0, 1},
      {"output_bias", c->output_bias, 0, 1},
      {"without_pointwise", c->without_pointwise, 0, 1},
  };
  dcnv4_status st = dcn_check_layer_config(ctx, dtype, ranges,
                                           sizeof ranges / sizeof ranges[0]);
  if (st != DCNV4_SUCCESS)
    return st;
  if (c->channels % c->group != 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "channels (%d) must be a multiple of group (%d)",
                    (int)c->channels, (int)c->group);
  if (c->dw_kernel_size % 2 == 0 && c->dw_kernel_size != 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "dw_kernel_size is %d; it must be odd (padding "
                    "(k-1)/2 keeps the image size only then) or 0 for none",
                    (int)c->dw_kernel_size);
  if (!isfinite(c->offset_scale))
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "offset_scale must be finite");
  /* The core operator's own limits, on the smallest image it accepts. */
  int64_t span = (int64_t)c->dilation * (c->kernel_size - 1) + 1;
  int64_t side = span - 2 * (int64_t)c->pad;
  dcnv4_params p;
  core_params(c, 1, side > 1 && side < INT32_MAX ? (int32_t)side : 1,
              side > 1 && side < INT32_MAX ? (int32_t)side : 1, &p);
  char why[256];
  st = dcnv4_check_params(&p, why, sizeof why);
  if (st != DCNV4_SUCCESS)
    return dcn_fail(ctx, st, "%s", why);
  dcnv4_shape s;
  (void)dcnv4_get_shape(&p, &s);
  *om_channels = s.offset_mask_stride;
  return DCNV4_SUCCESS;
}

/* offset_mask_dw.weight: PyTorch's (C, 1, k, k) -> (k, k, C) on the device,
 * so neighbouring channels read neighbouring weights. */
static void pack_dw_weight(const dcn_weight *w, const float *src, float *dst) {
  const int64_t C = w->shape[0], kk = w->shape[2] * w->shape[3];
  for (int64_t c = 0; c < C; c++)
    for (int64_t t = 0; t < kk; t++)
      dst[t * C + c] = src[c * kk + t];
}

dcnv4_status dcnv4_layer_dcnv4_create(dcnv4_context *ctx,
                                      const dcnv4_layer_dcnv4_config *config,
                                      dcnv4_dtype dtype, dcnv4_layer **out) {
  int32_t S = 0;
  dcnv4_status st = dcn_layer_check_create(ctx, out, config != NULL);
  if (st != DCNV4_SUCCESS || (st = check_config(ctx, config, dtype, &S)))
    return st;
  const int64_t C = config->channels, G = config->group,
                d = config->dw_kernel_size;
  const bool pointwise = !config->without_pointwise,
             cfs = config->center_feature_scale != 0;
  const dcn_weight_decl weights[] = {
      {"value_proj.weight", 2, {C, C}, NULL, pointwise},
      {"value_proj.bias", 1, {C}, NULL, pointwise},
      {"offset_mask.weight", 2, {S, C}, NULL, true},
      {"offset_mask.bias", 1, {S}, NULL, true},
      {"offset_mask_dw.weight", 4, {C, 1, d, d}, pack_dw_weight, d > 0},
      {"offset_mask_dw.bias", 1, {C}, NULL, d > 0},
      {"output_proj.weight", 2, {C, C}, NULL, pointwise},
      {"output_proj.bias", 1, {C}, NULL, pointwise && config->output_bias},
      {"center_feature_scale_proj_weight", 2, {G, C}, NULL, cfs},
      {"center_feature_scale_proj_bias", 1, {G}, NULL, cfs},
  };
  const dcn_layer_config lc = {.dcnv4 = *config};
  return dcn_layer_create(ctx, DCNV4_LAYER_DCNV4, dtype, &lc, weights,
                          sizeof weights / sizeof weights[0], out);
}

/* ------------------------------------------------------------ forward */

/* Everything one forward call needs to know, derived before any work. */
typedef struct forward_plan {
  dcnv4_params core;
  uint64_t rows; /* M = N*H*W */
  int32_t C, G, D, S;
  size_t io_bytes; /* input and output, in the layer's dtype */
  bool f32, pointwise, dw, cfs, idx64;
  dcnv4_dtype act; /* the intermediates' (and the GEMMs') storage */
  dcn_scratch_plan scratch;
  /* Scratch regions (-1: none). */
  int r_v, r_dw, r_om, r_y;
} forward_plan;

static dcnv4_status make_plan(dcnv4_layer *layer, int32_t batch, int32_t height,
                              int32_t width, forward_plan *f) {
  dcnv4_context *ctx = layer->ctx;
  const dcnv4_layer_dcnv4_config *c = &layer->config.dcnv4;
  memset(f, 0, sizeof *f);
  if (batch < 1 || height < 1 || width < 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "batch, height and width are %d, %d, %d; each must be "
                    "at least 1",
                    (int)batch, (int)height, (int)width);
  core_params(c, batch, height, width, &f->core);
  char why[256];
  dcnv4_shape s;
  dcnv4_status st = dcnv4_check_params(&f->core, why, sizeof why);
  if (st != DCNV4_SUCCESS)
    return dcn_fail(ctx, st, "%s", why);
  (void)dcnv4_get_shape(&f->core, &s);
  if (s.height_out != height || s.width_out != width)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "the layer keeps the image size, but kernel_size %d, "
                    "stride %d, pad %d, dilation %d turn a %dx%d input into "
                    "%dx%d",
                    (int)c->kernel_size, (int)c->stride, (int)c->pad,
                    (int)c->dilation, (int)height, (int)width,
                    (int)s.height_out, (int)s.width_out);
  f->C = c->channels;
  f->G = c->group;
  f->D = c->channels / c->group;
  f->S = s.offset_mask_stride;
  f->f32 = layer->dtype == DCNV4_FLOAT32;
  f->act = layer->dtype;
  f->core.dtype = f->act;
  const size_t asize = dcnv4_dtype_size(f->act);
  f->pointwise = !c->without_pointwise;
  f->dw = c->dw_kernel_size > 0;
  f->cfs = c->center_feature_scale != 0;
  const uint64_t dims[] = {(uint64_t)batch, (uint64_t)height, (uint64_t)width};
  uint64_t widest = (uint64_t)(f->C > f->S ? f->C : f->S);
  size_t rc4 = 0, rs4 = 0;
  uint64_t elements = 0;
  if (!dcn_product_u64(dims, 3, &f->rows) ||
      !dcn_mul_u64(f->rows, widest, &elements) ||
      !dcn_bytes(f->rows * (uint64_t)f->C, dcnv4_dtype_size(layer->dtype),
                 &f->io_bytes) ||
      !dcn_bytes(elements, asize, &rs4))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "tensor sizes overflow (batch %d, %dx%d, %d channels)",
                    (int)batch, (int)height, (int)width, (int)f->C);
  rc4 = (size_t)(f->rows * (uint64_t)f->C * asize);
  rs4 = (size_t)(f->rows * (uint64_t)f->S * asize);
  f->idx64 = elements >= ((uint64_t)1 << 31);

  dcn_scratch_plan *p = &f->scratch;
  dcn_scratch_init(p, layer->align);
  f->r_v = f->r_dw = f->r_om = f->r_y = -1;
  bool ok = true;
  if (f->pointwise)
    ok = ok && (f->r_v = dcn_scratch_add(p, rc4)) >= 0;
  if (f->dw)
    ok = ok && (f->r_dw = dcn_scratch_add(p, rc4)) >= 0;
  ok = ok && (f->r_om = dcn_scratch_add(p, rs4)) >= 0;
  /* The core output reuses the depthwise result (dead by then); a layer
   * without projections writes it straight into the output. */
  if (f->pointwise)
    f->r_y = f->dw ? f->r_dw : (ok ? dcn_scratch_add(p, rc4) : -1);
  if (!ok || (f->pointwise && f->r_y < 0))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "the workspace size overflows");
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_layer_dcnv4_workspace_size(const dcnv4_layer *layer,
                                              int32_t batch, int32_t height,
                                              int32_t width, size_t *bytes) {
  dcnv4_status st = dcn_layer_check_size_call(layer, DCNV4_LAYER_DCNV4, bytes);
  forward_plan f;
  /* make_plan only reads the layer (and writes messages to the context). */
  if (st != DCNV4_SUCCESS ||
      (st = make_plan((dcnv4_layer *)layer, batch, height, width, &f)))
    return st;
  *bytes = f.scratch.total;
  return DCNV4_SUCCESS;
}

/* The kernels of one call, built before anything is enqueued. */
typedef struct forward_kernels {
  cl_kernel dwconv, cfs;
  dcn_gemm gemm;
  dcn_gemm gemm_ep; /* the output projection's, with an epilogue */
} forward_kernels;

static dcnv4_status prepare_kernels(dcnv4_layer *layer, const forward_plan *f,
                                    forward_kernels *k) {
  dcnv4_context *ctx = layer->ctx;
  memset(k, 0, sizeof *k);
  dcnv4_status st;
  /* Every call has offset_mask's bias. */
  const dcn_gemm_spec spec = {f->act, f->act,   DCN_GEMM_NONE,
                              true,   f->idx64, false};
  if ((st = dcn_gemm_prepare_spec(ctx, &spec, &k->gemm)))
    return st;
  if (f->dw && (st = dcn_layer_kernel(ctx, DCN_LK_DWCONV, f->act,
                                      layer->config.dcnv4.dw_kernel_size,
                                      f->idx64, &k->dwconv)))
    return st;
  if (f->cfs && (st = dcn_layer_kernel(ctx, DCN_LK_CFS_BLEND, f->act, f->D,
                                       f->idx64, &k->cfs)))
    return st;
  return dcn_dcnv4_forward_prepare(ctx, &f->core);
}

/* Enqueues the steps; `event` goes to the last one. `ep` (NULL: none) is
 * the output projection's epilogue (plans with projections only). */
static dcnv4_status enqueue_forward(dcnv4_layer *layer, const forward_plan *f,
                                    const forward_kernels *k, cl_mem input,
                                    cl_mem output, const dcn_gemm_epilogue *ep,
                                    const cl_mem *r, cl_event *event) {
  dcnv4_context *ctx = layer->ctx;
  const dcnv4_layer_dcnv4_config *c = &layer->config.dcnv4;
  const bool out_bias = f->pointwise && c->output_bias;
  const uint64_t M = f->rows;
  dcnv4_status st;
#define W(key) dcn_layer_weight_buffer(layer, key)
  /* The GEMMs' matrices in the intermediates' storage. */
#define GW(key) dcn_layer_gemm_weight(layer, key, f->act)

  cl_mem X = input;
  cl_mem V = X;
  if (f->pointwise) {
    V = r[f->r_v];
    if ((st = dcn_gemm_linear(ctx, &k->gemm, M, (uint64_t)f->C, (uint64_t)f->C,
                              X, GW("value_proj.weight"), W("value_proj.bias"),
                              V, NULL, "value_proj")))
      return st;
  }
  cl_mem Xo = X;
  if (f->dw) {
    Xo = r[f->r_dw];
    if ((st = dcn_run_dwconv(ctx, k->dwconv, f->idx64, X,
                             W("offset_mask_dw.weight"),
                             W("offset_mask_dw.bias"), Xo, f->core.batch,
                             f->core.height_in, f->core.width_in, f->C, NULL)))
      return st;
  }
  cl_mem OM = r[f->r_om];
  if ((st = dcn_gemm_linear(ctx, &k->gemm, M, (uint64_t)f->S, (uint64_t)f->C,
                            Xo, GW("offset_mask.weight"), W("offset_mask.bias"),
                            OM, NULL, "offset_mask")))
    return st;

  /* Which step is last, so that it gets the caller's event. */
  const bool core_last = !f->pointwise && !f->cfs;
  const bool cfs_last = !f->pointwise && f->cfs;
  cl_mem Y = f->r_y >= 0 ? r[f->r_y] : output;
  if ((st = dcnv4_forward(ctx, &f->core, V, OM, Y, 0, NULL,
                          core_last ? event : NULL)))
    return st;
  if (f->cfs) {
    /* The (M, G) logits reuse the offsets' region, dead by now. */
    cl_mem L = OM;
    if ((st = dcn_gemm_linear(ctx, &k->gemm, M, (uint64_t)f->G, (uint64_t)f->C,
                              Y, GW("center_feature_scale_proj_weight"), NULL,
                              L, NULL, "center_feature_scale_proj")) ||
        (st = dcn_run_cfs_blend(ctx, k->cfs, f->idx64, Y, V, L,
                                W("center_feature_scale_proj_bias"), M, f->G,
                                f->D, cfs_last ? event : NULL)))
      return st;
  }
  if (f->pointwise) {
    /* Straight into the output, bias included. */
    cl_mem bias = out_bias ? W("output_proj.bias") : NULL;
    /* V's region (dead now) is the epilogue's scratch. */
    if (ep && ep->kind != DCN_GEMM_NONE)
      return dcn_gemm_linear_epilogue(
          ctx, &k->gemm_ep, M, (uint64_t)f->C, (uint64_t)f->C, Y,
          GW("output_proj.weight"), bias,
          ep->kind == DCN_GEMM_RESIDUAL ? V : output, ep, event, "output_proj");
    return dcn_gemm_linear(ctx, &k->gemm, M, (uint64_t)f->C, (uint64_t)f->C, Y,
                           GW("output_proj.weight"), bias, output, event,
                           "output_proj");
  }
  return DCNV4_SUCCESS;
#undef GW
#undef W
}

dcnv4_status dcnv4_layer_dcnv4_forward(dcnv4_layer *layer, int32_t batch,
                                       int32_t height, int32_t width,
                                       cl_mem input, cl_mem output,
                                       cl_mem workspace, cl_uint num_wait,
                                       const cl_event *wait, cl_event *event) {
  dcnv4_status st = dcn_layer_check_kind(layer, DCNV4_LAYER_DCNV4);
  forward_plan f;
  if (st != DCNV4_SUCCESS ||
      (st = make_plan(layer, batch, height, width, &f)) ||
      (st = dcn_layer_check_ready(layer, num_wait, wait)))
    return st;
  dcnv4_context *ctx = layer->ctx;
  const dcn_layer_buffer bufs[] = {
      {"input", input, f.io_bytes, true, false},
      {"output", output, f.io_bytes, false, false},
  };
  forward_kernels k;
  cl_mem regions[DCN_SCRATCH_MAX_REGIONS];
  if ((st =
           dcn_layer_check_buffers(ctx, bufs, 2, workspace, f.scratch.total)) ||
      (st = prepare_kernels(layer, &f, &k)) ||
      (st = dcn_layer_begin_enqueue(ctx, workspace, &f.scratch, regions,
                                    num_wait, wait)))
    return st;
  st = enqueue_forward(layer, &f, &k, input, output, NULL, regions, event);
  /* Released now, freed by OpenCL once the enqueued commands are done. */
  dcn_scratch_release(regions, f.scratch.count);
  return st;
}

/* ------------------------------------------------- the model's entry */

dcnv4_status dcn_dcnv4_layer_model_scratch(dcnv4_layer *layer, int32_t batch,
                                           int32_t height, int32_t width,
                                           dcn_scratch_plan *plan) {
  forward_plan f;
  dcnv4_status st;
  if ((st = dcn_layer_check_kind(layer, DCNV4_LAYER_DCNV4)) ||
      (st = make_plan(layer, batch, height, width, &f)))
    return st;
  *plan = f.scratch;
  return DCNV4_SUCCESS;
}

/* The kernels of a model's call with an epilogue of `kind` (its residual
 * in the activations' storage). */
static dcnv4_status prepare_model(dcnv4_layer *layer, const forward_plan *f,
                                  dcn_gemm_epilogue_kind kind,
                                  forward_kernels *k) {
  const dcn_gemm_spec spec = {f->act,   f->act,
                              kind,     layer->config.dcnv4.output_bias != 0,
                              f->idx64, false};
  dcnv4_status st = prepare_kernels(layer, f, k);
  if (st == DCNV4_SUCCESS && kind != DCN_GEMM_NONE)
    st = dcn_gemm_prepare_spec(layer->ctx, &spec, &k->gemm_ep);
  return st;
}

dcnv4_status dcn_dcnv4_layer_model_prepare(dcnv4_layer *layer, int32_t batch,
                                           int32_t height, int32_t width,
                                           dcn_gemm_epilogue_kind kind) {
  forward_plan f;
  forward_kernels k;
  dcnv4_status st;
  if ((st = dcn_layer_check_kind(layer, DCNV4_LAYER_DCNV4)) ||
      (st = make_plan(layer, batch, height, width, &f)) ||
      (st = dcn_layer_check_complete(layer)) ||
      (st = prepare_model(layer, &f, kind, &k)))
    return st;
  if (!f.pointwise)
    return dcn_fail(layer->ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "internal: the model's DCNv4 layers have projections");
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_dcnv4_layer_forward_model(dcnv4_layer *layer, int32_t batch,
                                           int32_t height, int32_t width,
                                           cl_mem input, cl_mem output,
                                           const dcn_gemm_epilogue *ep,
                                           const cl_mem *regions,
                                           cl_event *event) {
  forward_plan f;
  forward_kernels k;
  dcnv4_status st;
  /* Both succeeded in dcn_dcnv4_layer_model_prepare: kernels are cached. */
  if ((st = make_plan(layer, batch, height, width, &f)) ||
      (st = prepare_model(layer, &f, ep ? ep->kind : DCN_GEMM_NONE, &k)))
    return st;
  return enqueue_forward(layer, &f, &k, input, output, ep, regions, event);
}
