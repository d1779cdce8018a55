/* Host allocation (with the fault-injection seam), checked sizes, hashing. */
#include "core/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *dcn_malloc(size_t bytes) {
  if (DCN_FAULT("malloc"))
    return NULL;
  return malloc(bytes ? bytes : 1);
}

void *dcn_calloc(size_t count, size_t size) {
  if (DCN_FAULT("calloc"))
    return NULL;
  return calloc(count ? count : 1, size ? size : 1);
}

void *dcn_realloc(void *ptr, size_t bytes) {
  if (DCN_FAULT("realloc"))
    return NULL;
  return realloc(ptr, bytes ? bytes : 1);
}

void dcn_free(void *ptr) { free(ptr); }

char *dcn_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = dcn_malloc(n);
  if (copy)
    memcpy(copy, s, n);
  return copy;
}

char *dcn_asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *s = dcn_malloc((size_t)n + 1);
  if (!s)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

bool dcn_product_u64(const uint64_t *factors, size_t n, uint64_t *out) {
  uint64_t p = 1;
  for (size_t i = 0; i < n; i++)
    if (!dcn_mul_u64(p, factors[i], &p))
      return false;
  *out = p;
  return true;
}

bool dcn_bytes(uint64_t elements, size_t element_size, size_t *out) {
  uint64_t b;
  if (!dcn_mul_u64(elements, element_size, &b) || b > (uint64_t)SIZE_MAX)
    return false;
  *out = (size_t)b;
  return true;
}

uint64_t dcn_hash(const void *data, size_t size, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = seed;
  for (size_t i = 0; i < size; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

int dcnv4_version(void) { return DCNV4_VERSION_NUMBER; }

const char *dcnv4_version_string(void) { return DCNV4_VERSION_STRING; }

size_t dcnv4_dtype_size(dcnv4_dtype dtype) {
  switch (dtype) {
  case DCNV4_FLOAT32: return 4;
  case DCNV4_FLOAT16: return 2;
  case DCNV4_BFLOAT16: return 2;
  }
  return 0;
}

const char *dcnv4_dtype_name(dcnv4_dtype dtype) {
  switch (dtype) {
  case DCNV4_FLOAT32: return "float32";
  case DCNV4_FLOAT16: return "float16";
  case DCNV4_BFLOAT16: return "bfloat16";
  }
  return NULL;
}
