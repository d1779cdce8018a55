/* Upstream's evaluation preprocessing; see image_prep.h. */
#include "image_prep.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

const double prep_mean[3] = {0.485, 0.456, 0.406};
const double prep_std[3] = {0.229, 0.224, 0.225};

/* PIL's limit on both sides of an image, and ours. */
#define PREP_MAX_EXTENT (1 << 24)
/* PIL's fixed-point precision for 8-bit images: sums of 8-bit values times
 * coefficients stay within 32 bits. */
#define COEF_BITS 22

int prep_resize_short(int size, double crop_ratio) {
  return (int)((double)size / crop_ratio);
}

void prep_resize_dims(int width, int height, int short_side, int *out_width,
                      int *out_height) {
  int shorter = width <= height ? width : height;
  int longer = width <= height ? height : width;
  /* Python's int(s * long / short): an exact product, one rounding. */
  int new_long = (int)((double)((int64_t)short_side * longer) / shorter);
  *out_width = width <= height ? short_side : new_long;
  *out_height = width <= height ? new_long : short_side;
}

int prep_crop_origin(int extent, int crop) {
  int d = extent - crop, half = d / 2;
  if (d % 2 == 0)
    return half;
  return half % 2 == 0 ? half : half + 1; /* half + 0.5 to even */
}

/* The bicubic kernel of PIL and torchvision (a = -0.5), evaluated in the
 * same order so that the doubles agree. */
static double cubic(double x) {
  const double a = -0.5;
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0)
    return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

/* Taps of outputs first .. first + n - 1 of an in_size -> out_size pass:
 * start[i], count[i] and coef[i * stride ..] in fixed point. */
typedef struct taps {
  int stride;
  int *start, *count;
  int32_t *coef;
} taps;

static void free_taps(taps *t) {
  free(t->start);
  free(t->count);
  free(t->coef);
}

static int make_taps(int in_size, int out_size, int first, int n, taps *t) {
  double scale = (double)in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale; /* widen when shrinking */
  double support = 2.0 * filterscale, inv = 1.0 / filterscale;
  t->stride = (int)ceil(support) * 2 + 1;
  t->start = malloc((size_t)n * sizeof *t->start);
  t->count = malloc((size_t)n * sizeof *t->count);
  t->coef = malloc((size_t)n * (size_t)t->stride * sizeof *t->coef);
  double *w = malloc((size_t)t->stride * sizeof *w);
  if (!t->start || !t->count || !t->coef || !w) {
    free(w);
    free_taps(t);
    return -1;
  }
  for (int i = 0; i < n; i++) {
    double center = ((first + i) + 0.5) * scale, sum = 0.0;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0)
      lo = 0;
    if (hi > in_size)
      hi = in_size;
    int count = hi - lo;
    for (int k = 0; k < count; k++) {
      w[k] = cubic(((double)(k + lo) - center + 0.5) * inv);
      sum += w[k];
    }
    int32_t *c = t->coef + (size_t)i * t->stride;
    for (int k = 0; k < t->stride; k++) {
      double v = k < count && sum != 0.0 ? w[k] / sum : 0.0;
      /* Rounded half away from zero, as PIL does. */
      c[k] = (int32_t)(v < 0 ? v * (1 << COEF_BITS) - 0.5
                             : v * (1 << COEF_BITS) + 0.5);
    }
    t->start[i] = lo;
    t->count[i] = count;
  }
  free(w);
  return 0;
}

static unsigned char to_u8(int64_t acc) {
  if (acc < 0)
    return 0;
  acc >>= COEF_BITS;
  return (unsigned char)(acc > 255 ? 255 : acc);
}

int prep_resize_bicubic(const unsigned char *src, int src_w, int src_h,
                        int channels, int dst_w, int dst_h, int x0, int y0,
                        int win_w, int win_h, unsigned char *out) {
  if (!src || !out || channels < 1 || channels > 4 || src_w < 1 || src_h < 1 ||
      dst_w < 1 || dst_h < 1 || src_w > PREP_MAX_EXTENT ||
      src_h > PREP_MAX_EXTENT || dst_w > PREP_MAX_EXTENT ||
      dst_h > PREP_MAX_EXTENT || x0 < 0 || y0 < 0 || win_w < 1 || win_h < 1 ||
      x0 > dst_w - win_w || y0 > dst_h - win_h)
    return -2;
  /* A pass whose size does not change is skipped, as PIL skips it (its
   * coefficients would be one 1 and zeros: the same result). */
  taps h = {0, NULL, NULL, NULL}, v = {0, NULL, NULL, NULL};
  int status = -1;
  unsigned char *mid = NULL;
  if (make_taps(src_w, dst_w, x0, win_w, &h) != 0 ||
      make_taps(src_h, dst_h, y0, win_h, &v) != 0)
    goto done;
  /* The source rows the vertical pass reads. */
  int row_lo = v.start[0], row_hi = v.start[0] + v.count[0];
  for (int i = 1; i < win_h; i++) {
    if (v.start[i] < row_lo)
      row_lo = v.start[i];
    if (v.start[i] + v.count[i] > row_hi)
      row_hi = v.start[i] + v.count[i];
  }
  size_t mid_row = (size_t)win_w * (size_t)channels;
  mid = malloc((size_t)(row_hi - row_lo) * mid_row);
  if (!mid)
    goto done;
  /* Horizontal pass first, rounded to 8 bits. */
  for (int y = row_lo; y < row_hi; y++) {
    const unsigned char *in = src + (size_t)y * src_w * channels;
    unsigned char *m = mid + (size_t)(y - row_lo) * mid_row;
    for (int x = 0; x < win_w; x++)
      for (int c = 0; c < channels; c++) {
        if (src_w == dst_w) {
          m[(size_t)x * channels + c] = in[(size_t)(x0 + x) * channels + c];
          continue;
        }
        const int32_t *k = h.coef + (size_t)x * h.stride;
        int64_t acc = (int64_t)1 << (COEF_BITS - 1);
        for (int j = 0; j < h.count[x]; j++)
          acc += (int64_t)in[(size_t)(h.start[x] + j) * channels + c] * k[j];
        m[(size_t)x * channels + c] = to_u8(acc);
      }
  }
  /* Vertical pass. */
  for (int y = 0; y < win_h; y++) {
    unsigned char *o = out + (size_t)y * mid_row;
    if (src_h == dst_h) {
      const unsigned char *m = mid + (size_t)(y0 + y - row_lo) * mid_row;
      for (size_t i = 0; i < mid_row; i++)
        o[i] = m[i];
      continue;
    }
    const int32_t *k = v.coef + (size_t)y * v.stride;
    const unsigned char *m = mid + (size_t)(v.start[y] - row_lo) * mid_row;
    for (size_t i = 0; i < mid_row; i++) {
      int64_t acc = (int64_t)1 << (COEF_BITS - 1);
      for (int j = 0; j < v.count[y]; j++)
        acc += (int64_t)m[(size_t)j * mid_row + i] * k[j];
      o[i] = to_u8(acc);
    }
  }
  status = 0;
done:
  free(mid);
  free_taps(&h);
  free_taps(&v);
  return status;
}

int prep_image(const unsigned char *rgb, int width, int height, int size,
               double crop_ratio, float *chw) {
  if (!rgb || !chw || width < 1 || height < 1 || width > PREP_MAX_EXTENT ||
      height > PREP_MAX_EXTENT || size < 1 || size > PREP_MAX_EXTENT ||
      !(crop_ratio > 0.0 && crop_ratio <= 1.0))
    return -2;
  double short_side = (double)size / crop_ratio;
  int shorter = width < height ? width : height;
  int longer = width < height ? height : width;
  if (short_side > PREP_MAX_EXTENT ||
      short_side * ((double)longer / shorter) > PREP_MAX_EXTENT)
    return -2;
  int rw, rh;
  prep_resize_dims(width, height, prep_resize_short(size, crop_ratio), &rw,
                   &rh);
  if (rw < size || rh < size)
    return -2;
  size_t plane = (size_t)size * (size_t)size;
  unsigned char *crop = malloc(plane * 3);
  if (!crop)
    return -1;
  int st = prep_resize_bicubic(rgb, width, height, 3, rw, rh,
                               prep_crop_origin(rw, size),
                               prep_crop_origin(rh, size), size, size, crop);
  if (st != 0) {
    free(crop);
    return st;
  }
  /* ToTensor and Normalize in float32, in torchvision's order. */
  for (int c = 0; c < 3; c++) {
    float mean = (float)prep_mean[c], std = (float)prep_std[c];
    for (size_t i = 0; i < plane; i++)
      chw[c * plane + i] = ((float)crop[i * 3 + c] / 255.0f - mean) / std;
  }
  free(crop);
  return 0;
}
