/* safetensors header parsing and tensor conversion (see safetensors.h). */
#include "layers/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Integers above 2^53 are not exact in cJSON's doubles. */
#define MAX_EXACT_INTEGER 9007199254740992.0

static const struct {
  dcn_st_dtype dtype;
  const char *name;
  size_t size;
} dtypes[] = {
    {DCN_ST_BOOL, "BOOL", 1},       {DCN_ST_U8, "U8", 1},
    {DCN_ST_I8, "I8", 1},           {DCN_ST_F8_E5M2, "F8_E5M2", 1},
    {DCN_ST_F8_E4M3, "F8_E4M3", 1}, {DCN_ST_I16, "I16", 2},
    {DCN_ST_U16, "U16", 2},         {DCN_ST_F16, "F16", 2},
    {DCN_ST_BF16, "BF16", 2},       {DCN_ST_I32, "I32", 4},
    {DCN_ST_U32, "U32", 4},         {DCN_ST_F32, "F32", 4},
    {DCN_ST_F64, "F64", 8},         {DCN_ST_I64, "I64", 8},
    {DCN_ST_U64, "U64", 8},
};

const char *dcn_st_dtype_name(dcn_st_dtype dtype) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (dtypes[i].dtype == dtype)
      return dtypes[i].name;
  return "?";
}

static size_t dtype_size(dcn_st_dtype dtype) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (dtypes[i].dtype == dtype)
      return dtypes[i].size;
  return 0;
}

bool dcn_st_is_float(dcn_st_dtype dtype) {
  return dtype == DCN_ST_F32 || dtype == DCN_ST_F16 || dtype == DCN_ST_BF16 ||
         dtype == DCN_ST_F64;
}

static dcnv4_status failf(char *err, size_t size, dcnv4_status status,
                          const char *fmt, ...) DCN_PRINTF(4, 5);
static dcnv4_status failf(char *err, size_t size, dcnv4_status status,
                          const char *fmt, ...) {
  if (err && size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
  }
  return status;
}

void dcn_st_free(dcn_st_header *h) {
  if (!h)
    return;
  for (size_t i = 0; i < h->count; i++)
    dcn_free(h->tensors[i].name);
  dcn_free(h->tensors);
  h->tensors = NULL;
  h->count = 0;
}

/* A JSON number that is an integer in [0, 2^53]. */
static bool json_u64(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v))
    return false;
  double d = v->valuedouble;
  if (!(d >= 0.0 && d <= MAX_EXACT_INTEGER) || d != floor(d))
    return false;
  *out = (uint64_t)d;
  return true;
}

/* Tensor names in messages: cut long ones. */
static const char *shown(const char *name, char *buf, size_t size) {
  size_t n = strlen(name);
  if (n < size)
    return name;
  snprintf(buf, size, "%.*s...", (int)(size - 4), name);
  return buf;
}

static dcnv4_status parse_tensor(const cJSON *entry, uint64_t data_size,
                                 dcn_st_tensor *t, char *err, size_t err_size) {
  char nb[96];
  const char *name = shown(entry->string, nb, sizeof nb);
  if (!cJSON_IsObject(entry))
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\" is not a JSON object", name);
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
  const cJSON *offsets =
      cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
  if (!dtype || !shape || !offsets || cJSON_GetArraySize(entry) != 3)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\" must have exactly the fields dtype, shape "
                 "and data_offsets",
                 name);
  if (!cJSON_IsString(dtype) || !dtype->valuestring)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\": dtype is not a string", name);
  bool known = false;
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (strcmp(dtype->valuestring, dtypes[i].name) == 0) {
      t->dtype = dtypes[i].dtype;
      known = true;
    }
  if (!known)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\": unknown dtype \"%.32s\"", name,
                 dtype->valuestring);
  if (!cJSON_IsArray(shape))
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\": shape is not an array", name);
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > DCN_ST_MAX_DIMS)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\" has %d dimensions; at most %d are supported",
                 name, ndim, DCN_ST_MAX_DIMS);
  t->ndim = ndim;
  uint64_t elements = 1;
  int d = 0;
  const cJSON *dim;
  cJSON_ArrayForEach(dim, shape) {
    uint64_t extent;
    if (!json_u64(dim, &extent))
      return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                   "tensor \"%s\": shape[%d] is not a non-negative integer",
                   name, d);
    if (!dcn_mul_u64(elements, extent, &elements))
      return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                   "tensor \"%s\": the element count overflows", name);
    t->shape[d++] = (int64_t)extent;
  }
  t->elements = elements;
  uint64_t bytes;
  if (!dcn_mul_u64(elements, dtype_size(t->dtype), &bytes))
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\": the byte size overflows", name);
  if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
      !json_u64(cJSON_GetArrayItem(offsets, 0), &t->begin) ||
      !json_u64(cJSON_GetArrayItem(offsets, 1), &t->end))
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\": data_offsets must be two non-negative "
                 "integers",
                 name);
  if (t->begin > t->end || t->end > data_size)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\": data_offsets [%llu, %llu] do not lie within "
                 "the data section of %llu bytes",
                 name, (unsigned long long)t->begin, (unsigned long long)t->end,
                 (unsigned long long)data_size);
  if (t->end - t->begin != bytes)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\": data_offsets span %llu bytes but its shape "
                 "and dtype %s need %llu",
                 name, (unsigned long long)(t->end - t->begin),
                 dcn_st_dtype_name(t->dtype), (unsigned long long)bytes);
  return DCNV4_SUCCESS;
}

static dcnv4_status check_metadata(const cJSON *meta, char *err,
                                   size_t err_size) {
  if (!cJSON_IsObject(meta))
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "__metadata__ is not a JSON object");
  const cJSON *v;
  cJSON_ArrayForEach(v, meta) {
    if (!cJSON_IsString(v))
      return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                   "__metadata__ values must be strings");
  }
  return DCNV4_SUCCESS;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const dcn_st_tensor *)a)->name,
                ((const dcn_st_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b) {
  const dcn_st_tensor *x = *(const dcn_st_tensor *const *)a;
  const dcn_st_tensor *y = *(const dcn_st_tensor *const *)b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

/* Names unique; tensors tile [0, data_size). */
static dcnv4_status check_layout(const dcn_st_header *h, char *err,
                                 size_t err_size) {
  char nb[96], nb2[96];
  for (size_t i = 1; i < h->count; i++)
    if (strcmp(h->tensors[i - 1].name, h->tensors[i].name) == 0)
      return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                   "tensor \"%s\" appears twice in the header",
                   shown(h->tensors[i].name, nb, sizeof nb));
  const dcn_st_tensor **order =
      dcn_malloc((h->count ? h->count : 1) * sizeof *order);
  if (!order)
    return failf(err, err_size, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                 "out of host memory");
  for (size_t i = 0; i < h->count; i++)
    order[i] = &h->tensors[i];
  qsort(order, h->count, sizeof *order, by_offset);
  dcnv4_status st = DCNV4_SUCCESS;
  uint64_t expected = 0;
  for (size_t i = 0; i < h->count && st == DCNV4_SUCCESS; i++) {
    const dcn_st_tensor *t = order[i];
    if (t->begin < expected)
      st = failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "tensor \"%s\" (bytes %llu to %llu) overlaps tensor \"%s\"",
                 shown(t->name, nb, sizeof nb), (unsigned long long)t->begin,
                 (unsigned long long)t->end,
                 shown(order[i - 1]->name, nb2, sizeof nb2));
    else if (t->begin > expected)
      st = failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "bytes %llu to %llu of the data section belong to no tensor",
                 (unsigned long long)expected, (unsigned long long)t->begin);
    expected = t->end;
  }
  if (st == DCNV4_SUCCESS && expected != h->data_size)
    st = failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
               "the data section holds %llu bytes but its tensors end at "
               "byte %llu",
               (unsigned long long)h->data_size, (unsigned long long)expected);
  dcn_free(order);
  return st;
}

dcnv4_status dcn_st_parse_header(const char *json, size_t size,
                                 uint64_t data_size, dcn_st_header *out,
                                 char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  if (size > DCN_ST_MAX_HEADER)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "the header is %zu bytes long; at most %u are allowed", size,
                 DCN_ST_MAX_HEADER);
  if (memchr(json, '\0', size))
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "the header holds a zero byte");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, size, &end, 0);
  if (!root)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "the header is not valid JSON");
  dcnv4_status st = DCNV4_SUCCESS;
  for (const char *p = end; p < json + size; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      st = failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "the header has data after its JSON value (byte %zu)",
                 (size_t)(p - json));
      break;
    }
  if (st == DCNV4_SUCCESS && !cJSON_IsObject(root))
    st = failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
               "the header is not a JSON object");
  size_t capacity = 0;
  if (st == DCNV4_SUCCESS) {
    capacity = (size_t)cJSON_GetArraySize(root);
    out->tensors = dcn_calloc(capacity ? capacity : 1, sizeof *out->tensors);
    if (!out->tensors)
      st = failf(err, err_size, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                 "out of host memory");
  }
  out->data_size = data_size;
  const cJSON *entry = st == DCNV4_SUCCESS ? root->child : NULL;
  for (; entry && st == DCNV4_SUCCESS; entry = entry->next) {
    if (!entry->string) {
      st = failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "the header has an entry without a name");
      break;
    }
    if (strcmp(entry->string, "__metadata__") == 0) {
      st = check_metadata(entry, err, err_size);
      continue;
    }
    if (out->count >= capacity)
      break; /* cannot happen: the array size counted every entry */
    dcn_st_tensor *t = &out->tensors[out->count];
    st = parse_tensor(entry, data_size, t, err, err_size);
    if (st != DCNV4_SUCCESS)
      break;
    t->name = dcn_strdup(entry->string);
    if (!t->name) {
      st = failf(err, err_size, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                 "out of host memory");
      break;
    }
    out->count++;
  }
  cJSON_Delete(root);
  if (st == DCNV4_SUCCESS) {
    qsort(out->tensors, out->count, sizeof *out->tensors, by_name);
    st = check_layout(out, err, err_size);
  }
  if (st != DCNV4_SUCCESS)
    dcn_st_free(out);
  return st;
}

static uint64_t load_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

dcnv4_status dcn_st_parse(const unsigned char *bytes, size_t size,
                          dcn_st_header *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  if (!bytes || size < 8)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "%zu bytes are too few for a safetensors file", size);
  uint64_t n = load_le(bytes, 8);
  if (n > DCN_ST_MAX_HEADER || n > size - 8)
    return failf(err, err_size, DCNV4_ERROR_INVALID_FILE,
                 "the header length %llu exceeds the file (%zu bytes) or the "
                 "limit of %u",
                 (unsigned long long)n, size, DCN_ST_MAX_HEADER);
  dcnv4_status st = dcn_st_parse_header((const char *)bytes + 8, (size_t)n,
                                        size - 8 - n, out, err, err_size);
  out->data_start = 8 + n;
  return st;
}

const dcn_st_tensor *dcn_st_find(const dcn_st_header *h, const char *name) {
  size_t lo = 0, hi = h->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(h->tensors[mid].name, name);
    if (c == 0)
      return &h->tensors[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static float half_bits_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    float f = ldexpf((float)mant, -24); /* zero or subnormal */
    return sign ? -f : f;
  }
  uint32_t bits = exp == 31 ? sign | 0x7f800000u | (mant << 13)
                            : sign | ((exp + 112u) << 23) | (mant << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

void dcn_st_to_float(const dcn_st_tensor *t, const unsigned char *raw,
                     float *out) {
  for (uint64_t i = 0; i < t->elements; i++) {
    switch (t->dtype) {
    case DCN_ST_F32: {
      uint32_t bits = (uint32_t)load_le(raw + 4 * i, 4);
      memcpy(&out[i], &bits, 4);
      break;
    }
    case DCN_ST_F16:
      out[i] = half_bits_to_float((uint16_t)load_le(raw + 2 * i, 2));
      break;
    case DCN_ST_BF16: {
      uint32_t bits = (uint32_t)load_le(raw + 2 * i, 2) << 16;
      memcpy(&out[i], &bits, 4);
      break;
    }
    case DCN_ST_F64: {
      uint64_t bits = load_le(raw + 8 * i, 8);
      double d;
      memcpy(&d, &bits, 8);
      /* Beyond the largest float (plus half an ulp) the value rounds to an
       * infinity; converting such a double is undefined in ISO C. */
      out[i] =
          fabs(d) >= 0x1.ffffffp127 ? (float)copysign(INFINITY, d) : (float)d;
      break;
    }
    default: out[i] = 0.0f; break;
    }
  }
}
