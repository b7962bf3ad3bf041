/* Q4_K: super-blocks of 256 in eight sub-blocks of 32, each with a 6-bit
 * scale and min: x = (d * sc_j) * q - (dmin * m_j), q 4-bit. The quantizer is
 * the reference search of docs/formats.md (nmax 15, rmin -1, rdelta 0.1, nstep 20;
 * kquant_search.c). */
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q4_K_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        kq_block_q4_K b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        const float min = kq_fp16_to_f32(b.dmin);
        float *y = dst + i * KQ_QK_K;
        const uint8_t *q = b.qs;
        for (int c = 0; c < 4; c++) { /* 64 elements: sub-blocks 2c and 2c+1 */
            uint8_t sc, m;
            kq_k4_scale_min(b.scales, 2 * c, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            kq_k4_scale_min(b.scales, 2 * c + 1, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) y[32 + l] = d2 * (float)(q[l] >> 4) - m2;
            y += 64;
            q += 32;
        }
    }
}

void kq__q4_K_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float *x = src + i * KQ_QK_K;
        kq_block_q4_K b;
        uint8_t L[KQ_QK_K];
        kq__quantize_k4_superblock(x, 15, -1.0f, 0.1f, 20, &b.d, &b.dmin, b.scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b.qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
