/* dcnv4-run: op "flash_deform_attn" (the core operator, forward and
 * backward). */
#include "cl_host.h"
#include "host_dtype.h"
#include "run_case.h"

#include <stdlib.h>

int run_fda(const run_request *req, run_outputs *outs, case_error *e) {
  fda_case c;
  if (fda_case_read(req->meta, &c, e) != 0)
    return RUN_BAD_INPUT;
  c.params.deterministic = req->deterministic;
  const dcnv4_fda_params *p = &c.params;
  float *vval = NULL, *vsa = NULL, *vgo = NULL;
  void *pval = NULL, *psa = NULL, *pgo = NULL;
  int rc = RUN_BAD_INPUT;
  dcnv4_context *ctx = NULL;
  cl_mem val = NULL, sa = NULL, out = NULL, go = NULL, gv = NULL, gsa = NULL;
  if (case_load_tensor(req->case_dir, "value", 4, c.value_shape, p->dtype,
                       &vval, &pval, e) ||
      case_load_tensor(req->case_dir, "sampling_loc_attn", 4, c.sampling_shape,
                       p->dtype, &vsa, &psa, e) ||
      (!req->forward_only &&
       case_load_tensor(req->case_dir, "grad_output", 3, c.output_shape,
                        p->dtype, &vgo, &pgo, e)))
    goto done;
  rc = RUN_FAILED;
  if (run_open_context(req, &ctx, e) != RUN_OK)
    goto done;
  const dcnv4_fda_shape *s = &c.shape;
  val = host_buffer(ctx, s->value_bytes, pval);
  sa = host_buffer(ctx, s->sampling_bytes, psa);
  out = host_buffer(ctx, s->output_bytes, NULL);
  if (!val || !sa || !out) {
    case_fail(e, "cannot allocate device buffers");
    goto done;
  }
  dcnv4_status st = dcnv4_fda_forward(ctx, p, val, sa, out, 0, NULL, NULL);
  float *result = NULL;
  if (st != DCNV4_SUCCESS || !(result = host_download_floats(
                                   ctx, out, s->output_elements, p->dtype))) {
    case_fail(e, "forward failed: %s", dcnv4_context_last_error(ctx));
    goto done;
  }
  run_add_output(outs, "output", 3, c.output_shape, result);
  if (!req->forward_only) {
    go = host_buffer(ctx, s->output_bytes, pgo);
    gv = host_buffer(ctx, s->value_bytes, NULL);
    gsa = host_buffer(ctx, s->sampling_bytes, NULL);
    if (!go || !gv || !gsa) {
      case_fail(e, "cannot allocate device buffers");
      goto done;
    }
    dcnv4_fda_backward_buffers b = {val, sa, go, gv, gsa, NULL};
    float *gvalue = NULL, *gsampling = NULL;
    st = dcnv4_fda_backward(ctx, p, &b, 0, NULL, NULL);
    if (st != DCNV4_SUCCESS ||
        !(gvalue =
              host_download_floats(ctx, gv, s->value_elements, p->dtype)) ||
        !(gsampling =
              host_download_floats(ctx, gsa, s->sampling_elements, p->dtype))) {
      free(gvalue);
      case_fail(e, "backward failed: %s", dcnv4_context_last_error(ctx));
      goto done;
    }
    run_add_output(outs, "grad_value", 4, c.value_shape, gvalue);
    run_add_output(outs, "grad_sampling_loc_attn", 4, c.sampling_shape,
                   gsampling);
  }
  rc = RUN_OK;
done:
  host_release(val);
  host_release(sa);
  host_release(out);
  host_release(go);
  host_release(gv);
  host_release(gsa);
  dcnv4_context_destroy(ctx);
  free(vval);
  free(vsa);
  free(vgo);
  free(pval);
  free(psa);
  free(pgo);
  return rc;
}
