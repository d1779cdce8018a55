/* Launch parameters per device class: the seam where per-device tables and
 * user tuning files plug in. */
#ifndef DCNV4_TUNING_H
#define DCNV4_TUNING_H

#include "internal.h"

/* Names used in tuning strings and files ("dcnv4_forward", ...). */
const char *dcn_kernel_name(dcn_kernel_id kernel);

/* Parses `text`; on a malformed entry returns false and names it in why. */
bool dcn_tuning_parse(const char *text, dcn_tuning_override *out, char *why,
                      size_t why_size);

/* Launch parameters for `kernel` on the context's device and `dtype`. */
dcn_launch_config dcn_tuning_lookup(const dcnv4_context *ctx,
                                    dcn_kernel_id kernel, dcnv4_dtype dtype);

/* The widest of 8, 4, 2, 1 that divides `channels` and is <= max_vec. */
int dcn_vector_width(int channels, int max_vec);

#endif /* DCNV4_TUNING_H */
