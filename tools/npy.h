/* Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0,
 * little-endian, C order). Strict: anything malformed is an error with a
 * message, never a crash. */
#ifndef DCNV4_NPY_H
#define DCNV4_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8

typedef enum npy_dtype {
  NPY_FLOAT16, /* '<f2' */
  NPY_FLOAT32, /* '<f4' */
  NPY_FLOAT64, /* '<f8' */
  NPY_UINT8,   /* '|u1' */
  NPY_BOOL,    /* '|b1' */
  NPY_INT32,   /* '<i4' */
  NPY_INT64    /* '<i8' */
} npy_dtype;

typedef struct npy_array {
  npy_dtype dtype;
  int ndim;
  int64_t shape[NPY_MAX_DIMS];
  uint64_t count; /* product of shape (1 for a 0-d array) */
  void *data;     /* count elements, owned */
} npy_array;

size_t npy_dtype_size(npy_dtype dtype);
const char *npy_dtype_descr(npy_dtype dtype);

/* Parses a whole file image. Returns 0, or -1 with a message in err. */
int npy_parse(const unsigned char *bytes, size_t size, npy_array *out,
              char *err, size_t err_size);
/* Reads `path`. Returns 0, or -1 with a message in err. */
int npy_read(const char *path, npy_array *out, char *err, size_t err_size);
/* Writes `count` elements of `dtype` with the given shape. */
int npy_write(const char *path, npy_dtype dtype, const void *data, int ndim,
              const int64_t *shape, char *err, size_t err_size);
void npy_free(npy_array *array);

/* Element i as a double, whatever the dtype. */
double npy_get(const npy_array *array, uint64_t i);
/* 1 when the shapes are equal. */
int npy_shape_equals(const npy_array *array, int ndim, const int64_t *shape);
/* "(2, 9, 9, 32)" */
void npy_shape_string(int ndim, const int64_t *shape, char *out, size_t size);

#endif
