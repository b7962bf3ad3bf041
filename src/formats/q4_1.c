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

/* ggml's reference (quantize_row_q4_1_ref), byte for byte on data whose
 * scale and min fit fp16: d = (max - min) / 15, q = trunc((x - min) / d +
 * 0.5). Beyond fp16's range the scale and min saturate (kq__fp16_scale)
 * and the codes are computed against what is stored. */
void kq__q4_1_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        const float *x = src + i * KQ_QK4_0;
        kq_block_q4_1 b;
        float d, min;
        kq__affine_scale_min(x, KQ_QK4_0, 15, &b.d, &b.m, &d, &min);
        const float id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int q0 = kq__trunc_code((x[j] - min) * id + 0.5f, 15);
            const int q1 = kq__trunc_code((x[j + KQ_QK4_0 / 2] - min) * id + 0.5f, 15);
            b.qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
