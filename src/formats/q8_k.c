/* Q8_K: the activation format of k-quant dot products (not a weight type).
 * Per 256 values: max = the value of largest magnitude (with its sign),
 * iscale = -127 / max, q = min(127, round_half_even(iscale * x)),
 * d = 1 / iscale (float32), bsums[g] = sum of the 16 q of group g. An
 * all-zero block has d = 0 and q = 0. x = d * q. */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q8_K_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        kq_block_q8_K b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        float *y = dst + i * KQ_QK_K;
        for (int j = 0; j < KQ_QK_K; j++) y[j] = b.d * (float)b.qs[j];
    }
}

void kq__q8_K_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float *x = src + i * KQ_QK_K;
        kq_block_q8_K b;
        float amax;
        const float max = kq__signed_absmax(x, KQ_QK_K, &amax);
        if (amax == 0) {
            memset(&b, 0, sizeof b);
        } else {
            const float iscale = -127.f / max;
            for (int j = 0; j < KQ_QK_K; j++)
                b.qs[j] = (int8_t)kq__clamp_int(kq__nearest_int(iscale * x[j]), -128, 127);
            for (int g = 0; g < KQ_QK_K / 16; g++) {
                int sum = 0;
                for (int k = 0; k < 16; k++) sum += b.qs[16 * g + k];
                b.bsums[g] = (int16_t)sum;
            }
            b.d = 1 / iscale;
        }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
