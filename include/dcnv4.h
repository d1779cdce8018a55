/*
 * dcnv4 — Deformable Convolution v4 and FlashDeformAttn on OpenCL.
 *
 * The whole public C API. C99-clean; every call returns a dcnv4_status and
 * never aborts, exits or prints (unless DCNV4_LOG asks for messages). A failed
 * call leaves a message readable with dcnv4_context_last_error() and enqueues
 * nothing. Tensors are channels-last, row-major, contiguous `cl_mem` buffers
 * (see DESIGN.md §1 for the exact semantics of each operator).
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
#define DCNV4_VERSION_MINOR 1
#define DCNV4_VERSION_PATCH 0
#define DCNV4_VERSION_STRING "0.1.0"
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
  /* Device: "P:D" (platform and device index) or a case-insensitive
   * substring of the device or platform name. NULL: $DCNV4_DEVICE, else the
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

/* Frees the scratch memory the context manages for calls given no workspace.
 * Call only when no such call is in flight (e.g. after dcnv4_context_finish).
 */
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
} dcnv4_params;

/* Defaults: 3x3 kernel, stride 1, pad 1, dilation 1, offset_scale 1, group 1,
 * fp32; the sizes (batch, height_in, width_in, group_channels) are 0 and must
 * be set. */
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

/* Bytes of device scratch dcnv4_backward needs (0 for fp32: the gradient is
 * accumulated in place; N*H_in*W_in*C*4 for fp16/bf16). */
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

/* Gradients of the forward with respect to input and offset_mask. */
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
} dcnv4_fda_params;

/* Zeroes everything and sets dtype fp32, group 1, levels 1, points 4; the
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

/* Bytes of device scratch dcnv4_fda_backward needs (0 for fp32: the value
 * gradient is accumulated in place; B*Nv*G*D*4 for fp16/bf16). */
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
 * locations, and the logits through the softmax). */
DCNV4_API dcnv4_status dcnv4_fda_backward(
    dcnv4_context *context, const dcnv4_fda_params *params,
    const dcnv4_fda_backward_buffers *buffers, cl_uint num_events_in_wait_list,
    const cl_event *event_wait_list, cl_event *event);

#ifdef __cplusplus
}
#endif

#endif /* DCNV4_H */
