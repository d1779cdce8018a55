/* DCNV4_DEVICE spellings (dcn_device_spec_matches in src/core/device.c) on the
 * platform and device names real runtimes report, without any device: which
 * of them each vendor word, index and substring picks, with PoCL's CPU
 * device named after the host's Intel or AMD processor. */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

static int failures;

typedef struct fake {
  const char *platform, *device, *vendor;
  cl_device_type type;
} fake;

/* Real names: PoCL on an Intel and an AMD host, Intel's CPU runtime on an
 * AMD host, Intel's GPU runtime, NVIDIA's, AMD's ROCm, Mesa's rusticl on an
 * AMD GPU, Oclgrind. */
static const fake devices[] = {
    {"Portable Computing Language", "pthread-Intel(R) Xeon(R) Gold 6248",
     "GenuineIntel", CL_DEVICE_TYPE_CPU},
    {"Portable Computing Language", "pthread-haswell-AMD EPYC", "AuthenticAMD",
     CL_DEVICE_TYPE_CPU},
    {"Intel(R) OpenCL", "AMD EPYC", "Intel(R) Corporation", CL_DEVICE_TYPE_CPU},
    {"Intel(R) OpenCL Graphics", "Intel(R) Arc(TM) A770 Graphics",
     "Intel(R) Corporation", CL_DEVICE_TYPE_GPU},
    {"NVIDIA CUDA", "NVIDIA H100 80GB HBM3", "NVIDIA Corporation",
     CL_DEVICE_TYPE_GPU},
    {"AMD Accelerated Parallel Processing", "gfx90a:sramecc+:xnack-",
     "Advanced Micro Devices, Inc.", CL_DEVICE_TYPE_GPU},
    {"rusticl", "AMD Radeon RX 7900 XTX (radeonsi, navi31)", "AMD",
     CL_DEVICE_TYPE_GPU},
    {"Oclgrind", "Oclgrind Simulator", "University of Bristol",
     CL_DEVICE_TYPE_ACCELERATOR},
};
enum { COUNT = sizeof devices / sizeof devices[0] };

/* Expected matches of `spec`, as a string of 0/1 per entry of `devices`. */
static void expect(const char *spec, const char *want) {
  char got[COUNT + 1];
  for (size_t i = 0; i < COUNT; i++) {
    dcnv4_device_info info;
    memset(&info, 0, sizeof info);
    info.platform_index = (unsigned)i;
    info.device_index = 0;
    info.is_gpu = (devices[i].type & CL_DEVICE_TYPE_GPU) != 0;
    snprintf(info.platform_name, sizeof info.platform_name, "%s",
             devices[i].platform);
    snprintf(info.device_name, sizeof info.device_name, "%s",
             devices[i].device);
    snprintf(info.vendor, sizeof info.vendor, "%s", devices[i].vendor);
    got[i] = dcn_device_spec_matches(spec, &info, devices[i].type) ? '1' : '0';
  }
  got[COUNT] = '\0';
  if (strcmp(got, want) != 0) {
    failures++;
    fprintf(stderr, "FAIL: \"%s\" matches %s, expected %s\n", spec, got, want);
  }
}

int main(void) {
  /* Vendor words: whole words, any case; never a name substring. */
  expect("pocl", "11000000");
  expect("PoCL", "11000000");
  expect("intel", "00110000"); /* not PoCL's pthread-Intel(R) Xeon */
  expect("Intel", "00110000");
  expect("nvidia", "00001000");
  expect("amd", "00000110"); /* not PoCL's or Intel's "AMD EPYC" CPU */
  expect("cpu", "11100000");
  expect("GPU", "00011110");
  /* Indices: exactly one device. */
  expect("2:0", "00100000");
  expect("7:0", "00000001");
  expect("2:1", "00000000");
  /* Anything else: a substring of the device or platform name. */
  expect("epyc", "01100000");
  expect("xeon", "10000000");
  expect("h100", "00001000");
  expect("oclgrind", "00000001");
  expect("portable", "11000000");
  expect("intel(r)", "10110000"); /* the substring form still reaches PoCL */
  expect("pocl ", "00000000");    /* not a word, and in no name */
  expect("no-such-device", "00000000");
  if (failures) {
    fprintf(stderr, "test_device_spec: %d check(s) FAILED\n", failures);
    return 1;
  }
  printf("test_device_spec: all checks passed\n");
  return 0;
}
