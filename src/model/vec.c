/* The model layer's vector loops (attention's dot products and weighted
 * sums), with AVX2+FMA versions chosen at run time on x86-64
 * CPUs that have them; portable loops elsewhere. The library builds for any
 * CPU of its architecture, so the wide versions carry target attributes
 * instead of global compiler flags, as the kernels in src/cpu/ do with their
 * per-file flags. */
#include <math.h>

#include "vec.h"
#include "cpu/cpu_features.h"

static float dot_plain(const float *a, const float *b, int64_t n)
{
    /* 8 partial sums the compiler may keep in vector lanes */
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_plain(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void dot_multi_plain(const float *q, int64_t qs, int nq, const float *k, int64_t n,
                            float *out)
{
    for (int h = 0; h < nq; h++) out[h] = dot_plain(q + h * qs, k, n);
}

static void axpy_multi_plain(float *y, int64_t ys, int ny, const float *w, const float *x,
                             int64_t n)
{
    for (int h = 0; h < ny; h++) axpy_plain(y + h * ys, w[h], x, n);
}

static void dot_block_plain(const float *q, int64_t qs, int nq, const float *k, int64_t ks,
                            int nk, int64_t n, float *out, int os)
{
    for (int j = 0; j < nk; j++) dot_multi_plain(q, qs, nq, k + j * ks, n, out + j * os);
}

static void axpy_block_plain(float *y, int64_t ys, int ny, const float *w, int ws,
                             const float *x, int64_t xs, int nx, int64_t n)
{
    for (int j = 0; j < nx; j++) axpy_multi_plain(y, ys, ny, w + (int64_t)j * ws, x + j * xs, n);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static float dot_avx2(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Four queries against one key: the key is loaded once for all four. */
AVX2 static void dot4_avx2(const float *q, int64_t qs, const float *k, int64_t n, float *out)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 kv = _mm256_loadu_ps(k + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + qs + i), kv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 2 * qs + i), kv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 3 * qs + i), kv, a3);
    }
    out[0] = hsum(a0), out[1] = hsum(a1), out[2] = hsum(a2), out[3] = hsum(a3);
    for (; i < n; i++)
        for (int h = 0; h < 4; h++) out[h] += q[h * qs + i] * k[i];
}

/* Four queries against two keys: each query chunk loaded once for both
 * (dot4 alone loaded five vectors per four fmas). Each (query, key) sum is
 * dot4's chain, so the same bits. */
AVX2 static void dot4x2_avx2(const float *q, int64_t qs, const float *k0, const float *k1,
                             int64_t n, float *out0, float *out1)
{
    __m256 a[4], b[4];
    for (int h = 0; h < 4; h++) a[h] = b[h] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 u = _mm256_loadu_ps(k0 + i), v = _mm256_loadu_ps(k1 + i);
        for (int h = 0; h < 4; h++) {
            const __m256 qh = _mm256_loadu_ps(q + h * qs + i);
            a[h] = _mm256_fmadd_ps(qh, u, a[h]);
            b[h] = _mm256_fmadd_ps(qh, v, b[h]);
        }
    }
    for (int h = 0; h < 4; h++) out0[h] = hsum(a[h]), out1[h] = hsum(b[h]);
    for (; i < n; i++)
        for (int h = 0; h < 4; h++) {
            out0[h] += q[h * qs + i] * k0[i];
            out1[h] += q[h * qs + i] * k1[i];
        }
}

AVX2 static void dot_multi_avx2(const float *q, int64_t qs, int nq, const float *k, int64_t n,
                                float *out)
{
    int h = 0;
    for (; h + 4 <= nq; h += 4) dot4_avx2(q + h * qs, qs, k, n, out + h);
    for (; h < nq; h++) out[h] = dot_avx2(q + h * qs, k, n);
}

AVX2 static void dot_block_avx2(const float *q, int64_t qs, int nq, const float *k, int64_t ks,
                                int nk, int64_t n, float *out, int os)
{
    int j = 0;
    if (nq % 4 == 0)
        for (; j + 2 <= nk; j += 2)
            for (int h = 0; h < nq; h += 4)
                dot4x2_avx2(q + h * qs, qs, k + j * ks, k + (j + 1) * ks, n, out + j * os + h,
                            out + (j + 1) * os + h);
    for (; j < nk; j++) dot_multi_avx2(q, qs, nq, k + j * ks, n, out + j * os);
}

/* axpy_block with NY rows of y, C vectors of 8 per row per step: the rows'
 * chunks stay in registers while every x row goes by, so y is loaded and
 * stored once per block of keys instead of once per key (the per-key
 * axpy_multi was load/store bound: 10% of a Gemma prefill). The sums are
 * the same fma chain in the same key order as per-key updates. */
#define AXPY_BLOCK_BODY(NY, C)                                                          \
    {                                                                                   \
        int64_t i = 0;                                                                  \
        for (; i + 8 * (C) <= n; i += 8 * (C)) {                                        \
            __m256 acc[NY][C];                                                          \
            for (int h = 0; h < (NY); h++)                                              \
                for (int c = 0; c < (C); c++) acc[h][c] = _mm256_loadu_ps(y + h * ys + i + 8 * c); \
            for (int j = 0; j < nx; j++) {                                              \
                __m256 v[C];                                                            \
                for (int c = 0; c < (C); c++) v[c] = _mm256_loadu_ps(x + j * xs + i + 8 * c); \
                for (int h = 0; h < (NY); h++) {                                        \
                    const __m256 wb = _mm256_broadcast_ss(w + (int64_t)j * ws + h);     \
                    for (int c = 0; c < (C); c++) acc[h][c] = _mm256_fmadd_ps(wb, v[c], acc[h][c]); \
                }                                                                       \
            }                                                                           \
            for (int h = 0; h < (NY); h++)                                              \
                for (int c = 0; c < (C); c++) _mm256_storeu_ps(y + h * ys + i + 8 * c, acc[h][c]); \
        }                                                                               \
        for (; i < n; i++)                                                              \
            for (int j = 0; j < nx; j++)                                                \
                for (int h = 0; h < (NY); h++) y[h * ys + i] += w[(int64_t)j * ws + h] * x[j * xs + i]; \
    }

#define AXPY_BLOCK_FN(NY, C)                                                                   \
    AVX2 static void axpy_block_##NY(float *y, int64_t ys, const float *w, int ws, const float *x, \
                                     int64_t xs, int nx, int64_t n) AXPY_BLOCK_BODY(NY, C)
AXPY_BLOCK_FN(1, 4)
AXPY_BLOCK_FN(2, 4)
AXPY_BLOCK_FN(3, 4)
AXPY_BLOCK_FN(4, 2)
AXPY_BLOCK_FN(5, 2)
AXPY_BLOCK_FN(6, 2)
AXPY_BLOCK_FN(7, 1)
AXPY_BLOCK_FN(8, 1)

AVX2 static void axpy_block_avx2(float *y, int64_t ys, int ny, const float *w, int ws,
                                 const float *x, int64_t xs, int nx, int64_t n)
{
    for (int h0 = 0; h0 < ny; h0 += 8) {
        float *yh = y + h0 * ys;
        const float *wh = w + h0;
        switch (ny - h0 < 8 ? ny - h0 : 8) {
        case 1: axpy_block_1(yh, ys, wh, ws, x, xs, nx, n); break;
        case 2: axpy_block_2(yh, ys, wh, ws, x, xs, nx, n); break;
        case 3: axpy_block_3(yh, ys, wh, ws, x, xs, nx, n); break;
        case 4: axpy_block_4(yh, ys, wh, ws, x, xs, nx, n); break;
        case 5: axpy_block_5(yh, ys, wh, ws, x, xs, nx, n); break;
        case 6: axpy_block_6(yh, ys, wh, ws, x, xs, nx, n); break;
        case 7: axpy_block_7(yh, ys, wh, ws, x, xs, nx, n); break;
        default: axpy_block_8(yh, ys, wh, ws, x, xs, nx, n); break;
        }
    }
}

/* cpu_features.c reads cpuid once, and also checks that the OS saves the
 * 256-bit registers, which __builtin_cpu_supports does not. */
static int have_avx2(void)
{
    const kq_cpu_features *f = kq__cpu_features();
    return f->avx2 && f->fma;
}

void kq__vdot_block(const float *q, int64_t q_stride, int nq, const float *k, int64_t k_stride,
                    int nk, int64_t n, float *out, int out_stride)
{
    if (have_avx2())
        dot_block_avx2(q, q_stride, nq, k, k_stride, nk, n, out, out_stride);
    else
        dot_block_plain(q, q_stride, nq, k, k_stride, nk, n, out, out_stride);
}

void kq__vaxpy_block(float *y, int64_t y_stride, int ny, const float *w, int w_stride,
                     const float *x, int64_t x_stride, int nx, int64_t n)
{
    if (have_avx2())
        axpy_block_avx2(y, y_stride, ny, w, w_stride, x, x_stride, nx, n);
    else
        axpy_block_plain(y, y_stride, ny, w, w_stride, x, x_stride, nx, n);
}

#else

void kq__vdot_block(const float *q, int64_t q_stride, int nq, const float *k, int64_t k_stride,
                    int nk, int64_t n, float *out, int out_stride)
{
    dot_block_plain(q, q_stride, nq, k, k_stride, nk, n, out, out_stride);
}

void kq__vaxpy_block(float *y, int64_t y_stride, int ny, const float *w, int w_stride,
                     const float *x, int64_t x_stride, int nx, int64_t n)
{
    axpy_block_plain(y, y_stride, ny, w, w_stride, x, x_stride, nx, n);
}
#endif
