/* dcnv4-run: op "dcnv4_layer" (the DCNv4 layer, forward). Weights come from
 * weights/<key>.npy, the input from input.npy (N, H*W, C); writes
 * output.npy (N, H*W, C). */
#include "cl_host.h"
#include "host_dtype.h"
#include "layer_case.h"
#include "run_case.h"

#include <stdlib.h>

int run_dcnv4_layer(const run_request *req, run_outputs *outs, case_error *e) {
  dcnv4_layer_case c;
  if (dcnv4_layer_case_read(req->meta, &c, e) != 0)
    return RUN_BAD_INPUT;
  float *values = NULL;
  void *packed = NULL;
  int rc = RUN_BAD_INPUT;
  dcnv4_context *ctx = NULL;
  dcnv4_layer *layer = NULL;
  cl_mem in = NULL, out = NULL;
  if (case_load_tensor(req->case_dir, "input", 3, c.io_shape, c.dtype, &values,
                       &packed, e) != 0)
    goto done;
  rc = RUN_FAILED;
  if (run_open_context(req, &ctx, e) != RUN_OK)
    goto done;
  /* A configuration the library refuses, a weight file that does not fit
   * the layer, or an image size the layer cannot keep is bad input. */
  dcnv4_status st = dcnv4_layer_dcnv4_create(ctx, &c.config, c.dtype, &layer);
  size_t scratch = 0;
  if (st == DCNV4_SUCCESS)
    st = dcnv4_layer_dcnv4_workspace_size(layer, c.batch, c.height, c.width,
                                          &scratch);
  if ((rc = run_layer_prepare(req, ctx, layer, st, e)) != RUN_OK)
    goto done;
  rc = RUN_FAILED;
  size_t esize = dcnv4_dtype_size(c.dtype);
  size_t bytes = (size_t)c.io_elements * esize;
  in = host_buffer(ctx, bytes, packed);
  out = host_buffer(ctx, bytes, NULL);
  if (!in || !out) {
    case_fail(e, "cannot allocate device buffers");
    goto done;
  }
  st = dcnv4_layer_dcnv4_forward(layer, c.batch, c.height, c.width, in, out,
                                 NULL, 0, NULL, NULL);
  rc = run_layer_output(ctx, st, out, c.io_elements, c.dtype, c.io_shape, outs,
                        e);
done:
  host_release(in);
  host_release(out);
  dcnv4_layer_destroy(layer);
  dcnv4_context_destroy(ctx);
  free(values);
  free(packed);
  return rc;
}
