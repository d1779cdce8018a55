/* The tuning file written by dcnv4-tune: found, validated and applied at
 * context creation, and the public tuning calls.
 *
 * Location: $DCNV4_TUNING_FILE if set ("" disables it), else
 * <cache folder>/tuning/<device key>.json, the device key being the device
 * name made file-safe plus a hash of vendor, name and driver version, so a
 * driver update starts from the defaults again.
 *
 * Format (JSON, strict: unknown keys, wrong types, out-of-range values and
 * duplicate entries make the whole file invalid; an invalid file is ignored
 * with a DCNV4_LOG message, never a failed context creation):
 *
 *   {"format": "dcnv4-tuning", "version": 1,
 *    "device": {"name": "...", "vendor": "...", "driver": "..."},
 *    "generated_by": "...", "created": "...",              (optional)
 *    "kernels": [{"kernel": "dcnv4_forward", "dtype": "float32",
 *                 "group_channels": 16,
 *                 "params": {"vec": 4, "local": 128, ...},
 *                 "ms": 0.1, "default_ms": 0.2, "shapes": [...]}],
 *    "gemm": [{"kernel": "Xgemm", "precision": "float32",
 *              "params": {"MWG": 128, ...}, "ms": ..., "default_ms": ...,
 *              "shapes": [...]}]}
 *
 * "dtype" ("any" or absent: every dtype) and "group_channels" (0 or absent:
 * every shape) select where an entry applies; the most specific matching
 * entry wins per parameter. The device's name and vendor must match the
 * context's; a different driver version is reported and the file used. */
#include "tuning.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TUNING_FORMAT "dcnv4-tuning"
#define TUNING_VERSION 1
#define MAX_FILE_BYTES ((long)4 << 20)
#define MAX_ENTRIES 4096

char *dcn_tuning_device_key(const dcnv4_context *ctx) {
  char slug[49];
  size_t n = 0;
  bool dash = false;
  for (const char *p = ctx->info.device_name; *p && n < sizeof slug - 1; p++) {
    unsigned char c = (unsigned char)*p;
    if (isalnum(c)) {
      if (dash && n > 0)
        slug[n++] = '-';
      dash = false;
      if (n < sizeof slug - 1)
        slug[n++] = (char)tolower(c);
    } else
      dash = true;
  }
  slug[n] = '\0';
  char *id = dcn_asprintf("%s\n%s\n%s", ctx->info.vendor, ctx->info.device_name,
                          ctx->info.driver_version);
  if (!id)
    return NULL;
  uint64_t h = dcn_hash(id, strlen(id), DCN_HASH_SEED);
  dcn_free(id);
  return dcn_asprintf("%s-%016llx", n ? slug : "device", (unsigned long long)h);
}

/* The path to read: NULL when there is none to look for. */
static char *tuning_file_path(const dcnv4_context *ctx) {
  const char *env = getenv("DCNV4_TUNING_FILE");
  if (env)
    return *env ? dcn_strdup(env) : NULL;
  if (!ctx->cache_dir)
    return NULL;
  char *key = dcn_tuning_device_key(ctx);
  char *path =
      key ? dcn_asprintf("%s/tuning/%s.json", ctx->cache_dir, key) : NULL;
  dcn_free(key);
  return path;
}

/* Whole file as a string; NULL with `why` on failure (errno-free: a missing
 * file sets *missing). */
static char *read_text(const char *path, bool *missing, char *why,
                       size_t why_size) {
  *missing = false;
  FILE *f = fopen(path, "rb");
  if (!f) {
    *missing = true;
    return NULL;
  }
  char *text = NULL;
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0)
    size = ftell(f);
  if (size < 0 || size > MAX_FILE_BYTES || fseek(f, 0, SEEK_SET) != 0)
    snprintf(why, why_size, "unreadable or larger than %ld bytes",
             MAX_FILE_BYTES);
  else if (!(text = dcn_malloc((size_t)size + 1)))
    snprintf(why, why_size, "out of host memory");
  else if (fread(text, 1, (size_t)size, f) != (size_t)size) {
    snprintf(why, why_size, "read error");
    dcn_free(text);
    text = NULL;
  } else {
    text[size] = '\0';
    if (strlen(text) != (size_t)size) {
      snprintf(why, why_size, "contains a NUL byte");
      dcn_free(text);
      text = NULL;
    }
  }
  fclose(f);
  return text;
}

/* ------------------------------------------------------------ validation */

typedef struct parse_state {
  char *why;
  size_t why_size;
  dcn_tuning_entry *entries;
  size_t entry_count;
  dcn_gemm_entry *gemm;
  size_t gemm_count;
} parse_state;

static bool bad(parse_state *s, const char *fmt, ...) DCN_PRINTF(2, 3);
static bool bad(parse_state *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->why, s->why_size, fmt, ap);
  va_end(ap);
  return false;
}

/* Whether every key of `obj` is in the NULL-terminated `allowed`. */
static bool keys_allowed(parse_state *s, const cJSON *obj, const char *where,
                         const char *const *allowed) {
  for (const cJSON *c = obj->child; c; c = c->next) {
    bool ok = false;
    for (const char *const *a = allowed; *a && !ok; a++)
      ok = !strcmp(c->string, *a);
    if (!ok)
      return bad(s, "unknown key \"%s\" in %s", c->string, where);
    for (const cJSON *d = c->next; d; d = d->next)
      if (!strcmp(c->string, d->string))
        return bad(s, "duplicate key \"%s\" in %s", c->string, where);
  }
  return true;
}

/* An integral number in [lo, hi]. */
static bool json_int(const cJSON *v, long lo, long hi, long *out) {
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
      v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)lo ||
      v->valuedouble > (double)hi)
    return false;
  *out = (long)v->valuedouble;
  return true;
}

/* The informational keys of entries: numbers and shape lists. */
static bool check_info(parse_state *s, const cJSON *entry, const char *where) {
  const char *const numbers[] = {"ms", "default_ms"};
  for (size_t i = 0; i < 2; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, numbers[i]);
    if (v &&
        (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0))
      return bad(s, "\"%s\" of %s is not a non-negative number", numbers[i],
                 where);
  }
  const cJSON *shapes = cJSON_GetObjectItemCaseSensitive(entry, "shapes");
  if (shapes) {
    if (!cJSON_IsArray(shapes))
      return bad(s, "\"shapes\" of %s is not an array", where);
    for (const cJSON *c = shapes->child; c; c = c->next)
      if (!cJSON_IsString(c))
        return bad(s, "\"shapes\" of %s holds a non-string", where);
  }
  return true;
}

static int dtype_from_name(const char *name) {
  const dcnv4_dtype all[] = {DCNV4_FLOAT32, DCNV4_FLOAT16, DCNV4_BFLOAT16};
  for (size_t i = 0; i < 3; i++)
    if (!strcmp(name, dcnv4_dtype_name(all[i])))
      return (int)all[i];
  return -2;
}

static bool parse_kernel_entry(parse_state *s, const cJSON *e, size_t index) {
  char where[48];
  snprintf(where, sizeof where, "kernels[%zu]", index);
  static const char *const allowed[] = {"kernel", "dtype", "group_channels",
                                        "params", "ms",    "default_ms",
                                        "shapes", NULL};
  if (!cJSON_IsObject(e))
    return bad(s, "%s is not an object", where);
  if (!keys_allowed(s, e, where, allowed) || !check_info(s, e, where))
    return false;
  dcn_tuning_entry out;
  memset(&out, 0, sizeof out);
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "kernel");
  int id = cJSON_IsString(k) ? dcn_kernel_from_name(k->valuestring) : -1;
  if (id < 0)
    return bad(s, "%s: missing or unknown \"kernel\"", where);
  out.kernel = (dcn_kernel_id)id;
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  out.dtype = -1;
  if (d) {
    if (!cJSON_IsString(d) ||
        (strcmp(d->valuestring, "any") &&
         (out.dtype = dtype_from_name(d->valuestring)) < 0))
      return bad(s, "%s: \"dtype\" must be float32, float16, bfloat16 or any",
                 where);
  }
  const cJSON *g = cJSON_GetObjectItemCaseSensitive(e, "group_channels");
  long gc = 0;
  if (g && !json_int(g, 0, INT32_MAX, &gc))
    return bad(s, "%s: \"group_channels\" must be an integer >= 0", where);
  out.group_channels = (int)gc;
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "params");
  if (!cJSON_IsObject(p) || !p->child)
    return bad(s, "%s: \"params\" must be a non-empty object", where);
  for (const cJSON *c = p->child; c; c = c->next) {
    int which = dcn_tuning_param_from_name(c->string);
    long v = 0;
    if (which < 0)
      return bad(s, "%s: unknown parameter \"%s\"", where, c->string);
    if (out.set[which])
      return bad(s, "%s: parameter \"%s\" given twice", where, c->string);
    if (!json_int(c, -1000000000L, 1000000000L, &v))
      return bad(s, "%s: value of \"%s\" out of range", where, c->string);
    const char *value_error =
        dcn_tuning_value_error(out.kernel, (dcn_tuning_param)which, v);
    if (value_error)
      return bad(s, "%s: value of \"%s\" %s", where, c->string, value_error);
    out.value[which] = v;
    out.set[which] = true;
  }
  for (size_t i = 0; i < s->entry_count; i++)
    if (s->entries[i].kernel == out.kernel &&
        s->entries[i].dtype == out.dtype &&
        s->entries[i].group_channels == out.group_channels)
      return bad(s,
                 "%s repeats an earlier entry's kernel, dtype and "
                 "group_channels",
                 where);
  s->entries[s->entry_count++] = out;
  return true;
}

/* CLBlast kernels whose parameters the file may set (gemm.c knows their
 * constraints and a conservative replacement for each). */
static const char *const gemm_kernels[] = {"Xgemm", "XgemmDirect"};

static bool parse_gemm_entry(parse_state *s, const cJSON *e, size_t index) {
  char where[48];
  snprintf(where, sizeof where, "gemm[%zu]", index);
  static const char *const allowed[] = {
      "kernel", "precision", "params", "ms", "default_ms", "shapes", NULL};
  if (!cJSON_IsObject(e))
    return bad(s, "%s is not an object", where);
  if (!keys_allowed(s, e, where, allowed) || !check_info(s, e, where))
    return false;
  dcn_gemm_entry out;
  memset(&out, 0, sizeof out);
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "kernel");
  bool known = false;
  for (size_t i = 0;
       cJSON_IsString(k) && i < sizeof gemm_kernels / sizeof gemm_kernels[0];
       i++)
    known = known || !strcmp(k->valuestring, gemm_kernels[i]);
  if (!known)
    return bad(s, "%s: missing or unknown CLBlast \"kernel\"", where);
  snprintf(out.kernel, sizeof out.kernel, "%s", k->valuestring);
  const cJSON *prec = cJSON_GetObjectItemCaseSensitive(e, "precision");
  if (prec && (!cJSON_IsString(prec) || strcmp(prec->valuestring, "float32")))
    return bad(s, "%s: \"precision\" must be float32 (every GEMM is SGEMM)",
               where);
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "params");
  if (!cJSON_IsObject(p) || !p->child)
    return bad(s, "%s: \"params\" must be a non-empty object", where);
  for (const cJSON *c = p->child; c; c = c->next) {
    size_t len = strlen(c->string);
    bool name_ok = len > 0 && len < sizeof out.names[0];
    for (size_t i = 0; name_ok && i < len; i++)
      name_ok = isupper((unsigned char)c->string[i]) ||
                isdigit((unsigned char)c->string[i]) || c->string[i] == '_';
    long v = 0;
    if (!name_ok)
      return bad(s, "%s: bad parameter name \"%s\"", where, c->string);
    if (out.count == DCN_GEMM_MAX_PARAMS)
      return bad(s, "%s: more than %d parameters", where, DCN_GEMM_MAX_PARAMS);
    if (!json_int(c, 0, 1 << 20, &v))
      return bad(s, "%s: value of \"%s\" out of range", where, c->string);
    snprintf(out.names[out.count], sizeof out.names[0], "%s", c->string);
    out.values[out.count++] = (size_t)v;
  }
  for (size_t i = 0; i < s->gemm_count; i++)
    if (!strcmp(s->gemm[i].kernel, out.kernel))
      return bad(s, "%s repeats CLBlast kernel %s", where, out.kernel);
  s->gemm[s->gemm_count++] = out;
  return true;
}

static bool parse_root(dcnv4_context *ctx, parse_state *s, const cJSON *root) {
  static const char *const allowed[] = {"format",       "version", "device",
                                        "generated_by", "created", "kernels",
                                        "gemm",         NULL};
  if (!cJSON_IsObject(root))
    return bad(s, "not a JSON object");
  if (!keys_allowed(s, root, "the file", allowed))
    return false;
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "format");
  long version = 0;
  if (!cJSON_IsString(f) || strcmp(f->valuestring, TUNING_FORMAT))
    return bad(s, "\"format\" is not \"%s\"", TUNING_FORMAT);
  if (!json_int(cJSON_GetObjectItemCaseSensitive(root, "version"), 0, 1000,
                &version) ||
      version != TUNING_VERSION)
    return bad(s, "\"version\" is not %d", TUNING_VERSION);
  const char *info_keys[] = {"generated_by", "created"};
  for (size_t i = 0; i < 2; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, info_keys[i]);
    if (v && !cJSON_IsString(v))
      return bad(s, "\"%s\" is not a string", info_keys[i]);
  }
  const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "device");
  static const char *const dev_keys[] = {"name", "vendor", "driver", NULL};
  if (!cJSON_IsObject(dev) || !keys_allowed(s, dev, "device", dev_keys))
    return s->why[0] ? false : bad(s, "\"device\" is not an object");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(dev, "name");
  const cJSON *vendor = cJSON_GetObjectItemCaseSensitive(dev, "vendor");
  const cJSON *driver = cJSON_GetObjectItemCaseSensitive(dev, "driver");
  if (!cJSON_IsString(name) || !cJSON_IsString(vendor) ||
      !cJSON_IsString(driver))
    return bad(s, "\"device\" needs strings name, vendor and driver");
  if (strcmp(name->valuestring, ctx->info.device_name) ||
      strcmp(vendor->valuestring, ctx->info.vendor))
    return bad(s, "tuned for another device (%s, %s)", name->valuestring,
               vendor->valuestring);
  if (strcmp(driver->valuestring, ctx->info.driver_version))
    dcn_log(ctx, DCN_LOG_INFO,
            "tuning file made with driver %s, running %s; re-run dcnv4-tune "
            "if the driver changed the kernels' speed",
            driver->valuestring, ctx->info.driver_version);
  const cJSON *kernels = cJSON_GetObjectItemCaseSensitive(root, "kernels");
  const cJSON *gemm = cJSON_GetObjectItemCaseSensitive(root, "gemm");
  if ((kernels && !cJSON_IsArray(kernels)) || (gemm && !cJSON_IsArray(gemm)))
    return bad(s, "\"kernels\" and \"gemm\" must be arrays");
  size_t nk = kernels ? (size_t)cJSON_GetArraySize(kernels) : 0;
  size_t ng = gemm ? (size_t)cJSON_GetArraySize(gemm) : 0;
  if (nk > MAX_ENTRIES || ng > MAX_ENTRIES)
    return bad(s, "more than %d entries", MAX_ENTRIES);
  s->entries = dcn_calloc(nk ? nk : 1, sizeof *s->entries);
  s->gemm = dcn_calloc(ng ? ng : 1, sizeof *s->gemm);
  if (!s->entries || !s->gemm)
    return bad(s, "out of host memory");
  size_t i = 0;
  for (const cJSON *e = kernels ? kernels->child : NULL; e; e = e->next)
    if (!parse_kernel_entry(s, e, i++))
      return false;
  i = 0;
  for (const cJSON *e = gemm ? gemm->child : NULL; e; e = e->next)
    if (!parse_gemm_entry(s, e, i++))
      return false;
  return true;
}

void dcn_tuning_file_load(dcnv4_context *ctx) {
  ctx->tuning_file_enabled = true;
  ctx->tuning_file = tuning_file_path(ctx);
  if (!ctx->tuning_file) {
    dcn_log(ctx, DCN_LOG_DEBUG,
            "no tuning file (DCNV4_TUNING_FILE empty or "
            "no cache folder)");
    return;
  }
  char why[256] = "";
  bool missing;
  char *text = read_text(ctx->tuning_file, &missing, why, sizeof why);
  if (!text) {
    if (missing)
      dcn_log(ctx, DCN_LOG_DEBUG, "no tuning file at %s; built-in defaults",
              ctx->tuning_file);
    else
      dcn_log(ctx, DCN_LOG_INFO, "tuning file %s ignored: %s", ctx->tuning_file,
              why);
    return;
  }
  parse_state s;
  memset(&s, 0, sizeof s);
  s.why = why;
  s.why_size = sizeof why;
  cJSON *root = cJSON_Parse(text);
  bool ok = root ? parse_root(ctx, &s, root)
                 : bad(&s, "not valid JSON (near byte %ld)",
                       cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - text)
                                           : -1L);
  cJSON_Delete(root);
  dcn_free(text);
  if (!ok) {
    dcn_log(ctx, DCN_LOG_INFO, "tuning file %s ignored: %s", ctx->tuning_file,
            why);
    dcn_free(s.entries);
    dcn_free(s.gemm);
    return;
  }
  ctx->tuning_entries = s.entries;
  ctx->tuning_entry_count = s.entry_count;
  ctx->tuning_file_loaded = true;
  dcn_log(ctx, DCN_LOG_INFO,
          "tuning file %s: %zu kernel entries, %zu CLBlast parameter sets",
          ctx->tuning_file, s.entry_count, s.gemm_count);
  for (size_t i = 0; i < s.entry_count; i++) {
    const dcn_tuning_entry *e = &s.entries[i];
    char text_params[160] = "";
    size_t n = 0;
    for (int p = 0; p < DCN_TUNING_PARAMS && n < sizeof text_params; p++)
      if (e->set[p]) {
        int w =
            snprintf(text_params + n, sizeof text_params - n, " %s=%ld",
                     dcn_tuning_param_name((dcn_tuning_param)p), e->value[p]);
        n += w > 0 ? (size_t)w : 0;
      }
    dcn_log(ctx, DCN_LOG_DEBUG, "tuning file entry %s dtype %s gc %d:%s",
            dcn_kernel_name(e->kernel),
            e->dtype < 0 ? "any" : dcnv4_dtype_name((dcnv4_dtype)e->dtype),
            e->group_channels, text_params);
  }
  if (s.gemm_count)
    ctx->gemm_tuned = dcn_gemm_apply_tuning(ctx, s.gemm, s.gemm_count) > 0;
  dcn_free(s.gemm);
}

/* ------------------------------------------------------------ public API */

dcnv4_status dcnv4_context_set_tuning(dcnv4_context *ctx, const char *tuning) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  dcn_tuning_override parsed;
  char why[256];
  if (!dcn_tuning_parse(tuning ? tuning : "", &parsed, why, sizeof why))
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER, "%s", why);
  ctx->tuning = parsed;
  ctx->tuning_warned = 0;
  dcn_log(ctx, DCN_LOG_DEBUG, "tuning override set to \"%s\"",
          tuning ? tuning : "");
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_context_set_tuning_file_enabled(dcnv4_context *ctx,
                                                   int enabled) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  ctx->tuning_file_enabled = enabled != 0;
  ctx->tuning_warned = 0;
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_context_get_tuning(dcnv4_context *ctx, const char *kernel,
                                      dcnv4_dtype dtype, int32_t group_channels,
                                      char *params, size_t params_size,
                                      dcnv4_tuning_source *source) {
  if (!ctx)
    return DCNV4_ERROR_NULL_POINTER;
  if (!kernel || !params)
    return dcn_fail(ctx, DCNV4_ERROR_NULL_POINTER, "kernel or params is NULL");
  int id = dcn_kernel_from_name(kernel);
  if (id < 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER, "unknown kernel \"%s\"",
                    kernel);
  if (dcnv4_dtype_size(dtype) == 0 || group_channels < 0)
    return dcn_fail(ctx, DCNV4_ERROR_INVALID_PARAMETER,
                    "bad dtype %d or group_channels %d", (int)dtype,
                    (int)group_channels);
  dcn_launch_config c =
      dcn_tuning_lookup(ctx, (dcn_kernel_id)id, dtype, (int)group_channels);
  dcn_tuning_format(&c, params, params_size);
  if (source)
    *source = (dcnv4_tuning_source)c.source;
  return DCNV4_SUCCESS;
}

dcnv4_status dcnv4_context_tuning_file(const dcnv4_context *ctx, char *path,
                                       size_t path_size, int *loaded) {
  if (!ctx || !path)
    return DCNV4_ERROR_NULL_POINTER;
  snprintf(path, path_size, "%s", ctx->tuning_file ? ctx->tuning_file : "");
  if (loaded)
    *loaded = ctx->tuning_file_loaded ? 1 : 0;
  return DCNV4_SUCCESS;
}

uint64_t dcnv4_context_tuning_fallbacks(const dcnv4_context *ctx) {
  return ctx ? ctx->tuning_fallbacks : 0;
}
