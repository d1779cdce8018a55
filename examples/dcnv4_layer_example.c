/* dcnv4_layer_example: a DCNv4 layer with trained weights, from C.
 *
 * Builds a DCNv4 layer (64 channels, group 4, 3x3, the PyTorch module's
 * defaults), loads its weights from a safetensors file, runs it on the
 * default OpenCL device on a 2 x 32 x 32 input and prints a checksum of the
 * output.
 *
 *   dcnv4_layer_example [WEIGHTS.safetensors [KEY_PREFIX]]
 *
 * With PyTorch, such a file comes from
 *   safetensors.torch.save_file(model.state_dict(), "model.safetensors")
 * and KEY_PREFIX names the layer inside the model ("blocks.0.dcn.", ...).
 * Without arguments the program first writes dcnv4_layer_example.safetensors
 * (deterministic weights, prefix "dcn.") into the current folder, so that it
 * runs anywhere; the file format is simple enough to write by hand. */
#include <dcnv4.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 2
#define HEIGHT 32
#define WIDTH 32

static int fail(dcnv4_context *ctx, const char *what, dcnv4_status st) {
  fprintf(stderr, "%s failed: %s: %s\n", what, dcnv4_status_string(st),
          ctx ? dcnv4_context_last_error(ctx) : "");
  return 1;
}

/* Deterministic weights for the layer's keys: weights ~ 1/sqrt(fan_in),
 * biases small. */
static float weight_value(const dcnv4_weight_info *w, uint64_t i,
                          size_t key_index) {
  double fan_in =
      w->ndim >= 2 ? (double)(w->elements / (uint64_t)w->shape[0]) : 1.0;
  double scale = w->ndim >= 2 ? 1.0 / sqrt(fan_in) : 0.1;
  return (float)(scale * sin(0.7 * (double)i + 1.3 * (double)key_index));
}

static void put_le32(FILE *f, float v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  unsigned char b[4] = {(unsigned char)bits, (unsigned char)(bits >> 8),
                        (unsigned char)(bits >> 16),
                        (unsigned char)(bits >> 24)};
  fwrite(b, 1, 4, f);
}

/* Writes every weight of `layer` as F32 under `prefix`. The format: an
 * 8-byte little-endian header length, a JSON header
 *   {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...}
 * padded with spaces to a multiple of 8, then the tensors' bytes. */
static int write_weights(const dcnv4_layer *layer, const char *path,
                         const char *prefix) {
  char header[4096];
  size_t used = 0;
  uint64_t offset = 0;
  size_t count = dcnv4_layer_weight_count(layer);
  used += (size_t)snprintf(header + used, sizeof header - used, "{");
  for (size_t k = 0; k < count; k++) {
    dcnv4_weight_info w;
    dcnv4_layer_weight_info(layer, k, &w);
    used += (size_t)snprintf(header + used, sizeof header - used,
                             "%s\"%s%s\":{\"dtype\":\"F32\",\"shape\":[",
                             k ? "," : "", prefix, w.key);
    for (int d = 0; d < w.ndim; d++)
      used += (size_t)snprintf(header + used, sizeof header - used, "%s%lld",
                               d ? "," : "", (long long)w.shape[d]);
    used += (size_t)snprintf(header + used, sizeof header - used,
                             "],\"data_offsets\":[%llu,%llu]}",
                             (unsigned long long)offset,
                             (unsigned long long)(offset + 4 * w.elements));
    offset += 4 * w.elements;
  }
  used += (size_t)snprintf(header + used, sizeof header - used, "}");
  while (used % 8 != 0 && used + 1 < sizeof header)
    header[used++] = ' ';
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  for (int i = 0; i < 8; i++)
    fputc((int)(((uint64_t)used >> (8 * i)) & 0xff), f);
  fwrite(header, 1, used, f);
  for (size_t k = 0; k < count; k++) {
    dcnv4_weight_info w;
    dcnv4_layer_weight_info(layer, k, &w);
    for (uint64_t i = 0; i < w.elements; i++)
      put_le32(f, weight_value(&w, i, k));
  }
  return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "dcnv4_layer_example.safetensors";
  const char *prefix = argc > 2 ? argv[2] : argc > 1 ? "" : "dcn.";

  /* 1. A context on the default device ($DCNV4_DEVICE, else the first
   *    GPU, else any device). */
  char why[512] = "";
  dcnv4_context_options options;
  dcnv4_context_options_init(&options);
  options.error_buffer = why;
  options.error_buffer_size = sizeof why;
  dcnv4_context *ctx = NULL;
  dcnv4_status st = dcnv4_context_create(&options, &ctx);
  if (st != DCNV4_SUCCESS) {
    fprintf(stderr, "no OpenCL device: %s\n", why);
    return 1;
  }
  dcnv4_device_info info;
  dcnv4_context_device_info(ctx, &info);
  printf("device: %s (%s)\n", info.device_name, info.platform_name);

  /* 2. The layer: DCNv4(channels=64, group=4), fp32. */
  dcnv4_layer_dcnv4_config config;
  dcnv4_layer_dcnv4_config_init(&config);
  config.channels = 64;
  config.group = 4;
  dcnv4_layer *layer = NULL;
  if ((st = dcnv4_layer_dcnv4_create(ctx, &config, DCNV4_FLOAT32, &layer)))
    return fail(ctx, "creating the layer", st);

  /* 3. Its weights, by state-dict key, from a safetensors file. */
  if (argc < 2) {
    if (write_weights(layer, path, prefix) != 0) {
      fprintf(stderr, "cannot write %s\n", path);
      return 1;
    }
    printf("wrote %s\n", path);
  }
  if ((st = dcnv4_layer_load_safetensors(layer, path, prefix)))
    return fail(ctx, "loading the weights", st);
  printf("loaded %zu weights from %s (prefix \"%s\")\n",
         dcnv4_layer_weight_count(layer), path, prefix);

  /* 4. Input (N, H*W, C) on the device, channels-last. */
  const size_t count = (size_t)BATCH * HEIGHT * WIDTH * 64;
  float *host = malloc(count * sizeof *host);
  if (!host)
    return 1;
  for (size_t i = 0; i < count; i++)
    host[i] = (float)cos(0.01 * (double)i);
  cl_int err;
  cl_context cl_ctx = dcnv4_context_cl_context(ctx);
  cl_command_queue queue = dcnv4_context_queue(ctx);
  cl_mem input =
      clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, count * 4, NULL, &err);
  cl_mem output =
      clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, count * 4, NULL, &err);
  if (!input || !output ||
      clEnqueueWriteBuffer(queue, input, CL_TRUE, 0, count * 4, host, 0, NULL,
                           NULL) != CL_SUCCESS) {
    fprintf(stderr, "cannot allocate device buffers\n");
    return 1;
  }

  /* 5. Forward; the context manages the scratch memory (workspace NULL). */
  size_t scratch = 0;
  dcnv4_layer_dcnv4_workspace_size(layer, BATCH, HEIGHT, WIDTH, &scratch);
  if ((st = dcnv4_layer_dcnv4_forward(layer, BATCH, HEIGHT, WIDTH, input,
                                      output, NULL, 0, NULL, NULL)))
    return fail(ctx, "forward", st);
  if (clEnqueueReadBuffer(queue, output, CL_TRUE, 0, count * 4, host, 0, NULL,
                          NULL) != CL_SUCCESS) {
    fprintf(stderr, "cannot read the output\n");
    return 1;
  }
  double sum = 0, abs_sum = 0;
  for (size_t i = 0; i < count; i++) {
    sum += host[i];
    abs_sum += fabs(host[i]);
  }
  printf("output (%d, %d, 64), %zu bytes of scratch\n", BATCH, HEIGHT * WIDTH,
         scratch);
  printf("checksum: sum %.6e abs %.6e\n", sum, abs_sum);

  free(host);
  clReleaseMemObject(input);
  clReleaseMemObject(output);
  dcnv4_layer_destroy(layer);
  dcnv4_context_destroy(ctx);
  return isfinite(abs_sum) && abs_sum > 0 ? 0 : 1;
}
