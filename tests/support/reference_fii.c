/* Float64 FlashInternImage forward (see reference_fii.h). Every tensor is a
 * channels-last array of doubles, one module of upstream's at a time. */
#include "reference_fii.h"
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int conv_out(int n) { return (n + 2 - 3) / 2 + 1; }

void ref_fii_level_size(int H, int W, int level, int *h, int *w) {
  int y = conv_out(conv_out(H)), x = conv_out(conv_out(W));
  for (int l = 0; l < level; l++) {
    y = conv_out(y);
    x = conv_out(x);
  }
  *h = y;
  *w = x;
}

static int head_width(const dcnv4_fii_config *c) {
  return (int)((double)(8 * c->channels) * (double)c->cls_scale);
}

static int hidden_of(const dcnv4_fii_config *c, int l) {
  return (int)((double)(c->channels << l) * (double)c->mlp_ratio);
}

int ref_fii_output_width(const dcnv4_fii_config *c) {
  return c->num_classes > 0 ? c->num_classes : head_width(c);
}

/* ------------------------------------------------------------ keys */

typedef struct key_list {
  ref_fii_key *out;
  size_t max, count;
} key_list;

static void add(key_list *k, ref_fii_role role, int ndim, const int64_t *shape,
                const char *fmt, ...) {
  if (k->count < k->max) {
    ref_fii_key *e = &k->out[k->count];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->key, sizeof e->key, fmt, ap);
    va_end(ap);
    e->ndim = ndim;
    e->elements = 1;
    for (int i = 0; i < ndim; i++) {
      e->shape[i] = shape[i];
      e->elements *= (uint64_t)shape[i];
    }
    e->fan_in = ndim > 1 ? (int64_t)(e->elements / (uint64_t)shape[0]) : 1;
    e->role = role;
  }
  k->count++;
}

static void add_norm(key_list *k, int64_t ch, const char *prefix) {
  add(k, REF_FII_NORM_W, 1, &ch, "%s.weight", prefix);
  add(k, REF_FII_BIAS, 1, &ch, "%s.bias", prefix);
}

size_t ref_fii_keys(const dcnv4_fii_config *c, ref_fii_key *out, size_t max) {
  key_list k = {out, max, 0};
  const int64_t C = c->channels, half = C / 2;
  char p[96], q[128];
  add(&k, REF_FII_MATRIX, 4, (const int64_t[]){half, 3, 3, 3},
      "patch_embed.conv1.weight");
  add(&k, REF_FII_BIAS, 1, &half, "patch_embed.conv1.bias");
  add_norm(&k, half, "patch_embed.norm1.1");
  add(&k, REF_FII_MATRIX, 4, (const int64_t[]){C, half, 3, 3},
      "patch_embed.conv2.weight");
  add(&k, REF_FII_BIAS, 1, &C, "patch_embed.conv2.bias");
  add_norm(&k, C, "patch_embed.norm2.1");
  for (int l = 0; l < 4; l++) {
    const int64_t Cl = C << l, Hd = hidden_of(c, l), G = c->groups[l];
    const int64_t S = (G * 9 * 3 + 7) / 8 * 8, d = c->dw_kernel_size;
    for (int b = 0; b < c->depths[l]; b++) {
      snprintf(p, sizeof p, "levels.%d.blocks.%d", l, b);
      snprintf(q, sizeof q, "%s.norm1.0", p);
      add_norm(&k, Cl, q);
      add(&k, REF_FII_MATRIX, 2, (const int64_t[]){Cl, Cl},
          "%s.dcn.value_proj.weight", p);
      add(&k, REF_FII_BIAS, 1, &Cl, "%s.dcn.value_proj.bias", p);
      add(&k, REF_FII_MATRIX, 2, (const int64_t[]){S, Cl},
          "%s.dcn.offset_mask.weight", p);
      add(&k, REF_FII_BIAS, 1, &S, "%s.dcn.offset_mask.bias", p);
      if (d > 0) {
        add(&k, REF_FII_MATRIX, 4, (const int64_t[]){Cl, 1, d, d},
            "%s.dcn.offset_mask_dw.weight", p);
        add(&k, REF_FII_BIAS, 1, &Cl, "%s.dcn.offset_mask_dw.bias", p);
      }
      add(&k, REF_FII_MATRIX, 2, (const int64_t[]){Cl, Cl},
          "%s.dcn.output_proj.weight", p);
      if (c->dcn_output_bias)
        add(&k, REF_FII_BIAS, 1, &Cl, "%s.dcn.output_proj.bias", p);
      snprintf(q, sizeof q, "%s.norm2.0", p);
      add_norm(&k, Cl, q);
      add(&k, REF_FII_MATRIX, 2, (const int64_t[]){Hd, Cl}, "%s.mlp.fc1.weight",
          p);
      add(&k, REF_FII_BIAS, 1, &Hd, "%s.mlp.fc1.bias", p);
      add(&k, REF_FII_MATRIX, 2, (const int64_t[]){Cl, Hd}, "%s.mlp.fc2.weight",
          p);
      if (c->mlp_fc2_bias)
        add(&k, REF_FII_BIAS, 1, &Cl, "%s.mlp.fc2.bias", p);
      if (c->layer_scale) {
        add(&k, REF_FII_GAMMA, 1, &Cl, "%s.gamma1", p);
        add(&k, REF_FII_GAMMA, 1, &Cl, "%s.gamma2", p);
      }
      if (c->res_post_norm) {
        snprintf(q, sizeof q, "%s.res_post_norm1.0", p);
        add_norm(&k, Cl, q);
        snprintf(q, sizeof q, "%s.res_post_norm2.0", p);
        add_norm(&k, Cl, q);
      }
    }
    if (!c->post_norm || c->center_feature_scale) {
      snprintf(q, sizeof q, "levels.%d.norm.0", l);
      add_norm(&k, Cl, q);
    }
    if (l == 2 && c->level2_post_norm)
      for (int i = 0; i < c->level2_post_norm_block_count; i++) {
        snprintf(q, sizeof q, "levels.2.post_norms.%d.0", i);
        add_norm(&k, Cl, q);
      }
    if (l < 3) {
      add(&k, REF_FII_MATRIX, 4, (const int64_t[]){2 * Cl, Cl, 3, 3},
          "levels.%d.downsample.conv.weight", l);
      snprintf(q, sizeof q, "levels.%d.downsample.norm.1", l);
      add_norm(&k, 2 * Cl, q);
    }
  }
  const int64_t F = 8 * C, Hw = head_width(c), K = c->num_classes;
  add(&k, REF_FII_MATRIX, 4, (const int64_t[]){Hw, F, 1, 1},
      "conv_head.0.weight");
  add(&k, REF_FII_NORM_W, 1, &Hw, "conv_head.1.0.weight");
  add(&k, REF_FII_BIAS, 1, &Hw, "conv_head.1.0.bias");
  add(&k, REF_FII_BN_MEAN, 1, &Hw, "conv_head.1.0.running_mean");
  add(&k, REF_FII_BN_VAR, 1, &Hw, "conv_head.1.0.running_var");
  if (K > 0) {
    add(&k, REF_FII_MATRIX, 2, (const int64_t[]){K, Hw}, "head.weight");
    add(&k, REF_FII_BIAS, 1, &K, "head.bias");
  }
  return k.count;
}

/* ------------------------------------------------------------ forward */

typedef struct weights {
  const ref_weight *w;
  size_t count;
  int missing;
  dcnv4_dtype dtype; /* the activations' rounding (ref_fii_forward_dtype) */
} weights;

static const double *get(weights *ws, const char *fmt, ...) {
  char key[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(key, sizeof key, fmt, ap);
  va_end(ap);
  for (size_t i = 0; i < ws->count; i++)
    if (strcmp(ws->w[i].key, key) == 0)
      return ws->w[i].data;
  ws->missing = 1;
  return NULL;
}

static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* out (N, Ho, Wo, Co) = conv(in (N, H, W, Ci)), kernel 3, stride 2, pad 1,
 * weight (Co, Ci, 3, 3), bias or NULL. */
static void conv3s2(const double *in, int N, int H, int W, int Ci, int Co,
                    const double *weight, const double *bias, double *out) {
  int Ho = conv_out(H), Wo = conv_out(W);
  for (int n = 0; n < N; n++)
    for (int y = 0; y < Ho; y++)
      for (int x = 0; x < Wo; x++)
        for (int o = 0; o < Co; o++) {
          double s = bias ? bias[o] : 0.0;
          for (int i = 0; i < Ci; i++)
            for (int ky = 0; ky < 3; ky++)
              for (int kx = 0; kx < 3; kx++) {
                int iy = 2 * y - 1 + ky, ix = 2 * x - 1 + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                  continue;
                s += weight[((o * Ci + i) * 3 + ky) * 3 + kx] *
                     in[(((size_t)n * H + iy) * W + ix) * Ci + i];
              }
          out[(((size_t)n * Ho + y) * Wo + x) * Co + o] = s;
        }
}

/* In place over rows of ch channels, eps 1e-6. */
static void layernorm(double *x, size_t rows, int ch, const double *w,
                      const double *b) {
  for (size_t r = 0; r < rows; r++) {
    double *v = x + r * (size_t)ch, mean = 0, var = 0;
    for (int i = 0; i < ch; i++)
      mean += v[i];
    mean /= ch;
    for (int i = 0; i < ch; i++)
      var += (v[i] - mean) * (v[i] - mean);
    var /= ch;
    double inv = 1.0 / sqrt(var + 1e-6);
    for (int i = 0; i < ch; i++)
      v[i] = (v[i] - mean) * inv * w[i] + b[i];
  }
}

/* y (rows, n) = x (rows, k) W^T (+ b). */
static void linear(const double *x, size_t rows, int k, int n, const double *w,
                   const double *b, double *y) {
  for (size_t r = 0; r < rows; r++)
    for (int o = 0; o < n; o++) {
      double s = b ? b[o] : 0.0;
      for (int i = 0; i < k; i++)
        s += x[r * (size_t)k + i] * w[(size_t)o * k + i];
      y[r * (size_t)n + o] = s;
    }
}

/* x += g * y (g NULL: 1). */
static void residual(double *x, const double *y, size_t rows, int ch,
                     const double *g) {
  for (size_t r = 0; r < rows; r++)
    for (int i = 0; i < ch; i++)
      x[r * ch + i] += (g ? g[i] : 1.0) * y[r * ch + i];
}

/* The DCNv4 layer of block `p`, weights looked up under its prefix. */
static int dcn(const dcnv4_fii_config *c, int l, weights *ws, const char *p,
               int N, int h, int w, const double *in, double *out) {
  static const char *const keys[] = {
      "value_proj.weight",  "value_proj.bias",       "offset_mask.weight",
      "offset_mask.bias",   "offset_mask_dw.weight", "offset_mask_dw.bias",
      "output_proj.weight", "output_proj.bias"};
  ref_weight rw[8];
  size_t n = 0;
  for (size_t i = 0; i < 8; i++) {
    char key[160];
    snprintf(key, sizeof key, "%s.dcn.%s", p, keys[i]);
    for (size_t j = 0; j < ws->count; j++)
      if (strcmp(ws->w[j].key, key) == 0)
        rw[n++] = (ref_weight){keys[i], ws->w[j].data};
  }
  dcnv4_layer_dcnv4_config dc;
  dcnv4_layer_dcnv4_config_init(&dc);
  dc.channels = c->channels << l;
  dc.group = c->groups[l];
  dc.offset_scale = c->offset_scale;
  dc.dw_kernel_size = c->dw_kernel_size;
  dc.output_bias = c->dcn_output_bias;
  return ref_dcnv4_layer_forward_dtype(&dc, ws->dtype, N, h, w, rw, n, in, out);
}

/* One InternImageLayer on x (rows, C) in place. */
static int block(const dcnv4_fii_config *c, int l, int b, weights *ws, int N,
                 int h, int w, double *x) {
  char p[96];
  snprintf(p, sizeof p, "levels.%d.blocks.%d", l, b);
  const int C = c->channels << l, Hd = hidden_of(c, l);
  const size_t rows = (size_t)N * h * w;
  double *t = malloc(rows * C * sizeof *t), *u = malloc(rows * C * sizeof *u);
  double *hb = malloc(rows * Hd * sizeof *hb);
  const double *n1w = get(ws, "%s.norm1.0.weight", p),
               *n1b = get(ws, "%s.norm1.0.bias", p),
               *n2w = get(ws, "%s.norm2.0.weight", p),
               *n2b = get(ws, "%s.norm2.0.bias", p),
               *f1w = get(ws, "%s.mlp.fc1.weight", p),
               *f1b = get(ws, "%s.mlp.fc1.bias", p),
               *f2w = get(ws, "%s.mlp.fc2.weight", p);
  const double *f2b = c->mlp_fc2_bias ? get(ws, "%s.mlp.fc2.bias", p) : NULL;
  const double *g1 = c->layer_scale ? get(ws, "%s.gamma1", p) : NULL;
  const double *g2 = c->layer_scale ? get(ws, "%s.gamma2", p) : NULL;
  const double *r1w = NULL, *r1b = NULL, *r2w = NULL, *r2b = NULL;
  if (c->res_post_norm) {
    r1w = get(ws, "%s.res_post_norm1.0.weight", p);
    r1b = get(ws, "%s.res_post_norm1.0.bias", p);
    r2w = get(ws, "%s.res_post_norm2.0.weight", p);
    r2b = get(ws, "%s.res_post_norm2.0.bias", p);
  }
  int rc = ws->missing || !t || !u || !hb ? -1 : 0;
  const size_t n = rows * (size_t)C;
  /* Rounds a tensor of the block to the activations' dtype where the
   * library stores it (a residual update, fused, rounds once). */
#define R(a, count) ref_round(a, count, ws->dtype)
  /* mlp(in) -> out, through hb (fc2's output unrounded: the caller rounds
   * where the library stores it) */
#define MLP(in, out)                                                           \
  do {                                                                         \
    linear(in, rows, C, Hd, f1w, f1b, hb);                                     \
    for (size_t i_ = 0; i_ < rows * Hd; i_++)                                  \
      hb[i_] = gelu(hb[i_]);                                                   \
    R(hb, rows *Hd);                                                           \
    linear(hb, rows, Hd, C, f2w, f2b, out);                                    \
  } while (0)
  const size_t bytes = rows * C * sizeof *t;
  if (rc == 0 && c->post_norm) {
    /* x + g1 * norm1(dcn(x)); x + g2 * norm2(mlp(x)) */
    rc = dcn(c, l, ws, p, N, h, w, x, t);
    R(t, n);
    layernorm(t, rows, C, n1w, n1b);
    residual(x, t, rows, C, g1);
    R(x, n);
    MLP(x, t);
    R(t, n);
    layernorm(t, rows, C, n2w, n2b);
    residual(x, t, rows, C, g2);
    R(x, n);
  } else if (rc == 0 && c->res_post_norm && !c->layer_scale) {
    memcpy(t, x, bytes);
    layernorm(t, rows, C, n1w, n1b);
    R(t, n);
    rc = dcn(c, l, ws, p, N, h, w, t, u);
    R(u, n);
    layernorm(u, rows, C, r1w, r1b);
    residual(x, u, rows, C, NULL);
    R(x, n);
    memcpy(t, x, bytes);
    layernorm(t, rows, C, n2w, n2b);
    R(t, n);
    MLP(t, u);
    R(u, n);
    layernorm(u, rows, C, r2w, r2b);
    residual(x, u, rows, C, NULL);
    R(x, n);
  } else if (rc == 0) {
    memcpy(t, x, bytes);
    layernorm(t, rows, C, n1w, n1b);
    R(t, n);
    rc = dcn(c, l, ws, p, N, h, w, t, u);
    residual(x, u, rows, C, g1);
    R(x, n);
    memcpy(t, x, bytes);
    layernorm(t, rows, C, n2w, n2b);
    R(t, n);
    MLP(t, u);
    residual(x, u, rows, C, g2);
    R(x, n);
  }
#undef MLP
#undef R
  free(t);
  free(u);
  free(hb);
  return rc;
}

int ref_fii_forward(const dcnv4_fii_config *c, int N, int H, int W,
                    const ref_weight *weights_in, size_t count,
                    const double *image, double *logits, double **features) {
  return ref_fii_forward_dtype(c, DCNV4_FLOAT32, N, H, W, weights_in, count,
                               image, logits, features);
}

int ref_fii_forward_dtype(const dcnv4_fii_config *c, dcnv4_dtype dtype, int N,
                          int H, int W, const ref_weight *weights_in,
                          size_t count, const double *image, double *logits,
                          double **features) {
  weights ws = {weights_in, count, 0, dtype};
#define R(a, count) ref_round(a, count, dtype)
  const int C = c->channels, half = C / 2;
  int h = conv_out(H), w = conv_out(W);
  /* NCHW -> NHWC */
  double *img = malloc((size_t)N * H * W * 3 * sizeof *img);
  double *s1 = malloc((size_t)N * h * w * half * sizeof *s1);
  for (int n = 0; n < N; n++)
    for (int ch = 0; ch < 3; ch++)
      for (int i = 0; i < H * W; i++)
        img[((size_t)n * H * W + i) * 3 + ch] =
            image[((size_t)n * 3 + ch) * H * W + i];
  const double *c1w = get(&ws, "patch_embed.conv1.weight"),
               *c1b = get(&ws, "patch_embed.conv1.bias"),
               *n1w = get(&ws, "patch_embed.norm1.1.weight"),
               *n1b = get(&ws, "patch_embed.norm1.1.bias"),
               *c2w = get(&ws, "patch_embed.conv2.weight"),
               *c2b = get(&ws, "patch_embed.conv2.bias"),
               *n2w = get(&ws, "patch_embed.norm2.1.weight"),
               *n2b = get(&ws, "patch_embed.norm2.1.bias");
  if (ws.missing) {
    free(img);
    free(s1);
    return -1;
  }
  const size_t n1 = (size_t)N * h * w * half;
  conv3s2(img, N, H, W, 3, half, c1w, c1b, s1);
  R(s1, n1);
  layernorm(s1, (size_t)N * h * w, half, n1w, n1b);
  for (size_t i = 0; i < n1; i++)
    s1[i] = gelu(s1[i]);
  R(s1, n1);
  int h0 = conv_out(h), w0 = conv_out(w);
  const size_t n2 = (size_t)N * h0 * w0 * C;
  double *x = malloc(n2 * sizeof *x);
  conv3s2(s1, N, h, w, half, C, c2w, c2b, x);
  R(x, n2);
  layernorm(x, (size_t)N * h0 * w0, C, n2w, n2b);
  R(x, n2);
  free(img);
  free(s1);
  h = h0;
  w = w0;
  int rc = 0;
  for (int l = 0; l < 4 && rc == 0; l++) {
    const int Cl = C << l;
    const size_t rows = (size_t)N * h * w;
    for (int b = 0; b < c->depths[l] && rc == 0; b++) {
      rc = block(c, l, b, &ws, N, h, w, x);
      if (l == 2 && c->level2_post_norm)
        for (int k = 0; k < c->level2_post_norm_block_count; k++)
          if (c->level2_post_norm_block_ids[k] == b) {
            const double *pw = get(&ws, "levels.2.post_norms.%d.0.weight", k),
                         *pb = get(&ws, "levels.2.post_norms.%d.0.bias", k);
            if (ws.missing)
              rc = -1;
            else {
              layernorm(x, rows, Cl, pw, pb);
              R(x, rows * Cl);
            }
            break;
          }
    }
    if (rc == 0 && (!c->post_norm || c->center_feature_scale)) {
      const double *nw = get(&ws, "levels.%d.norm.0.weight", l),
                   *nb = get(&ws, "levels.%d.norm.0.bias", l);
      if (ws.missing)
        rc = -1;
      else {
        layernorm(x, rows, Cl, nw, nb);
        R(x, rows * Cl);
      }
    }
    if (rc != 0)
      break;
    if (features && features[l])
      memcpy(features[l], x, rows * Cl * sizeof *x);
    if (l == 3)
      break;
    const double *dw = get(&ws, "levels.%d.downsample.conv.weight", l),
                 *dnw = get(&ws, "levels.%d.downsample.norm.1.weight", l),
                 *dnb = get(&ws, "levels.%d.downsample.norm.1.bias", l);
    if (ws.missing) {
      rc = -1;
      break;
    }
    int hn = conv_out(h), wn = conv_out(w);
    double *y = malloc((size_t)N * hn * wn * 2 * Cl * sizeof *y);
    const size_t ny = (size_t)N * hn * wn * 2 * Cl;
    conv3s2(x, N, h, w, Cl, 2 * Cl, dw, NULL, y);
    R(y, ny);
    layernorm(y, (size_t)N * hn * wn, 2 * Cl, dnw, dnb);
    R(y, ny);
    free(x);
    x = y;
    h = hn;
    w = wn;
  }
  if (rc == 0 && logits) {
    /* conv_head: 1x1 conv, BatchNorm (running statistics), GELU; pool; head */
    const int F = 8 * C, Hw = head_width(c), K = c->num_classes;
    const size_t rows = (size_t)N * h * w;
    const double *cw = get(&ws, "conv_head.0.weight"),
                 *bw = get(&ws, "conv_head.1.0.weight"),
                 *bb = get(&ws, "conv_head.1.0.bias"),
                 *bm = get(&ws, "conv_head.1.0.running_mean"),
                 *bv = get(&ws, "conv_head.1.0.running_var");
    const double *hw = K > 0 ? get(&ws, "head.weight") : NULL,
                 *hbias = K > 0 ? get(&ws, "head.bias") : NULL;
    if (ws.missing)
      rc = -1;
    else {
      double *y = malloc(rows * Hw * sizeof *y);
      double *pooled = calloc((size_t)N * Hw, sizeof *pooled);
      if (dtype == DCNV4_FLOAT32) {
        linear(x, rows, F, Hw, cw, NULL, y);
        for (size_t r = 0; r < rows; r++)
          for (int o = 0; o < Hw; o++) {
            double v = y[r * Hw + o];
            v = (v - bm[o]) / sqrt(bv[o] + 1e-5) * bw[o] + bb[o];
            y[r * Hw + o] = gelu(v);
          }
      } else {
        /* The BatchNorm folded into the convolution, the folded matrix
         * rounded to the dtype (the library's 16-bit GEMM operand). */
        double *fw = malloc((size_t)Hw * F * sizeof *fw);
        double *fb = malloc((size_t)Hw * sizeof *fb);
        for (int o = 0; o < Hw; o++) {
          const double sc = bw[o] / sqrt(bv[o] + 1e-5);
          for (int i = 0; i < F; i++)
            fw[(size_t)o * F + i] = (float)(sc * cw[(size_t)o * F + i]);
          fb[o] = (float)(bb[o] - sc * bm[o]);
        }
        R(fw, (size_t)Hw * F);
        linear(x, rows, F, Hw, fw, fb, y);
        for (size_t i = 0; i < rows * Hw; i++)
          y[i] = gelu(y[i]);
        free(fw);
        free(fb);
      }
      R(y, rows * Hw);
      for (int n = 0; n < N; n++)
        for (int i = 0; i < h * w; i++)
          for (int o = 0; o < Hw; o++)
            pooled[(size_t)n * Hw + o] +=
                y[((size_t)n * h * w + i) * Hw + o] / (h * w);
      R(pooled, (size_t)N * Hw);
      if (K > 0)
        linear(pooled, (size_t)N, Hw, K, hw, hbias, logits);
      else
        memcpy(logits, pooled, (size_t)N * Hw * sizeof *pooled);
      free(y);
      free(pooled);
    }
  }
  free(x);
  return rc;
#undef R
}

double ref_fii_random_value(struct rng *r, const ref_fii_key *k,
                            double matrix_gain) {
  switch (k->role) {
  case REF_FII_MATRIX:
    return rng_uniform(r, -1, 1) * matrix_gain * sqrt(3.0 / (double)k->fan_in);
  case REF_FII_BIAS: return rng_uniform(r, -0.2, 0.2);
  case REF_FII_NORM_W: return rng_uniform(r, 0.5, 1.5);
  case REF_FII_GAMMA: return rng_uniform(r, 0.3, 0.8);
  case REF_FII_BN_MEAN: return rng_uniform(r, -0.3, 0.3);
  default: return rng_uniform(r, 0.5, 1.5);
  }
}
