/* IQ4_XS: super-blocks of 256 in eight sub-blocks of 32, each with a signed
 * 6-bit scale: x = (d * ls_j) * kq_iq4nl_values[q] (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "iq4_search.h"
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

/* Sub-block j's six-bit scale code k (value d * k, k in -32..31) and codes
 * minimising its squared error, trying the nearest k to the wanted scale
 * and its neighbours. Returns the error; L gets the codes. */
static double iq4xs_pick(const float *x, float df, float want, int *k_out, uint8_t *L)
{
    int k0 = df != 0 ? kq__clamp_int(kq__nearest_int(want / df), -32, 31) : 0;
    double best = 0;
    int have = 0;
    uint8_t cand[32];
    for (int k = k0 - 1; k <= k0 + 1; k++) {
        if (k < -32 || k > 31) continue;
        const float dl = df * (float)k;
        kq__iq4_codes(x, 32, dl, cand);
        const double e = kq__iq4_sse(x, 32, dl, cand);
        if (!have || e < best) { /* the first candidate stands if all are inf */
            have = 1;
            best = e;
            *k_out = k;
            memcpy(L, cand, sizeof cand);
        }
    }
    return best;
}

/* Each 32-element sub-block searches its own best scale over the grid
 * (kq__iq4_search); the super-scale d = s / -32 of the largest-magnitude
 * one s (stored fp16, saturating, subnormal-aware) makes the 6-bit codes,
 * each chosen among the nearest and its neighbours by the squared error of
 * the sub-block re-quantized under it. */
void kq__iq4_xs_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float *x = src + i * KQ_QK_K;
        kq_block_iq4_xs b;
        uint8_t L[KQ_QK_K];
        float sub[KQ_QK_K / 32], max_s = 0;
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            sub[j] = kq__iq4_search(x + 32 * j, 32, L + 32 * j);
            if (fabsf(sub[j]) > fabsf(max_s)) max_s = sub[j];
        }
        const float d = max_s / -32.0f;
        b.d = kq__fp16_scale(d);
        (void)kq__subnormal_scale_inverse(d, &b.d, 0.0f);
        const float df = kq_fp16_to_f32(b.d);
        b.scales_h = 0;
        memset(b.scales_l, 0, sizeof b.scales_l);
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            int k = 0;
            iq4xs_pick(x + 32 * j, df, sub[j], &k, L + 32 * j);
            const unsigned ls = (unsigned)(k + 32);
            b.scales_l[j / 2] |= (uint8_t)((ls & 0xF) << (4 * (j % 2)));
            b.scales_h |= (uint16_t)((ls >> 4) << (2 * j));
            for (int l = 0; l < 16; l++)
                b.qs[16 * j + l] = (uint8_t)(L[32 * j + l] | (L[32 * j + l + 16] << 4));
        }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
