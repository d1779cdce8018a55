/* float64 reference operators (DESIGN.md §1).
 *
 * Non-finite values follow the rules of include/dcnv4.h (dcnv4_backward):
 * a position that is NaN, infinite or outside the window contributes
 * nothing (the window test is false for NaN); in-image neighbours are read
 * and multiplied by their weight even when it is 0 (so 0 * Inf = NaN);
 * sums over the corners come first, then the products with m and
 * grad_output, grouped as the kernels group them. */
#include "reference.h"
#include "host_dtype.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bilinear sampling of one channel plane with the DESIGN.md rule; also the
 * partial derivatives and the four corner weights for the backward pass. */
typedef struct bilinear {
  int valid;        /* inside the window -1 < y < H, -1 < x < W */
  long corner[4];   /* pixel index (h*W + w) of each neighbour, -1 if out */
  double weight[4]; /* bilinear weight of each neighbour */
  double dweight_dy[4], dweight_dx[4];
} bilinear;

static bilinear bilinear_at(double y, double x, int height, int width) {
  bilinear b;
  memset(&b, 0, sizeof b);
  for (int c = 0; c < 4; c++)
    b.corner[c] = -1;
  if (!(y > -1 && x > -1 && y < height && x < width))
    return b;
  b.valid = 1;
  double y0 = floor(y), x0 = floor(x);
  double ly = y - y0, lx = x - x0, hy = 1 - ly, hx = 1 - lx;
  int ys[4] = {(int)y0, (int)y0, (int)y0 + 1, (int)y0 + 1};
  int xs[4] = {(int)x0, (int)x0 + 1, (int)x0, (int)x0 + 1};
  double w[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
  double dy[4] = {-hx, -lx, hx, lx};
  double dx[4] = {-hy, hy, -ly, ly};
  for (int c = 0; c < 4; c++) {
    if (ys[c] < 0 || ys[c] >= height || xs[c] < 0 || xs[c] >= width)
      continue;
    b.corner[c] = (long)ys[c] * width + xs[c];
    b.weight[c] = w[c];
    b.dweight_dy[c] = dy[c];
    b.dweight_dx[c] = dx[c];
  }
  return b;
}

typedef struct dcnv4_dims {
  int N, H, W, Ho, Wo, G, D, C, K, S;
} dcnv4_dims;

static dcnv4_dims dims_of(const dcnv4_params *p) {
  dcnv4_shape s;
  dcnv4_get_shape(p, &s);
  dcnv4_dims d = {p->batch,          p->height_in,
                  p->width_in,       s.height_out,
                  s.width_out,       p->group,
                  p->group_channels, s.channels,
                  s.points,          s.offset_mask_stride};
  return d;
}

/* Sampling position of point (i, j) for output pixel (ho, wo), literally as
 * DESIGN.md §1.1 writes it. */
static void position(const dcnv4_params *p, int ho, int wo, int i, int j,
                     double dx, double dy, double *y, double *x) {
  double os = p->offset_scale;
  int base_w = (p->dilation_w * (p->kernel_w - 1)) / 2;
  int base_h = (p->dilation_h * (p->kernel_h - 1)) / 2;
  double p0_w = base_w - p->pad_w + wo * p->stride_w - base_w * os;
  double p0_h = base_h - p->pad_h + ho * p->stride_h - base_h * os;
  *x = p0_w + (i * p->dilation_w + dx) * os;
  *y = p0_h + (j * p->dilation_h + dy) * os;
}

/* The K aggregation weights of one group, softmaxed if asked. */
static void group_weights(const dcnv4_params *p, const double *row, int K,
                          double *m) {
  for (int k = 0; k < K; k++)
    m[k] = row[2 * K + k];
  if (!p->softmax)
    return;
  double mx = -INFINITY, sum = 0;
  for (int k = 0; k < K; k++)
    mx = fmax(mx, m[k]);
  for (int k = 0; k < K; k++)
    sum += (m[k] = exp(m[k] - mx));
  for (int k = 0; k < K; k++)
    m[k] /= sum;
}

/* The kept kernel points (i, j) in DESIGN.md order: x outer, y inner. */
static int kernel_points(const dcnv4_params *p, int *is, int *js) {
  int k = 0;
  for (int i = 0; i < p->kernel_w; i++)
    for (int j = 0; j < p->kernel_h; j++) {
      if (p->remove_center && i == p->kernel_w / 2 && j == p->kernel_h / 2)
        continue;
      is[k] = i;
      js[k] = j;
      k++;
    }
  return k;
}

void ref_dcnv4_forward(const dcnv4_params *p, const double *input,
                       const double *om, double *out) {
  dcnv4_dims d = dims_of(p);
  double *m = malloc(sizeof *m * (size_t)d.K);
  int *pi = malloc(sizeof *pi * (size_t)d.K),
      *pj = malloc(sizeof *pj * (size_t)d.K);
  kernel_points(p, pi, pj);
  for (int n = 0; n < d.N; n++)
    for (int ho = 0; ho < d.Ho; ho++)
      for (int wo = 0; wo < d.Wo; wo++) {
        long pix = ((long)n * d.Ho + ho) * d.Wo + wo;
        const double *img = input + (long)n * d.H * d.W * d.C;
        for (int g = 0; g < d.G; g++) {
          const double *row = om + pix * d.S + (long)g * d.K * 3;
          double *o = out + pix * d.C + (long)g * d.D;
          for (int c = 0; c < d.D; c++)
            o[c] = 0;
          group_weights(p, row, d.K, m);
          for (int k = 0; k < d.K; k++) {
            double y, x;
            position(p, ho, wo, pi[k], pj[k], row[2 * k], row[2 * k + 1], &y,
                     &x);
            bilinear b = bilinear_at(y, x, d.H, d.W);
            if (!b.valid)
              continue;
            /* The sample first, then times m (the kernels' grouping; it
             * decides whether 0 * Inf arises, see the non-finite rules). */
            for (int c = 0; c < d.D; c++) {
              double sample = 0;
              for (int c4 = 0; c4 < 4; c4++)
                if (b.corner[c4] >= 0)
                  sample += b.weight[c4] *
                            img[b.corner[c4] * d.C + (long)g * d.D + c];
              o[c] += m[k] * sample;
            }
          }
        }
      }
  free(m);
  free(pi);
  free(pj);
}

void ref_dcnv4_backward(const dcnv4_params *p, const double *input,
                        const double *om, const double *gout, double *gin,
                        double *gom) {
  dcnv4_dims d = dims_of(p);
  memset(gin, 0, sizeof *gin * (size_t)d.N * d.H * d.W * d.C);
  memset(gom, 0, sizeof *gom * (size_t)d.N * d.Ho * d.Wo * d.S);
  double *m = malloc(sizeof *m * (size_t)d.K);
  double *gm = malloc(sizeof *gm * (size_t)d.K);
  int *pi = malloc(sizeof *pi * (size_t)d.K),
      *pj = malloc(sizeof *pj * (size_t)d.K);
  kernel_points(p, pi, pj);
  for (int n = 0; n < d.N; n++)
    for (int ho = 0; ho < d.Ho; ho++)
      for (int wo = 0; wo < d.Wo; wo++) {
        long pix = ((long)n * d.Ho + ho) * d.Wo + wo;
        const double *img = input + (long)n * d.H * d.W * d.C;
        double *gimg = gin + (long)n * d.H * d.W * d.C;
        for (int g = 0; g < d.G; g++) {
          const double *row = om + pix * d.S + (long)g * d.K * 3;
          double *grow = gom + pix * d.S + (long)g * d.K * 3;
          const double *go = gout + pix * d.C + (long)g * d.D;
          group_weights(p, row, d.K, m);
          for (int k = 0; k < d.K; k++) {
            double y, x;
            position(p, ho, wo, pi[k], pj[k], row[2 * k], row[2 * k + 1], &y,
                     &x);
            bilinear b = bilinear_at(y, x, d.H, d.W);
            double sample_dot = 0, dy = 0, dx = 0;
            /* Per channel: the sums over the corners first, then times
             * grad_output (the kernels' grouping, which decides where
             * 0 * Inf arises). */
            for (int c = 0; c < d.D && b.valid; c++) {
              double sample = 0, sy = 0, sx = 0;
              for (int c4 = 0; c4 < 4; c4++) {
                if (b.corner[c4] < 0)
                  continue;
                long at = b.corner[c4] * d.C + (long)g * d.D + c;
                sample += b.weight[c4] * img[at];
                sy += b.dweight_dy[c4] * img[at];
                sx += b.dweight_dx[c4] * img[at];
                gimg[at] += m[k] * b.weight[c4] * go[c];
              }
              sample_dot += go[c] * sample;
              dy += go[c] * sy;
              dx += go[c] * sx;
            }
            grow[2 * k] = m[k] * dx * p->offset_scale;
            grow[2 * k + 1] = m[k] * dy * p->offset_scale;
            gm[k] = sample_dot;
          }
          double dot = 0;
          for (int k = 0; k < d.K; k++)
            dot += m[k] * gm[k];
          for (int k = 0; k < d.K; k++)
            grow[2 * d.K + k] = p->softmax ? m[k] * (gm[k] - dot) : gm[k];
        }
      }
  free(m);
  free(gm);
  free(pi);
  free(pj);
}

/* ------------------------------------------------------- FlashDeformAttn */

/* Softmax of the L*K logits of one (b, q, g) row. */
static void fda_weights(const double *row, int LK, double *m) {
  double mx = -INFINITY, sum = 0;
  for (int i = 0; i < LK; i++)
    mx = fmax(mx, row[2 * LK + i]);
  for (int i = 0; i < LK; i++)
    sum += (m[i] = exp(row[2 * LK + i] - mx));
  for (int i = 0; i < LK; i++)
    m[i] /= sum;
}

void ref_fda_forward(const dcnv4_fda_params *p, const double *value,
                     const double *sampling, double *out) {
  const int B = p->batch, Q = p->queries, G = p->group, D = p->group_channels;
  const int L = p->levels, K = p->points, LK = L * K;
  const long GD = (long)G * D, Nv = p->value_len;
  double *m = malloc(sizeof *m * (size_t)LK);
  for (int b = 0; b < B; b++)
    for (int q = 0; q < Q; q++)
      for (int g = 0; g < G; g++) {
        long qg = ((long)b * Q + q) * G + g;
        const double *row = sampling + qg * LK * 3;
        double *o = out + qg * D;
        for (int c = 0; c < D; c++)
          o[c] = 0;
        fda_weights(row, LK, m);
        for (int l = 0; l < L; l++) {
          const int H = p->spatial_shapes[l][0], W = p->spatial_shapes[l][1];
          const double *level =
              value + ((long)b * Nv + p->level_start[l]) * GD + (long)g * D;
          for (int k = 0; k < K; k++) {
            int i = l * K + k;
            double x = row[2 * i] * W - 0.5, y = row[2 * i + 1] * H - 0.5;
            bilinear bl = bilinear_at(y, x, H, W);
            if (!bl.valid)
              continue;
            for (int c = 0; c < D; c++) {
              double sample = 0;
              for (int c4 = 0; c4 < 4; c4++)
                if (bl.corner[c4] >= 0)
                  sample += bl.weight[c4] * level[bl.corner[c4] * GD + c];
              o[c] += m[i] * sample;
            }
          }
        }
      }
  free(m);
}

void ref_fda_backward(const dcnv4_fda_params *p, const double *value,
                      const double *sampling, const double *gout,
                      double *gvalue, double *gsampling) {
  const int B = p->batch, Q = p->queries, G = p->group, D = p->group_channels;
  const int L = p->levels, K = p->points, LK = L * K;
  const long GD = (long)G * D, Nv = p->value_len;
  memset(gvalue, 0, sizeof *gvalue * (size_t)B * (size_t)Nv * (size_t)GD);
  double *m = malloc(sizeof *m * (size_t)LK);
  double *gm = malloc(sizeof *gm * (size_t)LK);
  for (int b = 0; b < B; b++)
    for (int q = 0; q < Q; q++)
      for (int g = 0; g < G; g++) {
        long qg = ((long)b * Q + q) * G + g;
        const double *row = sampling + qg * LK * 3;
        double *grow = gsampling + qg * LK * 3;
        const double *go = gout + qg * D;
        fda_weights(row, LK, m);
        for (int l = 0; l < L; l++) {
          const int H = p->spatial_shapes[l][0], W = p->spatial_shapes[l][1];
          long level_off =
              ((long)b * Nv + p->level_start[l]) * GD + (long)g * D;
          for (int k = 0; k < K; k++) {
            int i = l * K + k;
            double x = row[2 * i] * W - 0.5, y = row[2 * i + 1] * H - 0.5;
            bilinear bl = bilinear_at(y, x, H, W);
            double sample_dot = 0, dy = 0, dx = 0;
            for (int c = 0; c < D && bl.valid; c++) {
              double sample = 0, sy = 0, sx = 0;
              for (int c4 = 0; c4 < 4; c4++) {
                if (bl.corner[c4] < 0)
                  continue;
                long at = level_off + bl.corner[c4] * GD + c;
                sample += bl.weight[c4] * value[at];
                sy += bl.dweight_dy[c4] * value[at];
                sx += bl.dweight_dx[c4] * value[at];
                gvalue[at] += m[i] * bl.weight[c4] * go[c];
              }
              sample_dot += go[c] * sample;
              dy += go[c] * sy;
              dx += go[c] * sx;
            }
            /* x = loc_x * W - 0.5, y = loc_y * H - 0.5 */
            grow[2 * i] = m[i] * dx * W;
            grow[2 * i + 1] = m[i] * dy * H;
            gm[i] = sample_dot;
          }
        }
        double dot = 0;
        for (int i = 0; i < LK; i++)
          dot += m[i] * gm[i];
        for (int i = 0; i < LK; i++)
          grow[2 * LK + i] = m[i] * (gm[i] - dot);
      }
  free(m);
  free(gm);
}

/* ------------------------------------------------------------ layers */

static const double *find_ref_weight(const ref_weight *w, size_t n,
                                     const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(w[i].key, key) == 0)
      return w[i].data;
  return NULL;
}

/* y (M, out) = x (M, in) @ weight^T (+ bias): PyTorch's F.linear. */
static void linear(const double *x, long M, int in, const double *weight,
                   const double *bias, int out, double *y) {
  for (long m = 0; m < M; m++)
    for (int o = 0; o < out; o++) {
      double acc = bias ? bias[o] : 0;
      for (int i = 0; i < in; i++)
        acc += x[m * in + i] * weight[(long)o * in + i];
      y[m * out + o] = acc;
    }
}

void ref_round(double *a, size_t n, dcnv4_dtype dtype) {
  if (dtype == DCNV4_FLOAT32)
    return;
  for (size_t i = 0; i < n; i++)
    a[i] = round_to_dtype((float)a[i], dtype);
}

int ref_dcnv4_layer_forward(const dcnv4_layer_dcnv4_config *c, int N, int H,
                            int W, const ref_weight *weights, size_t count,
                            const double *input, double *output) {
  return ref_dcnv4_layer_forward_dtype(c, DCNV4_FLOAT32, N, H, W, weights,
                                       count, input, output);
}

int ref_dcnv4_layer_forward_dtype(const dcnv4_layer_dcnv4_config *c,
                                  dcnv4_dtype dtype, int N, int H, int W,
                                  const ref_weight *weights, size_t count,
                                  const double *input, double *output) {
  const int C = c->channels, G = c->group, D = C / G;
  const int K = c->kernel_size * c->kernel_size - c->remove_center;
  const int S = (G * K * 3 + 7) / 8 * 8;
  const long M = (long)N * H * W;
  const int pointwise = !c->without_pointwise;
#define GET(name, needed)                                                      \
  const double *name = find_ref_weight(weights, count, needed);
  GET(wv, "value_proj.weight")
  GET(bv, "value_proj.bias")
  GET(wom, "offset_mask.weight")
  GET(bom, "offset_mask.bias")
  GET(wdw, "offset_mask_dw.weight")
  GET(bdw, "offset_mask_dw.bias")
  GET(wo, "output_proj.weight")
  GET(bo, "output_proj.bias")
  GET(wc, "center_feature_scale_proj_weight")
  GET(bc, "center_feature_scale_proj_bias")
#undef GET
  if (!wom || !bom || (pointwise && (!wv || !bv || !wo)) ||
      (pointwise && c->output_bias && !bo) ||
      (c->dw_kernel_size && (!wdw || !bdw)) ||
      (c->center_feature_scale && (!wc || !bc)))
    return -1;
  double *v = malloc(sizeof *v * (size_t)(M * C));
  double *omin = malloc(sizeof *omin * (size_t)(M * C));
  double *om = malloc(sizeof *om * (size_t)(M * S));
  double *x = malloc(sizeof *x * (size_t)(M * C));
  double *s = malloc(sizeof *s * (size_t)G);

  /* 1. value projection */
  if (pointwise) {
    linear(input, M, C, wv, bv, C, v);
    ref_round(v, (size_t)(M * C), dtype);
  } else
    memcpy(v, input, sizeof *v * (size_t)(M * C));
  /* 2. depthwise convolution (cross-correlation, zero padding) */
  if (c->dw_kernel_size) {
    const int k = c->dw_kernel_size, p = (k - 1) / 2;
    for (int n = 0; n < N; n++)
      for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++)
          for (int ch = 0; ch < C; ch++) {
            double acc = bdw[ch];
            for (int i = 0; i < k; i++)
              for (int j = 0; j < k; j++) {
                int y = h + i - p, xx = w + j - p;
                if (y < 0 || y >= H || xx < 0 || xx >= W)
                  continue;
                acc += wdw[((long)ch * k + i) * k + j] *
                       input[(((long)n * H + y) * W + xx) * C + ch];
              }
            omin[(((long)n * H + h) * W + w) * C + ch] = acc;
          }
    ref_round(omin, (size_t)(M * C), dtype);
  } else
    memcpy(omin, input, sizeof *omin * (size_t)(M * C));
  /* 3. offsets and mask */
  linear(omin, M, C, wom, bom, S, om);
  ref_round(om, (size_t)(M * S), dtype);
  /* 4. the core operator */
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = N;
  p.height_in = H;
  p.width_in = W;
  p.group = G;
  p.group_channels = D;
  p.kernel_h = p.kernel_w = c->kernel_size;
  p.stride_h = p.stride_w = c->stride;
  p.pad_h = p.pad_w = c->pad;
  p.dilation_h = p.dilation_w = c->dilation;
  p.offset_scale = c->offset_scale;
  p.remove_center = c->remove_center;
  p.offset_mask_stride = S;
  ref_dcnv4_forward(&p, v, om, x);
  ref_round(x, (size_t)(M * C), dtype);
  /* 5. centre feature scale: one gate per (pixel, group) from the whole
   * row of x, all computed before x changes */
  if (c->center_feature_scale)
    for (long m = 0; m < M; m++) {
      for (int g = 0; g < G; g++) {
        double logit = 0;
        for (int ch = 0; ch < C; ch++)
          logit += x[m * C + ch] * wc[(long)g * C + ch];
        ref_round(&logit, 1, dtype);
        s[g] = 1 / (1 + exp(-(logit + bc[g])));
      }
      for (int ch = 0; ch < C; ch++) {
        double sg = s[ch / D];
        x[m * C + ch] = x[m * C + ch] * (1 - sg) + v[m * C + ch] * sg;
      }
      ref_round(x + m * C, (size_t)C, dtype);
    }
  /* 6. output projection */
  if (pointwise)
    linear(x, M, C, wo, c->output_bias ? bo : NULL, C, output);
  else
    memcpy(output, x, sizeof *x * (size_t)(M * C));
  free(v);
  free(omin);
  free(om);
  free(x);
  free(s);
  return 0;
}

int ref_fda_layer_forward(const dcnv4_layer_fda_config *c,
                          const dcnv4_layer_fda_shape *s,
                          const ref_weight *weights, size_t count,
                          const double *query, const double *ref,
                          const double *input, const unsigned char *mask,
                          double *output) {
  return ref_fda_layer_forward_dtype(c, DCNV4_FLOAT32, s, weights, count, query,
                                     ref, input, mask, output);
}

int ref_fda_layer_forward_dtype(const dcnv4_layer_fda_config *c,
                                dcnv4_dtype dtype,
                                const dcnv4_layer_fda_shape *s,
                                const ref_weight *weights, size_t count,
                                const double *query, const double *ref,
                                const double *input, const unsigned char *mask,
                                double *output) {
  const int C = c->d_model, G = c->n_heads, L = c->n_levels, K = c->n_points;
  const int P = G * L * K, R = s->reference_dim;
  const long Mq = (long)s->batch * s->queries,
             Mv = (long)s->batch * s->input_len;
#define GET(name, key)                                                         \
  const double *name = find_ref_weight(weights, count, key);
  GET(wv, "value_proj.weight")
  GET(bv, "value_proj.bias")
  GET(wso, "sampling_offsets.weight")
  GET(bso, "sampling_offsets.bias")
  GET(wa, "attention_weights.weight")
  GET(ba, "attention_weights.bias")
  GET(wo, "output_proj.weight")
  GET(bo, "output_proj.bias")
#undef GET
  if (!wv || !bv || !wso || !bso || !wa || !ba || !wo || !bo)
    return -1;
  double *value = malloc(sizeof *value * (size_t)(Mv * C));
  double *off = malloc(sizeof *off * (size_t)(Mq * 2 * P));
  double *attn = malloc(sizeof *attn * (size_t)(Mq * P));
  double *sla = malloc(sizeof *sla * (size_t)(Mq * 3 * P));
  double *x = malloc(sizeof *x * (size_t)(Mq * C));

  /* value = value_proj(input_flatten), masked_fill(mask[..., None], 0) */
  linear(input, Mv, C, wv, bv, C, value);
  ref_round(value, (size_t)(Mv * C), dtype);
  if (mask)
    for (long m = 0; m < Mv; m++)
      if (mask[m])
        for (int ch = 0; ch < C; ch++)
          value[m * C + ch] = 0;
  /* sampling_offsets (N, Lq, G, L, K, 2), attention logits (N, Lq, G, L*K) */
  linear(query, Mq, C, wso, bso, 2 * P, off);
  linear(query, Mq, C, wa, ba, P, attn);
  /* locations, then the fused (N, Lq, G, L*K*3) rows of the core operator */
  for (long m = 0; m < Mq; m++)
    for (int g = 0; g < G; g++) {
      double *row = sla + (m * G + g) * 3 * L * K;
      for (int l = 0; l < L; l++) {
        const double *rp = ref + (m * L + l) * R;
        const double H = s->spatial_shapes[l][0], W = s->spatial_shapes[l][1];
        for (int k = 0; k < K; k++) {
          const long i = ((m * G + g) * L + l) * K + k;
          const double ox = off[2 * i], oy = off[2 * i + 1];
          double lx, ly;
          if (R == 2) {
            lx = rp[0] + ox / W;
            ly = rp[1] + oy / H;
          } else {
            lx = rp[0] + ox / K * rp[2] * 0.5;
            ly = rp[1] + oy / K * rp[3] * 0.5;
          }
          row[2 * (l * K + k)] = lx;
          row[2 * (l * K + k) + 1] = ly;
          row[2 * L * K + l * K + k] = attn[i];
        }
      }
    }
  /* the core operator (softmax over the L*K logits inside) */
  dcnv4_fda_params p;
  dcnv4_fda_params_init(&p);
  p.batch = s->batch;
  p.queries = s->queries;
  p.group = G;
  p.group_channels = C / G;
  p.levels = L;
  p.points = K;
  p.value_len = s->input_len;
  for (int l = 0; l < L; l++) {
    p.spatial_shapes[l][0] = s->spatial_shapes[l][0];
    p.spatial_shapes[l][1] = s->spatial_shapes[l][1];
    p.level_start[l] = s->level_start[l];
  }
  ref_fda_forward(&p, value, sla, x);
  ref_round(x, (size_t)(Mq * C), dtype);
  /* output projection */
  linear(x, Mq, C, wo, bo, C, output);
  free(value);
  free(off);
  free(attn);
  free(sla);
  free(x);
  return 0;
}

/* ------------------------------------------- FlashInternImage pieces */

void ref_conv2d(int batch, int height, int width, int in_channels,
                int out_channels, int kernel, int stride, int pad, int nchw,
                const double *input, const double *weight, const double *bias,
                double *output) {
  const int ho = (height + 2 * pad - kernel) / stride + 1,
            wo = (width + 2 * pad - kernel) / stride + 1;
  for (int b = 0; b < batch; b++)
    for (int oy = 0; oy < ho; oy++)
      for (int ox = 0; ox < wo; ox++)
        for (int co = 0; co < out_channels; co++) {
          double s = bias ? bias[co] : 0.0;
          for (int ci = 0; ci < in_channels; ci++)
            for (int ky = 0; ky < kernel; ky++)
              for (int kx = 0; kx < kernel; kx++) {
                const int iy = oy * stride - pad + ky,
                          ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= height || ix < 0 || ix >= width)
                  continue;
                const size_t at =
                    nchw ? (((size_t)b * in_channels + ci) * height + iy) *
                                   width +
                               ix
                         : (((size_t)b * height + iy) * width + ix) *
                                   in_channels +
                               ci;
                s += input[at] *
                     weight[(((size_t)co * in_channels + ci) * kernel + ky) *
                                kernel +
                            kx];
              }
          output[(((size_t)b * ho + oy) * wo + ox) * out_channels + co] = s;
        }
}

double ref_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

void ref_layernorm(size_t rows, int channels, double eps, int epilogue,
                   const double *x, const double *weight, const double *bias,
                   const double *scale, const double *residual, double *out) {
  for (size_t r = 0; r < rows; r++) {
    const double *xr = x + r * (size_t)channels;
    double mean = 0, var = 0;
    for (int c = 0; c < channels; c++)
      mean += xr[c];
    mean /= channels;
    for (int c = 0; c < channels; c++)
      var += (xr[c] - mean) * (xr[c] - mean);
    var /= channels;
    const double inv = 1.0 / sqrt(var + eps);
    for (int c = 0; c < channels; c++) {
      const size_t i = r * (size_t)channels + (size_t)c;
      double v = (xr[c] - mean) * inv * weight[c] + bias[c];
      if (epilogue == 1)
        v = ref_gelu(v);
      else if (epilogue == 2)
        v = residual[i] + (scale ? scale[c] : 1.0) * v;
      out[i] = v;
    }
  }
}

void ref_residual(size_t rows, int channels, const double *y,
                  const double *scale, double *inout) {
  for (size_t i = 0; i < rows * (size_t)channels; i++)
    inout[i] += (scale ? scale[i % (size_t)channels] : 1.0) * y[i];
}

void ref_avgpool(int batch, size_t positions, int channels, const double *x,
                 double *out) {
  for (int b = 0; b < batch; b++)
    for (int c = 0; c < channels; c++) {
      double s = 0;
      for (size_t p = 0; p < positions; p++)
        s += x[((size_t)b * positions + p) * (size_t)channels + (size_t)c];
      out[(size_t)b * channels + c] = s / (double)positions;
    }
}

void ref_gemm_epilogue(size_t m, int n, int k, const double *a, const double *b,
                       const double *bias, int epilogue, const double *scale,
                       double *c, double *residual) {
  for (size_t i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = bias ? bias[j] : 0.0;
      for (int t = 0; t < k; t++)
        s += a[i * (size_t)k + (size_t)t] * b[(size_t)j * k + (size_t)t];
      const size_t at = i * (size_t)n + (size_t)j;
      if (epilogue == 1)
        s = ref_gelu(s);
      if (epilogue == 2)
        residual[at] += (scale ? scale[j] : 1.0) * s;
      else
        c[at] = s;
    }
}
