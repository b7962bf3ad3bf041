/* Q5_K: Q4_K with a fifth bit per element: x = (d * sc_j) * (q4 + 16 hb) -
 * (dmin * m_j). For chunk c (64 elements), the high bit of element 64c + l is
 * bit 2c of qh[l], of element 64c + 32 + l bit 2c + 1. The quantizer is the
 * reference search of docs/formats.md (nmax 31, rmin -0.5, rdelta 0.1, nstep 15). */
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q5_K_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        kq_block_q5_K b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        const float min = kq_fp16_to_f32(b.dmin);
        float *y = dst + i * KQ_QK_K;
        const uint8_t *ql = b.qs;
        for (int c = 0; c < 4; c++) {
            const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
            uint8_t sc, m;
            kq_k4_scale_min(b.scales, 2 * c, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            kq_k4_scale_min(b.scales, 2 * c + 1, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                y[l] = d1 * (float)((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                y[32 + l] = d2 * (float)((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
            y += 64;
            ql += 32;
        }
    }
}

void kq__q5_K_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float *x = src + i * KQ_QK_K;
        kq_block_q5_K b;
        uint8_t L[KQ_QK_K];
        kq__quantize_k4_superblock(x, 31, -0.5f, 0.1f, 15, &b.d, &b.dmin, b.scales, L);
        memset(b.qh, 0, sizeof b.qh);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                if (l1 > 15) {
                    l1 -= 16;
                    b.qh[l] |= (uint8_t)(1u << (2 * c));
                }
                if (l2 > 15) {
                    l2 -= 16;
                    b.qh[l] |= (uint8_t)(2u << (2 * c));
                }
                b.qs[32 * c + l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
