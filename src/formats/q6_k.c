/* Q6_K: super-blocks of 256 in sixteen sub-blocks of 16 with int8 scales:
 * x = (d * sc_j) * (q - 32), q 6-bit (low 4 bits in ql, high 2 in qh). The
 * quantizer is the reference of docs/formats.md: a symmetric weighted search per
 * sub-block (kquant_search.c), the 16 scales to int8 under d = max_scale /
 * -128, then every element re-quantized against the decoded scales. Blocks
 * so small that the super-scale is an fp16 subnormal also try a
 * subnormal-aware encoding and keep the better one. */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"
#include "rows.h"

void kq__q6_K_to_float(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        kq_block_q6_K b;
        memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
        const float d = kq_fp16_to_f32(b.d);
        float *y = dst + i * KQ_QK_K;
        for (int h = 0; h < 2; h++) { /* two halves of 128 */
            const uint8_t *ql = b.ql + 64 * h;
            const uint8_t *qh = b.qh + 32 * h;
            const int8_t *sc = b.scales + 8 * h;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
        }
    }
}

/* One encoding of a Q6_K super-block from the searched sub-block scales.
 * fix = 0 is the reference; fix = 1 quantizes the int8 scales against a
 * subnormal (or zero-rounded) fp16 super-scale as stored
 * (kq__subnormal_scale_inverse). */
typedef struct q6_encoding {
    uint16_t d;
    int8_t scales[KQ_QK_K / 16];
    int8_t L[KQ_QK_K]; /* codes 0..63 */
} q6_encoding;

static void q6_encode(const float *x, const float *sub_scale, float max_scale,
                      const int8_t *L_search, int fix, q6_encoding *e)
{
    memcpy(e->L, L_search, KQ_QK_K);
    float iscale = -128.f / max_scale;
    e->d = kq__fp16_scale(1 / iscale);
    if (fix) iscale = kq__subnormal_scale_inverse(1 / iscale, &e->d, iscale);
    for (int j = 0; j < KQ_QK_K / 16; j++)
        e->scales[j] = (int8_t)kq__clamp_int(kq__nearest_int(iscale * sub_scale[j]), -128, 127);

    /* re-quantize against what a decoder will see */
    const float df = kq_fp16_to_f32(e->d);
    for (int j = 0; j < KQ_QK_K / 16; j++) {
        const float dd = df * e->scales[j];
        if (dd == 0) continue; /* decodes to 0 whatever the code */
        for (int k = 0; k < 16; k++) {
            const int l = kq__nearest_int(x[16 * j + k] / dd);
            e->L[16 * j + k] = (int8_t)(kq__clamp_int(l, -32, 31) + 32);
        }
    }
}

static double q6_sse(const float *x, const q6_encoding *e)
{
    const float df = kq_fp16_to_f32(e->d);
    double sse = 0;
    for (int i = 0; i < KQ_QK_K; i++) {
        const double diff = (double)(df * (float)e->scales[i / 16] * (float)(e->L[i] - 32)) - x[i];
        sse += diff * diff;
    }
    return sse;
}

void kq__q6_K_from_float(const float *src, void *dst, int64_t n)
{
    unsigned char *p = dst;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float *x = src + i * KQ_QK_K;
        kq_block_q6_K b;
        int8_t L_search[KQ_QK_K];
        float scales[KQ_QK_K / 16];
        float max_scale = 0, max_abs_scale = 0;
        /* the search weights by x^2 (sums of x^3): run it on a copy scaled
         * by a power of two where |x| is extreme (kq__pow2_normalizer) */
        float amax = 0, xn[KQ_QK_K];
        for (int k = 0; k < KQ_QK_K; k++) amax = fmaxf(amax, fabsf(x[k]));
        const float norm = kq__pow2_normalizer(amax);
        for (int k = 0; k < KQ_QK_K; k++) xn[k] = x[k] * norm;
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            scales[j] = kq__search_scale_sym(16, 32, xn + 16 * j, L_search + 16 * j) / norm;
            if (fabsf(scales[j]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < 1e-15f) { /* all (nearly) zero: an all-zero block */
            memset(&b, 0, sizeof b);
            memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
            continue;
        }

        q6_encoding best, alt;
        q6_encode(x, scales, max_scale, L_search, 0, &best);
        /* a tiny block whose super-scale fp16 keeps only as a subnormal (or
         * zero): also try the subnormal-aware encoding, keep the better */
        if ((kq__fp16_scale(max_scale / -128.f) & 0x7c00u) == 0) {
            q6_encode(x, scales, max_scale, L_search, 1, &alt);
            if (q6_sse(x, &alt) < q6_sse(x, &best)) best = alt;
        }
        b.d = best.d;
        memcpy(b.scales, best.scales, sizeof b.scales);

        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = best.L + 128 * h;
            uint8_t *ql = b.ql + 64 * h;
            uint8_t *qh = b.qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                const int q1 = Lh[l], q2 = Lh[l + 32], q3 = Lh[l + 64], q4 = Lh[l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
        memcpy(p + (size_t)i * sizeof b, &b, sizeof b);
    }
}
