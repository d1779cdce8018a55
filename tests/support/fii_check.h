/* The FlashInternImage kernels (src/ops/fii/fii_ops.h, internal) on random
 * data against the float64 reference: one case = a call's inputs on the
 * device, its output's starting contents (NaN for pure outputs, data for
 * in-place ones) and the expected result. Shared by test_fii_ops,
 * test_fii_faults and the Oclgrind part `fii`. Links the static library
 * (the interface is not exported). */
#ifndef DCNV4_FII_CHECK_H
#define DCNV4_FII_CHECK_H

#include "layers/layer.h"
#include "ops/fii/fii_ops.h"
#include "test_util.h"

typedef enum fii_op {
  FII_CONV2D,
  FII_LAYERNORM,
  FII_RESIDUAL,
  FII_AVGPOOL,
  FII_GEMM
} fii_op;

typedef struct fii_case {
  fii_op op;
  /* FII_CONV2D */
  dcn_conv2d_shape conv;
  /* FII_LAYERNORM; also rows x channels of FII_RESIDUAL */
  dcn_layernorm_desc ln;
  /* FII_AVGPOOL */
  int batch;
  uint64_t positions;
  /* FII_GEMM: c (m, n) = a (m, k) b^T + bias, then epilogue; a and b in
   * `dtype`, c (or the residual) in `out_dtype` (0: fp32 both), bias and
   * scale fp32. FII_CONV2D, FII_LAYERNORM, FII_AVGPOOL: the activations'
   * storage (conv.dtype and ln.dtype are set from it; an NCHW image stays
   * fp32), weights fp32. FII_RESIDUAL: fp32 only. */
  dcn_gemm_epilogue_kind epilogue;
  dcnv4_dtype dtype, out_dtype;
  int m, n, k;
  int with_bias, with_scale;
  int mma; /* FII_GEMM on 16-bit storage: linear_mma.cl whatever the device */
  /* FII_LAYERNORM: x is out (PLAIN, GELU) or residual is out (RESIDUAL) */
  int alias;
  /* filled by fii_case_setup */
  cl_mem in[6];
  cl_mem out;
  cl_mem scratch; /* FII_GEMM with DCN_GEMM_RESIDUAL: c */
  float *out_init;
  size_t out_count;
  double *ref;
} fii_case;

/* Random inputs on ctx's device and the reference; the output holds
 * out_init. */
void fii_case_setup(fii_case *c, dcnv4_context *ctx, rng *r);
/* Writes out_init to the output again. */
void fii_case_reset(const fii_case *c, dcnv4_context *ctx);
/* The call (GEMM: prepare and product, with the context's tuning). */
dcnv4_status fii_case_run(const fii_case *c, dcnv4_context *ctx);
/* Relative L2 error of the output against the reference (+inf for NaN). */
double fii_case_error(const fii_case *c, dcnv4_context *ctx);
/* 1 when the output still holds out_init, bit for bit. */
int fii_case_untouched(const fii_case *c, dcnv4_context *ctx);
void fii_case_free(fii_case *c);
/* "conv2d 2x7x9x3->5 k3 s2 p1 nchw" and the like. */
void fii_case_name(const fii_case *c, char *out, size_t size);

/* Setup, run, finish, error, free: the error, or +inf with *status set
 * where the call failed. */
double fii_check(fii_case *c, dcnv4_context *ctx, rng *r, dcnv4_status *status);

#endif
