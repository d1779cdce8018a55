/* Fuzz target: parameter validation and shape queries of both operators
 * (dcnv4_check_params / dcnv4_get_shape / dcnv4_backward_workspace_size and
 * their FlashDeformAttn twins) on parameter structs taken from the input's
 * bytes. The first byte chooses the operator; the rest (zero-padded) is the
 * struct. Accepted parameters must give consistent, overflow-free sizes. */
#include "dcnv4.h"
#include "fuzz.h"

#include <string.h>

static void check_dcnv4(const dcnv4_params *p) {
  char msg[256] = "";
  dcnv4_shape s;
  dcnv4_status a = dcnv4_check_params(p, msg, sizeof msg);
  dcnv4_status b = dcnv4_get_shape(p, &s);
  FUZZ_CHECK(a == b);
  size_t ws = 0;
  dcnv4_status c = dcnv4_backward_workspace_size(p, &ws);
  if (a != DCNV4_SUCCESS) {
    FUZZ_CHECK(msg[0] != '\0');
    FUZZ_CHECK(c != DCNV4_SUCCESS);
    return;
  }
  /* The deterministic backward indexes its workspace with 32-bit words:
   * valid shapes beyond 2^31 of them are refused there, and only there. */
  FUZZ_CHECK(c == DCNV4_SUCCESS ||
             (p->deterministic && c == DCNV4_ERROR_SIZE_OVERFLOW));
  size_t es = dcnv4_dtype_size(p->dtype);
  FUZZ_CHECK(es > 0);
  FUZZ_CHECK((int64_t)s.channels == (int64_t)p->group * p->group_channels);
  FUZZ_CHECK(s.height_out >= 1 && s.width_out >= 1);
  int64_t ho = ((int64_t)p->height_in + 2 * (int64_t)p->pad_h -
                ((int64_t)p->dilation_h * (p->kernel_h - 1) + 1)) /
                   p->stride_h +
               1;
  FUZZ_CHECK(ho == s.height_out);
  FUZZ_CHECK(s.offset_mask_stride >= (int64_t)p->group * s.points * 3);
  FUZZ_CHECK(s.input_elements == (uint64_t)p->batch * (uint64_t)p->height_in *
                                     (uint64_t)p->width_in *
                                     (uint64_t)s.channels);
  FUZZ_CHECK(s.input_bytes / es == s.input_elements);
  FUZZ_CHECK(s.output_bytes / es == s.output_elements);
  FUZZ_CHECK(s.offset_mask_bytes / es == s.offset_mask_elements);
}

static void check_fda(const dcnv4_fda_params *p) {
  char msg[256] = "";
  dcnv4_fda_shape s;
  dcnv4_status a = dcnv4_fda_check_params(p, msg, sizeof msg);
  dcnv4_status b = dcnv4_fda_get_shape(p, &s);
  FUZZ_CHECK(a == b);
  size_t ws = 0;
  dcnv4_status c = dcnv4_fda_backward_workspace_size(p, &ws);
  if (a != DCNV4_SUCCESS) {
    FUZZ_CHECK(msg[0] != '\0');
    FUZZ_CHECK(c != DCNV4_SUCCESS);
    return;
  }
  /* The deterministic backward indexes its workspace with 32-bit words:
   * valid shapes beyond 2^31 of them are refused there, and only there. */
  FUZZ_CHECK(c == DCNV4_SUCCESS ||
             (p->deterministic && c == DCNV4_ERROR_SIZE_OVERFLOW));
  size_t es = dcnv4_dtype_size(p->dtype);
  FUZZ_CHECK(es > 0);
  FUZZ_CHECK(p->levels >= 1 && p->levels <= DCNV4_FDA_MAX_LEVELS);
  FUZZ_CHECK(s.sampling_stride == p->levels * p->points * 3);
  for (int l = 0; l < p->levels; l++) {
    int64_t rows =
        (int64_t)p->spatial_shapes[l][0] * (int64_t)p->spatial_shapes[l][1];
    FUZZ_CHECK(p->level_start[l] >= 0 &&
               p->level_start[l] + rows <= p->value_len);
  }
  FUZZ_CHECK(s.value_bytes / es == s.value_elements);
  FUZZ_CHECK(s.output_bytes / es == s.output_elements);
  FUZZ_CHECK(s.sampling_bytes / es == s.sampling_elements);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const uint8_t *body = data + 1;
  size_t n = size - 1;
  if (data[0] & 1) {
    dcnv4_fda_params p;
    memset(&p, 0, sizeof p);
    memcpy(&p, body, n < sizeof p ? n : sizeof p);
    check_fda(&p);
  } else {
    dcnv4_params p;
    memset(&p, 0, sizeof p);
    memcpy(&p, body, n < sizeof p ? n : sizeof p);
    check_dcnv4(&p);
  }
  return 0;
}
