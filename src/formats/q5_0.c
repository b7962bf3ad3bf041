/* Q5_0: blocks of 32, x = d * (q - 16), q 5-bit: a nibble in qs and the
 * fifth bit in the 32-bit word qh (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

/* qh as the little-endian word the format defines. */
static uint32_t load_qh(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

void kq__q5_0_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        kq_block_q5_0 b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        const uint32_t qh = load_qh(b.qh);
        float *y = dst + i * KQ_QK4_0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int q0 = (int)((b.qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16;
            const int q1 = (int)((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
            y[j] = d * (float)q0;
            y[j + KQ_QK4_0 / 2] = d * (float)q1;
        }
    }
}

/* ggml's reference (quantize_row_q5_0_ref), byte for byte where the scale
 * fits fp16: d = max / -16 (max the element of largest magnitude), q =
 * trunc(x / d + 16.5) limited to 31. A saturated scale is used as stored. */
void kq__q5_0_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        const float *x = src + i * KQ_QK4_0;
        float amax;
        const float max = kq__signed_absmax(x, KQ_QK4_0, &amax);
        const float d = max / -16;
        kq_block_q5_0 b;
        b.d = kq__fp16_scale(d);
        float id = d != 0 ? 1.0f / d : 0.0f;
        if (kq__fp16_saturated(d)) id = 1.0f / kq_fp16_to_f32(b.d);
        uint32_t qh = 0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int q0 = kq__trunc_code(x[j] * id + 16.5f, 31);
            const int q1 = kq__trunc_code(x[j + KQ_QK4_0 / 2] * id + 16.5f, 31);
            b.qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + KQ_QK4_0 / 2);
        }
        for (int k = 0; k < 4; k++) b.qh[k] = (uint8_t)(qh >> (8 * k));
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
