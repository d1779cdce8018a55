/* tools/image_prep.c against a float64 reference written here: the same
 * resampling (PIL's bicubic, a = -0.5, widened by the scale when
 * shrinking, normalized per output pixel) as one 2-D sum in doubles, with no
 * fixed point and no intermediate rounding; torchvision's sizes and crop
 * origin; ToTensor and Normalize in doubles. The 8-bit intermediate of the
 * real code allows it half a level, times the vertical kernel's absolute
 * sum (<= 1.19), plus the final rounding: 1.1 levels. Test images stay
 * within [40, 215] so that no overshoot is clipped before the end.
 * Bit-exactness against PIL itself is test_image_prep_pil.py's. */
#include "image_prep.h"
#include "test_util.h"

#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL_LEVELS 1.1

/* The bicubic kernel, a = -0.5, expanded into its two polynomials. */
static double ref_kernel(double x) {
  x = fabs(x);
  if (x < 1.0)
    return 1.5 * x * x * x - 2.5 * x * x + 1.0;
  if (x < 2.0)
    return -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0;
  return 0.0;
}

/* Normalized weights of every input sample for output o. */
static void ref_weights(int in, int out, int o, double *w) {
  double scale = (double)in / out, stretch = scale > 1.0 ? scale : 1.0;
  double center = (o + 0.5) * scale, sum = 0.0;
  for (int i = 0; i < in; i++) {
    w[i] = ref_kernel((i + 0.5 - center) / stretch);
    sum += w[i];
  }
  for (int i = 0; i < in; i++)
    w[i] /= sum;
}

/* The window [x0, x0 + ww) x [y0, y0 + wh) of the resized image (dw x dh,
 * interleaved), clamped to [0, 255]. */
static double *ref_resize(const unsigned char *src, int sw, int sh, int ch,
                          int dw, int dh, int x0, int y0, int ww, int wh) {
  double *out = malloc((size_t)ww * wh * ch * sizeof *out);
  double *wx = malloc((size_t)ww * sw * sizeof *wx);
  double *wy = malloc((size_t)sh * sizeof *wy);
  for (int x = 0; x < ww; x++)
    ref_weights(sw, dw, x0 + x, wx + (size_t)x * sw);
  for (int y = 0; y < wh; y++) {
    ref_weights(sh, dh, y0 + y, wy);
    for (int x = 0; x < ww; x++)
      for (int c = 0; c < ch; c++) {
        double acc = 0.0;
        for (int j = 0; j < sh; j++) {
          if (wy[j] == 0.0)
            continue;
          double row = 0.0;
          for (int i = 0; i < sw; i++)
            row += wx[(size_t)x * sw + i] * src[((size_t)j * sw + i) * ch + c];
          acc += wy[j] * row;
        }
        out[((size_t)y * ww + x) * ch + c] = fmin(255.0, fmax(0.0, acc));
      }
  }
  free(wx);
  free(wy);
  return out;
}

/* The pipeline in doubles: (3, size, size). */
static double *ref_pipeline(const unsigned char *rgb, int w, int h, int size,
                            double ratio) {
  int s = (int)floor(size / ratio);
  int rw = w <= h ? s : (int)floor((double)s * w / h);
  int rh = w <= h ? (int)floor((double)s * h / w) : s;
  /* nearbyint rounds half to even in the default rounding mode. */
  int x0 = (int)nearbyint((rw - size) / 2.0);
  int y0 = (int)nearbyint((rh - size) / 2.0);
  double *crop = ref_resize(rgb, w, h, 3, rw, rh, x0, y0, size, size);
  double *out = malloc((size_t)3 * size * size * sizeof *out);
  const double mean[3] = {0.485, 0.456, 0.406}, sd[3] = {0.229, 0.224, 0.225};
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < size; y++)
      for (int x = 0; x < size; x++)
        out[((size_t)c * size + y) * size + x] =
            (crop[((size_t)y * size + x) * 3 + c] / 255.0 - mean[c]) / sd[c];
  free(crop);
  return out;
}

static unsigned char *random_image(rng *r, int w, int h, int ch) {
  size_t n = (size_t)w * h * ch;
  unsigned char *p = malloc(n);
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)rng_int(r, 40, 215);
  return p;
}

static void test_sizes(void) {
  CHECK(prep_resize_short(224, 0.875) == 256, "224 / 0.875");
  CHECK(prep_resize_short(384, 1.0) == 384, "384 / 1.0");
  CHECK(prep_resize_short(224, 0.9) == 248, "int(248.9)");
  static const int dims[][5] = {
      {640, 480, 256, 341, 256}, {480, 640, 224, 224, 298},
      {500, 500, 224, 224, 224}, {1, 1000, 224, 224, 224000},
      {300, 299, 224, 224, 224}, {299, 300, 224, 224, 224},
      {100, 50, 384, 768, 384},  {7, 3, 224, 522, 224}};
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
    int w, h;
    prep_resize_dims(dims[i][0], dims[i][1], dims[i][2], &w, &h);
    CHECK(w == dims[i][3] && h == dims[i][4],
          "Resize(%d) of %dx%d: %dx%d, expected %dx%d", dims[i][2], dims[i][0],
          dims[i][1], w, h, dims[i][3], dims[i][4]);
  }
  /* round((extent - crop) / 2) with halves to even. */
  static const int crops[][3] = {{341, 224, 58}, {299, 224, 38}, {225, 224, 0},
                                 {227, 224, 2},  {228, 224, 2},  {224, 224, 0},
                                 {229, 224, 2},  {231, 224, 4}};
  for (size_t i = 0; i < sizeof crops / sizeof crops[0]; i++)
    CHECK(prep_crop_origin(crops[i][0], crops[i][1]) == crops[i][2],
          "CenterCrop(%d) of %d starts at %d, expected %d", crops[i][1],
          crops[i][0], prep_crop_origin(crops[i][0], crops[i][1]), crops[i][2]);
}

/* Random sizes up and down, any channel count, windows of the result. */
static void test_resize_random(rng *r, int count) {
  for (int t = 0; t < count; t++) {
    int sw = rng_int(r, 1, 90), sh = rng_int(r, 1, 90);
    int dw = rng_int(r, 1, 90), dh = rng_int(r, 1, 90);
    if (t % 4 == 0) { /* strong shrinking: wide kernels */
      sw = rng_int(r, 100, 400);
      dw = rng_int(r, 1, 20);
    }
    if (t % 5 == 1)
      dh = sh; /* one pass only */
    int ch = rng_int(r, 1, 4);
    unsigned char *src = random_image(r, sw, sh, ch);
    unsigned char *got = malloc((size_t)dw * dh * ch);
    int st = prep_resize_bicubic(src, sw, sh, ch, dw, dh, 0, 0, dw, dh, got);
    CHECK(st == 0, "resize %dx%d -> %dx%d: status %d", sw, sh, dw, dh, st);
    double *ref = ref_resize(src, sw, sh, ch, dw, dh, 0, 0, dw, dh);
    double worst = 0.0;
    size_t n = (size_t)dw * dh * ch;
    for (size_t i = 0; i < n; i++)
      worst = fmax(worst, fabs(got[i] - ref[i]));
    /* With one pass nothing is rounded before the end (but the 22-bit
     * coefficients are: 2^-23 each, times 255, over <= 100 taps). */
    double tol = (sw == dw || sh == dh) ? 0.51 : TOL_LEVELS;
    CHECK(st != 0 || worst <= tol,
          "resize %dx%d -> %dx%d (%d channels): %.3f levels off the "
          "reference (tolerance %.2f)",
          sw, sh, dw, dh, ch, worst, tol);
    /* Any window is that part of the whole. */
    int ww = rng_int(r, 1, dw), wh = rng_int(r, 1, dh);
    int x0 = rng_int(r, 0, dw - ww), y0 = rng_int(r, 0, dh - wh);
    unsigned char *win = malloc((size_t)ww * wh * ch);
    st = prep_resize_bicubic(src, sw, sh, ch, dw, dh, x0, y0, ww, wh, win);
    int same = st == 0;
    for (int y = 0; same && y < wh; y++)
      same =
          memcmp(win + (size_t)y * ww * ch,
                 got + ((size_t)(y0 + y) * dw + x0) * ch, (size_t)ww * ch) == 0;
    CHECK(same, "window %dx%d at (%d,%d) of %dx%d -> %dx%d differs", ww, wh, x0,
          y0, sw, sh, dw, dh);
    free(win);
    free(src);
    free(got);
    free(ref);
  }
}

/* The whole pipeline against the reference. */
static void test_pipeline(rng *r, int count) {
  for (int t = 0; t < count; t++) {
    int size = rng_int(r, 1, 48);
    double ratio = (t % 3 == 0) ? 1.0 : (t % 3 == 1 ? 0.875 : 0.5);
    int w = rng_int(r, 1, 120), h = rng_int(r, 1, 120);
    unsigned char *rgb = random_image(r, w, h, 3);
    size_t n = (size_t)3 * size * size;
    float *got = malloc(n * sizeof *got);
    int st = prep_image(rgb, w, h, size, ratio, got);
    CHECK(st == 0, "prep %dx%d size %d ratio %g: status %d", w, h, size, ratio,
          st);
    double *ref = ref_pipeline(rgb, w, h, size, ratio);
    double worst = 0.0;
    for (size_t i = 0; st == 0 && i < n; i++)
      worst = fmax(worst, fabs(got[i] - ref[i]));
    double tol = TOL_LEVELS / 255.0 / 0.224 + 1e-5;
    CHECK(worst <= tol, "prep %dx%d size %d ratio %g: %.3g off (tol %.3g)", w,
          h, size, ratio, worst, tol);
    free(rgb);
    free(got);
    free(ref);
  }
  /* Nothing to resample: exact up to float32 normalization. */
  rng r2 = {7};
  unsigned char *rgb = random_image(&r2, 13, 13, 3);
  float got[3 * 13 * 13];
  CHECK(prep_image(rgb, 13, 13, 13, 1.0, got) == 0, "identity: status");
  double *ref = ref_pipeline(rgb, 13, 13, 13, 1.0);
  for (int i = 0; i < 3 * 13 * 13; i++)
    CHECK(fabs(got[i] - ref[i]) <= 1e-6, "identity: element %d %.8f vs %.8f", i,
          got[i], ref[i]);
  free(ref);
  /* A flat image stays flat. */
  memset(rgb, 200, 13 * 13 * 3);
  CHECK(prep_image(rgb, 13, 13, 5, 0.875, got) == 0, "flat: status");
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 25; i++)
      CHECK(got[c * 25 + i] == got[c * 25], "flat: channel %d varies at %d", c,
            i);
  CHECK(fabs(got[0] - (200 / 255.0 - 0.485) / 0.229) < 1e-6, "flat: value");
  free(rgb);
}

/* Values beyond the kernel's overshoot are clamped to [0, 255]. */
static void test_clamping(void) {
  enum { W = 16 };
  unsigned char src[W * W], out[41 * 41];
  for (int i = 0; i < W * W; i++)
    src[i] = ((i / W + i % W) % 2) ? 255 : 0;
  CHECK(prep_resize_bicubic(src, W, W, 1, 41, 41, 0, 0, 41, 41, out) == 0,
        "checkerboard up: status");
  int lo = 255, hi = 0;
  for (int i = 0; i < 41 * 41; i++) {
    lo = out[i] < lo ? out[i] : lo;
    hi = out[i] > hi ? out[i] : hi;
  }
  CHECK(lo == 0 && hi == 255, "checkerboard: overshoot clamped (%d..%d)", lo,
        hi);
}

static void test_bad_arguments(void) {
  unsigned char px[12] = {0}, out[12];
  float chw[12];
  CHECK(prep_image(NULL, 2, 2, 2, 1.0, chw) == -2, "NULL image");
  CHECK(prep_image(px, 2, 2, 2, 1.0, NULL) == -2, "NULL output");
  CHECK(prep_image(px, 0, 2, 2, 1.0, chw) == -2, "zero width");
  CHECK(prep_image(px, 2, -1, 2, 1.0, chw) == -2, "negative height");
  CHECK(prep_image(px, 2, 2, 0, 1.0, chw) == -2, "size 0");
  CHECK(prep_image(px, 2, 2, 2, 0.0, chw) == -2, "ratio 0");
  CHECK(prep_image(px, 2, 2, 2, 1.5, chw) == -2, "ratio above 1");
  CHECK(prep_image(px, 2, 2, 2, NAN, chw) == -2, "ratio NaN");
  CHECK(prep_image(px, 2, 2, 2, 1e-9, chw) == -2, "resize past 2^24");
  CHECK(prep_resize_bicubic(px, 2, 2, 3, 2, 2, 1, 0, 2, 2, out) == -2,
        "window past the right edge");
  CHECK(prep_resize_bicubic(px, 2, 2, 3, 2, 2, 0, 0, 0, 2, out) == -2,
        "empty window");
  CHECK(prep_resize_bicubic(px, 2, 2, 5, 2, 2, 0, 0, 2, 2, out) == -2,
        "5 channels");
  CHECK(prep_resize_bicubic(px, 2, 2, 3, 2, 2, 0, 0, 2, 2, NULL) == -2,
        "NULL output");
}

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 60;
  rng r = {test_seed(31)};
  if (fegetround() != FE_TONEAREST)
    fesetround(FE_TONEAREST);
  test_sizes();
  test_resize_random(&r, count);
  test_pipeline(&r, count);
  test_clamping();
  test_bad_arguments();
  return test_finish("image_prep");
}
