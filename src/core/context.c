/* Context creation and destruction. */
#include "core/fault.h"
#include "tuning/tuning.h"

#include <CL/cl_ext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dcnv4_context_options_init(dcnv4_context_options *options) {
  if (options)
    memset(options, 0, sizeof *options);
}

/* Writes the creation failure reason where the caller asked for it. */
static dcnv4_status creation_failed(const dcnv4_context_options *options,
                                    dcnv4_status status, const char *fmt, ...)
    DCN_PRINTF(3, 4);
static dcnv4_status creation_failed(const dcnv4_context_options *options,
                                    dcnv4_status status, const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  if (options && options->error_buffer && options->error_buffer_size > 0)
    snprintf(options->error_buffer, options->error_buffer_size, "%s", message);
  dcn_log(NULL, DCN_LOG_INFO, "context creation failed: %s", message);
  return status;
}

/* Whether the device's extension list names `name` (a whole token). */
static bool device_has_extension(cl_device_id device, const char *name) {
  size_t size = 0;
  if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, 0, NULL, &size) !=
          CL_SUCCESS ||
      size == 0)
    return false;
  char *list = dcn_malloc(size + 1);
  if (!list)
    return false;
  bool found = false;
  if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, size, list, NULL) ==
      CL_SUCCESS) {
    list[size] = '\0';
    size_t len = strlen(name);
    for (const char *at = strstr(list, name); at && !found;
         at = strstr(at + 1, name))
      found =
          (at == list || at[-1] == ' ') && (at[len] == ' ' || at[len] == '\0');
  }
  dcn_free(list);
  return found;
}

/* ctx->static_local_bytes: CUDA's largest shared memory per block by
 * compute capability, which ptxas enforces on static arrays; the reported
 * size elsewhere (before 8, on newer majors, where the minor cannot be
 * read). */
static cl_ulong nv_static_local_bytes(const dcnv4_context *ctx) {
  cl_uint minor = 0;
  if (ctx->vendor != DCN_VENDOR_NVIDIA || ctx->nv_compute_major < 8 ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV,
                      sizeof minor, &minor, NULL) != CL_SUCCESS)
    return ctx->local_mem_bytes;
  cl_ulong kib;
  switch (ctx->nv_compute_major) {
  case 8: /* 8.0 and 8.7: 163 KiB; 8.6 and 8.9: 99 KiB */
    kib = minor == 0 || minor == 7 ? 163 : 99;
    break;
  case 9: /* H100, H200 */
  case 10: /* B200 */ kib = 227; break;
  case 12: kib = 99; break;
  default: return ctx->local_mem_bytes;
  }
  return kib * 1024 > ctx->local_mem_bytes ? kib * 1024 : ctx->local_mem_bytes;
}

/* Reads the device limits and environment into a context whose OpenCL
 * handles are set. */
static dcnv4_status finish_setup(dcnv4_context *ctx,
                                 const dcnv4_context_options *options,
                                 char *why, size_t why_size) {
  cl_device_type type = 0;
  if (dcn_query_device_info(ctx->platform, ctx->device, &ctx->info) !=
          DCNV4_SUCCESS ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_TYPE, sizeof type, &type, NULL) !=
          CL_SUCCESS ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_ADDRESS_BITS,
                      sizeof ctx->address_bits, &ctx->address_bits,
                      NULL) != CL_SUCCESS ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                      sizeof ctx->max_work_group_size,
                      &ctx->max_work_group_size, NULL) != CL_SUCCESS ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE,
                      sizeof ctx->max_alloc_bytes, &ctx->max_alloc_bytes,
                      NULL) != CL_SUCCESS ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_LOCAL_MEM_SIZE,
                      sizeof ctx->local_mem_bytes, &ctx->local_mem_bytes,
                      NULL) != CL_SUCCESS ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_COMPUTE_UNITS,
                      sizeof ctx->compute_units, &ctx->compute_units,
                      NULL) != CL_SUCCESS ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES,
                      sizeof ctx->max_item_sizes, ctx->max_item_sizes,
                      NULL) != CL_SUCCESS) {
    snprintf(why, why_size, "could not query the device's properties");
    return DCNV4_ERROR_OPENCL;
  }
  ctx->vendor = dcn_classify_vendor(&ctx->info, type);
  ctx->nv_compiler_options =
      device_has_extension(ctx->device, "cl_nv_compiler_options");
  /* Left 0 where the query fails. */
  if (ctx->vendor == DCN_VENDOR_NVIDIA &&
      device_has_extension(ctx->device, "cl_nv_device_attribute_query") &&
      clGetDeviceInfo(ctx->device, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV,
                      sizeof ctx->nv_compute_major, &ctx->nv_compute_major,
                      NULL) != CL_SUCCESS)
    ctx->nv_compute_major = 0;
  ctx->static_local_bytes = nv_static_local_bytes(ctx);
  dcn_tuning_identify(ctx);
  /* The platform index is not known for application-given handles; find it
   * by name among the listed devices so logs and tuning files agree. */
  size_t n = 0;
  if (dcnv4_list_devices(NULL, 0, &n) == DCNV4_SUCCESS && n > 0) {
    dcnv4_device_info *all = dcn_calloc(n, sizeof *all);
    if (all && dcnv4_list_devices(all, n, &n) == DCNV4_SUCCESS) {
      for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].device_name, ctx->info.device_name) == 0 &&
            strcmp(all[i].platform_name, ctx->info.platform_name) == 0) {
          ctx->info.platform_index = all[i].platform_index;
          ctx->info.device_index = all[i].device_index;
          break;
        }
    }
    dcn_free(all);
  }
  const char *tuning = getenv("DCNV4_TUNING");
  if (tuning && *tuning &&
      !dcn_tuning_parse(tuning, &ctx->tuning, why, why_size))
    return DCNV4_ERROR_INVALID_PARAMETER;
  ctx->cache_dir = dcn_resolve_cache_dir(options);
  /* After the cache folder: the tuning file lives under it by default. */
  dcn_tuning_file_load(ctx);
  dcn_linear_apply_file_tuning(ctx);
  const char *kdir = getenv("DCNV4_KERNEL_DIR");
  if (kdir && *kdir) {
    ctx->kernel_dir = dcn_strdup(kdir);
    if (!ctx->kernel_dir) {
      snprintf(why, why_size, "out of host memory");
      return DCNV4_ERROR_OUT_OF_HOST_MEMORY;
    }
  }
  dcn_log(ctx, DCN_LOG_INFO, "device %u:%u %s (%s, driver %s), cache %s%s%s",
          ctx->info.platform_index, ctx->info.device_index,
          ctx->info.device_name, ctx->info.platform_name,
          ctx->info.driver_version, ctx->cache_dir ? ctx->cache_dir : "off",
          ctx->kernel_dir ? ", kernels from " : "",
          ctx->kernel_dir ? ctx->kernel_dir : "");
  return DCNV4_SUCCESS;
}

static dcnv4_context *allocate_context(void) {
  dcnv4_context *ctx = dcn_calloc(1, sizeof *ctx);
  if (ctx)
    ctx->log_level = dcn_log_level_from_env();
  return ctx;
}

dcnv4_status dcnv4_context_create(const dcnv4_context_options *options,
                                  dcnv4_context **context) {
  if (!context)
    return creation_failed(options, DCNV4_ERROR_NULL_POINTER,
                           "context pointer is NULL");
  *context = NULL;
  const char *spec =
      options && options->device ? options->device : getenv("DCNV4_DEVICE");
  char why[512] = "";
  cl_platform_id platform;
  cl_device_id device;
  dcnv4_status st =
      dcn_select_device(spec, &platform, &device, why, sizeof why);
  if (st != DCNV4_SUCCESS)
    return creation_failed(options, st, "%s", why);

  dcnv4_context *ctx = allocate_context();
  if (!ctx)
    return creation_failed(options, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                           "out of host memory");
  ctx->platform = platform;
  ctx->device = device;
  cl_int err;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   (cl_context_properties)platform, 0};
  ctx->cl_ctx = dcn_clCreateContext(props, device, &err);
  if (!ctx->cl_ctx) {
    dcnv4_context_destroy(ctx);
    return creation_failed(options, DCNV4_ERROR_OPENCL,
                           "clCreateContext failed: %s",
                           dcn_cl_error_name(err));
  }
  cl_command_queue_properties qprops =
      options && options->enable_profiling ? CL_QUEUE_PROFILING_ENABLE : 0;
  ctx->queue = dcn_clCreateCommandQueue(ctx->cl_ctx, device, qprops, &err);
  if (!ctx->queue) {
    dcnv4_context_destroy(ctx);
    return creation_failed(options, DCNV4_ERROR_OPENCL,
                           "clCreateCommandQueue failed: %s",
                           dcn_cl_error_name(err));
  }
  st = finish_setup(ctx, options, why, sizeof why);
  if (st != DCNV4_SUCCESS) {
    dcnv4_context_destroy(ctx);
    return creation_failed(options, st, "%s", why);
  }
  *context = ctx;
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_context_create_from_cl(cl_context cl_ctx,
                                          cl_device_id device,
                                          cl_command_queue queue,
                                          const dcnv4_context_options *options,
                                          dcnv4_context **context) {
  if (!context)
    return creation_failed(options, DCNV4_ERROR_NULL_POINTER,
                           "context pointer is NULL");
  *context = NULL;
  if (!cl_ctx || !device || !queue)
    return creation_failed(options, DCNV4_ERROR_NULL_POINTER,
                           "cl_context, device and queue must all be given");
  cl_context queue_ctx = NULL;
  cl_device_id queue_dev = NULL;
  cl_command_queue_properties qprops = 0;
  cl_platform_id platform = NULL;
  if (clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof queue_ctx,
                            &queue_ctx, NULL) != CL_SUCCESS ||
      clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof queue_dev,
                            &queue_dev, NULL) != CL_SUCCESS ||
      clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof qprops, &qprops,
                            NULL) != CL_SUCCESS ||
      clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform,
                      NULL) != CL_SUCCESS)
    return creation_failed(options, DCNV4_ERROR_INVALID_PARAMETER,
                           "the queue or device handle is not valid");
  if (queue_ctx != cl_ctx || queue_dev != device)
    return creation_failed(options, DCNV4_ERROR_INVALID_PARAMETER,
                           "the queue does not belong to the given context "
                           "and device");
  if (qprops & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
    return creation_failed(options, DCNV4_ERROR_UNSUPPORTED,
                           "the queue is out of order; dcnv4 needs an "
                           "in-order queue");
  dcnv4_context *ctx = allocate_context();
  if (!ctx)
    return creation_failed(options, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                           "out of host memory");
  clRetainContext(cl_ctx);
  clRetainCommandQueue(queue);
  ctx->cl_ctx = cl_ctx;
  ctx->queue = queue;
  ctx->device = device;
  ctx->platform = platform;
  char why[512] = "";
  dcnv4_status st = finish_setup(ctx, options, why, sizeof why);
  if (st != DCNV4_SUCCESS) {
    dcnv4_context_destroy(ctx);
    return creation_failed(options, st, "%s", why);
  }
  *context = ctx;
  return DCNV4_SUCCESS;
}

void dcnv4_context_destroy(dcnv4_context *ctx) {
  if (!ctx)
    return;
  dcn_release_programs(ctx);
  dcnv4_context_release_scratch(ctx);
  if (ctx->queue)
    clReleaseCommandQueue(ctx->queue);
  if (ctx->cl_ctx)
    clReleaseContext(ctx->cl_ctx);
  dcn_free(ctx->cache_dir);
  dcn_free(ctx->kernel_dir);
  dcn_free(ctx->tuning_file);
  dcn_free(ctx->tuning_entries);
  dcn_free(ctx->gemm_entries);
  dcn_free(ctx->error_dynamic);
  dcn_free(ctx);
}

cl_context dcnv4_context_cl_context(const dcnv4_context *ctx) {
  return ctx ? ctx->cl_ctx : NULL;
}

cl_command_queue dcnv4_context_queue(const dcnv4_context *ctx) {
  return ctx ? ctx->queue : NULL;
}

cl_device_id dcnv4_context_device(const dcnv4_context *ctx) {
  return ctx ? ctx->device : NULL;
}

dcnv4_status dcnv4_context_device_info(dcnv4_context *ctx,
                                       dcnv4_device_info *info) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (!info)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "info is NULL");
  *info = ctx->info;
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_context_finish(dcnv4_context *ctx) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  cl_int err = dcn_clFinish(ctx->queue);
  return err == CL_SUCCESS ? DCNV4_SUCCESS : dcn_fail_cl(ctx, err, "clFinish");
}

dcnv4_status dcnv4_context_release_scratch(dcnv4_context *ctx) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (ctx->scratch)
    clReleaseMemObject(ctx->scratch);
  ctx->scratch = NULL;
  ctx->scratch_bytes = 0;
  if (ctx->gemm_partials)
    clReleaseMemObject(ctx->gemm_partials);
  ctx->gemm_partials = NULL;
  ctx->gemm_partials_bytes = 0;
  for (int i = 0; i < DCN_SCRATCH_MAX_REGIONS; i++) {
    if (ctx->region[i])
      clReleaseMemObject(ctx->region[i]);
    ctx->region[i] = NULL;
    ctx->region_bytes[i] = 0;
  }
  return DCNV4_SUCCESS;
}
