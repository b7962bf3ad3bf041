/* The cuda backend's linear, fused and SwiGLU calls against cpu-ref: every
 * weight type, K = 256 and 14336 (plus K not a multiple of 256 where the
 * type allows), odd N, m = 1, 2, 3, 8, 16, 17 (each kernel tier and the
 * larger-m path), fused parts of mixed types, and x that is not 16-byte
 * aligned (the simple path). Tolerances: cuda_testutil.h (float x for
 * f32/f16/bf16, mixed types and unaligned x; int8 x otherwise). */
#include "cuda_testutil.h"

typedef struct ctx {
    kq_backend *gpu, *ref;
} ctx;

/* One weight made of parts (each a kt_weight of K columns), loaded on both
 * backends and run for each m. */
typedef struct fused {
    int n;
    kt_weight w[8];
    int64_t rows, k;
    float *deq; /* all parts' rows, stacked */
} fused;

static int fused_make(fused *f, const int *types, const int64_t *rows, int n, int64_t k)
{
    memset(f, 0, sizeof *f);
    f->k = k;
    for (int i = 0; i < n; i++) {
        if (kt_weight_make(&f->w[i], types[i], rows[i], k) != 0) return -1;
        f->n = i + 1;
        f->rows += rows[i];
    }
    f->deq = malloc((size_t)(f->rows * k) * sizeof *f->deq);
    if (!f->deq) return -1;
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(f->deq + at * k, f->w[i].deq, (size_t)(rows[i] * k) * sizeof *f->deq);
        at += rows[i];
    }
    return 0;
}

static void fused_free(fused *f)
{
    for (int i = 0; i < f->n; i++) kt_weight_free(&f->w[i]);
    free(f->deq);
}

static kq_linear *fused_load(kq_backend *b, const fused *f)
{
    kq_part p[8];
    for (int i = 0; i < f->n; i++)
        p[i] = (kq_part){f->w[i].type, f->w[i].bytes, f->w[i].nbytes, f->w[i].n_rows};
    kq_linear *l = NULL;
    if (!KT_OK(kq_linear_load_fused(b, p, f->n, f->k, &l))) return NULL;
    return l;
}

/* x_off floats in front of x on the device: 1 makes x 4-byte aligned only.
 * swiglu: 0 a plain call, 1 SwiGLU, 2 GeGLU (kq_linear_forward_glu). */
static void run_case(ctx *c, const char *label, const fused *f, kq_linear *lg, kq_linear *lr,
                     int64_t m, int swiglu, int x_off)
{
    int64_t k = f->k, n = f->rows, ny = swiglu ? n / 2 : n;
    float *x = malloc((size_t)(m * k + x_off) * sizeof *x);
    float *want = malloc((size_t)(m * ny) * sizeof *want);
    double *dot = malloc((size_t)(m * n) * sizeof *dot), *abs = malloc((size_t)(m * n) * sizeof *abs);
    double *tol = malloc((size_t)(m * ny) * sizeof *tol);
    float *dx = NULL, *dy = NULL, *got = NULL;
    char what[160];
    snprintf(what, sizeof what, "%s %s N=%lld K=%lld m=%lld%s", label,
             swiglu == 2 ? "geglu" : swiglu ? "swiglu" : "linear",
             (long long)n, (long long)k, (long long)m, x_off ? " (x unaligned)" : "");
    if (!KT_CHECK(x && want && dot && abs && tol, "%s: host memory", what)) goto done;
    kt_fill_normal(x, m * k + x_off, 1.0f);
    const float *xh = x + x_off;
    kt_poison(want, m * ny);
    if (!KT_OK(swiglu == 2 ? kq_linear_forward_glu(c->ref, lr, xh, want, m, KQ_GLU_GELU)
               : swiglu    ? kq_linear_forward_swiglu(c->ref, lr, xh, want, m)
                           : kq_linear_forward(c->ref, lr, xh, want, m)))
        goto done;
    kc_ref(f->deq, n, k, xh, k, m, dot, abs);
    /* Which kernel runs: int8 x for one quant type and aligned x (every m),
     * and for mixed 32-value block types at m <= 8 with K <= 1024 (the direct
     * kernel of src/cuda/direct_gemv32.cu); float x for other mixed types,
     * float weights and unaligned x. Gated calls of two parts of one row
     * size take the direct kernel too. */
    int t0 = f->w[0].type, uniform = 1, all32 = 1;
    for (int i = 0; i < f->n; i++) {
        uniform &= f->w[i].type == t0;
        all32 &= kq_type_block_elems(f->w[i].type) == 32; /* one scale, no super-block */
    }
    int q8 = x_off == 0 && kc_is_quant(t0) &&
             (uniform || (m <= 8 && all32 && k % 32 == 0 && k <= 1024 &&
                          (!swiglu || (f->n == 2 && f->w[0].n_rows == f->w[1].n_rows &&
                                       f->w[0].nbytes == f->w[1].nbytes))));
    for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < n; r++) {
            double want_r = swiglu ? dot[i * n + r] : want[i * ny + r];
            abs[i * n + r] = q8 ? kc_q8_tol(f->deq + r * k, xh + i * k, k, want_r)
                                : kc_sum_tol(k, abs[i * n + r], want_r);
        }
    for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < ny; r++)
            tol[i * ny + r] = !swiglu ? abs[i * n + r]
                              : (swiglu == 2 ? kc_geglu_tol : kc_swiglu_tol)(
                                    dot[i * n + r], dot[i * n + ny + r], abs[i * n + r],
                                    abs[i * n + ny + r]);
    dx = kc_upload(c->gpu, x, m * k + x_off);
    dy = kc_poisoned(c->gpu, m * ny);
    if (!KT_CHECK(dx && dy, "%s: device buffers: %s", what, kq_last_error())) goto done;
    if (!KT_OK(swiglu == 2 ? kq_linear_forward_glu(c->gpu, lg, dx + x_off, dy, m, KQ_GLU_GELU)
               : swiglu    ? kq_linear_forward_swiglu(c->gpu, lg, dx + x_off, dy, m)
                           : kq_linear_forward(c->gpu, lg, dx + x_off, dy, m)))
        goto done;
    if (!KT_OK(kq_backend_sync(c->gpu))) goto done;
    got = kc_download(c->gpu, dy, m * ny);
    if (KT_CHECK(got != NULL, "%s: download: %s", what, kq_last_error()))
        kc_compare(what, got, want, tol, m * ny);
done:
    kq_free(c->gpu, dx);
    kq_free(c->gpu, dy);
    free(x);
    free(want);
    free(dot);
    free(abs);
    free(tol);
    free(got);
}

static void run_fused(ctx *c, const char *label, const int *types, const int64_t *rows, int n,
                      int64_t k, const int64_t *ms, int n_m, int swiglu, int x_off)
{
    fused f;
    if (!KT_CHECK(fused_make(&f, types, rows, n, k) == 0, "%s: making weights", label)) {
        fused_free(&f);
        return;
    }
    kq_linear *lg = fused_load(c->gpu, &f), *lr = fused_load(c->ref, &f);
    if (lg && lr)
        for (int i = 0; i < n_m; i++) run_case(c, label, &f, lg, lr, ms[i], swiglu, x_off);
    kq_linear_free(lg);
    kq_linear_free(lr);
    fused_free(&f);
}

static int64_t odd_in(int64_t lo, int64_t hi) { return kt_range(lo, hi) | 1; }

static void test_type(ctx *c, int type)
{
    static const int64_t ms[] = {1, 2, 3, 8, 16, 17};
    const int n_m = (int)(sizeof ms / sizeof ms[0]);
    int64_t be = kq_type_block_elems(type);
    int64_t ks[3] = {256, 14336, be == 1 ? 37 : be == 32 ? 96 : 512};
    const char *name = kq_type_name(type);
    for (int ki = 0; ki < 3; ki++) {
        int64_t k = ks[ki];
        int64_t n = k > 4096 ? odd_in(9, 21) : odd_in(33, 99);
        run_fused(c, name, &type, &n, 1, k, ms, n_m, 0, 0);
        int64_t h2 = 2 * (k > 4096 ? odd_in(5, 11) : odd_in(17, 49));
        run_fused(c, name, &type, &h2, 1, k, ms, n_m, 1, 0);
        if (ki == 0) run_fused(c, name, &type, &h2, 1, k, ms, n_m, 2, 0);
    }
}

static void test_fused(ctx *c)
{
    static const int64_t ms[] = {1, 5, 16, 17};
    const int n_m = (int)(sizeof ms / sizeof ms[0]);
    /* Four parts of four types (a float one among them), odd row counts. */
    int t4[] = {KQ_TYPE_Q4_K, KQ_TYPE_Q6_K, KQ_TYPE_F16, KQ_TYPE_Q8_0};
    int64_t r4[] = {7, 9, 5, 3};
    run_fused(c, "fused q4_K+q6_K+f16+q8_0", t4, r4, 4, 512, ms, n_m, 0, 0);
    int t3[] = {KQ_TYPE_Q5_K, KQ_TYPE_Q4_0, KQ_TYPE_Q4_K};
    int64_t r3[] = {33, 1, 14};
    run_fused(c, "fused q5_K+q4_0+q4_K", t3, r3, 3, 14336, ms, n_m, 0, 0);
    /* The types of issue 13 side by side (each part's piece decoder in the
     * float-x kernel; rows of 16-byte multiples or not). */
    int tn[] = {KQ_TYPE_Q5_0, KQ_TYPE_IQ4_XS, KQ_TYPE_Q3_K, KQ_TYPE_MXFP4, KQ_TYPE_Q2_K};
    int64_t rn[] = {7, 9, 5, 3, 11};
    run_fused(c, "fused q5_0+iq4_xs+q3_K+mxfp4+q2_K", tn, rn, 5, 512, ms, n_m, 0, 0);
    int tl[] = {KQ_TYPE_Q4_1, KQ_TYPE_Q5_1, KQ_TYPE_IQ4_NL};
    int64_t rl[] = {13, 6, 9};
    run_fused(c, "fused q4_1+q5_1+iq4_nl", tl, rl, 3, 1024, ms, n_m, 0, 0);
    /* One 32-value type in several parts, Gemma's width: the m = 1 direct
     * kernel walks each part's rows in groups, and parts of odd row counts
     * end in a group whose bytes are not a multiple of 16. */
    int t5[] = {KQ_TYPE_Q5_0, KQ_TYPE_Q5_0, KQ_TYPE_Q5_0};
    int64_t r5[] = {7, 13, 30};
    run_fused(c, "fused q5_0 x3, K = 640", t5, r5, 3, 640, ms, n_m, 0, 0);
    int t8[] = {KQ_TYPE_Q8_0, KQ_TYPE_Q8_0};
    int64_t r8[] = {5, 11};
    run_fused(c, "fused q8_0 x2, K = 640", t8, r8, 2, 640, ms, n_m, 0, 0);
    /* Mixed 32-value types: Gemma 3's q/k/v in a Q4_K_M file (q5_0 and
     * q8_0 at K = 640), and all seven side by side, on the m = 1 direct
     * kernel's per-group type switch. */
    int tq[] = {KQ_TYPE_Q5_0, KQ_TYPE_Q5_0, KQ_TYPE_Q8_0};
    int64_t rq[] = {31, 9, 9};
    run_fused(c, "fused q5_0+q5_0+q8_0, K = 640", tq, rq, 3, 640, ms, n_m, 0, 0);
    int t7[] = {KQ_TYPE_Q4_0, KQ_TYPE_Q4_1, KQ_TYPE_Q5_0, KQ_TYPE_Q5_1, KQ_TYPE_Q8_0,
                KQ_TYPE_IQ4_NL, KQ_TYPE_MXFP4};
    int64_t r7[] = {3, 5, 7, 2, 9, 4, 11};
    run_fused(c, "fused all seven 32-value types", t7, r7, 7, 96, ms, n_m, 0, 0);
    /* A part of many rows: the direct kernel's groups of 8 rows (5 whole
     * chunks of 32 blocks), where the small parts above take groups of 2. */
    static const int64_t m18[] = {1, 8};
    int tb[] = {KQ_TYPE_Q5_0, KQ_TYPE_Q8_0};
    int64_t rb[] = {8203, 9};
    run_fused(c, "fused q5_0 (8203 rows)+q8_0, K = 640", tb, rb, 2, 640, m18, 2, 0, 0);
    /* GeGLU (Gemma 3's feed-forward): q5_0 gate and up at K = 640 on the
     * m = 1 direct kernel's gated walk (groups of both parts side by side),
     * a mixed pair of one row size (q4_0 and iq4_nl: 18-byte blocks), a
     * pair of different row sizes (the float-x kernel), q4_K on the direct
     * q4_K kernel, and m = 17 on the GEMM. */
    static const int64_t mg[] = {1, 3, 17};
    int tge[] = {KQ_TYPE_Q5_0, KQ_TYPE_Q5_0};
    int64_t rge[] = {37, 37};
    run_fused(c, "geglu q5_0, K = 640", tge, rge, 2, 640, mg, 3, 2, 0);
    int64_t rgl[] = {2051, 2051};
    run_fused(c, "geglu q5_0 (2051 rows), K = 640", tge, rgl, 2, 640, m18, 2, 2, 0);
    int tgm[] = {KQ_TYPE_Q4_0, KQ_TYPE_IQ4_NL};
    int64_t rgm[] = {29, 29};
    run_fused(c, "geglu gate q4_0, up iq4_nl, K = 96", tgm, rgm, 2, 96, mg, 3, 2, 0);
    int tgd[] = {KQ_TYPE_Q8_0, KQ_TYPE_Q5_1};
    run_fused(c, "geglu gate q8_0, up q5_1, K = 640", tgd, rgm, 2, 640, mg, 3, 2, 0);
    int tgk[] = {KQ_TYPE_Q4_K, KQ_TYPE_Q4_K};
    int64_t rgk[] = {45, 45};
    run_fused(c, "geglu q4_K, K = 2048", tgk, rgk, 2, 2048, mg, 3, 2, 0);
    int tgn[] = {KQ_TYPE_Q2_K, KQ_TYPE_IQ4_NL};
    int64_t rgn[] = {17, 17};
    run_fused(c, "swiglu gate q2_K, up iq4_nl", tgn, rgn, 2, 1024, ms, n_m, 1, 0);
    /* SwiGLU: gate and up of different types (the general path), and of one
     * type split over parts so gate and up rows come from different parts. */
    int tg[] = {KQ_TYPE_Q4_K, KQ_TYPE_Q6_K};
    int64_t rg[] = {19, 19};
    run_fused(c, "swiglu gate q4_K, up q6_K", tg, rg, 2, 1024, ms, n_m, 1, 0);
    int ts[] = {KQ_TYPE_Q4_K, KQ_TYPE_Q4_K, KQ_TYPE_Q4_K};
    int64_t rs[] = {6, 15, 21};
    run_fused(c, "swiglu q4_K in 3 parts", ts, rs, 3, 2048, ms, n_m, 1, 0);
    /* x not 16-byte aligned: every type through the simple path. */
    int tu[] = {KQ_TYPE_Q4_K, KQ_TYPE_Q6_K, KQ_TYPE_Q4_0};
    int64_t ru[] = {5, 7, 3};
    run_fused(c, "unaligned x", tu, ru, 3, 512, ms, n_m, 0, 1);
    run_fused(c, "unaligned x", tu, ru, 2, 512, ms, n_m, 1, 1);
    int tun[] = {KQ_TYPE_MXFP4, KQ_TYPE_Q3_K, KQ_TYPE_IQ4_XS, KQ_TYPE_Q5_1};
    int64_t rnu[] = {5, 7, 3, 4};
    run_fused(c, "unaligned x, new types", tun, rnu, 4, 512, ms, n_m, 0, 1);
}

int main(int argc, char **argv)
{
    kt_init("test_cuda_linear");
    ctx c = {0};
    /* gemm=off: these are the batched-decode kernels' tests (every m here
     * would otherwise take the tensor-core GEMM from m = 17 on, which
     * test_cuda_gemm checks against its own fp16 error bound). */
    int rc = kc_open("cuda:gemm=off", &c.gpu);
    if (rc) return rc;
    if (!KT_OK(kq_backend_open("cpu-ref", &c.ref))) return kt_finish();
    printf("device: %s\n", kq_backend_device(c.gpu));
    const char *only = argc > 1 ? argv[1] : NULL;
    for (int i = 0; i < kt_n_weight_types; i++)
        if (!only || strcmp(only, kq_type_name(kt_weight_types[i])) == 0)
            test_type(&c, kt_weight_types[i]);
    if (!only || strcmp(only, "fused") == 0) test_fused(&c);
    kq_backend_close(c.gpu);
    kq_backend_close(c.ref);
    return kt_finish();
}
