/* Launcher of LayerNorm (layernorm.cl) and its GELU and residual forms. */
#include "ops/fii/fii_common.h"

#include <float.h>
#include <stdio.h>

/* Teams of work-items per row: about 8 channels per work-item, from 8 up to
 * 256 items (a 64-channel row takes 8, a 1536-channel row 256); work-groups
 * of at least 128 items hold several teams. Both shrink to what the device
 * and the built kernel allow. */
static dcnv4_status layernorm_kernel(dcnv4_context *ctx,
                                     const dcn_layernorm_desc *d, bool idx64,
                                     cl_kernel *kernel, size_t *local,
                                     size_t *team) {
  size_t t = 8;
  while (t < 256 && t * 8 < (size_t)d->channels)
    t *= 2;
  size_t l = t < 128 ? 128 : t;
  for (;;) {
    while (l > ctx->max_work_group_size && l > 1)
      l /= 2;
    if (t > l)
      t = l;
    char options[128];
    snprintf(options, sizeof options,
             "-DIDX64=%d -DLN_TEAM=%zu -DLN_LOCAL=%zu -DLN_EPILOGUE=%d%s",
             idx64 ? 1 : 0, t, l, (int)d->epilogue,
             dcn_fii_dtype_option(d->dtype));
    dcnv4_status st =
        dcn_get_kernel(ctx, "fii_layernorm", options, "layernorm", kernel);
    if (st != DCNV4_SUCCESS)
      return st;
    if (dcn_kernel_item_limit(ctx, *kernel, l) >= l || l == 1) {
      *local = l;
      *team = t;
      return DCNV4_SUCCESS;
    }
    l /= 2;
  }
}

dcnv4_status dcn_layernorm_forward(dcnv4_context *ctx,
                                   const dcn_layernorm_desc *d, cl_mem x,
                                   cl_mem weight, cl_mem bias, cl_mem scale,
                                   cl_mem residual, cl_mem out,
                                   cl_event *event) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (!d)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER,
                    "layernorm: descriptor is NULL");
  if (d->rows < 1 || d->channels < 1)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "layernorm: %llu rows of %d channels; both must be at "
                    "least 1",
                    (unsigned long long)d->rows, (int)d->channels);
  if (d->epilogue != DCN_NORM_PLAIN && d->epilogue != DCN_NORM_GELU &&
      d->epilogue != DCN_NORM_RESIDUAL)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "layernorm: unknown epilogue %d", (int)d->epilogue);
  if (!(d->eps > 0.0f) || !(d->eps <= FLT_MAX))
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "layernorm: eps %g must be positive and finite",
                    (double)d->eps);
  uint64_t elems = 0;
  size_t bytes = 0, c_bytes = 0;
  if (dcnv4_dtype_size(d->dtype) == 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "layernorm: unknown dtype %d", (int)d->dtype);
  if (!dcn_mul_u64(d->rows, (uint64_t)d->channels, &elems) ||
      !dcn_fii_act_bytes(elems, d->dtype, &bytes) ||
      !dcn_fii_bytes((uint64_t)d->channels, &c_bytes))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "layernorm: %llu x %d overflows",
                    (unsigned long long)d->rows, (int)d->channels);
  const bool res = d->epilogue == DCN_NORM_RESIDUAL;
  dcnv4_status st;
  if ((st = dcn_check_buffer(ctx, x, "layernorm input", bytes)) ||
      (st = dcn_check_buffer(ctx, weight, "layernorm weight", c_bytes)) ||
      (st = dcn_check_buffer(ctx, bias, "layernorm bias", c_bytes)) ||
      (res && scale &&
       (st = dcn_check_buffer(ctx, scale, "layernorm scale", c_bytes))) ||
      (res &&
       (st = dcn_check_buffer(ctx, residual, "layernorm residual", bytes))) ||
      (st = dcn_check_buffer(ctx, out, "layernorm output", bytes)))
    return st;
  /* The parameters are read-only. x and residual may be out: each
   * work-item rewrites only what it read, after the reductions. */
  if (out == weight || out == bias || (res && scale && out == scale))
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_BUFFER,
                    "layernorm: the output is one of the parameters");
  const bool idx64 = elems > INT32_MAX;
  cl_kernel k;
  size_t local = 0, team = 0;
  if ((st = layernorm_kernel(ctx, d, idx64, &k, &local, &team)))
    return st;
  const uint64_t per_group = local / team;
  const uint64_t groups = (d->rows + per_group - 1) / per_group;
  if (groups > SIZE_MAX / local ||
      (ctx->address_bits < 64 && groups * local > 0xffffffffull))
    return dcn_fail(ctx, DCNV4_ERROR_SIZE_OVERFLOW,
                    "layernorm: %llu rows are too many for one launch",
                    (unsigned long long)d->rows);
  dcn_fii_index rows;
  const cl_int c = d->channels, has_scale = res && scale ? 1 : 0;
  const cl_float eps = d->eps;
  /* Placeholders for buffers the epilogue does not read. */
  cl_mem scale_arg = has_scale ? scale : weight;
  cl_mem residual_arg = res ? residual : x;
  const dcn_arg args[] = {DCN_ARG(x),
                          DCN_ARG(weight),
                          DCN_ARG(bias),
                          DCN_ARG(scale_arg),
                          DCN_ARG(residual_arg),
                          DCN_ARG(out),
                          dcn_fii_index_arg(&rows, idx64, d->rows),
                          DCN_ARG(c),
                          DCN_ARG(eps),
                          DCN_ARG(has_scale)};
  if ((st =
           dcn_set_args(ctx, k, args, sizeof args / sizeof *args, "layernorm")))
    return st;
  const size_t global = (size_t)groups * local;
  return dcn_enqueue_nd(ctx, k, 1, &global, &local, 0, NULL, event,
                        "layernorm");
}
