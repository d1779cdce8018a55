/* Fuzz target: the safetensors parser (src/layers/safetensors.c, from memory),
 * then a lookup and a float conversion of every tensor it accepts. */
#include "fuzz.h"
#include "layers/safetensors.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dcn_st_header h;
  char err[256];
  if (dcn_st_parse(data, size, &h, err, sizeof err) != DCNV4_SUCCESS) {
    FUZZ_CHECK(err[0] != '\0');
    FUZZ_CHECK(h.tensors == NULL && h.count == 0);
    return 0;
  }
  FUZZ_CHECK(h.data_start + h.data_size == size);
  for (size_t i = 0; i < h.count; i++) {
    const dcn_st_tensor *t = &h.tensors[i];
    FUZZ_CHECK(dcn_st_find(&h, t->name) == t);
    FUZZ_CHECK(t->begin <= t->end && t->end <= h.data_size);
    if (dcn_st_is_float(t->dtype) && t->elements <= (1u << 20)) {
      float *out = malloc(t->elements ? t->elements * sizeof *out : 1);
      dcn_st_to_float(t, data + h.data_start + t->begin, out);
      free(out);
    }
  }
  dcn_st_free(&h);
  return 0;
}
