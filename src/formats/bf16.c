/* BF16: bfloat16 (the top half of a float32), converted element by element (fp16.c). */
#include <string.h>

#include "kquant.h"
#include "rows.h"

void kq__bf16_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, sizeof h);
        dst[i] = kq_bf16_to_f32(h);
    }
}

void kq__bf16_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = kq_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, sizeof h);
    }
}
