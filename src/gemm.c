/* The GEMMs of the layers: the one place that calls CLBlast, so that
 * per-device GEMM tuning (CLBlastOverrideParameters) plugs in here.
 *
 * Every projection is fp32 SGEMM, whatever the layer's dtype: CLBlast's half
 * GEMM needs cl_khr_fp16, which NVIDIA's OpenCL lacks; fp16/bf16 layers
 * widen their data to fp32 scratch instead (see layer.h).
 *
 * Tuned parameters: the tuning file's "gemm" entries go to
 * CLBlastOverrideParameters at context creation (dcn_gemm_apply_tuning).
 * CLBlast keeps them per device for the whole process. A set the device
 * cannot run (work-group or local memory too large, tiles that do not
 * divide) is not applied: CLBlast's defaults stay. If a GEMM still fails
 * with applied sets, they are replaced by conservative ones (CLBlast cannot
 * forget an override) and the GEMM is retried once.
 *
 * CLBlast compiles its kernels on the first call for a device and precision
 * in the process (about a second on a GPU, 10 s or more on PoCL without its
 * kernel cache) and keeps them in a process-wide cache. */
#include "fault.h"
#include "layer.h"
#include "tuning.h"

#include <clblast_c.h>
#include <stdio.h>
#include <string.h>

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
  for (int attempt = 0;; attempt++) {
    if (DCN_FAULT("CLBlastSgemm"))
      s = CLBlastOpenCLOutOfResources;
    else
      s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                       CLBlastTransposeYes, (size_t)m, (size_t)n, (size_t)k,
                       1.0f, a, 0, (size_t)k, b, 0, (size_t)k, 0.0f, c, 0,
                       (size_t)n, &ctx->queue, event);
    if (s == CLBlastSuccess || attempt > 0 || !ctx->gemm_tuned ||
        s == CLBlastOpenCLOutOfResources || s == CLBlastOpenCLOutOfHostMemory)
      break;
    dcn_log(ctx, DCN_LOG_INFO,
            "CLBlast SGEMM (%s) with the tuning file's parameters failed: "
            "%s (%d); falling back to conservative parameters",
            what, clblast_status_name(s), (int)s);
    dcn_gemm_untune(ctx);
  }
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

/* A parameter of a set by name; -1 if absent. */
static long gemm_param(const dcn_gemm_entry *e, const char *name) {
  for (size_t i = 0; i < e->count; i++)
    if (!strcmp(e->names[i], name))
      return (long)e->values[i];
  return -1;
}

static bool divides(long x, long y) { return y > 0 && x >= 0 && x % y == 0; }

/* Why the device cannot run a parameter set (CLBlast's tuner constraints,
 * the work-group and local-memory limits), or NULL. */
static const char *gemm_unusable(const dcnv4_context *ctx,
                                 const dcn_gemm_entry *e, char *why,
                                 size_t size) {
  bool direct = !strcmp(e->kernel, "XgemmDirect");
  const char *const xnames[] = {"MWG",   "NWG",   "KWG",   "MDIMC",
                                "NDIMC", "MDIMA", "NDIMB", "KWI",
                                "VWM",   "VWN",   "SA",    "SB"};
  const char *const dnames[] = {"WGD",  "MDIMCD", "NDIMCD", "MDIMAD", "NDIMBD",
                                "KWID", "VWMD",   "VWND",   "PADA",   "PADB"};
  long v[12];
  size_t n = direct ? 10 : 12;
  for (size_t i = 0; i < n; i++)
    if ((v[i] = gemm_param(e, direct ? dnames[i] : xnames[i])) < 0) {
      snprintf(why, size, "parameter %s missing",
               direct ? dnames[i] : xnames[i]);
      return why;
    }
  long wg, local, mw, nw, kw, mdc, ndc, mda, ndb, kwi, vwm, vwn;
  if (direct) {
    mw = nw = kw = v[0];
    mdc = v[1], ndc = v[2], mda = v[3], ndb = v[4], kwi = v[5], vwm = v[6],
    vwn = v[7];
    local = 4 * (v[0] * (v[0] + v[8]) + v[0] * (v[0] + v[9]));
  } else {
    mw = v[0], nw = v[1], kw = v[2], mdc = v[3], ndc = v[4], mda = v[5],
    ndb = v[6], kwi = v[7], vwm = v[8], vwn = v[9];
    local = 4 * (v[10] * kw * mw + v[11] * kw * nw);
  }
  wg = mdc * ndc;
  if (!divides(kw, kwi) || !divides(mw, mdc * vwm) || !divides(nw, ndc * vwn) ||
      !divides(mw, mda * vwm) || !divides(nw, ndb * vwn) || mda <= 0 ||
      ndb <= 0 || !divides(kw, wg / mda) || !divides(kw, wg / ndb))
    snprintf(why, size, "the tile sizes do not divide as CLBlast requires");
  else if ((size_t)wg > ctx->max_work_group_size)
    snprintf(why, size, "work-groups of %ld items, more than the device's %zu",
             wg, ctx->max_work_group_size);
  else if ((cl_ulong)local > ctx->local_mem_bytes)
    snprintf(why, size,
             "%ld bytes of local memory, more than the device's %llu", local,
             (unsigned long long)ctx->local_mem_bytes);
  else
    return NULL;
  return why;
}

/* Conservative sets (64 work-items, little or no local memory) that replace
 * a tuned set CLBlast fails with at run time: CLBlast cannot forget an
 * override, so its own defaults cannot be restored. */
static const dcn_gemm_entry safe_sets[] = {
    {"Xgemm",
     16,
     {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB", "NDIMC",
      "NWG", "SA", "SB", "STRM", "STRN", "VWM", "VWN"},
     {0, 1, 16, 1, 8, 8, 32, 8, 8, 32, 0, 0, 0, 0, 1, 1}},
    {"XgemmDirect",
     10,
     {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD",
      "VWND", "WGD"},
     {1, 8, 8, 8, 8, 1, 1, 1, 1, 8}},
};

static CLBlastStatusCode override(dcnv4_context *ctx, const dcn_gemm_entry *e) {
  const char *names[DCN_GEMM_MAX_PARAMS];
  for (size_t j = 0; j < e->count; j++)
    names[j] = e->names[j];
  return CLBlastOverrideParameters(ctx->device, e->kernel,
                                   CLBlastPrecisionSingle, e->count, names,
                                   e->values);
}

void dcn_gemm_untune(dcnv4_context *ctx) {
  for (size_t i = 0; i < sizeof safe_sets / sizeof safe_sets[0]; i++)
    if (ctx->gemm_tuned_kernels & (1u << i))
      (void) override(ctx, &safe_sets[i]);
  CLBlastClearCache();
  ctx->gemm_tuned = false;
  ctx->gemm_tuned_kernels = 0;
}

int dcn_gemm_apply_tuning(dcnv4_context *ctx, const dcn_gemm_entry *entries,
                          size_t count) {
  int applied = 0;
  for (size_t i = 0; i < count; i++) {
    const dcn_gemm_entry *e = &entries[i];
    char why[160];
    if (gemm_unusable(ctx, e, why, sizeof why)) {
      dcn_log(ctx, DCN_LOG_INFO,
              "CLBlast %s parameters from the tuning file cannot run on this "
              "device (%s); CLBlast's defaults stay",
              e->kernel, why);
      continue;
    }
    CLBlastStatusCode s = override(ctx, e);
    if (s == CLBlastSuccess) {
      applied++;
      for (size_t k = 0; k < sizeof safe_sets / sizeof safe_sets[0]; k++)
        if (!strcmp(safe_sets[k].kernel, e->kernel))
          ctx->gemm_tuned_kernels |= 1u << k;
    }
    dcn_log(ctx, s == CLBlastSuccess ? DCN_LOG_DEBUG : DCN_LOG_INFO,
            "CLBlast %s parameters from the tuning file: %s (%d)", e->kernel,
            s == CLBlastSuccess ? "applied"
                                : "refused, CLBlast's defaults stay",
            (int)s);
  }
  return applied;
}
