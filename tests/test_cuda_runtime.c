/* The cuda backend's runtime side: kq_alloc and the copies, the caller's
 * own stream (kq_backend_set_stream), a sequence of forward calls captured
 * in a CUDA graph and replayed on fresh inputs (same results as the calls
 * made directly), weights loaded from a GGUF file (device upload from the
 * mapping, and host_weights=1 reading the registered mapping or a pinned
 * copy) against cpu-ref. Tolerances: cuda_testutil.h. */
#include "cuda_testutil.h"

#ifdef KQ_HAVE_CUDA
#include <cuda_runtime_api.h>

#define CU_OK(call)                                                                          \
    KT_CHECK((call) == cudaSuccess, "%s: %s", #call, cudaGetErrorString(cudaGetLastError()))

static void test_memory(kq_backend *b)
{
    void *p = NULL;
    KT_OK(kq_alloc(b, 1000, &p));
    KT_CHECK(p && ((uintptr_t)p & 255) == 0, "kq_alloc: %p is 256-byte aligned", p);
    unsigned char src[1000], back[1000];
    kt_fill_bytes(src, sizeof src);
    memset(back, 0, sizeof back);
    KT_OK(kq_copy_to_device(b, p, src, sizeof src));
    KT_OK(kq_copy_to_host(b, back, p, sizeof back));
    KT_CHECK(memcmp(src, back, sizeof src) == 0, "round trip through device memory");
    kq_free(b, p);
    kq_free(b, NULL);
    /* Too much to allocate: a status, not a crash. */
    KT_CHECK(kq_alloc(b, (size_t)1 << 62, &p) == KQ_ERR_NO_MEMORY && p == NULL,
             "kq_alloc of 4 EiB: %s", kq_last_error());
}

/* y = W x on the device for a host x; returns the host copy of y. */
static float *forward(kq_backend *b, kq_linear *l, const float *x, int64_t m)
{
    int64_t k = kq_linear_cols(l), n = kq_linear_rows(l);
    float *dx = kc_upload(b, x, m * k), *dy = kc_poisoned(b, m * n), *y = NULL;
    if (dx && dy && KT_OK(kq_linear_forward(b, l, dx, dy, m))) y = kc_download(b, dy, m * n);
    kq_free(b, dx);
    kq_free(b, dy);
    return y;
}

static void test_streams(kq_backend *b)
{
    kt_weight w;
    if (!KT_CHECK(kt_weight_make(&w, KQ_TYPE_Q5_K, 77, 1024) == 0, "weights")) return;
    kq_linear *l = NULL;
    float x[4 * 1024];
    kt_fill_normal(x, 4 * 1024, 1.0f);
    void *own = kq_backend_stream(b);
    KT_CHECK(own != NULL, "the backend has a stream of its own");
    cudaStream_t mine = NULL;
    if (KT_OK(kq_linear_load(b, w.type, w.bytes, w.nbytes, 77, 1024, &l)) &&
        CU_OK(cudaStreamCreate(&mine))) {
        float *y0 = forward(b, l, x, 4);
        KT_OK(kq_backend_set_stream(b, mine));
        KT_CHECK(kq_backend_stream(b) == (void *)mine, "stream() gives the caller's stream");
        float *y1 = forward(b, l, x, 4);
        KT_OK(kq_backend_sync(b));
        KT_CHECK(y0 && y1 && memcmp(y0, y1, sizeof(float) * 4 * 77) == 0,
                 "same results on the caller's stream");
        KT_OK(kq_backend_set_stream(b, NULL));
        KT_CHECK(kq_backend_stream(b) == own, "NULL gives the backend's own stream back");
        free(y0);
        free(y1);
        cudaStreamDestroy(mine);
    }
    kq_linear_free(l);
    kt_weight_free(&w);
}

/* A small layer: h = W1 x, a = swiglu(Wgu h), y = experts_down(a) by ids. */
typedef struct layer {
    kt_weight w1, wgu, wd;
    kq_linear *l1, *lgu;
    kq_experts *ed;
    float *x, *h, *a, *y;
    int32_t *ids;
} layer;

enum { LM = 3, LK = 256, LN1 = 512, LH = 256, LE = 5, LTOP = 2, LND = 99 };

static int layer_make(kq_backend *b, layer *L)
{
    memset(L, 0, sizeof *L);
    if (kt_weight_make(&L->w1, KQ_TYPE_Q4_K, LN1, LK) || kt_weight_make(&L->wgu, KQ_TYPE_Q6_K, 2 * LH, LN1) ||
        kt_weight_make(&L->wd, KQ_TYPE_Q8_0, LE * LND, LH))
        return -1;
    if (kq_linear_load(b, L->w1.type, L->w1.bytes, L->w1.nbytes, LN1, LK, &L->l1) ||
        kq_linear_load(b, L->wgu.type, L->wgu.bytes, L->wgu.nbytes, 2 * LH, LN1, &L->lgu) ||
        kq_experts_load(b, L->wd.type, L->wd.bytes, L->wd.nbytes, LE, LND, LH, &L->ed))
        return -1;
    L->x = kc_dev(b, LM * LK);
    L->h = kc_dev(b, LM * LN1);
    L->a = kc_dev(b, LM * LH);
    L->y = kc_poisoned(b, LM * LTOP * LND);
    int32_t ids[LM * LTOP] = {4, 0, 0, 4, 2, 2 - 1};
    if (kq_alloc(b, sizeof ids, (void **)&L->ids) || kq_copy_to_device(b, L->ids, ids, sizeof ids))
        return -1;
    return L->x && L->h && L->a && L->y ? 0 : -1;
}

static kq_status layer_run(kq_backend *b, layer *L)
{
    kq_status st = kq_linear_forward(b, L->l1, L->x, L->h, LM);
    if (!st) st = kq_linear_forward_swiglu(b, L->lgu, L->h, L->a, LM);
    if (!st) st = kq_experts_forward(b, L->ed, L->a, LH, 0, L->ids, LM, LTOP, L->y);
    return st;
}

static void layer_free(kq_backend *b, layer *L)
{
    kq_linear_free(L->l1);
    kq_linear_free(L->lgu);
    kq_experts_free(L->ed);
    kt_weight_free(&L->w1);
    kt_weight_free(&L->wgu);
    kt_weight_free(&L->wd);
    kq_free(b, L->x);
    kq_free(b, L->h);
    kq_free(b, L->a);
    kq_free(b, L->y);
    kq_free(b, L->ids);
}

static void test_graph(kq_backend *b)
{
    layer L;
    if (!KT_CHECK(layer_make(b, &L) == 0, "layer: %s", kq_last_error())) {
        layer_free(b, &L);
        return;
    }
    cudaStream_t s = (cudaStream_t)kq_backend_stream(b);
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    int ok = CU_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    kq_status st = layer_run(b, &L); /* queued into the graph, not run */
    ok &= CU_OK(cudaStreamEndCapture(s, &g));
    ok &= KT_CHECK(st == KQ_OK, "forward calls while capturing: %s", kq_last_error());
    ok &= CU_OK(cudaGraphInstantiate(&ge, g, 0));
    float x[LM * LK];
    for (int rep = 0; ok && rep < 3; rep++) {
        kt_fill_normal(x, LM * LK, 1.0f);
        KT_OK(kq_copy_to_device(b, L.x, x, sizeof x));
        if (!CU_OK(cudaGraphLaunch(ge, s)) || !KT_OK(kq_backend_sync(b))) break;
        float *yg = kc_download(b, L.y, LM * LTOP * LND);
        kc_repoison(b, L.y, LM * LTOP * LND);
        KT_OK(layer_run(b, &L));
        float *yd = kc_download(b, L.y, LM * LTOP * LND);
        int64_t nan = 0;
        for (int i = 0; yg && i < LM * LTOP * LND; i++) nan += isnan(yg[i]);
        KT_CHECK(yg && yd && nan == 0 && memcmp(yg, yd, sizeof(float) * LM * LTOP * LND) == 0,
                 "replay %d of the captured layer gives the direct calls' results (%lld NaN)",
                 rep, (long long)nan);
        free(yg);
        free(yd);
    }
    if (ge) cudaGraphExecDestroy(ge);
    if (g) cudaGraphDestroy(g);
    layer_free(b, &L);
}

/* A file with a q4_K and an f16 tensor side by side and a q6_K expert stack. */
static const char *write_file(kt_weight *a, kt_weight *c, kt_weight *e)
{
    const char *path = kt_tmp_path("w.gguf");
    kq_gguf_writer *w = NULL;
    int64_t ne_a[2] = {a->n_cols, a->n_rows}, ne_c[2] = {c->n_cols, c->n_rows};
    int64_t ne_e[3] = {e->n_cols, e->n_rows / 4, 4};
    int ok = kq_gguf_writer_new(3, &w) == KQ_OK &&
             kq_gguf_writer_add_tensor(w, "a", a->type, 2, ne_a, a->bytes, a->nbytes) == KQ_OK &&
             kq_gguf_writer_add_tensor(w, "c", c->type, 2, ne_c, c->bytes, c->nbytes) == KQ_OK &&
             kq_gguf_writer_add_tensor(w, "e", e->type, 3, ne_e, e->bytes, e->nbytes) == KQ_OK &&
             kq_gguf_writer_save(w, path) == KQ_OK;
    kq_gguf_writer_free(w);
    return ok ? path : NULL;
}

static void check_linear(const char *what, kq_backend *b, kq_backend *ref, kq_linear *lg,
                         kq_linear *lr, const float *deq, int q8)
{
    int64_t m = 3, k = kq_linear_cols(lg), n = kq_linear_rows(lg);
    float *x = malloc((size_t)(m * k) * sizeof *x), *want = malloc((size_t)(m * n) * sizeof *want);
    double *dot = malloc((size_t)(m * n) * sizeof *dot), *abs = malloc((size_t)(m * n) * sizeof *abs);
    double *tol = malloc((size_t)(m * n) * sizeof *tol);
    if (x && want && dot && abs && tol) {
        kt_fill_normal(x, m * k, 1.0f);
        KT_OK(kq_linear_forward(ref, lr, x, want, m));
        kc_ref(deq, n, k, x, k, m, dot, abs);
        for (int64_t i = 0; i < m * n; i++)
            tol[i] = q8 ? kc_q8_tol(deq + (i % n) * k, x + (i / n) * k, k, want[i])
                        : kc_sum_tol(k, abs[i], want[i]);
        float *got = forward(b, lg, x, m);
        if (KT_CHECK(got != NULL, "%s: forward: %s", what, kq_last_error()))
            kc_compare(what, got, want, tol, m * n);
        free(got);
    }
    free(x);
    free(want);
    free(dot);
    free(abs);
    free(tol);
}

static void test_gguf(kq_backend *ref, const char *spec)
{
    kq_backend *b = NULL;
    if (!KT_OK(kq_backend_open(spec, &b))) return;
    kt_weight a, c, e;
    memset(&c, 0, sizeof c);
    memset(&e, 0, sizeof e);
    kq_gguf *g = NULL;
    const char *path = NULL;
    if (kt_weight_make(&a, KQ_TYPE_Q4_K, 41, 512) == 0 &&
        kt_weight_make(&c, KQ_TYPE_F16, 3, 512) == 0 &&
        kt_weight_make(&e, KQ_TYPE_Q6_K, 4 * 9, 256) == 0 && (path = write_file(&a, &c, &e)) &&
        KT_OK(kq_gguf_open(path, &g))) {
        kq_linear *lg = NULL, *lr = NULL;
        char what[96];
        snprintf(what, sizeof what, "%s: from_gguf q4_K", spec);
        if (KT_OK(kq_linear_from_gguf(b, g, "a", &lg)) && KT_OK(kq_linear_from_gguf(ref, g, "a", &lr)))
            check_linear(what, b, ref, lg, lr, a.deq, 1);
        kq_linear_free(lg);
        kq_linear_free(lr);
        /* Two tensors of one mapping fused: the second's pages overlap the
         * first's, so host_weights falls back to a pinned copy for it. */
        const char *names[2] = {"a", "c"};
        lg = lr = NULL;
        float *deq = malloc(sizeof(float) * 44 * 512);
        snprintf(what, sizeof what, "%s: fused from_gguf q4_K+f16", spec);
        if (deq && KT_OK(kq_linear_from_gguf_fused(b, g, names, 2, &lg)) &&
            KT_OK(kq_linear_from_gguf_fused(ref, g, names, 2, &lr))) {
            memcpy(deq, a.deq, sizeof(float) * 41 * 512);
            memcpy(deq + 41 * 512, c.deq, sizeof(float) * 3 * 512);
            check_linear(what, b, ref, lg, lr, deq, 0);
        }
        free(deq);
        kq_linear_free(lg);
        kq_linear_free(lr);
        kq_experts *eg = NULL, *er = NULL;
        if (KT_OK(kq_experts_from_gguf(b, g, "e", &eg)) && KT_OK(kq_experts_from_gguf(ref, g, "e", &er))) {
            int32_t ids[4] = {3, 1, 1, 0};
            float x[2 * 256], want[4 * 9];
            kt_fill_normal(x, 2 * 256, 1.0f);
            KT_OK(kq_experts_forward(ref, er, x, 256, 0, ids, 2, 2, want));
            float *dx = kc_upload(b, x, 2 * 256), *dy = kc_poisoned(b, 4 * 9);
            int32_t *dids = NULL;
            double tol[4 * 9];
            for (int p = 0; p < 4; p++)
                for (int r = 0; r < 9; r++) {
                    double d, ab;
                    kc_ref(e.deq + (ids[p] * 9 + r) * 256, 1, 256, x + (p / 2) * 256, 256, 1, &d, &ab);
                    (void)ab; /* q6_K: int8 x */
                    tol[p * 9 + r] = kc_q8_tol(e.deq + (ids[p] * 9 + r) * 256, x + (p / 2) * 256,
                                               256, want[p * 9 + r]);
                }
            if (dx && dy && KT_OK(kq_alloc(b, sizeof ids, (void **)&dids)) &&
                KT_OK(kq_copy_to_device(b, dids, ids, sizeof ids)) &&
                KT_OK(kq_experts_forward(b, eg, dx, 256, 0, dids, 2, 2, dy)) && KT_OK(kq_backend_sync(b))) {
                float *got = kc_download(b, dy, 4 * 9);
                snprintf(what, sizeof what, "%s: experts from_gguf q6_K", spec);
                if (got) kc_compare(what, got, want, tol, 4 * 9);
                free(got);
            }
            kq_free(b, dx);
            kq_free(b, dy);
            kq_free(b, dids);
        }
        kq_experts_free(eg);
        kq_experts_free(er);
    }
    kq_gguf_close(g);
    if (path) remove(path);
    kt_weight_free(&a);
    kt_weight_free(&c);
    kt_weight_free(&e);
    kq_backend_close(b);
}

int main(void)
{
    kt_init("test_cuda_runtime");
    kq_backend *b = NULL, *ref = NULL;
    int rc = kc_open("cuda", &b);
    if (rc) return rc;
    if (!KT_OK(kq_backend_open("cpu-ref", &ref))) return kt_finish();
    test_memory(b);
    test_streams(b);
    test_graph(b);
    test_gguf(ref, "cuda");
    test_gguf(ref, "cuda:host_weights=1");
    kq_backend_close(b);
    kq_backend_close(ref);
    return kt_finish();
}
#else
int main(void)
{
    printf("SKIP: built without CUDA\n");
    return KT_SKIP;
}
#endif
