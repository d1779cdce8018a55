/* dcnv4-run: op "flash_intern_image" (the FlashInternImage classifier,
 * forward). Reads image.npy (N, 3, H, W) and weights.safetensors (the
 * model's state dict); writes logits.npy (N, classes) and features_0.npy ..
 * features_3.npy (N, h, w, C), each level's output. */
#include "cl_host.h"
#include "fii_case.h"
#include "run_case.h"

#include <stdio.h>
#include <stdlib.h>

/* A configuration, weights file or image the library refuses is bad input;
 * memory and device failures are not. */
static int status_rc(dcnv4_status st) {
  return st == DCNV4_ERROR_OUT_OF_HOST_MEMORY || st == DCNV4_ERROR_OPENCL ||
                 st == DCNV4_ERROR_BUILD_FAILED
             ? RUN_FAILED
             : RUN_BAD_INPUT;
}

int run_fii(const run_request *req, run_outputs *outs, case_error *e) {
  fii_case c;
  if (fii_case_read(req->meta, &c, e) != 0)
    return RUN_BAD_INPUT;
  float *image = NULL;
  int rc = RUN_BAD_INPUT;
  dcnv4_context *ctx = NULL;
  dcnv4_fii *m = NULL;
  cl_mem in = NULL, logits = NULL, feat[DCNV4_FII_LEVELS] = {NULL};
  /* The model takes an fp32 image; 16-bit cases' images are exact in it. */
  if (case_load_tensor(req->case_dir, "image", 4, c.image_shape, DCNV4_FLOAT32,
                       &image, NULL, e) != 0)
    goto done;
  rc = RUN_FAILED;
  if (run_open_context(req, &ctx, e) != RUN_OK)
    goto done;
  char path[4200];
  snprintf(path, sizeof path, "%s/weights.safetensors", req->case_dir);
  dcnv4_status st = dcnv4_fii_create(ctx, &c.config, c.dtype, &m);
  if (st != DCNV4_SUCCESS) {
    case_fail(e, "invalid model: %s", dcnv4_context_last_error(ctx));
    rc = status_rc(st);
    goto done;
  }
  if ((st = dcnv4_fii_load_safetensors(m, path)) != DCNV4_SUCCESS) {
    case_fail(e, "weights: %s", dcnv4_context_last_error(ctx));
    rc = status_rc(st);
    goto done;
  }
  const uint64_t N = (uint64_t)c.batch, K = (uint64_t)dcnv4_fii_output_width(m);
  int64_t fshape[DCNV4_FII_LEVELS][4];
  uint64_t fcount[DCNV4_FII_LEVELS];
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    int32_t h, w, ch;
    if ((st = dcnv4_fii_level_size(m, c.height, c.width, l, &h, &w, &ch))) {
      case_fail(e, "%s", dcnv4_context_last_error(ctx));
      rc = status_rc(st);
      goto done;
    }
    const int64_t s[4] = {c.batch, h, w, ch};
    for (int i = 0; i < 4; i++)
      fshape[l][i] = s[i];
    fcount[l] = N * (uint64_t)h * (uint64_t)w * (uint64_t)ch;
    if (!(feat[l] = host_buffer(ctx, (size_t)fcount[l] * 4, NULL))) {
      case_fail(e, "cannot allocate device buffers");
      goto done;
    }
  }
  in = host_buffer(ctx, (size_t)(N * 3 * (uint64_t)c.height * c.width) * 4,
                   image);
  logits = host_buffer(ctx, (size_t)(N * K) * 4, NULL);
  if (!in || !logits) {
    case_fail(e, "cannot allocate device buffers");
    goto done;
  }
  st = dcnv4_fii_forward(m, c.batch, c.height, c.width, in, logits, feat, NULL,
                         0, NULL, NULL);
  if (st != DCNV4_SUCCESS) {
    case_fail(e, "forward failed: %s", dcnv4_context_last_error(ctx));
    rc = status_rc(st);
    goto done;
  }
  static const char *const names[DCNV4_FII_LEVELS] = {
      "features_0", "features_1", "features_2", "features_3"};
  const int64_t lshape[2] = {c.batch, (int64_t)K};
  float *result = host_download_floats(ctx, logits, N * K, DCNV4_FLOAT32);
  if (!result || !run_add_output(outs, "logits", 2, lshape, result)) {
    case_fail(e, "reading the logits failed");
    goto done;
  }
  for (int l = 0; l < DCNV4_FII_LEVELS; l++) {
    result = host_download_floats(ctx, feat[l], fcount[l], DCNV4_FLOAT32);
    if (!result || !run_add_output(outs, names[l], 4, fshape[l], result)) {
      case_fail(e, "reading the features failed");
      goto done;
    }
  }
  rc = RUN_OK;
done:
  host_release(in);
  host_release(logits);
  for (int l = 0; l < DCNV4_FII_LEVELS; l++)
    host_release(feat[l]);
  dcnv4_fii_destroy(m);
  dcnv4_context_destroy(ctx);
  free(image);
  return rc;
}
