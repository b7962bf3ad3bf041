/* Q3_K: super-blocks of 256 in sixteen sub-blocks of 16, each with a signed
 * 6-bit scale: x = (d * sc_j) * q, q = 2 low bits - 4 unless the high bit is
 * set (-4..3; docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q3_K_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        kq_block_q3_K b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        int8_t sc[16];
        kq_q3k_scales(b.scales, sc);
        float *y = dst + i * KQ_QK_K;
        for (int e = 0; e < KQ_QK_K; e++) {
            const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
            const float dl = d * (float)sc[e / 16];
            const int lo = (b.qs[32 * half + l] >> shift) & 3;
            const int hbit = (b.hmask[l] >> (e / 32)) & 1;
            y[e] = dl * (float)(lo - (hbit ? 0 : 4));
        }
    }
}
