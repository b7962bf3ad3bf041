/* The gate of a gated feed-forward's output (kq_glu), for the cpu
 * backend's fused gate/up epilogue: y = act(g) * u over a run of outputs.
 * Both have AVX2+FMA versions chosen at run time (the library builds for
 * any x86-64, so they carry a target attribute) that share one sigmoid;
 * SiLU was a scalar expf per output before. At m = 1 the gate is a small
 * share of a call (q5_0 2 x 2048 x 640: ~90 us, the gate a few of them),
 * so neither form measured apart from the other on the 2-vCPU machine. */
#include <math.h>

#include "cpu_backend.h"
#include "cpu_features.h"

static void silu_mul_plain(const float *g, const float *u, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = kq__cpu_silu_mul(g[i], u[i]);
}

/* GELU in its tanh form (Gemma's gelu_pytorch_tanh, ggml_gelu), written as
 * x sigmoid(2t) = 0.5 x (1 + tanh t): 1 + tanhf(t) cancels for t below
 * about -5, losing every digit of a gate that is still ~1e-8 of x there. */
static void gelu_mul_plain(const float *g, const float *u, float *y, int64_t n)
{
    const float c2 = 2 * 0.7978845608028654f; /* 2 sqrt(2 / pi) */
    for (int64_t i = 0; i < n; i++) {
        float x = g[i];
        y[i] = x / (1.0f + expf(-c2 * (x + 0.044715f * x * x * x))) * u[i];
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

/* sigmoid(z) from e = e^-|z|, so the exponential never overflows:
 * 1 / (1 + e) for z >= 0 and e / (1 + e) below, each to a few roundings
 * (1 - sigmoid(|z|) would cancel for large |z|). */
AVX2 static __m256 sigmoid_avx2(__m256 z)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 e = exp_neg_avx2(_mm256_or_ps(z, sign));
    __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e));
    __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(r, _mm256_mul_ps(e, r), neg);
}

/* gelu(x) = x * sigmoid(2 c (x + 0.044715 x^3)) = 0.5 x (1 + tanh(...)). */
AVX2 static void gelu_mul_avx2(const float *g, const float *u, float *y, int64_t n)
{
    const __m256 c2 = _mm256_set1_ps(2 * 0.7978845608028654f), k = _mm256_set1_ps(0.044715f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        __m256 s = sigmoid_avx2(_mm256_mul_ps(c2, _mm256_fmadd_ps(k, x3, x)));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(x, s), _mm256_loadu_ps(u + i)));
    }
    gelu_mul_plain(g + i, u + i, y + i, n - i);
}

/* silu(x) = x * sigmoid(x). */
AVX2 static void silu_mul_avx2(const float *g, const float *u, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 s = sigmoid_avx2(x);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(x, s), _mm256_loadu_ps(u + i)));
    }
    silu_mul_plain(g + i, u + i, y + i, n - i);
}

/* cpu_features.c reads cpuid once, and also checks that the OS saves the
 * 256-bit registers, which __builtin_cpu_supports does not. */
static int have_avx2(void)
{
    const kq_cpu_features *f = kq__cpu_features();
    return f->avx2 && f->fma;
}

static void gelu_mul(const float *g, const float *u, float *y, int64_t n)
{
    if (have_avx2())
        gelu_mul_avx2(g, u, y, n);
    else
        gelu_mul_plain(g, u, y, n);
}

static void silu_mul(const float *g, const float *u, float *y, int64_t n)
{
    if (have_avx2())
        silu_mul_avx2(g, u, y, n);
    else
        silu_mul_plain(g, u, y, n);
}

#else

static void silu_mul(const float *g, const float *u, float *y, int64_t n)
{
    silu_mul_plain(g, u, y, n);
}

static void gelu_mul(const float *g, const float *u, float *y, int64_t n)
{
    gelu_mul_plain(g, u, y, n);
}

#endif

int kq__cpu_glu_mul(kq_glu act, const float *g, const float *u, float *y, int64_t n)
{
    switch (act) {
    case KQ_GLU_SILU: silu_mul(g, u, y, n); return 0;
    case KQ_GLU_GELU: gelu_mul(g, u, y, n); return 0;
    }
    return -1; /* kq_linear_forward_glu admits no other act */
}
