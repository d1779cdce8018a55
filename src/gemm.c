/* The GEMMs of the layers: the one place that calls CLBlast, so that
 * per-device GEMM tuning (CLBlastOverrideParameters) plugs in here.
 *
 * Every projection is fp32 SGEMM, whatever the layer's dtype: CLBlast's half
 * GEMM needs cl_khr_fp16, which NVIDIA's OpenCL lacks; fp16/bf16 layers
 * widen their data to fp32 scratch instead (see layer.h).
 *
 * CLBlast compiles its kernels on the first call for a device and precision
 * in the process (about a second on a GPU, 10 s or more on PoCL without its
 * kernel cache) and keeps them in a process-wide cache. */
#include "fault.h"
#include "layer.h"

#include <clblast_c.h>

static const char *clblast_status_name(CLBlastStatusCode s) {
  switch (s) {
  case CLBlastNotImplemented: return "not implemented";
  case CLBlastInvalidMatrixA: return "matrix A is not a valid buffer";
  case CLBlastInvalidMatrixB: return "matrix B is not a valid buffer";
  case CLBlastInvalidMatrixC: return "matrix C is not a valid buffer";
  case CLBlastInvalidDimension: return "invalid dimension";
  case CLBlastInvalidLeadDimA: return "invalid leading dimension of A";
  case CLBlastInvalidLeadDimB: return "invalid leading dimension of B";
  case CLBlastInvalidLeadDimC: return "invalid leading dimension of C";
  case CLBlastInsufficientMemoryA: return "buffer of A too small";
  case CLBlastInsufficientMemoryB: return "buffer of B too small";
  case CLBlastInsufficientMemoryC: return "buffer of C too small";
  case CLBlastInsufficientMemoryTemp: return "temporary buffer too small";
  case CLBlastInvalidLocalMemUsage: return "not enough local memory";
  case CLBlastDatabaseError: return "no tuning entry for the device";
  case CLBlastUnknownError: return "unknown error";
  case CLBlastUnexpectedError: return "unexpected error";
  default: break;
  }
  /* The codes above -1000 are OpenCL's. */
  return s > -1000 ? dcn_cl_error_name((cl_int)s) : "CLBlast error";
}

dcnv4_status dcn_gemm_linear(dcnv4_context *ctx, uint64_t m, uint64_t n,
                             uint64_t k, cl_mem a, cl_mem b, cl_mem c,
                             cl_event *event, const char *what) {
  if (m == 0 || n == 0 || k == 0 || m > SIZE_MAX || n > SIZE_MAX ||
      k > SIZE_MAX)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_SHAPE,
                    "GEMM %s: invalid size %llu x %llu x %llu", what,
                    (unsigned long long)m, (unsigned long long)n,
                    (unsigned long long)k);
  CLBlastStatusCode s;
  if (DCN_FAULT("CLBlastSgemm"))
    s = CLBlastOpenCLOutOfResources;
  else
    s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                     CLBlastTransposeYes, (size_t)m, (size_t)n, (size_t)k, 1.0f,
                     a, 0, (size_t)k, b, 0, (size_t)k, 0.0f, c, 0, (size_t)n,
                     &ctx->queue, event);
  if (s == CLBlastSuccess)
    return DCNV4_SUCCESS;
  return dcn_fail(ctx,
                  s == CLBlastOpenCLOutOfHostMemory
                      ? DCNV4_ERROR_OUT_OF_HOST_MEMORY
                      : DCNV4_ERROR_OPENCL,
                  "CLBlast SGEMM (%s, %llu x %llu x %llu) failed: %s (%d)",
                  what, (unsigned long long)m, (unsigned long long)n,
                  (unsigned long long)k, clblast_status_name(s), (int)s);
}
