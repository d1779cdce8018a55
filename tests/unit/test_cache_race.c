/* The program-binary disk cache with several processes writing the same
 * entries at once: PROCS processes, started together on one empty
 * DCNV4_CACHE_DIR, each build the same programs (DCNv4 and FlashDeformAttn
 * forward and backward) and store their binaries (temporary file + rename).
 * Each must get correct results; afterwards the folder holds no temporary
 * file, and a new process-local context loads every program from it (no
 * source build, no rejected file) and gets correct results again.
 *
 * The processes are forked before this process touches OpenCL.
 *
 * usage: test_cache_race [--procs N] */
#include "dcnv4_problem.h"
#include "fda_problem.h"
#include "test_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_all(const char *dir, dcnv4_cache_stats *stats) {
  char why[512] = "";
  dcnv4_context_options o;
  dcnv4_context_options_init(&o);
  o.cache_dir = dir;
  o.error_buffer = why;
  o.error_buffer_size = sizeof why;
  dcnv4_context *ctx = NULL;
  if (dcnv4_context_create(&o, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "context: %s\n", why);
    return 1;
  }
  rng r = {0xcac4e};
  int bad = 0;
  dcnv4_params p;
  dcnv4_params_init(&p);
  p.batch = 1;
  p.height_in = 6;
  p.width_in = 5;
  p.group = 2;
  p.group_channels = 8;
  dcnv4_problem pr;
  problem_init(&pr, &p, &r, 0.0);
  dcnv4_errors e;
  if (problem_run(ctx, &pr, 1, &e) != 0 || !(e.output <= TOL_FP32) ||
      !(e.grad_input <= TOL_FP32) || !(e.grad_offset_mask <= TOL_FP32)) {
    fprintf(stderr, "[%ld] dcnv4 wrong: %g %g %g\n", (long)getpid(), e.output,
            e.grad_input, e.grad_offset_mask);
    bad = 1;
  }
  problem_free(&pr);
  dcnv4_fda_params f;
  dcnv4_fda_params_init(&f);
  f.batch = 1;
  f.queries = 7;
  f.group = 2;
  f.group_channels = 4;
  f.levels = 1;
  f.points = 3;
  f.spatial_shapes[0][0] = 4;
  f.spatial_shapes[0][1] = 4;
  f.value_len = 16;
  fda_problem fpr;
  fda_problem_init(&fpr, &f, &r, 0.0);
  fda_errors fe;
  if (fda_problem_run(ctx, &fpr, 1, &fe) != 0 || !(fe.output <= TOL_FP32) ||
      !(fe.grad_value <= TOL_FP32) || !(fe.grad_sampling <= TOL_FP32)) {
    fprintf(stderr, "[%ld] fda wrong: %g %g %g\n", (long)getpid(), fe.output,
            fe.grad_value, fe.grad_sampling);
    bad = 1;
  }
  fda_problem_free(&fpr);
  dcnv4_context_cache_stats(ctx, stats);
  dcnv4_context_destroy(ctx);
  return bad;
}

/* Counts the folder's cache entries and temporary files. */
static void count_files(const char *dir, int *entries, int *temps) {
  *entries = *temps = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n > 6 && strcmp(e->d_name + n - 6, ".clbin") == 0)
      ++*entries;
    else if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0)
      ++*temps;
  }
  if (d)
    closedir(d);
}

int main(int argc, char **argv) {
  int procs = 4;
  if (argc == 3 && strcmp(argv[1], "--procs") == 0)
    procs = atoi(argv[2]);
  if (procs < 2 || procs > 32) {
    fprintf(stderr, "usage: test_cache_race [--procs N]\n");
    return 2;
  }
  char *tmp = make_temp_dir("cacherace");
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/cache", tmp);
  /* Children wait on the pipe until the parent closes it: a common start. */
  int gate[2];
  if (pipe(gate) != 0) {
    perror("pipe");
    return 1;
  }
  pid_t *pids = calloc((size_t)procs, sizeof *pids);
  for (int i = 0; i < procs; i++) {
    pids[i] = fork();
    if (pids[i] < 0) {
      perror("fork");
      return 1;
    }
    if (pids[i] == 0) {
      close(gate[1]);
      char c;
      while (read(gate[0], &c, 1) > 0) {
      }
      dcnv4_cache_stats s;
      _exit(run_all(dir, &s));
    }
  }
  close(gate[0]);
  close(gate[1]);
  for (int i = 0; i < procs; i++) {
    int status = 0;
    waitpid(pids[i], &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "process %d failed (status 0x%x)", i, status);
  }
  free(pids);
  int entries, temps;
  count_files(dir, &entries, &temps);
  printf("%d processes wrote %d cache entries, %d temporary files left\n",
         procs, entries, temps);
  CHECK(entries > 0, "no cache entry written");
  CHECK(temps == 0, "%d temporary files left", temps);

  dcnv4_cache_stats s;
  CHECK(run_all(dir, &s) == 0, "run on the shared cache failed");
  printf("afterwards: %llu loaded, %llu rejected, %llu built from source\n",
         (unsigned long long)s.disk_hits, (unsigned long long)s.disk_rejects,
         (unsigned long long)s.source_builds);
  CHECK(s.disk_hits > 0 && s.source_builds == 0 && s.disk_rejects == 0,
        "the cache entries did not all load: %llu hits, %llu rejects, %llu "
        "builds",
        (unsigned long long)s.disk_hits, (unsigned long long)s.disk_rejects,
        (unsigned long long)s.source_builds);
  remove_tree(tmp);
  free(tmp);
  return test_finish("test_cache_race");
}
