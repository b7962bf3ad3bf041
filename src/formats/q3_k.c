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

/* Sub-block j's signed 6-bit scale code k and the codes (-4..3) of its 16
 * elements minimising its decoded squared error under the stored
 * super-scale df: the codes within three of the nearest to the wanted
 * scale are tried. Returns the error. */
static double q3_pick(const float *x, float df, float want, int *k_out, int8_t *q)
{
    const int k0 = df != 0 ? kq__clamp_int(kq__nearest_int(want / df), -32, 31) : 0;
    double best = 0;
    int have = 0;
    for (int k = k0 - 3; k <= k0 + 3; k++) {
        if (k < -32 || k > 31) continue;
        const float dl = df * (float)k;
        int8_t cand[16];
        double e = 0;
        for (int l = 0; l < 16; l++) {
            cand[l] = dl != 0 ? (int8_t)kq__clamp_int(kq__nearest_int(x[l] / dl), -4, 3) : 0;
            const double diff = (double)(dl * (float)cand[l]) - x[l];
            e += diff * diff;
        }
        if (!have || e < best) {
            have = 1;
            best = e;
            *k_out = k;
            memcpy(q, cand, sizeof cand);
        }
    }
    return best;
}

/* The block's codes under one super-scale d (stored fp16, saturating,
 * subnormal-aware); returns the block's squared error. */
static double q3_encode(const float *x, const float *scales, float d, uint16_t *dh, int *k,
                        int8_t *q)
{
    *dh = kq__fp16_scale(d);
    (void)kq__subnormal_scale_inverse(d, dh, 0.0f);
    const float df = kq_fp16_to_f32(*dh);
    double sse = 0;
    for (int j = 0; j < KQ_QK_K / 16; j++)
        sse += q3_pick(x + 16 * j, df, scales[j], &k[j], q + 16 * j);
    return sse;
}

/* As the k-quant reference (ggml's quantize_row_q3_K_ref) in outline: per
 * 16-element sub-block a symmetric weighted least-squares search
 * (kq__search_scale_sym, nmax 4), the sixteen signed scales as 6-bit codes
 * under the fp16 super-scale d = s / -32 of the largest-magnitude one.
 * Beyond it: codes from the super-scale as stored (saturating,
 * subnormal-aware), the super-scale chosen among the max-based one and
 * four smaller ones, each sub-block's scale code among seven near the
 * wanted one, all by the decoded squared error; and the search runs on a
 * power-of-two scaled copy where |x| is extreme (kq__pow2_normalizer). */
void kq__q3_K_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float *x = src + i * KQ_QK_K;
        float amax = 0, xn[KQ_QK_K];
        for (int k = 0; k < KQ_QK_K; k++) amax = fmaxf(amax, fabsf(x[k]));
        const float norm = kq__pow2_normalizer(amax);
        for (int k = 0; k < KQ_QK_K; k++) xn[k] = x[k] * norm;

        float scales[KQ_QK_K / 16], max_s = 0;
        int8_t Ls[KQ_QK_K], q[KQ_QK_K];
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            scales[j] = kq__search_scale_sym(16, 4, xn + 16 * j, Ls + 16 * j) / norm;
            if (fabsf(scales[j]) > fabsf(max_s)) max_s = scales[j];
        }

        /* the super-scale that gives the largest scale code -32, and
         * smaller ones that trade its clipping for finer steps elsewhere */
        uint16_t dh = 0;
        int k[KQ_QK_K / 16];
        double best = q3_encode(x, scales, max_s / -32.0f, &dh, k, q);
        static const float shrink[4] = {0.95f, 0.9f, 0.85f, 0.8f};
        for (int t = 0; t < 4; t++) {
            uint16_t dh2;
            int k2[KQ_QK_K / 16];
            int8_t q2[KQ_QK_K];
            const double e = q3_encode(x, scales, max_s * shrink[t] / -32.0f, &dh2, k2, q2);
            if (e < best) {
                best = e;
                dh = dh2;
                memcpy(k, k2, sizeof k);
                memcpy(q, q2, sizeof q2);
            }
        }

        kq_block_q3_K b;
        memset(&b, 0, sizeof b);
        b.d = dh;
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            const unsigned ls = (unsigned)(k[j] + 32);
            if (j < 8) b.scales[j] |= (uint8_t)(ls & 0xF);
            else b.scales[j - 8] |= (uint8_t)((ls & 0xF) << 4);
            b.scales[8 + j % 4] |= (uint8_t)((ls >> 4) << (2 * (j / 4)));
        }
        for (int e = 0; e < KQ_QK_K; e++) {
            const int c = q[e] + 4; /* 0..7: bit 2 is the "no -4" high bit */
            if (c & 4) b.hmask[e % 32] |= (uint8_t)(1u << (e / 32));
            b.qs[32 * (e / 128) + e % 32] |= (uint8_t)((c & 3) << (2 * ((e % 128) / 32)));
        }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
