/* The gate of a gated feed-forward's output (kq_glu), for the cpu
 * backend's fused gate/up epilogue: y = act(g) * u over a run of outputs.
 * GELU has an AVX2+FMA version chosen at run time (the library builds for
 * any x86-64, so it carries a target attribute); SiLU stays the scalar
 * expf form the SwiGLU kernels have always used. */
#include <math.h>

#include "cpu_backend.h"
#include "cpu_features.h"

static void silu_mul_plain(const float *g, const float *u, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = kq__cpu_silu_mul(g[i], u[i]);
}

/* GELU in its tanh form (Gemma's gelu_pytorch_tanh, ggml_gelu). */
static void gelu_mul_plain(const float *g, const float *u, float *y, int64_t n)
{
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (int64_t i = 0; i < n; i++) {
        float x = g[i];
        y[i] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x))) * u[i];
    }
}


#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* exp(x) for x <= 0 down to underflow: 2^k * e^r with |r| <= ln2 / 2 and a
 * degree-6 Taylor polynomial for e^r (relative error below 2e-7, under
 * float's own rounding of the result). */
AVX2 static __m256 exp_neg_avx2(__m256 x)
{
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, ln2_hi, x);
    r = _mm256_fnmadd_ps(k, ln2_lo, r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* gelu(x) = x * sigmoid(2 c (x + 0.044715 x^3)) = 0.5 x (1 + tanh(...)),
 * the sigmoid from e^-|z| so the exponential never overflows. */
AVX2 static void gelu_mul_avx2(const float *g, const float *u, float *y, int64_t n)
{
    const __m256 c2 = _mm256_set1_ps(2 * 0.7978845608028654f), k = _mm256_set1_ps(0.044715f);
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        __m256 z = _mm256_mul_ps(c2, _mm256_fmadd_ps(k, x3, x));
        __m256 e = exp_neg_avx2(_mm256_or_ps(z, sign)); /* e^-|z| */
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e)); /* sigmoid(|z|) */
        __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
        s = _mm256_blendv_ps(s, _mm256_sub_ps(one, s), neg);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(x, s), _mm256_loadu_ps(u + i)));
    }
    gelu_mul_plain(g + i, u + i, y + i, n - i);
}

/* cpu_features.c reads cpuid once, and also checks that the OS saves the
 * 256-bit registers, which __builtin_cpu_supports does not. */
static void gelu_mul(const float *g, const float *u, float *y, int64_t n)
{
    const kq_cpu_features *f = kq__cpu_features();
    if (f->avx2 && f->fma)
        gelu_mul_avx2(g, u, y, n);
    else
        gelu_mul_plain(g, u, y, n);
}

#else

static void gelu_mul(const float *g, const float *u, float *y, int64_t n)
{
    gelu_mul_plain(g, u, y, n);
}

#endif

int kq__cpu_glu_mul(kq_glu act, const float *g, const float *u, float *y, int64_t n)
{
    switch (act) {
    case KQ_GLU_SILU: silu_mul_plain(g, u, y, n); return 0;
    case KQ_GLU_GELU: gelu_mul(g, u, y, n); return 0;
    }
    return -1; /* kq_linear_forward_glu admits no other act */
}
