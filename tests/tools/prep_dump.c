/* prep_dump IMAGE SIZE CROP_RATIO OUT.npy: decodes IMAGE and writes the
 * preprocessed (3, SIZE, SIZE) float32 tensor, for test_image_prep_pil.py.
 * Exit status 0, or 1 with a message. */
#include "image_decode.h"
#include "image_prep.h"
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: prep_dump IMAGE SIZE CROP_RATIO OUT.npy\n");
    return 1;
  }
  char err[512];
  int w, h, size = atoi(argv[2]);
  unsigned char *rgb = image_load_rgb(argv[1], &w, &h, err, sizeof err);
  if (!rgb) {
    fprintf(stderr, "prep_dump: %s\n", err);
    return 1;
  }
  float *chw = malloc((size_t)3 * size * size * sizeof *chw);
  int st = chw ? prep_image(rgb, w, h, size, atof(argv[3]), chw) : -1;
  image_free_rgb(rgb);
  const int64_t shape[3] = {3, size, size};
  if (st != 0 ||
      npy_write(argv[4], NPY_FLOAT32, chw, 3, shape, err, sizeof err) != 0) {
    fprintf(stderr, "prep_dump: %s\n", st ? "preprocessing failed" : err);
    free(chw);
    return 1;
  }
  free(chw);
  return 0;
}
