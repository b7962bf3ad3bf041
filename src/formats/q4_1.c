/* Q4_1: blocks of 32, x = d * q + m, q 4-bit (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q4_1_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        kq_block_q4_1 b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        const float m = kq_fp16_to_f32(b.m);
        float *y = dst + i * KQ_QK4_0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            y[j] = d * (float)(b.qs[j] & 0x0F) + m;
            y[j + KQ_QK4_0 / 2] = d * (float)(b.qs[j] >> 4) + m;
        }
    }
}
