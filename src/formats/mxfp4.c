/* MXFP4: blocks of 32 E2M1 (FP4) values sharing an E8M0 power-of-two scale:
 * x = 2^(e - 128) * kq_mxfp4_values[q] (the table holds the FP4 values
 * doubled; docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__mxfp4_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        kq_block_mxfp4 b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_e8m0_half(b.e);
        float *y = dst + i * KQ_QK4_0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            y[j] = d * (float)kq_mxfp4_values[b.qs[j] & 0x0F];
            y[j + KQ_QK4_0 / 2] = d * (float)kq_mxfp4_values[b.qs[j] >> 4];
        }
    }
}
