/* IQ4_XS: super-blocks of 256 in eight sub-blocks of 32, each with a signed
 * 6-bit scale: x = (d * ls_j) * kq_iq4nl_values[q] (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__iq4_xs_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        kq_block_iq4_xs b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        float *y = dst + i * KQ_QK_K;
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            const float dl = d * (float)kq_iq4xs_scale(&b, j);
            const uint8_t *qs = b.qs + 16 * j;
            for (int l = 0; l < 16; l++) {
                y[32 * j + l] = dl * (float)kq_iq4nl_values[qs[l] & 0x0F];
                y[32 * j + l + 16] = dl * (float)kq_iq4nl_values[qs[l] >> 4];
            }
        }
    }
}
