/* Program registry: kernel sources (embedded, or read from DCNV4_KERNEL_DIR),
 * built per device with -D options and cached in memory and on disk. */
#include "core/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Which source files make up each program, in order. */
typedef struct program_recipe {
  const char *name;
  const char *files[5];
} program_recipe;

static const program_recipe recipes[] = {
    {"dcnv4_forward",
     {"ops/common/common.clh", "ops/dcnv4/dcnv4_forward.cl", NULL}},
    {"dcnv4_backward",
     {"ops/common/common.clh", "ops/dcnv4/dcnv4_backward.cl", NULL}},
    {"convert", {"ops/common/common.clh", "ops/common/convert.cl", NULL}},
    {"zero", {"ops/common/zero.cl", NULL}},
    {"fda_forward",
     {"ops/common/common.clh", "ops/fda/fda_common.clh",
      "ops/fda/fda_forward.cl", NULL}},
    {"fda_backward",
     {"ops/common/common.clh", "ops/fda/fda_common.clh",
      "ops/fda/fda_backward.cl", NULL}},
    {"layer_ops",
     {"ops/common/common.clh", "ops/layer_ops/layer_ops.cl", NULL}},
    {"linear",
     {"ops/common/common.clh", "ops/linear/linear_out.clh",
      "ops/linear/linear.cl", NULL}},
    {"linear_mma",
     {"ops/common/common.clh", "ops/common/warp_mma.clh",
      "ops/linear/linear_out.clh", "ops/linear/linear_mma.cl", NULL}},
    {"fii_conv2d", {"ops/common/common.clh", "ops/fii/conv2d.cl", NULL}},
    {"fii_layernorm", {"ops/common/common.clh", "ops/fii/layernorm.cl", NULL}},
    {"fii_ops", {"ops/common/common.clh", "ops/fii/fii_ops.cl", NULL}},
    {"deterministic_common", {"ops/common/deterministic_common.cl", NULL}},
    /* fp_contract_off.clh: bitwise results whatever the work-group sizes. */
    {"dcnv4_backward_deterministic",
     {"ops/common/fp_contract_off.clh", "ops/common/common.clh",
      "ops/dcnv4/dcnv4_backward_deterministic.cl", NULL}},
    {"fda_backward_deterministic",
     {"ops/common/fp_contract_off.clh", "ops/common/common.clh",
      "ops/fda/fda_common.clh", "ops/fda/fda_backward_deterministic.cl", NULL}},
};

static const program_recipe *find_recipe(const char *name) {
  for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
    if (strcmp(recipes[i].name, name) == 0)
      return &recipes[i];
  return NULL;
}

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Reads one source file: from the kernel folder if set, else embedded. */
static dcnv4_status read_source(dcnv4_context *ctx, const char *file,
                                char **text, size_t *size) {
  if (!ctx->kernel_dir) {
    for (size_t i = 0; i < dcn_embedded_source_count; i++)
      if (strcmp(dcn_embedded_sources[i].name, file) == 0) {
        *text = dcn_malloc(dcn_embedded_sources[i].size + 1);
        if (!*text)
          return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                          "out of host memory");
        memcpy(*text, dcn_embedded_sources[i].text,
               dcn_embedded_sources[i].size);
        (*text)[dcn_embedded_sources[i].size] = '\0';
        *size = dcn_embedded_sources[i].size;
        return DCNV4_SUCCESS;
      }
    return dcn_fail(ctx, DCNV4_ERROR_BUILD_FAILED,
                    "kernel source %s is not embedded", file);
  }
  char *path = dcn_asprintf("%s/%s", ctx->kernel_dir, file);
  FILE *f = path ? fopen(path, "rb") : NULL;
  long n = -1;
  if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
      fseek(f, 0, SEEK_SET) == 0) {
    *text = dcn_malloc((size_t)n + 1);
    if (*text && fread(*text, 1, (size_t)n, f) == (size_t)n) {
      (*text)[n] = '\0';
      *size = (size_t)n;
      fclose(f);
      dcn_free(path);
      return DCNV4_SUCCESS;
    }
    dcn_free(*text);
    *text = NULL;
  }
  if (f)
    fclose(f);
  dcnv4_status st = dcn_fail(ctx, DCNV4_ERROR_IO,
                             "cannot read kernel source %s (DCNV4_KERNEL_DIR)",
                             path ? path : file);
  dcn_free(path);
  return st;
}

/* Concatenates a program's files, each preceded by a #line marker so
 * compiler messages name the right file. */
static dcnv4_status assemble_source(dcnv4_context *ctx,
                                    const program_recipe *recipe,
                                    char **source) {
  char *all = NULL;
  size_t used = 0;
  for (size_t i = 0;
       i < sizeof recipe->files / sizeof recipe->files[0] && recipe->files[i];
       i++) {
    char *text = NULL;
    size_t size = 0;
    dcnv4_status st = read_source(ctx, recipe->files[i], &text, &size);
    if (st != DCNV4_SUCCESS) {
      dcn_free(all);
      return st;
    }
    char marker[160];
    int m =
        snprintf(marker, sizeof marker, "#line 1 \"%s\"\n", recipe->files[i]);
    char *grown = dcn_realloc(all, used + (size_t)m + size + 2);
    if (!grown) {
      dcn_free(text);
      dcn_free(all);
      return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                      "out of host memory");
    }
    all = grown;
    memcpy(all + used, marker, (size_t)m);
    used += (size_t)m;
    memcpy(all + used, text, size);
    used += size;
    all[used++] = '\n';
    all[used] = '\0';
    dcn_free(text);
  }
  *source = all;
  return DCNV4_SUCCESS;
}

static char *build_log(dcnv4_context *ctx, cl_program program) {
  size_t size = 0;
  if (clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL,
                            &size) != CL_SUCCESS ||
      size == 0)
    return NULL;
  char *log = dcn_malloc(size + 1);
  if (!log)
    return NULL;
  if (clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, size,
                            log, NULL) != CL_SUCCESS) {
    dcn_free(log);
    return NULL;
  }
  log[size] = '\0';
  return log;
}

/* Tries the disk cache; NULL when there is no usable entry. */
static cl_program program_from_cache(dcnv4_context *ctx, const char *key,
                                     const char *options) {
  dcn_binary bin = {NULL, 0};
  dcn_cache_result r = dcn_disk_cache_load(ctx, key, &bin);
  if (r == DCN_CACHE_REJECTED)
    ctx->cache_stats.disk_rejects++;
  if (r != DCN_CACHE_HIT)
    return NULL;
  cl_int err, binary_status = CL_SUCCESS;
  cl_program p = dcn_clCreateProgramWithBinary(
      ctx->cl_ctx, ctx->device, bin.size, bin.data, &binary_status, &err);
  dcn_free(bin.data);
  if (p && err == CL_SUCCESS && binary_status == CL_SUCCESS &&
      dcn_clBuildProgram(p, ctx->device, options) == CL_SUCCESS) {
    ctx->cache_stats.disk_hits++;
    return p;
  }
  /* The driver refused a file whose checksum matched: stale. Rebuild. */
  if (p)
    clReleaseProgram(p);
  ctx->cache_stats.disk_rejects++;
  dcn_log(ctx, DCN_LOG_INFO, "cached binary refused by the driver; rebuilding");
  return NULL;
}

/* Saves a freshly built program's binary to the disk cache. */
static void store_binary(dcnv4_context *ctx, cl_program p, const char *key) {
  if (!ctx->cache_dir)
    return;
  size_t size = 0;
  if (dcn_clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size,
                           NULL) != CL_SUCCESS ||
      size == 0)
    return;
  unsigned char *bin = dcn_malloc(size);
  if (!bin)
    return;
  if (dcn_clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) ==
      CL_SUCCESS) {
    dcn_disk_cache_store(ctx, key, bin, size);
    ctx->cache_stats.disk_writes++;
  }
  dcn_free(bin);
}

static dcnv4_status build_program(dcnv4_context *ctx,
                                  const program_recipe *recipe,
                                  const char *options, cl_program *out) {
  char *source = NULL;
  dcnv4_status st = assemble_source(ctx, recipe, &source);
  if (st != DCNV4_SUCCESS)
    return st;
  uint64_t source_hash = dcn_hash(source, strlen(source), DCN_HASH_SEED);
  char *key = dcn_asprintf(
      "dcnv4 %s\nplatform %s\ndevice %s\nvendor %s\ndriver %s\nversion %s\n"
      "address bits %u\nprogram %s\nsource %016llx\noptions %s\n",
      DCNV4_VERSION_STRING, ctx->info.platform_name, ctx->info.device_name,
      ctx->info.vendor, ctx->info.driver_version, ctx->info.device_version,
      (unsigned)ctx->address_bits, recipe->name,
      (unsigned long long)source_hash, options);
  if (!key) {
    dcn_free(source);
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  }
  double t0 = now_seconds();
  cl_program p = program_from_cache(ctx, key, options);
  if (p) {
    dcn_log(ctx, DCN_LOG_INFO, "program %s [%s] loaded from cache in %.1f ms",
            recipe->name, options, 1e3 * (now_seconds() - t0));
    goto done;
  }
  cl_int err;
  const char *text = source;
  p = dcn_clCreateProgramWithSource(ctx->cl_ctx, 1, &text, NULL, &err);
  if (!p) {
    st = dcn_fail_cl(ctx, err, "clCreateProgramWithSource");
    goto done;
  }
  err = dcn_clBuildProgram(p, ctx->device, options);
  if (err != CL_SUCCESS) {
    /* Only the compiler's verdict is a build failure (remembered, and the
     * reason to try other options); anything else (out of resources or host
     * memory) is an OpenCL error that may pass on a later call. */
    bool compiler_said_no =
        err == CL_BUILD_PROGRAM_FAILURE || err == CL_INVALID_BUILD_OPTIONS;
    char *log = build_log(ctx, p);
    st = dcn_fail_with_log(
        ctx, compiler_said_no ? DCNV4_ERROR_BUILD_FAILED : DCNV4_ERROR_OPENCL,
        log,
        "building program %s with options \"%s\" failed: "
        "%s; build log:",
        recipe->name, options, dcn_cl_error_name(err));
    dcn_free(log);
    clReleaseProgram(p);
    p = NULL;
    goto done;
  }
  ctx->cache_stats.source_builds++;
  dcn_log(ctx, DCN_LOG_INFO, "program %s [%s] built from source in %.1f ms",
          recipe->name, options, 1e3 * (now_seconds() - t0));
  store_binary(ctx, p, key);
done:
  dcn_free(key);
  dcn_free(source);
  *out = p;
  return st;
}

static void release_program(dcn_program *prog) {
  for (size_t k = 0; k < prog->kernel_count; k++) {
    if (prog->kernels[k])
      clReleaseKernel(prog->kernels[k]);
    dcn_free(prog->kernel_names[k]);
  }
  dcn_free(prog->kernels);
  dcn_free(prog->kernel_names);
  if (prog->program)
    clReleaseProgram(prog->program);
  dcn_free(prog->name);
  dcn_free(prog->options);
}

void dcn_release_programs(dcnv4_context *ctx) {
  for (size_t i = 0; i < ctx->program_count; i++)
    release_program(&ctx->programs[i]);
  dcn_free(ctx->programs);
  ctx->programs = NULL;
  ctx->program_count = ctx->program_capacity = 0;
}

/* Finds or builds the program and appends it to the registry. */
static dcnv4_status get_program(dcnv4_context *ctx, const char *name,
                                const char *options, dcn_program **out) {
  for (size_t i = 0; i < ctx->program_count; i++) {
    dcn_program *p = &ctx->programs[i];
    if (strcmp(p->name, name) == 0 && strcmp(p->options, options) == 0) {
      if (p->failed)
        return dcn_fail(ctx, DCNV4_ERROR_BUILD_FAILED,
                        "program %s with options \"%s\" failed to build "
                        "earlier in this context",
                        name, options);
      ctx->cache_stats.memory_hits++;
      *out = p;
      return DCNV4_SUCCESS;
    }
  }
  const program_recipe *recipe = find_recipe(name);
  if (!recipe)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER, "unknown program %s",
                    name);
  if (ctx->program_count == ctx->program_capacity) {
    size_t cap = ctx->program_capacity ? 2 * ctx->program_capacity : 8;
    dcn_program *grown = dcn_realloc(ctx->programs, cap * sizeof *grown);
    if (!grown)
      return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY,
                      "out of host memory");
    ctx->programs = grown;
    ctx->program_capacity = cap;
  }
  dcn_program prog;
  memset(&prog, 0, sizeof prog);
  prog.name = dcn_strdup(name);
  prog.options = dcn_strdup(options);
  if (!prog.name || !prog.options) {
    release_program(&prog);
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  }
  dcnv4_status st = build_program(ctx, recipe, options, &prog.program);
  if (st == DCNV4_ERROR_BUILD_FAILED) {
    /* The compiler said no: remember it so the build is not retried on every
     * call. (Resource failures are not remembered; they may pass later.) */
    prog.failed = true;
    ctx->programs[ctx->program_count++] = prog;
    return st;
  }
  if (st != DCNV4_SUCCESS) {
    release_program(&prog);
    return st;
  }
  ctx->programs[ctx->program_count] = prog;
  *out = &ctx->programs[ctx->program_count++];
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_get_kernel(dcnv4_context *ctx, const char *program_name,
                            const char *options, const char *kernel_name,
                            cl_kernel *kernel) {
  char *full = dcn_asprintf("%s %s", DCN_BASE_BUILD_OPTIONS, options);
  if (!full)
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  dcn_program *prog = NULL;
  dcnv4_status st = get_program(ctx, program_name, full, &prog);
  dcn_free(full);
  if (st != DCNV4_SUCCESS)
    return st;
  for (size_t k = 0; k < prog->kernel_count; k++)
    if (strcmp(prog->kernel_names[k], kernel_name) == 0) {
      *kernel = prog->kernels[k];
      return DCNV4_SUCCESS;
    }
  size_t n = prog->kernel_count + 1;
  cl_kernel *kernels = dcn_realloc(prog->kernels, n * sizeof *kernels);
  if (kernels)
    prog->kernels = kernels;
  char **names = dcn_realloc(prog->kernel_names, n * sizeof *names);
  if (names)
    prog->kernel_names = names;
  char *name = kernels && names ? dcn_strdup(kernel_name) : NULL;
  if (!name)
    return dcn_fail(ctx, DCNV4_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  cl_int err;
  cl_kernel k = dcn_clCreateKernel(prog->program, kernel_name, &err);
  if (!k) {
    dcn_free(name);
    return dcn_fail_cl(ctx, err, "clCreateKernel");
  }
  prog->kernels[prog->kernel_count] = k;
  prog->kernel_names[prog->kernel_count] = name;
  prog->kernel_count = n;
  *kernel = k;
  return DCNV4_SUCCESS;
}

dcnv4_status dcn_get_kernel_first(dcnv4_context *ctx, const char *program_name,
                                  const char *const *options, int count,
                                  const char *kernel_name, cl_kernel *kernel,
                                  int *chosen) {
  dcnv4_status st = DCNV4_ERROR_BUILD_FAILED;
  for (int i = 0; i < count; i++) {
    st = dcn_get_kernel(ctx, program_name, options[i], kernel_name, kernel);
    if (st != DCNV4_ERROR_BUILD_FAILED || i == count - 1) {
      if (chosen)
        *chosen = i;
      return st;
    }
    dcn_log(ctx, DCN_LOG_INFO,
            "%s: options \"%s\" do not build on this device; trying \"%s\"",
            kernel_name, options[i], options[i + 1]);
  }
  return st;
}

void dcn_register_cap_option(const dcnv4_context *ctx, int max_regs, char *out,
                             size_t size) {
  size_t used = strlen(out);
  if (ctx->nv_compiler_options && max_regs > 0 && used < size)
    snprintf(out + used, size - used, " -cl-nv-maxrregcount=%d", max_regs);
}

void dcn_atomics_options(const dcnv4_context *ctx, const char *base,
                         char options[][DCN_OPTIONS_MAX], int *count) {
  int n = 0;
  if (ctx->vendor == DCN_VENDOR_NVIDIA) {
    snprintf(options[n++], DCN_OPTIONS_MAX, "%s -DNV_ATOMICS=2", base);
    snprintf(options[n++], DCN_OPTIONS_MAX, "%s -DNV_ATOMICS=1", base);
  }
  snprintf(options[n++], DCN_OPTIONS_MAX, "%s -DNV_ATOMICS=0", base);
  *count = n;
}

dcnv4_status dcnv4_context_cache_stats(const dcnv4_context *ctx,
                                       dcnv4_cache_stats *stats) {
  if (!ctx || !stats)
    return DCNV4_ERROR_NULL_POINTER;
  *stats = ctx->cache_stats;
  return DCNV4_SUCCESS;
}
