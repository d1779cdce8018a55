/* Internal declarations shared by the library's source files. Not installed.
 * Internal symbols are prefixed dcn_ and hidden (-fvisibility=hidden). */
#ifndef DCNV4_INTERNAL_H
#define DCNV4_INTERNAL_H

#include "dcnv4.h"

#include <stdarg.h>
#include <stdbool.h>

#if defined(__GNUC__)
#define DCN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define DCN_PRINTF(fmt, args)
#endif

/* Device classes that pick the built-in tuning defaults. */
typedef enum dcn_vendor {
  DCN_VENDOR_OTHER = 0,
  DCN_VENDOR_NVIDIA,
  DCN_VENDOR_AMD,
  DCN_VENDOR_INTEL_GPU,
  DCN_VENDOR_CPU
} dcn_vendor;

typedef enum dcn_log_level {
  DCN_LOG_OFF = 0,
  DCN_LOG_INFO = 1,
  DCN_LOG_DEBUG = 2
} dcn_log_level;

/* One built program of the in-memory registry with its kernels. */
typedef struct dcn_program {
  char *name;         /* program name, e.g. "dcnv4_forward" */
  char *options;      /* full build options */
  cl_program program; /* NULL when `failed` */
  bool failed;        /* the compiler rejected it: not retried */
  cl_kernel *kernels;
  char **kernel_names;
  size_t kernel_count;
} dcn_program;

#include "tuning/tuning_types.h"

#define DCN_SCRATCH_MAX_REGIONS 8

struct dcnv4_context {
  cl_platform_id platform;
  cl_device_id device;
  cl_context cl_ctx;
  cl_command_queue queue;
  dcnv4_device_info info;
  dcn_vendor vendor;
  /* What the built-in tuning table keys on (dcn_tuning_identify). */
  dcn_device_class device_class;
  cl_uint address_bits;
  size_t max_work_group_size;
  cl_ulong max_alloc_bytes;
  cl_ulong local_mem_bytes;
  cl_uint compute_units;
  size_t max_item_sizes[3];
  /* NVIDIA's compute capability (cl_nv_device_attribute_query), 0 where
   * unknown: PTX features the kernels use behind a device check. */
  cl_uint nv_compute_major;
  /* The most local memory one kernel may declare as static __local arrays:
   * local_mem_bytes, except on NVIDIA (compute capability 8 or later),
   * whose OpenCL reports 48 KiB but builds and runs kernels whose static
   * arrays reach the multiprocessor's per-block limit (227 KiB on sm_90,
   * measured on an H100; docs/perf-notes.md §38). Only kernels that declare
   * their local memory statically (linear_mma.cl's PTX build) use it. */
  cl_ulong static_local_bytes;
  /* cl_nv_compiler_options: -cl-nv-maxrregcount and friends are accepted. */
  bool nv_compiler_options;
  dcn_log_level log_level;

  char *cache_dir;  /* NULL: disk cache disabled */
  char *kernel_dir; /* NULL: embedded sources */

  dcn_program *programs;
  size_t program_count, program_capacity;

  dcnv4_cache_stats cache_stats;
  /* Launch parameters (src/tuning/tuning.c): built-in < file < override. */
  dcn_tuning_override tuning;       /* DCNV4_TUNING, dcnv4_context_set_tuning */
  dcn_tuning_entry *tuning_entries; /* the tuning file's kernel entries */
  size_t tuning_entry_count;
  dcn_gemm_entry *gemm_entries; /* the file's CLBlast sets (for linear.c) */
  size_t gemm_entry_count;
  bool tuning_file_enabled;    /* dcnv4_context_set_tuning_file_enabled */
  bool tuning_file_loaded;     /* a file was read and applied */
  char *tuning_file;           /* its path (NULL: none looked for) */
  bool gemm_tuned;             /* the file's CLBlast parameters are applied */
  unsigned gemm_tuned_kernels; /* which (bits of gemm.c's safe_sets) */
  unsigned tuning_warned;      /* kernels whose tuned local was refused */
  uint64_t tuning_fallbacks; /* calls that fell back to the built-in default */

  cl_mem scratch; /* context-managed workspace, grown on demand */
  size_t scratch_bytes;
  /* The layers' context-managed scratch: one buffer per region of a scratch
   * plan, grown on demand (separate buffers, not sub-buffers of one: NVIDIA's
   * OpenCL runs kernels on sub-buffers of one parent far slower). */
  cl_mem region[DCN_SCRATCH_MAX_REGIONS];
  size_t region_bytes[DCN_SCRATCH_MAX_REGIONS];
  /* The split-K GEMMs' partial sums (linear.c), grown on demand: written
   * and read by the two kernels of one GEMM on the in-order queue, so one
   * buffer serves every GEMM, whatever workspace the call was given. */
  cl_mem gemm_partials;
  size_t gemm_partials_bytes;

  char error_fixed[1024]; /* used when error_dynamic could not be allocated */
  char *error_dynamic;    /* message plus build log, if any */
};

/* Applies the tuning file's "gemm" entries (ctx->gemm_entries) to CLBlast
 * (src/ops/linear/linear.c); at context creation, after the file is read. */
void dcn_linear_apply_file_tuning(dcnv4_context *ctx);

/* ---------------------------------------------------------- errors, log */

/* Records a message on the context (may be NULL) and returns `status`. */
dcnv4_status dcn_fail(dcnv4_context *ctx, dcnv4_status status, const char *fmt,
                      ...) DCN_PRINTF(3, 4);
/* As dcn_fail, with a long attachment (a build log) after the message. */
dcnv4_status dcn_fail_with_log(dcnv4_context *ctx, dcnv4_status status,
                               const char *log, const char *fmt, ...)
    DCN_PRINTF(4, 5);
/* Fails with DCNV4_ERROR_OPENCL (or OUT_OF_HOST_MEMORY) naming the call. */
dcnv4_status dcn_fail_cl(dcnv4_context *ctx, cl_int err, const char *what);
const char *dcn_cl_error_name(cl_int err);

void dcn_log(const dcnv4_context *ctx, dcn_log_level level, const char *fmt,
             ...) DCN_PRINTF(3, 4);
dcn_log_level dcn_log_level_from_env(void);

/* ------------------------------------------------------- host allocation */

void *dcn_malloc(size_t bytes);
void *dcn_calloc(size_t count, size_t size);
void *dcn_realloc(void *ptr, size_t bytes);
void dcn_free(void *ptr);
char *dcn_strdup(const char *s);
/* printf into a new string (NULL on allocation failure). */
char *dcn_asprintf(const char *fmt, ...) DCN_PRINTF(1, 2);

/* --------------------------------------------------- checked arithmetic */

/* Each returns false (and leaves *out unspecified) on overflow. */
static inline bool dcn_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
  if (a != 0 && b > UINT64_MAX / a)
    return false;
  *out = a * b;
  return true;
}
static inline bool dcn_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
  if (b > UINT64_MAX - a)
    return false;
  *out = a + b;
  return true;
}
/* Product of `n` non-negative factors. */
bool dcn_product_u64(const uint64_t *factors, size_t n, uint64_t *out);
/* elements * element_size as size_t. */
bool dcn_bytes(uint64_t elements, size_t element_size, size_t *out);

/* ------------------------------------------------------------- hashing */

/* 64-bit FNV-1a, chainable: pass the previous result as `seed`
 * (DCN_HASH_SEED to start). */
#define DCN_HASH_SEED 0xcbf29ce484222325ull
uint64_t dcn_hash(const void *data, size_t size, uint64_t seed);

/* ------------------------------------------------------------- devices */

/* Picks a device: `spec` as DCNV4_DEVICE (NULL or "" for the default). */
dcnv4_status dcn_select_device(const char *spec, cl_platform_id *platform,
                               cl_device_id *device, char *why,
                               size_t why_size);
/* Whether DCNV4_DEVICE-style `spec` (non-empty) names this device: "P:D",
 * a vendor word (pocl, intel, nvidia, amd, cpu, gpu; case-insensitive) or a
 * substring of the device or platform name. The first match is chosen. */
bool dcn_device_spec_matches(const char *spec, const dcnv4_device_info *info,
                             cl_device_type type);
/* Fills info (indices are looked up by matching handles) */
dcnv4_status dcn_query_device_info(cl_platform_id platform, cl_device_id device,
                                   dcnv4_device_info *info);
dcn_vendor dcn_classify_vendor(const dcnv4_device_info *info,
                               cl_device_type type);

/* ------------------------------------------------- programs and kernels */

/* Options shared by every build (standard, precision). */
#define DCN_BASE_BUILD_OPTIONS "-cl-std=CL1.2"
/* Room for one kernel's -D options: the longest, a specialized DCNv4
 * forward with fixed geometry, stage and register cap, takes 457 characters
 * when every integer has its most digits (11). */
#define DCN_OPTIONS_MAX 512

/* Returns a kernel of the program `program_name` built with `options`
 * (appended to DCN_BASE_BUILD_OPTIONS). The kernel belongs to the context;
 * do not release it. Builds on first use: memory cache, then disk cache,
 * then source. */
dcnv4_status dcn_get_kernel(dcnv4_context *ctx, const char *program_name,
                            const char *options, const char *kernel_name,
                            cl_kernel *kernel);
void dcn_release_programs(dcnv4_context *ctx);
/* As dcn_get_kernel with the first of `count` option strings that builds
 * (vendor paths first, the portable one last); each rejected one is logged
 * under DCNV4_LOG. *chosen (may be NULL) receives the index used. */
dcnv4_status dcn_get_kernel_first(dcnv4_context *ctx, const char *program_name,
                                  const char *const *options, int count,
                                  const char *kernel_name, cl_kernel *kernel,
                                  int *chosen);
/* Appends " -cl-nv-maxrregcount=N" to `out` (of `size` bytes) where the
 * configuration caps registers (max_regs > 0) and the device accepts
 * NVIDIA's compiler options; otherwise leaves `out` as it is. */
void dcn_register_cap_option(const dcnv4_context *ctx, int max_regs, char *out,
                             size_t size);
/* The NV_ATOMICS option strings to try for a kernel with float atomics, best
 * first: vector reductions (sm_90), scalar reductions (inline PTX), portable
 * compare-and-swap. Writes `*count` entries of `size` bytes each into
 * options, each `base` followed by its NV_ATOMICS define. */
void dcn_atomics_options(const dcnv4_context *ctx, const char *base,
                         char options[][DCN_OPTIONS_MAX], int *count);

/* The embedded source files (generated at build time from the .cl and .clh
 * files under src/). */
typedef struct dcn_embedded_source {
  const char *name;
  const char *text;
  size_t size;
} dcn_embedded_source;
extern const dcn_embedded_source dcn_embedded_sources[];
extern const size_t dcn_embedded_source_count;

/* Disk cache of program binaries: key text -> binary. */
typedef struct dcn_binary {
  unsigned char *data;
  size_t size;
} dcn_binary;
typedef enum dcn_cache_result {
  DCN_CACHE_MISS = 0,    /* no file */
  DCN_CACHE_HIT = 1,     /* *out holds the binary (free with dcn_free) */
  DCN_CACHE_REJECTED = 2 /* a file exists but is corrupt, stale or foreign */
} dcn_cache_result;
dcn_cache_result dcn_disk_cache_load(const dcnv4_context *ctx, const char *key,
                                     dcn_binary *out);
/* Writes atomically (temporary file + rename); failures are only logged. */
void dcn_disk_cache_store(const dcnv4_context *ctx, const char *key,
                          const unsigned char *data, size_t size);
/* Path of the file that holds `key` (new string, NULL if no cache dir). */
char *dcn_disk_cache_path(const dcnv4_context *ctx, const char *key);
/* Resolves the cache folder from options and environment (NULL: disabled),
 * creating it if needed. */
char *dcn_resolve_cache_dir(const dcnv4_context_options *options);

/* ---------------------------------------------------------- validation */

/* Checks that `buffer` is non-NULL, belongs to the context and holds at
 * least `bytes`. `name` goes into the message. */
dcnv4_status dcn_check_buffer(dcnv4_context *ctx, cl_mem buffer,
                              const char *name, size_t bytes);
/* Fails if any two of the `count` buffers are the same object; readonly[i]
 * marks inputs, which may alias each other. */
dcnv4_status dcn_check_no_alias(dcnv4_context *ctx, const cl_mem *buffers,
                                const char *const *names, const bool *readonly,
                                size_t count);
dcnv4_status dcn_check_wait_list(dcnv4_context *ctx, cl_uint count,
                                 const cl_event *list);

/* ------------------------------------------------------ scratch memory */

/* Returns `user` if non-NULL (checked to hold `bytes`), else the context's
 * scratch grown to at least `bytes`. */
dcnv4_status dcn_workspace(dcnv4_context *ctx, cl_mem user, size_t bytes,
                           cl_mem *out);

/* ------------------------------------------------------------ launches */

/* `limit`, or fewer where the compiler allows `kernel` fewer work-items per
 * group (registers). */
size_t dcn_kernel_item_limit(const dcnv4_context *ctx, cl_kernel kernel,
                             size_t limit);
/* Enqueues a 1-D NDRange of `items` work-items rounded up to `local`. */
dcnv4_status dcn_enqueue_1d(dcnv4_context *ctx, cl_kernel kernel,
                            uint64_t items, size_t local, cl_uint num_wait,
                            const cl_event *wait, cl_event *event,
                            const char *what);
/* Enqueues an NDRange of 1 to 3 dimensions; `global` must already be a
 * multiple of `local` in each dimension. */
dcnv4_status dcn_enqueue_nd(dcnv4_context *ctx, cl_kernel kernel, cl_uint dims,
                            const size_t *global, const size_t *local,
                            cl_uint num_wait, const cl_event *wait,
                            cl_event *event, const char *what);
/* Sets kernel arguments from a list; stops at the first failure. */
typedef struct dcn_arg {
  size_t size;
  const void *value;
} dcn_arg;
#define DCN_ARG(v) ((dcn_arg){sizeof(v), &(v)})
/* A __local buffer argument of `bytes` bytes. */
#define DCN_LOCAL_ARG(bytes) ((dcn_arg){(bytes), NULL})
dcnv4_status dcn_set_args(dcnv4_context *ctx, cl_kernel kernel,
                          const dcn_arg *args, size_t count, const char *what);
/* How dcn_enqueue_zero zeroes (tuning `zero`): zero.cl's kernel, built, or
 * NULL for clEnqueueFillBuffer. */
typedef struct dcn_zero {
  cl_kernel kernel;
  size_t local;
} dcn_zero;
/* Builds what the `zero` tuning asks for, before anything is enqueued. */
dcnv4_status dcn_zero_prepare(dcnv4_context *ctx, dcn_zero *zero);
/* Enqueues zeroing `bytes` bytes of `buffer` as `zero` says (the kernel
 * where bytes is a multiple of 4, else clEnqueueFillBuffer). */
dcnv4_status dcn_enqueue_zero(dcnv4_context *ctx, const dcn_zero *zero,
                              cl_mem buffer, size_t bytes, cl_uint num_wait,
                              const cl_event *wait, cl_event *event);

/* ----------------------------------------------- operators for layers */

/* Validates `params` and builds the DCNv4 forward kernel, so that a later
 * dcnv4_forward() with valid buffers cannot fail on either (layers prepare
 * every step before enqueueing the first). */
dcnv4_status dcn_dcnv4_forward_prepare(dcnv4_context *ctx,
                                       const dcnv4_params *params);
/* The same for the FlashDeformAttn forward (dcn_fda_forward_rows). */
dcnv4_status dcn_fda_forward_prepare(dcnv4_context *ctx,
                                     const dcnv4_fda_params *params,
                                     dcnv4_dtype rows);
/* dcnv4_fda_forward with sampling_loc_attn stored as `rows`: params->dtype,
 * or fp32 beside 16-bit value and output (the FlashDeformAttn layer keeps
 * its locations in fp32, DESIGN.md §1.3). */
dcnv4_status dcn_fda_forward_rows(dcnv4_context *ctx,
                                  const dcnv4_fda_params *params,
                                  dcnv4_dtype rows, cl_mem value,
                                  cl_mem sampling_loc_attn, cl_mem output,
                                  cl_uint num_wait, const cl_event *wait,
                                  cl_event *event);

#endif /* DCNV4_INTERNAL_H */
