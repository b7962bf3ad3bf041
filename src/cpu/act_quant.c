/* Activation quantization: one row of floats into int8 blocks with one float
 * scale per block (kq_act32 / kq_act256 of ukernel.h), done once per call and
 * read by every micro-kernel of every ISA. Plain C that the compiler
 * vectorizes; the bytes are the same on every machine, so the ISAs differ
 * only in how their kernels round partial sums.
 *
 * Rounding: q = round-half-even(x / d), d = amax / 127. x / d lies in
 * [-127, 127] up to one rounding, so the clamp only guards that rounding. The
 * 1.5 * 2^23 trick rounds half to even in the default rounding mode and
 * vectorizes on any x86-64 (roundps needs SSE4.1). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "formats/formats.h"
#include "formats/type_list.h"
#include "kquant.h"
#include "cpu_features.h"
#include "ukernel.h"

/* From type_list.h's act column: a quantized type without one is a compile
 * error there, and a type outside the list (float weights) gets -1. */
int kq__act_kind_of(int weight_type)
{
    switch (weight_type) {
#define KQ_ACT_CASE(id, name, block, elems, act) \
    case id:                                     \
        return (act) == 32 ? KQ_ACT_32 : KQ_ACT_256;
        KQ_QUANT_TYPES(KQ_ACT_CASE)
#undef KQ_ACT_CASE
    default:
        return -1;
    }
}

/* Quantizes n values; returns d. Non-finite input: q = 0 and d = NaN, so
 * every dot product with the block comes out NaN as the reference's would
 * come out non-finite. */
static float quantize_block_plain(const float *x, int8_t *q, size_t n)
{
    float amax = 0.0f;
    int finite = 1;
    for (size_t j = 0; j < n; j++) {
        float a = fabsf(x[j]);
        finite &= a <= FLT_MAX;
        amax = a > amax ? a : amax;
    }
    float d = amax / 127.0f;
    if (!finite || d == 0.0f) {
        memset(q, 0, n);
        return finite ? 0.0f : NAN;
    }
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    for (size_t j = 0; j < n; j++) {
        float v = x[j] / d;
        v = v > 127.0f ? 127.0f : v;
        v = v < -127.0f ? -127.0f : v;
        q[j] = (int8_t)(int)((v + magic) - magic);
    }
    return d;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KQ_ACT_AVX2 1

/* The same operations as quantize_block_plain, 8 lanes at a time (the
 * compiler left the plain loops scalar: 6% of a Gemma 3 270M prefill on 2
 * cores). Each step is the lane-wise twin of the plain one: maxps(a, amax)
 * is `a > amax ? a : amax`, minps(127, v) is `v > 127 ? 127 : v`, the
 * division and the two additions are the same IEEE operations, so the
 * bytes are the same. n is a multiple of 32. */
__attribute__((target("avx2"))) static float quantize_block_avx2(const float *x, int8_t *q,
                                                                 size_t n)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 big = _mm256_set1_ps(FLT_MAX);
    __m256 amax = _mm256_setzero_ps();
    int finite = 1;
    for (size_t j = 0; j < n; j += 8) {
        __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask);
        finite &= _mm256_movemask_ps(_mm256_cmp_ps(a, big, _CMP_LE_OQ)) == 0xff;
        amax = _mm256_max_ps(a, amax);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float d = _mm_cvtss_f32(m4) / 127.0f;
    if (!finite || d == 0.0f) {
        memset(q, 0, n);
        return finite ? 0.0f : NAN;
    }
    const __m256 vd = _mm256_set1_ps(d), magic = _mm256_set1_ps(12582912.0f);
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    for (size_t j = 0; j < n; j += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            __m256 t = _mm256_div_ps(_mm256_loadu_ps(x + j + 8 * k), vd);
            t = _mm256_max_ps(lo, _mm256_min_ps(hi, t));
            v[k] = _mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(t, magic), magic));
        }
        /* packs work per 128-bit lane: the permute puts the 32 bytes back
         * in order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(q + j), p);
    }
    return d;
}

#endif

typedef float (*block_fn)(const float *x, int8_t *q, size_t n);

/* The body for this CPU, chosen once per row (both block sizes are
 * multiples of 32). */
static block_fn pick_block(void)
{
#ifdef KQ_ACT_AVX2
    if (kq__cpu_features()->avx2) return quantize_block_avx2;
#endif
    return quantize_block_plain;
}

static void quantize_32(block_fn quantize_block, const float *x, kq_act32 *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        kq_act32 *o = &dst[b];
        o->d = quantize_block(x + 32 * b, o->q, 32);
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += o->q[j];
        o->sum = s;
    }
}

static void quantize_256(block_fn quantize_block, const float *x, kq_act256 *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        kq_act256 *o = &dst[b];
        o->d = quantize_block(x + 256 * b, o->q, 256);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += o->q[16 * g + j];
            o->bsum[g] = (int16_t)s;
        }
        memset(o->pad_, 0, sizeof o->pad_);
    }
}

void kq__act_quantize(kq_act_kind a, const float *x, void *dst, int64_t k)
{
    const block_fn f = pick_block();
    if (a == KQ_ACT_256)
        quantize_256(f, x, dst, k / 256);
    else if (a == KQ_ACT_32)
        quantize_32(f, x, dst, k / 32);
    else
        __builtin_trap(); /* KQ_ACT_32X8 rows go through kq__act_quantize_x8 */
}

void kq__act_quantize_x8(const float *x, void *tile, int row, int64_t k)
{
    const block_fn f = pick_block();
    kq_act32x8 *t = tile;
    for (int64_t b = 0; b < k / 32; b++) {
        kq_act32 one;
        quantize_32(f, x + 32 * b, &one, 1);
        for (int g = 0; g < 8; g++) memcpy(&t[b].q[g][4 * row], &one.q[4 * g], 4);
        t[b].d[row] = one.d;
        t[b].sum[row] = one.sum;
    }
}
