/* Case folders (shared/golden layout): meta.json access with cJSON and
 * typed, range-checked field readers. Every reader returns 0, or -1 with a
 * one-line message in err. */
#ifndef DCNV4_CASE_META_H
#define DCNV4_CASE_META_H

#include "dcnv4.h"
#include "npy.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct case_error {
  char text[512];
} case_error;

int case_fail(case_error *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Parses CASE_DIR/meta.json; the caller frees with cJSON_Delete. */
int meta_load(const char *case_dir, cJSON **root, case_error *e);
/* Parses a meta.json image of `size` bytes (need not end in a zero). */
int meta_parse(const char *text, size_t size, cJSON **root, case_error *e);
/* An integral number (or a JSON boolean) within [min, max]. */
int meta_int(const cJSON *root, const char *key, int64_t min, int64_t max,
             int64_t *out, case_error *e);
int meta_int32(const cJSON *root, const char *key, int32_t min, int32_t max,
               int32_t *out, case_error *e);
/* An array of `count` integers in [min, max] under `key`; with `pairs`,
 * `count` [a, b] arrays (written to out as 2*count integers). */
int meta_int_array(const cJSON *root, const char *key, int count, int pairs,
                   int64_t min, int64_t max, int32_t *out, case_error *e);
/* A finite number. */
int meta_number(const cJSON *root, const char *key, double *out, case_error *e);
/* A string (not copied: valid while root lives). */
int meta_string(const cJSON *root, const char *key, const char **out,
                case_error *e);
/* "float32" / "float16" / "bfloat16" under "dtype". */
int meta_dtype(const cJSON *root, dcnv4_dtype *out, case_error *e);

/* Reads CASE_DIR/<name>.npy, checks its shape, and converts it to `dtype`
 * values (rounded as storage would hold them) in `values` (malloc'd floats)
 * and, if `packed` is non-NULL, to packed storage (malloc'd). Accepts <f2,
 * <f4 and <f8 files. */
int case_load_tensor(const char *case_dir, const char *name, int ndim,
                     const int64_t *shape, dcnv4_dtype dtype, float **values,
                     void **packed, case_error *e);
/* Reads CASE_DIR/<name>.npy, a |u1 (or |b1) array of the given shape, as
 * bytes 0 or 1 (non-zero -> 1) in `values` (malloc'd). */
int case_load_mask(const char *case_dir, const char *name, int ndim,
                   const int64_t *shape, unsigned char **values, case_error *e);
/* Reads CASE_DIR/<name>.npy as doubles of the given shape (expected
 * results). */
int case_load_expected(const char *case_dir, const char *name, int ndim,
                       const int64_t *shape, double **values, case_error *e);

/* The parameters of a `dcnv4` case and the sizes its meta declares. */
typedef struct dcnv4_case {
  dcnv4_params params;
  dcnv4_shape shape;
  int64_t input_shape[4], output_shape[4], offset_mask_shape[4];
} dcnv4_case;
int dcnv4_case_read(const cJSON *root, dcnv4_case *c, case_error *e);

/* The parameters of a `flash_deform_attn` case and the sizes its meta
 * declares. spatial_shapes must be an array of `levels` [H, W] integer pairs
 * and level_start_index an array of `levels` integers; the library's rules
 * (dcnv4_fda_check_params) apply on top. */
typedef struct fda_case {
  dcnv4_fda_params params;
  dcnv4_fda_shape shape;
  int64_t value_shape[4], sampling_shape[4], output_shape[3];
} fda_case;
int fda_case_read(const cJSON *root, fda_case *c, case_error *e);

#endif
