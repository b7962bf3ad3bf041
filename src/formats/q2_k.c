/* Q2_K: super-blocks of 256 in sixteen sub-blocks of 16, each with a 4-bit
 * scale and a 4-bit min: x = (d * sc_j) * q - (dmin * m_j), q 2-bit
 * (docs/formats.md). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q2_K_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        kq_block_q2_K b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        const float dmin = kq_fp16_to_f32(b.dmin);
        float *y = dst + i * KQ_QK_K;
        for (int e = 0; e < KQ_QK_K; e++) {
            const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
            const int j = e / 16; /* sub-block */
            const float dl = d * (float)(b.scales[j] & 0xF);
            const float ml = dmin * (float)(b.scales[j] >> 4);
            const int q = (b.qs[32 * half + l] >> shift) & 3;
            y[e] = dl * (float)q - ml;
        }
    }
}

/* Sub-block j's 4-bit scale and min codes (k, m) near the wanted ones, with
 * the codes of its 16 elements, minimising its squared error as decoded:
 * every pair within one step of the nearest is tried, each with its
 * elements' nearest codes (optimal for a fixed pair, the grid being even). */
static void q2_pick(const float *x, float df, float mf, float want_scale, float want_min, int *k_out,
                    int *m_out, uint8_t *L)
{
    const int k0 = df != 0 ? kq__clamp_int(kq__nearest_int(want_scale / df), 0, 15) : 0;
    const int m0 = mf != 0 ? kq__clamp_int(kq__nearest_int(want_min / mf), 0, 15) : 0;
    double best = 0;
    int have = 0;
    for (int k = k0 - 1; k <= k0 + 1; k++) {
        for (int m = m0 - 1; m <= m0 + 1; m++) {
            if (k < 0 || k > 15 || m < 0 || m > 15) continue;
            const float dd = df * (float)k, dm = mf * (float)m;
            uint8_t cand[16];
            double e = 0;
            for (int l = 0; l < 16; l++) {
                cand[l] = dd != 0 ? (uint8_t)kq__clamp_int(kq__nearest_int((x[l] + dm) / dd), 0, 3) : 0;
                const double diff = (double)(dd * (float)cand[l] - dm) - x[l];
                e += diff * diff;
            }
            if (!have || e < best) {
                have = 1;
                best = e;
                *k_out = k;
                *m_out = m;
                memcpy(L, cand, sizeof cand);
            }
        }
    }
}

/* As the k-quant reference (ggml's quantize_row_q2_K_ref): per 16-element
 * sub-block the weighted least-squares (scale, min) search of
 * kquant_search.c with weights |x| (nmax 3, rmin -0.5, rdelta 0.1, nstep
 * 15), the sixteen scales and mins as 4-bit codes under fp16 super-scales
 * max / 15. Beyond it: the codes come from the super-scales as stored
 * (saturating, subnormal-aware), each sub-block's pair is refined among
 * its neighbours by the decoded squared error, and the search runs on a
 * power-of-two scaled copy where |x| is extreme (kq__pow2_normalizer). */
void kq__q2_K_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float *x = src + i * KQ_QK_K;
        float amax = 0, xn[KQ_QK_K];
        for (int k = 0; k < KQ_QK_K; k++) amax = fmaxf(amax, fabsf(x[k]));
        const float norm = kq__pow2_normalizer(amax);
        for (int k = 0; k < KQ_QK_K; k++) xn[k] = x[k] * norm;

        float scales[KQ_QK_K / 16], mins[KQ_QK_K / 16], w[16];
        uint8_t L[KQ_QK_K], laux[16];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(xn[16 * j + l]);
            scales[j] = kq__search_scale_min(16, 3, xn + 16 * j, w, L + 16 * j, &mins[j], laux,
                                             -0.5f, 0.1f, 15) / norm;
            mins[j] /= norm;
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }

        kq_block_q2_K b;
        b.d = kq__fp16_scale(max_scale / 15);
        (void)kq__subnormal_scale_inverse(max_scale / 15, &b.d, 0.0f);
        b.dmin = kq__fp16_scale(max_min / 15);
        (void)kq__subnormal_scale_inverse(max_min / 15, &b.dmin, 0.0f);
        const float df = kq_fp16_to_f32(b.d), mf = kq_fp16_to_f32(b.dmin);
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            int k = 0, m = 0;
            q2_pick(x + 16 * j, df, mf, scales[j], mins[j], &k, &m, L + 16 * j);
            b.scales[j] = (uint8_t)(k | (m << 4));
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *Lh = L + 128 * h + l;
                b.qs[32 * h + l] = (uint8_t)(Lh[0] | (Lh[32] << 2) | (Lh[64] << 4) | (Lh[96] << 6));
            }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
