/*
 * dcnv4 — Deformable Convolution v4 and FlashDeformAttn on OpenCL.
 *
 * The whole public C API. C99-clean; every call returns a dcnv4_status and
 * never aborts, exits or prints (unless DCNV4_LOG asks for messages). A failed
 * call leaves a message readable with dcnv4_context_last_error() and enqueues
 * nothing. Tensors are channels-last, row-major, contiguous `cl_mem` buffers
 * (see DESIGN.md §1 for the exact semantics of each operator).
 *
 * One exception: the backward calls enqueue up to three commands (zeroing,
 * scatter, conversion); should the driver refuse a later one after accepting
 * an earlier one, the call fails (DCNV4_ERROR_OPENCL) and the gradient
 * buffers' content is unspecified. (OpenCL offers no portable way to withdraw
 * an accepted command.)
 *
 * Threading: a context is used by one thread at a time; separate contexts may
 * run in parallel, also on the same device.
 */
#ifndef DCNV4_H
#define DCNV4_H

#include <stddef.h>
#include <stdint.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#if defined(__APPLE__)
#include <OpenCL/cl.h>
#else
#include <CL/cl.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(DCNV4_SHARED_LIBRARY)
#ifdef DCNV4_BUILDING_LIBRARY
#define DCNV4_API __declspec(dllexport)
#else
#define DCNV4_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define DCNV4_API __attribute__((visibility("default")))
#else
#define DCNV4_API
#endif

/* ---------------------------------------------------------------- version */

#define DCNV4_VERSION_MAJOR 0
#define DCNV4_VERSION_MINOR 2
#define DCNV4_VERSION_PATCH 0
#define DCNV4_VERSION_STRING "0.2.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for compile-time comparisons. */
#define DCNV4_VERSION_NUMBER                                                   \
  (DCNV4_VERSION_MAJOR * 10000 + DCNV4_VERSION_MINOR * 100 +                   \
   DCNV4_VERSION_PATCH)

/* The version of the library actually linked, as DCNV4_VERSION_NUMBER. */
DCNV4_API int dcnv4_version(void);
DCNV4_API const char *dcnv4_version_string(void);

/* ----------------------------------------------------------------- status */

typedef enum dcnv4_status {
  DCNV4_SUCCESS = 0,
  DCNV4_ERROR_NULL_POINTER = 1,      /* a required pointer or buffer is NULL */
  DCNV4_ERROR_INVALID_PARAMETER = 2, /* a parameter is out of its range */
  DCNV4_ERROR_INVALID_SHAPE = 3, /* sizes disagree or give an empty output */
  DCNV4_ERROR_SIZE_OVERFLOW = 4, /* a size does not fit in 64 bits / size_t */
  DCNV4_ERROR_BUFFER_TOO_SMALL =
      5,                          /* a cl_mem is smaller than the shape needs */
  DCNV4_ERROR_INVALID_BUFFER = 6, /* wrong context, aliasing, not readable... */
  DCNV4_ERROR_OUT_OF_HOST_MEMORY = 7,
  DCNV4_ERROR_DEVICE_NOT_FOUND = 8, /* no OpenCL device, or none matches */
  DCNV4_ERROR_UNSUPPORTED = 9,      /* the device or queue cannot do this */
  DCNV4_ERROR_BUILD_FAILED = 10,    /* kernel compilation failed (log kept) */
  DCNV4_ERROR_OPENCL = 11,          /* an OpenCL call failed (code kept) */
  DCNV4_ERROR_IO = 12,              /* a file could not be read or written */
  DCNV4_ERROR_INVALID_FILE = 13,    /* a file is malformed */
  DCNV4_ERROR_MISSING_WEIGHT = 14,  /* a layer weight was never set */
  DCNV4_ERROR_INVALID_WEIGHT = 15   /* unknown key or wrong shape */
} dcnv4_status;

/* A constant English description of a status ("invalid parameter", ...). */
DCNV4_API const char *dcnv4_status_string(dcnv4_status status);

/* ----------------------------------------------------------------- dtypes */

/* Storage type of tensors. Arithmetic always accumulates in fp32; fp16 and
 * bf16 need no device extension. */
typedef enum dcnv4_dtype {
  DCNV4_FLOAT32 = 0,
  DCNV4_FLOAT16 = 1,
  DCNV4_BFLOAT16 = 2
} dcnv4_dtype;

/* Bytes per element (4, 2, 2), or 0 for an unknown value. */
DCNV4_API size_t dcnv4_dtype_size(dcnv4_dtype dtype);
/* "float32", "float16", "bfloat16", or NULL. */
DCNV4_API const char *dcnv4_dtype_name(dcnv4_dtype dtype);

/* ---------------------------------------------------------------- devices */

typedef struct dcnv4_device_info {
  unsigned platform_index; /* as in DCNV4_DEVICE="platform:device" */
  unsigned device_index;
  int is_gpu;
  unsigned compute_units;
  uint64_t global_memory_bytes;
  char platform_name[128];
  char device_name[128];
  char vendor[128];
  char driver_version[128];
  char device_version[128]; /* "OpenCL 3.0 CUDA", ... */
} dcnv4_device_info;

/* Lists the OpenCL devices of every platform. Writes at most `capacity`
 * entries to `devices` (which may be NULL when capacity is 0) and the total
 * number available to `count`. */
DCNV4_API dcnv4_status dcnv4_list_devices(dcnv4_device_info *devices,
                                          size_t capacity, size_t *count);

/* ---------------------------------------------------------------- context */

typedef struct dcnv4_context dcnv4_context;

typedef struct dcnv4_context_options {
  /* Device: "P:D" (platform and device index), a vendor word (pocl, intel,
   * nvidia, amd, cpu, gpu) or a case-insensitive substring of the device or
   * platform name (docs/devices.md). NULL: $DCNV4_DEVICE, else the
   * first GPU, else the first device of any kind. */
  const char *device;
  /* Program-binary cache folder. NULL: $DCNV4_CACHE_DIR, else
   * $XDG_CACHE_HOME/dcnv4, else ~/.cache/dcnv4. "" disables the disk cache. */
  const char *cache_dir;
  /* Non-zero: the context's own queue records profiling information. */
  int enable_profiling;
  /* Optional buffer that receives the reason when creation fails. */
  char *error_buffer;
  size_t error_buffer_size;
} dcnv4_context_options;

/* Fills `options` with the defaults (all NULL / 0). */
DCNV4_API void dcnv4_context_options_init(dcnv4_context_options *options);

/* Creates a context with its own OpenCL context and in-order queue.
 * `options` may be NULL for the defaults. */
DCNV4_API dcnv4_status dcnv4_context_create(
    const dcnv4_context_options *options, dcnv4_context **context);

/* Creates a context on an application's OpenCL objects. The queue must belong
 * to `cl_ctx` and `device` and be in order. The library retains the objects
 * and releases its references in dcnv4_context_destroy(). `options->device`
 * is ignored. */
DCNV4_API dcnv4_status dcnv4_context_create_from_cl(
    cl_context cl_ctx, cl_device_id device, cl_command_queue queue,
    const dcnv4_context_options *options, dcnv4_context **context);

/* Waits for nothing; releases every object the context holds. NULL is fine. */
DCNV4_API void dcnv4_context_destroy(dcnv4_context *context);

/* The message of the last failed call on this context ("" if none). Valid
 * until the next call on the context. Build failures include the compiler's
 * log. */
DCNV4_API const char *dcnv4_context_last_error(const dcnv4_context *context);

DCNV4_API cl_context dcnv4_context_cl_context(const dcnv4_context *context);
DCNV4_API cl_command_queue dcnv4_context_queue(const dcnv4_context *context);
DCNV4_API cl_device_id dcnv4_context_device(const dcnv4_context *context);
DCNV4_API dcnv4_status dcnv4_context_device_info(dcnv4_context *context,
                                                 dcnv4_device_info *info);

/* Waits until every command the library enqueued on the queue has finished. */
DCNV4_API dcnv4_status dcnv4_context_finish(dcnv4_context *context);

/* Frees the scratch memory the context manages for calls given no workspace
 * (and the partial sums of split-K GEMMs, which it keeps whatever the call
 * was given). Call only when no such call is in flight (e.g. after
 * dcnv4_context_finish). */
DCNV4_API dcnv4_status dcnv4_context_release_scratch(dcnv4_context *context);

/* How the context obtained its kernel programs so far. */
typedef struct dcnv4_cache_stats {
  uint64_t memory_hits;   /* program already built in this context */
  uint64_t disk_hits;     /* loaded from the program-binary cache */
  uint64_t disk_rejects;  /* cache files found corrupt or stale (rebuilt) */
  uint64_t source_builds; /* compiled from source */
  uint64_t disk_writes;   /* binaries written to the cache */
} dcnv4_cache_stats;

DCNV4_API dcnv4_status dcnv4_context_cache_stats(const dcnv4_context *context,
                                                 dcnv4_cache_stats *stats);

/* ---------------------------------------------------------------- tuning */

/* Launch parameters of each kernel (vector width, work-group size, ...) are
 * merged from three layers: the library's defaults for the device <
 * the tuning file written by dcnv4-tune (read at context creation from
 * $DCNV4_TUNING_FILE, else <cache folder>/tuning/<device key>.json) < the
 * override ($DCNV4_TUNING, or dcnv4_context_set_tuning). A tuned
 * configuration that does not build on the device falls back to the
 * default (reported under DCNV4_LOG). */
typedef enum dcnv4_tuning_source {
  DCNV4_TUNING_BUILTIN = 0, /* the library's defaults for the device */
  DCNV4_TUNING_FILE = 1,    /* the tuning file */
  DCNV4_TUNING_OVERRIDE = 2 /* $DCNV4_TUNING or dcnv4_context_set_tuning */
} dcnv4_tuning_source;

/* Replaces the context's override (initially $DCNV4_TUNING) with `tuning`,
 * "kernel.param=value[;...]" as in DCNV4_TUNING; NULL or "" removes it.
 * Applies to later calls. A malformed string, a parameter the kernel does
 * not take or a value out of its range returns
 * DCNV4_ERROR_INVALID_PARAMETER and changes nothing. */
DCNV4_API dcnv4_status dcnv4_context_set_tuning(dcnv4_context *context,
                                                const char *tuning);

/* 0: the tuning file's kernel entries are ignored from now on (dcnv4-tune
 * measures against the built-in defaults); non-zero (the default): used.
 * GEMM parameters the file gave CLBlast at creation stay. */
DCNV4_API dcnv4_status
dcnv4_context_set_tuning_file_enabled(dcnv4_context *context, int enabled);

/* The launch parameters the context uses for `kernel` ("dcnv4_forward",
 * "dcnv4_backward", "fda_forward", "fda_backward",
 * "dcnv4_backward_deterministic", "fda_backward_deterministic",
 * "layer_elementwise", "layer_dwconv", "linear", "linear_mma") in `dtype` with
 * `group_channels` channels per group (0: any), written as the parameters
 * that kernel takes, in a fixed order per kernel (docs/tuning.md §3), e.g.
 * "vec=8;local=64;specialize=0;regs=0" for fda_backward, and the highest
 * layer that set one of them (`source` may be NULL). */
DCNV4_API dcnv4_status dcnv4_context_get_tuning(
    dcnv4_context *context, const char *kernel, dcnv4_dtype dtype,
    int32_t group_channels, char *params, size_t params_size,
    dcnv4_tuning_source *source);

/* The context's tuning file: its path ("" when there is none to look for:
 * $DCNV4_TUNING_FILE empty, or no cache folder) and whether it was read and
 * applied at creation (`loaded` may be NULL). A missing or invalid file is
 * not an error; DCNV4_LOG says why it was ignored. */
DCNV4_API dcnv4_status dcnv4_context_tuning_file(const dcnv4_context *context,
                                                 char *path, size_t path_size,
                                                 int *loaded);

/* How many operator calls of this context fell back from a tuned
 * configuration that does not build on the device to the built-in default
 * (dcnv4-tune rejects such candidates). */
DCNV4_API uint64_t dcnv4_context_tuning_fallbacks(const dcnv4_context *context);

/* --------------------------------------------------- DCNv4 core operator */

/* Parameters of the DCNv4 core operator (DESIGN.md §1.1). */
typedef struct dcnv4_params {
  int32_t batch;          /* N */
  int32_t height_in;      /* H_in */
  int32_t width_in;       /* W_in */
  int32_t group;          /* G >= 1 */
  int32_t group_channels; /* D >= 1; channels C = G * D */
  int32_t kernel_h, kernel_w;
  int32_t stride_h, stride_w;
  int32_t pad_h, pad_w;
  int32_t dilation_h, dilation_w;
  float offset_scale;
  int32_t remove_center; /* 0 or 1: skip the kernel's centre point */
  int32_t softmax; /* 0 or 1: softmax over each group's K weights (DCNv3) */
  /* Elements per offset_mask row, >= group*K*3. 0 means the default
   * ceil(group*K*3 / 8) * 8. */
  int32_t offset_mask_stride;
  dcnv4_dtype dtype;
  /* 0 or 1: backward without float atomics, bitwise reproducible (see
   * dcnv4_backward). Forward is always deterministic. */
  int32_t deterministic;
} dcnv4_params;

/* Defaults: 3x3 kernel, stride 1, pad 1, dilation 1, offset_scale 1, group 1,
 * fp32, deterministic 0; the sizes (batch, height_in, width_in, group_channels)
 * are 0 and must be set. */
DCNV4_API void dcnv4_params_init(dcnv4_params *params);

/* Sizes derived from a parameter set. */
typedef struct dcnv4_shape {
  int32_t height_out, width_out;
  int32_t channels;           /* C = group * group_channels */
  int32_t points;             /* K = kernel_h*kernel_w - remove_center */
  int32_t offset_mask_stride; /* S, resolved */
  uint64_t input_elements;    /* N*H_in*W_in*C */
  uint64_t offset_mask_elements;
  uint64_t output_elements;
  size_t input_bytes, offset_mask_bytes, output_bytes;
} dcnv4_shape;

/* Validates `params` (no context needed) and computes the derived sizes. */
DCNV4_API dcnv4_status dcnv4_get_shape(const dcnv4_params *params,
                                       dcnv4_shape *shape);

/* As dcnv4_get_shape, and explains a failure in `message` (may be NULL). */
DCNV4_API dcnv4_status dcnv4_check_params(const dcnv4_params *params,
                                          char *message, size_t message_size);

/* output (N,H_out,W_out,C) = DCNv4(input (N,H_in,W_in,C),
 *                                  offset_mask (N,H_out,W_out,S)).
 * Enqueued on the context's queue after the optional wait list; `event`
 * (may be NULL) receives the completion event. */
DCNV4_API dcnv4_status dcnv4_forward(dcnv4_context *context,
                                     const dcnv4_params *params, cl_mem input,
                                     cl_mem offset_mask, cl_mem output,
                                     cl_uint num_events_in_wait_list,
                                     const cl_event *event_wait_list,
                                     cl_event *event);

/* Bytes of device scratch dcnv4_backward needs. Default mode: 0 for fp32
 * (the gradient is accumulated in place), N*H_in*W_in*C*4 for fp16/bf16.
 * Deterministic mode: 4 * (2*B + 1 + ceil(B/256) + 3*P) bytes, where
 * P = N*H_out*W_out*group*K sampling points and B = N*group*(H_in+1)*(W_in+1)
 * buckets; DCNV4_ERROR_SIZE_OVERFLOW if that is 2^33 bytes or more. */
DCNV4_API dcnv4_status dcnv4_backward_workspace_size(const dcnv4_params *params,
                                                     size_t *bytes);

/* Buffers of one backward call. */
typedef struct dcnv4_backward_buffers {
  cl_mem input;            /* (N,H_in,W_in,C), read */
  cl_mem offset_mask;      /* (N,H_out,W_out,S), read */
  cl_mem grad_output;      /* (N,H_out,W_out,C), read */
  cl_mem grad_input;       /* (N,H_in,W_in,C), overwritten */
  cl_mem grad_offset_mask; /* (N,H_out,W_out,S), overwritten; padding lanes 0 */
  /* Scratch of dcnv4_backward_workspace_size() bytes, or NULL to let the
   * context manage it. */
  cl_mem workspace;
} dcnv4_backward_buffers;

/* Gradients of the forward with respect to input and offset_mask.
 *
 * Default mode: grad_input is scattered with float atomics, so its last bits
 * may change from run to run. Where the device's tuning selects the tiled
 * kernel (dcnv4_backward.halo > 0, NVIDIA's default), a tile of output pixels
 * first sums its contributions in local memory as fixed-point integers scaled
 * to a bound of the tile's values (sum of |weight| * |grad_output|): each
 * contribution is then rounded by at most 2^-30 of that bound (relative L2
 * error about 5e-7 in fp32 on random data, against 1e-7 for float atomics);
 * tiles with NaN or infinite inputs use float atomics. With
 * params->deterministic = 1 no float atomic
 * is used: every sampling point is sorted into a bucket by its top-left
 * neighbour (integer counts, a prefix sum, then each bucket sorted by point
 * index), and each grad_input element sums its contributions in that fixed
 * order; grad_offset_mask is reduced in a fixed order as well. The results
 * are then bitwise identical from run to run and independent of work-group
 * sizes and scheduling, for a given device, driver, dtype and shape
 * (docs/devices.md: floating-point contraction is off in these programs).
 * Slower than the default mode and needs the workspace above.
 *
 * Non-finite values (both modes, both operators; DESIGN.md §1.1): a point
 * whose position is NaN, infinite or outside -1 < y < H_in, -1 < x < W_in
 * (offsets of any size, e.g. 1e30) contributes nothing and gets zero position
 * gradients times its weight; it is rejected before any float-to-int
 * conversion. Otherwise plain IEEE arithmetic on the formulas: each in-image
 * neighbour is read and multiplied by its bilinear weight even when that
 * weight is exactly zero, so an Inf there gives NaN (0 * Inf); the point's
 * sample (sum of weight * value over its in-image neighbours) is then
 * multiplied by its weight m, so NaN/Inf in a weight, an input value or
 * grad_output propagates to everything that point touches; a NaN or +Inf
 * among a group's softmax logits makes all its K weights NaN. Neighbours
 * outside the image are never read. tests/support/reference.c follows the same
 * rules; exact agreement of NaN/Inf positions with it holds where the
 * sampling position is the same in fp32 and float64 (it may round
 * differently within an fp32 ulp of an integer) and where fp32 does not
 * overflow or underflow (a softmax weight below ~1e-45 is an exact zero). */
DCNV4_API dcnv4_status dcnv4_backward(dcnv4_context *context,
                                      const dcnv4_params *params,
                                      const dcnv4_backward_buffers *buffers,
                                      cl_uint num_events_in_wait_list,
                                      const cl_event *event_wait_list,
                                      cl_event *event);

/* ------------------------------------------- FlashDeformAttn core operator */

/* Most feature levels one call handles. */
#define DCNV4_FDA_MAX_LEVELS 16
/* Most sampling points per (query, head): levels * points <= this. */
#define DCNV4_FDA_MAX_SAMPLES 1024

/* Parameters of the multi-scale deformable attention core operator
 * (DESIGN.md §1.2), in DCNv4's memory-efficient form: one sampling_loc_attn
 * tensor holds the locations and the attention logits, and the softmax over
 * each (query, head)'s levels*points logits happens inside the operator.
 *
 * Levels: level l is an (H_l, W_l) row-major image stored in the value rows
 * [level_start[l], level_start[l] + H_l*W_l). Every level must lie inside
 * [0, value_len) and no two levels may share a row; they may come in any
 * order and leave gaps (rows of no level are never read and get a zero
 * gradient). Upstream passes level_start = exclusive cumulative sum of H_l*W_l
 * and value_len = sum of H_l*W_l, which is the usual case. Entries at index
 * >= levels are ignored. The shapes travel to the kernels as a by-value
 * argument: changing them never recompiles. */
typedef struct dcnv4_fda_params {
  int32_t batch;          /* B >= 1 */
  int32_t queries;        /* Q >= 1 */
  int32_t group;          /* G >= 1 (attention heads) */
  int32_t group_channels; /* D >= 1 (channels per head); C = G * D */
  int32_t levels;         /* L, 1..DCNV4_FDA_MAX_LEVELS */
  int32_t points;         /* K >= 1 per level; L*K <= DCNV4_FDA_MAX_SAMPLES */
  int32_t value_len;      /* Nv >= 1: value rows per batch item */
  /* (H_l, W_l) of each level, each 1..2^24 */
  int32_t spatial_shapes[DCNV4_FDA_MAX_LEVELS][2];
  /* First value row of each level */
  int32_t level_start[DCNV4_FDA_MAX_LEVELS];
  dcnv4_dtype dtype;
  /* 0 or 1: backward without float atomics, bitwise reproducible (see
   * dcnv4_fda_backward). Forward is always deterministic. */
  int32_t deterministic;
} dcnv4_fda_params;

/* Zeroes everything and sets dtype fp32, group 1, levels 1, points 4,
 * deterministic 0; the
 * sizes (batch, queries, group_channels, value_len, spatial_shapes,
 * level_start) must be set. */
DCNV4_API void dcnv4_fda_params_init(dcnv4_fda_params *params);

/* Sizes derived from a parameter set. */
typedef struct dcnv4_fda_shape {
  uint64_t value_elements;    /* B*Nv*G*D: value and grad_value */
  uint64_t sampling_elements; /* B*Q*G*L*K*3: sampling_loc_attn and its grad */
  uint64_t output_elements;   /* B*Q*G*D: output and grad_output */
  size_t value_bytes, sampling_bytes, output_bytes;
  int32_t sampling_stride; /* L*K*3: elements per (query, head) row */
} dcnv4_fda_shape;

/* Validates `params` (no context needed) and computes the derived sizes. */
DCNV4_API dcnv4_status dcnv4_fda_get_shape(const dcnv4_fda_params *params,
                                           dcnv4_fda_shape *shape);

/* As dcnv4_fda_get_shape, and explains a failure in `message` (may be
 * NULL). */
DCNV4_API dcnv4_status dcnv4_fda_check_params(const dcnv4_fda_params *params,
                                              char *message,
                                              size_t message_size);

/* output (B,Q,G*D) = FlashDeformAttn(value (B,Nv,G,D),
 *                                    sampling_loc_attn (B,Q,G,L*K*3)).
 * Each (b, q, g) row of sampling_loc_attn holds L*K locations (x, y),
 * interleaved, level-major then point, normalized so that (0,0) and (1,1) are
 * a level's corners; then the L*K attention logits. Point (l, k) samples
 * level l bilinearly at x = loc_x*W_l - 0.5, y = loc_y*H_l - 0.5 (neighbours
 * outside the level count as zero, points outside -1 < x < W_l,
 * -1 < y < H_l contribute nothing; non-finite locations count as outside),
 * weighted by the softmax of the row's logits. Locations are used in the
 * storage type's precision as given (no rounding to fp16 as upstream's layer
 * does); arithmetic is fp32 throughout.
 * Enqueued on the context's queue after the optional wait list; `event`
 * (may be NULL) receives the completion event. */
DCNV4_API dcnv4_status dcnv4_fda_forward(
    dcnv4_context *context, const dcnv4_fda_params *params, cl_mem value,
    cl_mem sampling_loc_attn, cl_mem output, cl_uint num_events_in_wait_list,
    const cl_event *event_wait_list, cl_event *event);

/* Bytes of device scratch dcnv4_fda_backward needs. Default mode: 0 for
 * fp32 (the value gradient is accumulated in place), B*Nv*G*D*4 for
 * fp16/bf16. Deterministic mode: 4 * (2*U + 1 + ceil(U/256) + 3*P) bytes,
 * where P = B*Q*G*L*K sampling points and U = B*G*sum_l (H_l+1)*(W_l+1)
 * buckets; DCNV4_ERROR_SIZE_OVERFLOW if that is 2^33 bytes or more. */
DCNV4_API dcnv4_status dcnv4_fda_backward_workspace_size(
    const dcnv4_fda_params *params, size_t *bytes);

/* Buffers of one backward call. */
typedef struct dcnv4_fda_backward_buffers {
  cl_mem value;                  /* (B,Nv,G,D), read */
  cl_mem sampling_loc_attn;      /* (B,Q,G,L*K*3), read */
  cl_mem grad_output;            /* (B,Q,G*D), read */
  cl_mem grad_value;             /* (B,Nv,G,D), overwritten */
  cl_mem grad_sampling_loc_attn; /* (B,Q,G,L*K*3), overwritten */
  /* Scratch of dcnv4_fda_backward_workspace_size() bytes, or NULL to let the
   * context manage it. */
  cl_mem workspace;
} dcnv4_fda_backward_buffers;

/* Gradients of the forward with respect to value and sampling_loc_attn (the
 * locations, and the logits through the softmax). params->deterministic = 1:
 * no float atomics, bitwise reproducible results, as for dcnv4_backward.
 * Non-finite values follow the rules given at dcnv4_backward; in addition a
 * NaN or +Inf logit (or all logits -Inf) makes every weight of its
 * (query, head) row NaN, so the row's output is NaN if any of its points is
 * inside its level and 0 if none is. */
DCNV4_API dcnv4_status dcnv4_fda_backward(
    dcnv4_context *context, const dcnv4_fda_params *params,
    const dcnv4_fda_backward_buffers *buffers, cl_uint num_events_in_wait_list,
    const cl_event *event_wait_list, cl_event *event);

/* ----------------------------------------------------------------- layers */

/* A layer is the forward pass of a PyTorch module with its trained weights
 * (DESIGN.md §1.3): an input tensor in, the layer's output out. Create one
 * from its configuration and a storage dtype, set every weight by its
 * state-dict key (from host arrays or a safetensors file), then run forward
 * on device buffers as often as needed. Forward only for now. Two kinds:
 * DCNv4 layers (dcnv4_layer_dcnv4_create, dcnv4_layer_dcnv4_forward) and
 * FlashDeformAttn layers (dcnv4_layer_fda_create, dcnv4_layer_fda_forward);
 * the forward and workspace calls of one kind refuse a layer of the other
 * (DCNV4_ERROR_INVALID_PARAMETER), everything else is shared.
 *
 * Computation: the linear projections run as fp32 GEMMs (one per
 * projection over all N*H*W rows, row-major, y = x W^T + b, see
 * dcnv4_linear_forward): this library's kernel with the bias fused (the
 * default on NVIDIA GPUs and CPUs) or CLBlast's SGEMM followed by a bias
 * pass (the default on AMD and Intel GPUs), chosen by the "linear" tuning
 * entry (backend=1 / 0). The
 * depthwise convolution, remaining bias epilogues, gating and dtype
 * conversions are kernels of this library, the deformable sampling is the
 * core operator.
 * Accumulation is always fp32. In a DCNv4 layer of fp16 or bf16 the
 * intermediates (value, depthwise output, offsets and mask, the core
 * output, the gate's logits and the gated features) are stored in the
 * layer's dtype, each rounded once (to nearest even) as it is written, as
 * PyTorch's module in half precision rounds them: the projections are 16-bit
 * GEMMs (fp32 sums, bias added before the rounding; tensor cores on NVIDIA
 * devices of compute capability 8 or later, this library's linear kernel
 * widening its 16-bit loads elsewhere, so no cl_khr_fp16 is needed). An
 * fp16/bf16 FlashDeformAttn layer (below) stores its value and its core
 * output so, and keeps its offsets, logits and locations in fp32. Weights are
 * rounded to the layer's dtype when set (as PyTorch's module.half() /
 * .bfloat16() would) and held on the device as fp32 values, with a copy of
 * each matrix in the dtype for the 16-bit GEMMs.
 *
 * CLBlast (when used) compiles its GEMM kernels on the first call for a
 * device in the process (about a second on a GPU, several seconds on PoCL) and
 * keeps them (with a reference to the OpenCL context) in a process-wide cache
 * until CLBlastClearCache().
 *
 * A layer belongs to its context: it must be destroyed before the context,
 * and is used by the context's thread. Failures leave their message on the
 * context (dcnv4_context_last_error). */

typedef struct dcnv4_layer dcnv4_layer;

typedef enum dcnv4_layer_kind {
  DCNV4_LAYER_DCNV4 = 0, /* the DCNv4 module (DCNv4/modules/dcnv4.py) */
  /* the FlashDeformAttn module (DCNv4/modules/flash_deform_attn.py, which is
   * Deformable-DETR's MSDeformAttn) */
  DCNV4_LAYER_FLASH_DEFORM_ATTN = 1
} dcnv4_layer_kind;

/* Configuration of a DCNv4 layer, parameter for parameter the constructor
 * of upstream's PyTorch module. */
typedef struct dcnv4_layer_dcnv4_config {
  int32_t channels;    /* C; a multiple of group */
  int32_t kernel_size; /* k >= 1: the sampling grid is k x k */
  int32_t stride;      /* >= 1 */
  int32_t pad;         /* >= 0 */
  int32_t dilation;    /* >= 1 */
  int32_t group;       /* G >= 1 */
  float offset_scale;
  /* 0: None (offsets and mask computed from the input itself); else an odd
   * depthwise convolution size applied to the input first. */
  int32_t dw_kernel_size;
  int32_t center_feature_scale; /* 0 or 1 */
  int32_t remove_center;        /* 0 or 1 */
  int32_t output_bias;          /* 0 or 1: output_proj has a bias */
  int32_t without_pointwise;    /* 0 or 1: no value_proj / output_proj */
} dcnv4_layer_dcnv4_config;

/* PyTorch's defaults: channels 64, kernel_size 3, stride 1, pad 1,
 * dilation 1, group 4, offset_scale 1, dw_kernel_size None (0),
 * center_feature_scale 0, remove_center 0, output_bias 1,
 * without_pointwise 0. */
DCNV4_API void dcnv4_layer_dcnv4_config_init(dcnv4_layer_dcnv4_config *config);

/* Creates a DCNv4 layer computing in `dtype` (its input and output storage
 * type) with every weight unset. Its weights, by state-dict key:
 *   value_proj.weight (C, C), value_proj.bias (C)   unless without_pointwise
 *   offset_mask.weight (S, C), offset_mask.bias (S) S = ceil(G*K*3 / 8) * 8,
 *                                                   K = k*k - remove_center
 *   offset_mask_dw.weight (C, 1, d, d), offset_mask_dw.bias (C)
 *                                                   with dw_kernel_size d
 *   output_proj.weight (C, C)                       unless without_pointwise
 *   output_proj.bias (C)                            also needs output_bias
 *   center_feature_scale_proj_weight (G, C),
 *   center_feature_scale_proj_bias (G)              with center_feature_scale
 */
DCNV4_API dcnv4_status dcnv4_layer_dcnv4_create(
    dcnv4_context *context, const dcnv4_layer_dcnv4_config *config,
    dcnv4_dtype dtype, dcnv4_layer **layer);

/* Releases the layer's device memory. NULL is fine. Commands already
 * enqueued that use the layer complete normally. */
DCNV4_API void dcnv4_layer_destroy(dcnv4_layer *layer);

DCNV4_API dcnv4_layer_kind dcnv4_layer_get_kind(const dcnv4_layer *layer);
DCNV4_API dcnv4_dtype dcnv4_layer_get_dtype(const dcnv4_layer *layer);

/* One weight of a layer. */
typedef struct dcnv4_weight_info {
  const char *key; /* state-dict key; valid while the layer lives */
  int32_t ndim;
  int64_t shape[4];
  uint64_t elements;
  int32_t is_set; /* 1 once set */
} dcnv4_weight_info;

/* Number of weights of the layer (0 for NULL). */
DCNV4_API size_t dcnv4_layer_weight_count(const dcnv4_layer *layer);
/* Weight `index` (0 .. count-1), in the order of the list above. */
DCNV4_API dcnv4_status dcnv4_layer_weight_info(const dcnv4_layer *layer,
                                               size_t index,
                                               dcnv4_weight_info *info);

/* Sets the weight `key` from host fp32 data of the given shape (`ndim`
 * dimensions, C order, PyTorch's layout). The data is rounded to the layer's
 * dtype and copied to the device before the call returns (a blocking write
 * on the context's queue, so after any forward already enqueued).
 * An unknown key, or a key this configuration has no weight for, gives
 * DCNV4_ERROR_INVALID_WEIGHT naming it; so does a shape other than the
 * expected one (the message gives both). */
DCNV4_API dcnv4_status dcnv4_layer_set_weight(dcnv4_layer *layer,
                                              const char *key,
                                              const float *data,
                                              const int64_t *shape, int ndim);

/* Sets every weight of the layer from a safetensors file (the format of
 * safetensors.torch.save_file): the tensor named key_prefix + key for each
 * key (NULL prefix: ""). Tensors may be F32, F16, BF16 or F64; they are
 * converted to fp32, then treated as by dcnv4_layer_set_weight. The file is
 * validated strictly (header, offsets, sizes) and only the layer's tensors
 * are read. Every weight must be in the file and every tensor under the
 * prefix must be a weight of the layer (as PyTorch's strict
 * load_state_dict); otherwise nothing is set:
 *   DCNV4_ERROR_IO            the file cannot be opened or read
 *   DCNV4_ERROR_INVALID_FILE  not a well-formed safetensors file
 *   DCNV4_ERROR_MISSING_WEIGHT  a weight's tensor is absent (named)
 *   DCNV4_ERROR_INVALID_WEIGHT  a tensor under the prefix that is no weight,
 *                             a wrong shape, or a non-float dtype (named) */
DCNV4_API dcnv4_status dcnv4_layer_load_safetensors(dcnv4_layer *layer,
                                                    const char *path,
                                                    const char *key_prefix);

/* The key of the first weight not set yet, or NULL when all are set. */
DCNV4_API const char *dcnv4_layer_missing_weight(const dcnv4_layer *layer);

/* Bytes of device scratch dcnv4_layer_dcnv4_forward needs for this input size
 * (DCNv4 layers): its intermediates in the layer's dtype, N*H*W * (j*C + S)
 * * size bytes plus alignment (size: the dtype's bytes), j from 0
 * (without_pointwise and dw_kernel_size) to 2 (with projections). */
DCNV4_API dcnv4_status
dcnv4_layer_dcnv4_workspace_size(const dcnv4_layer *layer, int32_t batch,
                                 int32_t height, int32_t width, size_t *bytes);

/* Forward of a DCNv4 layer: output (N, H*W, C) from input (N, H*W, C), both
 * in the layer's dtype, channels-last, rows in row-major (h, w) order.
 * The layer keeps the image size, as the PyTorch module does: the core
 * operator's output size must equal the input's (true whenever
 * 2*pad == dilation*(kernel_size-1) and stride is 1), else
 * DCNV4_ERROR_INVALID_SHAPE. `workspace`: a read-write buffer (or
 * sub-buffer) of at least dcnv4_layer_dcnv4_workspace_size() bytes, or NULL to
 * let the context manage it (preferred on NVIDIA: a workspace is divided into
 * sub-buffers, which NVIDIA's OpenCL runs kernels on far more slowly).
 * The commands are enqueued on the context's queue after the wait list;
 * `event` (may be NULL) completes when the output is written. A weight never
 * set gives DCNV4_ERROR_MISSING_WEIGHT naming it. Every check happens before
 * anything is enqueued; should the device fail afterwards (an OpenCL or
 * CLBlast error), the output's content is unspecified. */
DCNV4_API dcnv4_status
dcnv4_layer_dcnv4_forward(dcnv4_layer *layer, int32_t batch, int32_t height,
                          int32_t width, cl_mem input, cl_mem output,
                          cl_mem workspace, cl_uint num_events_in_wait_list,
                          const cl_event *event_wait_list, cl_event *event);

/* ------------------------------------------------ FlashDeformAttn layer */

/* Configuration of a FlashDeformAttn layer, parameter for parameter the
 * constructor of the PyTorch module (DESIGN.md §1.3). The storage dtype is
 * the argument of dcnv4_layer_fda_create, as for DCNv4 layers. */
typedef struct dcnv4_layer_fda_config {
  int32_t d_model;  /* C >= 1; a multiple of n_heads */
  int32_t n_levels; /* L, 1..DCNV4_FDA_MAX_LEVELS */
  int32_t n_heads;  /* G >= 1 */
  int32_t n_points; /* K >= 1; n_levels * n_points <= DCNV4_FDA_MAX_SAMPLES */
} dcnv4_layer_fda_config;

/* PyTorch's defaults: d_model 256, n_levels 4, n_heads 8, n_points 4. */
DCNV4_API void dcnv4_layer_fda_config_init(dcnv4_layer_fda_config *config);

/* Creates a FlashDeformAttn layer computing in `dtype` (the storage type of
 * query, reference_points, input_flatten and output) with every weight
 * unset. Its weights, by state-dict key, with P = n_heads*n_levels*n_points:
 *   sampling_offsets.weight (2P, C), sampling_offsets.bias (2P)
 *   attention_weights.weight (P, C), attention_weights.bias (P)
 *   value_proj.weight (C, C), value_proj.bias (C)
 *   output_proj.weight (C, C), output_proj.bias (C)
 * Set them with dcnv4_layer_set_weight or dcnv4_layer_load_safetensors;
 * release the layer with dcnv4_layer_destroy. */
DCNV4_API dcnv4_status dcnv4_layer_fda_create(
    dcnv4_context *context, const dcnv4_layer_fda_config *config,
    dcnv4_dtype dtype, dcnv4_layer **layer);

/* The sizes of one FlashDeformAttn layer call: what the PyTorch forward
 * reads from its tensors' shapes, plus the level tables
 * (input_spatial_shapes, input_level_start_index) as host arrays. */
typedef struct dcnv4_layer_fda_shape {
  int32_t batch;         /* N >= 1 */
  int32_t queries;       /* Lq >= 1 */
  int32_t input_len;     /* Len_in >= 1: rows of input_flatten per item */
  int32_t reference_dim; /* 2 (points) or 4 (boxes cx, cy, w, h) */
  /* (H_l, W_l) of the config's n_levels levels, and the first row of each
   * in input_flatten. The rules of dcnv4_fda_params apply: every level
   * inside [0, input_len), no two overlapping (else
   * DCNV4_ERROR_INVALID_SHAPE). Entries >= n_levels are ignored. */
  int32_t spatial_shapes[DCNV4_FDA_MAX_LEVELS][2];
  int32_t level_start[DCNV4_FDA_MAX_LEVELS];
} dcnv4_layer_fda_shape;

/* Zeroes everything and sets reference_dim 2. */
DCNV4_API void dcnv4_layer_fda_shape_init(dcnv4_layer_fda_shape *shape);

/* Bytes of device scratch dcnv4_layer_fda_forward needs for these sizes:
 * its intermediates, about (N*Len_in + N*Lq) * C * size + N*Lq*6P * 4
 * bytes plus alignment (size: the dtype's bytes; the offsets, logits and
 * locations are fp32). */
DCNV4_API dcnv4_status dcnv4_layer_fda_workspace_size(
    const dcnv4_layer *layer, const dcnv4_layer_fda_shape *shape,
    size_t *bytes);

/* Forward of a FlashDeformAttn layer (Deformable-DETR's MSDeformAttn):
 *   value = value_proj(input_flatten), rows zeroed where padding_mask != 0
 *   offsets = sampling_offsets(query)       (N, Lq, G, L, K, 2)
 *   logits = attention_weights(query)       (N, Lq, G, L*K)
 *   locations = ref + offsets / (W_l, H_l)              reference_dim 2
 *             = ref[:2] + offsets / K * ref[2:] * 0.5   reference_dim 4
 *   output = output_proj(FlashDeformAttn(value, locations, softmax(logits)))
 * Buffers, all channels-last and in the layer's dtype unless noted:
 *   query            (N, Lq, C)
 *   reference_points (N, Lq, L, reference_dim), normalized to [0, 1]
 *   input_flatten    (N, Len_in, C)
 *   padding_mask     (N, Len_in) bytes (cl_uchar), non-zero = padded; or
 *                    NULL for none
 *   output           (N, Lq, C)
 *   workspace        a read-write buffer (or sub-buffer) of at least
 *                    dcnv4_layer_fda_workspace_size() bytes, or NULL to let
 *                    the context manage it.
 * query and input_flatten may be the same buffer. The offsets, logits and
 * locations are computed and kept in fp32 whatever the dtype (upstream
 * rounds the locations to fp16 before its kernel, and its module in half
 * precision computes them in half; this layer does not). In fp16/bf16
 * layers the value (after its bias and the mask) and the core output are
 * stored in the dtype, each rounded once, as PyTorch's module in half
 * precision; the projections are 16-bit GEMMs with fp32 sums. The commands
 * are enqueued on the context's queue after the wait list; `event` (may be
 * NULL) completes when the output is written. A weight never set gives
 * DCNV4_ERROR_MISSING_WEIGHT naming it. Every check happens before anything
 * is enqueued; should the device fail afterwards (an OpenCL or CLBlast
 * error), the output's content is unspecified. */
DCNV4_API dcnv4_status dcnv4_layer_fda_forward(
    dcnv4_layer *layer, const dcnv4_layer_fda_shape *shape, cl_mem query,
    cl_mem reference_points, cl_mem input_flatten, cl_mem padding_mask,
    cl_mem output, cl_mem workspace, cl_uint num_events_in_wait_list,
    const cl_event *event_wait_list, cl_event *event);

/* ----------------------------------------------------------------- linear */

/* The layers' projection on its own: PyTorch's F.linear in fp32,
 *   output[r][o] = sum_i input[r][i] * weight[o][i] (+ bias[o]),
 * input (rows, in_features), weight (out_features, in_features), bias
 * (out_features) or NULL, output (rows, out_features), all fp32,
 * contiguous, row-major. Runs the same GEMM as the layers (this library's
 * kernel or CLBlast, per the "linear" tuning entry: backend, tiles). The
 * output must not be one of the other buffers. Enqueued on the context's
 * queue after the wait list; every check happens before anything is
 * enqueued. */
DCNV4_API dcnv4_status dcnv4_linear_forward(
    dcnv4_context *context, uint64_t rows, int32_t out_features,
    int32_t in_features, cl_mem input, cl_mem weight, cl_mem bias,
    cl_mem output, cl_uint num_events_in_wait_list,
    const cl_event *event_wait_list, cl_event *event);

/* ------------------------------------------------------ FlashInternImage */

/* The FlashInternImage classification model (upstream's
 * classification/models/flash_intern_image.py, eval mode: drop path and
 * dropout are identities): stem, four levels of DCNv4 blocks with
 * downsampling between them, and the head (1x1 convolution, BatchNorm with
 * running statistics, GELU, global average pooling, linear). The
 * attention-pooling "clip projector" head is not supported. */
typedef struct dcnv4_fii dcnv4_fii;

#define DCNV4_FII_LEVELS 4
#define DCNV4_FII_MAX_POST_NORM_BLOCKS 32

/* The constructor options of upstream's model, option for option. Block
 * forms, as upstream's InternImageLayer (g = the gammas with layer_scale,
 * else 1; RPN = the res_post_norm LayerNorms):
 *   post_norm                      x = x + g * LN(f(x))
 *   res_post_norm, no layer_scale  x = x + RPN(f(LN(x)))
 *   otherwise                      x = x + g * f(LN(x))
 * for f the DCNv4 layer, then the MLP. Each level ends with a LayerNorm
 * unless post_norm is set and center_feature_scale is not. */
typedef struct dcnv4_fii_config {
  int32_t channels;                 /* C of level 0; level l has C * 2^l */
  int32_t depths[DCNV4_FII_LEVELS]; /* blocks per level, >= 1 */
  int32_t groups[DCNV4_FII_LEVELS]; /* DCNv4 groups per level */
  float mlp_ratio;                  /* MLP hidden = int(C_l * mlp_ratio) */
  float offset_scale;               /* the DCNv4 layers' offset_scale */
  int32_t layer_scale;              /* 1: blocks have gamma1/gamma2 */
  int32_t post_norm;                /* 1: x + gamma * LN(f(x)) */
  int32_t dw_kernel_size;           /* 0: none; else the DCNv4 layers' */
  int32_t res_post_norm;            /* 1: x + LN(f(LN(x))) (H/G models) */
  int32_t center_feature_scale;     /* as upstream: builds level norms */
  int32_t level2_post_norm;         /* 1: LNs after some level-2 blocks */
  /* One LN (levels.2.post_norms.k) per entry; block i is followed by the
   * first whose id is i. Ids that match no block still have weights, as
   * upstream. Used with level2_post_norm only; count 0 = upstream's None. */
  int32_t level2_post_norm_block_ids[DCNV4_FII_MAX_POST_NORM_BLOCKS];
  int32_t level2_post_norm_block_count; /* entries used of the above */
  int32_t mlp_fc2_bias;                 /* 1: the MLP's fc2 has a bias */
  int32_t dcn_output_bias; /* 1: the DCNv4 output_proj has a bias */
  float cls_scale;         /* head width = int(8C * cls_scale) */
  /* 0: upstream's head is the identity; the head convolution, BatchNorm,
   * GELU and pooling remain, and "logits" are the pooled (N, head width)
   * features */
  int32_t num_classes;
} dcnv4_fii_config;

/* Upstream's defaults (FlashInternImage-T's shape, 1000 classes). */
DCNV4_API void dcnv4_fii_config_init(dcnv4_fii_config *config);

/* The released variants by name: "t", "s", "b", "l" (upstream's
 * configs/flash_intern_image_{t,s,b,l}_*.yaml over its config.py defaults,
 * 1000 classes); the whole config is overwritten. An unknown name gives
 * DCNV4_ERROR_INVALID_PARAMETER and leaves config unchanged; NULL gives
 * DCNV4_ERROR_NULL_POINTER. */
DCNV4_API dcnv4_status dcnv4_fii_config_preset(dcnv4_fii_config *config,
                                               const char *name);

/* Creates a model with every weight rounded to `dtype` at load (a 16-bit
 * model computes with the weights the 16-bit checkpoint holds). The
 * activations between operators (residual stream, norms' outputs, MLP
 * hidden features, the DCNv4 layers' inputs, outputs and intermediates) are
 * stored in `dtype`, each rounded once, as PyTorch's model.half() (or
 * bfloat16) computes; every sum and reduction (GEMMs, convolutions, norms,
 * pooling) accumulates in fp32, and images, logits and features stay fp32
 * (see dcnv4_fii_forward). A configuration outside upstream's (or the DCNv4
 * layer's) limits gives DCNV4_ERROR_INVALID_PARAMETER naming the option.
 * Weights start unset: load them with dcnv4_fii_load_safetensors. */
DCNV4_API dcnv4_status dcnv4_fii_create(dcnv4_context *context,
                                        const dcnv4_fii_config *config,
                                        dcnv4_dtype dtype, dcnv4_fii **model);

DCNV4_API void dcnv4_fii_destroy(dcnv4_fii *model);

/* Loads every weight from a safetensors file holding the model's PyTorch
 * state dict under upstream's key names (patch_embed.conv1.weight,
 * levels.0.blocks.0.dcn.offset_mask.weight, conv_head.1.0.running_var, ...;
 * BatchNorm running statistics included, conv_head.1.0.num_batches_tracked
 * ignored). Tensors may be F32, F16, BF16 or F64. The BatchNorm is folded
 * into the head's 1x1 convolution (eps 1e-5). Errors, all found before any
 * weight is written (the model keeps what it had):
 *   DCNV4_ERROR_IO            the file cannot be opened or read
 *   DCNV4_ERROR_INVALID_FILE  not a well-formed safetensors file
 *   DCNV4_ERROR_MISSING_WEIGHT  a weight's key is absent (named)
 *   DCNV4_ERROR_INVALID_WEIGHT  an unexpected key, a wrong shape or a
 *                             non-float dtype (named)
 * A read or device failure while writing leaves the model unloaded. */
DCNV4_API dcnv4_status dcnv4_fii_load_safetensors(dcnv4_fii *model,
                                                  const char *path);

/* Number of weights (state-dict keys, num_batches_tracked excepted) of the
 * model (0 for NULL), and weight `index` (0 .. count-1) in upstream's order;
 * is_set is 1 once weights were loaded. The key is valid while the model
 * lives. */
DCNV4_API size_t dcnv4_fii_weight_count(const dcnv4_fii *model);
DCNV4_API dcnv4_status dcnv4_fii_weight_info(const dcnv4_fii *model,
                                             size_t index,
                                             dcnv4_weight_info *info);

/* The spatial size of level l's output for an image of height x width:
 * two stride-2 convolutions in the stem, one more per level after 0
 * (each ceil(n / 2), PyTorch's formula with kernel 3, padding 1). */
DCNV4_API dcnv4_status dcnv4_fii_level_size(const dcnv4_fii *model,
                                            int32_t height, int32_t width,
                                            int32_t level, int32_t *level_h,
                                            int32_t *level_w,
                                            int32_t *level_channels);

/* The width of dcnv4_fii_forward's `logits`: num_classes, or the head's
 * width int(8C * cls_scale) when num_classes is 0. 0 for NULL. */
DCNV4_API int32_t dcnv4_fii_output_width(const dcnv4_fii *model);

/* Bytes of device scratch dcnv4_fii_forward needs for this batch and image
 * size: about N * (stem + the widest level's activations, MLP hidden and
 * DCNv4 intermediates) * size, plus alignment (size: the dtype's bytes). */
DCNV4_API dcnv4_status dcnv4_fii_workspace_size(const dcnv4_fii *model,
                                                int32_t batch, int32_t height,
                                                int32_t width, size_t *bytes);

/* Forward pass: image (N, 3, H, W) fp32 as PyTorch takes it (normalized);
 * logits (N, dcnv4_fii_output_width()) fp32, or NULL; features[l]
 * (N, h_l, w_l, C_l) fp32 channels-last (dcnv4_fii_level_size), level l's
 * output after its norm and before its downsampling, or NULL (features
 * itself may be NULL). At least one output (else DCNV4_ERROR_NULL_POINTER);
 * outputs must be distinct buffers, none the image or the workspace.
 * workspace: a read-write buffer of at least dcnv4_fii_workspace_size()
 * bytes, or NULL to let the context manage it (preferred on NVIDIA, as for
 * the layers). Weights never loaded give DCNV4_ERROR_MISSING_WEIGHT.
 * Enqueued on the context's queue after the wait list; `event` (may be
 * NULL) completes when every output is written. Every check happens before
 * anything is enqueued; should the device fail afterwards, the outputs'
 * content is unspecified. */
DCNV4_API dcnv4_status dcnv4_fii_forward(
    dcnv4_fii *model, int32_t batch, int32_t height, int32_t width,
    cl_mem image, cl_mem logits, const cl_mem *features, cl_mem workspace,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list,
    cl_event *event);

/* The stages dcnv4_fii_forward_profiled reports: the stem, the four levels
 * (each with the downsampling that ends it, as upstream's levels) and the
 * head (empty when logits is NULL). */
#define DCNV4_FII_STAGES 6

/* For profiling (dcnv4-bench): dcnv4_fii_forward, plus a marker at every
 * stage boundary. stage_events[0] completes when the forward starts (its
 * wait list met), stage_events[1 + s] when stage s is done, the last one
 * when every output is written. On a context created with
 * enable_profiling, stage s took CL_PROFILING_COMMAND_END of
 * stage_events[1 + s] minus that of stage_events[s]. The caller releases
 * the DCNV4_FII_STAGES + 1 events; on an error none is returned (all set
 * to NULL). The markers may cost a little; time the whole forward with
 * dcnv4_fii_forward. NULL stage_events gives DCNV4_ERROR_NULL_POINTER. */
DCNV4_API dcnv4_status dcnv4_fii_forward_profiled(
    dcnv4_fii *model, int32_t batch, int32_t height, int32_t width,
    cl_mem image, cl_mem logits, const cl_mem *features, cl_mem workspace,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list,
    cl_event stage_events[DCNV4_FII_STAGES + 1]);

#ifdef __cplusplus
}
#endif

#endif /* DCNV4_H */
