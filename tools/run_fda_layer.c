/* dcnv4-run: op "flash_deform_attn_layer" (the FlashDeformAttn layer,
 * forward). Weights come from weights/<key>.npy; inputs are query.npy
 * (N, Lq, d_model), reference_points.npy (N, Lq, n_levels, reference_dim),
 * input_flatten.npy (N, input_len, d_model) and, when meta's padding_mask is
 * 1, padding_mask.npy (N, input_len) |u1 (1 = padded); writes output.npy
 * (N, Lq, d_model). */
#include "cl_host.h"
#include "host_dtype.h"
#include "layer_case.h"
#include "run_case.h"

#include <stdlib.h>

int run_fda_layer(const run_request *req, run_outputs *outs, case_error *e) {
  fda_layer_case c;
  if (fda_layer_case_read(req->meta, &c, e) != 0)
    return RUN_BAD_INPUT;
  float *vq = NULL, *vr = NULL, *vin = NULL;
  void *pq = NULL, *pr = NULL, *pin = NULL;
  unsigned char *mask = NULL;
  int rc = RUN_BAD_INPUT;
  dcnv4_context *ctx = NULL;
  dcnv4_layer *layer = NULL;
  cl_mem bq = NULL, br = NULL, bin = NULL, bm = NULL, out = NULL;
  if (case_load_tensor(req->case_dir, "query", 3, c.query_shape, c.dtype, &vq,
                       &pq, e) != 0 ||
      case_load_tensor(req->case_dir, "reference_points", 4, c.reference_shape,
                       c.dtype, &vr, &pr, e) != 0 ||
      case_load_tensor(req->case_dir, "input_flatten", 3, c.input_shape,
                       c.dtype, &vin, &pin, e) != 0 ||
      (c.padding_mask && case_load_mask(req->case_dir, "padding_mask", 2,
                                        c.mask_shape, &mask, e) != 0))
    goto done;
  rc = RUN_FAILED;
  if (run_open_context(req, &ctx, e) != RUN_OK)
    goto done;
  /* A configuration or level table the library refuses, or weight files
   * that do not fit the layer, are bad input. */
  dcnv4_status st = dcnv4_layer_fda_create(ctx, &c.config, c.dtype, &layer);
  size_t scratch = 0;
  if (st == DCNV4_SUCCESS)
    st = dcnv4_layer_fda_workspace_size(layer, &c.shape, &scratch);
  if ((rc = run_layer_prepare(req, ctx, layer, st, e)) != RUN_OK)
    goto done;
  rc = RUN_FAILED;
  size_t esize = dcnv4_dtype_size(c.dtype);
  size_t out_bytes = (size_t)c.query_elements * esize;
  bq = host_buffer(ctx, out_bytes, pq);
  br = host_buffer(ctx, (size_t)c.reference_elements * esize, pr);
  bin = host_buffer(ctx, (size_t)c.input_elements * esize, pin);
  bm = mask ? host_buffer(ctx, (size_t)c.mask_elements, mask) : NULL;
  out = host_buffer(ctx, out_bytes, NULL);
  if (!bq || !br || !bin || (mask && !bm) || !out) {
    case_fail(e, "cannot allocate device buffers");
    goto done;
  }
  st = dcnv4_layer_fda_forward(layer, &c.shape, bq, br, bin, bm, out, NULL, 0,
                               NULL, NULL);
  rc = run_layer_output(ctx, st, out, c.query_elements, c.dtype, c.query_shape,
                        outs, e);
done:
  host_release(bq);
  host_release(br);
  host_release(bin);
  host_release(bm);
  host_release(out);
  dcnv4_layer_destroy(layer);
  dcnv4_context_destroy(ctx);
  free(vq);
  free(vr);
  free(vin);
  free(pq);
  free(pr);
  free(pin);
  free(mask);
  return rc;
}
