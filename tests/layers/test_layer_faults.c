/* Fault injection (build with DCNV4_FAULT_INJECTION): a layer's whole life
 * (create, set_weight, load_safetensors, forward), for a DCNv4 layer and a
 * FlashDeformAttn layer, with the n-th allocation or OpenCL call failing, for
 * every n until a run meets no fault. Each failure must come back as a status
 * with a message, never a crash, and (under AddressSanitizer) without a leak;
 * after each run the layer works again once faults stop.
 *
 * usage: test_layer_faults */
#include "st_writer.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

/* Exported by the library in fault-injection builds only. */
void dcnv4_test_fault_set(long fail_at);
long dcnv4_test_fault_count(void);
const char *dcnv4_test_fault_site(void);

#define C 8
#define G 2
#define S 56 /* ceil(G*9*3/8)*8 */

static float values[S * C]; /* as large as the largest weight */

static const struct {
  const char *key;
  int ndim;
  int64_t shape[4];
} keys[] = {
    {"value_proj.weight", 2, {C, C}},
    {"value_proj.bias", 1, {C}},
    {"offset_mask.weight", 2, {S, C}},
    {"offset_mask.bias", 1, {S}},
    {"offset_mask_dw.weight", 4, {C, 1, 3, 3}},
    {"offset_mask_dw.bias", 1, {C}},
    {"output_proj.weight", 2, {C, C}},
    {"output_proj.bias", 1, {C}},
    {"center_feature_scale_proj_weight", 2, {G, C}},
    {"center_feature_scale_proj_bias", 1, {G}},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static float *weight_data(size_t k) {
  (void)k;
  return values; /* large enough for every weight above */
}

/* One life of a layer; returns the first failing status (or success). */
static dcnv4_status life(dcnv4_context *ctx, const char *path, cl_mem in,
                         cl_mem out) {
  dcnv4_layer_dcnv4_config c;
  dcnv4_layer_dcnv4_config_init(&c);
  c.channels = C;
  c.group = G;
  c.dw_kernel_size = 3;
  c.center_feature_scale = 1;
  dcnv4_layer *layer = (dcnv4_layer *)&c;
  dcnv4_status st = dcnv4_layer_dcnv4_create(ctx, &c, DCNV4_FLOAT16, &layer);
  if (st != DCNV4_SUCCESS) {
    CHECK(layer == NULL, "a failed create left a layer");
    return st;
  }
  for (size_t k = 0; k < NKEYS && st == DCNV4_SUCCESS; k++)
    st = dcnv4_layer_set_weight(layer, keys[k].key, weight_data(k),
                                keys[k].shape, keys[k].ndim);
  if (st == DCNV4_SUCCESS)
    st = dcnv4_layer_load_safetensors(layer, path, "x.");
  if (st == DCNV4_SUCCESS)
    st =
        dcnv4_layer_dcnv4_forward(layer, 1, 5, 5, in, out, NULL, 0, NULL, NULL);
  if (st == DCNV4_SUCCESS)
    st = dcnv4_context_finish(ctx);
  dcnv4_layer_destroy(layer);
  return st;
}

/* The FlashDeformAttn layer: d_model 8, 2 levels, 2 heads, 2 points
 * (P = 8), fp16, boxes, a padding mask. */
#define FC 8
#define FP 8
static const struct {
  const char *key;
  int ndim;
  int64_t shape[4];
} fda_keys[] = {
    {"sampling_offsets.weight", 2, {2 * FP, FC}},
    {"sampling_offsets.bias", 1, {2 * FP}},
    {"attention_weights.weight", 2, {FP, FC}},
    {"attention_weights.bias", 1, {FP}},
    {"value_proj.weight", 2, {FC, FC}},
    {"value_proj.bias", 1, {FC}},
    {"output_proj.weight", 2, {FC, FC}},
    {"output_proj.bias", 1, {FC}},
};
#define NFDA (sizeof fda_keys / sizeof fda_keys[0])
#define FDA_LQ 5
#define FDA_LEN 20 /* levels 4x4 at 0, 2x2 at 16 */

typedef struct fda_buffers {
  cl_mem query, ref, input, mask, out;
} fda_buffers;

static dcnv4_status fda_life(dcnv4_context *ctx, const char *path,
                             const fda_buffers *b) {
  dcnv4_layer_fda_config c = {FC, 2, 2, 2};
  dcnv4_layer *layer = (dcnv4_layer *)&c;
  dcnv4_status st = dcnv4_layer_fda_create(ctx, &c, DCNV4_FLOAT16, &layer);
  if (st != DCNV4_SUCCESS) {
    CHECK(layer == NULL, "a failed create left a layer");
    return st;
  }
  for (size_t k = 0; k < NFDA && st == DCNV4_SUCCESS; k++)
    st = dcnv4_layer_set_weight(layer, fda_keys[k].key, values,
                                fda_keys[k].shape, fda_keys[k].ndim);
  if (st == DCNV4_SUCCESS)
    st = dcnv4_layer_load_safetensors(layer, path, "y.");
  dcnv4_layer_fda_shape s;
  dcnv4_layer_fda_shape_init(&s);
  s.batch = 1;
  s.queries = FDA_LQ;
  s.input_len = FDA_LEN;
  s.reference_dim = 4;
  s.spatial_shapes[0][0] = s.spatial_shapes[0][1] = 4;
  s.spatial_shapes[1][0] = s.spatial_shapes[1][1] = 2;
  s.level_start[1] = 16;
  if (st == DCNV4_SUCCESS)
    st = dcnv4_layer_fda_forward(layer, &s, b->query, b->ref, b->input, b->mask,
                                 b->out, NULL, 0, NULL, NULL);
  if (st == DCNV4_SUCCESS)
    st = dcnv4_context_finish(ctx);
  dcnv4_layer_destroy(layer);
  return st;
}

/* Fails the n-th wrapped call of `run` for n = 1, 2, ... until a run meets
 * no fault; each failure must carry a message and the next fault-free run
 * must succeed. */
typedef dcnv4_status (*life_fn)(dcnv4_context *ctx, const void *arg);

static void sweep(dcnv4_context *ctx, const char *name, life_fn run,
                  const void *arg) {
  /* Without faults first: builds every program once. */
  CHECK(run(ctx, arg) == DCNV4_SUCCESS, "%s: fault-free run: %s", name,
        dcnv4_context_last_error(ctx));
  long n = 1;
  int failures = 0;
  for (;; n++) {
    dcnv4_test_fault_set(n);
    dcnv4_status st = run(ctx, arg);
    long seen = dcnv4_test_fault_count();
    const char *site = dcnv4_test_fault_site();
    dcnv4_test_fault_set(0);
    if (seen < n) {
      CHECK(st == DCNV4_SUCCESS, "%s: no fault at %ld, yet status %s", name, n,
            dcnv4_status_string(st));
      break;
    }
    failures++;
    /* A fault in a wrapped call is reported, unless it hit a call whose
     * failure the library tolerates (a disk-cache write, a clean-up). */
    if (st != DCNV4_SUCCESS)
      CHECK(dcnv4_context_last_error(ctx)[0] != '\0',
            "%s: fault %ld at %s: status %s without a message", name, n,
            site ? site : "?", dcnv4_status_string(st));
    /* Faults stopped: the next life must succeed. */
    dcnv4_status again = run(ctx, arg);
    CHECK(again == DCNV4_SUCCESS, "%s: after fault %ld at %s: %s", name, n,
          site ? site : "?", dcnv4_context_last_error(ctx));
  }
  printf("%s: %ld fault points, %d of them hit\n", name, n - 1, failures);
}

typedef struct dcnv4_life_arg {
  const char *path;
  cl_mem in, out;
} dcnv4_life_arg;

static dcnv4_status run_dcnv4_life(dcnv4_context *ctx, const void *arg) {
  const dcnv4_life_arg *a = arg;
  return life(ctx, a->path, a->in, a->out);
}

typedef struct fda_life_arg {
  const char *path;
  fda_buffers b;
} fda_life_arg;

static dcnv4_status run_fda_life(dcnv4_context *ctx, const void *arg) {
  const fda_life_arg *a = arg;
  return fda_life(ctx, a->path, &a->b);
}

/* Writes the weights (F16) under `prefix`; 0 on success. */
static int write_weights(const char *path, const char *prefix, size_t count,
                         const char *const *keys_of, const int *ndim_of,
                         const int64_t (*shape_of)[4]) {
  st_tensor t[16];
  char names[16][80];
  for (size_t k = 0; k < count; k++) {
    snprintf(names[k], sizeof names[k], "%s%s", prefix, keys_of[k]);
    t[k] = (st_tensor){names[k], "F16", ndim_of[k], {0}, values};
    memcpy(t[k].shape, shape_of[k], sizeof shape_of[k]);
  }
  return st_write(path, t, count);
}

int main(void) {
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    values[i] = (float)((int)(i % 7) - 3) * 0.1f;
  dcnv4_context *ctx = test_context();
  char *dir = make_temp_dir("faults");
  char path[4200], fda_path[4200];
  snprintf(path, sizeof path, "%s/w.safetensors", dir);
  snprintf(fda_path, sizeof fda_path, "%s/fda.safetensors", dir);
  const char *k1[NKEYS], *k2[NFDA];
  int n1[NKEYS], n2[NFDA];
  int64_t s1[NKEYS][4], s2[NFDA][4];
  for (size_t k = 0; k < NKEYS; k++) {
    k1[k] = keys[k].key;
    n1[k] = keys[k].ndim;
    memcpy(s1[k], keys[k].shape, sizeof s1[k]);
  }
  for (size_t k = 0; k < NFDA; k++) {
    k2[k] = fda_keys[k].key;
    n2[k] = fda_keys[k].ndim;
    memcpy(s2[k], fda_keys[k].shape, sizeof s2[k]);
  }
  if (write_weights(path, "x.", NKEYS, k1, n1, (const int64_t(*)[4])s1) ||
      write_weights(fda_path, "y.", NFDA, k2, n2, (const int64_t(*)[4])s2)) {
    fprintf(stderr, "cannot write the weight files in %s\n", dir);
    return 1;
  }
  float zeros[C * 25] = {0};
  dcnv4_life_arg a1 = {path, upload_values(ctx, zeros, C * 25, DCNV4_FLOAT16),
                       poisoned_buffer(ctx, C * 25, DCNV4_FLOAT16)};
  float q[FC * FDA_LEN], refs[FDA_LQ * 2 * 4];
  unsigned char mask[FDA_LEN];
  for (size_t i = 0; i < FC * FDA_LEN; i++)
    q[i] = (float)((int)(i % 5) - 2) * 0.25f;
  for (size_t i = 0; i < FDA_LQ * 2 * 4; i++)
    refs[i] = 0.1f + 0.05f * (float)(i % 9);
  for (size_t i = 0; i < FDA_LEN; i++)
    mask[i] = i % 3 == 0;
  fda_life_arg a2 = {fda_path,
                     {upload_values(ctx, q, FC * FDA_LQ, DCNV4_FLOAT16),
                      upload_values(ctx, refs, FDA_LQ * 2 * 4, DCNV4_FLOAT16),
                      upload_values(ctx, q, FC * FDA_LEN, DCNV4_FLOAT16),
                      host_buffer(ctx, FDA_LEN, mask),
                      poisoned_buffer(ctx, FC * FDA_LQ, DCNV4_FLOAT16)}};

  sweep(ctx, "DCNv4 layer", run_dcnv4_life, &a1);
  sweep(ctx, "FlashDeformAttn layer", run_fda_life, &a2);

  host_release(a1.in);
  host_release(a1.out);
  host_release(a2.b.query);
  host_release(a2.b.ref);
  host_release(a2.b.input);
  host_release(a2.b.mask);
  host_release(a2.b.out);
  remove_tree(dir);
  free(dir);
  dcnv4_context_destroy(ctx);
  return test_finish("test_layer_faults");
}
