/* .npy reader and writer. */
#include "npy.h"

#include "host_dtype.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER (1u << 20)
#define NPY_MAX_FILE ((uint64_t)1 << 36)

static const struct {
  npy_dtype dtype;
  const char *descr;
  size_t size;
} kinds[] = {
    {NPY_FLOAT16, "<f2", 2}, {NPY_FLOAT32, "<f4", 4}, {NPY_FLOAT64, "<f8", 8},
    {NPY_UINT8, "|u1", 1},   {NPY_BOOL, "|b1", 1},    {NPY_INT32, "<i4", 4},
    {NPY_INT64, "<i8", 8},
};

size_t npy_dtype_size(npy_dtype dtype) {
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (kinds[i].dtype == dtype)
      return kinds[i].size;
  return 0;
}

const char *npy_dtype_descr(npy_dtype dtype) {
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (kinds[i].dtype == dtype)
      return kinds[i].descr;
  return "?";
}

static int fail(char *err, size_t size, const char *msg, const char *detail) {
  if (err && size)
    snprintf(err, size, "%s%s%s", msg, detail ? ": " : "",
             detail ? detail : "");
  return -1;
}

/* A tiny scanner over the header's Python dict literal. */
typedef struct scanner {
  const char *p, *end;
} scanner;

static void skip_space(scanner *s) {
  while (s->p < s->end && isspace((unsigned char)*s->p))
    s->p++;
}

static int accept(scanner *s, char c) {
  skip_space(s);
  if (s->p < s->end && *s->p == c) {
    s->p++;
    return 1;
  }
  return 0;
}

/* A quoted string ('...' or "...") without escapes, copied into out. */
static int read_quoted(scanner *s, char *out, size_t size) {
  skip_space(s);
  if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
    return 0;
  char q = *s->p++;
  size_t n = 0;
  while (s->p < s->end && *s->p != q) {
    if (*s->p == '\\' || n + 1 >= size)
      return 0;
    out[n++] = *s->p++;
  }
  if (s->p >= s->end)
    return 0;
  s->p++;
  out[n] = '\0';
  return 1;
}

static int read_word(scanner *s, const char *word) {
  skip_space(s);
  size_t n = strlen(word);
  if ((size_t)(s->end - s->p) >= n && memcmp(s->p, word, n) == 0) {
    s->p += n;
    return 1;
  }
  return 0;
}

static int read_shape(scanner *s, npy_array *a) {
  if (!accept(s, '('))
    return 0;
  a->ndim = 0;
  if (accept(s, ')'))
    return 1;
  for (;;) {
    skip_space(s);
    if (s->p >= s->end || !isdigit((unsigned char)*s->p))
      return 0;
    uint64_t v = 0;
    while (s->p < s->end && isdigit((unsigned char)*s->p)) {
      v = v * 10 + (uint64_t)(*s->p++ - '0');
      if (v > ((uint64_t)1 << 40))
        return 0;
    }
    if (s->p < s->end && *s->p == 'L') /* Python 2 longs */
      s->p++;
    if (a->ndim >= NPY_MAX_DIMS)
      return 0;
    a->shape[a->ndim++] = (int64_t)v;
    if (accept(s, ')'))
      return 1;
    if (!accept(s, ','))
      return 0;
    if (accept(s, ')'))
      return 1;
  }
}

static int parse_header(const char *text, size_t len, npy_array *a,
                        int *fortran, char *err, size_t err_size) {
  scanner s = {text, text + len};
  int have_descr = 0, have_order = 0, have_shape = 0;
  if (!accept(&s, '{'))
    return fail(err, err_size, "malformed .npy header", "expected '{'");
  while (!accept(&s, '}')) {
    char key[32], descr[16];
    if (!read_quoted(&s, key, sizeof key) || !accept(&s, ':'))
      return fail(err, err_size, "malformed .npy header", "bad key");
    if (strcmp(key, "descr") == 0) {
      if (!read_quoted(&s, descr, sizeof descr))
        return fail(err, err_size, "malformed .npy header", "bad descr");
      size_t i;
      for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].descr, descr) == 0 ||
            (kinds[i].size == 1 && descr[0] == '<' &&
             strcmp(kinds[i].descr + 1, descr + 1) == 0))
          break;
      if (i == sizeof kinds / sizeof kinds[0])
        return fail(err, err_size, "unsupported .npy dtype", descr);
      a->dtype = kinds[i].dtype;
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (read_word(&s, "False"))
        *fortran = 0;
      else if (read_word(&s, "True"))
        *fortran = 1;
      else
        return fail(err, err_size, "malformed .npy header",
                    "bad fortran_order");
      have_order = 1;
    } else if (strcmp(key, "shape") == 0) {
      if (!read_shape(&s, a))
        return fail(err, err_size, "malformed .npy header", "bad shape");
      have_shape = 1;
    } else
      return fail(err, err_size, "malformed .npy header", "unknown key");
    if (!accept(&s, ',')) {
      if (!accept(&s, '}'))
        return fail(err, err_size, "malformed .npy header", "expected ','");
      break;
    }
  }
  skip_space(&s);
  if (s.p != s.end)
    return fail(err, err_size, "malformed .npy header", "text after '}'");
  if (!have_descr || !have_order || !have_shape)
    return fail(err, err_size, "malformed .npy header",
                "descr, fortran_order and shape are required");
  return 0;
}

int npy_parse(const unsigned char *b, size_t size, npy_array *out, char *err,
              size_t err_size) {
  memset(out, 0, sizeof *out);
  if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
    return fail(err, err_size, "not a .npy file", "bad magic");
  unsigned major = b[6];
  size_t header_len, start;
  if (major == 1) {
    header_len = (size_t)b[8] | (size_t)b[9] << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12)
      return fail(err, err_size, "truncated .npy file", NULL);
    header_len = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
                 (size_t)b[11] << 24;
    start = 12;
  } else
    return fail(err, err_size, "unsupported .npy version", NULL);
  if (header_len > NPY_MAX_HEADER || header_len > size - start)
    return fail(err, err_size, "truncated .npy file", "header");
  int fortran = 0;
  npy_array a;
  memset(&a, 0, sizeof a);
  if (parse_header((const char *)b + start, header_len, &a, &fortran, err,
                   err_size) != 0)
    return -1;
  if (fortran)
    return fail(err, err_size, "unsupported .npy layout",
                "fortran_order is True");
  uint64_t count = 1;
  for (int i = 0; i < a.ndim; i++) {
    if (a.shape[i] != 0 && count > NPY_MAX_FILE / (uint64_t)a.shape[i])
      return fail(err, err_size, "malformed .npy header", "shape too large");
    count *= (uint64_t)a.shape[i];
  }
  size_t esize = npy_dtype_size(a.dtype);
  uint64_t data_bytes = count * esize;
  size_t data_start = start + header_len;
  if (data_bytes != (uint64_t)(size - data_start))
    return fail(err, err_size, "bad .npy file",
                data_bytes > (uint64_t)(size - data_start)
                    ? "data shorter than the shape"
                    : "data longer than the shape");
  a.count = count;
  a.data = malloc(data_bytes ? (size_t)data_bytes : 1);
  if (!a.data)
    return fail(err, err_size, "out of memory", NULL);
  memcpy(a.data, b + data_start, (size_t)data_bytes);
  *out = a;
  return 0;
}

int npy_read(const char *path, npy_array *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(err, err_size, "cannot open", path);
  unsigned char *buf = NULL;
  long n = -1;
  int rc = -1;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0 || (uint64_t)n > NPY_MAX_FILE) {
    fail(err, err_size, "cannot read", path);
    goto done;
  }
  buf = malloc(n ? (size_t)n : 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fail(err, err_size, "cannot read", path);
    goto done;
  }
  char inner[256];
  rc = npy_parse(buf, (size_t)n, out, inner, sizeof inner);
  if (rc != 0)
    fail(err, err_size, path, inner);
done:
  free(buf);
  fclose(f);
  return rc;
}

int npy_write(const char *path, npy_dtype dtype, const void *data, int ndim,
              const int64_t *shape, char *err, size_t err_size) {
  char dims[256];
  size_t used = 0;
  uint64_t count = 1;
  dims[0] = '\0';
  for (int i = 0; i < ndim; i++) {
    used += (size_t)snprintf(dims + used, sizeof dims - used, "%lld,%s",
                             (long long)shape[i], i + 1 < ndim ? " " : "");
    count *= (uint64_t)shape[i];
    if (used >= sizeof dims)
      return fail(err, err_size, "shape too long", NULL);
  }
  if (ndim > 1) /* a tuple of several has no trailing comma */
    dims[used - 1] = '\0';
  char header[512];
  int len = snprintf(header, sizeof header,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     npy_dtype_descr(dtype), dims);
  /* Pad with spaces so magic + length + header + '\n' is a multiple of 64. */
  size_t total = 10 + (size_t)len + 1;
  size_t pad = (64 - total % 64) % 64;
  if ((size_t)len + pad + 1 >= sizeof header)
    return fail(err, err_size, "header too long", NULL);
  memset(header + len, ' ', pad);
  header[(size_t)len + pad] = '\n';
  size_t hlen = (size_t)len + pad + 1;
  unsigned char prefix[10] = {0x93,
                              'N',
                              'U',
                              'M',
                              'P',
                              'Y',
                              1,
                              0,
                              (unsigned char)(hlen & 0xff),
                              (unsigned char)(hlen >> 8)};
  FILE *f = fopen(path, "wb");
  if (!f)
    return fail(err, err_size, "cannot create", path);
  size_t bytes = (size_t)count * npy_dtype_size(dtype);
  int ok = fwrite(prefix, 1, 10, f) == 10 &&
           fwrite(header, 1, hlen, f) == hlen &&
           fwrite(data, 1, bytes, f) == bytes;
  ok = fclose(f) == 0 && ok;
  if (!ok) {
    remove(path);
    return fail(err, err_size, "cannot write", path);
  }
  return 0;
}

void npy_free(npy_array *a) {
  if (a) {
    free(a->data);
    a->data = NULL;
  }
}

double npy_get(const npy_array *a, uint64_t i) {
  const unsigned char *p = (const unsigned char *)a->data;
  switch (a->dtype) {
  case NPY_FLOAT16: {
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return half_to_float(h);
  }
  case NPY_FLOAT32: {
    float f;
    memcpy(&f, p + 4 * i, 4);
    return f;
  }
  case NPY_FLOAT64: {
    double d;
    memcpy(&d, p + 8 * i, 8);
    return d;
  }
  case NPY_UINT8:
  case NPY_BOOL: return p[i];
  case NPY_INT32: {
    int32_t v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  case NPY_INT64: {
    int64_t v;
    memcpy(&v, p + 8 * i, 8);
    return (double)v;
  }
  }
  return 0.0;
}

int npy_shape_equals(const npy_array *a, int ndim, const int64_t *shape) {
  if (a->ndim != ndim)
    return 0;
  for (int i = 0; i < ndim; i++)
    if (a->shape[i] != shape[i])
      return 0;
  return 1;
}

void npy_shape_string(int ndim, const int64_t *shape, char *out, size_t size) {
  size_t used = (size_t)snprintf(out, size, "(");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(out + used, size - used, "%s%lld", i ? ", " : "",
                             (long long)shape[i]);
  if (used < size)
    snprintf(out + used, size - used, ")");
}
