/* OpenCL device enumeration, DCNV4_DEVICE parsing and vendor classes. */
#include "core/fault.h"

#include <CL/cl_ext.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct device_entry {
  cl_platform_id platform;
  cl_device_id device;
  cl_device_type type;
  dcnv4_device_info info;
} device_entry;

static void query_string(cl_int (*fn)(void *, cl_uint, size_t, void *,
                                      size_t *),
                         void *obj, cl_uint what, char *out, size_t size) {
  out[0] = '\0';
  if (fn(obj, what, size, out, NULL) != CL_SUCCESS)
    out[0] = '\0';
  out[size - 1] = '\0';
}

/* Adapters so one helper reads strings of platforms and devices. */
static cl_int platform_info(void *p, cl_uint what, size_t size, void *out,
                            size_t *ret) {
  return clGetPlatformInfo((cl_platform_id)p, what, size, out, ret);
}
static cl_int device_info(void *d, cl_uint what, size_t size, void *out,
                          size_t *ret) {
  return clGetDeviceInfo((cl_device_id)d, what, size, out, ret);
}

dcnv4_status dcn_query_device_info(cl_platform_id platform, cl_device_id device,
                                   dcnv4_device_info *info) {
  memset(info, 0, sizeof *info);
  query_string(platform_info, platform, CL_PLATFORM_NAME, info->platform_name,
               sizeof info->platform_name);
  query_string(device_info, device, CL_DEVICE_NAME, info->device_name,
               sizeof info->device_name);
  query_string(device_info, device, CL_DEVICE_VENDOR, info->vendor,
               sizeof info->vendor);
  query_string(device_info, device, CL_DRIVER_VERSION, info->driver_version,
               sizeof info->driver_version);
  query_string(device_info, device, CL_DEVICE_VERSION, info->device_version,
               sizeof info->device_version);
  cl_device_type type = 0;
  cl_uint units = 0;
  cl_ulong mem = 0;
  if (clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof type, &type, NULL) !=
          CL_SUCCESS ||
      clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units,
                      NULL) != CL_SUCCESS ||
      clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem,
                      NULL) != CL_SUCCESS)
    return DCNV4_ERROR_OPENCL;
  info->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  info->compute_units = units;
  info->global_memory_bytes = mem;
  return DCNV4_SUCCESS;
}

static bool contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  if (n == 0)
    return false;
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n)
      return true;
  }
  return false;
}

dcn_vendor dcn_classify_vendor(const dcnv4_device_info *info,
                               cl_device_type type) {
  if (type & CL_DEVICE_TYPE_CPU)
    return DCN_VENDOR_CPU;
  if (contains_nocase(info->vendor, "nvidia") ||
      contains_nocase(info->platform_name, "nvidia"))
    return DCN_VENDOR_NVIDIA;
  if (contains_nocase(info->vendor, "advanced micro devices") ||
      contains_nocase(info->vendor, "amd"))
    return DCN_VENDOR_AMD;
  if (contains_nocase(info->vendor, "intel") && (type & CL_DEVICE_TYPE_GPU))
    return DCN_VENDOR_INTEL_GPU;
  return DCN_VENDOR_OTHER;
}

/* Every device of every platform, in platform then device order. */
static dcnv4_status enumerate(device_entry **out, size_t *count) {
  *out = NULL;
  *count = 0;
  cl_uint np = 0;
  cl_int err = dcn_clGetPlatformIDs(0, NULL, &np);
  if (err == CL_PLATFORM_NOT_FOUND_KHR || np == 0)
    return DCNV4_SUCCESS;
  if (err != CL_SUCCESS)
    return DCNV4_ERROR_OPENCL;
  cl_platform_id *platforms = dcn_calloc(np, sizeof *platforms);
  if (!platforms)
    return DCNV4_ERROR_OUT_OF_HOST_MEMORY;
  dcnv4_status st = DCNV4_SUCCESS;
  device_entry *list = NULL;
  size_t n = 0;
  if (dcn_clGetPlatformIDs(np, platforms, NULL) != CL_SUCCESS) {
    st = DCNV4_ERROR_OPENCL;
    goto done;
  }
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    if (dcn_clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) !=
            CL_SUCCESS ||
        nd == 0)
      continue; /* a platform without devices is not an error */
    cl_device_id *devices = dcn_calloc(nd, sizeof *devices);
    device_entry *grown = dcn_realloc(list, (n + nd) * sizeof *list);
    if (!devices || !grown) {
      dcn_free(devices);
      if (grown)
        list = grown;
      st = DCNV4_ERROR_OUT_OF_HOST_MEMORY;
      goto done;
    }
    list = grown;
    if (dcn_clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, nd, devices,
                           NULL) == CL_SUCCESS) {
      for (cl_uint d = 0; d < nd; d++) {
        device_entry *e = &list[n];
        e->platform = platforms[p];
        e->device = devices[d];
        if (dcn_query_device_info(platforms[p], devices[d], &e->info) !=
                DCNV4_SUCCESS ||
            clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof e->type,
                            &e->type, NULL) != CL_SUCCESS)
          continue;
        e->info.platform_index = p;
        e->info.device_index = d;
        n++;
      }
    }
    dcn_free(devices);
  }
done:
  dcn_free(platforms);
  if (st != DCNV4_SUCCESS) {
    dcn_free(list);
    return st;
  }
  *out = list;
  *count = n;
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_list_devices(dcnv4_device_info *devices, size_t capacity,
                                size_t *count) {
  if (!count || (capacity > 0 && !devices))
    return DCNV4_ERROR_NULL_POINTER;
  device_entry *list;
  size_t n;
  dcnv4_status st = enumerate(&list, &n);
  if (st != DCNV4_SUCCESS)
    return st;
  for (size_t i = 0; i < n && i < capacity; i++)
    devices[i] = list[i].info;
  *count = n;
  dcn_free(list);
  return DCNV4_SUCCESS;
}

/* "P:D" with decimal indices; false if `spec` has another form. */
static bool parse_index_spec(const char *spec, unsigned *p, unsigned *d) {
  char *end;
  if (!isdigit((unsigned char)spec[0]))
    return false;
  unsigned long a = strtoul(spec, &end, 10);
  if (*end != ':' || !isdigit((unsigned char)end[1]))
    return false;
  unsigned long b = strtoul(end + 1, &end, 10);
  if (*end != '\0' || a > 0xffffu || b > 0xffffu)
    return false;
  *p = (unsigned)a;
  *d = (unsigned)b;
  return true;
}

static bool equals_nocase(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
      return false;
  return *a == *b;
}

static bool is_pocl(const dcnv4_device_info *info) {
  return contains_nocase(info->platform_name, "portable computing language") ||
         contains_nocase(info->platform_name, "pocl");
}

/* Vendor words name a runtime or a kind of device, never a substring: on an
 * Intel host PoCL's CPU device is "pthread-Intel(R) ...", which "intel" must
 * not pick (docs/devices.md). */
bool dcn_device_spec_matches(const char *spec, const dcnv4_device_info *info,
                             cl_device_type type) {
  unsigned pi, di;
  if (parse_index_spec(spec, &pi, &di))
    return info->platform_index == pi && info->device_index == di;
  bool gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  if (equals_nocase(spec, "cpu"))
    return (type & CL_DEVICE_TYPE_CPU) != 0;
  if (equals_nocase(spec, "gpu"))
    return gpu;
  if (equals_nocase(spec, "pocl"))
    return is_pocl(info);
  if (equals_nocase(spec, "intel")) /* Intel's runtimes, or an Intel GPU */
    return !is_pocl(info) && (contains_nocase(info->platform_name, "intel") ||
                              (gpu && contains_nocase(info->vendor, "intel")));
  if (equals_nocase(spec, "nvidia"))
    return contains_nocase(info->platform_name, "nvidia") ||
           contains_nocase(info->vendor, "nvidia");
  if (equals_nocase(spec, "amd")) /* PoCL's CPU vendor may be AuthenticAMD */
    return !is_pocl(info) &&
           (contains_nocase(info->platform_name, "amd") ||
            (gpu && (contains_nocase(info->vendor, "amd") ||
                     contains_nocase(info->vendor, "advanced micro devices"))));
  return contains_nocase(info->device_name, spec) ||
         contains_nocase(info->platform_name, spec);
}

dcnv4_status dcn_select_device(const char *spec, cl_platform_id *platform,
                               cl_device_id *device, char *why,
                               size_t why_size) {
  device_entry *list;
  size_t n;
  dcnv4_status st = enumerate(&list, &n);
  if (st != DCNV4_SUCCESS) {
    snprintf(why, why_size, "could not enumerate OpenCL devices (%s)",
             dcnv4_status_string(st));
    return st;
  }
  if (n == 0) {
    dcn_free(list); /* allocated even when no device could be queried */
    snprintf(why, why_size,
             "no OpenCL device found (is an ICD such as PoCL installed?)");
    return DCNV4_ERROR_DEVICE_NOT_FOUND;
  }
  long chosen = -1;
  if (spec && *spec) {
    for (size_t i = 0; i < n && chosen < 0; i++)
      if (dcn_device_spec_matches(spec, &list[i].info, list[i].type))
        chosen = (long)i;
    if (chosen < 0)
      snprintf(why, why_size,
               "no OpenCL device matches \"%s\" (give \"platform:device\" "
               "indices, pocl, intel, nvidia, amd, cpu, gpu, or part of a "
               "device or platform name; dcnv4-devices lists them)",
               spec);
  } else {
    for (size_t i = 0; i < n && chosen < 0; i++)
      if (list[i].info.is_gpu)
        chosen = (long)i;
    if (chosen < 0)
      chosen = 0;
  }
  if (chosen >= 0) {
    *platform = list[chosen].platform;
    *device = list[chosen].device;
  }
  dcn_free(list);
  return chosen >= 0 ? DCNV4_SUCCESS : DCNV4_ERROR_DEVICE_NOT_FOUND;
}
