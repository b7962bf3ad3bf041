/* Every dispatch path of the cuda backend writes its whole output: for each
 * way of opening it (gemm=off, gemm=mma, gemm=auto, host_weights=1), every
 * weight type, and m from decode (1) through the batched-decode tiers (3, 8,
 * 16) to the GEMM's (64, 300), linear, SwiGLU and experts calls run on a
 * NaN-poisoned y, and every output must be finite and near cpu-ref. A
 * kernel that returns without writing (say, a body compiled empty for the
 * card, issue 17) leaves NaN and fails here; whichever kernel the backend
 * picked, the numbers must be right.
 *
 * Tolerance: whichever kernel ran, so the sum of the two kernels' bounds
 * (cuda_testutil.h's int8-x bound, and the GEMM's fp16 bound of
 * test_cuda_gemm.c: 8 sqrt(3) 2^-11 sqrt(sum (w x)^2) plus f32 summation).
 * A wrong block or an unwritten row is off by the size of the output, far
 * beyond either. */
#include <stdio.h>

#include "cuda_testutil.h"

#define KD 2048 /* every type's rows are 16-byte multiples: TMA-able */
#define ND 136
#define ED 6

static const char *const k_specs[] = {"cuda:gemm=off", "cuda:gemm=mma", "cuda",
                                      "cuda:host_weights=1"};
#define N_SPECS 4
static const int64_t k_ms[] = {1, 3, 8, 16, 64, 300};
#define N_MS 6

static double tol_of(const float *w, const float *x, int64_t k, double want)
{
    double s2 = 0, s1 = 0;
    for (int64_t i = 0; i < k; i++) {
        double p = (double)w[i] * x[i];
        s2 += p * p;
        s1 += fabs(p);
    }
    return kc_q8_tol(w, x, k, want) + 8.0 * sqrt(3.0) / 2048.0 * sqrt(s2) +
           (double)k * 0x1p-24 * s1;
}

static void check(const char *what, const float *got, const float *want, const double *tol,
                  int64_t n)
{
    int64_t unwritten = 0;
    for (int64_t i = 0; i < n; i++) unwritten += isnan(got[i]) != 0;
    KT_CHECK(unwritten == 0, "%s: %lld of %lld outputs left NaN (unwritten)", what,
             (long long)unwritten, (long long)n);
    kc_compare(what, got, want, tol, n);
}

/* One linear (plain and SwiGLU) of `type` on every backend for every m. */
static void run_linear(kq_backend *const *gpu, kq_backend *ref, int type)
{
    kt_weight w;
    if (!KT_CHECK(kt_weight_make(&w, type, ND, KD) == 0, "%s: weights", kq_type_name(type)))
        return;
    kq_linear *lr = NULL;
    if (!KT_OK(kq_linear_load(ref, type, w.bytes, w.nbytes, ND, KD, &lr))) goto out;
    for (int mi = 0; mi < N_MS; mi++) {
        int64_t m = k_ms[mi];
        for (int swiglu = 0; swiglu < 2; swiglu++) {
            int64_t width = swiglu ? ND / 2 : ND, ny = m * width;
            float *x = malloc((size_t)(m * KD) * sizeof *x), *want = malloc((size_t)ny * 4);
            double *tol = malloc((size_t)ny * sizeof *tol);
            if (!KT_CHECK(x && want && tol, "host memory")) {
                free(x), free(want), free(tol);
                goto out;
            }
            kt_fill_normal(x, m * KD, 1.0f);
            kt_poison(want, ny);
            if (KT_OK(swiglu ? kq_linear_forward_swiglu(ref, lr, x, want, m)
                             : kq_linear_forward(ref, lr, x, want, m))) {
                for (int64_t i = 0; i < m; i++)
                    for (int64_t r = 0; r < width; r++) {
                        const float *xi = x + i * KD;
                        if (!swiglu) {
                            tol[i * width + r] = tol_of(w.deq + r * KD, xi, KD, want[i * width + r]);
                            continue;
                        }
                        double g = 0, u = 0;
                        for (int64_t j = 0; j < KD; j++) {
                            g += (double)w.deq[r * KD + j] * xi[j];
                            u += (double)w.deq[(r + width) * KD + j] * xi[j];
                        }
                        tol[i * width + r] =
                            kc_swiglu_tol(g, u, tol_of(w.deq + r * KD, xi, KD, g),
                                          tol_of(w.deq + (r + width) * KD, xi, KD, u));
                    }
                for (int b = 0; b < N_SPECS; b++) {
                    if (!gpu[b]) continue;
                    char what[160];
                    snprintf(what, sizeof what, "%s %s %s m=%lld", k_specs[b], kq_type_name(type),
                             swiglu ? "swiglu" : "linear", (long long)m);
                    kq_linear *lg = NULL;
                    float *dx = kc_upload(gpu[b], x, m * KD), *dy = kc_poisoned(gpu[b], ny);
                    float *got = NULL;
                    if (KT_CHECK(dx && dy, "%s: device buffers", what) &&
                        KT_OK(kq_linear_load(gpu[b], type, w.bytes, w.nbytes, ND, KD, &lg)) &&
                        KT_CHECK((swiglu ? kq_linear_forward_swiglu(gpu[b], lg, dx, dy, m)
                                         : kq_linear_forward(gpu[b], lg, dx, dy, m)) == KQ_OK,
                                 "%s: %s", what, kq_last_error()) &&
                        KT_OK(kq_backend_sync(gpu[b])) && (got = kc_download_as(gpu[b], dy, ny, what)))
                        check(what, got, want, tol, ny);
                    free(got);
                    kq_linear_free(lg);
                    kq_free(gpu[b], dx);
                    kq_free(gpu[b], dy);
                }
            }
            free(x);
            free(want);
            free(tol);
        }
    }
out:
    kq_linear_free(lr);
    kt_weight_free(&w);
}

/* Experts of `type`, broadcast x, top_k = 2, m = 1 and 64. */
static void run_experts(kq_backend *const *gpu, kq_backend *ref, int type)
{
    kt_weight w;
    if (!KT_CHECK(kt_weight_make(&w, type, ED * ND, KD) == 0, "%s: weights", kq_type_name(type)))
        return;
    kq_experts *er = NULL;
    if (!KT_OK(kq_experts_load(ref, type, w.bytes, w.nbytes, ED, ND, KD, &er))) goto out;
    for (int64_t m = 1; m <= 64; m += 63) {
        const int64_t top_k = 2, pairs = m * top_k, ny = pairs * ND;
        float *x = malloc((size_t)(m * KD) * sizeof *x), *want = malloc((size_t)ny * 4);
        double *tol = malloc((size_t)ny * sizeof *tol);
        int32_t *ids = malloc((size_t)pairs * sizeof *ids);
        if (!KT_CHECK(x && want && tol && ids, "host memory")) {
            free(x), free(want), free(tol), free(ids);
            goto out;
        }
        kt_fill_normal(x, m * KD, 1.0f);
        for (int64_t i = 0; i < m; i++) {
            ids[2 * i] = (int32_t)kt_range(0, ED - 1);
            ids[2 * i + 1] = (ids[2 * i] + 1 + (int32_t)kt_range(0, ED - 2)) % ED;
        }
        kt_poison(want, ny);
        if (KT_OK(kq_experts_forward(ref, er, x, KD, 0, ids, m, top_k, want))) {
            for (int64_t p = 0; p < pairs; p++)
                for (int64_t r = 0; r < ND; r++)
                    tol[p * ND + r] = tol_of(w.deq + ((int64_t)ids[p] * ND + r) * KD,
                                             x + (p / top_k) * KD, KD, want[p * ND + r]);
            for (int b = 0; b < N_SPECS; b++) {
                if (!gpu[b]) continue;
                char what[160];
                snprintf(what, sizeof what, "%s %s experts m=%lld", k_specs[b], kq_type_name(type),
                         (long long)m);
                kq_experts *eg = NULL;
                float *dx = kc_upload(gpu[b], x, m * KD), *dy = kc_poisoned(gpu[b], ny), *got = NULL;
                int32_t *dids = NULL;
                if (KT_CHECK(dx && dy, "%s: device buffers", what) &&
                    KT_OK(kq_alloc(gpu[b], (size_t)pairs * 4, (void **)&dids)) &&
                    KT_OK(kq_copy_to_device(gpu[b], dids, ids, (size_t)pairs * 4)) &&
                    KT_OK(kq_experts_load(gpu[b], type, w.bytes, w.nbytes, ED, ND, KD, &eg)) &&
                    KT_CHECK(kq_experts_forward(gpu[b], eg, dx, KD, 0, dids, m, top_k, dy) == KQ_OK,
                             "%s: %s", what, kq_last_error()) &&
                    KT_OK(kq_backend_sync(gpu[b])) && (got = kc_download_as(gpu[b], dy, ny, what)))
                    check(what, got, want, tol, ny);
                free(got);
                kq_experts_free(eg);
                kq_free(gpu[b], dx);
                kq_free(gpu[b], dy);
                kq_free(gpu[b], dids);
            }
        }
        free(x);
        free(want);
        free(tol);
        free(ids);
    }
out:
    kq_experts_free(er);
    kt_weight_free(&w);
}

int main(void)
{
    kt_init("test_cuda_dispatch");
    kq_backend *gpu[N_SPECS] = {0}, *ref = NULL;
    for (int b = 0; b < N_SPECS; b++) {
        int r = kc_open(k_specs[b], &gpu[b]);
        if (r == KT_SKIP) return KT_SKIP;
        if (r) return kt_finish();
    }
    if (!KT_OK(kq_backend_open("cpu-ref", &ref))) return kt_finish();
    printf("device: %s\n", kq_backend_device(gpu[0]));
    for (int i = 0; i < kt_n_weight_types; i++) {
        run_linear(gpu, ref, kt_weight_types[i]);
        run_experts(gpu, ref, kt_weight_types[i]);
    }
    for (int b = 0; b < N_SPECS; b++) kq_backend_close(gpu[b]);
    kq_backend_close(ref);
    return kt_finish();
}
