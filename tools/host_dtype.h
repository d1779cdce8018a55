/* Host-side conversions between float and the fp16 / bf16 storage types,
 * rounding to nearest even as the kernels do. */
#ifndef DCNV4_HOST_DTYPE_H
#define DCNV4_HOST_DTYPE_H

#include "dcnv4.h"

#include <stddef.h>
#include <stdint.h>

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bf16_to_float(uint16_t b);
uint16_t float_to_bf16(float f);

/* Rounds a value to what `dtype` can store (identity for fp32). */
float round_to_dtype(float v, dcnv4_dtype dtype);
/* Packs `count` floats into storage of `dtype` (dst holds count*size). */
void pack_dtype(const float *src, void *dst, size_t count, dcnv4_dtype dtype);
/* Unpacks storage of `dtype` into floats. */
void unpack_dtype(const void *src, float *dst, size_t count, dcnv4_dtype dtype);
/* Parses "float32" / "float16" / "bfloat16"; returns 0 or -1. */
int parse_dtype(const char *name, dcnv4_dtype *dtype);

#endif
