/* Fault injection (build with DCNV4_FAULT_INJECTION): a layer's whole life
 * (create, set_weight, load_safetensors, forward) with the n-th allocation
 * or OpenCL call failing, for every n until a run meets no fault. Each
 * failure must come back as a status with a message, never a crash, and
 * (under AddressSanitizer) without a leak; after each run the layer works
 * again once faults stop.
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
  dcnv4_dcnv4_layer_config c;
  dcnv4_dcnv4_layer_config_init(&c);
  c.channels = C;
  c.group = G;
  c.dw_kernel_size = 3;
  c.center_feature_scale = 1;
  dcnv4_layer *layer = (dcnv4_layer *)&c;
  dcnv4_status st = dcnv4_dcnv4_layer_create(ctx, &c, DCNV4_FLOAT16, &layer);
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
    st = dcnv4_layer_forward(layer, 1, 5, 5, in, out, NULL, 0, NULL, NULL);
  if (st == DCNV4_SUCCESS)
    st = dcnv4_context_finish(ctx);
  dcnv4_layer_destroy(layer);
  return st;
}

int main(void) {
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    values[i] = (float)((int)(i % 7) - 3) * 0.1f;
  dcnv4_context *ctx = test_context();
  char *dir = make_temp_dir("faults");
  char path[4200];
  snprintf(path, sizeof path, "%s/w.safetensors", dir);
  st_tensor t[NKEYS];
  char names[NKEYS][64];
  for (size_t k = 0; k < NKEYS; k++) {
    snprintf(names[k], sizeof names[k], "x.%s", keys[k].key);
    t[k] = (st_tensor){names[k], "F16", keys[k].ndim, {0}, weight_data(k)};
    memcpy(t[k].shape, keys[k].shape, sizeof keys[k].shape);
  }
  if (st_write(path, t, NKEYS) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    return 1;
  }
  float zeros[C * 25] = {0};
  cl_mem in = upload_values(ctx, zeros, C * 25, DCNV4_FLOAT16);
  cl_mem out = poisoned_buffer(ctx, C * 25, DCNV4_FLOAT16);

  /* Without faults first: builds every program once. */
  CHECK(life(ctx, path, in, out) == DCNV4_SUCCESS, "fault-free run: %s",
        dcnv4_context_last_error(ctx));
  long n = 1;
  int failures = 0;
  for (;; n++) {
    dcnv4_test_fault_set(n);
    dcnv4_status st = life(ctx, path, in, out);
    long seen = dcnv4_test_fault_count();
    const char *site = dcnv4_test_fault_site();
    dcnv4_test_fault_set(0);
    if (seen < n) {
      CHECK(st == DCNV4_SUCCESS, "no fault at %ld, yet status %s", n,
            dcnv4_status_string(st));
      break;
    }
    failures++;
    /* A fault in a wrapped call is reported, unless it hit a call whose
     * failure the library tolerates (a disk-cache write, a clean-up). */
    if (st != DCNV4_SUCCESS)
      CHECK(dcnv4_context_last_error(ctx)[0] != '\0',
            "fault %ld at %s: status %s without a message", n,
            site ? site : "?", dcnv4_status_string(st));
    /* Faults stopped: the next life must succeed. */
    dcnv4_status again = life(ctx, path, in, out);
    CHECK(again == DCNV4_SUCCESS, "after fault %ld at %s: %s", n,
          site ? site : "?", dcnv4_context_last_error(ctx));
  }
  printf("%ld fault points, %d of them hit\n", n - 1, failures);
  host_release(in);
  host_release(out);
  remove_tree(dir);
  free(dir);
  dcnv4_context_destroy(ctx);
  return test_finish("test_layer_faults");
}
