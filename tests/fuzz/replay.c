/* Replays corpus files through a fuzz target without libFuzzer: every
 * regular file of each folder (or each file) given. Built with the normal
 * compiler as part of the test suite, so that seeds and regression inputs
 * are checked in every build.
 *
 * usage: fuzz_replay_<target> DIR|FILE... */
#include "fuzz.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return 1;
  }
  size_t cap = 4096, n = 0;
  unsigned char *data = malloc(cap);
  size_t got;
  while (data && (got = fread(data + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      unsigned char *grown = realloc(data, cap * 2);
      if (!grown) {
        free(data);
        data = NULL;
        break;
      }
      data = grown;
      cap *= 2;
    }
  }
  fclose(f);
  if (!data) {
    fprintf(stderr, "out of memory reading %s\n", path);
    return 1;
  }
  /* An exact-size copy, so that an overread is caught by sanitizers. */
  unsigned char *exact = malloc(n ? n : 1);
  memcpy(exact, data, n);
  free(data);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

int main(int argc, char **argv) {
  int failures = 0, files = 0;
  for (int a = 1; a < argc; a++) {
    struct stat st;
    if (stat(argv[a], &st) != 0) {
      fprintf(stderr, "cannot stat %s\n", argv[a]);
      failures++;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      failures += replay_file(argv[a]);
      files++;
      continue;
    }
    DIR *d = opendir(argv[a]);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.')
        continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[a], e->d_name);
      if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        failures += replay_file(path);
        files++;
      }
    }
    if (d)
      closedir(d);
  }
  printf("%d corpus files replayed, %d unreadable\n", files, failures);
  return failures || files == 0 ? 1 : 0;
}
