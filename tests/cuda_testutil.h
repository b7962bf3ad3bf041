/* Helpers shared by the tests/test_cuda_*.c files: opening the backend (or
 * a printed skip), device buffers through the public API, and the checks
 * with their tolerances.
 *
 * Tolerance. The CUDA kernels keep x in float and decode every weight
 * exactly as formats/ does (the products d*sc*q are exact in float, so
 * the decoded weight equals the reference's bit for bit). What differs is
 * the summation: each lane adds its K/32 products in float, then five
 * shuffle levels add the lanes, so by the standard bound for recursive
 * summation |got - exact| <= (K/32 + 5) * u * sum|w x| with u = 2^-24, and
 * cpu-ref's own result is the exact sum rounded once (u |want|). Hence
 *   tol = (K/32 + 6) * 2^-24 * sum|w x| + 2^-24 |want|.
 * A wrong element, scale or row would be off by about |w x| of that term,
 * far above this for the K used here except in rare lucky outputs.
 *
 * Weights of a quant type (one type per call, x 16-byte aligned) multiply
 * x quantized to int8 instead: per 32 values d = max|x| / 127 and
 * q = round(x / d), so x_i is replaced by x_i + e_i, |e_i| <= d / 2. The
 * rounding residuals of random inputs are independent and uniform, so the
 * output's error sum w_i e_i has variance sigma^2 = sum w_i^2 d^2 / 12; the
 * check allows 7 sigma (a false alarm about once in 10^11 outputs; the
 * worst case, sum |w_i| d / 2, is some sqrt(K) times larger and would hide
 * real bugs). The float part of the arithmetic adds the summation term
 * above, taken over |d sc q| + |dmin m| <= 3 max|w| per product (the
 * kernel sums the scaled quants and the min term apart). kc_q8_tol. */
#ifndef KQ_CUDA_TESTUTIL_H
#define KQ_CUDA_TESTUTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Opens `spec`; on a machine without CUDA (or a build without it) prints
 * why and returns KT_SKIP so main can exit 77. */
static inline int kc_open(const char *spec, kq_backend **b)
{
    kq_status st = kq_backend_open(spec, b);
    if (st == KQ_OK) return 0;
    printf("SKIP: cannot open '%s' here: %s (%s)\n", spec, kq_last_error(), kq_status_name(st));
    return KT_SKIP;
}

static inline double kc_sum_tol(int64_t k, double abs_scale, double want)
{
    return ((double)k / 32.0 + 6.0) * 0x1p-24 * abs_scale + 0x1p-24 * fabs(want) + 1e-30;
}

/* SwiGLU y = silu(g) * u from g and u each within eg, eu of exact:
 * |dy| <= |silu'(g)| eg |u| + |silu(g)| eu + eg eu, with |silu'| <= 1.1,
 * plus expf and the division (a few u of |y|) and cpu-ref's one rounding. */
static inline double kc_silu(double g) { return g / (1.0 + exp(-g)); }
static inline double kc_swiglu_tol(double g, double u, double eg, double eu)
{
    return 1.1 * eg * fabs(u) + fabs(kc_silu(g)) * eu + eg * eu +
           8 * 0x1p-24 * fabs(kc_silu(g) * u) + 1e-30;
}

/* GeGLU (KQ_GLU_GELU, tanh form) likewise: |gelu'| <= 1.13; tanhf and the
 * cubic add a few u of |y| as expf does for SiLU. */
static inline double kc_gelu(double g) /* 0.5 g (1 + tanh t) as g sigmoid(2t) */
{
    return g / (1.0 + exp(-2 * sqrt(2.0 / 3.14159265358979323846) * (g + 0.044715 * g * g * g)));
}
static inline double kc_geglu_tol(double g, double u, double eg, double eu)
{
    return 1.13 * eg * fabs(u) + fabs(kc_gelu(g)) * eu + eg * eu +
           8 * 0x1p-24 * fabs(kc_gelu(g) * u) + 1e-30;
}

/* Tolerance of one output of the int8-x kernels (see above): w and x rows
 * of k values, want the reference. */
static inline double kc_q8_tol(const float *w, const float *x, int64_t k, double want)
{
    double var = 0, maxw = 0, sx = 0;
    for (int64_t b = 0; b < k; b += 32) {
        float amax = 0;
        for (int64_t i = b; i < b + 32 && i < k; i++) amax = fmaxf(amax, fabsf(x[i]));
        double d = (double)(amax / 127.0f);
        for (int64_t i = b; i < b + 32 && i < k; i++) {
            var += (double)w[i] * w[i] * d * d / 12.0;
            maxw = fmax(maxw, fabs(w[i]));
            sx += fabs(x[i]);
        }
    }
    return 7.0 * sqrt(var) + kc_sum_tol(k, 3.0 * maxw * sx, want);
}

static inline int kc_is_quant(int type)
{
    return type != KQ_TYPE_F32 && type != KQ_TYPE_F16 && type != KQ_TYPE_BF16;
}

static inline float *kc_dev(kq_backend *b, int64_t n)
{
    void *p = NULL;
    if (kq_alloc(b, (size_t)n * sizeof(float), &p) != KQ_OK) return NULL;
    return p;
}

/* A device copy of n host floats (n >= 1). */
static inline float *kc_upload(kq_backend *b, const float *h, int64_t n)
{
    float *d = kc_dev(b, n);
    if (d && kq_copy_to_device(b, d, h, (size_t)n * sizeof(float)) != KQ_OK) {
        kq_free(b, d);
        return NULL;
    }
    return d;
}

/* A device buffer of n NaNs, so unwritten outputs fail. */
static inline float *kc_poisoned(kq_backend *b, int64_t n)
{
    float *h = malloc((size_t)n * sizeof *h);
    if (!h) return NULL;
    kt_poison(h, n);
    float *d = kc_upload(b, h, n);
    free(h);
    return d;
}

static inline int kc_repoison(kq_backend *b, float *d, int64_t n)
{
    float *h = malloc((size_t)n * sizeof *h);
    if (!h) return -1;
    kt_poison(h, n);
    kq_status st = kq_copy_to_device(b, d, h, (size_t)n * sizeof(float));
    free(h);
    return st == KQ_OK ? 0 : -1;
}

/* A host copy of n device floats; a failed copy is a failed check (a
 * caller that only skipped its comparison would pass on a lost launch). */
static inline float *kc_download_as(kq_backend *b, const float *d, int64_t n, const char *what)
{
    float *h = malloc((size_t)n * sizeof *h);
    if (!KT_CHECK(h != NULL, "%s: host memory for %lld floats", what, (long long)n)) return NULL;
    if (!KT_CHECK(kq_copy_to_host(b, h, d, (size_t)n * sizeof(float)) == KQ_OK,
                  "%s: copying %lld floats to the host: %s", what, (long long)n, kq_last_error())) {
        free(h);
        return NULL;
    }
    return h;
}

static inline float *kc_download(kq_backend *b, const float *d, int64_t n)
{
    return kc_download_as(b, d, n, "download");
}

/* sum |w x| per output of a row-major [n, k] weight and x rows (x row i at
 * x + i * xs), with the exact dot products in double. */
static inline void kc_ref(const float *w, int64_t n, int64_t k, const float *x, int64_t xs, int64_t m,
                   double *dot, double *abs)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < n; r++) {
            double s = 0, a = 0;
            const float *wr = w + r * k, *xr = x + i * xs;
            for (int64_t j = 0; j < k; j++) {
                double p = (double)wr[j] * (double)xr[j];
                s += p;
                a += fabs(p);
            }
            dot[i * n + r] = s;
            abs[i * n + r] = a;
        }
}

/* Compares n outputs got[] with cpu-ref's want[] under tol[]; one check
 * per call, naming the first bad output. */
static inline void kc_compare(const char *what, const float *got, const float *want, const double *tol,
                       int64_t n)
{
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= tol[i]) && bad++ == 0) first = i;
    }
    KT_CHECK(bad == 0, "%s: %lld of %lld outputs off; first [%lld] = %.9g, cpu-ref %.9g, tol %.3g",
             what, (long long)bad, (long long)n, (long long)first,
             bad ? (double)got[first] : 0.0, bad ? (double)want[first] : 0.0,
             bad ? tol[first] : 0.0);
}

#endif
