/* Launch parameters: built-in defaults per device class, the tuning file
 * (src/tuning_file.c) and per-context overrides, merged in that order. */
#ifndef DCNV4_TUNING_H
#define DCNV4_TUNING_H

#include "internal.h"

/* Names used in tuning strings and files ("dcnv4_forward", ...). */
const char *dcn_kernel_name(dcn_kernel_id kernel);
/* The id of a kernel name, or -1. */
int dcn_kernel_from_name(const char *name);
/* The id of a parameter name ("vec", ...), or -1; its name. */
int dcn_tuning_param_from_name(const char *name);
const char *dcn_tuning_param_name(dcn_tuning_param param);
/* NULL where `value` is accepted for `param` of `kernel`, else what is
 * wrong with it (for the caller's message). */
const char *dcn_tuning_value_error(dcn_kernel_id kernel, dcn_tuning_param param,
                                   long value);

/* Parses `text`; on a malformed entry returns false and names it in why. */
bool dcn_tuning_parse(const char *text, dcn_tuning_override *out, char *why,
                      size_t why_size);

/* The built-in default for `kernel` on the context's device class. */
/* The configurations to try for `kernel`, in order: the tuned one, then the
 * built-in default if that differs (the fallback when the tuned one does not
 * build). Returns how many (1 or 2). */
int dcn_tuning_candidates(dcnv4_context *ctx, dcn_kernel_id kernel,
                          dcnv4_dtype dtype, int group_channels,
                          dcn_launch_config cfgs[2]);
dcn_launch_config dcn_tuning_builtin(const dcnv4_context *ctx,
                                     dcn_kernel_id kernel, dcnv4_dtype dtype,
                                     int group_channels);

/* Launch parameters for `kernel` on the context's device, `dtype` and shape
 * class `group_channels` (0: unknown): built-in default < tuning file <
 * override. A tuned value the device cannot take (a work-group larger than
 * its maximum) is replaced by the default's and logged once. */
dcn_launch_config dcn_tuning_lookup(dcnv4_context *ctx, dcn_kernel_id kernel,
                                    dcnv4_dtype dtype, int group_channels);

/* Whether two configurations have the same parameter values. */
bool dcn_tuning_same(const dcn_launch_config *a, const dcn_launch_config *b);

/* "vec=4;local=128;..." for logs and dcnv4_context_get_tuning. */
void dcn_tuning_format(const dcn_launch_config *c, char *out, size_t size);

/* Logs (DCNV4_LOG=info) that the tuned configuration of `kernel` could not
 * be used and the built-in default `fallback` is used instead. */
void dcn_tuning_log_fallback(dcnv4_context *ctx, dcn_kernel_id kernel,
                             const dcn_launch_config *tuned,
                             const dcn_launch_config *fallback,
                             const char *why);

/* The widest of 8, 4, 2, 1 that divides `channels` and is <= max_vec. */
int dcn_vector_width(int channels, int max_vec);

/* ---------------------------------------------------- tuning file */

/* Finds, reads, validates and applies the context's tuning file (kernel
 * entries into the context, GEMM entries into CLBlast). Never fails: a
 * missing file is silent, a bad one is ignored entirely and logged. */
void dcn_tuning_file_load(dcnv4_context *ctx);
/* The device key used in tuning file names (a new string, or NULL). */
char *dcn_tuning_device_key(const dcnv4_context *ctx);

/* Applies CLBlast parameter sets (src/gemm.c); returns how many took. */
int dcn_gemm_apply_tuning(dcnv4_context *ctx, const dcn_gemm_entry *entries,
                          size_t count);
/* Replaces the applied sets by conservative ones (after a failed GEMM). */
void dcn_gemm_untune(dcnv4_context *ctx);

#endif /* DCNV4_TUNING_H */
