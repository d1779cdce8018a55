/* Image files to RGB; see image_decode.h. JPEG goes through libjpeg (as in
 * PIL, with libjpeg's defaults: the same pixels as upstream's loader), the
 * other formats through stb_image. */
#include "image_decode.h"

#include <stdio.h> /* before jpeglib.h, which needs FILE */

#include <errno.h>
#include <jerror.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stb_image.h>
#include <stdlib.h>
#include <string.h>

typedef struct jpeg_failure {
  struct jpeg_error_mgr mgr;
  jmp_buf back;
} jpeg_failure;

/* libjpeg's errors return here instead of exiting. */
static void jpeg_fail(j_common_ptr cinfo) {
  longjmp(((jpeg_failure *)cinfo->err)->back, 1);
}
/* Warnings are ignored, as PIL ignores them, except the end of the data
 * before the end of the image: PIL refuses a truncated file. */
static void jpeg_warn(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
    longjmp(((jpeg_failure *)cinfo->err)->back, 1);
}

static unsigned char *load_jpeg(FILE *f, const char *path, int *width,
                                int *height, char *err, size_t err_size) {
  struct jpeg_decompress_struct cinfo;
  jpeg_failure fail;
  /* volatile: set before a longjmp may come back. */
  unsigned char *volatile px = NULL;
  cinfo.err = jpeg_std_error(&fail.mgr);
  fail.mgr.error_exit = jpeg_fail;
  fail.mgr.emit_message = jpeg_warn;
  if (setjmp(fail.back)) {
    char why[JMSG_LENGTH_MAX];
    fail.mgr.format_message((j_common_ptr)&cinfo, why);
    snprintf(err, err_size, "cannot decode %s: %s", path, why);
    jpeg_destroy_decompress(&cinfo);
    free(px);
    return NULL;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK ||
      cinfo.jpeg_color_space == JCS_YCCK) {
    snprintf(err, err_size, "cannot decode %s: CMYK JPEG is not supported",
             path);
    jpeg_destroy_decompress(&cinfo);
    return NULL;
  }
  cinfo.out_color_space = JCS_RGB; /* grey is replicated */
  jpeg_start_decompress(&cinfo);
  size_t row = (size_t)cinfo.output_width * 3;
  px = malloc(row * cinfo.output_height);
  if (!px) {
    snprintf(err, err_size, "cannot decode %s: out of memory", path);
    jpeg_destroy_decompress(&cinfo);
    return NULL;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW line = px + row * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &line, 1);
  }
  jpeg_finish_decompress(&cinfo);
  *width = (int)cinfo.output_width;
  *height = (int)cinfo.output_height;
  jpeg_destroy_decompress(&cinfo);
  return px;
}

unsigned char *image_load_rgb(const char *path, int *width, int *height,
                              char *err, size_t err_size) {
  /* Opened here so that a missing or unreadable file says why. */
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  unsigned char magic[3] = {0, 0, 0};
  size_t got = fread(magic, 1, sizeof magic, f);
  int is_jpeg =
      got == 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF;
  unsigned char *px = NULL;
  int read_error = 0;
  if (fseek(f, 0, SEEK_SET) != 0) {
    read_error = 1;
  } else if (is_jpeg) {
    px = load_jpeg(f, path, width, height, err, err_size);
    fclose(f);
    return px;
  } else {
    int channels = 0;
    unsigned char *stb = stbi_load_from_file(f, width, height, &channels, 3);
    /* Copied so that every result is released with free(). */
    size_t bytes = stb ? (size_t)*width * (size_t)*height * 3 : 0;
    px = stb ? malloc(bytes) : NULL;
    if (px)
      memcpy(px, stb, bytes);
    else if (stb) {
      stbi_image_free(stb);
      fclose(f);
      snprintf(err, err_size, "cannot decode %s: out of memory", path);
      return NULL;
    }
    stbi_image_free(stb);
  }
  read_error = read_error || ferror(f);
  fclose(f);
  if (!px) {
    const char *why = stbi_failure_reason();
    if (read_error)
      snprintf(err, err_size, "cannot read %s: read error", path);
    else
      snprintf(err, err_size, "cannot decode %s: %s", path,
               why ? why : "not an image");
    return NULL;
  }
  return px;
}

void image_free_rgb(unsigned char *pixels) { free(pixels); }
