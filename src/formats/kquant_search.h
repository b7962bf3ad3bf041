/* Shared pieces of the reference quantizers: rounding, fp16 scale storage,
 * the 6-bit scale packing of Q4_K/Q5_K, and the per-sub-block searches for a
 * scale (and min) minimising a weighted squared error (docs/formats.md,
 * "Reference quantizers"). */
#ifndef KQ_FORMATS_KQUANT_SEARCH_H
#define KQ_FORMATS_KQUANT_SEARCH_H

#include <stdint.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"

/* The element of largest magnitude, with its sign (the first of equals;
 * NaNs are passed over); *amax gets its magnitude. All-zero gives 0. */
static inline float kq__signed_absmax(const float *x, int n, float *amax)
{
    float max = 0, a = 0;
    for (int i = 0; i < n; i++) {
        const float ax = x[i] < 0 ? -x[i] : x[i];
        if (ax > a) {
            a = ax;
            max = x[i];
        }
    }
    *amax = a;
    return max;
}

/* Round half to even to int, for |f| < 2^22 exact; larger magnitudes clamp
 * to +-4194303 and NaN gives 0, so no input is undefined behaviour. Adding
 * 1.5 * 2^23 leaves the rounded integer in the low mantissa bits; this needs
 * float arithmetic in float precision (FLT_EVAL_METHOD 0, as on x86-64 SSE
 * and AArch64). */
static inline int kq__nearest_int(float f)
{
    if (f != f) return 0;
    if (f > 4194303.f) f = 4194303.f;
    if (f < -4194303.f) f = -4194303.f;
    const float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int kq__clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* A scale as fp16, rounding to nearest even, but saturating to +-65504
 * instead of overflowing to infinity (an infinite scale would decode every
 * element of its block to inf or NaN). NaN stays NaN. */
uint16_t kq__fp16_scale(float d);

/* Whether d is beyond fp16's range, so kq__fp16_scale saturated it. */
static inline int kq__fp16_saturated(float d) { return (kq_f32_to_fp16(d) & 0x7fffu) == 0x7c00u; }

/* The scale and min of an affine block (q4_1, q5_1: x = d * q + m with q in
 * 0..levels), as ggml's reference forms them: min and max of the n values,
 * d = (max - min) / levels. *d16 and *m16 get them as fp16 (saturating);
 * *d and *min the values to quantize against: the float ones, as the
 * reference uses, unless fp16 saturated, then what a decoder will see. */
void kq__affine_scale_min(const float *x, int n, int levels, uint16_t *d16, uint16_t *m16,
                          float *d, float *min);

/* trunc(v) limited to 0..hi, NaN to 0 (a float -> int cast of an
 * out-of-range value would be undefined). */
static inline int kq__trunc_code(float v, int hi)
{
    if (!(v > 0)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* Beyond the reference: when a super-scale `want` lands in fp16's subnormal
 * range or rounds to zero (*h holds kq__fp16_scale(want)), the stored value
 * keeps few bits and codes computed against `want` decode far from the data.
 * Then a zero becomes the smallest subnormal of want's sign, and the function
 * returns 1 / stored, so the codes are computed against what a decoder sees.
 * Otherwise (normal range: every ordinary block) it returns `inv` unchanged,
 * keeping the reference's output byte for byte. */
float kq__subnormal_scale_inverse(float want, uint16_t *h, float inv);

/* A power of two s with amax * s in [1, 2) when amax lies outside
 * [2^-20, 2^20], else 1. The searches weight squared errors by |x| or x^2,
 * so their float sums grow as x^3: past ~5e12 they overflow to inf and the
 * block decodes to zeros (issue 17), and far below 1e-13 they underflow.
 * Callers search on x * s and divide the scales found by s; multiplying by
 * a power of two is exact, so every rounding (and the result) is the
 * same as without it wherever the unscaled sums did not overflow or
 * underflow, and ordinary blocks (|x| within 2^+-20) are not touched. */
float kq__pow2_normalizer(float amax);

/* Packs eight 6-bit scales and mins (each 0..63) into scales[12], the
 * inverse of blocks.h's kq_k4_scale_min. */
void kq__set_scales_mins_k4(uint8_t s[KQ_K_SCALE_SIZE], const uint8_t ls[8], const uint8_t lm[8]);

/* Asymmetric search (ggml's make_qkx2_quants): over iscale =
 * (nmax + rmin + rdelta * i) / (max - min), i = 0..nstep, quantizes
 * L = clamp(round(iscale * (x - min)), 0, nmax), solves the weighted least
 * squares for (scale, min) with min clamped to <= 0, and keeps the pair with
 * the smallest weighted squared error. Returns the scale; *the_min = -min
 * (>= 0); L (n entries) holds the codes. laux is scratch of n bytes. */
float kq__search_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *the_min, uint8_t *laux, float rmin, float rdelta, int nstep);

/* Symmetric search (ggml's make_qx_quants, weights x^2): over iscale =
 * -(nmax + 0.1 i) / max, i = 0, -9..9, L = clamp(round(iscale * x), -nmax,
 * nmax - 1), least-squares scale; keeps the best. Returns the scale; L holds
 * the codes offset by nmax (0..2 nmax - 1). A block of |x| < 1e-15 gives 0. */
float kq__search_scale_sym(int n, int nmax, const float *x, int8_t *L);

/* The Q4_K/Q5_K super-block: searches each 32-element sub-block
 * (weights sqrt(mean(x^2)) + |x|), quantizes the 8 scales and 8 mins to 6 bits
 * under fp16 super-scales, then re-quantizes every element against the
 * decoded scales. Writes d, dmin, scales[12] and L[256] (codes 0..nmax).
 * Where a super-scale would be an fp16 subnormal, a subnormal-aware encoding
 * is tried as well and the one with the smaller squared error kept. */
void kq__quantize_k4_superblock(const float *x, int nmax, float rmin, float rdelta, int nstep,
                                uint16_t *d, uint16_t *dmin, uint8_t scales[KQ_K_SCALE_SIZE],
                                uint8_t L[KQ_QK_K]);

#endif
