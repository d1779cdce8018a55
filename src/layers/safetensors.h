/* safetensors reader (the format of huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON header, then the data
 * section. The header maps tensor names to {"dtype", "shape",
 * "data_offsets": [begin, end]} (offsets relative to the data section) and
 * may hold a "__metadata__" object of strings.
 *
 * Validation is strict, as the reference implementation's: a sane header
 * length, a JSON object with nothing after it but spaces, no duplicate name,
 * known dtypes, non-negative integral shapes whose byte size is exactly
 * end - begin without overflow, and tensors that tile the data section
 * (sorted by offset, each begins where the previous ends, the last ends at
 * the end of the file). Anything else is DCNV4_ERROR_INVALID_FILE with a
 * message. */
#ifndef DCNV4_SAFETENSORS_H
#define DCNV4_SAFETENSORS_H

#include "core/internal.h"

#define DCN_ST_MAX_DIMS 16
/* The reference implementation's limit on the header's length. */
#define DCN_ST_MAX_HEADER 100000000u

typedef enum dcn_st_dtype {
  DCN_ST_BOOL,
  DCN_ST_U8,
  DCN_ST_I8,
  DCN_ST_F8_E5M2,
  DCN_ST_F8_E4M3,
  DCN_ST_I16,
  DCN_ST_U16,
  DCN_ST_F16,
  DCN_ST_BF16,
  DCN_ST_I32,
  DCN_ST_U32,
  DCN_ST_F32,
  DCN_ST_F64,
  DCN_ST_I64,
  DCN_ST_U64
} dcn_st_dtype;

typedef struct dcn_st_tensor {
  char *name;
  dcn_st_dtype dtype;
  int ndim;
  int64_t shape[DCN_ST_MAX_DIMS];
  uint64_t elements;
  uint64_t begin, end; /* byte range in the data section */
} dcn_st_tensor;

typedef struct dcn_st_header {
  dcn_st_tensor *tensors; /* sorted by name */
  size_t count;
  uint64_t data_start; /* file offset of the data section: 8 + N */
  uint64_t data_size;
} dcn_st_header;

/* Parses the JSON header (`json`, `size` bytes, need not end in a zero) of a
 * file whose data section holds `data_size` bytes. On failure returns the
 * status and a message in `err`; `out` then holds nothing to free. */
dcnv4_status dcn_st_parse_header(const char *json, size_t size,
                                 uint64_t data_size, dcn_st_header *out,
                                 char *err, size_t err_size);
/* Parses a whole file image held in memory (the entry for fuzzing). */
dcnv4_status dcn_st_parse(const unsigned char *bytes, size_t size,
                          dcn_st_header *out, char *err, size_t err_size);
void dcn_st_free(dcn_st_header *header);

/* The tensor `name`, or NULL. */
const dcn_st_tensor *dcn_st_find(const dcn_st_header *header, const char *name);
/* "F32", ... */
const char *dcn_st_dtype_name(dcn_st_dtype dtype);
/* Whether dcn_st_to_float converts this dtype (F32, F16, BF16, F64). */
bool dcn_st_is_float(dcn_st_dtype dtype);
/* Converts a float tensor's little-endian bytes (`t->end - t->begin` of
 * them) to `t->elements` floats. */
void dcn_st_to_float(const dcn_st_tensor *t, const unsigned char *raw,
                     float *out);

#endif /* DCNV4_SAFETENSORS_H */
