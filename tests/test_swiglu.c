/* Gated calls (kq_linear_forward_swiglu, kq_linear_forward_glu with SiLU
 * and GELU, kq_experts_forward_swiglu) on the reference backend, against
 * act(g) * u computed here in double from the exactly dequantized weights;
 * and the argument checks of the calls.
 * Fast backends are compared with cpu-ref by their own tests. */
#include <math.h>
#include <stdlib.h>

#include "testutil.h"

static double silu(double g) { return g / (1.0 + exp(-g)); }

/* GELU's tanh form, as kquant.h defines KQ_GLU_GELU, written from the
 * formula here rather than taken from the library. */
static double gelu(double g)
{
    const double c = sqrt(2.0 / 3.14159265358979323846);
    return g / (1.0 + exp(-2 * c * (g + 0.044715 * g * g * g))); /* = 0.5 g (1 + tanh t) */
}

static double gate_of(kq_glu act, double g) { return act == KQ_GLU_GELU ? gelu(g) : silu(g); }

/* g and u are exact double dots; cpu-ref combines them in double and rounds
 * once. Differentiating y = act(g) u: |dy| <= |act'(g)| |u| |dg| +
 * |act(g)| |du| with |silu'| <= 1.1 and |gelu'| <= 1.13 (both bounded by
 * 1.2 here), and each dot's own rounding is at most 2^-36 of its sum |w x|
 * (kt_close_f32's summation term). The final rounding to float is 2^-23
 * relative; the 2^-40 relative term covers the constant sqrt(2 / pi),
 * which the library writes as a 16-digit literal. */
static int close_glu(kq_glu act, float got, double g, double u, double ag, double au)
{
    if (!(got == got)) return 0;
    double want = gate_of(act, g) * u;
    double tol = (0x1p-23 + 0x1p-40) * fabs(want) +
                 0x1p-36 * (1.2 * fabs(u) * ag + fabs(gate_of(act, g)) * au) + 1e-30;
    return fabs((double)got - want) <= tol;
}

static int close_swiglu(float got, double g, double u, double ag, double au)
{
    return close_glu(KQ_GLU_SILU, got, g, u, ag, au);
}

static void dot(const float *w, const float *x, int64_t k, double *s, double *a)
{
    *s = 0, *a = 0;
    for (int64_t j = 0; j < k; j++) {
        double p = (double)w[j] * x[j];
        *s += p;
        *a += fabs(p);
    }
}

/* Gate and up as two parts of different types, or one tensor of 2h rows;
 * SiLU through kq_linear_forward_swiglu, GELU through kq_linear_forward_glu. */
static void dense_case(kq_backend *b, int gate_type, int up_type, int one_tensor, kq_glu act)
{
    int64_t h = kt_range(1, 40), k = 256 * kt_range(1, 4), m = kt_range(1, 20);
    kt_weight wg, wu;
    if (one_tensor) up_type = gate_type;
    if (!KT_CHECK(kt_weight_make(&wg, gate_type, one_tensor ? 2 * h : h, k) == 0, "gate weights"))
        return;
    if (!one_tensor && !KT_CHECK(kt_weight_make(&wu, up_type, h, k) == 0, "up weights")) {
        kt_weight_free(&wg);
        return;
    }
    kq_linear *l = NULL;
    kq_status st;
    if (one_tensor) {
        st = kq_linear_load(b, gate_type, wg.bytes, wg.nbytes, 2 * h, k, &l);
    } else {
        kq_part parts[2] = {{gate_type, wg.bytes, wg.nbytes, h}, {up_type, wu.bytes, wu.nbytes, h}};
        st = kq_linear_load_fused(b, parts, 2, k, &l);
    }
    float *x = malloc((size_t)(m * k) * sizeof *x), *y = malloc((size_t)(m * h) * sizeof *y);
    kt_fill_normal(x, m * k, 1.0f);
    kt_poison(y, m * h);
    if (KT_CHECK(st == KQ_OK, "load: %s", kq_last_error()) &&
        KT_OK(act == KQ_GLU_SILU ? kq_linear_forward_swiglu(b, l, x, y, m)
                                 : kq_linear_forward_glu(b, l, x, y, m, act))) {
        const float *gate = wg.deq, *up = one_tensor ? wg.deq + h * k : wu.deq;
        int64_t bad = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t r = 0; r < h; r++) {
                double g, u, ag, au;
                dot(gate + r * k, x + i * k, k, &g, &ag);
                dot(up + r * k, x + i * k, k, &u, &au);
                if (!close_glu(act, y[i * h + r], g, u, ag, au) && bad++ == 0)
                    KT_CHECK(0, "dense %s %s+%s%s h=%lld K=%lld m=%lld: y[%lld, %lld] = %g, want %.9g",
                             act == KQ_GLU_GELU ? "gelu" : "silu", kq_type_name(gate_type),
                             kq_type_name(up_type), one_tensor ? " (one tensor)" : "", (long long)h,
                             (long long)k, (long long)m, (long long)i, (long long)r, y[i * h + r],
                             gate_of(act, g) * u);
            }
        KT_CHECK(bad == 0, "%lld dense gated outputs wrong", (long long)bad);
    }
    kq_linear_free(l);
    free(x);
    free(y);
    kt_weight_free(&wg);
    if (!one_tensor) kt_weight_free(&wu);
}

static void experts_case(kq_backend *b, int gate_type, int up_type, int per_slot)
{
    int64_t E = kt_range(2, 12), n = kt_range(1, 30), k = 256 * kt_range(1, 3);
    int64_t top_k = kt_range(1, E < 6 ? E : 6), m = kt_range(1, 12);
    kt_weight wg, wu;
    if (!KT_CHECK(kt_weight_make(&wg, gate_type, E * n, k) == 0, "gate weights")) return;
    if (!KT_CHECK(kt_weight_make(&wu, up_type, E * n, k) == 0, "up weights")) {
        kt_weight_free(&wg);
        return;
    }
    kq_experts *g = NULL, *u = NULL;
    int64_t ts = per_slot ? top_k * k : k, ss = per_slot ? k : 0;
    int64_t nx = (m - 1) * ts + (top_k - 1) * ss + k;
    float *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)(m * top_k * n) * sizeof *y);
    int32_t *ids = malloc((size_t)(m * top_k) * sizeof *ids);
    kt_fill_normal(x, nx, 1.0f);
    kt_poison(y, m * top_k * n);
    /* Repeats on purpose: a quarter of the pairs name expert E - 1. */
    for (int64_t p = 0; p < m * top_k; p++)
        ids[p] = kt_uniform() < 0.25 ? (int32_t)(E - 1) : (int32_t)kt_range(0, E - 1);
    if (KT_OK(kq_experts_load(b, gate_type, wg.bytes, wg.nbytes, E, n, k, &g)) &&
        KT_OK(kq_experts_load(b, up_type, wu.bytes, wu.nbytes, E, n, k, &u)) &&
        KT_OK(kq_experts_forward_swiglu(b, g, u, x, ts, ss, ids, m, top_k, y))) {
        int64_t bad = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t s = 0; s < top_k; s++) {
                int64_t pair = i * top_k + s;
                const float *xr = x + i * ts + s * ss;
                for (int64_t r = 0; r < n; r++) {
                    double gv, uv, ag, au;
                    dot(wg.deq + ((int64_t)ids[pair] * n + r) * k, xr, k, &gv, &ag);
                    dot(wu.deq + ((int64_t)ids[pair] * n + r) * k, xr, k, &uv, &au);
                    if (!close_swiglu(y[pair * n + r], gv, uv, ag, au) && bad++ == 0)
                        KT_CHECK(0, "experts %s+%s %s E=%lld N=%lld K=%lld m=%lld top_k=%lld: "
                                 "y[pair %lld, %lld] = %g, want %.9g",
                                 kq_type_name(gate_type), kq_type_name(up_type),
                                 per_slot ? "per-slot" : "broadcast", (long long)E, (long long)n,
                                 (long long)k, (long long)m, (long long)top_k, (long long)pair,
                                 (long long)r, y[pair * n + r], silu(gv) * uv);
                }
            }
        KT_CHECK(bad == 0, "%lld experts SwiGLU outputs wrong", (long long)bad);
    }
    kq_experts_free(g);
    kq_experts_free(u);
    free(x);
    free(y);
    free(ids);
    kt_weight_free(&wg);
    kt_weight_free(&wu);
}

/* What each call refuses, and that its message says why. */
static void misuse(kq_backend *b)
{
    kt_weight w3, w4;
    if (!KT_CHECK(kt_weight_make(&w3, KQ_TYPE_Q8_0, 3, 64) == 0, "weights") ||
        !KT_CHECK(kt_weight_make(&w4, KQ_TYPE_Q8_0, 8, 64) == 0, "weights"))
        return;
    kq_linear *odd = NULL;
    kq_experts *e2 = NULL, *e4 = NULL;
    float x[4 * 64] = {0}, y[64];
    int32_t ids[4] = {0, 1, 0, 1};
    KT_OK(kq_linear_load(b, KQ_TYPE_Q8_0, w3.bytes, w3.nbytes, 3, 64, &odd));
    KT_OK(kq_experts_load(b, KQ_TYPE_Q8_0, w4.bytes, w4.nbytes, 2, 4, 64, &e2));
    KT_OK(kq_experts_load(b, KQ_TYPE_Q8_0, w4.bytes, w4.nbytes, 4, 2, 64, &e4));
    KT_EXPECT(kq_linear_forward_swiglu(b, odd, x, y, 1), KQ_ERR_INVALID_ARG, "3 rows");
    KT_EXPECT(kq_linear_forward_swiglu(b, NULL, x, y, 1), KQ_ERR_INVALID_ARG, "linear is NULL");
    KT_EXPECT(kq_linear_forward_swiglu(NULL, odd, x, y, 1), KQ_ERR_INVALID_ARG, "backend is NULL");
    KT_EXPECT(kq_linear_forward_glu(b, odd, x, y, 1, KQ_GLU_GELU), KQ_ERR_INVALID_ARG, "3 rows");
    KT_EXPECT(kq_linear_forward_glu(b, odd, x, y, 1, (kq_glu)7), KQ_ERR_INVALID_ARG, "act = 7");
    KT_EXPECT(kq_linear_forward_glu(b, odd, x, y, 1, (kq_glu)-1), KQ_ERR_INVALID_ARG, "act = -1");
    KT_EXPECT(kq_experts_forward_swiglu(b, e2, e4, x, 64, 0, ids, 1, 2, y), KQ_ERR_INVALID_ARG,
           "must match");
    KT_EXPECT(kq_experts_forward_swiglu(b, e2, NULL, x, 64, 0, ids, 1, 2, y), KQ_ERR_INVALID_ARG,
           "up is NULL");
    KT_EXPECT(kq_experts_forward_swiglu(b, NULL, e2, x, 64, 0, ids, 1, 2, y), KQ_ERR_INVALID_ARG,
           "experts is NULL");
    ids[1] = 7;
    KT_EXPECT(kq_experts_forward_swiglu(b, e2, e2, x, 64, 0, ids, 1, 2, y), KQ_ERR_RANGE,
           "ids[1]");
    ids[1] = 1;
    KT_EXPECT(kq_experts_forward_swiglu(b, e2, e2, x, 64, 0, ids, 1, 3, y), KQ_ERR_INVALID_ARG,
           "top_k = 3");
    KT_EXPECT(kq_experts_forward_swiglu(b, e2, e2, x, 64, 0, ids, 1, 2, x), KQ_ERR_INVALID_ARG,
           "overlaps");
    KT_CHECK(kq_experts_forward_swiglu(b, e2, e2, x, 64, 0, ids, 0, 2, NULL) == KQ_OK,
             "m = 0 is a no-op: %s", kq_last_error());
    kq_linear_free(odd);
    kq_experts_free(e2);
    kq_experts_free(e4);
    kt_weight_free(&w3);
    kt_weight_free(&w4);
}

int main(void)
{
    kt_init("test_swiglu");
    kq_backend *b = NULL;
    if (!KT_OK(kq_backend_open("cpu-ref", &b))) return kt_finish();
    for (int t = 0; t < kt_n_weight_types; t++) {
        int ty = kt_weight_types[t], other = kt_weight_types[(t + 3) % kt_n_weight_types];
        dense_case(b, ty, other, 0, KQ_GLU_SILU);
        dense_case(b, ty, ty, 1, KQ_GLU_SILU);
        dense_case(b, ty, other, 0, KQ_GLU_GELU);
        dense_case(b, other, other, 1, KQ_GLU_GELU);
        experts_case(b, ty, other, 0);
        experts_case(b, other, ty, 1);
    }
    misuse(b);
    kq_backend_close(b);
    return kt_finish();
}
