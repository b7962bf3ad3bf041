/* The reference row converters of each type (one source file per type).
 * n is a positive multiple of the type's block; src and dst may sit at any
 * byte address. Used through kq__type_traits(); declared here so the table
 * (type_table.c) and tests of the library itself can name them. */
#ifndef KQ_FORMATS_ROWS_H
#define KQ_FORMATS_ROWS_H

#include <stdint.h>

void kq__f32_to_float(const void *src, float *dst, int64_t n);
void kq__f32_from_float(const float *src, void *dst, int64_t n);

void kq__f16_to_float(const void *src, float *dst, int64_t n);
void kq__f16_from_float(const float *src, void *dst, int64_t n);

void kq__bf16_to_float(const void *src, float *dst, int64_t n);
void kq__bf16_from_float(const float *src, void *dst, int64_t n);

void kq__q4_0_to_float(const void *src, float *dst, int64_t n);
void kq__q4_0_from_float(const float *src, void *dst, int64_t n);

void kq__q8_0_to_float(const void *src, float *dst, int64_t n);
void kq__q8_0_from_float(const float *src, void *dst, int64_t n);

void kq__q4_K_to_float(const void *src, float *dst, int64_t n);
void kq__q4_K_from_float(const float *src, void *dst, int64_t n);

void kq__q5_K_to_float(const void *src, float *dst, int64_t n);
void kq__q5_K_from_float(const float *src, void *dst, int64_t n);

void kq__q6_K_to_float(const void *src, float *dst, int64_t n);
void kq__q6_K_from_float(const float *src, void *dst, int64_t n);

/* The types added with issue 13 (q4_1 ... iq4_xs). */
void kq__q4_1_to_float(const void *src, float *dst, int64_t n);
void kq__q5_0_to_float(const void *src, float *dst, int64_t n);
void kq__q5_1_to_float(const void *src, float *dst, int64_t n);
void kq__iq4_nl_to_float(const void *src, float *dst, int64_t n);
void kq__mxfp4_to_float(const void *src, float *dst, int64_t n);
void kq__q2_K_to_float(const void *src, float *dst, int64_t n);
void kq__q3_K_to_float(const void *src, float *dst, int64_t n);
void kq__iq4_xs_to_float(const void *src, float *dst, int64_t n);

void kq__q8_K_to_float(const void *src, float *dst, int64_t n);
void kq__q8_K_from_float(const float *src, void *dst, int64_t n);

#endif
