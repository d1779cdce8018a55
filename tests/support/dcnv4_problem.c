#include "dcnv4_problem.h"

#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void problem_init(dcnv4_problem *pr, const dcnv4_params *p, rng *r,
                  double far_fraction) {
  memset(pr, 0, sizeof *pr);
  pr->p = *p;
  if (dcnv4_get_shape(p, &pr->s) != DCNV4_SUCCESS) {
    fprintf(stderr, "problem_init: invalid parameters\n");
    exit(1);
  }
  const dcnv4_shape *s = &pr->s;
  pr->input = malloc(s->input_elements * sizeof(float) + 1);
  pr->offset_mask = malloc(s->offset_mask_elements * sizeof(float) + 1);
  pr->grad_output = malloc(s->output_elements * sizeof(float) + 1);
  for (uint64_t i = 0; i < s->input_elements; i++)
    pr->input[i] = round_to_dtype((float)rng_uniform(r, -1, 1), p->dtype);
  for (uint64_t i = 0; i < s->output_elements; i++)
    pr->grad_output[i] = round_to_dtype((float)rng_uniform(r, -1, 1), p->dtype);
  const int K = s->points, lanes = p->group * K * 3;
  const uint64_t rows =
      s->offset_mask_elements / (uint64_t)s->offset_mask_stride;
  for (uint64_t row = 0; row < rows; row++) {
    float *om = pr->offset_mask + row * (uint64_t)s->offset_mask_stride;
    for (int g = 0; g < p->group; g++) {
      float *grp = om + g * K * 3;
      for (int k = 0; k < 2 * K; k++) {
        double v = rng_normal(r) * 1.5;
        if (rng_uniform(r, 0, 1) < far_fraction)
          v = (rng_next(r) & 1 ? 1 : -1) * pow(10.0, rng_uniform(r, 1.5, 6));
        grp[k] = (float)v;
      }
      for (int k = 0; k < K; k++)
        grp[2 * K + k] =
            (float)(p->softmax ? rng_normal(r) * 2 : rng_uniform(r, -1, 1));
    }
    for (int lane = lanes; lane < s->offset_mask_stride; lane++)
      om[lane] = 1e4f; /* padding: never read */
    for (int lane = 0; lane < s->offset_mask_stride; lane++)
      om[lane] = round_to_dtype(om[lane], p->dtype);
  }
}

void problem_free(dcnv4_problem *pr) {
  free(pr->input);
  free(pr->offset_mask);
  free(pr->grad_output);
  memset(pr, 0, sizeof *pr);
}

void problem_describe(const dcnv4_params *p, char *out, size_t size) {
  snprintf(out, size,
           "%s N%d %dx%d G%d D%d k%dx%d s%d,%d p%d,%d d%d,%d os%g rc%d sm%d "
           "S%d",
           dcnv4_dtype_name(p->dtype), (int)p->batch, (int)p->height_in,
           (int)p->width_in, (int)p->group, (int)p->group_channels,
           (int)p->kernel_h, (int)p->kernel_w, (int)p->stride_h,
           (int)p->stride_w, (int)p->pad_h, (int)p->pad_w, (int)p->dilation_h,
           (int)p->dilation_w, (double)p->offset_scale, (int)p->remove_center,
           (int)p->softmax, (int)p->offset_mask_stride);
}

int problem_run(dcnv4_context *ctx, const dcnv4_problem *pr, int backward,
                dcnv4_errors *err) {
  const dcnv4_params *p = &pr->p;
  const dcnv4_shape *s = &pr->s;
  const size_t ni = s->input_elements, no = s->output_elements,
               nm = s->offset_mask_elements;
  double *in = to_doubles(pr->input, ni), *om = to_doubles(pr->offset_mask, nm),
         *go = to_doubles(pr->grad_output, no);
  double *ref_out = malloc(no * sizeof(double) + 1);
  ref_dcnv4_forward(p, in, om, ref_out);

  cl_mem d_in = upload_values(ctx, pr->input, ni, p->dtype);
  cl_mem d_om = upload_values(ctx, pr->offset_mask, nm, p->dtype);
  cl_mem d_out = poisoned_buffer(ctx, no, p->dtype);
  cl_mem d_go = NULL, d_gi = NULL, d_gom = NULL;
  int rc = 0;
  memset(err, 0, sizeof *err);
  if (dcnv4_forward(ctx, p, d_in, d_om, d_out, 0, NULL, NULL) !=
      DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4_forward: %s\n", dcnv4_context_last_error(ctx));
    rc = -1;
    goto done;
  }
  double *got = download_values(ctx, d_out, no, p->dtype);
  err->output = rel_l2(got, ref_out, no);
  free(got);
  if (backward) {
    double *ref_gi = malloc(ni * sizeof(double) + 1);
    double *ref_gom = malloc(nm * sizeof(double) + 1);
    ref_dcnv4_backward(p, in, om, go, ref_gi, ref_gom);
    d_go = upload_values(ctx, pr->grad_output, no, p->dtype);
    d_gi = poisoned_buffer(ctx, ni, p->dtype);
    d_gom = poisoned_buffer(ctx, nm, p->dtype);
    dcnv4_backward_buffers b = {d_in, d_om, d_go, d_gi, d_gom, NULL};
    if (dcnv4_backward(ctx, p, &b, 0, NULL, NULL) != DCNV4_SUCCESS) {
      fprintf(stderr, "dcnv4_backward: %s\n", dcnv4_context_last_error(ctx));
      rc = -1;
    } else {
      double *gi = download_values(ctx, d_gi, ni, p->dtype);
      double *gom = download_values(ctx, d_gom, nm, p->dtype);
      err->grad_input = rel_l2(gi, ref_gi, ni);
      err->grad_offset_mask = rel_l2(gom, ref_gom, nm);
      free(gi);
      free(gom);
    }
    free(ref_gi);
    free(ref_gom);
  }
done:
  host_release(d_in);
  host_release(d_om);
  host_release(d_out);
  host_release(d_go);
  host_release(d_gi);
  host_release(d_gom);
  free(in);
  free(om);
  free(go);
  free(ref_out);
  return rc;
}

void dcnv4_case_params(const dcnv4_test_case *c, dcnv4_dtype dtype,
                       dcnv4_params *p) {
  dcnv4_params_init(p);
  p->batch = c->n;
  p->height_in = c->h;
  p->width_in = c->w;
  p->group = c->g;
  p->group_channels = c->d;
  p->kernel_h = c->kh;
  p->kernel_w = c->kw;
  p->stride_h = c->sh;
  p->stride_w = c->sw;
  p->pad_h = c->ph;
  p->pad_w = c->pw;
  p->dilation_h = c->dh;
  p->dilation_w = c->dw;
  p->offset_scale = c->os;
  p->remove_center = c->rc;
  p->softmax = c->sm;
  int K = c->kh * c->kw - c->rc;
  p->offset_mask_stride =
      c->extra_stride ? c->g * K * 3 + c->extra_stride - 1 : 0;
  p->dtype = dtype;
}
