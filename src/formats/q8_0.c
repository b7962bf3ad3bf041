/* Q8_0: blocks of 32, x = d * q, q int8. The quantizer is ggml's reference
 * (quantize_row_q8_0_ref): d = amax / 127, q = roundf(x / d) (half away from
 * zero). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q8_0_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK8_0; i++) {
        kq_block_q8_0 b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        float *y = dst + i * KQ_QK8_0;
        for (int j = 0; j < KQ_QK8_0; j++) y[j] = (float)b.qs[j] * d;
    }
}

void kq__q8_0_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK8_0; i++) {
        const float *x = src + i * KQ_QK8_0;
        float amax = 0;
        for (int j = 0; j < KQ_QK8_0; j++) {
            const float v = fabsf(x[j]);
            if (v > amax) amax = v;
        }
        const float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;

        kq_block_q8_0 b;
        b.d = kq__fp16_scale(d);
        if ((kq_f32_to_fp16(d) & 0x7fffu) == 0x7c00u) /* saturated: quantize to what is stored */
            id = 1.0f / kq_fp16_to_f32(b.d);
        for (int j = 0; j < KQ_QK8_0; j++) {
            float v = x[j] * id;
            if (v != v) v = 0; /* NaN in, 0 out: no undefined cast */
            if (v > 127.f) v = 127.f;
            if (v < -127.f) v = -127.f;
            b.qs[j] = (int8_t)roundf(v);
        }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
