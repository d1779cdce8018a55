/* Image files to 8-bit RGB pixels, with Debian's stb_image (libstb-dev):
 * JPEG (baseline and progressive) and PNG, also BMP, GIF (first frame),
 * TGA and PNM. Converted as upstream's loader converts (PIL's
 * convert("RGB")): grey replicated, alpha dropped, palettes expanded,
 * 16-bit samples cut to their high byte. */
#ifndef DCNV4_IMAGE_DECODE_H
#define DCNV4_IMAGE_DECODE_H

#include <stddef.h>

/* Interleaved RGB rows, *width x *height, to release with
 * image_free_rgb; NULL with a message naming the file in err on failure
 * (cannot open, not an image, unsupported or damaged). */
unsigned char *image_load_rgb(const char *path, int *width, int *height,
                              char *err, size_t err_size);
void image_free_rgb(unsigned char *pixels);

#endif
