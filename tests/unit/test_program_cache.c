/* The program-binary cache: a second context loads from disk instead of
 * compiling; corrupt, truncated, foreign or garbage cache files are detected,
 * rebuilt and rewritten; an empty cache folder setting disables it; and
 * DCNV4_KERNEL_DIR replaces the embedded sources.
 *
 * usage: test_program_cache KERNEL_SOURCE_DIR */
#include "dcnv4_problem.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static dcnv4_context *open_with_cache(const char *dir) {
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.cache_dir = dir;
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(&o, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "cannot create a context\n");
    exit(1);
  }
  return ctx;
}

/* One forward + backward of a fixed small problem; returns its errors. */
static dcnv4_errors run_once(dcnv4_context *ctx) {
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = 1;
  p.height_in = p.width_in = 6;
  p.group = 2;
  p.group_channels = 8;
  rng r = {7};
  dcnv4_problem pr;
  problem_init(&pr, &p, &r, 0.0);
  dcnv4_errors e = {1, 1, 1};
  CHECK(problem_run(ctx, &pr, 1, &e) == 0, "run failed: %s",
        dcnv4_context_last_error(ctx));
  CHECK(e.output <= TOL_FP32 && e.grad_input <= TOL_FP32 &&
            e.grad_offset_mask <= TOL_FP32,
        "wrong results (%.3g %.3g %.3g)", e.output, e.grad_input,
        e.grad_offset_mask);
  problem_free(&pr);
  return e;
}

static dcnv4_cache_stats stats_after_run(const char *dir) {
  dcnv4_context *ctx = open_with_cache(dir);
  run_once(ctx);
  dcnv4_cache_stats s;
  dcnv4_context_cache_stats(ctx, &s);
  dcnv4_context_destroy(ctx);
  return s;
}

/* Paths of the .clbin files in dir (at most max). */
static int list_entries(const char *dir, char paths[][4096], int max) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) && n < max) {
    size_t len = strlen(e->d_name);
    if (len > 6 && !strcmp(e->d_name + len - 6, ".clbin"))
      snprintf(paths[n++], 4096, "%s/%s", dir, e->d_name);
  }
  if (d)
    closedir(d);
  return n;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

typedef void (*damage_fn)(const char *path);

static void flip_middle_byte(const char *path) {
  FILE *f = fopen(path, "r+b");
  long n = file_size(path);
  fseek(f, n / 2, SEEK_SET);
  int c = fgetc(f);
  fseek(f, n / 2, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

static void truncate_half(const char *path) {
  long n = file_size(path);
  CHECK(truncate(path, n / 2) == 0, "truncate failed");
}

static void garbage(const char *path) {
  FILE *f = fopen(path, "wb");
  fputs("this is not a program binary", f);
  fclose(f);
}

static void empty(const char *path) {
  FILE *f = fopen(path, "wb");
  fclose(f);
}

/* Keeps the header and checksum valid but claims another key: a stale
 * entry from another driver or a hash collision. */
static void other_key(const char *path) {
  FILE *f = fopen(path, "r+b");
  /* The key text starts after the 32-byte header; its first word is the
   * library name, which is enough to change. */
  fseek(f, 32, SEEK_SET);
  fputc('X', f);
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_program_cache KERNEL_SOURCE_DIR\n");
    return 2;
  }
  char *dir = make_temp_dir("cache");

  /* Cold: everything compiled and written. */
  dcnv4_cache_stats s = stats_after_run(dir);
  CHECK(s.source_builds >= 2 && s.disk_hits == 0 && s.disk_writes >= 2,
        "cold run: %llu builds, %llu hits, %llu writes",
        (unsigned long long)s.source_builds, (unsigned long long)s.disk_hits,
        (unsigned long long)s.disk_writes);
  char paths[16][4096];
  int n = list_entries(dir, paths, 16);
  CHECK(n == (int)s.disk_writes, "%d cache files for %llu writes", n,
        (unsigned long long)s.disk_writes);

  /* Warm: everything from disk, nothing compiled. */
  s = stats_after_run(dir);
  CHECK(s.source_builds == 0 && s.disk_hits >= 2 && s.disk_rejects == 0,
        "warm run: %llu builds, %llu hits, %llu rejects",
        (unsigned long long)s.source_builds, (unsigned long long)s.disk_hits,
        (unsigned long long)s.disk_rejects);

  /* Each kind of damage to every entry: detected, rebuilt, rewritten. */
  const struct {
    const char *what;
    damage_fn damage;
  } damages[] = {{"flipped byte", flip_middle_byte},
                 {"truncated", truncate_half},
                 {"garbage", garbage},
                 {"empty", empty},
                 {"other key", other_key}};
  for (size_t d = 0; d < sizeof damages / sizeof damages[0]; d++) {
    for (int i = 0; i < n; i++)
      damages[d].damage(paths[i]);
    s = stats_after_run(dir);
    CHECK(s.disk_rejects == (uint64_t)n && s.source_builds == (uint64_t)n &&
              s.disk_hits == 0,
          "%s: %llu rejects, %llu builds, %llu hits for %d entries",
          damages[d].what, (unsigned long long)s.disk_rejects,
          (unsigned long long)s.source_builds, (unsigned long long)s.disk_hits,
          n);
    s = stats_after_run(dir);
    CHECK(s.disk_hits == (uint64_t)n && s.source_builds == 0,
          "%s: the rebuilt entries were not rewritten (%llu hits)",
          damages[d].what, (unsigned long long)s.disk_hits);
  }
  /* No temporary files are left behind. */
  int all = 0;
  DIR *dd = opendir(dir);
  struct dirent *e;
  while (dd && (e = readdir(dd)))
    all += e->d_name[0] != '.';
  if (dd)
    closedir(dd);
  CHECK(all == n, "%d files in the cache folder, expected %d", all, n);
  remove_tree(dir);

  /* Disabled with "". */
  s = stats_after_run("");
  CHECK(s.disk_writes == 0 && s.disk_hits == 0 && s.source_builds >= 2,
        "disabled cache still used (%llu writes)",
        (unsigned long long)s.disk_writes);

  /* DCNV4_KERNEL_DIR: the source folder works, a folder without the files
   * fails with an I/O status and a message naming the file. */
  setenv("DCNV4_KERNEL_DIR", argv[1], 1);
  s = stats_after_run("");
  CHECK(s.source_builds >= 2, "kernel folder not used");
  char *emptydir = make_temp_dir("kernels");
  setenv("DCNV4_KERNEL_DIR", emptydir, 1);
  dcnv4_context *ctx = open_with_cache("");
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = 1;
  p.height_in = p.width_in = 4;
  p.group_channels = 4;
  cl_mem in = host_buffer(ctx, 4096, NULL), om = host_buffer(ctx, 8192, NULL),
         out = host_buffer(ctx, 4096, NULL);
  dcnv4_status st = dcnv4_forward(ctx, &p, in, om, out, 0, NULL, NULL);
  CHECK(st == DCNV4_ERROR_IO, "missing kernel files: %s",
        dcnv4_status_string(st));
  CHECK(strstr(dcnv4_context_last_error(ctx), "common.clh") != NULL,
        "message does not name the file: %s", dcnv4_context_last_error(ctx));
  /* A kernel file that does not compile: the build log comes back. */
  char path[4096];
  snprintf(path, sizeof path, "%s/ops", emptydir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/ops/common", emptydir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/ops/dcnv4", emptydir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/ops/common/common.clh", emptydir);
  FILE *f = fopen(path, "w");
  fputs("this is not OpenCL C;\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/ops/dcnv4/dcnv4_forward.cl", emptydir);
  f = fopen(path, "w");
  fputs("__kernel void dcnv4_forward(void) {}\n", f);
  fclose(f);
  st = dcnv4_forward(ctx, &p, in, om, out, 0, NULL, NULL);
  CHECK(st == DCNV4_ERROR_BUILD_FAILED, "broken kernel: %s",
        dcnv4_status_string(st));
  CHECK(strstr(dcnv4_context_last_error(ctx), "build log") != NULL &&
            strlen(dcnv4_context_last_error(ctx)) > 80,
        "no build log in: %s", dcnv4_context_last_error(ctx));
  host_release(in);
  host_release(om);
  host_release(out);
  dcnv4_context_destroy(ctx);
  unsetenv("DCNV4_KERNEL_DIR");
  remove_tree(emptydir);
  free(emptydir);
  free(dir);
  return test_finish("test_program_cache");
}
