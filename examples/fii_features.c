/* fii_features: the FlashInternImage-T backbone's four feature maps, from C
 * (what a detection or segmentation neck consumes).
 *
 *   fii_features [WEIGHTS.safetensors] [SIZE]
 *
 * Runs the "t" preset on a batch of one SIZE x SIZE image (default 224) on
 * the default OpenCL device and prints each level's shape and a checksum.
 * WEIGHTS is the model's PyTorch state dict saved with
 *   safetensors.torch.save_file(model.state_dict(), "fii_t.safetensors")
 * Without it (or with "-") the program first writes fii_features.safetensors
 * with deterministic random weights, named by the model's own key list, so
 * that it runs anywhere. */
#include <dcnv4.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(dcnv4_context *ctx, const char *what, dcnv4_status st) {
  fprintf(stderr, "%s: %s: %s\n", what, dcnv4_status_string(st),
          dcnv4_context_last_error(ctx));
  return 1;
}

static void put_le32(FILE *f, float v) {
  uint32_t b;
  memcpy(&b, &v, 4);
  for (int i = 0; i < 4; i++)
    fputc((int)((b >> (8 * i)) & 0xff), f);
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), t = strlen(tail);
  return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Deterministic weights that keep activations tame: matrices uniform in
 * +-sqrt(3 / fan_in), norm weights and running variances 1, layer scales
 * 0.1, biases and running means 0. */
static float weight_value(const dcnv4_weight_info *w, uint64_t i,
                          uint32_t *state) {
  if (w->ndim > 1) {
    *state = *state * 1664525u + 1013904223u;
    double u = (double)(*state >> 8) / 16777216.0 * 2.0 - 1.0;
    return (float)(u * sqrt(3.0 * (double)w->shape[0] / (double)w->elements));
  }
  (void)i;
  if (ends_with(w->key, "gamma1") || ends_with(w->key, "gamma2"))
    return 0.1f;
  if (ends_with(w->key, "running_var") ||
      (ends_with(w->key, ".weight") && !ends_with(w->key, "running_mean")))
    return 1.0f;
  return 0.0f;
}

/* The safetensors format: an 8-byte little-endian header length, a JSON
 * header {"<key>": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]},
 * ...} padded with spaces to a multiple of 8, then the tensors' bytes. */
static int write_weights(const dcnv4_fii *model, const char *path) {
  size_t count = dcnv4_fii_weight_count(model), cap = 256 + count * 160;
  char *header = malloc(cap);
  if (!header)
    return -1;
  size_t used = (size_t)snprintf(header, cap, "{");
  uint64_t offset = 0;
  for (size_t k = 0; k < count; k++) {
    dcnv4_weight_info w;
    dcnv4_fii_weight_info(model, k, &w);
    used += (size_t)snprintf(header + used, cap - used,
                             "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[",
                             k ? "," : "", w.key);
    for (int d = 0; d < w.ndim; d++)
      used += (size_t)snprintf(header + used, cap - used, "%s%lld",
                               d ? "," : "", (long long)w.shape[d]);
    used += (size_t)snprintf(header + used, cap - used,
                             "],\"data_offsets\":[%llu,%llu]}",
                             (unsigned long long)offset,
                             (unsigned long long)(offset + 4 * w.elements));
    offset += 4 * w.elements;
  }
  used += (size_t)snprintf(header + used, cap - used, "}");
  while (used % 8 != 0)
    header[used++] = ' ';
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(header);
    return -1;
  }
  for (int i = 0; i < 8; i++)
    fputc((int)(((uint64_t)used >> (8 * i)) & 0xff), f);
  fwrite(header, 1, used, f);
  free(header);
  uint32_t state = 31;
  for (size_t k = 0; k < count; k++) {
    dcnv4_weight_info w;
    dcnv4_fii_weight_info(model, k, &w);
    for (uint64_t i = 0; i < w.elements; i++)
      put_le32(f, weight_value(&w, i, &state));
  }
  return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 && strcmp(argv[1], "-") != 0
                         ? argv[1]
                         : "fii_features.safetensors";
  const int size = argc > 2 ? atoi(argv[2]) : 224;
  if (size < 1) {
    fprintf(stderr, "usage: fii_features [WEIGHTS.safetensors|-] [SIZE]\n");
    return 2;
  }

  /* 1. A context on the default device ($DCNV4_DEVICE, else the first GPU,
   *    else any device). */
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(NULL, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "no OpenCL device\n");
    return 1;
  }

  /* 2. FlashInternImage-T (upstream's flash_intern_image_t_1k_224.yaml),
   *    fp32, and its weights. */
  dcnv4_fii_config config;
  dcnv4_fii_config_preset(&config, "t");
  dcnv4_fii *model = NULL;
  dcnv4_status st = dcnv4_fii_create(ctx, &config, DCNV4_FLOAT32, &model);
  if (st != DCNV4_SUCCESS)
    return fail(ctx, "creating the model", st);
  if (argc < 2 || strcmp(argv[1], "-") == 0) {
    if (write_weights(model, path) != 0) {
      fprintf(stderr, "cannot write %s\n", path);
      return 1;
    }
    printf("wrote %s (random weights)\n", path);
  }
  if ((st = dcnv4_fii_load_safetensors(model, path)))
    return fail(ctx, "loading the weights", st);
  printf("loaded %zu weights from %s\n", dcnv4_fii_weight_count(model), path);

  /* 3. The image (1, 3, SIZE, SIZE), normalized as for PyTorch, and one
   *    output buffer per level (channels-last). */
  cl_context cl = dcnv4_context_cl_context(ctx);
  cl_command_queue queue = dcnv4_context_queue(ctx);
  const size_t pixels = (size_t)3 * size * size;
  float *image = malloc(pixels * sizeof *image);
  if (!image)
    return 1;
  for (size_t i = 0; i < pixels; i++)
    image[i] = (float)sin(0.001 * (double)i);
  cl_int err;
  cl_mem in = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                             pixels * 4, image, &err);
  cl_mem features[DCNV4_FII_LEVELS];
  size_t counts[DCNV4_FII_LEVELS];
  int32_t h[DCNV4_FII_LEVELS], w[DCNV4_FII_LEVELS], c[DCNV4_FII_LEVELS];
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    dcnv4_fii_level_size(model, size, size, l, &h[l], &w[l], &c[l]);
    counts[l] = (size_t)h[l] * w[l] * c[l];
    features[l] =
        clCreateBuffer(cl, CL_MEM_READ_WRITE, counts[l] * 4, NULL, &err);
    if (!features[l]) {
      fprintf(stderr, "cannot allocate device buffers\n");
      return 1;
    }
  }

  /* 4. Forward, features only (no logits); the context manages the
   *    scratch memory (workspace NULL). */
  cl_event done = NULL;
  if ((st = dcnv4_fii_forward(model, 1, size, size, in, NULL, features, NULL, 0,
                              NULL, &done)))
    return fail(ctx, "forward", st);
  clWaitForEvents(1, &done);
  clReleaseEvent(done);

  int ok = 1;
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    float *host = malloc(counts[l] * sizeof *host);
    if (!host ||
        clEnqueueReadBuffer(queue, features[l], CL_TRUE, 0, counts[l] * 4, host,
                            0, NULL, NULL) != CL_SUCCESS) {
      fprintf(stderr, "cannot read level %d\n", l);
      return 1;
    }
    double sum = 0, abs_sum = 0;
    for (size_t i = 0; i < counts[l]; i++) {
      sum += host[i];
      abs_sum += fabs(host[i]);
    }
    printf("level %d: (1, %d, %d, %d) sum %.6e abs %.6e\n", l, h[l], w[l], c[l],
           sum, abs_sum);
    ok = ok && isfinite(abs_sum) && abs_sum > 0;
    free(host);
    clReleaseMemObject(features[l]);
  }
  free(image);
  clReleaseMemObject(in);
  dcnv4_fii_destroy(model);
  dcnv4_context_destroy(ctx);
  return ok ? 0 : 1;
}
