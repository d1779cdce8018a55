/* Image files to 8-bit RGB pixels: JPEG with libjpeg (Debian's
 * libjpeg62-turbo, the decoder PIL uses, with its defaults: the pixels
 * upstream's loader sees), PNG, BMP, GIF (first frame), TGA and PNM with
 * stb_image (libstb-dev). Converted as upstream's loader converts (PIL's
 * convert("RGB")): grey replicated, alpha dropped, palettes expanded,
 * 16-bit samples cut to their high byte. CMYK JPEGs are refused. */
#ifndef DCNV4_IMAGE_DECODE_H
#define DCNV4_IMAGE_DECODE_H

#include <stddef.h>

/* Interleaved RGB rows, *width x *height, to release with
 * image_free_rgb (free); NULL with a message naming the file in err on failure
 * (cannot open, not an image, unsupported or damaged). */
unsigned char *image_load_rgb(const char *path, int *width, int *height,
                              char *err, size_t err_size);
void image_free_rgb(unsigned char *pixels);

#endif
