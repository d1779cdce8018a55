#include "run_tool_util.h"

#include "test_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

int run_tool(const char *tool, const char *args, char *err, size_t err_size,
             int *stderr_lines) {
  char *tmp = make_temp_dir("stderr");
  char cmd[16384];
  snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s/err'", tool, args, tmp);
  int rc = system(cmd);
  char path[4096];
  snprintf(path, sizeof path, "%s/err", tmp);
  FILE *f = fopen(path, "r");
  int lines = 0;
  char line[4096];
  if (err && err_size)
    err[0] = '\0';
  while (f && fgets(line, sizeof line, f)) {
    if (lines == 0 && err)
      snprintf(err, err_size, "%s", line);
    lines++;
  }
  if (f)
    fclose(f);
  remove_tree(tmp);
  free(tmp);
  if (stderr_lines)
    *stderr_lines = lines;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  if (d)
    closedir(d);
  return n;
}

void copy_case(const char *src, const char *dst) {
  mkdir(dst, 0755);
  DIR *d = opendir(src);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", src, e->d_name);
    snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
    struct stat st;
    if (stat(from, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
        copy_case(from, to);
      continue;
    }
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
      fwrite(buf, 1, n, out);
    if (in)
      fclose(in);
    if (out)
      fclose(out);
  }
  if (d)
    closedir(d);
}

void write_bytes(const char *dir, const char *name, const void *data,
                 size_t size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(data, 1, size, f);
    fclose(f);
  }
}

void write_text(const char *dir, const char *name, const char *text) {
  write_bytes(dir, name, text, strlen(text));
}
