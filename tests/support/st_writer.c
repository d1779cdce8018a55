#include "st_writer.h"

#include "host_dtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t st_dtype_size(const char *d) {
  static const struct {
    const char *name;
    size_t size;
  } sizes[] = {{"BOOL", 1}, {"U8", 1},   {"I8", 1},  {"I16", 2}, {"U16", 2},
               {"F16", 2},  {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},
               {"F64", 8},  {"I64", 8},  {"U64", 8}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (strcmp(sizes[i].name, d) == 0)
      return sizes[i].size;
  return 0;
}

static uint64_t elements_of(const st_tensor *t) {
  uint64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= (uint64_t)t->shape[i];
  return n;
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void encode(const st_tensor *t, unsigned char *out) {
  uint64_t n = elements_of(t);
  size_t size = st_dtype_size(t->dtype);
  for (uint64_t i = 0; i < n; i++) {
    float f = t->values ? t->values[i] : 0.0f;
    unsigned char *p = out + i * size;
    if (!strcmp(t->dtype, "F32")) {
      uint32_t b;
      memcpy(&b, &f, 4);
      put_le(p, b, 4);
    } else if (!strcmp(t->dtype, "F16"))
      put_le(p, float_to_half(f), 2);
    else if (!strcmp(t->dtype, "BF16"))
      put_le(p, float_to_bf16(f), 2);
    else if (!strcmp(t->dtype, "F64")) {
      double d = f;
      uint64_t b;
      memcpy(&b, &d, 8);
      put_le(p, b, 8);
    } else
      memset(p, 0, size);
  }
}

int st_build(const st_tensor *tensors, size_t count, char **header,
             size_t *header_len, unsigned char **data, size_t *data_len) {
  size_t cap = 256 + count * 512, used = 0;
  char *h = malloc(cap);
  uint64_t total = 0;
  for (size_t i = 0; i < count; i++)
    total += elements_of(&tensors[i]) * st_dtype_size(tensors[i].dtype);
  unsigned char *d = malloc(total + 1);
  if (!h || !d) {
    free(h);
    free(d);
    return -1;
  }
  used += (size_t)snprintf(h + used, cap - used,
                           "{\"__metadata__\":{\"format\":\"pt\"}");
  uint64_t offset = 0;
  for (size_t i = 0; i < count; i++) {
    const st_tensor *t = &tensors[i];
    uint64_t bytes = elements_of(t) * st_dtype_size(t->dtype);
    used += (size_t)snprintf(h + used, cap - used,
                             ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
                             t->dtype);
    for (int k = 0; k < t->ndim; k++)
      used += (size_t)snprintf(h + used, cap - used, "%s%lld", k ? "," : "",
                               (long long)t->shape[k]);
    used += (size_t)snprintf(
        h + used, cap - used, "],\"data_offsets\":[%llu,%llu]}",
        (unsigned long long)offset, (unsigned long long)(offset + bytes));
    encode(t, d + offset);
    offset += bytes;
  }
  used += (size_t)snprintf(h + used, cap - used, "}");
  while (used % 8 != 0)
    h[used++] = ' ';
  *header = h;
  *header_len = used;
  *data = d;
  *data_len = (size_t)total;
  return 0;
}

int st_write_raw(const char *path, uint64_t declared_len, const char *header,
                 size_t header_len, const void *data, size_t data_len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  unsigned char len[8];
  put_le(len, declared_len, 8);
  int ok = fwrite(len, 1, 8, f) == 8 &&
           fwrite(header, 1, header_len, f) == header_len &&
           (data_len == 0 || fwrite(data, 1, data_len, f) == data_len);
  return fclose(f) == 0 && ok ? 0 : -1;
}

int st_write(const char *path, const st_tensor *tensors, size_t count) {
  char *header;
  unsigned char *data;
  size_t hl, dl;
  if (st_build(tensors, count, &header, &hl, &data, &dl) != 0)
    return -1;
  int rc = st_write_raw(path, hl, header, hl, data, dl);
  free(header);
  free(data);
  return rc;
}
