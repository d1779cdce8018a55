/* What every layer kind shares: the weight table (set by key, loaded from
 * safetensors), scratch plans bound as sub-buffers, and the generic layer
 * calls of the public API. */
#include "layers/layer.h"
#include "core/fault.h"
#include "layers/safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ layer */

dcnv4_status dcn_layer_alloc(dcnv4_context *ctx, dcnv4_layer_kind kind,
                             dcnv4_dtype dtype, dcnv4_layer **out) {
  cl_uint align_bits = 0;
  if (clGetDeviceInfo(ctx->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN,
                      sizeof align_bits, &align_bits, NULL) != CL_SUCCESS)
    return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                    "cannot query the device's sub-buffer alignment");
  dcnv4_layer *layer = dcn_calloc(1, sizeof *layer);
  if (!layer)
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  layer->ctx = ctx;
  layer->kind = kind;
  layer->dtype = dtype;
  /* Regions start at 256 bytes at least: aligned for any vector load. */
  layer->align = align_bits / 8 > 256 ? align_bits / 8 : 256;
  *out = layer;
  return DCNV4_SUCCESS;
}

void dcnv4_layer_destroy(dcnv4_layer *layer) {
  if (!layer)
    return;
  for (size_t i = 0; i < layer->weight_count; i++) {
    if (layer->weights[i].buffer)
      clReleaseMemObject(layer->weights[i].buffer);
    if (layer->weights[i].buffer16)
      clReleaseMemObject(layer->weights[i].buffer16);
  }
  dcn_free(layer);
}

dcnv4_layer_kind dcnv4_layer_get_kind(const dcnv4_layer *layer) {
  return layer ? layer->kind : DCNV4_LAYER_DCNV4;
}

dcnv4_dtype dcnv4_layer_get_dtype(const dcnv4_layer *layer) {
  return layer ? layer->dtype : DCNV4_FLOAT32;
}

void dcn_shape_string(int ndim, const int64_t *shape, char *out, size_t size) {
  size_t used = (size_t)snprintf(out, size, "(");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(out + used, size - used, "%s%lld", i ? ", " : "",
                             (long long)shape[i]);
  if (used < size)
    snprintf(out + used, size - used, ndim == 1 ? ",)" : ")");
}

dcnv4_status dcn_layer_add_weight(dcnv4_layer *layer, const char *key, int ndim,
                                  const int64_t *shape,
                                  dcn_weight_pack_fn pack) {
  dcnv4_context *ctx = layer->ctx;
  if (layer->weight_count >= DCN_LAYER_MAX_WEIGHTS ||
      ndim > DCN_WEIGHT_MAX_DIMS)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "internal: too many weights or dimensions");
  dcn_weight *w = &layer->weights[layer->weight_count];
  memset(w, 0, sizeof *w);
  w->key = key;
  w->ndim = ndim;
  w->pack = pack;
  uint64_t elements = 1;
  for (int i = 0; i < ndim; i++) {
    w->shape[i] = shape[i];
    if (shape[i] < 1 || !dcn_mul_u64(elements, (uint64_t)shape[i], &elements))
      return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                      "the weight %s is too large", key);
  }
  w->elements = elements;
  size_t bytes;
  if (!dcn_bytes(elements, sizeof(cl_float), &bytes))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "the weight %s is too large", key);
  cl_int err;
  w->buffer =
      dcn_clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, bytes, NULL, &err);
  if (!w->buffer)
    return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                    "allocating %zu bytes for the weight %s failed: %s", bytes,
                    key, dcn_cl_error_name(err));
  /* Counted now, so that destroy releases what was allocated. */
  layer->weight_count++;
  if (ndim == 2 && layer->dtype != DCNV4_FLOAT32) {
    const size_t half_bytes = bytes / 2;
    w->buffer16 = dcn_clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, half_bytes,
                                     NULL, &err);
    if (!w->buffer16)
      return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                      "allocating %zu bytes for the weight %s failed: %s",
                      half_bytes, key, dcn_cl_error_name(err));
  }
  return DCNV4_SUCCESS;
}

dcn_weight *dcn_layer_find_weight(dcnv4_layer *layer, const char *key) {
  for (size_t i = 0; i < layer->weight_count; i++)
    if (strcmp(layer->weights[i].key, key) == 0)
      return &layer->weights[i];
  return NULL;
}

cl_mem dcn_layer_weight_buffer(dcnv4_layer *layer, const char *key) {
  dcn_weight *w = dcn_layer_find_weight(layer, key);
  return w ? w->buffer : NULL;
}

cl_mem dcn_layer_gemm_weight(dcnv4_layer *layer, const char *key,
                             dcnv4_dtype dtype) {
  dcn_weight *w = dcn_layer_find_weight(layer, key);
  return !w ? NULL : dtype == DCNV4_FLOAT32 ? w->buffer : w->buffer16;
}

const char *dcnv4_layer_missing_weight(const dcnv4_layer *layer) {
  if (!layer)
    return NULL;
  for (size_t i = 0; i < layer->weight_count; i++)
    if (!layer->weights[i].set)
      return layer->weights[i].key;
  return NULL;
}

dcnv4_status dcn_layer_check_complete(dcnv4_layer *layer) {
  const char *missing = dcnv4_layer_missing_weight(layer);
  if (missing)
    return dcn_fail(layer->ctx, DCNV4_ERROR_MISSING_WEIGHT,
                    "the weight %s was never set", missing);
  return DCNV4_SUCCESS;
}

size_t dcnv4_layer_weight_count(const dcnv4_layer *layer) {
  return layer ? layer->weight_count : 0;
}

dcnv4_status dcnv4_layer_weight_info(const dcnv4_layer *layer, size_t index,
                                     dcnv4_weight_info *info) {
  if (!layer)
    return DCNV4_ERROR_NULL_POINTER;
  if (!info)
    return dcn_fail(layer->ctx, DCNV4_ERROR_NULL_POINTER, "info is NULL");
  if (index >= layer->weight_count)
    return dcn_fail(layer->ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "weight index %zu is out of range (the layer has %zu)",
                    index, layer->weight_count);
  const dcn_weight *w = &layer->weights[index];
  memset(info, 0, sizeof *info);
  info->key = w->key;
  info->ndim = w->ndim;
  for (int i = 0; i < w->ndim; i++)
    info->shape[i] = w->shape[i];
  info->elements = w->elements;
  info->is_set = w->set ? 1 : 0;
  return DCNV4_SUCCESS;
}

/* ------------------------------------------------- setting weights */

/* Rounds to the nearest fp16 value (ties to even), as a float. */
static float round_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = x & 0x80000000u, ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) /* infinity or NaN */
    return f;
  if (ax >= 0x477ff000u) /* rounds to >= 65520: infinity */
    return sign ? -INFINITY : INFINITY;
  float a;
  memcpy(&a, &ax, 4);
  if (ax < 0x38800000u) /* subnormal half: multiples of 2^-24 */
    a = ldexpf(rintf(ldexpf(a, 24)), -24);
  else {
    /* Drop 13 mantissa bits with ties to even. */
    uint32_t r = (ax + 0x0fffu + ((ax >> 13) & 1u)) & ~0x1fffu;
    memcpy(&a, &r, 4);
  }
  return sign ? -a : a;
}

static float round_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return f;
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&f, &u, 4);
  return f;
}

/* The fp16 bits of a float that is an fp16 value (round_to_half's). */
static uint16_t half_bits(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) /* infinity, or a quiet NaN */
    return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
  if (ax < 0x38800000u) { /* subnormal or zero: multiples of 2^-24 */
    float a;
    memcpy(&a, &ax, 4);
    return (uint16_t)(sign | (uint16_t)ldexpf(a, 24));
  }
  return (uint16_t)(sign | (((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3ffu));
}

/* The bf16 bits of a float that is a bf16 value (NaN stays NaN). */
static uint16_t bf16_bits(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  return (uint16_t)((x >> 16) | ((x & 0x7fffffffu) > 0x7f800000u ? 0x40u : 0u));
}

dcnv4_status dcn_write_16bit(dcnv4_context *ctx, cl_mem buffer,
                             dcnv4_dtype dtype, const float *values,
                             uint64_t count) {
  uint16_t *bits = dcn_malloc((size_t)count * sizeof *bits + 1);
  if (!bits)
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  for (uint64_t i = 0; i < count; i++)
    bits[i] =
        dtype == DCNV4_FLOAT16 ? half_bits(values[i]) : bf16_bits(values[i]);
  cl_int err = dcn_clEnqueueWriteBuffer(ctx->queue, buffer, CL_TRUE, 0,
                                        (size_t)count * sizeof *bits, bits, 0,
                                        NULL, NULL);
  dcn_free(bits);
  if (err != CL_SUCCESS)
    return dcn_fail_cl(ctx, err,
                       "writing a weight's 16-bit copy (clEnqueueWriteBuffer)");
  return DCNV4_SUCCESS;
}

/* Rounds `data` to the layer's dtype, packs it into the device layout and
 * writes it (blocking), and its 16-bit copy where it has one. */
static dcnv4_status write_weight(dcnv4_layer *layer, dcn_weight *w,
                                 const float *data) {
  dcnv4_context *ctx = layer->ctx;
  size_t bytes = (size_t)w->elements * sizeof(float);
  float *rounded = dcn_malloc(bytes);
  float *packed = w->pack ? dcn_malloc(bytes) : NULL;
  if (!rounded || (w->pack && !packed)) {
    dcn_free(rounded);
    dcn_free(packed);
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  }
  for (uint64_t i = 0; i < w->elements; i++)
    rounded[i] = layer->dtype == DCNV4_FLOAT16    ? round_to_half(data[i])
                 : layer->dtype == DCNV4_BFLOAT16 ? round_to_bf16(data[i])
                                                  : data[i];
  if (w->pack)
    w->pack(w, rounded, packed);
  const float *values = packed ? packed : rounded;
  cl_int err = dcn_clEnqueueWriteBuffer(ctx->queue, w->buffer, CL_TRUE, 0,
                                        bytes, values, 0, NULL, NULL);
  dcnv4_status st = DCNV4_SUCCESS;
  if (err != CL_SUCCESS)
    st = dcn_fail_cl(ctx, err, "writing a weight (clEnqueueWriteBuffer)");
  else if (w->buffer16)
    st = dcn_write_16bit(ctx, w->buffer16, layer->dtype, values, w->elements);
  dcn_free(rounded);
  dcn_free(packed);
  if (st == DCNV4_SUCCESS)
    w->set = true;
  return st;
}

/* "a, b, c" (the layer's keys) for messages. */
static void list_keys(const dcnv4_layer *layer, char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < layer->weight_count && used < size; i++)
    used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                             layer->weights[i].key);
}

static dcnv4_status unknown_key(dcnv4_layer *layer, const char *what,
                                const char *key) {
  char keys[640];
  list_keys(layer, keys, sizeof keys);
  return dcn_fail(layer->ctx, DCNV4_ERROR_INVALID_WEIGHT,
                  "%s\"%.200s\" is not a weight of this layer (its weights: "
                  "%s)",
                  what, key, keys);
}

static bool same_shape(const dcn_weight *w, int ndim, const int64_t *shape) {
  if (ndim != w->ndim)
    return false;
  for (int i = 0; i < ndim; i++)
    if (shape[i] != w->shape[i])
      return false;
  return true;
}

static dcnv4_status wrong_shape(dcnv4_layer *layer, const char *what,
                                const dcn_weight *w, int ndim,
                                const int64_t *shape) {
  char want[128], got[400];
  dcn_shape_string(w->ndim, w->shape, want, sizeof want);
  dcn_shape_string(ndim, shape, got, sizeof got);
  return dcn_fail(layer->ctx, DCNV4_ERROR_INVALID_WEIGHT,
                  "%s%s: expected shape %s, given %s", what, w->key, want, got);
}

dcnv4_status dcnv4_layer_set_weight(dcnv4_layer *layer, const char *key,
                                    const float *data, const int64_t *shape,
                                    int ndim) {
  if (!layer)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_context *ctx = layer->ctx;
  if (!key)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "key is NULL");
  dcn_weight *w = dcn_layer_find_weight(layer, key);
  if (!w)
    return unknown_key(layer, "", key);
  if (!data)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "data for %s is NULL", key);
  if (ndim < 0 || ndim > 32)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_WEIGHT,
                    "%s: ndim is %d; expected %d", key, ndim, w->ndim);
  if (ndim > 0 && !shape)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "shape for %s is NULL", key);
  if (!same_shape(w, ndim, shape))
    return wrong_shape(layer, "", w, ndim, shape);
  return write_weight(layer, w, data);
}

/* ---------------------------------------------------- safetensors */

/* Reads exactly `size` bytes at `offset`; false on any shortfall. */
static bool read_at(FILE *f, uint64_t offset, void *buf, size_t size) {
  if (offset > (uint64_t)INT64_MAX || fseeko(f, (off_t)offset, SEEK_SET) != 0)
    return false;
  return fread(buf, 1, size, f) == size;
}

/* Opens `path` and parses its header. */
static dcnv4_status open_safetensors(dcnv4_context *ctx, const char *path,
                                     FILE **file, dcn_st_header *h) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return dcn_fail(ctx, DCNV4_ERROR_IO, "cannot open %s: %s", path,
                    strerror(errno));
  struct stat info;
  if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) {
    fclose(f);
    return dcn_fail(ctx, DCNV4_ERROR_IO, "%s is not a regular file", path);
  }
  off_t size = -1;
  unsigned char prefix[8];
  if (fseeko(f, 0, SEEK_END) != 0 || (size = ftello(f)) < 0 ||
      !read_at(f, 0, prefix, size >= 8 ? 8 : 0)) {
    fclose(f);
    return dcn_fail(ctx, DCNV4_ERROR_IO, "cannot read %s", path);
  }
  if (size < 8) {
    fclose(f);
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_FILE,
                    "%s: %lld bytes are too few for a safetensors file", path,
                    (long long)size);
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | prefix[i];
  if (n > DCN_ST_MAX_HEADER || n > (uint64_t)size - 8) {
    fclose(f);
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_FILE,
                    "%s: the header length %llu exceeds the file (%lld bytes) "
                    "or the limit of %u",
                    path, (unsigned long long)n, (long long)size,
                    DCN_ST_MAX_HEADER);
  }
  char *json = dcn_malloc((size_t)n + 1);
  if (!json) {
    fclose(f);
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  }
  if (!read_at(f, 8, json, (size_t)n)) {
    dcn_free(json);
    fclose(f);
    return dcn_fail(ctx, DCNV4_ERROR_IO, "cannot read %s", path);
  }
  char err[512];
  dcnv4_status st = dcn_st_parse_header(json, (size_t)n, (uint64_t)size - 8 - n,
                                        h, err, sizeof err);
  dcn_free(json);
  if (st != DCNV4_SUCCESS) {
    fclose(f);
    return dcn_fail(ctx, st, "%s: %s", path, err);
  }
  h->data_start = 8 + n;
  *file = f;
  return DCNV4_SUCCESS;
}

/* Checks that the file holds exactly the layer's weights under `prefix`,
 * with the right shapes and float dtypes; finds each weight's tensor. */
static dcnv4_status match_tensors(dcnv4_layer *layer, const char *path,
                                  const char *prefix, const dcn_st_header *h,
                                  const dcn_st_tensor **found) {
  dcnv4_context *ctx = layer->ctx;
  size_t plen = strlen(prefix);
  char what[600];
  snprintf(what, sizeof what, "%.400s: tensor ", path);
  for (size_t i = 0; i < h->count; i++) {
    const char *name = h->tensors[i].name;
    if (strncmp(name, prefix, plen) == 0 &&
        !dcn_layer_find_weight(layer, name + plen))
      return unknown_key(layer, what, name);
  }
  char *full = NULL;
  for (size_t i = 0; i < layer->weight_count; i++) {
    const dcn_weight *w = &layer->weights[i];
    dcn_free(full);
    full = dcn_asprintf("%s%s", prefix, w->key);
    if (!full)
      return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                      "out of host memory");
    const dcn_st_tensor *t = dcn_st_find(h, full);
    dcnv4_status st = DCNV4_SUCCESS;
    if (!t)
      st = dcn_fail(ctx, DCNV4_ERROR_MISSING_WEIGHT,
                    "%.400s has no tensor \"%.200s\" (the weight %s)", path,
                    full, w->key);
    else if (!dcn_st_is_float(t->dtype))
      st = dcn_fail(ctx, DCNV4_ERROR_INVALID_WEIGHT,
                    "%.400s: tensor \"%.200s\" is %s; F32, F16, BF16 or F64 "
                    "is needed",
                    path, full, dcn_st_dtype_name(t->dtype));
    else if (!same_shape(w, t->ndim, t->shape)) {
      snprintf(what, sizeof what, "%.400s: tensor %.100s", path, prefix);
      st = wrong_shape(layer, what, w, t->ndim, t->shape);
    }
    if (st != DCNV4_SUCCESS) {
      dcn_free(full);
      return st;
    }
    found[i] = t;
  }
  dcn_free(full);
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_layer_load_safetensors(dcnv4_layer *layer, const char *path,
                                          const char *key_prefix) {
  if (!layer)
    return DCNV4_ERROR_NULL_POINTER;
  dcnv4_context *ctx = layer->ctx;
  if (!path)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "path is NULL");
  const char *prefix = key_prefix ? key_prefix : "";
  FILE *f = NULL;
  dcn_st_header h;
  dcnv4_status st = open_safetensors(ctx, path, &f, &h);
  if (st != DCNV4_SUCCESS)
    return st;
  const dcn_st_tensor *found[DCN_LAYER_MAX_WEIGHTS];
  float *values[DCN_LAYER_MAX_WEIGHTS] = {NULL};
  unsigned char *raw = NULL;
  st = match_tensors(layer, path, prefix, &h, found);
  /* Read and convert every tensor before setting any weight. */
  for (size_t i = 0; i < layer->weight_count && st == DCNV4_SUCCESS; i++) {
    const dcn_st_tensor *t = found[i];
    size_t bytes = (size_t)(t->end - t->begin);
    raw = dcn_malloc(bytes);
    values[i] = dcn_malloc((size_t)t->elements * sizeof(float));
    if (!raw || !values[i])
      st = dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    else if (!read_at(f, h.data_start + t->begin, raw, bytes))
      st = dcn_fail(ctx, DCNV4_ERROR_IO, "%s: cannot read tensor \"%.200s\"",
                    path, t->name);
    else
      dcn_st_to_float(t, raw, values[i]);
    dcn_free(raw);
    raw = NULL;
  }
  for (size_t i = 0; i < layer->weight_count && st == DCNV4_SUCCESS; i++)
    st = write_weight(layer, &layer->weights[i], values[i]);
  for (size_t i = 0; i < layer->weight_count; i++)
    dcn_free(values[i]);
  dcn_st_free(&h);
  fclose(f);
  return st;
}

dcnv4_status dcn_st_open(dcnv4_context *ctx, const char *path, FILE **file,
                         dcn_st_header *header) {
  return open_safetensors(ctx, path, file, header);
}

bool dcn_st_read(FILE *file, uint64_t offset, void *buf, size_t size) {
  return read_at(file, offset, buf, size);
}

/* ------------------------------------------------------ scratch plans */

void dcn_scratch_init(dcn_scratch_plan *plan, size_t align) {
  memset(plan, 0, sizeof *plan);
  plan->align = align ? align : 1;
}

int dcn_scratch_add(dcn_scratch_plan *plan, size_t bytes) {
  if (plan->count >= DCN_SCRATCH_MAX_REGIONS)
    return -1;
  size_t rem = plan->total % plan->align;
  size_t pad = rem ? plan->align - rem : 0;
  if (plan->total > SIZE_MAX - pad || plan->total + pad > SIZE_MAX - bytes)
    return -1;
  size_t offset = plan->total + pad;
  plan->offset[plan->count] = offset;
  plan->bytes[plan->count] = bytes;
  plan->total = offset + bytes;
  return (int)plan->count++;
}

dcnv4_status dcn_scratch_check_user(dcnv4_context *ctx, cl_mem workspace,
                                    size_t bytes) {
  dcnv4_status st = dcn_check_buffer(ctx, workspace, "workspace", bytes);
  if (st != DCNV4_SUCCESS)
    return st;
  cl_mem_flags flags = 0;
  if (clGetMemObjectInfo(workspace, CL_MEM_FLAGS, sizeof flags, &flags, NULL) !=
      CL_SUCCESS)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                    "workspace is not a valid OpenCL memory object");
  if (flags & (CL_MEM_READ_ONLY | CL_MEM_WRITE_ONLY))
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                    "workspace must be a read-write buffer");
  return DCNV4_SUCCESS;
}

void dcn_scratch_release(cl_mem *regions, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (regions[i]) {
      clReleaseMemObject(regions[i]);
      regions[i] = NULL;
    }
}

/* The context's region buffers, grown where the plan needs more. */
static dcnv4_status bind_context_regions(dcnv4_context *ctx,
                                         const dcn_scratch_plan *plan,
                                         cl_mem *regions) {
  for (size_t i = 0; i < plan->count; i++) {
    if (ctx->region_bytes[i] < plan->bytes[i]) {
      cl_int err;
      cl_mem grown = dcn_clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE,
                                        plan->bytes[i], NULL, &err);
      if (!grown) {
        dcn_scratch_release(regions, i);
        return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                        "allocating %zu bytes of scratch memory failed: %s",
                        plan->bytes[i], dcn_cl_error_name(err));
      }
      /* The old buffer lives on until commands already using it finish. */
      if (ctx->region[i])
        clReleaseMemObject(ctx->region[i]);
      ctx->region[i] = grown;
      ctx->region_bytes[i] = plan->bytes[i];
    }
    regions[i] = ctx->region[i];
    clRetainMemObject(regions[i]);
  }
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_scratch_bind(dcnv4_context *ctx, cl_mem workspace,
                              const dcn_scratch_plan *plan, cl_mem *regions) {
  for (size_t i = 0; i < plan->count; i++)
    regions[i] = NULL;
  if (plan->count == 0)
    return DCNV4_SUCCESS;
  cl_mem base = workspace;
  size_t origin = 0;
  dcnv4_status st;
  if (workspace) {
    if ((st = dcn_scratch_check_user(ctx, workspace, plan->total)))
      return st;
    /* A sub-buffer cannot be divided further: take regions of its parent,
     * starting at its (already aligned) offset. */
    cl_mem parent = NULL;
    if (clGetMemObjectInfo(workspace, CL_MEM_ASSOCIATED_MEMOBJECT,
                           sizeof parent, &parent, NULL) != CL_SUCCESS ||
        (parent && clGetMemObjectInfo(workspace, CL_MEM_OFFSET, sizeof origin,
                                      &origin, NULL) != CL_SUCCESS))
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                      "cannot query the workspace's parent buffer");
    if (parent)
      base = parent;
  } else
    return bind_context_regions(ctx, plan, regions);
  for (size_t i = 0; i < plan->count; i++) {
    cl_buffer_region region = {origin + plan->offset[i], plan->bytes[i]};
    cl_int err;
    regions[i] = dcn_clCreateSubBuffer(base, 0, CL_BUFFER_CREATE_TYPE_REGION,
                                       &region, &err);
    if (!regions[i]) {
      dcn_scratch_release(regions, i);
      return dcn_fail(ctx, DCNV4_ERROR_OPENCL,
                      "creating a sub-buffer of the workspace (offset %zu, "
                      "%zu bytes) failed: %s",
                      region.origin, region.size, dcn_cl_error_name(err));
    }
  }
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_check_layer_config(dcnv4_context *ctx, dcnv4_dtype dtype,
                                    const dcn_config_range *ranges,
                                    size_t count) {
  if (dcnv4_dtype_size(dtype) == 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER, "unknown dtype %d",
                    (int)dtype);
  for (size_t i = 0; i < count; i++)
    if (ranges[i].value < ranges[i].min || ranges[i].value > ranges[i].max)
      return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                      "%s is %d; it must be in [%d, %d]", ranges[i].name,
                      (int)ranges[i].value, (int)ranges[i].min,
                      (int)ranges[i].max);
  return DCNV4_SUCCESS;
}

/* ---------------------------------------------------- a layer's calls */

dcnv4_status dcn_layer_check_create(dcnv4_context *ctx, dcnv4_layer **out,
                                    bool has_config) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (!out)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "layer pointer is NULL");
  *out = NULL;
  if (!has_config)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "config is NULL");
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_layer_create(dcnv4_context *ctx, dcnv4_layer_kind kind,
                              dcnv4_dtype dtype, const dcn_layer_config *config,
                              const dcn_weight_decl *weights, size_t count,
                              dcnv4_layer **out) {
  dcnv4_layer *layer = NULL;
  dcnv4_status st = dcn_layer_alloc(ctx, kind, dtype, &layer);
  if (st != DCNV4_SUCCESS)
    return st;
  layer->config = *config;
  for (size_t i = 0; i < count; i++) {
    const dcn_weight_decl *w = &weights[i];
    if (w->present && (st = dcn_layer_add_weight(layer, w->key, w->ndim,
                                                 w->shape, w->pack))) {
      dcnv4_layer_destroy(layer);
      return st;
    }
  }
  *out = layer;
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_layer_check_kind(const dcnv4_layer *layer,
                                  dcnv4_layer_kind kind) {
  if (!layer)
    return DCNV4_ERROR_NULL_POINTER;
  if (layer->kind != kind)
    return dcn_fail(layer->ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "this call needs a %s layer",
                    kind == DCNV4_LAYER_DCNV4 ? "DCNv4" : "FlashDeformAttn");
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_layer_check_size_call(const dcnv4_layer *layer,
                                       dcnv4_layer_kind kind,
                                       const size_t *bytes) {
  if (!layer)
    return DCNV4_ERROR_NULL_POINTER;
  if (!bytes)
    return dcn_fail(layer->ctx, DCNV4_ERROR_NULL_POINTER, "bytes is NULL");
  return dcn_layer_check_kind(layer, kind);
}

dcnv4_status dcn_layer_check_ready(dcnv4_layer *layer, cl_uint num_wait,
                                   const cl_event *wait) {
  dcnv4_status st = dcn_layer_check_complete(layer);
  if (st != DCNV4_SUCCESS)
    return st;
  return dcn_check_wait_list(layer->ctx, num_wait, wait);
}

dcnv4_status dcn_layer_check_buffers(dcnv4_context *ctx,
                                     const dcn_layer_buffer *buffers,
                                     size_t count, cl_mem workspace,
                                     size_t workspace_bytes) {
  cl_mem bufs[DCN_LAYER_MAX_BUFFERS + 1];
  const char *names[DCN_LAYER_MAX_BUFFERS + 1];
  bool readonly[DCN_LAYER_MAX_BUFFERS + 1];
  dcnv4_status st;
  if (count > DCN_LAYER_MAX_BUFFERS)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "internal: too many buffers");
  for (size_t i = 0; i < count; i++) {
    const dcn_layer_buffer *b = &buffers[i];
    if ((b->buffer || !b->optional) &&
        (st = dcn_check_buffer(ctx, b->buffer, b->name, b->bytes)))
      return st;
    bufs[i] = b->buffer;
    names[i] = b->name;
    readonly[i] = b->input;
  }
  bufs[count] = workspace;
  names[count] = "workspace";
  readonly[count] = false;
  if ((st = dcn_check_no_alias(ctx, bufs, names, readonly, count + 1)))
    return st;
  if (workspace)
    return dcn_scratch_check_user(ctx, workspace, workspace_bytes);
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_layer_begin_enqueue(dcnv4_context *ctx, cl_mem workspace,
                                     const dcn_scratch_plan *plan,
                                     cl_mem *regions, cl_uint num_wait,
                                     const cl_event *wait) {
  dcnv4_status st = dcn_scratch_bind(ctx, workspace, plan, regions);
  if (st != DCNV4_SUCCESS || num_wait == 0)
    return st;
  cl_int err =
      dcn_clEnqueueBarrierWithWaitList(ctx->queue, num_wait, wait, NULL);
  if (err != CL_SUCCESS) {
    dcn_scratch_release(regions, plan->count);
    return dcn_fail_cl(ctx, err, "clEnqueueBarrierWithWaitList");
  }
  return DCNV4_SUCCESS;
}
