/* IQ4_NL: blocks of 32, x = d * kq_iq4nl_values[q], q a 4-bit index into a
 * fixed non-linear grid (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "iq4_search.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__iq4_nl_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        kq_block_iq4_nl b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        float *y = dst + i * KQ_QK4_0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            y[j] = d * (float)kq_iq4nl_values[b.qs[j] & 0x0F];
            y[j + KQ_QK4_0 / 2] = d * (float)kq_iq4nl_values[b.qs[j] >> 4];
        }
    }
}

/* Searches the best scale over the grid (kq__iq4_search) and stores it as
 * the fp16 near it with the least error (kq__iq4_store_scale). */
void kq__iq4_nl_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        const float *x = src + i * KQ_QK4_0;
        kq_block_iq4_nl b;
        uint8_t L[KQ_QK4_0];
        const float d = kq__iq4_search(x, KQ_QK4_0, L);
        b.d = kq__iq4_store_scale(x, KQ_QK4_0, d, L);
        for (int j = 0; j < KQ_QK4_0 / 2; j++)
            b.qs[j] = (uint8_t)(L[j] | (L[j + KQ_QK4_0 / 2] << 4));
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
