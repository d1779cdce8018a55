/* dcnv4-run: one runner per op, all with the same contract. */
#ifndef DCNV4_RUN_CASE_H
#define DCNV4_RUN_CASE_H

#include "case_meta.h"

/* Exit statuses of dcnv4-run. */
#define RUN_OK 0
#define RUN_FAILED 1    /* device or library failure */
#define RUN_BAD_INPUT 2 /* usage, files, meta, parameters */

#define RUN_MAX_OUTPUTS 8

typedef struct run_request {
  const char *case_dir;
  const cJSON *meta;
  const char *device; /* NULL: DCNV4_DEVICE or the default */
  int forward_only;
  int deterministic; /* backward without float atomics (both operators) */
} run_request;

/* Results, held in memory until every one is ready; written as <f4. */
typedef struct run_output {
  const char *name; /* file name without .npy */
  int ndim;
  int64_t shape[NPY_MAX_DIMS];
  float *data; /* malloc'd */
} run_output;

typedef struct run_outputs {
  run_output items[RUN_MAX_OUTPUTS];
  int count;
} run_outputs;

/* Adds an output taking ownership of data; returns its slot or NULL. */
run_output *run_add_output(run_outputs *outs, const char *name, int ndim,
                           const int64_t *shape, float *data);
void run_free_outputs(run_outputs *outs);

/* Opens a context on the requested device; RUN_OK or RUN_FAILED. */
int run_open_context(const run_request *req, dcnv4_context **ctx,
                     case_error *e);

/* Runner of each op: returns RUN_OK, RUN_FAILED or RUN_BAD_INPUT. */
typedef int (*run_fn)(const run_request *req, run_outputs *outs, case_error *e);
int run_dcnv4(const run_request *req, run_outputs *outs, case_error *e);
int run_fda(const run_request *req, run_outputs *outs, case_error *e);
int run_dcnv4_layer(const run_request *req, run_outputs *outs, case_error *e);
int run_fda_layer(const run_request *req, run_outputs *outs, case_error *e);
int run_fii(const run_request *req, run_outputs *outs, case_error *e);

#endif
