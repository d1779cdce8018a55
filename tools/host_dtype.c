/* fp16 / bf16 conversions on the host. */
#include "host_dtype.h"

#include <math.h>
#include <string.h>

float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  float f;
  if (exp == 0) {
    /* zero or subnormal: mant * 2^-24 */
    f = ldexpf((float)mant, -24);
    return sign ? -f : f;
  }
  uint32_t bits = exp == 31 ? sign | 0x7f800000u | (mant << 13)
                            : sign | ((exp + 112u) << 23) | (mant << 13);
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) /* NaN */
    return (uint16_t)(sign | 0x7e00u);
  if (ax >= 0x477ff000u) /* rounds to >= 65520: infinity */
    return (uint16_t)(sign | 0x7c00u);
  if (ax < 0x38800000u) {
    /* Subnormal half (or zero): value / 2^-24, rounded to nearest even. */
    float a;
    memcpy(&a, &ax, 4);
    float scaled = a * 16777216.0f; /* exact: power of two */
    float r = rintf(scaled);        /* default mode: nearest even */
    return (uint16_t)(sign | (uint16_t)r);
  }
  /* Normal: rebias and round the 13 dropped bits to nearest even. */
  uint32_t m = ax + 0xc8000000u; /* exponent - 112 */
  m += 0x0fffu + ((m >> 13) & 1u);
  return (uint16_t)(sign | (m >> 13));
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float round_to_dtype(float v, dcnv4_dtype dtype) {
  switch (dtype) {
  case DCNV4_FLOAT16: return half_to_float(float_to_half(v));
  case DCNV4_BFLOAT16: return bf16_to_float(float_to_bf16(v));
  default: return v;
  }
}

void pack_dtype(const float *src, void *dst, size_t count, dcnv4_dtype dtype) {
  if (dtype == DCNV4_FLOAT32) {
    memcpy(dst, src, count * 4);
    return;
  }
  uint16_t *out = dst;
  for (size_t i = 0; i < count; i++)
    out[i] =
        dtype == DCNV4_FLOAT16 ? float_to_half(src[i]) : float_to_bf16(src[i]);
}

void unpack_dtype(const void *src, float *dst, size_t count,
                  dcnv4_dtype dtype) {
  if (dtype == DCNV4_FLOAT32) {
    memcpy(dst, src, count * 4);
    return;
  }
  const uint16_t *in = src;
  for (size_t i = 0; i < count; i++)
    dst[i] =
        dtype == DCNV4_FLOAT16 ? half_to_float(in[i]) : bf16_to_float(in[i]);
}

int parse_dtype(const char *name, dcnv4_dtype *dtype) {
  static const dcnv4_dtype all[] = {DCNV4_FLOAT32, DCNV4_FLOAT16,
                                    DCNV4_BFLOAT16};
  for (size_t i = 0; i < 3; i++)
    if (strcmp(name, dcnv4_dtype_name(all[i])) == 0) {
      *dtype = all[i];
      return 0;
    }
  return -1;
}
