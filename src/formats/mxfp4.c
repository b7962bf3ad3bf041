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

/* Each element's nearest value under scale d as gguf-py picks it: the
 * first index of least |d * v - x| in the table's order. */
static void mxfp4_codes(const float *x, float d, uint8_t *L)
{
    for (int j = 0; j < KQ_QK4_0; j++) {
        int best = 0;
        float best_err = fabsf(d * (float)kq_mxfp4_values[0] - x[j]);
        for (int k = 1; k < 16; k++) {
            const float err = fabsf(d * (float)kq_mxfp4_values[k] - x[j]);
            if (err < best_err) {
                best_err = err;
                best = k;
            }
        }
        L[j] = (uint8_t)best;
    }
}

static double mxfp4_sse(const float *x, float d, const uint8_t *L)
{
    double sse = 0;
    for (int j = 0; j < KQ_QK4_0; j++) {
        const double diff = (double)(d * (float)kq_mxfp4_values[L[j]]) - x[j];
        sse += diff * diff;
    }
    return sse;
}

/* The exponent the max-based rule gives (gguf-py's: floor(log2(amax)) - 2,
 * so amax lands in [4, 8) grid units) and its two neighbours are each
 * tried with nearest codes; the least squared error wins, the max-based one
 * on a tie, so a block never comes out worse than gguf-py's quantizer. */
void kq__mxfp4_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK4_0; i++) {
        const float *x = src + i * KQ_QK4_0;
        float amax = 0;
        for (int j = 0; j < KQ_QK4_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        kq_block_mxfp4 b;
        uint8_t L[KQ_QK4_0];
        int e0 = 0;
        if (amax > 0 && amax < INFINITY) {
            int k;
            (void)frexpf(amax, &k); /* amax in [2^(k-1), 2^k) */
            e0 = kq__clamp_int(k - 1 - 2 + 127, 0, 255);
        }
        b.e = (uint8_t)e0;
        mxfp4_codes(x, kq_e8m0_half(b.e), L);
        double best = mxfp4_sse(x, kq_e8m0_half(b.e), L);
        for (int e = e0 - 1; e <= e0 + 1; e += 2) {
            if (e < 0 || e > 255 || amax == 0) continue;
            uint8_t cand[KQ_QK4_0];
            const float d = kq_e8m0_half((uint8_t)e);
            mxfp4_codes(x, d, cand);
            const double err = mxfp4_sse(x, d, cand);
            if (err < best) {
                best = err;
                b.e = (uint8_t)e;
                memcpy(L, cand, sizeof L);
            }
        }
        for (int j = 0; j < KQ_QK4_0 / 2; j++)
            b.qs[j] = (uint8_t)(L[j] | (L[j + KQ_QK4_0 / 2] << 4));
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
