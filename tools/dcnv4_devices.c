/* dcnv4-devices: lists the OpenCL devices and the one dcnv4 would pick. */
#include "dcnv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The device `spec` (NULL: $DCNV4_DEVICE or the default) selects, as the
 * library resolves it; 0 if none. */
static int resolve(const char *spec, dcnv4_device_info *out) {
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.device = spec;
  o.cache_dir = "";
  dcnv4_context *ctx = NULL;
  int ok = dcnv4_context_create(&o, &ctx) == DCNV4_SUCCESS &&
           dcnv4_context_device_info(ctx, out) == DCNV4_SUCCESS;
  dcnv4_context_destroy(ctx);
  return ok;
}

static int same(const dcnv4_device_info *a, const dcnv4_device_info *b) {
  return a->platform_index == b->platform_index &&
         a->device_index == b->device_index;
}

int main(int argc, char **argv) {
  if (argc > 1 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf(
        "usage: dcnv4-devices\n  Lists OpenCL devices as \"platform:device\" "
        "(the form DCNV4_DEVICE and --device take),\n  the vendor words "
        "that select each (pocl, intel, nvidia, amd, cpu, gpu)\n  and marks "
        "the default.\n");
    return 0;
  }
  size_t n = 0;
  dcnv4_status st = dcnv4_list_devices(NULL, 0, &n);
  if (st != DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4-devices: %s\n", dcnv4_status_string(st));
    return 1;
  }
  dcnv4_device_info *all = calloc(n ? n : 1, sizeof *all);
  if (!all || dcnv4_list_devices(all, n, &n) != DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4-devices: cannot list devices\n");
    free(all);
    return 1;
  }
  dcnv4_device_info chosen;
  memset(&chosen, 0, sizeof chosen);
  int have_default = resolve(NULL, &chosen);
  /* Which device each vendor word selects (docs/devices.md). */
  static const char *const words[] = {"pocl", "intel", "nvidia",
                                      "amd",  "cpu",   "gpu"};
  enum { WORDS = sizeof words / sizeof words[0] };
  dcnv4_device_info by_word[WORDS];
  int has_word[WORDS];
  for (size_t w = 0; w < WORDS; w++)
    has_word[w] = resolve(words[w], &by_word[w]);
  printf("dcnv4 %s: %zu OpenCL device%s\n", dcnv4_version_string(), n,
         n == 1 ? "" : "s");
  for (size_t i = 0; i < n; i++) {
    const dcnv4_device_info *d = &all[i];
    int is_default = have_default && same(d, &chosen);
    printf(
        "%c %u:%u  %s  [%s, %s, %s, driver %s, %u compute units, %.1f GiB]\n",
        is_default ? '*' : ' ', d->platform_index, d->device_index,
        d->device_name, d->is_gpu ? "GPU" : "non-GPU", d->platform_name,
        d->device_version, d->driver_version, d->compute_units,
        (double)d->global_memory_bytes / (1024.0 * 1024.0 * 1024.0));
    printf("        DCNV4_DEVICE=%u:%u", d->platform_index, d->device_index);
    for (size_t w = 0; w < WORDS; w++)
      if (has_word[w] && same(d, &by_word[w]))
        printf(" or %s", words[w]);
    printf("\n");
  }
  if (have_default)
    printf("* = the device used by default (DCNV4_DEVICE=%s)\n",
           getenv("DCNV4_DEVICE") ? getenv("DCNV4_DEVICE") : "unset");
  free(all);
  return 0;
}
