/* The built-in tuning table and the typed parameters, on fake device
 * descriptions (no device needed; library internals, linked statically):
 *   - a lookup falls back device -> architecture -> vendor default ->
 *     global default, per kernel, dtype and group_channels;
 *   - the library's table gives each device class what it had when the
 *     table was keyed by vendor class only (NVIDIA's figures for every
 *     NVIDIA architecture, PoCL's for CPU runtimes without their own
 *     node; Intel's CPU runtime its own);
 *   - a parameter a kernel does not take, or a value outside the kernel's
 *     range, is rejected with a message naming it;
 *   - the forward kernels' small-launch rule (dcn_small_apply) applies
 *     below its threshold of work-groups per compute unit only. */
#include "tuning/tuning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      failures++;                                                              \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
    }                                                                          \
  } while (0)

static dcn_device_class device(dcn_vendor vendor, const char *arch,
                               const char *name) {
  dcn_device_class d;
  memset(&d, 0, sizeof d);
  d.vendor = (int)vendor;
  snprintf(d.arch, sizeof d.arch, "%s", arch);
  snprintf(d.name, sizeof d.name, "%s", name);
  return d;
}

/* ------------------------------------------------ the fallback chain */

#define LOCAL_ROW(kernel, half_only, gc, local)                                \
  {                                                                            \
    (kernel), (half_only), (gc), {                                             \
      .layer = {.local_size = (local) }                                        \
    }                                                                          \
  }

/* Every kernel's typed struct starts with its work-group size or its
 * vector width; the test reads `local` through the format. */
static const dcn_tuning_row device_rows[] = {
    LOCAL_ROW(DCN_KERNEL_LAYER_ELEMENTWISE, 0, 0, 1000),
};
static const dcn_tuning_row any_arch_device_rows[] = {
    LOCAL_ROW(DCN_KERNEL_LAYER_ELEMENTWISE, 0, 0, 1001),
};
static const dcn_tuning_row arch_rows[] = {
    LOCAL_ROW(DCN_KERNEL_LAYER_ELEMENTWISE, 0, 0, 200),
    LOCAL_ROW(DCN_KERNEL_LAYER_DWCONV, 0, 0, 201),
    /* 16-bit storage only, then one shape class */
    LOCAL_ROW(DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC, 1, 0, 202),
    LOCAL_ROW(DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC, 1, 32, 203),
};
static const dcn_tuning_row vendor_rows[] = {
    LOCAL_ROW(DCN_KERNEL_LAYER_ELEMENTWISE, 0, 0, 30),
    LOCAL_ROW(DCN_KERNEL_LAYER_DWCONV, 0, 0, 31),
    LOCAL_ROW(DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC, 0, 0, 32),
};
static const dcn_tuning_row global_rows[] = {
    LOCAL_ROW(DCN_KERNEL_LAYER_ELEMENTWISE, 0, 0, 4),
    LOCAL_ROW(DCN_KERNEL_LAYER_DWCONV, 0, 0, 4),
    LOCAL_ROW(DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC, 0, 0, 4),
};
#define NODE(vendor, arch, dev, rows)                                          \
  { (vendor), (arch), (dev), (rows), sizeof(rows) / sizeof(rows)[0] }
/* Listed from general to specific: the order must not matter. */
static const dcn_tuning_node fake_nodes[] = {
    NODE(DCN_VENDOR_NVIDIA, NULL, NULL, vendor_rows),
    NODE(DCN_VENDOR_NVIDIA, "sm_90", NULL, arch_rows),
    NODE(DCN_VENDOR_NVIDIA, "sm_90", "Test GPU", device_rows),
    NODE(DCN_VENDOR_NVIDIA, NULL, "Any-arch GPU", any_arch_device_rows),
};
static const dcn_tuning_table fake = {
    fake_nodes, sizeof fake_nodes / sizeof fake_nodes[0], global_rows,
    sizeof global_rows / sizeof global_rows[0]};

/* The work-group size `table` gives `kernel` (a struct of its own type
 * holding `local`) and the level it came from. */
static long local_of(const dcn_tuning_table *table, dcn_device_class d,
                     dcn_kernel_id kernel, dcnv4_dtype dtype, int gc,
                     int *level) {
  dcn_kernel_tuning c =
      dcn_tuning_builtin_for(table, &d, kernel, dtype, gc, level);
  CHECK(dcn_tuning_source(kernel, &c) == DCN_TUNING_BUILTIN,
        "source of a built-in configuration");
  char text[256];
  dcn_tuning_format(kernel, &c, text, sizeof text);
  const char *p = strstr(text, "local=");
  return p ? strtol(p + 6, NULL, 10) : -1;
}

static void expect_local(const dcn_tuning_table *table, dcn_device_class d,
                         dcn_kernel_id kernel, dcnv4_dtype dtype, int gc,
                         long want, int want_level) {
  int level = -1;
  long got = local_of(table, d, kernel, dtype, gc, &level);
  CHECK(got == want && level == want_level,
        "vendor %d arch \"%s\" device \"%s\", %s %s gc %d: local %ld at level "
        "%d, expected %ld at level %d",
        d.vendor, d.arch, d.name, dcn_kernel_name(kernel),
        dcnv4_dtype_name(dtype), gc, got, level, want, want_level);
}

static void test_fallback_chain(void) {
  const dcnv4_dtype f32 = DCNV4_FLOAT32, f16 = DCNV4_FLOAT16;
  const dcn_kernel_id ew = DCN_KERNEL_LAYER_ELEMENTWISE,
                      dw = DCN_KERNEL_LAYER_DWCONV,
                      det = DCN_KERNEL_FDA_BACKWARD_DETERMINISTIC;
  dcn_device_class d = device(DCN_VENDOR_NVIDIA, "sm_90", "Test GPU");
  /* device -> architecture -> vendor, kernel by kernel */
  expect_local(&fake, d, ew, f32, 0, 1000, 3);
  expect_local(&fake, d, dw, f32, 0, 201, 2);
  /* dtype and shape class within a node; none matching: the level above */
  expect_local(&fake, d, det, f16, 16, 202, 2);
  expect_local(&fake, d, det, f16, 32, 203, 2);
  expect_local(&fake, d, det, DCNV4_BFLOAT16, 32, 203, 2);
  expect_local(&fake, d, det, f32, 32, 32, 1);
  /* another device of the architecture: the architecture's default */
  d = device(DCN_VENDOR_NVIDIA, "sm_90", "Other GPU");
  expect_local(&fake, d, ew, f32, 0, 200, 2);
  /* the device's name under another architecture: not that node */
  d = device(DCN_VENDOR_NVIDIA, "sm_80", "Test GPU");
  expect_local(&fake, d, ew, f32, 0, 30, 1);
  expect_local(&fake, d, dw, f32, 0, 31, 1);
  /* a device node without architecture matches by name alone */
  d = device(DCN_VENDOR_NVIDIA, "sm_80", "Any-arch GPU");
  expect_local(&fake, d, ew, f32, 0, 1001, 3);
  /* architecture unknown (no attribute query): the vendor's default */
  d = device(DCN_VENDOR_NVIDIA, "", "");
  expect_local(&fake, d, ew, f32, 0, 30, 1);
  /* another vendor with the same names: the global default */
  d = device(DCN_VENDOR_AMD, "sm_90", "Test GPU");
  expect_local(&fake, d, ew, f32, 0, 4, 0);
  d = device(DCN_VENDOR_OTHER, "", "");
  expect_local(&fake, d, det, f16, 32, 4, 0);
}

/* ------------------------------------------------ the library's table */

static void expect_config(dcn_device_class d, dcn_kernel_id kernel,
                          dcnv4_dtype dtype, int gc, const char *want,
                          int want_level) {
  int level = -1;
  dcn_kernel_tuning c = dcn_tuning_builtin_for(&dcn_builtin_tuning, &d, kernel,
                                               dtype, gc, &level);
  char got[256];
  dcn_tuning_format(kernel, &c, got, sizeof got);
  CHECK(!strcmp(got, want) && level == want_level,
        "vendor %d arch \"%s\", %s %s gc %d: \"%s\" at level %d, expected "
        "\"%s\" at level %d",
        d.vendor, d.arch, dcn_kernel_name(kernel), dcnv4_dtype_name(dtype), gc,
        got, level, want, want_level);
}

static void test_builtin_table(void) {
  const dcnv4_dtype f32 = DCNV4_FLOAT32, f16 = DCNV4_FLOAT16,
                    bf16 = DCNV4_BFLOAT16;
  /* NVIDIA: measured on sm_90 (H100, H200); other architectures and
   * devices without the attribute query keep the same values. */
  const struct {
    const char *arch, *name;
    int level;
  } nv[] = {{"sm_90", "NVIDIA H100 80GB HBM3", 2},
            {"sm_90", "NVIDIA H200", 2},
            {"sm_80", "NVIDIA A100-SXM4-40GB", 1},
            {"", "NVIDIA GeForce GTX 1080", 1}};
  for (size_t i = 0; i < sizeof nv / sizeof nv[0]; i++) {
    dcn_device_class d = device(DCN_VENDOR_NVIDIA, nv[i].arch, nv[i].name);
    const int l = nv[i].level;
    expect_config(d, DCN_KERNEL_DCNV4_FORWARD, f32, 16,
                  "vec=4;local=256;stage=0;unroll=1;specialize=1;rows=4;"
                  "regs=48;groups=2;pieces=1;small=0;smalllocal=0;smallvec=0;"
                  "smallpieces=0;smallregs=0",
                  l);
    expect_config(d, DCN_KERNEL_DCNV4_FORWARD, f16, 16,
                  "vec=8;local=256;stage=0;unroll=1;specialize=1;rows=4;"
                  "regs=40;groups=4;pieces=1;small=0;smalllocal=0;smallvec=0;"
                  "smallpieces=0;smallregs=0",
                  l);
    expect_config(d, DCN_KERNEL_DCNV4_FORWARD, bf16, 32,
                  "vec=8;local=256;stage=0;unroll=1;specialize=1;rows=4;"
                  "regs=0;groups=2;pieces=2;small=8;smalllocal=0;smallvec=0;"
                  "smallpieces=1;smallregs=0",
                  l);
    expect_config(d, DCN_KERNEL_DCNV4_BACKWARD, f32, 8,
                  "vec=4;local=128;split=1;unroll=1;specialize=1;rows=1;"
                  "halo=0;regs=0",
                  l);
    expect_config(d, DCN_KERNEL_DCNV4_BACKWARD, f16, 32,
                  "vec=4;local=256;split=1;unroll=1;specialize=1;rows=8;"
                  "halo=1;regs=64",
                  l);
    expect_config(d, DCN_KERNEL_FDA_FORWARD, f32, 32,
                  "vec=4;local=128;stage=2;specialize=1;regs=40;groups=1;"
                  "small=0;smalllocal=0;smallvec=0;smallregs=0",
                  l);
    expect_config(d, DCN_KERNEL_FDA_FORWARD, f16, 32,
                  "vec=8;local=256;stage=2;specialize=1;regs=32;groups=1;"
                  "small=4;smalllocal=128;smallvec=4;smallregs=40",
                  l);
    expect_config(d, DCN_KERNEL_LINEAR, f32, 0,
                  "vec=8;local=256;unroll=1;backend=1;tilem=256;tilen=128;"
                  "tilek=8;shortm=64;ksplit=32;fill=2;kmin=64",
                  l);
    expect_config(d, DCN_KERNEL_LAYER_DWCONV, f32, 0, "local=128", l);
    expect_config(d, DCN_KERNEL_ZERO, f16, 0, "local=256;kernel=1", l);
    /* The 16-bit GEMM: sm_90's rings beyond 48 KiB (a second sm_90 node
     * overriding the first's rows), other NVIDIA GPUs those within 48 KiB. */
    expect_config(d, DCN_KERNEL_LINEAR_MMA, f16, 0,
                  l == 2 ? "local=256;tilem=128;tilen=128;tilek=64;ksplit=1;"
                           "fill=2;kmin=64;stages=3;small=0;smalllocal=0;"
                           "swizzle=0;staged=1;prefetch=0;raster=0;"
                           "smalltilem=0;smalltilen=0"
                         : "local=256;tilem=128;tilen=128;tilek=32;ksplit=1;"
                           "fill=2;kmin=64;stages=2;small=0;smalllocal=0;"
                           "swizzle=0;staged=0;prefetch=0;raster=0;"
                           "smalltilem=0;smalltilen=0",
                  l);
    expect_config(d, DCN_KERNEL_LINEAR_MMA, bf16, 64,
                  l == 2 ? "local=128;tilem=128;tilen=64;tilek=64;ksplit=1;"
                           "fill=2;kmin=64;stages=2;small=0;smalllocal=0;"
                           "swizzle=0;staged=1;prefetch=0;raster=0;"
                           "smalltilem=0;smalltilen=0"
                         : "local=128;tilem=128;tilen=64;tilek=32;ksplit=1;"
                           "fill=2;kmin=64;stages=3;small=0;smalllocal=0;"
                           "swizzle=0;staged=0;prefetch=0;raster=0;"
                           "smalltilem=0;smalltilen=0",
                  l);
  }
  /* CPUs: PoCL's values for PoCL and unknown runtimes; Intel's runtime
   * its own (measured) rows, the GEMM as PoCL's. */
  const char *cpu[] = {"pocl", ""};
  for (size_t i = 0; i < 2; i++) {
    dcn_device_class d = device(DCN_VENDOR_CPU, cpu[i], "some CPU");
    const int l = i == 0 ? 2 : 1;
    expect_config(d, DCN_KERNEL_DCNV4_FORWARD, f32, 16,
                  "vec=8;local=256;stage=3;unroll=0;specialize=0;rows=1;"
                  "regs=0;groups=0;pieces=1;small=0;smalllocal=0;smallvec=0;"
                  "smallpieces=0;smallregs=0",
                  l);
    expect_config(d, DCN_KERNEL_DCNV4_BACKWARD, f16, 16,
                  "vec=8;local=64;split=0;unroll=0;specialize=0;rows=1;"
                  "halo=0;regs=0",
                  l);
    expect_config(d, DCN_KERNEL_LINEAR, f32, 0,
                  "vec=4;local=64;unroll=1;backend=1;tilem=64;tilen=32;"
                  "tilek=16;shortm=0;ksplit=1;fill=2;kmin=64",
                  l);
    /* clEnqueueFillBuffer everywhere but NVIDIA. */
    expect_config(d, DCN_KERNEL_ZERO, f32, 0, "local=256;kernel=0", l);
  }
  const dcn_device_class intel = device(DCN_VENDOR_CPU, "intel", "some CPU");
  expect_config(intel, DCN_KERNEL_DCNV4_FORWARD, f32, 16,
                "vec=8;local=64;stage=0;unroll=0;specialize=1;rows=2;"
                "regs=0;groups=0;pieces=2;small=0;smalllocal=0;smallvec=0;"
                "smallpieces=0;smallregs=0",
                2);
  expect_config(intel, DCN_KERNEL_DCNV4_FORWARD, bf16, 32,
                "vec=8;local=256;stage=3;unroll=0;specialize=1;rows=2;"
                "regs=0;groups=4;pieces=1;small=0;smalllocal=0;smallvec=0;"
                "smallpieces=0;smallregs=0",
                2);
  expect_config(intel, DCN_KERNEL_FDA_BACKWARD, f16, 32,
                "vec=1;local=512;split=0;specialize=0;regs=0", 2);
  expect_config(intel, DCN_KERNEL_LINEAR, f32, 0,
                "vec=4;local=64;unroll=1;backend=1;tilem=64;tilen=32;"
                "tilek=16;shortm=0;ksplit=1;fill=2;kmin=64",
                2);
  /* AMD and Intel GPUs: their vendor defaults whatever the architecture. */
  expect_config(device(DCN_VENDOR_AMD, "gfx90a", "AMD Instinct MI210"),
                DCN_KERNEL_DCNV4_FORWARD, f16, 32,
                "vec=4;local=256;stage=0;unroll=1;specialize=1;rows=1;"
                "regs=0;groups=0;pieces=1;small=0;smalllocal=0;smallvec=0;"
                "smallpieces=0;smallregs=0",
                1);
  expect_config(device(DCN_VENDOR_AMD, "gfx1100", "x"), DCN_KERNEL_LINEAR, f32,
                0,
                "vec=8;local=256;unroll=1;backend=0;tilem=128;tilen=128;"
                "tilek=16;shortm=0;ksplit=1;fill=2;kmin=64",
                1);
  expect_config(device(DCN_VENDOR_INTEL_GPU, "ip_12.55.8", "Intel Arc"),
                DCN_KERNEL_FDA_BACKWARD, f32, 32,
                "vec=4;local=128;split=0;specialize=1;regs=0", 1);
  /* Devices of no known class: the global default. */
  expect_config(device(DCN_VENDOR_OTHER, "", "Some accelerator"),
                DCN_KERNEL_DCNV4_BACKWARD_DETERMINISTIC, f32, 16,
                "local=64;unroll=1;specialize=1;regs=0", 0);
  /* Every kernel has a configuration on every class (a work-group size). */
  const dcn_vendor classes[] = {DCN_VENDOR_OTHER, DCN_VENDOR_NVIDIA,
                                DCN_VENDOR_AMD, DCN_VENDOR_INTEL_GPU,
                                DCN_VENDOR_CPU};
  for (size_t v = 0; v < 5; v++)
    for (int k = 0; k < DCN_KERNEL_COUNT; k++) {
      int level;
      long local = local_of(&dcn_builtin_tuning, device(classes[v], "", ""),
                            (dcn_kernel_id)k, f32, 16, &level);
      CHECK(local >= 1, "class %d, %s: no work-group size (%ld)",
            (int)classes[v], dcn_kernel_name((dcn_kernel_id)k), local);
      CHECK(level == (classes[v] == DCN_VENDOR_OTHER ? 0 : 1),
            "class %d, %s: level %d", (int)classes[v],
            dcn_kernel_name((dcn_kernel_id)k), level);
    }
}

/* ------------------------------------------------ typed parameters */

static void expect_rejected(const char *text, const char *why_sub) {
  dcn_tuning_override o;
  char why[256] = "";
  bool ok = dcn_tuning_parse(text, &o, why, sizeof why);
  CHECK(!ok && strstr(why, why_sub), "\"%s\": %s, message \"%s\" lacks \"%s\"",
        text, ok ? "accepted" : "rejected", why, why_sub);
}

static void test_typed_parameters(void) {
  /* Names another kernel takes: named with what this one takes. */
  expect_rejected("fda_forward.split=1",
                  "fda_forward does not take \"split\" (it takes vec, local, "
                  "stage, specialize, regs, groups, small, smalllocal, "
                  "smallvec, smallregs)");
  expect_rejected("fda_backward.unroll=1", "fda_backward does not take");
  expect_rejected("dcnv4_forward.halo=1", "dcnv4_forward does not take");
  expect_rejected("dcnv4_backward.pieces=2", "dcnv4_backward does not take");
  expect_rejected("layer_dwconv.vec=4",
                  "layer_dwconv does not take \"vec\" (it takes local)");
  expect_rejected("linear.stage=0", "linear does not take");
  expect_rejected("dcnv4_backward_deterministic.vec=4", "does not take");
  expect_rejected("fda_backward_deterministic.unroll=1", "does not take");
  expect_rejected("dcnv4_forward.warp=4", "has no parameter \"warp\"");
  expect_rejected("nope.vec=4", "unknown kernel \"nope\"");
  expect_rejected("dcnv4_forward.vec", "not kernel.param=N");
  /* Ranges are the kernel's own. */
  expect_rejected("fda_forward.stage=3",
                  "fda_forward.stage=3 is out of range (0 to 2)");
  expect_rejected("dcnv4_forward.stage=5", "not accepted (0 or 3;");
  expect_rejected("dcnv4_forward.stage=2", "stages 1, 2 and 4 were removed");
  expect_rejected("linear.tilem=48", "a power of two");
  /* The few-tile parameters (split-K and the short tile). */
  expect_rejected("linear.ksplit=0",
                  "linear.ksplit=0 is out of range (1 to 64)");
  expect_rejected("linear.ksplit=65", "out of range (1 to 64)");
  expect_rejected("linear.fill=0", "linear.fill=0 is out of range (1 to 16)");
  expect_rejected("linear.fill=17", "out of range (1 to 16)");
  expect_rejected("linear.kmin=48", "linear.kmin=48 is out of range (4 to "
                                    "8192, a power of two)");
  expect_rejected("linear.kmin=2", "out of range");
  expect_rejected("linear.shortm=2", "not accepted (0, or a power of two");
  expect_rejected("linear.shortm=24", "not accepted (0, or a power of two");
  expect_rejected("linear.shortm=512", "not accepted");
  expect_rejected("dcnv4_forward.vec=3", "a power of two");
  /* The small-launch rule of the forward kernels. */
  expect_rejected("dcnv4_forward.small=1025", "out of range (0 to 1024)");
  expect_rejected("dcnv4_forward.smallvec=3", "a power of two");
  expect_rejected("dcnv4_forward.smallpieces=3", "a power of two");
  expect_rejected("dcnv4_forward.smallregs=256", "out of range (0 to 255)");
  expect_rejected("fda_forward.smalllocal=4097", "out of range (0 to 4096)");
  expect_rejected("fda_forward.smallpieces=1", "fda_forward does not take");
  expect_rejected("dcnv4_backward.small=4", "dcnv4_backward does not take");
  /* The ones the kernels take. */
  dcn_tuning_override o;
  char why[256] = "";
  const char *good =
      "dcnv4_forward.stage=3;dcnv4_forward.pieces=2;dcnv4_backward.halo=1;"
      "fda_forward.stage=2;fda_forward.groups=1;fda_backward.regs=64;"
      "layer_dwconv.local=128;linear.tilem=64;linear.shortm=32;"
      "linear.ksplit=1;linear.fill=16;linear.kmin=4;"
      "dcnv4_backward_deterministic.unroll=0;"
      "fda_backward_deterministic.specialize=0;dcnv4_forward.small=0;"
      "dcnv4_forward.smalllocal=64;dcnv4_forward.smallvec=0;"
      "dcnv4_forward.smallpieces=1;dcnv4_forward.smallregs=255;"
      "fda_forward.small=1024;fda_forward.smallvec=4;fda_forward.smallregs=0";
  CHECK(dcn_tuning_parse(good, &o, why, sizeof why), "rejected: %s", why);
  CHECK(o.set[DCN_KERNEL_FDA_FORWARD][DCN_PARAM_GROUPS] &&
            o.value[DCN_KERNEL_FDA_FORWARD][DCN_PARAM_GROUPS] == 1 &&
            !o.set[DCN_KERNEL_DCNV4_FORWARD][DCN_PARAM_GROUPS],
        "parsed values");
  /* The check the file parser uses names the parameter's id. */
  CHECK(dcn_tuning_check(DCN_KERNEL_LINEAR, "backend", 1, why, sizeof why) ==
            DCN_PARAM_BACKEND,
        "linear.backend=1: %s", why);
}

/* ------------------------------------------------ small launches */

static void test_small_launch(void) {
  dcnv4_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    CHECK(0, "out of memory");
    return;
  }
  ctx->compute_units = 10;
  const dcn_small_tuning rule = {4, 64, 4, 1, 255};
  size_t local = 256;
  int vec = 8, pieces = 2, regs = 40;
  /* 40 work-groups of 256 on 10 units: 4 per unit, not small. */
  CHECK(!dcn_small_apply(ctx, &rule, 40 * 256, &local, &vec, &pieces, &regs) &&
            local == 256 && vec == 8 && pieces == 2 && regs == 40,
        "40 work-groups taken as small");
  /* One work-item fewer: 40 work-groups still (the last one partial). */
  CHECK(
      !dcn_small_apply(ctx, &rule, 39 * 256 + 1, &local, &vec, &pieces, &regs),
      "39 and a part work-groups taken as small");
  CHECK(dcn_small_apply(ctx, &rule, 39 * 256, &local, &vec, &pieces, &regs) &&
            local == 64 && vec == 4 && pieces == 1 && regs == 255,
        "39 work-groups: local %zu vec %d pieces %d regs %d", local, vec,
        pieces, regs);
  /* Zeros keep the tuned values; no pieces for FlashDeformAttn. */
  const dcn_small_tuning keep = {4, 0, 0, 0, 0};
  local = 128;
  vec = 8;
  regs = 32;
  CHECK(dcn_small_apply(ctx, &keep, 1, &local, &vec, NULL, &regs) &&
            local == 128 && vec == 8 && regs == 32,
        "zeros changed the tuned values");
  /* below 0: never. */
  const dcn_small_tuning off = {0, 64, 4, 1, 255};
  CHECK(!dcn_small_apply(ctx, &off, 1, &local, &vec, NULL, &regs),
        "small=0 applied");
  /* A work-group larger than the device's keeps the tuned size. */
  ctx->max_work_group_size = 32;
  local = 256;
  CHECK(dcn_small_apply(ctx, &rule, 1, &local, &vec, NULL, &regs) &&
            local == 256,
        "local %zu above the device's 32", local);
  ctx->max_work_group_size = 0;
  /* No compute units known: counted as one. */
  ctx->compute_units = 0;
  local = 256;
  CHECK(!dcn_small_apply(ctx, &rule, 4 * 256, &local, &vec, NULL, &regs) &&
            dcn_small_apply(ctx, &rule, 3 * 256, &local, &vec, NULL, &regs),
        "compute_units 0");
  free(ctx);
}

int main(void) {
  test_fallback_chain();
  test_builtin_table();
  test_typed_parameters();
  test_small_launch();
  if (failures) {
    fprintf(stderr, "test_tuning_table: %d failures\n", failures);
    return 1;
  }
  printf("test_tuning_table: all checks passed\n");
  return 0;
}
