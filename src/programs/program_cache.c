/* On-disk cache of program binaries.
 *
 * One file per (device, driver, library version, source, options) key, named
 * by the key's hash. The file repeats the whole key and carries a checksum,
 * so a corrupt, truncated, stale or colliding file is detected and rebuilt,
 * never handed to the driver blindly. Writes go to a temporary file that is
 * renamed into place, so concurrent writers of one entry are safe. */
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAGIC "DCNV4BIN"
#define CACHE_FORMAT 1u
#define CACHE_MAX_BYTES ((uint64_t)1 << 30)

typedef struct cache_header {
  char magic[8];
  uint32_t format;
  uint32_t key_size;
  uint64_t binary_size;
  uint64_t checksum; /* hash of key then binary */
} cache_header;

/* mkdir -p; true if the folder exists afterwards. */
static bool make_dirs(const char *path) {
  char *copy = dcn_strdup(path);
  if (!copy)
    return false;
  for (char *p = copy + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
      dcn_free(copy);
      return false;
    }
    *p = '/';
  }
  bool ok = mkdir(copy, 0755) == 0 || errno == EEXIST;
  dcn_free(copy);
  struct stat st;
  return ok && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *dcn_resolve_cache_dir(const dcnv4_context_options *options) {
  char *dir = NULL;
  const char *env = getenv("DCNV4_CACHE_DIR");
  if (options && options->cache_dir)
    dir = *options->cache_dir ? dcn_strdup(options->cache_dir) : NULL;
  else if (env)
    dir = *env ? dcn_strdup(env) : NULL;
  else {
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg)
      dir = dcn_asprintf("%s/dcnv4", xdg);
    else if (home && *home)
      dir = dcn_asprintf("%s/.cache/dcnv4", home);
  }
  if (dir && !make_dirs(dir)) {
    dcn_log(NULL, DCN_LOG_INFO, "cache folder %s unusable; disk cache off",
            dir);
    dcn_free(dir);
    dir = NULL;
  }
  return dir;
}

char *dcn_disk_cache_path(const dcnv4_context *ctx, const char *key) {
  if (!ctx->cache_dir)
    return NULL;
  uint64_t h = dcn_hash(key, strlen(key), DCN_HASH_SEED);
  return dcn_asprintf("%s/%016llx.clbin", ctx->cache_dir,
                      (unsigned long long)h);
}

static uint64_t entry_checksum(const char *key, size_t key_size,
                               const unsigned char *binary, size_t size) {
  return dcn_hash(binary, size, dcn_hash(key, key_size, DCN_HASH_SEED));
}

dcn_cache_result dcn_disk_cache_load(const dcnv4_context *ctx, const char *key,
                                     dcn_binary *out) {
  char *path = dcn_disk_cache_path(ctx, key);
  if (!path)
    return DCN_CACHE_MISS;
  FILE *f = fopen(path, "rb");
  bool ok = false;
  char *stored_key = NULL;
  unsigned char *binary = NULL;
  const char *problem = NULL;
  cache_header h;
  size_t key_size = strlen(key);
  if (!f)
    goto done; /* a miss, not a problem */
  if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CACHE_MAGIC, 8) != 0 ||
      h.format != CACHE_FORMAT) {
    problem = "bad header";
    goto done;
  }
  if (h.key_size != key_size || h.binary_size == 0 ||
      h.binary_size > CACHE_MAX_BYTES) {
    problem = "key or size mismatch";
    goto done;
  }
  stored_key = dcn_malloc(key_size);
  binary = dcn_malloc((size_t)h.binary_size);
  if (!stored_key || !binary) {
    problem = "out of memory";
    goto done;
  }
  if (fread(stored_key, 1, key_size, f) != key_size ||
      memcmp(stored_key, key, key_size) != 0) {
    problem = "different key";
    goto done;
  }
  if (fread(binary, 1, (size_t)h.binary_size, f) != h.binary_size ||
      fgetc(f) != EOF) {
    problem = "truncated or oversized";
    goto done;
  }
  if (entry_checksum(key, key_size, binary, (size_t)h.binary_size) !=
      h.checksum) {
    problem = "checksum mismatch";
    goto done;
  }
  out->data = binary;
  out->size = (size_t)h.binary_size;
  binary = NULL;
  ok = true;
done:
  if (problem)
    dcn_log(ctx, DCN_LOG_INFO, "cache file %s rejected (%s); rebuilding", path,
            problem);
  if (f)
    fclose(f);
  dcn_free(stored_key);
  dcn_free(binary);
  dcn_free(path);
  return ok ? DCN_CACHE_HIT : problem ? DCN_CACHE_REJECTED : DCN_CACHE_MISS;
}

void dcn_disk_cache_store(const dcnv4_context *ctx, const char *key,
                          const unsigned char *data, size_t size) {
  char *path = dcn_disk_cache_path(ctx, key);
  if (!path)
    return;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  /* Unique per process, thread and moment. */
  unsigned long long tag =
      dcn_hash(&now, sizeof now, dcn_hash(&path, sizeof path, DCN_HASH_SEED));
  char *tmp = dcn_asprintf("%s.%ld.%llx.tmp", path, (long)getpid(), tag);
  FILE *f = tmp ? fopen(tmp, "wb") : NULL;
  bool ok = false;
  if (f) {
    cache_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.format = CACHE_FORMAT;
    h.key_size = (uint32_t)strlen(key);
    h.binary_size = size;
    h.checksum = entry_checksum(key, h.key_size, data, size);
    ok = fwrite(&h, sizeof h, 1, f) == 1 &&
         fwrite(key, 1, h.key_size, f) == h.key_size &&
         fwrite(data, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok)
      remove(tmp);
  }
  dcn_log(ctx, ok ? DCN_LOG_DEBUG : DCN_LOG_INFO, "cache store %s: %s", path,
          ok ? "ok" : "failed");
  dcn_free(tmp);
  dcn_free(path);
}
