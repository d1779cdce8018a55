/* A small safetensors writer for the tests: well-formed files from a list
 * of tensors, and raw files (any header text, any declared length) for the
 * corrupt-file cases. */
#ifndef DCNV4_ST_WRITER_H
#define DCNV4_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_tensor {
  const char *name;
  const char *dtype; /* "F32", "F16", "BF16", "F64", "I32", ... */
  int ndim;
  int64_t shape[8];
  const float *values; /* encoded to dtype (float dtypes; others: zeros) */
} st_tensor;

/* Bytes per element of a dtype name (0 if unknown). */
size_t st_dtype_size(const char *dtype);

/* Writes the tensors in order, header padded with spaces to a multiple of
 * 8, as safetensors.torch.save_file does. 0 on success. */
int st_write(const char *path, const st_tensor *tensors, size_t count);

/* The header text and data section st_write would produce (malloc'd). */
int st_build(const st_tensor *tensors, size_t count, char **header,
             size_t *header_len, unsigned char **data, size_t *data_len);

/* Writes `declared_len` as the 8-byte length, then header_len bytes of
 * `header`, then the data. 0 on success. */
int st_write_raw(const char *path, uint64_t declared_len, const char *header,
                 size_t header_len, const void *data, size_t data_len);

#endif
