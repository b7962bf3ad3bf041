/* IQ4_NL: blocks of 32, x = d * kq_iq4nl_values[q], q a 4-bit index into a
 * fixed non-linear grid (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
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
