#include "fda_problem.h"

#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float special_location(rng *r) {
  switch (rng_int(r, 0, 9)) {
  case 0: return 0.0f;
  case 1: return 1.0f;
  case 2: return -0.0f;
  case 3: return INFINITY;
  case 4: return -INFINITY;
  case 5: return NAN;
  case 6: return (rng_next(r) & 1 ? 1 : -1) * 1e30f;
  case 7: return 3e38f;
  default:
    return (float)((rng_next(r) & 1 ? 1 : -1) *
                   pow(10.0, rng_uniform(r, 0.5, 9)));
  }
}

void fda_problem_init(fda_problem *pr, const dcnv4_fda_params *p, rng *r,
                      double special_fraction) {
  memset(pr, 0, sizeof *pr);
  pr->p = *p;
  char why[256];
  if (dcnv4_fda_check_params(p, why, sizeof why) != DCNV4_SUCCESS ||
      dcnv4_fda_get_shape(p, &pr->s) != DCNV4_SUCCESS) {
    fprintf(stderr, "fda_problem_init: invalid parameters: %s\n", why);
    exit(1);
  }
  const dcnv4_fda_shape *s = &pr->s;
  pr->value = malloc(s->value_elements * sizeof(float) + 1);
  pr->sampling = malloc(s->sampling_elements * sizeof(float) + 1);
  pr->grad_output = malloc(s->output_elements * sizeof(float) + 1);
  for (uint64_t i = 0; i < s->value_elements; i++)
    pr->value[i] = round_to_dtype((float)rng_uniform(r, -1, 1), p->dtype);
  for (uint64_t i = 0; i < s->output_elements; i++)
    pr->grad_output[i] = round_to_dtype((float)rng_uniform(r, -1, 1), p->dtype);
  const int LK = p->levels * p->points, stride = s->sampling_stride;
  const uint64_t rows = s->sampling_elements / (uint64_t)stride;
  for (uint64_t row = 0; row < rows; row++) {
    float *sa = pr->sampling + row * (uint64_t)stride;
    for (int i = 0; i < 2 * LK; i++)
      sa[i] = rng_uniform(r, 0, 1) < special_fraction
                  ? special_location(r)
                  : (float)rng_uniform(r, -0.15, 1.15);
    /* Some rows are shifted far up or down: the softmax is invariant, but
     * only if the kernel subtracts the row's maximum before exp. */
    double shift = rng_int(r, 0, 4) == 0
                       ? (rng_next(r) & 1 ? 1 : -1) * rng_uniform(r, 100, 1000)
                       : 0.0;
    for (int i = 0; i < LK; i++)
      sa[2 * LK + i] = (float)(shift + rng_normal(r) * 2);
    for (int i = 0; i < stride; i++)
      sa[i] = round_to_dtype(sa[i], p->dtype);
  }
}

void fda_problem_free(fda_problem *pr) {
  free(pr->value);
  free(pr->sampling);
  free(pr->grad_output);
  memset(pr, 0, sizeof *pr);
}

void fda_problem_describe(const dcnv4_fda_params *p, char *out, size_t size) {
  int n = snprintf(out, size, "%s B%d Q%d G%d D%d L%d K%d Nv%d [",
                   dcnv4_dtype_name(p->dtype), (int)p->batch, (int)p->queries,
                   (int)p->group, (int)p->group_channels, (int)p->levels,
                   (int)p->points, (int)p->value_len);
  for (int l = 0; l < p->levels && n > 0 && (size_t)n < size; l++)
    n += snprintf(out + n, size - (size_t)n, "%s%dx%d@%d", l ? " " : "",
                  (int)p->spatial_shapes[l][0], (int)p->spatial_shapes[l][1],
                  (int)p->level_start[l]);
  if (n > 0 && (size_t)n < size)
    snprintf(out + n, size - (size_t)n, "]");
}

int fda_problem_run(dcnv4_context *ctx, const fda_problem *pr, int backward,
                    fda_errors *err) {
  const dcnv4_fda_params *p = &pr->p;
  const dcnv4_fda_shape *s = &pr->s;
  const size_t nv = s->value_elements, ns = s->sampling_elements,
               no = s->output_elements;
  double *val = to_doubles(pr->value, nv), *sa = to_doubles(pr->sampling, ns),
         *go = to_doubles(pr->grad_output, no);
  double *ref_out = malloc(no * sizeof(double) + 1);
  ref_fda_forward(p, val, sa, ref_out);

  cl_mem d_val = upload_values(ctx, pr->value, nv, p->dtype);
  cl_mem d_sa = upload_values(ctx, pr->sampling, ns, p->dtype);
  cl_mem d_out = poisoned_buffer(ctx, no, p->dtype);
  cl_mem d_go = NULL, d_gv = NULL, d_gsa = NULL;
  int rc = 0;
  memset(err, 0, sizeof *err);
  if (dcnv4_fda_forward(ctx, p, d_val, d_sa, d_out, 0, NULL, NULL) !=
      DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4_fda_forward: %s\n", dcnv4_context_last_error(ctx));
    rc = -1;
    goto done;
  }
  double *got = download_values(ctx, d_out, no, p->dtype);
  err->output = rel_l2(got, ref_out, no);
  free(got);
  if (backward) {
    double *ref_gv = malloc(nv * sizeof(double) + 1);
    double *ref_gsa = malloc(ns * sizeof(double) + 1);
    ref_fda_backward(p, val, sa, go, ref_gv, ref_gsa);
    d_go = upload_values(ctx, pr->grad_output, no, p->dtype);
    d_gv = poisoned_buffer(ctx, nv, p->dtype);
    d_gsa = poisoned_buffer(ctx, ns, p->dtype);
    dcnv4_fda_backward_buffers b = {d_val, d_sa, d_go, d_gv, d_gsa, NULL};
    if (dcnv4_fda_backward(ctx, p, &b, 0, NULL, NULL) != DCNV4_SUCCESS) {
      fprintf(stderr, "dcnv4_fda_backward: %s\n",
              dcnv4_context_last_error(ctx));
      rc = -1;
    } else {
      double *gv = download_values(ctx, d_gv, nv, p->dtype);
      double *gsa = download_values(ctx, d_gsa, ns, p->dtype);
      err->grad_value = rel_l2(gv, ref_gv, nv);
      err->grad_sampling = rel_l2(gsa, ref_gsa, ns);
      free(gv);
      free(gsa);
    }
    free(ref_gv);
    free(ref_gsa);
  }
done:
  host_release(d_val);
  host_release(d_sa);
  host_release(d_out);
  host_release(d_go);
  host_release(d_gv);
  host_release(d_gsa);
  free(val);
  free(sa);
  free(go);
  free(ref_out);
  return rc;
}
