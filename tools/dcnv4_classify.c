/* dcnv4-classify --weights FILE [options] IMAGE...
 *
 * Classifies image files with a FlashInternImage model: upstream's
 * evaluation preprocessing (image_prep.h), batches of images through
 * dcnv4_fii_forward, softmax, the top classes of each image. Bad input
 * (arguments, config, labels, weights that do not fit the model, an image
 * that cannot be read): exit 2 with a message; an unreadable image is
 * reported and skipped, the others still classified. Device or library
 * failure: exit 1. */
#include "cl_host.h"
#include "fii_config.h"
#include "image_decode.h"
#include "image_prep.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_BAD_INPUT = 2 };

static void usage(FILE *to) {
  fprintf(
      to,
      "usage: dcnv4-classify --weights FILE.safetensors [options] IMAGE...\n"
      "  Classifies image files (JPEG, PNG; also BMP, GIF, TGA, PNM) with a\n"
      "  FlashInternImage model and prints, for each, its path and then the\n"
      "  top classes as \"  PROBABILITY  CLASS  [NAME]\" (softmax, best "
      "first).\n"
      "  --weights FILE      the model's weights, as\n"
      "                      tools/convert_checkpoint.py writes them\n"
      "  --config FILE.json  the model's configuration (default: the\n"
      "                      weights' path with .json, the converter's)\n"
      "  --variant t|s|b|l   a released variant's configuration instead\n"
      "  --labels FILE       class names, one per line, line i for class i\n"
      "  --size N            crop size (default: the config's img_size, "
      "else\n"
      "                      224; 384 for --variant l)\n"
      "  --crop-ratio R      resize the shorter side to int(N / R), then "
      "crop\n"
      "                      the centre N x N (default 1.0, upstream's\n"
      "                      evaluation; 0.875 gives 256 -> 224)\n"
      "  --batch N           images per forward pass (default 8)\n"
      "  --top K             classes printed per image (default 5)\n"
      "  --dtype T           float32 (default), float16 or bfloat16\n"
      "  --device SPEC       \"platform:device\", a vendor word (pocl, intel,\n"
      "                      nvidia, amd, cpu, gpu) or part of a device name\n"
      "                      (default: $DCNV4_DEVICE, else the first GPU)\n"
      "  Exit status: 0 done, 1 device/library failure, 2 bad input (an\n"
      "  image that cannot be read is reported and skipped, and the status\n"
      "  is 2 at the end).\n");
}

typedef struct options {
  const char *weights, *config, *variant, *labels, *device;
  int size, batch, top;
  double crop_ratio;
  dcnv4_dtype dtype;
  const char **images;
  int image_count;
} options;

static int parse_int(const char *name, const char *text, int lo, int hi,
                     int *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < lo || v > hi) {
    fprintf(stderr,
            "dcnv4-classify: %s needs an integer in [%d, %d], not \"%s\"\n",
            name, lo, hi, text);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* Parses argv; EXIT_OK to go on, -1 after --help, else an exit status. */
static int parse_args(int argc, char **argv, options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return -1;
    }
    if (strcmp(a, "--") == 0) {
      for (i++; i < argc; i++)
        o->images[o->image_count++] = argv[i];
      break;
    }
    if (a[0] != '-' || a[1] == '\0') {
      o->images[o->image_count++] = a;
      continue;
    }
    static const char *const valued[] = {
        "--weights",    "--config", "--variant", "--labels", "--size",
        "--crop-ratio", "--batch",  "--top",     "--dtype",  "--device"};
    const char *value = NULL;
    size_t k = 0;
    for (; k < sizeof valued / sizeof valued[0]; k++) {
      size_t n = strlen(valued[k]);
      if (strncmp(a, valued[k], n) == 0 && a[n] == '=') {
        value = a + n + 1;
        break;
      }
      if (strcmp(a, valued[k]) == 0) {
        if (i + 1 >= argc) {
          fprintf(stderr, "dcnv4-classify: %s needs a value (see --help)\n", a);
          return EXIT_BAD_INPUT;
        }
        value = argv[++i];
        break;
      }
    }
    if (!value) {
      fprintf(stderr, "dcnv4-classify: unknown option %s (see --help)\n", a);
      return EXIT_BAD_INPUT;
    }
    const char *name = valued[k];
    if (strcmp(name, "--weights") == 0)
      o->weights = value;
    else if (strcmp(name, "--config") == 0)
      o->config = value;
    else if (strcmp(name, "--variant") == 0) {
      if (strlen(value) != 1 || !strchr("tsbl", value[0])) {
        fprintf(stderr,
                "dcnv4-classify: --variant is one of t, s, b, l, not "
                "\"%s\"\n",
                value);
        return EXIT_BAD_INPUT;
      }
      o->variant = value;
    } else if (strcmp(name, "--labels") == 0)
      o->labels = value;
    else if (strcmp(name, "--device") == 0)
      o->device = value;
    else if (strcmp(name, "--size") == 0) {
      if (parse_int(name, value, 1, 8192, &o->size))
        return EXIT_BAD_INPUT;
    } else if (strcmp(name, "--batch") == 0) {
      if (parse_int(name, value, 1, 4096, &o->batch))
        return EXIT_BAD_INPUT;
    } else if (strcmp(name, "--top") == 0) {
      if (parse_int(name, value, 1, INT_MAX, &o->top))
        return EXIT_BAD_INPUT;
    } else if (strcmp(name, "--crop-ratio") == 0) {
      char *end = NULL;
      o->crop_ratio = strtod(value, &end);
      if (end == value || *end || !(o->crop_ratio > 0.0) ||
          o->crop_ratio > 1.0) {
        fprintf(stderr,
                "dcnv4-classify: --crop-ratio needs a number in (0, 1], not "
                "\"%s\"\n",
                value);
        return EXIT_BAD_INPUT;
      }
    } else { /* --dtype */
      int found = 0;
      for (int d = DCNV4_FLOAT32; d <= DCNV4_BFLOAT16; d++)
        if (strcmp(value, dcnv4_dtype_name((dcnv4_dtype)d)) == 0) {
          o->dtype = (dcnv4_dtype)d;
          found = 1;
        }
      if (!found) {
        fprintf(stderr,
                "dcnv4-classify: --dtype is float32, float16 or bfloat16, "
                "not \"%s\"\n",
                value);
        return EXIT_BAD_INPUT;
      }
    }
  }
  if (!o->weights) {
    fprintf(stderr, "dcnv4-classify: --weights is required (see --help)\n");
    return EXIT_BAD_INPUT;
  }
  if (o->config && o->variant) {
    fprintf(stderr, "dcnv4-classify: --config and --variant exclude each "
                    "other\n");
    return EXIT_BAD_INPUT;
  }
  if (o->image_count == 0) {
    fprintf(stderr, "dcnv4-classify: no image given (see --help)\n");
    return EXIT_BAD_INPUT;
  }
  return EXIT_OK;
}

/* The configuration: --variant, --config, or the file beside the weights. */
static int load_config(options *o, dcnv4_fii_config *cfg) {
  if (o->variant) {
    dcnv4_fii_config_init(cfg);
    if (dcnv4_fii_config_preset(cfg, o->variant) != DCNV4_SUCCESS) {
      fprintf(stderr, "dcnv4-classify: no preset \"%s\"\n", o->variant);
      return EXIT_BAD_INPUT;
    }
    if (!o->size)
      o->size = o->variant[0] == 'l' ? 384 : 224;
    return EXIT_OK;
  }
  char beside[4096];
  const char *path = o->config;
  if (!path) {
    size_t n = strlen(o->weights), ext = strlen(".safetensors");
    if (n > ext && strcmp(o->weights + n - ext, ".safetensors") == 0)
      n -= ext;
    if (n + 6 > sizeof beside) {
      fprintf(stderr, "dcnv4-classify: weights path too long\n");
      return EXIT_BAD_INPUT;
    }
    memcpy(beside, o->weights, n);
    memcpy(beside + n, ".json", 6);
    FILE *f = fopen(beside, "rb");
    if (!f) {
      fprintf(stderr,
              "dcnv4-classify: no configuration: %s does not exist (pass "
              "--config FILE.json or --variant t|s|b|l)\n",
              beside);
      return EXIT_BAD_INPUT;
    }
    fclose(f);
    path = beside;
  }
  case_error e;
  int32_t img_size = 0;
  if (fii_config_read_file(path, cfg, &img_size, &e) != 0) {
    fprintf(stderr, "dcnv4-classify: %s\n", e.text);
    return EXIT_BAD_INPUT;
  }
  if (!o->size)
    o->size = img_size ? img_size : 224;
  return EXIT_OK;
}

/* Class names: one per line, as many as the model has classes. */
static int load_labels(const char *path, int classes, char ***names) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "dcnv4-classify: cannot read %s: %s\n", path,
            strerror(errno));
    return EXIT_BAD_INPUT;
  }
  char **v = calloc((size_t)classes, sizeof *v);
  char line[4096];
  int n = 0, status = EXIT_OK;
  while (v && fgets(line, sizeof line, f)) {
    size_t len = strcspn(line, "\r\n");
    if (line[len] == '\0' && !feof(f)) {
      fprintf(stderr, "dcnv4-classify: %s: line %d is too long\n", path, n + 1);
      status = EXIT_BAD_INPUT;
      break;
    }
    line[len] = '\0';
    if (n == classes) {
      if (len == 0)
        continue; /* trailing blank lines */
      n++;
      break;
    }
    v[n] = malloc(len + 1);
    if (!v[n]) {
      status = EXIT_FAILED;
      break;
    }
    memcpy(v[n++], line, len + 1);
  }
  if (ferror(f)) {
    fprintf(stderr, "dcnv4-classify: cannot read %s: read error\n", path);
    status = EXIT_BAD_INPUT;
  }
  fclose(f);
  if (!v)
    status = EXIT_FAILED;
  if (status == EXIT_OK && n != classes) {
    fprintf(stderr,
            "dcnv4-classify: %s has %s%d name(s), the model %d classes\n", path,
            n > classes ? "more than " : "", n > classes ? classes : n,
            classes);
    status = EXIT_BAD_INPUT;
  }
  if (status != EXIT_OK) {
    for (int i = 0; v && i < classes; i++)
      free(v[i]);
    free(v);
    return status;
  }
  *names = v;
  return EXIT_OK;
}

/* Softmax of one row and its `top` best classes, printed. */
static void print_top(const char *image, const float *logits, int classes,
                      int top, char *const *names, double *prob, int *order) {
  double max = -INFINITY, sum = 0.0;
  for (int c = 0; c < classes; c++)
    max = logits[c] > max ? logits[c] : max;
  for (int c = 0; c < classes; c++) {
    prob[c] = exp((double)logits[c] - max);
    sum += prob[c];
  }
  for (int c = 0; c < classes; c++)
    prob[c] /= sum;
  /* Selection of the best `top` (a NaN row keeps its class order). */
  for (int c = 0; c < classes; c++)
    order[c] = c;
  for (int k = 0; k < top; k++) {
    int best = k;
    for (int c = k + 1; c < classes; c++)
      if (prob[order[c]] > prob[order[best]])
        best = c;
    int t = order[k];
    order[k] = order[best];
    order[best] = t;
  }
  printf("%s\n", image);
  for (int k = 0; k < top; k++) {
    int c = order[k];
    printf("  %.4f  %d%s%s\n", prob[c], c, names ? "  " : "",
           names ? names[c] : "");
  }
}

int main(int argc, char **argv) {
  options o;
  memset(&o, 0, sizeof o);
  o.batch = 8;
  o.top = 5;
  o.crop_ratio = 1.0;
  o.dtype = DCNV4_FLOAT32;
  o.images = calloc((size_t)argc, sizeof *o.images);
  if (!o.images) {
    fprintf(stderr, "dcnv4-classify: out of memory\n");
    return EXIT_FAILED;
  }
  int status = parse_args(argc, argv, &o);
  if (status != EXIT_OK) {
    free(o.images);
    return status < 0 ? EXIT_OK : status;
  }

  dcnv4_fii_config cfg;
  char **names = NULL;
  dcnv4_context *ctx = NULL;
  dcnv4_fii *model = NULL;
  cl_mem image_buf = NULL, logits_buf = NULL;
  float *batch = NULL, *logits = NULL;
  double *prob = NULL;
  int *order = NULL;
  if ((status = load_config(&o, &cfg)) != EXIT_OK)
    goto done;
  if (cfg.num_classes < 1) {
    fprintf(stderr, "dcnv4-classify: the model has no classification head "
                    "(num_classes 0)\n");
    status = EXIT_BAD_INPUT;
    goto done;
  }
  if (o.labels &&
      (status = load_labels(o.labels, cfg.num_classes, &names)) != EXIT_OK)
    goto done;
  int classes = cfg.num_classes;
  int top = o.top < classes ? o.top : classes;

  char why[512] = "";
  dcnv4_context_options copt;
  dcnv4_context_options_init(&copt);
  copt.device = o.device;
  copt.error_buffer = why;
  copt.error_buffer_size = sizeof why;
  if (dcnv4_context_create(&copt, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4-classify: cannot open a device: %s\n", why);
    status = EXIT_FAILED;
    goto done;
  }
  dcnv4_status st = dcnv4_fii_create(ctx, &cfg, o.dtype, &model);
  if (st != DCNV4_SUCCESS) {
    fprintf(stderr, "dcnv4-classify: cannot create the model: %s\n",
            dcnv4_context_last_error(ctx));
    status = st == DCNV4_ERROR_INVALID_PARAMETER ? EXIT_BAD_INPUT : EXIT_FAILED;
    goto done;
  }
  st = dcnv4_fii_load_safetensors(model, o.weights);
  if (st != DCNV4_SUCCESS) {
    int bad = st == DCNV4_ERROR_IO || st == DCNV4_ERROR_INVALID_FILE ||
              st == DCNV4_ERROR_MISSING_WEIGHT ||
              st == DCNV4_ERROR_INVALID_WEIGHT;
    fprintf(stderr, "dcnv4-classify: %s%s: %s\n", o.weights,
            bad && st != DCNV4_ERROR_IO ? " does not fit the model" : "",
            dcnv4_context_last_error(ctx));
    status = bad ? EXIT_BAD_INPUT : EXIT_FAILED;
    goto done;
  }

  size_t plane = (size_t)3 * o.size * o.size;
  int per_batch = o.batch < o.image_count ? o.batch : o.image_count;
  batch = malloc(plane * per_batch * sizeof *batch);
  logits = malloc((size_t)classes * per_batch * sizeof *logits);
  prob = malloc((size_t)classes * sizeof *prob);
  order = malloc((size_t)classes * sizeof *order);
  if (!batch || !logits || !prob || !order) {
    fprintf(stderr, "dcnv4-classify: out of memory\n");
    status = EXIT_FAILED;
    goto done;
  }
  image_buf = host_buffer(ctx, plane * per_batch * sizeof *batch, NULL);
  logits_buf =
      host_buffer(ctx, (size_t)classes * per_batch * sizeof *logits, NULL);
  if (!image_buf || !logits_buf) {
    fprintf(stderr, "dcnv4-classify: cannot allocate device buffers\n");
    status = EXIT_FAILED;
    goto done;
  }
  const char **names_in_batch = calloc((size_t)per_batch, sizeof(char *));
  if (!names_in_batch) {
    status = EXIT_FAILED;
    goto done;
  }
  int skipped = 0;
  for (int next = 0; next < o.image_count && status == EXIT_OK;) {
    int n = 0;
    for (; next < o.image_count && n < per_batch; next++) {
      char err[4200];
      int w, h;
      unsigned char *rgb =
          image_load_rgb(o.images[next], &w, &h, err, sizeof err);
      if (!rgb) {
        fprintf(stderr, "dcnv4-classify: %s\n", err);
        skipped++;
        continue;
      }
      int pst = prep_image(rgb, w, h, o.size, o.crop_ratio, batch + plane * n);
      image_free_rgb(rgb);
      if (pst != 0) {
        fprintf(stderr, "dcnv4-classify: cannot preprocess %s (%dx%d): %s\n",
                o.images[next], w, h,
                pst == -1 ? "out of memory" : "image too large");
        skipped++;
        continue;
      }
      names_in_batch[n++] = o.images[next];
    }
    if (n == 0)
      break;
    if (host_write(ctx, image_buf, batch, plane * n * sizeof *batch) != 0) {
      fprintf(stderr, "dcnv4-classify: cannot upload the images\n");
      status = EXIT_FAILED;
      break;
    }
    st = dcnv4_fii_forward(model, n, o.size, o.size, image_buf, logits_buf,
                           NULL, NULL, 0, NULL, NULL);
    if (st != DCNV4_SUCCESS) {
      fprintf(stderr, "dcnv4-classify: forward pass failed: %s\n",
              dcnv4_context_last_error(ctx));
      status = EXIT_FAILED;
      break;
    }
    if (host_read(ctx, logits_buf, logits,
                  (size_t)classes * n * sizeof *logits) != 0) {
      fprintf(stderr, "dcnv4-classify: cannot read the logits\n");
      status = EXIT_FAILED;
      break;
    }
    for (int i = 0; i < n; i++)
      print_top(names_in_batch[i], logits + (size_t)classes * i, classes, top,
                names, prob, order);
    fflush(stdout);
  }
  free(names_in_batch);
  if (status == EXIT_OK && skipped) {
    fprintf(stderr, "dcnv4-classify: %d of %d images could not be read\n",
            skipped, o.image_count);
    status = EXIT_BAD_INPUT;
  }

done:
  host_release(image_buf);
  host_release(logits_buf);
  if (model)
    dcnv4_fii_destroy(model);
  if (ctx)
    dcnv4_context_destroy(ctx);
  for (int i = 0; names && i < cfg.num_classes; i++)
    free(names[i]);
  free(names);
  free(batch);
  free(logits);
  free(prob);
  free(order);
  free(o.images);
  return status;
}
