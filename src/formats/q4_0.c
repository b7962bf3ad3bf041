/* Q4_0: blocks of 32, x = d * (q - 8), q 4-bit. The quantizer is ggml's
 * reference (quantize_row_q4_0_ref): d = max / -8 where max is the element of
 * largest magnitude, q = min(15, trunc(x / d + 8.5)). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q4_0_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        kq_block_q4_0 b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        float *y = dst + i * KQ_QK4_0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int x0 = (b.qs[j] & 0x0F) - 8;
            const int x1 = (b.qs[j] >> 4) - 8;
            y[j] = (float)x0 * d;
            y[j + KQ_QK4_0 / 2] = (float)x1 * d;
        }
    }
}

/* trunc(v) limited to 0..hi, NaN to 0 (a float -> int cast of an out-of-range
 * value would be undefined). */
static int trunc_code(float v, int hi)
{
    if (!(v > 0)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

void kq__q4_0_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        const float *x = src + i * KQ_QK4_0;
        float amax;
        const float max = kq__signed_absmax(x, KQ_QK4_0, &amax);
        const float d = max / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;

        kq_block_q4_0 b;
        b.d = kq__fp16_scale(d);
        if ((kq_f32_to_fp16(d) & 0x7fffu) == 0x7c00u) /* saturated: quantize to what is stored */
            id = 1.0f / kq_fp16_to_f32(b.d);
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[j + KQ_QK4_0 / 2] * id;
            const int q0 = trunc_code(x0 + 8.5f, 15);
            const int q1 = trunc_code(x1 + 8.5f, 15);
            b.qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
