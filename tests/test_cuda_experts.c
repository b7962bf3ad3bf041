/* The cuda backend's experts calls against cpu-ref: every weight type,
 * broadcast (slot stride 0) and per-slot rows, repeated ids, m = 1, 2, 8,
 * SwiGLU with gate and up of one type and of two, and ids out of range:
 * caught on the device, the pair's rows set to NaN, the other pairs right,
 * and reported (naming the pair) by the next kq_backend_sync only.
 * Tolerances: cuda_testutil.h (per pair, a dot product of K terms). */
#include "cuda_testutil.h"

typedef struct ctx {
    kq_backend *gpu, *ref;
} ctx;

typedef struct stack {
    kt_weight w;
    kq_experts *g, *r; /* on the GPU and on cpu-ref */
} stack;

static int stack_make(ctx *c, stack *s, int type, int64_t e, int64_t n, int64_t k)
{
    memset(s, 0, sizeof *s);
    if (!KT_CHECK(kt_weight_make(&s->w, type, e * n, k) == 0, "weights %s", kq_type_name(type)))
        return -1;
    if (!KT_OK(kq_experts_load(c->gpu, type, s->w.bytes, s->w.nbytes, e, n, k, &s->g)) ||
        !KT_OK(kq_experts_load(c->ref, type, s->w.bytes, s->w.nbytes, e, n, k, &s->r)))
        return -1;
    return 0;
}

static void stack_free(stack *s)
{
    kq_experts_free(s->g);
    kq_experts_free(s->r);
    kt_weight_free(&s->w);
}

/* Runs one call on both backends and compares; bad_pair >= 0 puts an id
 * out of range there on the GPU (cpu-ref gets a valid one) and expects
 * NaN rows and a KQ_ERR_RANGE from the next sync. */
static void run_case(ctx *c, const char *label, const stack *g, const stack *u, int64_t m,
                     int64_t top_k, int per_slot, int bad_pair)
{
    int64_t e = kq_experts_count(g->g), n = g->w.n_rows / e, k = g->w.n_cols;
    int64_t ts = per_slot ? top_k * k + 4 : k, ss = per_slot ? k : 0;
    int64_t nx = (m - 1) * ts + (top_k - 1) * ss + k, pairs = m * top_k, ny = pairs * n;
    char what[200];
    snprintf(what, sizeof what, "%s %s E=%lld N=%lld K=%lld m=%lld top_k=%lld %s%s", label,
             u ? "swiglu" : "experts", (long long)e, (long long)n, (long long)k, (long long)m,
             (long long)top_k, per_slot ? "per-slot rows" : "broadcast",
             bad_pair >= 0 ? " with a bad id" : "");
    float *x = malloc((size_t)nx * sizeof *x), *want = malloc((size_t)ny * sizeof *want);
    int32_t *ids = malloc((size_t)pairs * sizeof *ids);
    double *tol = malloc((size_t)ny * sizeof *tol);
    float *dx = NULL, *dy = NULL, *got = NULL;
    int32_t *dids = NULL;
    if (!KT_CHECK(x && want && ids && tol, "%s: host memory", what)) goto done;
    kt_fill_normal(x, nx, 1.0f);
    /* Distinct ids per token (as a router gives), then a repeat across
     * tokens is likely; the first two tokens share their first expert. */
    for (int64_t i = 0; i < m; i++)
        for (int64_t s = 0; s < top_k; s++) {
            int32_t id;
            int dup;
            do {
                id = (int32_t)kt_range(0, e - 1);
                dup = 0;
                for (int64_t t = 0; t < s; t++) dup |= ids[i * top_k + t] == id;
            } while (dup);
            ids[i * top_k + s] = id;
        }
    if (m > 1) ids[top_k] = ids[0];
    kt_poison(want, ny);
    if (!KT_OK(u ? kq_experts_forward_swiglu(c->ref, g->r, u->r, x, ts, ss, ids, m, top_k, want)
                 : kq_experts_forward(c->ref, g->r, x, ts, ss, ids, m, top_k, want)))
        goto done;
    /* Which kernel runs: int8 x for one quant type (strides here keep x
     * aligned), float x otherwise. */
    int q8 = kc_is_quant(g->w.type) && (!u || u->w.type == g->w.type);
    for (int64_t p = 0; p < pairs; p++) {
        const float *xr = x + (p / top_k) * ts + (p % top_k) * ss;
        int64_t id = ids[p];
        for (int64_t r = 0; r < n; r++) {
            double dg, ag, du, au;
            const float *wg = g->w.deq + (id * n + r) * k;
            kc_ref(wg, 1, k, xr, k, 1, &dg, &ag);
            double eg = q8 ? kc_q8_tol(wg, xr, k, u ? dg : want[p * n + r])
                           : kc_sum_tol(k, ag, u ? dg : want[p * n + r]);
            if (!u) {
                tol[p * n + r] = eg;
                continue;
            }
            const float *wu = u->w.deq + (id * n + r) * k;
            kc_ref(wu, 1, k, xr, k, 1, &du, &au);
            double eu = q8 ? kc_q8_tol(wu, xr, k, du) : kc_sum_tol(k, au, du);
            tol[p * n + r] = kc_swiglu_tol(dg, du, eg, eu);
        }
    }
    if (bad_pair >= 0) ids[bad_pair] = bad_pair & 1 ? (int32_t)e : -1;
    dx = kc_upload(c->gpu, x, nx);
    dy = kc_poisoned(c->gpu, ny);
    if (kq_alloc(c->gpu, (size_t)pairs * sizeof *ids, (void **)&dids) == KQ_OK &&
        kq_copy_to_device(c->gpu, dids, ids, (size_t)pairs * sizeof *ids) != KQ_OK) {
        kq_free(c->gpu, dids);
        dids = NULL;
    }
    if (!KT_CHECK(dx && dy && dids, "%s: device buffers: %s", what, kq_last_error())) goto done;
    /* The call itself succeeds even with a bad id: the device finds it. */
    if (!KT_OK(u ? kq_experts_forward_swiglu(c->gpu, g->g, u->g, dx, ts, ss, dids, m, top_k, dy)
                 : kq_experts_forward(c->gpu, g->g, dx, ts, ss, dids, m, top_k, dy)))
        goto done;
    kq_status st = kq_backend_sync(c->gpu);
    if (bad_pair < 0) {
        if (!KT_CHECK(st == KQ_OK, "%s: sync: %s", what, kq_last_error())) goto done;
    } else {
        char needle[32];
        snprintf(needle, sizeof needle, "ids[%d] = %d", bad_pair, ids[bad_pair]);
        KT_CHECK(st == KQ_ERR_RANGE && strstr(kq_last_error(), needle), "%s: sync gave %s: %s",
                 what, kq_status_name(st), kq_last_error());
        KT_OK(kq_backend_sync(c->gpu)); /* reported once, then cleared */
    }
    got = kc_download(c->gpu, dy, ny);
    if (!KT_CHECK(got != NULL, "%s: download: %s", what, kq_last_error())) goto done;
    if (bad_pair >= 0) {
        int64_t nan_rows = 0;
        for (int64_t r = 0; r < n; r++) {
            nan_rows += isnan(got[bad_pair * n + r]);
            /* Compare the rest: give the bad pair's rows their reference. */
            got[bad_pair * n + r] = want[bad_pair * n + r];
        }
        KT_CHECK(nan_rows == n, "%s: %lld of %lld rows of the bad pair are NaN", what,
                 (long long)nan_rows, (long long)n);
    }
    kc_compare(what, got, want, tol, ny);
done:
    kq_free(c->gpu, dx);
    kq_free(c->gpu, dy);
    kq_free(c->gpu, dids);
    free(x);
    free(want);
    free(ids);
    free(tol);
    free(got);
}

static void test_type(ctx *c, int type)
{
    int64_t be = kq_type_block_elems(type);
    int64_t ks[2] = {256, be == 1 ? 100 : be == 32 ? 2080 : 2048};
    const char *name = kq_type_name(type);
    for (int ki = 0; ki < 2; ki++) {
        int64_t e = 6, n = kt_range(5, 40) | 1, k = ks[ki];
        stack g, u;
        memset(&u, 0, sizeof u);
        if (stack_make(c, &g, type, e, n, k) == 0 && stack_make(c, &u, type, e, n, k) == 0) {
            static const int64_t ms[] = {1, 2, 8};
            for (int mi = 0; mi < 3; mi++)
                for (int per_slot = 0; per_slot < 2; per_slot++) {
                    run_case(c, name, &g, NULL, ms[mi], 4, per_slot, -1);
                    run_case(c, name, &g, &u, ms[mi], 3, per_slot, -1);
                }
            run_case(c, name, &g, NULL, 3, 2, 1, 3);
            run_case(c, name, &g, &u, 2, 4, 0, 6);
        }
        stack_free(&g);
        stack_free(&u);
    }
}

/* More pairs than the int8-x scratch holds at once (KQ_CUDA_XQ_ROWS = 256
 * rows): the call runs in tiles, each quantizing its rows first. */
static void test_many_pairs(ctx *c)
{
    stack g, u;
    memset(&u, 0, sizeof u);
    if (stack_make(c, &g, KQ_TYPE_Q4_K, 16, 7, 256) == 0 &&
        stack_make(c, &u, KQ_TYPE_Q4_K, 16, 7, 256) == 0) {
        run_case(c, "many pairs", &g, NULL, 40, 8, 1, -1);  /* 320 rows of x */
        run_case(c, "many pairs", &g, &u, 300, 2, 0, -1);   /* 300 tokens */
        run_case(c, "many pairs", &g, NULL, 300, 2, 0, 555);
    }
    stack_free(&g);
    stack_free(&u);
}

static void test_mixed_swiglu(ctx *c)
{
    stack g, u;
    memset(&u, 0, sizeof u);
    if (stack_make(c, &g, KQ_TYPE_Q4_K, 8, 23, 1024) == 0 &&
        stack_make(c, &u, KQ_TYPE_Q6_K, 8, 23, 1024) == 0) {
        run_case(c, "gate q4_K up q6_K", &g, &u, 1, 8, 0, -1);
        run_case(c, "gate q4_K up q6_K", &g, &u, 8, 8, 0, -1);
        run_case(c, "gate q4_K up q6_K", &g, &u, 5, 2, 1, -1);
    }
    stack_free(&g);
    stack_free(&u);
}

int main(int argc, char **argv)
{
    kt_init("test_cuda_experts");
    ctx c = {0};
    /* gemm=off: these are the batched-decode kernels' tests (every m here
     * would otherwise take the tensor-core GEMM from m = 17 on, which
     * test_cuda_gemm checks against its own fp16 error bound). */
    int rc = kc_open("cuda:gemm=off", &c.gpu);
    if (rc) return rc;
    if (!KT_OK(kq_backend_open("cpu-ref", &c.ref))) return kt_finish();
    const char *only = argc > 1 ? argv[1] : NULL;
    for (int i = 0; i < kt_n_weight_types; i++)
        if (!only || strcmp(only, kq_type_name(kt_weight_types[i])) == 0)
            test_type(&c, kt_weight_types[i]);
    if (!only || strcmp(only, "mixed") == 0) test_mixed_swiglu(&c);
    if (!only || strcmp(only, "many") == 0) test_many_pairs(&c);
    kq_backend_close(c.gpu);
    kq_backend_close(c.ref);
    return kt_finish();
}
