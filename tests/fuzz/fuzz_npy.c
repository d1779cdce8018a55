/* Fuzz target: the .npy parser (tools/npy.c). */
#include "fuzz.h"
#include "npy.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  npy_array a;
  char err[256];
  if (npy_parse(data, size, &a, err, sizeof err) != 0) {
    FUZZ_CHECK(err[0] != '\0');
    return 0;
  }
  FUZZ_CHECK(a.ndim >= 0 && a.ndim <= NPY_MAX_DIMS);
  uint64_t count = 1;
  for (int i = 0; i < a.ndim; i++) {
    FUZZ_CHECK(a.shape[i] >= 0);
    count *= (uint64_t)a.shape[i];
  }
  FUZZ_CHECK(count == a.count);
  FUZZ_CHECK(a.count * npy_dtype_size(a.dtype) <= size);
  double sum = 0;
  for (uint64_t i = 0; i < a.count && i < 4096; i++)
    sum += npy_get(&a, i);
  (void)sum;
  char shape[256];
  npy_shape_string(a.ndim, a.shape, shape, sizeof shape);
  FUZZ_CHECK(npy_shape_equals(&a, a.ndim, a.shape));
  npy_free(&a);
  return 0;
}
