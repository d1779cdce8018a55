/* Fuzz target: meta.json parsing and the typed case readers
 * (tools/case_meta.c), which hand their parameters to the library's
 * validation. */
#include "case_meta.h"
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cJSON *root = NULL;
  case_error e;
  if (meta_parse((const char *)data, size, &root, &e) != 0) {
    FUZZ_CHECK(root == NULL && e.text[0] != '\0');
    return 0;
  }
  dcnv4_case dc;
  if (dcnv4_case_read(root, &dc, &e) == 0) {
    dcnv4_shape s;
    FUZZ_CHECK(dcnv4_get_shape(&dc.params, &s) == DCNV4_SUCCESS);
  }
  fda_case fc;
  if (fda_case_read(root, &fc, &e) == 0) {
    dcnv4_fda_shape s;
    FUZZ_CHECK(dcnv4_fda_get_shape(&fc.params, &s) == DCNV4_SUCCESS);
  }
  dcnv4_dtype dt;
  (void)meta_dtype(root, &dt, &e);
  const char *str;
  (void)meta_string(root, "op", &str, &e);
  double x;
  (void)meta_number(root, "offset_scale", &x, &e);
  int64_t i64;
  (void)meta_int(root, "batch", INT64_MIN, INT64_MAX, &i64, &e);
  cJSON_Delete(root);
  return 0;
}
