/* Launch parameters: the built-in table (vendor -> architecture -> device),
 * the tuning file (src/tuning/tuning_file.c) and per-context overrides,
 * merged in that order; each kernel reads its own typed parameters. */
#ifndef DCNV4_TUNING_H
#define DCNV4_TUNING_H

#include "core/internal.h"

/* Names used in tuning strings and files ("dcnv4_forward", ...). */
const char *dcn_kernel_name(dcn_kernel_id kernel);
/* The id of a kernel name, or -1. */
int dcn_kernel_from_name(const char *name);
/* The name of a parameter ("vec", ...). */
const char *dcn_tuning_param_name(dcn_tuning_param param);

/* Checks `kernel`.`param`=`value`: the parameter's id, or -1 with why set
 * (an unknown name, a parameter the kernel does not take, a value out of
 * the kernel's range). */
int dcn_tuning_check(dcn_kernel_id kernel, const char *param, long value,
                     char *why, size_t why_size);

/* Parses `text`; on a malformed entry returns false and names it in why. */
bool dcn_tuning_parse(const char *text, dcn_tuning_override *out, char *why,
                      size_t why_size);

/* ------------------------------------------------ the built-in table */

/* Fills ctx->device_class (architecture and device name) from the device;
 * after ctx->vendor is set. */
void dcn_tuning_identify(dcnv4_context *ctx);

/* One configuration of the built-in table: for `kernel`, 16-bit storage only
 * or not, one group_channels (> 0) or all. */
typedef struct dcn_tuning_row {
  dcn_kernel_id kernel;
  int half_only;
  int group_channels;
  dcn_kernel_tuning config;
} dcn_tuning_row;

/* A node of the table: the rows for a vendor class (arch and device NULL:
 * its default), one of its architectures (device NULL: the architecture's
 * default) or one device (by name). */
typedef struct dcn_tuning_node {
  int vendor; /* dcn_vendor */
  const char *arch;
  const char *device;
  const dcn_tuning_row *rows;
  size_t count;
} dcn_tuning_node;

typedef struct dcn_tuning_table {
  const dcn_tuning_node *nodes;
  size_t count;
  const dcn_tuning_row *global; /* every kernel: devices nothing else fits */
  size_t global_count;
} dcn_tuning_table;

/* The library's table. */
extern const dcn_tuning_table dcn_builtin_tuning;

/* The built-in configuration of `kernel` for device `dev` from `table`: the
 * device's node, else its architecture's, else its vendor's default, else
 * the global default; within a node the last row that matches dtype and
 * group_channels wins. `*level` (may be NULL) tells which: 3 device, 2
 * architecture, 1 vendor, 0 global. */
dcn_kernel_tuning dcn_tuning_builtin_for(const dcn_tuning_table *table,
                                         const dcn_device_class *dev,
                                         dcn_kernel_id kernel,
                                         dcnv4_dtype dtype, int group_channels,
                                         int *level);

/* ----------------------------------------------------- lookups */

/* Launch parameters for `kernel` on the context's device, `dtype` and shape
 * class `group_channels` (0: unknown): built-in default < tuning file <
 * override. A tuned work-group larger than the device's maximum is replaced
 * by the default's and logged once. */
dcn_kernel_tuning dcn_tuning_lookup(dcnv4_context *ctx, dcn_kernel_id kernel,
                                    dcnv4_dtype dtype, int group_channels);
/* The configurations to try, in order: the tuned one, then the built-in
 * default if that differs (the fallback when the tuned one does not build).
 * Returns how many (1 or 2). */
int dcn_tuning_candidates(dcnv4_context *ctx, dcn_kernel_id kernel,
                          dcnv4_dtype dtype, int group_channels,
                          dcn_kernel_tuning cfgs[2]);

/* The typed forms the operators read. */
int dcn_tuning_dcnv4_forward(dcnv4_context *ctx, dcnv4_dtype dtype,
                             int group_channels,
                             dcn_dcnv4_forward_tuning cfgs[2]);
int dcn_tuning_dcnv4_backward(dcnv4_context *ctx, dcnv4_dtype dtype,
                              int group_channels,
                              dcn_dcnv4_backward_tuning cfgs[2]);
int dcn_tuning_fda_forward(dcnv4_context *ctx, dcnv4_dtype dtype,
                           int group_channels, dcn_fda_forward_tuning cfgs[2]);
int dcn_tuning_fda_backward(dcnv4_context *ctx, dcnv4_dtype dtype,
                            int group_channels,
                            dcn_fda_backward_tuning cfgs[2]);
int dcn_tuning_linear(dcnv4_context *ctx, dcn_linear_tuning cfgs[2]);
/* group_channels: the GEMM's shape class (dcn_linear_mma_tuning). */
int dcn_tuning_linear_mma(dcnv4_context *ctx, dcnv4_dtype dtype,
                          int group_channels, dcn_linear_mma_tuning cfgs[2]);
dcn_dcnv4_backward_deterministic_tuning
dcn_tuning_dcnv4_backward_deterministic(dcnv4_context *ctx, dcnv4_dtype dtype,
                                        int group_channels);
dcn_fda_backward_deterministic_tuning
dcn_tuning_fda_backward_deterministic(dcnv4_context *ctx, dcnv4_dtype dtype,
                                      int group_channels);
/* layer_elementwise or layer_dwconv. */
dcn_layer_tuning dcn_tuning_layer_ops(dcnv4_context *ctx, dcn_kernel_id kernel);
/* dcn_enqueue_zero's method. */
dcn_zero_tuning dcn_tuning_zero(dcnv4_context *ctx);

/* "vec=4;local=128;..." (the kernel's parameters) of `cfg`, which points to
 * `kernel`'s typed struct, for logs and dcnv4_context_get_tuning. */
void dcn_tuning_format(dcn_kernel_id kernel, const void *cfg, char *out,
                       size_t size);

/* Where `cfg` (`kernel`'s typed struct) came from. */
dcn_tuning_layer dcn_tuning_source(dcn_kernel_id kernel, const void *cfg);

/* Logs (DCNV4_LOG=info) that the tuned configuration of `kernel` could not
 * be used and the built-in default `fallback` is used instead (both point
 * to the kernel's typed struct). */
void dcn_tuning_log_fallback(dcnv4_context *ctx, dcn_kernel_id kernel,
                             const void *tuned, const void *fallback,
                             const char *why);

/* The small-launch rule of the forward kernels (docs/tuning.md §3.9): where
 * `items` work-items in work-groups of *local make fewer than small->below
 * work-groups per compute unit, replaces *local, *max_vec, *pieces (may be
 * NULL) and *max_regs by small's values that are set (> 0) and returns
 * true; else changes nothing. The caller counts `items` at the tuned vector
 * width and pieces. */
bool dcn_small_apply(const dcnv4_context *ctx, const dcn_small_tuning *small,
                     uint64_t items, size_t *local, int *max_vec, int *pieces,
                     int *max_regs);

/* The widest of 8, 4, 2, 1 that divides `channels` and is <= max_vec. */
int dcn_vector_width(int channels, int max_vec);

/* ---------------------------------------------------- tuning file */

/* Finds, reads, validates and stores the context's tuning file: kernel
 * entries for the lookups, "gemm" entries for linear.c
 * (dcn_linear_apply_file_tuning). Never fails: a missing file is silent, a
 * bad one is ignored entirely and logged. */
void dcn_tuning_file_load(dcnv4_context *ctx);
/* The device key used in tuning file names (a new string, or NULL). */
char *dcn_tuning_device_key(const dcnv4_context *ctx);

#endif /* DCNV4_TUNING_H */
