/* The reference row converters of each type (one source file per type).
 * n is a positive multiple of the type's block; src and dst may sit at any
 * byte address. Used through kq__type_traits(); declared here so the table
 * (type_table.c) and tests of the library itself can name them. */
#ifndef KQ_FORMATS_ROWS_H
#define KQ_FORMATS_ROWS_H

#include <stdint.h>

#include "type_list.h"

void kq__f32_to_float(const void *src, float *dst, int64_t n);
void kq__f32_from_float(const float *src, void *dst, int64_t n);

void kq__f16_to_float(const void *src, float *dst, int64_t n);
void kq__f16_from_float(const float *src, void *dst, int64_t n);

void kq__bf16_to_float(const void *src, float *dst, int64_t n);
void kq__bf16_from_float(const float *src, void *dst, int64_t n);

/* Every quantized weight type of type_list.h has both converters, in
 * src/formats/<name>.c (lower case). */
#define KQ_ROW_CONVERTERS(ID, name, BLOCK, block_elems, act)            \
    void kq__##name##_to_float(const void *src, float *dst, int64_t n); \
    void kq__##name##_from_float(const float *src, void *dst, int64_t n);
KQ_QUANT_TYPES(KQ_ROW_CONVERTERS)
#undef KQ_ROW_CONVERTERS

/* Q8_K: the activation format of the k-quant kernels, not a weight. */
void kq__q8_K_to_float(const void *src, float *dst, int64_t n);
void kq__q8_K_from_float(const float *src, void *dst, int64_t n);

#endif
