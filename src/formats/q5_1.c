/* Q5_1: blocks of 32, x = d * q + m, q 5-bit as in Q5_0 (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

static uint32_t load_qh(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

void kq__q5_1_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        kq_block_q5_1 b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        const float m = kq_fp16_to_f32(b.m);
        const uint32_t qh = load_qh(b.qh);
        float *y = dst + i * KQ_QK4_0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const unsigned q0 = (b.qs[j] & 0x0Fu) | (((qh >> j) & 1u) << 4);
            const unsigned q1 = (b.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4);
            y[j] = d * (float)q0 + m;
            y[j + KQ_QK4_0 / 2] = d * (float)q1 + m;
        }
    }
}

/* ggml's reference (quantize_row_q5_1_ref), byte for byte where scale and
 * min fit fp16: d = (max - min) / 31, q = trunc((x - min) / d + 0.5). */
void kq__q5_1_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        const float *x = src + i * KQ_QK4_0;
        kq_block_q5_1 b;
        float d, min;
        kq__affine_scale_min(x, KQ_QK4_0, 31, &b.d, &b.m, &d, &min);
        const float id = d != 0 ? 1.0f / d : 0.0f;
        uint32_t qh = 0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int q0 = kq__trunc_code((x[j] - min) * id + 0.5f, 31);
            const int q1 = kq__trunc_code((x[j + KQ_QK4_0 / 2] - min) * id + 0.5f, 31);
            b.qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + KQ_QK4_0 / 2);
        }
        for (int k = 0; k < 4; k++) b.qh[k] = (uint8_t)(qh >> (8 * k));
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
