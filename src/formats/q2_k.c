/* Q2_K: super-blocks of 256 in sixteen sub-blocks of 16, each with a 4-bit
 * scale and a 4-bit min: x = (d * sc_j) * q - (dmin * m_j), q 2-bit
 * (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q2_K_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        kq_block_q2_K b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        const float dmin = kq_fp16_to_f32(b.dmin);
        float *y = dst + i * KQ_QK_K;
        for (int e = 0; e < KQ_QK_K; e++) {
            const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
            const int j = e / 16; /* sub-block */
            const float dl = d * (float)(b.scales[j] & 0xF);
            const float ml = dmin * (float)(b.scales[j] >> 4);
            const int q = (b.qs[32 * half + l] >> shift) & 3;
            y[e] = dl * (float)q - ml;
        }
    }
}
