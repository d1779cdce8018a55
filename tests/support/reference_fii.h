/* Float64 reference of the FlashInternImage classifier (upstream's
 * classification/models/flash_intern_image.py, eval mode), written from
 * upstream's module structure for clarity, not speed; the DCNv4 layers are
 * ref_dcnv4_layer_forward (reference.c). Independent of the library's model:
 * it names its own state-dict keys. */
#ifndef DCNV4_REFERENCE_FII_H
#define DCNV4_REFERENCE_FII_H

#include "dcnv4.h"
#include "reference.h"

#include <stddef.h>

/* How a test fills a weight with random values that keep activations
 * sensible. */
typedef enum ref_fii_role {
  REF_FII_MATRIX,  /* Linear / Conv weight: scale 1/sqrt(fan_in) */
  REF_FII_BIAS,    /* small */
  REF_FII_NORM_W,  /* LayerNorm / BatchNorm weight, around 1 */
  REF_FII_GAMMA,   /* layer scale, 0.3 .. 0.8 */
  REF_FII_BN_MEAN, /* running mean, small */
  REF_FII_BN_VAR   /* running variance, 0.5 .. 1.5 */
} ref_fii_role;

typedef struct ref_fii_key {
  char key[96];
  int ndim;
  int64_t shape[4];
  uint64_t elements;
  int64_t fan_in; /* REF_FII_MATRIX */
  ref_fii_role role;
} ref_fii_key;

/* Every key of the model's state dict (num_batches_tracked excepted), in
 * upstream's order. Writes up to `max` entries and returns the count (which
 * may exceed max). */
size_t ref_fii_keys(const dcnv4_fii_config *c, ref_fii_key *out, size_t max);

/* One random value of weight k, drawn as the model's tests and benchmark
 * do: matrices uniform with variance matrix_gain^2 / fan_in, the other
 * roles in their ranges (above). */
struct rng;
double ref_fii_random_value(struct rng *r, const ref_fii_key *k,
                            double matrix_gain);

/* Level l's spatial size (PyTorch's conv formula, kernel 3, stride 2, pad 1
 * twice in the stem, once per level). */
void ref_fii_level_size(int H, int W, int level, int *h, int *w);
/* The logits' width: num_classes, or int(8C * cls_scale) when 0. */
int ref_fii_output_width(const dcnv4_fii_config *c);

/* Forward of an image batch (N, 3, H, W) to logits (N, output width) and
 * features[l] (N, h_l, w_l, C_l) (either may be NULL, as any features[l]).
 * Weights by key; -1 when one is absent, else 0. */
int ref_fii_forward(const dcnv4_fii_config *c, int N, int H, int W,
                    const ref_weight *weights, size_t count,
                    const double *image, double *logits, double **features);
/* The same with an fp16/bf16 model's activations rounded to `dtype` where
 * the library stores them (each operator's output, a fused residual update
 * once, the DCNv4 layers' intermediates as ref_dcnv4_layer_forward_dtype;
 * sums in float64; the logits of a linear head unrounded), and the head's
 * BatchNorm folded into its convolution as the library folds it, the
 * folded matrix rounded to `dtype`. DCNV4_FLOAT32: ref_fii_forward. */
int ref_fii_forward_dtype(const dcnv4_fii_config *c, dcnv4_dtype dtype, int N,
                          int H, int W, const ref_weight *weights, size_t count,
                          const double *image, double *logits,
                          double **features);

#endif
