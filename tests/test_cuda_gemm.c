/* The tensor-core GEMM (m > 16 on cuda, from 8 for wide and mixed calls)
 * against cpu-ref: both kernels (gemm=auto: wgmma on Hopper; gemm=mma:
 * mma.sync), every quantized type, m = 8, 12, 17, 33, 64, 100, 512, 2048,
 * N not a multiple of any tile, K with a
 * partial 256-value group (q4_0/q8_0) and Q6_K rows that are not 16-byte
 * multiples (which no TMA map takes: those run on mma.sync), fused parts of mixed types, SwiGLU
 * (one part and gate/up parts), experts with skewed routing (one expert
 * takes most pairs, some none) in both slot strides, SwiGLU experts, a bad
 * id, and activations far beyond the fp16 range or far below it.
 *
 * Tolerance. The GEMM rounds x (scaled by a power of two) and the decoded
 * weights to fp16, then sums exactly-formed products in f32. Each product
 * w_i x_i thus carries a relative error |d_i| <= 3u (u = 2^-11: x rounding,
 * the fp16 scale, the fused multiply-add's rounding), independent across i
 * for random inputs, so an output's error has a standard deviation of at
 * most sqrt(3) u sqrt(sum (w_i x_i)^2) (uniform errors of that bound); the
 * check allows 8 of those per output, plus f32 summation
 * (K 2^-24 sum |w x|). A wrong scale on one 32-value sub-block moves an
 * output by about sqrt(32 / K) of its size, a hundred times more. The
 * relative Frobenius error of a call must also stay under 5u = 2.4e-3, three
 * times the expected sqrt(3) u = 8.5e-4: the batched-decode kernels, which
 * quantize x to int8, land near 5e-3, so a call the GEMM silently declined
 * fails here too. */
#include <stdio.h>

#include "cuda_testutil.h"

#define U16 (1.0 / 2048.0)

typedef struct ctx {
    kq_backend *ref;
    kq_backend *gpu[2];
    const char *name[2];
    int n_gpu;
} ctx;

/* sqrt(sum_i (w_i x_i)^2) and sum |w_i x_i| of one output. */
static void out_scale(const float *w, const float *x, int64_t k, double *rms, double *abs)
{
    double s2 = 0, s1 = 0;
    for (int64_t i = 0; i < k; i++) {
        double p = (double)w[i] * x[i];
        s2 += p * p;
        s1 += fabs(p);
    }
    *rms = sqrt(s2);
    *abs = s1;
}

static double out_tol(double rms, double abs, int64_t k, double want)
{
    return 8.0 * sqrt(3.0) * U16 * rms + (double)k * 0x1p-24 * abs + 0x1p-24 * fabs(want) + 1e-30;
}

/* Compares got to want (n outputs, tol each); returns the relative
 * Frobenius error, or -1 after reporting a bad element. */
static double compare(const char *what, const float *got, const float *want, const double *tol,
                      int64_t n, int64_t width)
{
    double e2 = 0, w2 = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        if (!(fabs(d) <= tol[i])) {
            if (bad++ < 3)
                KT_CHECK(0, "%s: y[%lld][%lld] = %.9g, want %.9g (tol %.3g)", what,
                         (long long)(i / width), (long long)(i % width), got[i], want[i], tol[i]);
        }
        e2 += d * d;
        w2 += (double)want[i] * want[i];
    }
    double rel = w2 > 0 ? sqrt(e2 / w2) : 0;
    if (bad) {
        KT_CHECK(0, "%s: %d of %lld outputs off, relative Frobenius error %.3g", what, bad,
                 (long long)n, rel);
        return -1;
    }
    return rel;
}

static void check_frob(const char *what, double rel)
{
    if (rel >= 0) KT_CHECK(rel < 5 * U16, "%s: relative Frobenius error %.3g >= 2.4e-3", what, rel);
}

/* y = x W^T on the GPU, poisoned first; 0 on success. */
static int gpu_dense(kq_backend *b, const kq_linear *l, const float *x, int64_t nx, float *y,
                     int64_t ny, int64_t m, int swiglu, const char *what)
{
    float *dx = kc_upload(b, x, nx), *dy = kc_poisoned(b, ny);
    int ok = dx && dy;
    if (ok) {
        kq_status st = swiglu ? kq_linear_forward_swiglu(b, l, dx, dy, m)
                              : kq_linear_forward(b, l, dx, dy, m);
        ok = KT_CHECK(st == KQ_OK && kq_backend_sync(b) == KQ_OK, "%s: forward: %s", what,
                      kq_last_error()) &&
             kq_copy_to_host(b, y, dy, (size_t)ny * sizeof *y) == KQ_OK;
    }
    kq_free(b, dx);
    kq_free(b, dy);
    return ok ? 0 : -1;
}

/* Dense: `n` parts stacked (types, rows), m rows of x drawn with scale
 * xs (row i multiplied by row_scale(i) when given). */
static void run_dense(ctx *c, const char *label, const int *types, const int64_t *rows, int n,
                      int64_t k, int64_t m, int swiglu, const float *row_mul)
{
    kt_weight w[4];
    kq_part parts[4];
    int64_t N = 0;
    int made = 0;
    for (int i = 0; i < n; i++, made++) {
        if (!KT_CHECK(kt_weight_make(&w[i], types[i], rows[i], k) == 0, "%s: weights", label))
            goto out;
        parts[i] = (kq_part){types[i], w[i].bytes, w[i].nbytes, rows[i]};
        N += rows[i];
    }
    int64_t ny = swiglu ? m * (N / 2) : m * N, width = swiglu ? N / 2 : N;
    float *x = malloc((size_t)(m * k) * sizeof *x), *want = malloc((size_t)ny * sizeof *want);
    float *got = malloc((size_t)ny * sizeof *got), *deq = malloc((size_t)(N * k) * sizeof *deq);
    double *tol = malloc((size_t)ny * sizeof *tol);
    kq_linear *lr = NULL;
    if (!KT_CHECK(x && want && got && deq && tol, "%s: host memory", label)) goto free_host;
    kt_fill_normal(x, m * k, 1.0f);
    if (row_mul)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++) x[i * k + j] *= row_mul[i % 4];
    for (int i = 0, at = 0; i < n; at += (int)rows[i], i++)
        memcpy(deq + (int64_t)at * k, w[i].deq, (size_t)(rows[i] * k) * sizeof *deq);
    if (!KT_OK(kq_linear_load_fused(c->ref, parts, n, k, &lr))) goto free_host;
    kt_poison(want, ny);
    if (!KT_OK(swiglu ? kq_linear_forward_swiglu(c->ref, lr, x, want, m)
                      : kq_linear_forward(c->ref, lr, x, want, m)))
        goto free_host;
    for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < width; r++) {
            double rms, abs;
            out_scale(deq + r * k, x + i * k, k, &rms, &abs);
            if (!swiglu) {
                tol[i * width + r] = out_tol(rms, abs, k, want[i * width + r]);
                continue;
            }
            double rmsu, absu, g = 0, u = 0;
            out_scale(deq + (r + width) * k, x + i * k, k, &rmsu, &absu);
            for (int64_t j = 0; j < k; j++) {
                g += (double)deq[r * k + j] * x[i * k + j];
                u += (double)deq[(r + width) * k + j] * x[i * k + j];
            }
            tol[i * width + r] = kc_swiglu_tol(g, u, out_tol(rms, abs, k, g), out_tol(rmsu, absu, k, u));
        }
    for (int gi = 0; gi < c->n_gpu; gi++) {
        char what[256];
        snprintf(what, sizeof what, "%s %s N=%lld K=%lld m=%lld%s", c->name[gi], label,
                 (long long)N, (long long)k, (long long)m, swiglu ? " swiglu" : "");
        kq_linear *lg = NULL;
        if (!KT_OK(kq_linear_load_fused(c->gpu[gi], parts, n, k, &lg))) continue;
        if (gpu_dense(c->gpu[gi], lg, x, m * k, got, ny, m, swiglu, what) == 0) {
            check_frob(what, compare(what, got, want, tol, ny, width));
            if (row_mul) {
                int finite = 1;
                for (int64_t i = 0; i < ny; i++) finite &= isfinite(got[i]);
                KT_CHECK(finite, "%s: non-finite output", what);
            }
        }
        kq_linear_free(lg);
    }
free_host:
    kq_linear_free(lr);
    free(x);
    free(want);
    free(got);
    free(deq);
    free(tol);
out:
    for (int i = 0; i < made; i++) kt_weight_free(&w[i]);
}

/* argv[1], when given, limits the per-type cases to that type (a short run
 * under compute-sanitizer). */
static const char *g_only;
static int wanted(int t) { return !g_only || strcmp(g_only, kq_type_name(t)) == 0; }

static void test_types(ctx *c)
{
    static const int64_t ms[] = {8, 12, 17, 33, 64, 100, 512, 2048};
    for (int ti = 0; ti < kt_n_weight_types; ti++) {
        int t = kt_weight_types[ti];
        if (!kc_is_quant(t) || !wanted(t)) continue; /* float weights never take the GEMM */
        /* K: 768 makes the rows of Q6_K (630 bytes), Q2_K (252) and Q3_K
         * (330) no 16-byte multiples (mma.sync, no TMA map), and the
         * 32-value types end on a partial group (608); K = 4096 below gives
         * every type rows the TMA path takes. */
        int64_t k = kq_type_block_elems(t) == 32 ? 608 : 768;
        for (int mi = 0; mi < 6; mi++) {
            int64_t m = ms[mi], rows = m >= 512 ? 200 : 333;
            run_dense(c, kq_type_name(t), &t, &rows, 1, k, m, 0, NULL);
        }
        int64_t rows = 261;
        run_dense(c, kq_type_name(t), &t, &rows, 1, 4096, 100, 0, NULL);
    }
}

static void test_fused_swiglu(ctx *c)
{
    /* Parts of the new types side by side (the mixed kernel's switch). */
    int mixed_new[4] = {KQ_TYPE_Q5_0, KQ_TYPE_IQ4_XS, KQ_TYPE_Q3_K, KQ_TYPE_MXFP4};
    int64_t mixed_new_rows[4] = {130, 64, 200, 66};
    run_dense(c, "fused q5_0+iq4_xs+q3_K+mxfp4", mixed_new, mixed_new_rows, 4, 2048, 100, 0, NULL);
    int gu_new[2] = {KQ_TYPE_Q2_K, KQ_TYPE_IQ4_NL};
    int64_t gu_new_rows[2] = {150, 150};
    run_dense(c, "gate q2_K, up iq4_nl", gu_new, gu_new_rows, 2, 4096, 64, 1, NULL);
    int mixed[3] = {KQ_TYPE_Q4_K, KQ_TYPE_Q6_K, KQ_TYPE_Q8_0};
    int64_t mixed_rows[3] = {256, 72, 130};
    run_dense(c, "fused q4_K+q6_K+q8_0", mixed, mixed_rows, 3, 1024, 77, 0, NULL);
    int one = KQ_TYPE_Q4_K;
    int64_t one_rows = 2 * 150;
    run_dense(c, "gate/up in one q4_K part", &one, &one_rows, 1, 512, 130, 1, NULL);
    int gu[2] = {KQ_TYPE_Q4_K, KQ_TYPE_Q6_K};
    int64_t gu_rows[2] = {190, 190};
    run_dense(c, "gate q4_K, up q6_K", gu, gu_rows, 2, 2048, 40, 1, NULL);
}

static void test_magnitudes(ctx *c)
{
    /* Rows far beyond fp16's 65504 and far below its normal range. */
    static const float mul[4] = {1e6f, 3e-7f, 1.0f, 4e4f};
    static const int types[] = {KQ_TYPE_Q4_K, KQ_TYPE_Q6_K, KQ_TYPE_Q8_0};
    for (int i = 0; i < 3; i++) {
        int64_t rows = 200;
        run_dense(c, "large and small x", &types[i], &rows, 1, 1024, 64, 0, mul);
    }
    int t = KQ_TYPE_Q5_K;
    int64_t rows = 2 * 64;
    run_dense(c, "large x swiglu", &t, &rows, 1, 512, 40, 1, mul);
}

/* ------------------------------------------------------------ experts */

static void run_experts(ctx *c, int tg, int tu, int64_t e, int64_t n, int64_t k, int64_t m,
                        int64_t top_k, int per_slot, int bad_pair)
{
    int swiglu = tu >= 0;
    kt_weight wg, wu;
    memset(&wu, 0, sizeof wu);
    if (!KT_CHECK(kt_weight_make(&wg, tg, e * n, k) == 0, "expert weights")) return;
    if (swiglu && !KT_CHECK(kt_weight_make(&wu, tu, e * n, k) == 0, "expert weights")) {
        kt_weight_free(&wg);
        return;
    }
    int64_t ts = per_slot ? top_k * k : k, ss = per_slot ? k : 0;
    int64_t nx = (m - 1) * ts + (top_k - 1) * ss + k, pairs = m * top_k, ny = pairs * n;
    float *x = malloc((size_t)nx * sizeof *x), *want = malloc((size_t)ny * sizeof *want);
    float *got = malloc((size_t)ny * sizeof *got);
    double *tol = malloc((size_t)ny * sizeof *tol);
    int32_t *ids = malloc((size_t)pairs * sizeof *ids);
    kq_experts *rg = NULL, *ru = NULL;
    if (!KT_CHECK(x && want && got && tol && ids, "host memory")) goto done;
    kt_fill_normal(x, nx, 1.0f);
    /* Skewed routing: slot 0 is expert 0 for most tokens; the other slots
     * draw distinct ids from the first e - 2 experts, so the last two get
     * nothing. */
    for (int64_t i = 0; i < m; i++) {
        for (int64_t s = 0; s < top_k; s++) {
            int32_t id;
            int dup;
            do {
                id = (s == 0 && kt_uniform() < 0.85) ? 0 : (int32_t)kt_range(0, e - 3);
                dup = 0;
                for (int64_t q = 0; q < s; q++) dup |= ids[i * top_k + q] == id;
            } while (dup);
            ids[i * top_k + s] = id;
        }
    }
    if (!KT_OK(kq_experts_load(c->ref, tg, wg.bytes, wg.nbytes, e, n, k, &rg))) goto done;
    if (swiglu && !KT_OK(kq_experts_load(c->ref, tu, wu.bytes, wu.nbytes, e, n, k, &ru)))
        goto done;
    kt_poison(want, ny);
    if (!KT_OK(swiglu ? kq_experts_forward_swiglu(c->ref, rg, ru, x, ts, ss, ids, m, top_k, want)
                      : kq_experts_forward(c->ref, rg, x, ts, ss, ids, m, top_k, want)))
        goto done;
    for (int64_t p = 0; p < pairs; p++) {
        const float *xp = x + (p / top_k) * ts + (p % top_k) * ss;
        int64_t id = ids[p];
        for (int64_t r = 0; r < n; r++) {
            const float *w = wg.deq + (id * n + r) * k;
            double rms, abs;
            out_scale(w, xp, k, &rms, &abs);
            if (!swiglu) {
                tol[p * n + r] = out_tol(rms, abs, k, want[p * n + r]);
                continue;
            }
            const float *wu_r = wu.deq + (id * n + r) * k;
            double rmsu, absu, g = 0, u = 0;
            out_scale(wu_r, xp, k, &rmsu, &absu);
            for (int64_t j = 0; j < k; j++) g += (double)w[j] * xp[j], u += (double)wu_r[j] * xp[j];
            tol[p * n + r] = kc_swiglu_tol(g, u, out_tol(rms, abs, k, g), out_tol(rmsu, absu, k, u));
        }
    }
    if (bad_pair >= 0) ids[bad_pair] = (int32_t)e + 3;
    for (int gi = 0; gi < c->n_gpu; gi++) {
        kq_backend *b = c->gpu[gi];
        char what[256];
        snprintf(what, sizeof what, "%s experts %s%s%s E=%lld N=%lld K=%lld m=%lld top_k=%lld %s%s",
                 c->name[gi], kq_type_name(tg), swiglu ? "+" : "", swiglu ? kq_type_name(tu) : "",
                 (long long)e, (long long)n, (long long)k, (long long)m, (long long)top_k,
                 per_slot ? "per-slot" : "broadcast", bad_pair >= 0 ? " bad id" : "");
        kq_experts *g = NULL, *u = NULL;
        float *dx = kc_upload(b, x, nx), *dy = kc_poisoned(b, ny);
        int32_t *dids = NULL;
        if (dx && dy && kq_alloc(b, (size_t)pairs * 4, (void **)&dids) == KQ_OK &&
            kq_copy_to_device(b, dids, ids, (size_t)pairs * 4) == KQ_OK &&
            KT_OK(kq_experts_load(b, tg, wg.bytes, wg.nbytes, e, n, k, &g)) &&
            (!swiglu || KT_OK(kq_experts_load(b, tu, wu.bytes, wu.nbytes, e, n, k, &u)))) {
            kq_status st = swiglu ? kq_experts_forward_swiglu(b, g, u, dx, ts, ss, dids, m, top_k, dy)
                                  : kq_experts_forward(b, g, dx, ts, ss, dids, m, top_k, dy);
            kq_status ss2 = kq_backend_sync(b);
            if (KT_CHECK(st == KQ_OK, "%s: %s", what, kq_last_error()) &&
                KT_CHECK(bad_pair >= 0 ? ss2 == KQ_ERR_RANGE : ss2 == KQ_OK, "%s: sync %s: %s",
                         what, kq_status_name(ss2), kq_last_error()) &&
                kq_copy_to_host(b, got, dy, (size_t)ny * 4) == KQ_OK) {
                if (bad_pair >= 0) {
                    int nan = 1;
                    for (int64_t r = 0; r < n; r++) {
                        nan &= isnan(got[bad_pair * n + r]);
                        got[bad_pair * n + r] = want[bad_pair * n + r];
                    }
                    KT_CHECK(nan, "%s: the bad pair's row is not NaN", what);
                }
                check_frob(what, compare(what, got, want, tol, ny, n));
            }
        }
        kq_experts_free(g);
        kq_experts_free(u);
        kq_free(b, dx);
        kq_free(b, dy);
        kq_free(b, dids);
    }
done:
    kq_experts_free(rg);
    kq_experts_free(ru);
    kt_weight_free(&wg);
    if (swiglu) kt_weight_free(&wu);
    free(x);
    free(want);
    free(got);
    free(tol);
    free(ids);
}

static void test_experts(ctx *c)
{
    for (int i = 0; i < kt_n_weight_types; i++) {
        int t = kt_weight_types[i];
        if (!kc_is_quant(t) || !wanted(t)) continue;
        run_experts(c, t, -1, 10, 200, 768, 64, 4, i & 1, -1);
        /* K = 2048: rows of every type are 16-byte multiples (the TMA path). */
        run_experts(c, t, -1, 6, 136, 2048, 40, 2, i & 1, -1);
    }
    if (g_only) return;
    run_experts(c, KQ_TYPE_Q5_1, KQ_TYPE_Q2_K, 8, 96, 2048, 48, 2, 0, -1);
    run_experts(c, KQ_TYPE_Q4_K, -1, 10, 136, 512, 17, 3, 0, -1);
    run_experts(c, KQ_TYPE_Q4_K, -1, 16, 192, 1024, 512, 8, 1, -1);
    run_experts(c, KQ_TYPE_Q6_K, -1, 16, 96, 768, 2048, 4, 0, -1);
    run_experts(c, KQ_TYPE_Q4_K, KQ_TYPE_Q4_K, 12, 160, 512, 100, 4, 0, -1);
    run_experts(c, KQ_TYPE_Q5_K, KQ_TYPE_Q8_0, 12, 72, 768, 33, 2, 1, -1);
    run_experts(c, KQ_TYPE_Q4_K, -1, 10, 130, 512, 40, 4, 0, 37);
}

int main(int argc, char **argv)
{
    g_only = argc > 1 ? argv[1] : NULL;
    kt_init("test_cuda_gemm");
    ctx c;
    memset(&c, 0, sizeof c);
    /* gemm_min_m=8: the GEMM for every m here, whatever the crossover
     * (which hands it m = 8..16 for wide and mixed calls). */
    static const char *specs[2] = {"cuda:gemm_min_m=8", "cuda:gemm=mma,gemm_min_m=8"};
    /* On Hopper the first runs the wgmma kernel (where weights allow a TMA
     * map) and the second mma.sync; elsewhere both run mma.sync. */
    for (int i = 0; i < 2; i++) {
        int r = kc_open(specs[i], &c.gpu[c.n_gpu]);
        if (r == KT_SKIP) return KT_SKIP;
        if (r == 0) c.name[c.n_gpu++] = specs[i];
    }
    if (!KT_OK(kq_backend_open("cpu-ref", &c.ref))) return kt_finish();
    test_types(&c);
    if (!g_only) {
        test_fused_swiglu(&c);
        test_magnitudes(&c);
    }
    test_experts(&c);
    for (int i = 0; i < c.n_gpu; i++) kq_backend_close(c.gpu[i]);
    kq_backend_close(c.ref);
    return kt_finish();
}
