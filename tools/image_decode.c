/* Image files to RGB with stb_image; see image_decode.h. */
#include "image_decode.h"

#include <errno.h>
#include <stb_image.h>
#include <stdio.h>
#include <string.h>

unsigned char *image_load_rgb(const char *path, int *width, int *height,
                              char *err, size_t err_size) {
  /* Opened here so that a missing or unreadable file says why. */
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  int channels = 0;
  unsigned char *px = stbi_load_from_file(f, width, height, &channels, 3);
  int read_error = ferror(f);
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

void image_free_rgb(unsigned char *pixels) { stbi_image_free(pixels); }
