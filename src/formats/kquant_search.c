/* The scale searches shared by the k-quant reference quantizers. These follow
 * the widely used ggml reference algorithms (docs/formats.md), in float, with the
 * same operation order, so their output is that reference's byte for byte on
 * ordinary data. Additions, none of which can make a block's error worse:
 * - fp16 super-scales saturate at 65504 instead of becoming infinite, and
 *   rounding clamps instead of overflowing an int (no undefined behaviour);
 * - a block so small that a super-scale is an fp16 subnormal (k-quants of
 *   weights with std below ~1e-3 .. 1e-2) is also encoded against the scale
 *   as stored, and the encoding with the smaller squared error is kept. */
#include "kquant_search.h"

#include <math.h>

#include "kquant.h"

uint16_t kq__fp16_scale(float d)
{
    uint16_t h = kq_f32_to_fp16(d);
    if ((h & 0x7fffu) == 0x7c00u) h = (uint16_t)((h & 0x8000u) | 0x7bffu);
    return h;
}

void kq__affine_scale_min(const float *x, int n, int levels, uint16_t *d16, uint16_t *m16,
                          float *d, float *min)
{
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    float s = (hi - lo) / (float)levels;
    *d16 = kq__fp16_scale(s);
    *m16 = kq__fp16_scale(lo);
    if (kq__fp16_saturated(s) || kq__fp16_saturated(lo)) {
        s = kq_fp16_to_f32(*d16);
        lo = kq_fp16_to_f32(*m16);
    }
    *d = s;
    *min = lo;
}

float kq__subnormal_scale_inverse(float want, uint16_t *h, float inv)
{
    if (!(want != 0) || (*h & 0x7c00u) != 0) return inv; /* zero/NaN wanted, or a normal half */
    if ((*h & 0x7fffu) == 0) *h = (uint16_t)((*h & 0x8000u) | 1u);
    return 1.0f / kq_fp16_to_f32(*h);
}

float kq__pow2_normalizer(float amax)
{
    if (!(amax > 0) || !(amax < INFINITY)) return 1.0f;
    if (amax >= 0x1p-20f && amax <= 0x1p20f) return 1.0f;
    int e;
    (void)frexpf(amax, &e); /* amax = m * 2^e, m in [0.5, 1) */
    int shift = 1 - e;
    if (shift > 126) shift = 126; /* 2^127 would overflow: stop just short of [1, 2) */
    return ldexpf(1.0f, shift);
}

void kq__set_scales_mins_k4(uint8_t s[KQ_K_SCALE_SIZE], const uint8_t ls[8], const uint8_t lm[8])
{
    for (int j = 0; j < 4; j++) {
        s[j] = ls[j] & 63;
        s[j + 4] = lm[j] & 63;
    }
    for (int j = 4; j < 8; j++) {
        s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
        s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
        s[j] |= (uint8_t)((lm[j] >> 4) << 6);
    }
}

float kq__search_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *the_min, uint8_t *laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) { /* all equal and <= 0 (all zero included): the min says it all */
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }

    /* start: the plain min/max grid */
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = kq__clamp_int(kq__nearest_int(iscale * (x[i] - min)), 0, nmax);
        L[i] = (uint8_t)l;
        const float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }

    /* As in ggml, a better (scale, min) found at one step replaces `min`, so
     * later steps' grids start from it (their max - min included). */
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = kq__clamp_int(kq__nearest_int(iscale * (x[i] - min)), 0, nmax);
            laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        /* weighted least squares for x ~ scale * l + min */
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue; /* D > 0 implies sum_l2 > 0 below */
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float cur_error = 0;
        for (int i = 0; i < n; i++) {
            const float diff = this_scale * laux[i] + this_min - x[i];
            cur_error += w[i] * (diff * diff);
        }
        if (cur_error < best_error) {
            memcpy(L, laux, (size_t)n);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

float kq__search_scale_sym(int n, int nmax, const float *x, int8_t *L)
{
    float amax;
    const float max = kq__signed_absmax(x, n, &amax);
    if (amax < 1e-15f) { /* all (nearly) zero */
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }

    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = kq__clamp_int(kq__nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;

    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = kq__clamp_int(kq__nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = kq__clamp_int(kq__nearest_int(iscale * x[i]), -nmax, nmax - 1);
                L[i] = (int8_t)(l + nmax);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* One encoding of a Q4_K/Q5_K super-block from the searched sub-block scales
 * and mins. fix = 0 is the reference; fix = 1 applies the subnormal
 * super-scale handling (kq__subnormal_scale_inverse) and gives sub-blocks
 * left without a scale the min that best matches their mean. */
typedef struct k4_encoding {
    uint16_t d, dmin;
    uint8_t scales[KQ_K_SCALE_SIZE];
    uint8_t L[KQ_QK_K];
} k4_encoding;

static void k4_encode(const float *x, int nmax, const float *sub_scale, const float *sub_min,
                      float max_scale, float max_min, const uint8_t *L_search, int fix,
                      k4_encoding *e)
{
    memcpy(e->L, L_search, KQ_QK_K);
    e->d = kq__fp16_scale(max_scale / 63.f);
    e->dmin = kq__fp16_scale(max_min / 63.f);
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    if (fix) {
        inv_scale = kq__subnormal_scale_inverse(max_scale / 63.f, &e->d, inv_scale);
        inv_min = kq__subnormal_scale_inverse(max_min / 63.f, &e->dmin, inv_min);
    }
    const float df = kq_fp16_to_f32(e->d), mf = kq_fp16_to_f32(e->dmin);

    /* 6-bit codes of the scales and mins under the fp16 super-scales */
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)kq__clamp_int(kq__nearest_int(inv_scale * sub_scale[j]), 0, 63);
        lm[j] = (uint8_t)kq__clamp_int(kq__nearest_int(inv_min * sub_min[j]), 0, 63);
        if (fix && df * ls[j] == 0 && mf > 0) { /* decodes to the constant -dmin * m */
            float sum = 0;
            for (int i = 0; i < 32; i++) sum += x[32 * j + i];
            lm[j] = (uint8_t)kq__clamp_int(kq__nearest_int(-(sum / 32) / mf), 0, 63);
        }
    }
    kq__set_scales_mins_k4(e->scales, ls, lm);

    /* re-quantize against what a decoder will see */
    for (int j = 0; j < 8; j++) {
        const float dd = df * ls[j];
        if (dd == 0) continue; /* every element decodes to -dm whatever its code */
        const float dm = mf * lm[j];
        for (int i = 0; i < 32; i++) {
            const int l = kq__nearest_int((x[32 * j + i] + dm) / dd);
            e->L[32 * j + i] = (uint8_t)kq__clamp_int(l, 0, nmax);
        }
    }
}

/* Squared error of an encoding, decoded as the format defines. */
static double k4_sse(const float *x, const k4_encoding *e)
{
    const float df = kq_fp16_to_f32(e->d), mf = kq_fp16_to_f32(e->dmin);
    double sse = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        kq_k4_scale_min(e->scales, j, &sc, &m);
        const float d1 = df * sc, m1 = mf * m;
        for (int i = 0; i < 32; i++) {
            const double diff = (double)(d1 * (float)e->L[32 * j + i] - m1) - x[32 * j + i];
            sse += diff * diff;
        }
    }
    return sse;
}

/* A positive super-scale that fp16 stores as a subnormal or zero. */
static int subnormal_half(float want) { return want > 0 && (kq__fp16_scale(want) & 0x7c00u) == 0; }

void kq__quantize_k4_superblock(const float *x, int nmax, float rmin, float rdelta, int nstep,
                                uint16_t *d, uint16_t *dmin, uint8_t scales[KQ_K_SCALE_SIZE],
                                uint8_t L[KQ_QK_K])
{
    float sub_scale[KQ_QK_K / 32], sub_min[KQ_QK_K / 32];
    float w[32];
    uint8_t laux[32], L_search[KQ_QK_K];
    float max_scale = 0, max_min = 0; /* the min is subtracted: both are >= 0 */

    /* search on a copy scaled by a power of two where |x| is extreme
     * (kq__pow2_normalizer); the scales and mins found are scaled back */
    float amax = 0;
    for (int i = 0; i < KQ_QK_K; i++) amax = fmaxf(amax, fabsf(x[i]));
    const float norm = kq__pow2_normalizer(amax);
    float xn[KQ_QK_K];
    for (int i = 0; i < KQ_QK_K; i++) xn[i] = x[i] * norm;

    for (int j = 0; j < KQ_QK_K / 32; j++) {
        const float *xs = xn + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xs[l]);
        sub_scale[j] = kq__search_scale_min(32, nmax, xs, w, L_search + 32 * j, &sub_min[j], laux,
                                            rmin, rdelta, nstep);
        sub_scale[j] /= norm;
        sub_min[j] /= norm;
        if (sub_scale[j] > max_scale) max_scale = sub_scale[j];
        if (sub_min[j] > max_min) max_min = sub_min[j];
    }

    k4_encoding best, alt;
    k4_encode(x, nmax, sub_scale, sub_min, max_scale, max_min, L_search, 0, &best);
    /* Tiny blocks, whose super-scales fp16 keeps only as subnormals (or
     * zero): also try the subnormal-aware encoding, keep the better. */
    if (subnormal_half(max_scale / 63.f) || subnormal_half(max_min / 63.f)) {
        k4_encode(x, nmax, sub_scale, sub_min, max_scale, max_min, L_search, 1, &alt);
        if (k4_sse(x, &alt) < k4_sse(x, &best)) best = alt;
    }
    *d = best.d;
    *dmin = best.dmin;
    memcpy(scales, best.scales, KQ_K_SCALE_SIZE);
    memcpy(L, best.L, KQ_QK_K);
}
