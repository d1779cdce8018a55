/* The FlashInternImage classification model (issue 31): upstream's
 * classification/models/flash_intern_image.py in eval mode, composed of the
 * DCNv4 layer (src/layers/dcnv4_layer.c), the GEMM with its epilogues and
 * the model's own kernels (src/ops/fii/fii_ops.h).
 *
 * With X the residual stream (M rows of C channels, fp32, channels-last):
 *   stem      Hb = conv1(image); Hb = GELU(LN(Hb)); X = LN(conv2(Hb))
 *   block     pre-norm:  T = LN1(X); X += g1 * dcn(T)      (GEMM epilogue)
 *                        T = LN2(X); Hb = GELU(fc1(T));
 *                        X += g2 * fc2(Hb)                 (GEMM epilogue)
 *             post-norm: T = dcn(X); X += g1 * LN1(T)      (LN epilogue)
 *                        Hb = GELU(fc1(X)); T = fc2(Hb); X += g2 * LN2(T)
 *             res-post-norm (no layer scale): T = LN1(X); Hb = dcn(T);
 *                        X += RPN1(Hb); T = LN2(X); Hb = GELU(fc1(T));
 *                        T = fc2(Hb); X += RPN2(T)
 *   level end X = LN(X) where the level has a norm (into features[l] when
 *             asked); downsampling T = conv(X); X = LN(T)
 *   head      Hb = GELU(X @ (BN-folded 1x1 conv)^T + b); T = avgpool(Hb);
 *             logits = head(T)
 * (g = 1 without layer scale.) The DCNv4 layers' regions and X, T, Hb are
 * the regions of one scratch plan.
 *
 * X, T, Hb and every activation between operators (the DCNv4 layers'
 * included) are stored in the model's dtype: an fp16/bf16 model rounds
 * each operator's output once to its dtype, as PyTorch's model.half() (or
 * bfloat16) does, with fp32 sums in the GEMMs, convolutions, norms and the
 * pooling, and 16-bit copies of the GEMMs' matrices. The image, the logits
 * and the features stay fp32 (the API's): the first convolution reads the
 * image, the head's GEMM writes fp32 logits, and features are widened from
 * the model's dtype (exactly). */
#include "core/fault.h"
#include "layers/layer.h"
#include "ops/fii/fii_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LN_EPS 1e-6f
#define BN_EPS 1e-5
/* Limits that keep every size computation far from overflow. */
#define MAX_CHANNELS (1 << 24)
#define MAX_DEPTH 4096

/* Where a state-dict key's values go. */
typedef enum weight_kind {
  W_DEVICE, /* a buffer of the model, PyTorch's layout */
  W_LAYER,  /* a weight of a DCNv4 layer (dcnv4_layer_set_weight) */
  W_HEAD    /* the head's convolution and BatchNorm, folded at load */
} weight_kind;

enum { HEAD_CONV, HEAD_BN_W, HEAD_BN_B, HEAD_BN_MEAN, HEAD_BN_VAR, HEAD_N };

typedef struct fii_weight {
  char *key; /* owned */
  int ndim;
  int64_t shape[4];
  uint64_t elements;
  weight_kind kind;
  cl_mem buffer;         /* W_DEVICE (owned): fp32, or a GEMM's matrix in
                            a 16-bit model's dtype (gemm_matrix) */
  dcnv4_layer *layer;    /* W_LAYER */
  const char *layer_key; /* W_LAYER: the layer's own key */
  int head_slot;         /* W_HEAD */
} fii_weight;

typedef struct fii_block {
  dcnv4_layer *dcn;
  cl_mem norm1_w, norm1_b, norm2_w, norm2_b;
  cl_mem fc1_w, fc1_b, fc2_w, fc2_b;     /* fc2_b NULL without mlp_fc2_bias */
  cl_mem gamma1, gamma2;                 /* NULL without layer scale */
  cl_mem rpn1_w, rpn1_b, rpn2_w, rpn2_b; /* res_post_norm */
  cl_mem post_w, post_b; /* level 2's norm after this block, or NULL */
} fii_block;

typedef struct fii_level {
  int32_t channels, hidden, group, depth;
  fii_block *blocks;
  cl_mem norm_w, norm_b;           /* NULL: the level has no norm */
  cl_mem down_w, down_nw, down_nb; /* downsampling (levels 0..2) */
} fii_level;

struct dcnv4_fii {
  dcnv4_context *ctx;
  dcnv4_fii_config config;
  dcnv4_dtype dtype;
  size_t align;
  bool loaded;
  int32_t head_width; /* int(8C * cls_scale) */
  fii_weight *weights;
  size_t weight_count, weight_capacity;
  cl_mem stem_c1_w, stem_c1_b, stem_n1_w, stem_n1_b;
  cl_mem stem_c2_w, stem_c2_b, stem_n2_w, stem_n2_b;
  fii_level levels[DCNV4_FII_LEVELS];
  cl_mem head_w, head_b; /* the BN-folded 1x1 convolution (owned); head_w
                            in the activations' dtype, a GEMM's matrix */
  cl_mem fc_w, fc_b;     /* the linear head, num_classes > 0 */
};

/* ------------------------------------------------------------ config */

void dcnv4_fii_config_init(dcnv4_fii_config *c) {
  if (!c)
    return;
  memset(c, 0, sizeof *c);
  /* upstream's config.py defaults, which are FlashInternImage-T's shape */
  c->channels = 64;
  const int32_t depths[] = {4, 4, 18, 4}, groups[] = {4, 8, 16, 32};
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    c->depths[l] = depths[l];
    c->groups[l] = groups[l];
  }
  c->mlp_ratio = 4.0f;
  c->offset_scale = 1.0f;
  c->cls_scale = 1.5f;
  c->num_classes = 1000;
}

dcnv4_status dcnv4_fii_config_preset(dcnv4_fii_config *config,
                                     const char *name) {
  if (!config || !name)
    return DCNV4_ERROR_NULL_POINTER;
  static const struct {
    const char *name;
    int32_t channels, depths[4], groups[4];
    float offset_scale;
    int32_t big; /* L: dcn_output_bias and mlp_fc2_bias */
  } presets[] = {
      {"t", 64, {4, 4, 18, 4}, {4, 8, 16, 32}, 1.0f, 0},
      {"s", 80, {4, 4, 21, 4}, {5, 10, 20, 40}, 1.0f, 0},
      {"b", 112, {4, 4, 21, 4}, {7, 14, 28, 56}, 0.5f, 0},
      {"l", 160, {5, 5, 22, 5}, {10, 20, 40, 80}, 2.0f, 1},
  };
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
    if (strcmp(presets[i].name, name) != 0)
      continue;
    dcnv4_fii_config c;
    dcnv4_fii_config_init(&c);
    c.channels = presets[i].channels;
    for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
      c.depths[l] = presets[i].depths[l];
      c.groups[l] = presets[i].groups[l];
    }
    c.offset_scale = presets[i].offset_scale;
    if (i > 0) { /* S, B, L: layer scale, post-norm, 3x3 depthwise */
      c.layer_scale = 1;
      c.post_norm = 1;
      c.dw_kernel_size = 3;
    }
    c.dcn_output_bias = c.mlp_fc2_bias = presets[i].big;
    *config = c;
    return DCNV4_SUCCESS;
  }
  return DCNV4_ERROR_INVALID_PARAMETER;
}

/* int(n * scale) as Python computes it (in double). */
static int64_t scaled(int64_t n, float scale) {
  double v = (double)n * (double)scale;
  return v >= 0 && v < 9e15 ? (int64_t)v : -1;
}

static dcnv4_status check_flag(dcnv4_context *ctx, const char *name,
                               int32_t v) {
  if (v != 0 && v != 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "%s is %d; it must be 0 or 1", name, (int)v);
  return DCNV4_SUCCESS;
}

static dcnv4_status check_config(dcnv4_context *ctx, const dcnv4_fii_config *c,
                                 dcnv4_dtype dtype) {
  dcnv4_status st;
  if (dcnv4_dtype_size(dtype) == 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER, "unknown dtype %d",
                    (int)dtype);
  if (c->channels < 2 || c->channels > MAX_CHANNELS)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "channels is %d; it must be in [2, %d]", (int)c->channels,
                    MAX_CHANNELS);
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    if (c->depths[l] < 1 || c->depths[l] > MAX_DEPTH)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                      "depths[%d] is %d; it must be in [1, %d]", l,
                      (int)c->depths[l], MAX_DEPTH);
    int64_t ch = (int64_t)c->channels << l;
    if (c->groups[l] < 1 || ch % c->groups[l] != 0)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                      "groups[%d] is %d; it must divide level %d's %lld "
                      "channels",
                      l, (int)c->groups[l], l, (long long)ch);
    int64_t hidden = scaled(ch, c->mlp_ratio);
    if (!isfinite(c->mlp_ratio) || hidden < 1 || hidden > INT32_MAX)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                      "mlp_ratio %g gives level %d an MLP of %lld hidden "
                      "features; it must give 1 to %d",
                      (double)c->mlp_ratio, l, (long long)hidden, INT32_MAX);
  }
  int64_t head = scaled((int64_t)c->channels * 8, c->cls_scale);
  if (!isfinite(c->cls_scale) || head < 1 || head > INT32_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "cls_scale %g gives a head of %lld features; it must "
                    "give 1 to %d",
                    (double)c->cls_scale, (long long)head, INT32_MAX);
  if (c->num_classes < 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "num_classes is %d; it must be 0 (no linear head) or more",
                    (int)c->num_classes);
  if (c->level2_post_norm_block_count < 0 ||
      c->level2_post_norm_block_count > DCNV4_FII_MAX_POST_NORM_BLOCKS)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "level2_post_norm_block_count is %d; it must be in "
                    "[0, %d]",
                    (int)c->level2_post_norm_block_count,
                    DCNV4_FII_MAX_POST_NORM_BLOCKS);
  if ((st = check_flag(ctx, "layer_scale", c->layer_scale)) ||
      (st = check_flag(ctx, "post_norm", c->post_norm)) ||
      (st = check_flag(ctx, "res_post_norm", c->res_post_norm)) ||
      (st = check_flag(ctx, "center_feature_scale", c->center_feature_scale)) ||
      (st = check_flag(ctx, "level2_post_norm", c->level2_post_norm)) ||
      (st = check_flag(ctx, "mlp_fc2_bias", c->mlp_fc2_bias)) ||
      (st = check_flag(ctx, "dcn_output_bias", c->dcn_output_bias)))
    return st;
  /* offset_scale and dw_kernel_size: the DCNv4 layers check them. */
  return DCNV4_SUCCESS;
}

/* ------------------------------------------------------------ weights */

static dcnv4_status add_entry(dcnv4_fii *m, fii_weight **out, weight_kind kind,
                              int ndim, const int64_t *shape, const char *fmt,
                              ...) DCN_PRINTF(6, 7);

static dcnv4_status add_entry(dcnv4_fii *m, fii_weight **out, weight_kind kind,
                              int ndim, const int64_t *shape, const char *fmt,
                              ...) {
  dcnv4_context *ctx = m->ctx;
  if (m->weight_count == m->weight_capacity) {
    size_t cap = m->weight_capacity ? 2 * m->weight_capacity : 64;
    fii_weight *grown = dcn_realloc(m->weights, cap * sizeof *grown);
    if (!grown)
      return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                      "out of host memory");
    m->weights = grown;
    m->weight_capacity = cap;
  }
  fii_weight *w = &m->weights[m->weight_count];
  memset(w, 0, sizeof *w);
  char key[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(key, sizeof key, fmt, ap);
  va_end(ap);
  if (!(w->key = dcn_strdup(key)))
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  m->weight_count++;
  w->kind = kind;
  w->ndim = ndim;
  w->elements = 1;
  for (int i = 0; i < ndim; i++) {
    w->shape[i] = shape[i];
    w->elements *= (uint64_t)shape[i]; /* bounded by the config's limits */
  }
  *out = w;
  return DCNV4_SUCCESS;
}

/* Whether a weight of `ndim` dimensions is a GEMM's matrix stored in a
 * 16-bit model's dtype (the MLPs' and the head's linear layers). */
static bool gemm_matrix(const dcnv4_fii *m, int ndim) {
  return ndim == 2 && m->dtype != DCNV4_FLOAT32;
}

static cl_mem new_buffer(dcnv4_context *ctx, uint64_t values, size_t size,
                         dcnv4_status *st) {
  cl_int err;
  size_t bytes;
  if (!dcn_bytes(values, size, &bytes)) {
    *st = dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW, "a weight is too large");
    return NULL;
  }
  cl_mem b =
      dcn_clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, bytes, NULL, &err);
  if (!b)
    *st = dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                   "allocating %zu bytes for a weight failed: %s", bytes,
                   dcn_cl_error_name(err));
  return b;
}

/* A weight held in a buffer of the model; *slot receives the buffer. */
#define ADD_DEVICE(slot, ndim, shape, ...)                                     \
  do {                                                                         \
    fii_weight *w_;                                                            \
    if ((st = add_entry(m, &w_, W_DEVICE, ndim, shape, __VA_ARGS__)))          \
      return st;                                                               \
    if (!(w_->buffer =                                                         \
              new_buffer(m->ctx, w_->elements,                                 \
                         gemm_matrix(m, ndim) ? dcnv4_dtype_size(m->dtype)     \
                                              : sizeof(cl_float),              \
                         &st)))                                                \
      return st;                                                               \
    *(slot) = w_->buffer;                                                      \
  } while (0)

/* LayerNorm weight and bias under `prefix` + ".weight" / ".bias". */
static dcnv4_status add_norm(dcnv4_fii *m, const char *prefix, int64_t ch,
                             cl_mem *weight, cl_mem *bias) {
  dcnv4_status st;
  ADD_DEVICE(weight, 1, &ch, "%s.weight", prefix);
  ADD_DEVICE(bias, 1, &ch, "%s.bias", prefix);
  return DCNV4_SUCCESS;
}

static dcnv4_status add_block(dcnv4_fii *m, int l, int b, fii_level *lv) {
  const dcnv4_fii_config *c = &m->config;
  fii_block *blk = &lv->blocks[b];
  dcnv4_status st;
  char p[96];
  const int64_t C = lv->channels, Hd = lv->hidden;
  const int64_t hc[] = {Hd, C}, ch[] = {C, Hd};
  snprintf(p, sizeof p, "levels.%d.blocks.%d", l, b);
  dcnv4_layer_dcnv4_config dc;
  dcnv4_layer_dcnv4_config_init(&dc);
  dc.channels = lv->channels;
  dc.group = lv->group;
  dc.offset_scale = c->offset_scale;
  dc.dw_kernel_size = c->dw_kernel_size;
  dc.output_bias = c->dcn_output_bias;
  if ((st = dcnv4_layer_dcnv4_create(m->ctx, &dc, m->dtype, &blk->dcn)))
    return st;
  char norm[128];
  snprintf(norm, sizeof norm, "%s.norm1.0", p);
  if ((st = add_norm(m, norm, C, &blk->norm1_w, &blk->norm1_b)))
    return st;
  for (size_t i = 0; i < dcnv4_layer_weight_count(blk->dcn); i++) {
    dcnv4_weight_info info;
    fii_weight *w;
    (void)dcnv4_layer_weight_info(blk->dcn, i, &info);
    if ((st = add_entry(m, &w, W_LAYER, info.ndim, info.shape, "%s.dcn.%s", p,
                        info.key)))
      return st;
    w->layer = blk->dcn;
    w->layer_key = info.key;
  }
  snprintf(norm, sizeof norm, "%s.norm2.0", p);
  if ((st = add_norm(m, norm, C, &blk->norm2_w, &blk->norm2_b)))
    return st;
  ADD_DEVICE(&blk->fc1_w, 2, hc, "%s.mlp.fc1.weight", p);
  ADD_DEVICE(&blk->fc1_b, 1, &Hd, "%s.mlp.fc1.bias", p);
  ADD_DEVICE(&blk->fc2_w, 2, ch, "%s.mlp.fc2.weight", p);
  if (c->mlp_fc2_bias)
    ADD_DEVICE(&blk->fc2_b, 1, &C, "%s.mlp.fc2.bias", p);
  if (c->layer_scale) {
    ADD_DEVICE(&blk->gamma1, 1, &C, "%s.gamma1", p);
    ADD_DEVICE(&blk->gamma2, 1, &C, "%s.gamma2", p);
  }
  if (c->res_post_norm) {
    snprintf(norm, sizeof norm, "%s.res_post_norm1.0", p);
    if ((st = add_norm(m, norm, C, &blk->rpn1_w, &blk->rpn1_b)))
      return st;
    snprintf(norm, sizeof norm, "%s.res_post_norm2.0", p);
    if ((st = add_norm(m, norm, C, &blk->rpn2_w, &blk->rpn2_b)))
      return st;
  }
  return DCNV4_SUCCESS;
}

/* Declares every weight, in the order of upstream's state dict. */
static dcnv4_status build(dcnv4_fii *m) {
  const dcnv4_fii_config *c = &m->config;
  dcnv4_status st;
  const int64_t C = c->channels, half = C / 2;
  const int64_t c1[] = {half, 3, 3, 3}, c2[] = {C, half, 3, 3};
  ADD_DEVICE(&m->stem_c1_w, 4, c1, "patch_embed.conv1.weight");
  ADD_DEVICE(&m->stem_c1_b, 1, &half, "patch_embed.conv1.bias");
  if ((st = add_norm(m, "patch_embed.norm1.1", half, &m->stem_n1_w,
                     &m->stem_n1_b)))
    return st;
  ADD_DEVICE(&m->stem_c2_w, 4, c2, "patch_embed.conv2.weight");
  ADD_DEVICE(&m->stem_c2_b, 1, &C, "patch_embed.conv2.bias");
  if ((st =
           add_norm(m, "patch_embed.norm2.1", C, &m->stem_n2_w, &m->stem_n2_b)))
    return st;
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    fii_level *lv = &m->levels[l];
    lv->channels = c->channels << l;
    lv->hidden = (int32_t)scaled(lv->channels, c->mlp_ratio);
    lv->group = c->groups[l];
    lv->depth = c->depths[l];
    if (!(lv->blocks = dcn_calloc((size_t)lv->depth, sizeof *lv->blocks)))
      return dcn_fail(m->ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                      "out of host memory");
    for (int b = 0; b < lv->depth; b++)
      if ((st = add_block(m, l, b, lv)))
        return st;
    char p[96];
    if (!c->post_norm || c->center_feature_scale) {
      snprintf(p, sizeof p, "levels.%d.norm.0", l);
      if ((st = add_norm(m, p, lv->channels, &lv->norm_w, &lv->norm_b)))
        return st;
    }
    if (l == 2 && c->level2_post_norm) {
      /* One norm per listed id; a block takes the first that names it
       * (Python's list.index), so later duplicates and ids beyond the
       * depth only hold weights. */
      for (int k = 0; k < c->level2_post_norm_block_count; k++) {
        cl_mem w = NULL, b = NULL;
        snprintf(p, sizeof p, "levels.2.post_norms.%d.0", k);
        if ((st = add_norm(m, p, lv->channels, &w, &b)))
          return st;
        int32_t id = c->level2_post_norm_block_ids[k];
        if (id >= 0 && id < lv->depth && !lv->blocks[id].post_w) {
          lv->blocks[id].post_w = w;
          lv->blocks[id].post_b = b;
        }
      }
    }
    if (l + 1 < DCNV4_FII_LEVELS) {
      const int64_t dw[] = {2 * (int64_t)lv->channels, lv->channels, 3, 3};
      ADD_DEVICE(&lv->down_w, 4, dw, "levels.%d.downsample.conv.weight", l);
      snprintf(p, sizeof p, "levels.%d.downsample.norm.1", l);
      if ((st = add_norm(m, p, 2 * (int64_t)lv->channels, &lv->down_nw,
                         &lv->down_nb)))
        return st;
    }
  }
  const int64_t F = 8 * C, Hw = m->head_width;
  const int64_t hw[] = {Hw, F, 1, 1};
  static const char *const bn[] = {"weight", "bias", "running_mean",
                                   "running_var"};
  fii_weight *w;
  if ((st = add_entry(m, &w, W_HEAD, 4, hw, "conv_head.0.weight")))
    return st;
  w->head_slot = HEAD_CONV;
  for (int i = 0; i < 4; i++) {
    if ((st = add_entry(m, &w, W_HEAD, 1, &Hw, "conv_head.1.0.%s", bn[i])))
      return st;
    w->head_slot = HEAD_BN_W + i;
  }
  if (!(m->head_w = new_buffer(m->ctx, (uint64_t)Hw * (uint64_t)F,
                               dcnv4_dtype_size(m->dtype), &st)) ||
      !(m->head_b = new_buffer(m->ctx, (uint64_t)Hw, sizeof(cl_float), &st)))
    return st;
  if (c->num_classes > 0) {
    const int64_t K = c->num_classes, kh[] = {K, Hw};
    ADD_DEVICE(&m->fc_w, 2, kh, "head.weight");
    ADD_DEVICE(&m->fc_b, 1, &K, "head.bias");
  }
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_fii_create(dcnv4_context *ctx,
                              const dcnv4_fii_config *config, dcnv4_dtype dtype,
                              dcnv4_fii **out) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (!out)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "model pointer is NULL");
  *out = NULL;
  if (!config)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "config is NULL");
  dcnv4_status st = check_config(ctx, config, dtype);
  if (st != DCNV4_SUCCESS)
    return st;
  cl_uint align_bits = 0;
  if (clGetDeviceInfo(ctx->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN,
                      sizeof align_bits, &align_bits, NULL) != CL_SUCCESS)
    return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                    "cannot query the device's sub-buffer alignment");
  dcnv4_fii *m = dcn_calloc(1, sizeof *m);
  if (!m)
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  m->ctx = ctx;
  m->config = *config;
  m->dtype = dtype;
  m->align = align_bits / 8 > 256 ? align_bits / 8 : 256;
  m->head_width =
      (int32_t)scaled(8 * (int64_t)config->channels, config->cls_scale);
  if ((st = build(m))) {
    dcnv4_fii_destroy(m);
    return st;
  }
  *out = m;
  return DCNV4_SUCCESS;
}

void dcnv4_fii_destroy(dcnv4_fii *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->weight_count; i++) {
    if (m->weights[i].buffer)
      clReleaseMemObject(m->weights[i].buffer);
    dcn_free(m->weights[i].key);
  }
  dcn_free(m->weights);
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    for (int b = 0; b < m->levels[l].depth && m->levels[l].blocks; b++)
      dcnv4_layer_destroy(m->levels[l].blocks[b].dcn);
    dcn_free(m->levels[l].blocks);
  }
  if (m->head_w)
    clReleaseMemObject(m->head_w);
  if (m->head_b)
    clReleaseMemObject(m->head_b);
  dcn_free(m);
}

/* ------------------------------------------------------------ loading */

/* Rounds to the nearest value of the dtype, ties to even. */
static float round_dtype(float f, dcnv4_dtype dtype) {
  if (dtype == DCNV4_FLOAT32 || !isfinite(f))
    return f;
  if (dtype == DCNV4_BFLOAT16) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
  }
  /* fp16: 11 significant bits, subnormals from 2^-24, overflow at 65520 */
  float a = fabsf(f);
  if (a >= 65520.0f)
    return copysignf(INFINITY, f);
  int e;
  (void)frexpf(a, &e);
  int shift = e < -13 ? 24 : 11 - e; /* keeps 11 bits, or multiples 2^-24 */
  return copysignf(ldexpf(rintf(ldexpf(a, shift)), -shift), f);
}

static bool is_ignored(const char *name) {
  /* BatchNorm's step counter: unused in eval mode */
  return strcmp(name, "conv_head.1.0.num_batches_tracked") == 0;
}

static fii_weight *find_entry(dcnv4_fii *m, const char *key) {
  for (size_t i = 0; i < m->weight_count; i++)
    if (strcmp(m->weights[i].key, key) == 0)
      return &m->weights[i];
  return NULL;
}

/* The file holds exactly the model's weights (plus ignored keys), each
 * with its shape and a float dtype; found[i] is weight i's tensor. */
static dcnv4_status match(dcnv4_fii *m, const char *path,
                          const dcn_st_header *h, const dcn_st_tensor **found) {
  dcnv4_context *ctx = m->ctx;
  for (size_t i = 0; i < h->count; i++) {
    const char *name = h->tensors[i].name;
    if (!is_ignored(name) && !find_entry(m, name))
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_WEIGHT,
                      "%.400s: tensor \"%.200s\" is not a weight of this "
                      "model (unexpected key)",
                      path, name);
  }
  for (size_t i = 0; i < m->weight_count; i++) {
    const fii_weight *w = &m->weights[i];
    const dcn_st_tensor *t = dcn_st_find(h, w->key);
    if (!t)
      return dcn_fail(ctx, DCNV4_ERROR_MISSING_WEIGHT,
                      "%.400s has no tensor \"%s\" (missing key)", path,
                      w->key);
    if (!dcn_st_is_float(t->dtype))
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_WEIGHT,
                      "%.400s: tensor \"%s\" is %s; F32, F16, BF16 or F64 "
                      "is needed",
                      path, w->key, dcn_st_dtype_name(t->dtype));
    bool same = t->ndim == w->ndim;
    for (int d = 0; same && d < w->ndim; d++)
      same = t->shape[d] == w->shape[d];
    if (!same) {
      char want[128], got[400];
      dcn_shape_string(w->ndim, w->shape, want, sizeof want);
      dcn_shape_string(t->ndim, t->shape, got, sizeof got);
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_WEIGHT,
                      "%.400s: tensor \"%s\": expected shape %s, given %s",
                      path, w->key, want, got);
    }
    found[i] = t;
  }
  return DCNV4_SUCCESS;
}

/* Reads tensor t as floats rounded to the model's dtype (new array). */
static dcnv4_status read_tensor(dcnv4_fii *m, FILE *f, const char *path,
                                const dcn_st_header *h, const dcn_st_tensor *t,
                                float **out) {
  size_t bytes = (size_t)(t->end - t->begin);
  unsigned char *raw = dcn_malloc(bytes ? bytes : 1);
  float *v =
      dcn_malloc((size_t)(t->elements ? t->elements : 1) * sizeof(float));
  dcnv4_status st = DCNV4_SUCCESS;
  if (!raw || !v)
    st = dcn_fail(m->ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  else if (!dcn_st_read(f, h->data_start + t->begin, raw, bytes))
    st = dcn_fail(m->ctx, DCNV4_ERROR_IO, "%.400s: cannot read tensor \"%s\"",
                  path, t->name);
  else {
    dcn_st_to_float(t, raw, v);
    for (uint64_t i = 0; i < t->elements; i++)
      v[i] = round_dtype(v[i], m->dtype);
  }
  dcn_free(raw);
  if (st != DCNV4_SUCCESS) {
    dcn_free(v);
    v = NULL;
  }
  *out = v;
  return st;
}

static dcnv4_status write_buffer(dcnv4_fii *m, cl_mem b, const float *v,
                                 uint64_t count) {
  cl_int err =
      dcn_clEnqueueWriteBuffer(m->ctx->queue, b, CL_TRUE, 0,
                               (size_t)count * sizeof(float), v, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    return dcn_fail_cl(m->ctx, err, "writing a weight (clEnqueueWriteBuffer)");
  return DCNV4_SUCCESS;
}

/* BatchNorm folded into the 1x1 convolution before it, in double:
 * s = gamma / sqrt(var + eps), W' = s W, b' = beta - s mean; a 16-bit
 * model's W' rounded to its dtype (the GEMM's matrix). */
static dcnv4_status fold_head(dcnv4_fii *m, float *const *v) {
  const uint64_t F = 8 * (uint64_t)m->config.channels,
                 Hw = (uint64_t)m->head_width;
  float *w = dcn_malloc((size_t)(Hw * F) * sizeof(float));
  float *b = dcn_malloc((size_t)Hw * sizeof(float));
  dcnv4_status st = DCNV4_SUCCESS;
  if (!w || !b)
    st = dcn_fail(m->ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  for (uint64_t o = 0; o < Hw && st == DCNV4_SUCCESS; o++) {
    double s =
        (double)v[HEAD_BN_W][o] / sqrt((double)v[HEAD_BN_VAR][o] + BN_EPS);
    for (uint64_t i = 0; i < F; i++)
      w[o * F + i] = (float)(s * (double)v[HEAD_CONV][o * F + i]);
    b[o] = (float)((double)v[HEAD_BN_B][o] - s * (double)v[HEAD_BN_MEAN][o]);
  }
  if (st == DCNV4_SUCCESS && m->dtype != DCNV4_FLOAT32) {
    for (uint64_t i = 0; i < Hw * F; i++)
      w[i] = round_dtype(w[i], m->dtype);
    st = dcn_write_16bit(m->ctx, m->head_w, m->dtype, w, Hw * F);
  } else if (st == DCNV4_SUCCESS)
    st = write_buffer(m, m->head_w, w, Hw * F);
  if (st == DCNV4_SUCCESS)
    st = write_buffer(m, m->head_b, b, Hw);
  dcn_free(w);
  dcn_free(b);
  return st;
}

dcnv4_status dcnv4_fii_load_safetensors(dcnv4_fii *m, const char *path) {
  if (!m)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_context *ctx = m->ctx;
  if (!path)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "path is NULL");
  FILE *f = NULL;
  dcn_st_header h;
  dcnv4_status st = dcn_st_open(ctx, path, &f, &h);
  if (st != DCNV4_SUCCESS)
    return st;
  const dcn_st_tensor **found = dcn_calloc(m->weight_count, sizeof *found);
  float *head[HEAD_N] = {NULL};
  if (!found)
    st = dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  else
    st = match(m, path, &h, found);
  /* Everything is checked: from here on, only a read or device failure can
   * stop the load, and the model then counts as not loaded. */
  if (st == DCNV4_SUCCESS)
    m->loaded = false;
  for (size_t i = 0; i < m->weight_count && st == DCNV4_SUCCESS; i++) {
    fii_weight *w = &m->weights[i];
    float *v = NULL;
    if ((st = read_tensor(m, f, path, &h, found[i], &v)))
      break;
    if (w->kind == W_HEAD) {
      head[w->head_slot] = v;
      continue;
    }
    if (w->kind == W_DEVICE && gemm_matrix(m, w->ndim))
      st = dcn_write_16bit(ctx, w->buffer, m->dtype, v, w->elements);
    else if (w->kind == W_DEVICE)
      st = write_buffer(m, w->buffer, v, w->elements);
    else
      st = dcnv4_layer_set_weight(w->layer, w->layer_key, v, w->shape, w->ndim);
    dcn_free(v);
  }
  if (st == DCNV4_SUCCESS && (st = fold_head(m, head)) == DCNV4_SUCCESS)
    m->loaded = true;
  for (int i = 0; i < HEAD_N; i++)
    dcn_free(head[i]);
  dcn_free(found);
  dcn_st_free(&h);
  fclose(f);
  return st;
}

size_t dcnv4_fii_weight_count(const dcnv4_fii *m) {
  return m ? m->weight_count : 0;
}

dcnv4_status dcnv4_fii_weight_info(const dcnv4_fii *m, size_t index,
                                   dcnv4_weight_info *info) {
  if (!m)
    return DCNV4_ERROR_NULL_POINTER;
  if (!info)
    return dcn_fail(m->ctx, DCNV4_ERROR_NULL_POINTER, "info is NULL");
  if (index >= m->weight_count)
    return dcn_fail(m->ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "weight index %zu is out of range (the model has %zu)",
                    index, m->weight_count);
  const fii_weight *w = &m->weights[index];
  memset(info, 0, sizeof *info);
  info->key = w->key;
  info->ndim = w->ndim;
  for (int i = 0; i < w->ndim; i++)
    info->shape[i] = w->shape[i];
  info->elements = w->elements;
  info->is_set = m->loaded ? 1 : 0;
  return DCNV4_SUCCESS;
}

/* ------------------------------------------------------------ sizes */

/* Spatial sizes: the stem's two stride-2 convolutions, one per level. */
static void level_dims(int32_t height, int32_t width, int32_t *h, int32_t *w) {
  int32_t y = dcn_conv2d_out_size(dcn_conv2d_out_size(height, 3, 2, 1), 3, 2,
                                  1),
          x = dcn_conv2d_out_size(dcn_conv2d_out_size(width, 3, 2, 1), 3, 2, 1);
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    h[l] = y;
    w[l] = x;
    y = dcn_conv2d_out_size(y, 3, 2, 1);
    x = dcn_conv2d_out_size(x, 3, 2, 1);
  }
}

dcnv4_status dcnv4_fii_level_size(const dcnv4_fii *m, int32_t height,
                                  int32_t width, int32_t level,
                                  int32_t *level_h, int32_t *level_w,
                                  int32_t *level_channels) {
  if (!m)
    return DCNV4_ERROR_NULL_POINTER;
  if (height < 1 || width < 1 || level < 0 || level >= DCNV4_FII_LEVELS)
    return dcn_fail(m->ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "height %d, width %d, level %d: sizes must be at least 1 "
                    "and the level in [0, %d]",
                    (int)height, (int)width, (int)level, DCNV4_FII_LEVELS - 1);
  int32_t h[DCNV4_FII_LEVELS], w[DCNV4_FII_LEVELS];
  level_dims(height, width, h, w);
  if (level_h)
    *level_h = h[level];
  if (level_w)
    *level_w = w[level];
  if (level_channels)
    *level_channels = m->levels[level].channels;
  return DCNV4_SUCCESS;
}

int32_t dcnv4_fii_output_width(const dcnv4_fii *m) {
  if (!m)
    return 0;
  return m->config.num_classes > 0 ? m->config.num_classes : m->head_width;
}

/* Everything one forward call needs to know, derived before any work. */
typedef struct fii_plan {
  int32_t batch, height, width;
  int32_t h[DCNV4_FII_LEVELS], w[DCNV4_FII_LEVELS];
  uint64_t rows[DCNV4_FII_LEVELS]; /* N*h*w */
  size_t image_bytes, logits_bytes, feature_bytes[DCNV4_FII_LEVELS];
  bool idx64;
  dcn_scratch_plan scratch;
  size_t dcn_regions; /* the DCNv4 layers' regions come first */
  int r_x, r_t, r_h;  /* in the model's dtype */
} fii_plan;

static dcnv4_status make_plan(dcnv4_fii *m, int32_t batch, int32_t height,
                              int32_t width, fii_plan *p) {
  dcnv4_context *ctx = m->ctx;
  memset(p, 0, sizeof *p);
  if (batch < 1 || height < 1 || width < 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "batch, height and width are %d, %d, %d; each must be "
                    "at least 1",
                    (int)batch, (int)height, (int)width);
  p->batch = batch;
  p->height = height;
  p->width = width;
  level_dims(height, width, p->h, p->w);
  const uint64_t N = (uint64_t)batch;
  const int32_t half = m->config.channels / 2;
  uint64_t stem1 = 0, x = 0, t = 0, hb = 0, v = 0, image = 0, largest = 0;
  const uint64_t s1[] = {N, (uint64_t)dcn_conv2d_out_size(height, 3, 2, 1),
                         (uint64_t)dcn_conv2d_out_size(width, 3, 2, 1),
                         (uint64_t)half};
  const uint64_t im[] = {N, 3, (uint64_t)height, (uint64_t)width};
  bool ok = dcn_product_u64(s1, 4, &stem1) && dcn_product_u64(im, 4, &image);
  hb = stem1;
  dcn_scratch_plan dcn_max;
  dcn_scratch_init(&dcn_max, m->align);
  for (int l = 0; l < DCNV4_FII_LEVELS && ok; l++) {
    const fii_level *lv = &m->levels[l];
    const uint64_t d[] = {N, (uint64_t)p->h[l], (uint64_t)p->w[l]};
    ok = dcn_product_u64(d, 3, &p->rows[l]) &&
         dcn_mul_u64(p->rows[l], (uint64_t)lv->channels, &v) &&
         dcn_bytes(v, sizeof(float), &p->feature_bytes[l]);
    x = v > x ? v : x;
    if (m->config.res_post_norm)
      hb = v > hb ? v : hb;
    ok = ok && dcn_mul_u64(p->rows[l], (uint64_t)lv->hidden, &v);
    hb = v > hb ? v : hb;
    /* The layers of a level differ only in their weights. */
    dcn_scratch_plan dp;
    dcnv4_status st = dcn_dcnv4_layer_model_scratch(lv->blocks[0].dcn, batch,
                                                    p->h[l], p->w[l], &dp);
    if (st != DCNV4_SUCCESS)
      return st;
    dcn_max.count = dp.count;
    for (size_t i = 0; i < dp.count; i++)
      if (dp.bytes[i] > dcn_max.bytes[i])
        dcn_max.bytes[i] = dp.bytes[i];
  }
  const uint64_t Hw = (uint64_t)m->head_width;
  ok = ok && dcn_mul_u64(p->rows[3], Hw, &v);
  hb = v > hb ? v : hb;
  t = x > N * Hw ? x : N * Hw;
  largest = x > hb ? x : hb;
  largest = image > largest ? image : largest;
  size_t xb = 0, tb = 0, hbb = 0;
  const size_t asize = dcnv4_dtype_size(m->dtype);
  ok = ok && dcn_bytes(image, sizeof(float), &p->image_bytes) &&
       dcn_bytes(N * (uint64_t)dcnv4_fii_output_width(m), sizeof(float),
                 &p->logits_bytes) &&
       dcn_bytes(x, asize, &xb) && dcn_bytes(t, asize, &tb) &&
       dcn_bytes(hb, asize, &hbb);
  if (!ok)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "tensor sizes overflow (batch %d, %dx%d)", (int)batch,
                    (int)height, (int)width);
  p->idx64 = largest >= ((uint64_t)1 << 31);
  dcn_scratch_init(&p->scratch, m->align);
  p->dcn_regions = dcn_max.count;
  for (size_t i = 0; i < dcn_max.count && ok; i++)
    ok = dcn_scratch_add(&p->scratch, dcn_max.bytes[i]) >= 0;
  ok = ok && (p->r_x = dcn_scratch_add(&p->scratch, xb)) >= 0 &&
       (p->r_t = dcn_scratch_add(&p->scratch, tb)) >= 0 &&
       (p->r_h = dcn_scratch_add(&p->scratch, hbb)) >= 0;
  if (!ok)
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "the workspace size overflows");
  return DCNV4_SUCCESS;
}

static dcnv4_status check_loaded(const dcnv4_fii *m) {
  if (!m->loaded)
    return dcn_fail(m->ctx, DCNV4_ERROR_MISSING_WEIGHT,
                    "the model's weights were never loaded "
                    "(dcnv4_fii_load_safetensors)");
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_fii_workspace_size(const dcnv4_fii *m, int32_t batch,
                                      int32_t height, int32_t width,
                                      size_t *bytes) {
  if (!m)
    return DCNV4_ERROR_NULL_POINTER;
  if (!bytes)
    return dcn_fail(m->ctx, DCNV4_ERROR_NULL_POINTER, "bytes is NULL");
  fii_plan p;
  /* make_plan only reads the model (and writes messages to the context) */
  dcnv4_status st = make_plan((dcnv4_fii *)m, batch, height, width, &p);
  if (st != DCNV4_SUCCESS)
    return st;
  *bytes = p.scratch.total;
  return DCNV4_SUCCESS;
}

/* ------------------------------------------------------------ forward */

typedef struct fii_run {
  dcnv4_fii *m;
  const fii_plan *p;
  dcn_gemm gemm[3]; /* by dcn_gemm_epilogue_kind */
  dcn_gemm logits;  /* 16-bit models' head: fp32 output */
  cl_kernel widen;  /* 16-bit models: to_float (features, pooled logits) */
  const cl_mem *r;  /* bound regions */
  cl_mem X, T, Hb;
  cl_event *stages; /* dcnv4_fii_forward_profiled's markers, or NULL */
} fii_run;

/* Stage boundary i (0 start, 1 + s the end of stage s) when profiling. */
static dcnv4_status mark(fii_run *run, int i) {
  if (!run->stages)
    return DCNV4_SUCCESS;
  cl_int err =
      clEnqueueMarkerWithWaitList(run->m->ctx->queue, 0, NULL, &run->stages[i]);
  if (err != CL_SUCCESS)
    return dcn_fail_cl(run->m->ctx, err,
                       "clEnqueueMarkerWithWaitList (a stage marker)");
  return DCNV4_SUCCESS;
}

static dcnv4_status ln(fii_run *run, uint64_t rows, int32_t ch,
                       dcn_norm_epilogue ep, cl_mem x, cl_mem w, cl_mem b,
                       cl_mem scale, cl_mem residual, cl_mem out) {
  dcn_layernorm_desc d = {rows, ch, LN_EPS, ep, run->m->dtype};
  return dcn_layernorm_forward(run->m->ctx, &d, x, w, b, scale, residual, out,
                               NULL);
}

static dcnv4_status gemm(fii_run *run, uint64_t m, int32_t n, int32_t k,
                         cl_mem a, cl_mem w, cl_mem bias, cl_mem c,
                         dcn_gemm_epilogue_kind kind, cl_mem residual,
                         cl_mem scale, const char *what) {
  if (kind == DCN_GEMM_NONE)
    return dcn_gemm_linear(run->m->ctx, &run->gemm[kind], m, (uint64_t)n,
                           (uint64_t)k, a, w, bias, c, NULL, what);
  dcn_gemm_epilogue ep = {kind, residual, scale};
  return dcn_gemm_linear_epilogue(run->m->ctx, &run->gemm[kind], m, (uint64_t)n,
                                  (uint64_t)k, a, w, bias, c, &ep, NULL, what);
}

static dcnv4_status block_forward(fii_run *run, int l, const fii_block *blk) {
  const dcnv4_fii_config *c = &run->m->config;
  const fii_plan *p = run->p;
  const fii_level *lv = &run->m->levels[l];
  const uint64_t M = p->rows[l];
  const int32_t C = lv->channels, Hd = lv->hidden;
  cl_mem X = run->X, T = run->T, Hb = run->Hb;
  dcnv4_status st;
  if (c->post_norm) {
    if ((st = dcn_dcnv4_layer_forward_model(
             blk->dcn, p->batch, p->h[l], p->w[l], X, T, NULL, run->r, NULL)) ||
        (st = ln(run, M, C, DCN_NORM_RESIDUAL, T, blk->norm1_w, blk->norm1_b,
                 blk->gamma1, X, X)) ||
        (st = gemm(run, M, Hd, C, X, blk->fc1_w, blk->fc1_b, Hb, DCN_GEMM_GELU,
                   NULL, NULL, "mlp.fc1")) ||
        (st = gemm(run, M, C, Hd, Hb, blk->fc2_w, blk->fc2_b, T, DCN_GEMM_NONE,
                   NULL, NULL, "mlp.fc2")))
      return st;
    return ln(run, M, C, DCN_NORM_RESIDUAL, T, blk->norm2_w, blk->norm2_b,
              blk->gamma2, X, X);
  }
  if ((st = ln(run, M, C, DCN_NORM_PLAIN, X, blk->norm1_w, blk->norm1_b, NULL,
               NULL, T)))
    return st;
  if (c->res_post_norm && !c->layer_scale) {
    /* upstream's layer-scale branch ignores res_post_norm */
    if ((st =
             dcn_dcnv4_layer_forward_model(blk->dcn, p->batch, p->h[l], p->w[l],
                                           T, Hb, NULL, run->r, NULL)) ||
        (st = ln(run, M, C, DCN_NORM_RESIDUAL, Hb, blk->rpn1_w, blk->rpn1_b,
                 NULL, X, X)) ||
        (st = ln(run, M, C, DCN_NORM_PLAIN, X, blk->norm2_w, blk->norm2_b, NULL,
                 NULL, T)) ||
        (st = gemm(run, M, Hd, C, T, blk->fc1_w, blk->fc1_b, Hb, DCN_GEMM_GELU,
                   NULL, NULL, "mlp.fc1")) ||
        (st = gemm(run, M, C, Hd, Hb, blk->fc2_w, blk->fc2_b, T, DCN_GEMM_NONE,
                   NULL, NULL, "mlp.fc2")))
      return st;
    return ln(run, M, C, DCN_NORM_RESIDUAL, T, blk->rpn2_w, blk->rpn2_b, NULL,
              X, X);
  }
  dcn_gemm_epilogue ep = {DCN_GEMM_RESIDUAL, X, blk->gamma1};
  if ((st = dcn_dcnv4_layer_forward_model(blk->dcn, p->batch, p->h[l], p->w[l],
                                          T, NULL, &ep, run->r, NULL)) ||
      (st = ln(run, M, C, DCN_NORM_PLAIN, X, blk->norm2_w, blk->norm2_b, NULL,
               NULL, T)) ||
      (st = gemm(run, M, Hd, C, T, blk->fc1_w, blk->fc1_b, Hb, DCN_GEMM_GELU,
                 NULL, NULL, "mlp.fc1")))
    return st;
  /* T (dead) is the epilogue's scratch. */
  return gemm(run, M, C, Hd, Hb, blk->fc2_w, blk->fc2_b, T, DCN_GEMM_RESIDUAL,
              X, blk->gamma2, "mlp.fc2");
}

/* conv_head (BN folded), GELU, pooling and the linear head, from `out`
 * (the last level's output). */
static dcnv4_status enqueue_head(fii_run *run, cl_mem out, cl_mem logits) {
  dcnv4_fii *m = run->m;
  dcnv4_context *ctx = m->ctx;
  const fii_plan *p = run->p;
  const dcnv4_fii_config *c = &m->config;
  dcnv4_status st;
  const int32_t F = m->levels[3].channels, Hw = m->head_width;
  const bool f32 = m->dtype == DCNV4_FLOAT32;
  /* Pooled into the logits where they are the output and fp32. */
  cl_mem pooled = c->num_classes > 0 || !f32 ? run->T : logits;
  if ((st = gemm(run, p->rows[3], Hw, F, out, m->head_w, m->head_b, run->Hb,
                 DCN_GEMM_GELU, NULL, NULL, "conv_head")) ||
      (st = dcn_avgpool_forward(ctx, p->batch,
                                (uint64_t)p->h[3] * (uint64_t)p->w[3], Hw,
                                m->dtype, run->Hb, pooled, NULL)))
    return st;
  if (c->num_classes > 0)
    return f32 ? gemm(run, (uint64_t)p->batch, c->num_classes, Hw, run->T,
                      m->fc_w, m->fc_b, logits, DCN_GEMM_NONE, NULL, NULL,
                      "head")
               : dcn_gemm_linear(ctx, &run->logits, (uint64_t)p->batch,
                                 (uint64_t)c->num_classes, (uint64_t)Hw, run->T,
                                 m->fc_w, m->fc_b, logits, NULL, "head");
  if (!f32)
    return dcn_run_to_float(ctx, run->widen, p->idx64, run->T, logits,
                            (uint64_t)p->batch * (uint64_t)Hw, NULL);
  return DCNV4_SUCCESS;
}

static dcnv4_status enqueue_forward(fii_run *run, cl_mem image, cl_mem logits,
                                    const cl_mem *features) {
  dcnv4_fii *m = run->m;
  dcnv4_context *ctx = m->ctx;
  const fii_plan *p = run->p;
  const dcnv4_fii_config *c = &m->config;
  dcnv4_status st;
  const int32_t half = c->channels / 2;
  dcn_conv2d_shape s = {p->batch, p->height, p->width, 3,    half,
                        3,        2,         1,        true, m->dtype};
  const uint64_t stem_rows = (uint64_t)p->batch *
                             (uint64_t)dcn_conv2d_out_size(p->height, 3, 2, 1) *
                             (uint64_t)dcn_conv2d_out_size(p->width, 3, 2, 1);
  if ((st = mark(run, 0)) ||
      (st = dcn_conv2d_forward(ctx, &s, image, m->stem_c1_w, m->stem_c1_b,
                               run->Hb, NULL)) ||
      (st = ln(run, stem_rows, half, DCN_NORM_GELU, run->Hb, m->stem_n1_w,
               m->stem_n1_b, NULL, NULL, run->Hb)))
    return st;
  s = (dcn_conv2d_shape){p->batch,
                         dcn_conv2d_out_size(p->height, 3, 2, 1),
                         dcn_conv2d_out_size(p->width, 3, 2, 1),
                         half,
                         c->channels,
                         3,
                         2,
                         1,
                         false,
                         m->dtype};
  if ((st = dcn_conv2d_forward(ctx, &s, run->Hb, m->stem_c2_w, m->stem_c2_b,
                               run->X, NULL)) ||
      (st = ln(run, p->rows[0], c->channels, DCN_NORM_PLAIN, run->X,
               m->stem_n2_w, m->stem_n2_b, NULL, NULL, run->X)) ||
      (st = mark(run, 1)))
    return st;
  cl_mem out = run->X; /* the last level's output */
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    const fii_level *lv = &m->levels[l];
    for (int b = 0; b < lv->depth; b++) {
      const fii_block *blk = &lv->blocks[b];
      if ((st = block_forward(run, l, blk)))
        return st;
      if (blk->post_w &&
          (st = ln(run, p->rows[l], lv->channels, DCN_NORM_PLAIN, run->X,
                   blk->post_w, blk->post_b, NULL, NULL, run->X)))
        return st;
    }
    cl_mem feat = features ? features[l] : NULL;
    /* fp32: the level's norm straight into the feature; 16-bit: into X,
     * then widened into the feature. */
    const bool widen = feat && m->dtype != DCNV4_FLOAT32;
    out = feat && !widen ? feat : run->X;
    if (lv->norm_w)
      st = ln(run, p->rows[l], lv->channels, DCN_NORM_PLAIN, run->X, lv->norm_w,
              lv->norm_b, NULL, NULL, out);
    if (st == DCNV4_SUCCESS && widen)
      st = dcn_run_to_float(ctx, run->widen, p->idx64, run->X, feat,
                            p->rows[l] * (uint64_t)lv->channels, NULL);
    else if (st == DCNV4_SUCCESS && feat && !lv->norm_w) {
      cl_int err = clEnqueueCopyBuffer(ctx->queue, run->X, feat, 0, 0,
                                       p->feature_bytes[l], 0, NULL, NULL);
      if (err != CL_SUCCESS)
        st = dcn_fail_cl(ctx, err, "clEnqueueCopyBuffer (a level's output)");
    }
    if (st != DCNV4_SUCCESS)
      return st;
    if (l + 1 == DCNV4_FII_LEVELS) {
      if ((st = mark(run, 2 + l)))
        return st;
      break;
    }
    s = (dcn_conv2d_shape){
        p->batch, p->h[l], p->w[l], lv->channels, 2 * lv->channels,
        3,        2,       1,       false,        m->dtype};
    if ((st = dcn_conv2d_forward(ctx, &s, out, lv->down_w, NULL, run->T,
                                 NULL)) ||
        (st = ln(run, p->rows[l + 1], 2 * lv->channels, DCN_NORM_PLAIN, run->T,
                 lv->down_nw, lv->down_nb, NULL, NULL, run->X)) ||
        (st = mark(run, 2 + l)))
      return st;
  }
  if (logits && (st = enqueue_head(run, out, logits)))
    return st;
  return mark(run, DCNV4_FII_STAGES);
}

/* The forward pass; `stages` (or NULL) receives the stage markers of
 * dcnv4_fii_forward_profiled. */
static dcnv4_status forward(dcnv4_fii *m, int32_t batch, int32_t height,
                            int32_t width, cl_mem image, cl_mem logits,
                            const cl_mem *features, cl_mem workspace,
                            cl_uint num_wait, const cl_event *wait,
                            cl_event *event, cl_event *stages) {
  dcnv4_context *ctx = m->ctx;
  fii_plan p;
  dcnv4_status st;
  if ((st = make_plan(m, batch, height, width, &p)) || (st = check_loaded(m)) ||
      (st = dcn_check_wait_list(ctx, num_wait, wait)))
    return st;
  /* The buffers given, for the alias check. */
  cl_mem bufs[2 + DCNV4_FII_LEVELS + 1];
  const char *names[] = {"image",       "logits",      "features[0]",
                         "features[1]", "features[2]", "features[3]",
                         "workspace"};
  bool readonly[2 + DCNV4_FII_LEVELS + 1];
  size_t count = 0;
  const char *used_names[2 + DCNV4_FII_LEVELS + 1];
  bool any_output = logits != NULL;
  if ((st = dcn_check_buffer(ctx, image, "image", p.image_bytes)))
    return st;
  bufs[count] = image;
  used_names[count] = names[0];
  readonly[count++] = true;
  if (logits) {
    if ((st = dcn_check_buffer(ctx, logits, "logits", p.logits_bytes)))
      return st;
    bufs[count] = logits;
    used_names[count] = names[1];
    readonly[count++] = false;
  }
  for (int l = 0; features && l < DCNV4_FII_LEVELS; l++) {
    if (!features[l])
      continue;
    if ((st = dcn_check_buffer(ctx, features[l], names[2 + l],
                               p.feature_bytes[l])))
      return st;
    any_output = true;
    bufs[count] = features[l];
    used_names[count] = names[2 + l];
    readonly[count++] = false;
  }
  if (!any_output)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER,
                    "no output: logits and every features[l] are NULL");
  if (workspace) {
    if ((st = dcn_scratch_check_user(ctx, workspace, p.scratch.total)))
      return st;
    bufs[count] = workspace;
    used_names[count] = names[6];
    readonly[count++] = false;
  }
  if ((st = dcn_check_no_alias(ctx, bufs, used_names, readonly, count)))
    return st;
  fii_run run = {.m = m, .p = &p, .stages = stages};
  const dcn_gemm_epilogue_kind dcn_ep =
      m->config.post_norm || (m->config.res_post_norm && !m->config.layer_scale)
          ? DCN_GEMM_NONE
          : DCN_GEMM_RESIDUAL;
  for (int k = DCN_GEMM_NONE; k <= DCN_GEMM_RESIDUAL; k++) {
    const dcn_gemm_spec spec = {m->dtype, m->dtype, (dcn_gemm_epilogue_kind)k,
                                true,     p.idx64,  false};
    if ((st = dcn_gemm_prepare_spec(ctx, &spec, &run.gemm[k])))
      return st;
  }
  if (m->dtype != DCNV4_FLOAT32) {
    const dcn_gemm_spec head = {m->dtype, DCNV4_FLOAT32, DCN_GEMM_NONE,
                                true,     p.idx64,       false};
    if ((st = dcn_gemm_prepare_spec(ctx, &head, &run.logits)) ||
        (st = dcn_layer_kernel(ctx, DCN_LK_TO_FLOAT, m->dtype, 0, p.idx64,
                               &run.widen)))
      return st;
  }
  for (int l = 0; l < DCNV4_FII_LEVELS; l++)
    for (int b = 0; b < m->levels[l].depth; b++)
      if ((st = dcn_dcnv4_layer_model_prepare(m->levels[l].blocks[b].dcn, batch,
                                              p.h[l], p.w[l], dcn_ep)))
        return st;
  cl_mem regions[DCN_SCRATCH_MAX_REGIONS];
  if ((st = dcn_scratch_bind(ctx, workspace, &p.scratch, regions)))
    return st;
  run.r = regions;
  run.X = regions[p.r_x];
  run.T = regions[p.r_t];
  run.Hb = regions[p.r_h];
  /* From here on, work is enqueued. */
  if (num_wait > 0) {
    cl_int err =
        dcn_clEnqueueBarrierWithWaitList(ctx->queue, num_wait, wait, NULL);
    if (err != CL_SUCCESS) {
      dcn_scratch_release(regions, p.scratch.count);
      return dcn_fail_cl(ctx, err, "clEnqueueBarrierWithWaitList");
    }
  }
  st = enqueue_forward(&run, image, logits, features);
  if (st == DCNV4_SUCCESS && event) {
    /* The queue is in order: the marker completes after the last step. */
    cl_int err = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, event);
    if (err != CL_SUCCESS)
      st = dcn_fail_cl(ctx, err, "clEnqueueMarkerWithWaitList");
  }
  /* Released now, freed by OpenCL once the enqueued commands are done. */
  dcn_scratch_release(regions, p.scratch.count);
  return st;
}

dcnv4_status dcnv4_fii_forward(dcnv4_fii *m, int32_t batch, int32_t height,
                               int32_t width, cl_mem image, cl_mem logits,
                               const cl_mem *features, cl_mem workspace,
                               cl_uint num_wait, const cl_event *wait,
                               cl_event *event) {
  if (!m)
    return DCNV4_ERROR_NULL_POINTER;
  return forward(m, batch, height, width, image, logits, features, workspace,
                 num_wait, wait, event, NULL);
}

dcnv4_status dcnv4_fii_forward_profiled(
    dcnv4_fii *m, int32_t batch, int32_t height, int32_t width, cl_mem image,
    cl_mem logits, const cl_mem *features, cl_mem workspace, cl_uint num_wait,
    const cl_event *wait, cl_event stage_events[DCNV4_FII_STAGES + 1]) {
  for (int i = 0; stage_events && i <= DCNV4_FII_STAGES; i++)
    stage_events[i] = NULL;
  if (!m)
    return DCNV4_ERROR_NULL_POINTER;
  if (!stage_events)
    return dcn_fail(m->ctx, DCNV4_ERROR_NULL_POINTER, "stage_events is NULL");
  dcnv4_status st = forward(m, batch, height, width, image, logits, features,
                            workspace, num_wait, wait, NULL, stage_events);
  /* On a failure the markers made so far are not handed out. */
  for (int i = 0; st != DCNV4_SUCCESS && i <= DCNV4_FII_STAGES; i++)
    if (stage_events[i]) {
      clReleaseEvent(stage_events[i]);
      stage_events[i] = NULL;
    }
  return st;
}
