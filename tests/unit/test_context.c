/* Context creation and device selection: options, DCNV4_DEVICE, indices and
 * name substrings, application-owned OpenCL objects, and the failures of
 * each (status plus message, nothing leaked). Also version and status
 * strings. */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static dcnv4_status create(const char *device, char *why, size_t size,
                           dcnv4_context **ctx) {
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.device = device;
  o.cache_dir = "";
  o.error_buffer = why;
  o.error_buffer_size = size;
  why[0] = '\0';
  return dcnv4_context_create(&o, ctx);
}

static void check_version_and_strings(void) {
  CHECK(dcnv4_version() == DCNV4_VERSION_NUMBER, "version %d vs header %d",
        dcnv4_version(), DCNV4_VERSION_NUMBER);
  CHECK(!strcmp(dcnv4_version_string(), DCNV4_VERSION_STRING),
        "version string %s", dcnv4_version_string());
  for (int s = 0; s <= DCNV4_ERROR_INVALID_WEIGHT; s++)
    CHECK(strcmp(dcnv4_status_string((dcnv4_status)s), "unknown status") != 0,
          "status %d has no string", s);
  CHECK(!strcmp(dcnv4_status_string((dcnv4_status)999), "unknown status"),
        "unknown status string");
  CHECK(dcnv4_dtype_size(DCNV4_FLOAT16) == 2 &&
            dcnv4_dtype_size((dcnv4_dtype)9) == 0,
        "dtype sizes");
  CHECK(dcnv4_dtype_name((dcnv4_dtype)9) == NULL, "unknown dtype name");
}

static void check_selection(void) {
  size_t n = 0;
  CHECK(dcnv4_list_devices(NULL, 0, &n) == DCNV4_SUCCESS && n > 0,
        "no devices listed");
  CHECK(dcnv4_list_devices(NULL, 1, &n) == DCNV4_ERROR_NULL_POINTER,
        "NULL list with capacity accepted");
  CHECK(dcnv4_list_devices(NULL, 0, NULL) == DCNV4_ERROR_NULL_POINTER,
        "NULL count accepted");
  dcnv4_device_info *all = calloc(n, sizeof *all);
  dcnv4_list_devices(all, n, &n);
  char why[512];
  dcnv4_context *ctx = NULL;

  /* Each device by "P:D" and by a name substring. */
  for (size_t i = 0; i < n; i++) {
    char spec[32];
    snprintf(spec, sizeof spec, "%u:%u", all[i].platform_index,
             all[i].device_index);
    CHECK(create(spec, why, sizeof why, &ctx) == DCNV4_SUCCESS, "%s: %s", spec,
          why);
    dcnv4_device_info info;
    dcnv4_context_device_info(ctx, &info);
    CHECK(!strcmp(info.device_name, all[i].device_name) &&
              info.platform_index == all[i].platform_index &&
              info.device_index == all[i].device_index,
          "%s chose %s", spec, info.device_name);
    dcnv4_context_destroy(ctx);
    /* a lower-case piece of the name */
    char piece[8] = "";
    size_t len = strlen(all[i].device_name);
    for (size_t k = 0; k < 4 && k < len; k++)
      piece[k] = (char)(all[i].device_name[k] | 0x20);
    CHECK(create(piece, why, sizeof why, &ctx) == DCNV4_SUCCESS, "\"%s\": %s",
          piece, why);
    dcnv4_context_destroy(ctx);
  }
  /* Default: a GPU when there is one. */
  int have_gpu = 0;
  for (size_t i = 0; i < n; i++)
    have_gpu |= all[i].is_gpu;
  unsetenv("DCNV4_DEVICE");
  CHECK(create(NULL, why, sizeof why, &ctx) == DCNV4_SUCCESS, "default: %s",
        why);
  dcnv4_device_info info;
  dcnv4_context_device_info(ctx, &info);
  CHECK(info.is_gpu == have_gpu, "default device is%s a GPU",
        info.is_gpu ? "" : " not");
  dcnv4_context_destroy(ctx);

  /* Environment variable, and options over the environment. */
  char spec[32];
  snprintf(spec, sizeof spec, "%u:%u", all[n - 1].platform_index,
           all[n - 1].device_index);
  setenv("DCNV4_DEVICE", spec, 1);
  CHECK(create(NULL, why, sizeof why, &ctx) == DCNV4_SUCCESS, "env: %s", why);
  dcnv4_context_device_info(ctx, &info);
  CHECK(!strcmp(info.device_name, all[n - 1].device_name), "env ignored");
  dcnv4_context_destroy(ctx);
  setenv("DCNV4_DEVICE", "no-such-device-anywhere", 1);
  CHECK(create(NULL, why, sizeof why, &ctx) == DCNV4_ERROR_DEVICE_NOT_FOUND &&
            ctx == NULL && strstr(why, "no-such-device-anywhere"),
        "bad env spec: %s", why);
  CHECK(create("0:0", why, sizeof why, &ctx) == DCNV4_SUCCESS,
        "options.device should override the environment: %s", why);
  dcnv4_context_destroy(ctx);
  unsetenv("DCNV4_DEVICE");

  /* Vendor words (docs/devices.md): each picks a device of its kind, or
   * fails naming the word; never a device of another runtime whose name
   * happens to contain it (PoCL's "pthread-Intel(R) ..."). */
  const char *words[] = {"pocl", "intel", "nvidia", "amd", "cpu", "gpu"};
  for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
    dcnv4_status st = create(words[w], why, sizeof why, &ctx);
    if (st != DCNV4_SUCCESS) {
      CHECK(st == DCNV4_ERROR_DEVICE_NOT_FOUND && ctx == NULL &&
                strstr(why, words[w]),
            "\"%s\": status %d, message %s", words[w], (int)st, why);
      continue;
    }
    dcnv4_context_device_info(ctx, &info);
    int pocl = strstr(info.platform_name, "Portable Computing") != NULL;
    const char *w_ = words[w];
    if (!strcmp(w_, "pocl"))
      CHECK(pocl, "\"pocl\" chose %s (%s)", info.device_name,
            info.platform_name);
    if (!strcmp(w_, "intel") || !strcmp(w_, "amd"))
      CHECK(!pocl, "\"%s\" chose PoCL's %s", w_, info.device_name);
    CHECK(strcmp(w_, "gpu") || info.is_gpu, "\"gpu\" chose a non-GPU");
    dcnv4_context_destroy(ctx);
  }

  /* Bad specs. */
  const char *bad[] = {"99:0", "0:99", "nonexistent", "1:", ":1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ctx = (dcnv4_context *)&ctx; /* must be reset to NULL */
    CHECK(create(bad[i], why, sizeof why, &ctx) ==
                  DCNV4_ERROR_DEVICE_NOT_FOUND &&
              ctx == NULL && why[0],
          "spec \"%s\" accepted or no message", bad[i]);
  }
  /* A tiny error buffer is truncated, not overrun. */
  char tiny[8];
  memset(tiny, 'x', sizeof tiny);
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.device = "nonexistent";
  o.error_buffer = tiny;
  o.error_buffer_size = 4;
  CHECK(dcnv4_context_create(&o, &ctx) == DCNV4_ERROR_DEVICE_NOT_FOUND &&
            tiny[3] == '\0' && tiny[4] == 'x',
        "error buffer overrun");
  CHECK(dcnv4_context_create(NULL, NULL) == DCNV4_ERROR_NULL_POINTER,
        "NULL context pointer accepted");
  free(all);
}

static void check_from_cl(void) {
  dcnv4_context *own = test_context();
  cl_device_id dev = dcnv4_context_device(own);
  cl_int err;
  cl_context c = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cl_command_queue q = clCreateCommandQueue(c, dev, 0, &err);
  cl_context c2 = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  dcnv4_context *ctx = NULL;
  char why[256];
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.error_buffer = why;
  o.error_buffer_size = sizeof why;
  CHECK(dcnv4_context_create_from_cl(c, dev, q, &o, &ctx) == DCNV4_SUCCESS,
        "from_cl: %s", why);
  CHECK(dcnv4_context_cl_context(ctx) == c && dcnv4_context_queue(ctx) == q &&
            dcnv4_context_device(ctx) == dev,
        "from_cl handles differ");
  /* The library holds its own references: the application may release. */
  clReleaseCommandQueue(q);
  clReleaseContext(c);
  cl_mem m = host_buffer(ctx, 64, NULL);
  CHECK(m != NULL, "context unusable after the application released");
  host_release(m);
  CHECK(dcnv4_context_finish(ctx) == DCNV4_SUCCESS, "finish");
  dcnv4_context_destroy(ctx);

  c = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  q = clCreateCommandQueue(c, dev, 0, &err);
  CHECK(dcnv4_context_create_from_cl(c2, dev, q, &o, &ctx) ==
                DCNV4_ERROR_INVALID_PARAMETER &&
            ctx == NULL,
        "queue of another context accepted");
  CHECK(dcnv4_context_create_from_cl(NULL, dev, q, &o, &ctx) ==
            DCNV4_ERROR_NULL_POINTER,
        "NULL cl_context accepted");
  CHECK(dcnv4_context_create_from_cl(c, dev, NULL, &o, &ctx) ==
            DCNV4_ERROR_NULL_POINTER,
        "NULL queue accepted");
  cl_command_queue_properties props = 0;
  clGetDeviceInfo(dev, CL_DEVICE_QUEUE_PROPERTIES, sizeof props, &props, NULL);
  if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) {
    cl_command_queue ooo = clCreateCommandQueue(
        c, dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    CHECK(dcnv4_context_create_from_cl(c, dev, ooo, &o, &ctx) ==
                  DCNV4_ERROR_UNSUPPORTED &&
              strstr(why, "in-order"),
          "out-of-order queue accepted: %s", why);
    clReleaseCommandQueue(ooo);
  } else
    printf("device has no out-of-order queues: that check skipped\n");
  clReleaseCommandQueue(q);
  clReleaseContext(c);
  clReleaseContext(c2);

  /* Accessors and NULL handling. */
  CHECK(dcnv4_context_cl_context(NULL) == NULL &&
            dcnv4_context_queue(NULL) == NULL &&
            dcnv4_context_device(NULL) == NULL,
        "NULL accessors");
  CHECK(dcnv4_context_finish(NULL) == DCNV4_ERROR_NULL_POINTER, "finish NULL");
  CHECK(dcnv4_context_release_scratch(own) == DCNV4_SUCCESS, "release");
  CHECK(dcnv4_context_device_info(own, NULL) == DCNV4_ERROR_NULL_POINTER,
        "device_info NULL");
  CHECK(!strcmp(dcnv4_context_last_error(NULL), "no context"), "NULL error");
  dcnv4_cache_stats st;
  CHECK(dcnv4_context_cache_stats(NULL, &st) == DCNV4_ERROR_NULL_POINTER,
        "stats NULL");
  dcnv4_context_destroy(NULL);
  dcnv4_context_destroy(own);
}

int main(void) {
  check_version_and_strings();
  check_selection();
  check_from_cl();
  return test_finish("test_context");
}
