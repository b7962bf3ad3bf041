/* The "cpu" backend against "cpu-ref" on random inputs, for every
 * instruction set this CPU and build can run (KQ_CPU_ISA set before each
 * open; the others print why they are skipped): every weight type (every
 * row of formats/type_list.h, and the float types) at the tier boundaries
 * m = 1, 2, 16, 17, 64 and a large m (100) that spans several activation
 * blocks, K = 256, 4096 and 14336, odd N; fused parts of mixed types; experts
 * with broadcast and per-slot rows and repeated ids; SwiGLU dense and
 * experts. Then: several threads calling the same objects at once get the
 * bits one thread gets, any thread count gives the same bits, and
 * KQ_CPU_ISA naming an unknown or unavailable ISA fails the open.
 *
 * Tolerances: int8 types follow from the activation quantization
 * (kt_act8_tol, derived in testutil.c) plus the reference's own rounding to
 * float (2^-24 relative, doubled for slack); float weights are computed in
 * double like the reference, so only the two roundings to float may differ.
 *
 * With an argument, one slice: an ISA name ("scalar", "avx2", "avx512",
 * "neon") or "misc" (threads and environment). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ukernel.h"
#include "formats/type_list.h"
#include "testutil.h"

typedef struct env {
    kq_backend *cpu, *ref;
    const char *isa;
} env;

/* The bound for one output y = w . x of a weight of `type`, given the
 * reference's float result. */
static double out_tol(int type, const float *w, const float *x, int64_t k, double ref)
{
    int block = kt_act_block(type);
    /* The reference rounds its double sum once to float: 2^-24 |ref|. */
    if (block) return kt_act8_tol(w, x, k, block) + 0x1p-23 * fabs(ref);
    /* Both sum in double (error ~ k 2^-53 sum|w x|) and round once to float:
     * the two floats are at most an ulp apart. */
    double a = 0;
    for (int64_t j = 0; j < k; j++) a += fabs((double)w[j] * x[j]);
    return 0x1p-23 * fabs(ref) + 0x1p-40 * a + 1e-30;
}

/* Counts and reports outputs off by more than their bound. */
static void report(const char *what, int64_t bad, int64_t total, int64_t first,
                   const float *got, const float *want)
{
    KT_CHECK(bad == 0, "%s: %lld of %lld outputs off; first [%lld] = %.9g, want %.9g", what,
             (long long)bad, (long long)total, (long long)first,
             bad ? (double)got[first] : 0.0, bad ? (double)want[first] : 0.0);
}

/* ---------------------------------------------------------------- dense and fused */

typedef struct part_spec {
    int type;
    int64_t n;
} part_spec;

/* Loads parts on both backends, runs m rows, compares. swiglu: the parts'
 * rows are gate then up halves and the gated call is checked instead: 1
 * SwiGLU (kq_linear_forward_swiglu), 2 GeGLU (kq_linear_forward_glu). */
static void dense_case(env *E, const part_spec *ps, int n_parts, int64_t k, int64_t m,
                       int swiglu)
{
    kt_weight w[4];
    kq_part parts[4];
    int64_t total = 0;
    char what[200];
    int len = snprintf(what, sizeof what, "cpu %s %s", E->isa,
                       swiglu == 2 ? "geglu" : swiglu ? "swiglu" : "linear");
    for (int p = 0; p < n_parts; p++) {
        if (kt_weight_make(&w[p], ps[p].type, ps[p].n, k)) {
            KT_CHECK(0, "weight: %s", kq_last_error());
            for (int q = 0; q < p; q++) kt_weight_free(&w[q]);
            return;
        }
        parts[p] = (kq_part){ps[p].type, w[p].bytes, w[p].nbytes, ps[p].n};
        total += ps[p].n;
        len += snprintf(what + len, sizeof what - (size_t)len, "%s%s:%lld", p ? "+" : " ",
                        kq_type_name(ps[p].type), (long long)ps[p].n);
    }
    snprintf(what + len, sizeof what - (size_t)len, " K=%lld m=%lld", (long long)k, (long long)m);
    kq_linear *lc = NULL, *lr = NULL;
    int64_t h = total / 2, n_out = swiglu ? h : total;
    float *x = malloc((size_t)(m * k) * sizeof *x);
    float *y = malloc((size_t)(m * n_out) * sizeof *y);
    float *ref = malloc((size_t)(m * total) * sizeof *ref);
    kt_fill_normal(x, m * k, 1.0f);
    kt_poison(y, m * n_out);
    kt_poison(ref, m * total);
    if (KT_OK(kq_linear_load_fused(E->cpu, parts, n_parts, k, &lc)) &&
        KT_OK(kq_linear_load_fused(E->ref, parts, n_parts, k, &lr)) &&
        KT_OK(kq_linear_forward(E->ref, lr, x, ref, m)) &&
        KT_OK(swiglu == 2 ? kq_linear_forward_glu(E->cpu, lc, x, y, m, KQ_GLU_GELU)
              : swiglu  ? kq_linear_forward_swiglu(E->cpu, lc, x, y, m)
                        : kq_linear_forward(E->cpu, lc, x, y, m))) {
        /* Global row -> its part's type and dequantized row. */
        const float **wrow = malloc((size_t)total * sizeof *wrow);
        int *wtype = malloc((size_t)total * sizeof *wtype);
        for (int p = 0, g = 0; p < n_parts; p++)
            for (int64_t r = 0; r < ps[p].n; r++, g++) {
                wrow[g] = w[p].deq + r * k;
                wtype[g] = ps[p].type;
            }
        int64_t bad = 0, first = 0;
        float *want = malloc((size_t)(m * n_out) * sizeof *want);
        for (int64_t i = 0; i < m; i++)
            for (int64_t r = 0; r < n_out; r++) {
                const float *xi = x + i * k;
                double tol, wv;
                if (!swiglu) {
                    wv = ref[i * total + r];
                    tol = out_tol(wtype[r], wrow[r], xi, k, wv);
                } else {
                    /* out = act(g) u. With |dg| <= eg, |du| <= eu and
                     * |silu'| <= 1.1, |gelu'| <= 1.13 everywhere: |d out| <=
                     * 1.13 eg (|u| + eu) + |act(g)| eu; the backend's own
                     * expf, divide and multiply add a few float roundings
                     * (2^-20 |out|); its AVX2 GELU's exp polynomial (2e-7
                     * relative) and sigmoid blend a few more (2^-18). */
                    double g = ref[i * total + r], u = ref[i * total + h + r];
                    double eg = out_tol(wtype[r], wrow[r], xi, k, g);
                    double eu = out_tol(wtype[h + r], wrow[h + r], xi, k, u);
                    const double c = sqrt(2.0 / 3.14159265358979323846);
                    double sg = swiglu == 2 ? g / (1.0 + exp(-2 * c * (g + 0.044715 * g * g * g)))
                                            : g / (1.0 + exp(-g));
                    wv = sg * u;
                    tol = 1.13 * eg * (fabs(u) + eu) + fabs(sg) * eu +
                          (swiglu == 2 ? 0x1p-18 : 0x1p-20) * fabs(wv) + 1e-30;
                }
                want[i * n_out + r] = (float)wv;
                float got = y[i * n_out + r];
                if (!(fabs((double)got - wv) <= tol) && bad++ == 0) first = i * n_out + r;
            }
        report(what, bad, m * n_out, first, y, want);
        free(want);
        free(wrow);
        free(wtype);
    }
    kq_linear_free(lc);
    kq_linear_free(lr);
    free(x);
    free(y);
    free(ref);
    for (int p = 0; p < n_parts; p++) kt_weight_free(&w[p]);
}

/* Every quantized type (formats/type_list.h), then the float ones. */
#define QUANT_ID(id, name, block, elems, act) id,
static const int g_all_types[] = {KQ_QUANT_TYPES(QUANT_ID) KQ_TYPE_F32, KQ_TYPE_F16,
                                  KQ_TYPE_BF16};
static const int g_quant_types[] = {KQ_QUANT_TYPES(QUANT_ID)};
#undef QUANT_ID
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void dense_cases(env *E)
{
    /* 11: the interleaved 8-row tiles with a padded second tile */
    const int64_t ms[] = {1, 2, 11, 16, 17};
    for (size_t t = 0; t < N_OF(g_all_types); t++) {
        part_spec one = {g_all_types[t], 37};
        for (size_t i = 0; i < N_OF(ms); i++) dense_case(E, &one, 1, 256, ms[i], 0);
        one.n = 1;
        dense_case(E, &one, 1, 512, 3, 0);
    }
    /* Large m: K = 4096 makes the activation blocks (~192 KiB each) hold a
     * few dozen rows, so m = 100 spans several blocks with a partial one. */
    for (size_t t = 0; t < N_OF(g_quant_types); t++) {
        part_spec one = {g_quant_types[t], 37};
        dense_case(E, &one, 1, 4096, 100, 0);
        one.n = 5;
        dense_case(E, &one, 1, 256, 64, 0);
    }
    /* K = 14336, where an activation row is long and an m-block short. */
    static const int longk[] = {KQ_TYPE_Q8_0, KQ_TYPE_Q4_K, KQ_TYPE_Q5_K, KQ_TYPE_Q6_K,
                                KQ_TYPE_Q2_K, KQ_TYPE_Q3_K, KQ_TYPE_IQ4_XS, KQ_TYPE_MXFP4};
    for (size_t t = 0; t < N_OF(longk); t++) {
        part_spec one = {longk[t], 5};
        dense_case(E, &one, 1, 14336, 1, 0);
        dense_case(E, &one, 1, 14336, t % 2 ? 17 : 2, 0);
    }
    /* Fused, mixed types (both activation kinds and a float part). */
    const part_spec mixes[3][4] = {
        {{KQ_TYPE_Q4_K, 19}, {KQ_TYPE_Q8_0, 7}, {KQ_TYPE_F16, 3}, {KQ_TYPE_Q6_K, 13}},
        {{KQ_TYPE_Q5_0, 19}, {KQ_TYPE_Q2_K, 7}, {KQ_TYPE_BF16, 3}, {KQ_TYPE_IQ4_XS, 13}},
        {{KQ_TYPE_Q4_1, 9}, {KQ_TYPE_Q3_K, 11}, {KQ_TYPE_MXFP4, 6}, {KQ_TYPE_Q5_1, 5}},
    };
    const int64_t fms[] = {1, 5, 33};
    for (size_t x = 0; x < N_OF(mixes); x++)
        for (size_t i = 0; i < N_OF(fms); i++) dense_case(E, mixes[x], 4, 512, fms[i], 0);
    const part_spec nl_q2[2] = {{KQ_TYPE_IQ4_NL, 21}, {KQ_TYPE_Q2_K, 10}};
    dense_case(E, nl_q2, 2, 768, 24, 0);
    /* SwiGLU: gate and up parts of different types; one tensor of both. */
    const part_spec gus[3][2] = {{{KQ_TYPE_Q4_K, 29}, {KQ_TYPE_Q6_K, 29}},
                                 {{KQ_TYPE_Q3_K, 29}, {KQ_TYPE_Q5_0, 29}},
                                 {{KQ_TYPE_IQ4_XS, 13}, {KQ_TYPE_Q4_1, 13}}};
    const part_spec one_t[2] = {{KQ_TYPE_Q8_0, 42}, {KQ_TYPE_MXFP4, 42}};
    const part_spec tiny = {KQ_TYPE_Q4_0, 2};
    const part_spec gu_f[2] = {{KQ_TYPE_BF16, 9}, {KQ_TYPE_Q4_0, 9}};
    const int64_t sms[] = {1, 3, 20};
    for (size_t i = 0; i < N_OF(sms); i++) {
        for (size_t x = 0; x < N_OF(gus); x++) dense_case(E, gus[x], 2, 512, sms[i], 1);
        for (size_t x = 0; x < N_OF(gus); x++) dense_case(E, gus[x], 2, 512, sms[i], 2);
        for (size_t x = 0; x < N_OF(one_t); x++) dense_case(E, &one_t[x], 1, 256, sms[i], 1);
        dense_case(E, gu_f, 2, 256, sms[i], 1);
        dense_case(E, gu_f, 2, 256, sms[i], 2);
        dense_case(E, &tiny, 1, 256, sms[i], 1);
    }
}

/* ---------------------------------------------------------------- experts */

static void experts_case(env *E, int type, int up_type, int64_t n_exp, int64_t n, int64_t k,
                         int64_t m, int64_t top_k, int per_slot)
{
    char what[200];
    snprintf(what, sizeof what, "cpu %s experts%s %s%s%s E=%lld N=%lld K=%lld m=%lld top_k=%lld %s",
             E->isa, up_type >= 0 ? " swiglu" : "", kq_type_name(type), up_type >= 0 ? "+" : "",
             up_type >= 0 ? kq_type_name(up_type) : "", (long long)n_exp, (long long)n,
             (long long)k, (long long)m, (long long)top_k, per_slot ? "per-slot" : "broadcast");
    kt_weight wg, wu;
    memset(&wu, 0, sizeof wu);
    if (kt_weight_make(&wg, type, n_exp * n, k) ||
        (up_type >= 0 && kt_weight_make(&wu, up_type, n_exp * n, k))) {
        KT_CHECK(0, "%s: weights: %s", what, kq_last_error());
        kt_weight_free(&wg);
        return;
    }
    int64_t pairs = m * top_k;
    /* Per-slot rows: token stride top_k * k plus a gap, to catch a driver
     * that assumes packed rows. */
    int64_t ts = per_slot ? top_k * k + 32 : k + 64, ss = per_slot ? k : 0;
    int64_t nx = (m - 1) * ts + (top_k - 1) * ss + k;
    float *x = malloc((size_t)nx * sizeof *x);
    float *y = malloc((size_t)(pairs * n) * sizeof *y);
    float *g = malloc((size_t)(pairs * n) * sizeof *g);
    float *u = malloc((size_t)(pairs * n) * sizeof *u);
    int32_t *ids = malloc((size_t)pairs * sizeof *ids);
    kt_fill_normal(x, nx, 1.0f);
    kt_poison(y, pairs * n);
    /* Repeats: a third of the pairs go to expert 1, and a token may name
     * the same expert in two slots. */
    for (int64_t p = 0; p < pairs; p++)
        ids[p] = kt_uniform() < 0.33 ? 1 : (int32_t)kt_range(0, n_exp - 1);
    kq_experts *ec = NULL, *er = NULL, *uc = NULL, *ur = NULL;
    int ok = KT_OK(kq_experts_load(E->cpu, type, wg.bytes, wg.nbytes, n_exp, n, k, &ec)) &&
             KT_OK(kq_experts_load(E->ref, type, wg.bytes, wg.nbytes, n_exp, n, k, &er)) &&
             KT_OK(kq_experts_forward(E->ref, er, x, ts, ss, ids, m, top_k, g));
    if (ok && up_type >= 0)
        ok = KT_OK(kq_experts_load(E->cpu, up_type, wu.bytes, wu.nbytes, n_exp, n, k, &uc)) &&
             KT_OK(kq_experts_load(E->ref, up_type, wu.bytes, wu.nbytes, n_exp, n, k, &ur)) &&
             KT_OK(kq_experts_forward(E->ref, ur, x, ts, ss, ids, m, top_k, u)) &&
             KT_OK(kq_experts_forward_swiglu(E->cpu, ec, uc, x, ts, ss, ids, m, top_k, y));
    else if (ok)
        ok = KT_OK(kq_experts_forward(E->cpu, ec, x, ts, ss, ids, m, top_k, y));
    if (ok) {
        int64_t bad = 0, first = 0;
        float *want = malloc((size_t)(pairs * n) * sizeof *want);
        for (int64_t p = 0; p < pairs; p++) {
            const float *xr = x + p / top_k * ts + p % top_k * ss;
            for (int64_t r = 0; r < n; r++) {
                const float *wr = wg.deq + (ids[p] * n + r) * k;
                double gv = g[p * n + r], wv, tol;
                double eg = out_tol(type, wr, xr, k, gv);
                if (up_type < 0) {
                    wv = gv, tol = eg;
                } else {
                    /* As for dense SwiGLU (dense_case). */
                    double uv = u[p * n + r];
                    double eu = out_tol(up_type, wu.deq + (ids[p] * n + r) * k, xr, k, uv);
                    double sg = gv / (1.0 + exp(-gv));
                    wv = sg * uv;
                    tol = 1.1 * eg * (fabs(uv) + eu) + fabs(sg) * eu + 0x1p-20 * fabs(wv) + 1e-30;
                }
                want[p * n + r] = (float)wv;
                if (!(fabs((double)y[p * n + r] - wv) <= tol) && bad++ == 0) first = p * n + r;
            }
        }
        report(what, bad, pairs * n, first, y, want);
        free(want);
    }
    kq_experts_free(ec);
    kq_experts_free(er);
    kq_experts_free(uc);
    kq_experts_free(ur);
    free(x);
    free(y);
    free(g);
    free(u);
    free(ids);
    kt_weight_free(&wg);
    kt_weight_free(&wu);
}

static void experts_cases(env *E)
{
    const int64_t ms[] = {1, 7, 40};
    for (size_t t = 0; t < N_OF(g_quant_types); t++)
        for (size_t i = 0; i < N_OF(ms); i++)
            experts_case(E, g_quant_types[t], -1, 6, 21, 512, ms[i], 3, (int)(i + t) % 2);
    for (size_t i = 0; i < N_OF(ms); i++)
        experts_case(E, KQ_TYPE_F16, -1, 6, 21, 512, ms[i], 3, (int)i % 2);
    /* Many pairs per expert: the large tier inside one expert. */
    experts_case(E, KQ_TYPE_Q4_K, -1, 4, 37, 1024, 60, 2, 0);
    experts_case(E, KQ_TYPE_Q6_K, -1, 4, 37, 1024, 60, 2, 1);
    /* K = 4096: an expert's ~80 pairs span several activation blocks; N = 1. */
    experts_case(E, KQ_TYPE_Q4_K, -1, 2, 9, 4096, 80, 2, 0);
    experts_case(E, KQ_TYPE_Q8_0, -1, 3, 1, 256, 9, 3, 1);
    /* gpt-oss's shape of the problem: MXFP4 experts, many pairs per expert. */
    experts_case(E, KQ_TYPE_MXFP4, -1, 4, 37, 1024, 60, 2, 1);
    experts_case(E, KQ_TYPE_Q2_K, -1, 4, 37, 1024, 60, 2, 0);
    /* SwiGLU over experts, gate and up of different types and kinds. */
    for (size_t i = 0; i < N_OF(ms); i++) {
        experts_case(E, KQ_TYPE_Q4_K, KQ_TYPE_Q5_K, 5, 19, 512, ms[i], 2, 0);
        experts_case(E, KQ_TYPE_Q8_0, KQ_TYPE_Q6_K, 5, 19, 512, ms[i], 2, 1);
        experts_case(E, KQ_TYPE_MXFP4, KQ_TYPE_MXFP4, 5, 19, 512, ms[i], 2, 0);
        experts_case(E, KQ_TYPE_Q3_K, KQ_TYPE_IQ4_NL, 5, 19, 512, ms[i], 2, 1);
    }
}

/* ---------------------------------------------------------------- threads */

typedef struct shared {
    kq_backend *b;
    const kq_linear *l;
    const kq_experts *e;
    const float *x, *want_l, *want_e;
    const int32_t *ids;
    int64_t m, k, n, ne, top_k;
    int mismatches;
} shared;

static void *caller(void *p)
{
    shared *s = p;
    float *yl = malloc((size_t)(s->m * s->n) * sizeof *yl);
    float *ye = malloc((size_t)(s->m * s->top_k * s->ne) * sizeof *ye);
    int bad = 0;
    for (int round = 0; round < 6; round++) {
        kt_poison(yl, s->m * s->n);
        kt_poison(ye, s->m * s->top_k * s->ne);
        bad += kq_linear_forward(s->b, s->l, s->x, yl, s->m) != KQ_OK ||
               memcmp(yl, s->want_l, (size_t)(s->m * s->n) * sizeof *yl) != 0;
        bad += kq_experts_forward(s->b, s->e, s->x, s->k, 0, s->ids, s->m, s->top_k, ye) !=
                   KQ_OK ||
               memcmp(ye, s->want_e, (size_t)(s->m * s->top_k * s->ne) * sizeof *ye) != 0;
    }
    free(yl);
    free(ye);
    __atomic_add_fetch(&s->mismatches, bad, __ATOMIC_RELAXED);
    return NULL;
}

/* Runs the fused linear and the experts on `spec`; fills yl, ye. */
static int run_spec(const char *spec, const kq_part *parts, const kt_weight *we, shared *s,
                    float *yl, float *ye, int callers)
{
    kq_backend *b = NULL;
    kq_linear *l = NULL;
    kq_experts *e = NULL;
    int ok = KT_OK(kq_backend_open(spec, &b)) &&
             KT_OK(kq_linear_load_fused(b, parts, 2, s->k, &l)) &&
             KT_OK(kq_experts_load(b, we->type, we->bytes, we->nbytes, 8, s->ne, s->k, &e)) &&
             KT_OK(kq_linear_forward(b, l, s->x, yl, s->m)) &&
             KT_OK(kq_experts_forward(b, e, s->x, s->k, 0, s->ids, s->m, s->top_k, ye));
    if (ok && callers) {
        s->b = b, s->l = l, s->e = e, s->want_l = yl, s->want_e = ye, s->mismatches = 0;
        pthread_t t[4];
        for (int i = 0; i < callers; i++) pthread_create(&t[i], NULL, caller, s);
        for (int i = 0; i < callers; i++) pthread_join(t[i], NULL);
        KT_CHECK(s->mismatches == 0, "%s: %d concurrent calls differ from one thread's", spec,
                 s->mismatches);
    }
    kq_linear_free(l);
    kq_experts_free(e);
    kq_backend_close(b);
    return ok;
}

static void thread_cases(void)
{
    shared s = {.m = 24, .k = 1024, .n = 0, .ne = 33, .top_k = 4};
    kt_weight w1, w2, we;
    if (kt_weight_make(&w1, KQ_TYPE_Q4_K, 45, s.k) || kt_weight_make(&w2, KQ_TYPE_Q8_0, 22, s.k) ||
        kt_weight_make(&we, KQ_TYPE_Q6_K, 8 * s.ne, s.k)) {
        KT_CHECK(0, "weights: %s", kq_last_error());
        return;
    }
    kq_part parts[2] = {{w1.type, w1.bytes, w1.nbytes, 45}, {w2.type, w2.bytes, w2.nbytes, 22}};
    s.n = 67;
    float *x = malloc((size_t)(s.m * s.k) * sizeof *x);
    int32_t ids[24 * 4];
    kt_fill_normal(x, s.m * s.k, 1.0f);
    for (int i = 0; i < 24 * 4; i++) ids[i] = (int32_t)kt_range(0, 7);
    s.x = x, s.ids = ids;
    size_t nl = (size_t)(s.m * s.n), ne = (size_t)(s.m * s.top_k * s.ne);
    float *yl[3], *ye[3];
    for (int i = 0; i < 3; i++) {
        yl[i] = malloc(nl * sizeof(float));
        ye[i] = malloc(ne * sizeof(float));
    }
    /* The work grid depends on shapes only: any thread count, same bits. */
    const char *specs[3] = {"cpu:threads=1", "cpu:threads=2", "cpu:threads=3"};
    int ok = 1;
    for (int i = 0; i < 3; i++) ok &= run_spec(specs[i], parts, &we, &s, yl[i], ye[i], i == 1 ? 4 : 0);
    for (int i = 1; ok && i < 3; i++)
        KT_CHECK(!memcmp(yl[0], yl[i], nl * sizeof(float)) && !memcmp(ye[0], ye[i], ne * sizeof(float)),
                 "%s gives other bits than %s", specs[i], specs[0]);
    for (int i = 0; i < 3; i++) {
        free(yl[i]);
        free(ye[i]);
    }
    free(x);
    kt_weight_free(&w1);
    kt_weight_free(&w2);
    kt_weight_free(&we);
}

/* A NaN or an infinity in an activation row makes that row's outputs
 * non-finite (as exact arithmetic would), on every weight type, and leaves
 * the other rows alone. */
static void nonfinite_cases(void)
{
    const int *types = g_all_types;
    kq_backend *b = NULL;
    if (!KT_OK(kq_backend_open("cpu:threads=2", &b))) return;
    for (size_t t = 0; t < N_OF(g_all_types) - 2; t++) { /* quant types and f32 */
        kt_weight w;
        kq_linear *l = NULL;
        if (kt_weight_make(&w, types[t], 5, 512) ||
            !KT_OK(kq_linear_load(b, w.type, w.bytes, w.nbytes, 5, 512, &l))) {
            kt_weight_free(&w);
            continue;
        }
        float x[3 * 512], y[3 * 5];
        kt_fill_normal(x, 3 * 512, 1.0f);
        x[0 * 512 + 7] = NAN;
        x[1 * 512 + 300] = INFINITY;
        kt_poison(y, 3 * 5);
        if (KT_OK(kq_linear_forward(b, l, x, y, 3))) {
            int bad = 0;
            for (int r = 0; r < 5; r++)
                bad += isfinite(y[r]) || isfinite(y[5 + r]) || !isfinite(y[10 + r]);
            KT_CHECK(bad == 0, "%s: NaN/inf rows must give non-finite outputs, others finite",
                     kq_type_name(types[t]));
        }
        kq_linear_free(l);
        kt_weight_free(&w);
    }
    kq_backend_close(b);
}

/* KQ_CPU_ISA names the ISA the open must use, or the reason it fails. */
static void env_cases(void)
{
    kq_backend *b = NULL;
    setenv("KQ_CPU_ISA", "sse9", 1);
    KT_CHECK(kq_backend_open("cpu", &b) == KQ_ERR_UNSUPPORTED && !b &&
                 strstr(kq_last_error(), "sse9"),
             "KQ_CPU_ISA=sse9 must fail naming it; got '%s'", kq_last_error());
    for (int i = 0; i < KQ_ISA_COUNT; i++) {
        if (kq__isa_available((kq_isa)i)) continue;
        setenv("KQ_CPU_ISA", kq__isa_name((kq_isa)i), 1);
        b = NULL;
        KT_CHECK(kq_backend_open("cpu", &b) == KQ_ERR_UNSUPPORTED && !b &&
                     strstr(kq_last_error(), kq__isa_name((kq_isa)i)),
                 "KQ_CPU_ISA=%s (unavailable here) must fail naming it; got '%s'",
                 kq__isa_name((kq_isa)i), kq_last_error());
    }
    unsetenv("KQ_CPU_ISA");
    /* Unset: the widest available. */
    int widest = 0;
    for (int i = 0; i < KQ_ISA_COUNT; i++)
        if (kq__isa_available((kq_isa)i)) widest = i;
    b = NULL;
    if (KT_OK(kq_backend_open("cpu", &b)))
        KT_CHECK(strstr(kq_backend_device(b), kq__isa_name((kq_isa)widest)) != NULL,
                 "default ISA: device '%s' should name %s", kq_backend_device(b),
                 kq__isa_name((kq_isa)widest));
    kq_backend_close(b);
}

int main(int argc, char **argv)
{
    kt_init("test_cpu_backend");
    const char *only = argc > 1 ? argv[1] : NULL;
    int ran = 0;
    for (int i = 0; i < KQ_ISA_COUNT; i++) {
        const char *name = kq__isa_name((kq_isa)i);
        if (only && strcmp(only, name) != 0) continue;
        if (!kq__isa_available((kq_isa)i)) {
            printf("test_cpu_backend: SKIP %s: this CPU or build cannot run it\n", name);
            continue;
        }
        setenv("KQ_CPU_ISA", name, 1);
        env E = {NULL, NULL, name};
        if (KT_OK(kq_backend_open("cpu:threads=2", &E.cpu)) &&
            KT_OK(kq_backend_open("cpu-ref", &E.ref))) {
            printf("test_cpu_backend: %s: %s\n", name, kq_backend_device(E.cpu));
            KT_CHECK(strstr(kq_backend_device(E.cpu), name) != NULL, "device '%s' names %s",
                     kq_backend_device(E.cpu), name);
            dense_cases(&E);
            experts_cases(&E);
            ran++;
        }
        kq_backend_close(E.cpu);
        kq_backend_close(E.ref);
        unsetenv("KQ_CPU_ISA");
    }
    if (!only || strcmp(only, "misc") == 0) {
        thread_cases();
        nonfinite_cases();
        env_cases();
        ran++;
    }
    if (!ran) {
        printf("test_cpu_backend: SKIP: slice '%s' has nothing this machine can run\n",
               only ? only : "");
        return KT_SKIP;
    }
    return kt_finish();
}
