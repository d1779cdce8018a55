/* dcnv4-run: op "dcnv4" (the core operator, forward and backward). */
#include "cl_host.h"
#include "host_dtype.h"
#include "run_case.h"

#include <stdlib.h>

int run_dcnv4(const run_request *req, run_outputs *outs, case_error *e) {
  dcnv4_case c;
  if (dcnv4_case_read(req->meta, &c, e) != 0)
    return RUN_BAD_INPUT;
  c.params.deterministic = req->deterministic;
  const dcnv4_params *p = &c.params;
  float *vin = NULL, *vom = NULL, *vgo = NULL;
  void *pin = NULL, *pom = NULL, *pgo = NULL;
  int rc = RUN_BAD_INPUT;
  dcnv4_context *ctx = NULL;
  cl_mem in = NULL, om = NULL, out = NULL, go = NULL, gi = NULL, gom = NULL;
  if (case_load_tensor(req->case_dir, "input", 4, c.input_shape, p->dtype, &vin,
                       &pin, e) ||
      case_load_tensor(req->case_dir, "offset_mask", 4, c.offset_mask_shape,
                       p->dtype, &vom, &pom, e) ||
      (!req->forward_only &&
       case_load_tensor(req->case_dir, "grad_output", 4, c.output_shape,
                        p->dtype, &vgo, &pgo, e)))
    goto done;
  rc = RUN_FAILED;
  if (run_open_context(req, &ctx, e) != RUN_OK)
    goto done;
  const dcnv4_shape *s = &c.shape;
  in = host_buffer(ctx, s->input_bytes, pin);
  om = host_buffer(ctx, s->offset_mask_bytes, pom);
  out = host_buffer(ctx, s->output_bytes, NULL);
  if (!in || !om || !out) {
    case_fail(e, "cannot allocate device buffers");
    goto done;
  }
  dcnv4_status st = dcnv4_forward(ctx, p, in, om, out, 0, NULL, NULL);
  float *result = NULL;
  if (st != DCNV4_SUCCESS || !(result = host_download_floats(
                                   ctx, out, s->output_elements, p->dtype))) {
    case_fail(e, "forward failed: %s", dcnv4_context_last_error(ctx));
    goto done;
  }
  run_add_output(outs, "output", 4, c.output_shape, result);
  if (!req->forward_only) {
    go = host_buffer(ctx, s->output_bytes, pgo);
    gi = host_buffer(ctx, s->input_bytes, NULL);
    gom = host_buffer(ctx, s->offset_mask_bytes, NULL);
    if (!go || !gi || !gom) {
      case_fail(e, "cannot allocate device buffers");
      goto done;
    }
    dcnv4_backward_buffers b = {in, om, go, gi, gom, NULL};
    float *ginput = NULL, *gofm = NULL;
    st = dcnv4_backward(ctx, p, &b, 0, NULL, NULL);
    if (st != DCNV4_SUCCESS ||
        !(ginput =
              host_download_floats(ctx, gi, s->input_elements, p->dtype)) ||
        !(gofm = host_download_floats(ctx, gom, s->offset_mask_elements,
                                      p->dtype))) {
      free(ginput);
      case_fail(e, "backward failed: %s", dcnv4_context_last_error(ctx));
      goto done;
    }
    run_add_output(outs, "grad_input", 4, c.input_shape, ginput);
    run_add_output(outs, "grad_offset_mask", 4, c.offset_mask_shape, gofm);
  }
  rc = RUN_OK;
done:
  host_release(in);
  host_release(om);
  host_release(out);
  host_release(go);
  host_release(gi);
  host_release(gom);
  dcnv4_context_destroy(ctx);
  free(vin);
  free(vom);
  free(vgo);
  free(pin);
  free(pom);
  free(pgo);
  return rc;
}
