/* Upstream's evaluation preprocessing (classification/dataset/build.py,
 * build_transform with is_train=False and TEST.CROP), bit for bit as
 * torchvision computes it on a PIL image:
 *
 *   Resize(int(size / crop_ratio), BICUBIC)  shorter side to that length
 *   CenterCrop(size)
 *   ToTensor()                               uint8 / 255 in float32
 *   Normalize(ImageNet mean, std)            (x - mean) / std in float32
 *
 * Upstream's configs crop with ratio 1.0 (resize the shorter side to the
 * crop size); 0.875 is the common 256 -> 224 convention. The resampling is
 * PIL's Image.resize(BICUBIC): separable, horizontal pass first, the
 * bicubic kernel with a = -0.5 stretched by the scale when shrinking
 * (antialiasing), coefficients normalized per output pixel and applied in
 * 22-bit fixed point, the intermediate rows rounded to uint8. */
#ifndef DCNV4_IMAGE_PREP_H
#define DCNV4_IMAGE_PREP_H

#include <stddef.h>

/* ImageNet statistics (upstream's AUG.MEAN and AUG.STD). */
extern const double prep_mean[3];
extern const double prep_std[3];

/* The shorter side Resize is asked for: int(size / crop_ratio). */
int prep_resize_short(int size, double crop_ratio);

/* torchvision's Resize(short) output for a width x height image: the
 * shorter side becomes `short_side`, the longer int(short * long / shorter)
 * (truncated). */
void prep_resize_dims(int width, int height, int short_side, int *out_width,
                      int *out_height);

/* torchvision's CenterCrop origin: round((extent - crop) / 2), half to
 * even as Python rounds. Requires extent >= crop. */
int prep_crop_origin(int extent, int crop);

/* PIL's bicubic resize of an interleaved 8-bit image (`channels` bytes
 * per pixel, rows of src_w * channels bytes) to dst_w x dst_h, computing
 * only the window [x0, x0 + win_w) x [y0, y0 + win_h) of the result (which
 * is what those pixels of the full result are) into `out`, rows of
 * win_w * channels bytes. 0 on success, -1 if out of memory, -2 for
 * invalid arguments. */
int prep_resize_bicubic(const unsigned char *src, int src_w, int src_h,
                        int channels, int dst_w, int dst_h, int x0, int y0,
                        int win_w, int win_h, unsigned char *out);

/* The whole pipeline on an interleaved RGB image: writes (3, size, size)
 * float32 to `chw`. crop_ratio in (0, 1]. 0 on success, -1 if out of
 * memory, -2 for invalid arguments (empty image, size < 1, ratio out of
 * range, sizes past 2^24). */
int prep_image(const unsigned char *rgb, int width, int height, int size,
               double crop_ratio, float *chw);

#endif
