/* Several caller threads forward the same loaded objects at once: each gets
 * exactly the result one thread gets alone (the objects are read-only after
 * load, and error messages are per thread). Then several threads open one
 * file, load from it in place and free, all at once: the mapping registry
 * and the reference counts stay consistent (make test-tsan runs this under
 * ThreadSanitizer). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define THREADS 4
#define ROUNDS 8

typedef struct shared {
    kq_backend *b;
    const kq_linear *l;
    const kq_experts *e;
    int64_t m, k, n, top_k, ne;
    const float *x;
    const int32_t *ids;
    const float *want_l, *want_e; /* single-thread results */
    int mismatches, errors, message_leaks;
} shared;

static void *worker(void *p)
{
    shared *s = p;
    float *yl = malloc((size_t)(s->m * s->n) * sizeof *yl);
    float *ye = malloc((size_t)(s->m * s->top_k * s->ne) * sizeof *ye);
    int bad = 0, errs = 0, leaks = 0;
    for (int r = 0; r < ROUNDS; r++) {
        kt_poison(yl, s->m * s->n);
        kt_poison(ye, s->m * s->top_k * s->ne);
        errs += kq_linear_forward(s->b, s->l, s->x, yl, s->m) != KQ_OK;
        errs += kq_experts_forward(s->b, s->e, s->x, s->k, 0, s->ids, s->m, s->top_k, ye) != KQ_OK;
        bad += memcmp(yl, s->want_l, (size_t)(s->m * s->n) * sizeof *yl) != 0;
        bad += memcmp(ye, s->want_e, (size_t)(s->m * s->top_k * s->ne) * sizeof *ye) != 0;
        /* Another thread's failure must not show in this thread's message. */
        leaks += kq_last_error()[0] != '\0';
    }
    free(yl);
    free(ye);
    __atomic_add_fetch(&s->mismatches, bad, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->errors, errs, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->message_leaks, leaks, __ATOMIC_RELAXED);
    return NULL;
}

/* Meanwhile one thread keeps failing on purpose. */
static void *failer(void *p)
{
    shared *s = p;
    int wrong = 0;
    for (int r = 0; r < ROUNDS * 4; r++) {
        kq_status st = kq_linear_forward(s->b, s->l, s->x, NULL, s->m);
        wrong += st != KQ_ERR_INVALID_ARG || !strstr(kq_last_error(), "y is NULL");
    }
    __atomic_add_fetch(&s->errors, wrong, __ATOMIC_RELAXED);
    return NULL;
}

static void run(const char *spec)
{
    kq_backend *b = NULL;
    if (!KT_OK(kq_backend_open(spec, &b))) return;
    shared s = {.b = b, .m = 5, .k = 512, .n = 29, .top_k = 3, .ne = 11};
    kt_weight wl, we;
    if (kt_weight_make(&wl, KQ_TYPE_Q5_K, s.n, s.k) || kt_weight_make(&we, KQ_TYPE_Q4_0, s.ne * 6, s.k)) {
        KT_CHECK(0, "weights: %s", kq_last_error());
        return;
    }
    kq_linear *l = NULL;
    kq_experts *e = NULL;
    KT_OK(kq_linear_load(b, wl.type, wl.bytes, wl.nbytes, s.n, s.k, &l));
    KT_OK(kq_experts_load(b, we.type, we.bytes, we.nbytes, 6, s.ne, s.k, &e));
    float *x = malloc((size_t)(s.m * s.k) * sizeof *x);
    float *want_l = malloc((size_t)(s.m * s.n) * sizeof *want_l);
    float *want_e = malloc((size_t)(s.m * s.top_k * s.ne) * sizeof *want_e);
    int32_t ids[5 * 3];
    kt_fill_normal(x, s.m * s.k, 1.0f);
    for (int i = 0; i < 15; i++) ids[i] = (int32_t)kt_range(0, 5);
    if (l && e && KT_OK(kq_linear_forward(b, l, x, want_l, s.m)) &&
        KT_OK(kq_experts_forward(b, e, x, s.k, 0, ids, s.m, s.top_k, want_e))) {
        s.l = l, s.e = e, s.x = x, s.ids = ids, s.want_l = want_l, s.want_e = want_e;
        pthread_t t[THREADS + 1];
        for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, &s);
        pthread_create(&t[THREADS], NULL, failer, &s);
        for (int i = 0; i <= THREADS; i++) pthread_join(t[i], NULL);
        KT_CHECK(s.mismatches == 0, "%s: %d results differ from the single-thread run", spec,
                 s.mismatches);
        KT_CHECK(s.errors == 0, "%s: %d calls failed or failed wrongly", spec, s.errors);
        KT_CHECK(s.message_leaks == 0, "%s: %d successful calls saw an error message", spec,
                 s.message_leaks);
    }
    free(x);
    free(want_l);
    free(want_e);
    kq_linear_free(l);
    kq_experts_free(e);
    kq_backend_close(b);
    kt_weight_free(&wl);
    kt_weight_free(&we);
}

/* ---------------------------------------------------------------- loads */

typedef struct loader {
    kq_backend *b;
    const kq_gguf *shared; /* one handle for all threads, or NULL: open your own */
    const char *path;
    const float *x, *want_l, *want_e;
    const int32_t *ids;
    int64_t m, k, n, top_k, ne;
    int failures;
} loader;

/* Loads the linear and the experts in place, forwards, frees; repeatedly. */
static void *load_worker(void *p)
{
    loader *s = p;
    float *yl = malloc((size_t)(s->m * s->n) * sizeof *yl);
    float *ye = malloc((size_t)(s->m * s->top_k * s->ne) * sizeof *ye);
    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        kq_gguf *own = NULL;
        const kq_gguf *g = s->shared;
        if (!g) {
            if (kq_gguf_open(s->path, &own) != KQ_OK) {
                bad++;
                continue;
            }
            g = own;
        }
        kq_linear *l = NULL;
        kq_experts *e = NULL;
        bad += kq_linear_from_gguf(s->b, g, "w", &l) != KQ_OK;
        bad += kq_experts_from_gguf(s->b, g, "exps", &e) != KQ_OK;
        kq_gguf_close(own); /* the objects keep the mapping */
        if (l && e) {
            kt_poison(yl, s->m * s->n);
            kt_poison(ye, s->m * s->top_k * s->ne);
            bad += !kq_linear_is_zero_copy(l) || !kq_experts_is_zero_copy(e);
            bad += kq_linear_forward(s->b, l, s->x, yl, s->m) != KQ_OK;
            bad += kq_experts_forward(s->b, e, s->x, s->k, 0, s->ids, s->m, s->top_k, ye) != KQ_OK;
            bad += memcmp(yl, s->want_l, (size_t)(s->m * s->n) * sizeof *yl) != 0;
            bad += memcmp(ye, s->want_e, (size_t)(s->m * s->top_k * s->ne) * sizeof *ye) != 0;
        }
        kq_linear_free(l);
        kq_experts_free(e);
    }
    free(yl);
    free(ye);
    __atomic_add_fetch(&s->failures, bad, __ATOMIC_RELAXED);
    return NULL;
}

static void run_loads(const char *spec)
{
    kq_backend *b = NULL;
    if (!KT_OK(kq_backend_open(spec, &b))) return;
    loader s = {.b = b, .m = 3, .k = 256, .n = 7, .top_k = 2, .ne = 5};
    kt_weight wl, we;
    if (kt_weight_make(&wl, KQ_TYPE_Q4_K, s.n, s.k) ||
        kt_weight_make(&we, KQ_TYPE_Q8_0, s.ne * 4, s.k)) {
        KT_CHECK(0, "weights: %s", kq_last_error());
        kq_backend_close(b);
        return;
    }
    kq_gguf_writer *w = NULL;
    int64_t ne_l[2] = {s.k, s.n}, ne_e[3] = {s.k, s.ne, 4};
    const char *path = kt_tmp_path("threads.gguf");
    kq_gguf *g = NULL;
    kq_linear *l = NULL;
    kq_experts *e = NULL;
    float x[3 * 256], want_l[3 * 7], want_e[3 * 2 * 5];
    int32_t ids[6] = {0, 3, 2, 2, 1, 0};
    kt_fill_normal(x, 3 * 256, 1.0f);
    if (KT_OK(kq_gguf_writer_new(3, &w)) &&
        KT_OK(kq_gguf_writer_add_tensor(w, "w", wl.type, 2, ne_l, wl.bytes, wl.nbytes)) &&
        KT_OK(kq_gguf_writer_add_tensor(w, "exps", we.type, 3, ne_e, we.bytes, we.nbytes)) &&
        KT_OK(kq_gguf_writer_save(w, path)) && KT_OK(kq_gguf_open(path, &g)) &&
        KT_OK(kq_linear_from_gguf(b, g, "w", &l)) && KT_OK(kq_experts_from_gguf(b, g, "exps", &e)) &&
        KT_OK(kq_linear_forward(b, l, x, want_l, s.m)) &&
        KT_OK(kq_experts_forward(b, e, x, s.k, 0, ids, s.m, s.top_k, want_e))) {
        s.path = path, s.x = x, s.ids = ids, s.want_l = want_l, s.want_e = want_e;
        loader own = s, shared = s;
        shared.shared = g;
        pthread_t t[2 * THREADS];
        for (int i = 0; i < THREADS; i++) {
            pthread_create(&t[i], NULL, load_worker, &shared);
            pthread_create(&t[THREADS + i], NULL, load_worker, &own);
        }
        for (int i = 0; i < 2 * THREADS; i++) pthread_join(t[i], NULL);
        KT_CHECK(shared.failures == 0, "%s: %d failures loading from one shared handle", spec,
                 shared.failures);
        KT_CHECK(own.failures == 0, "%s: %d failures with a handle per load", spec, own.failures);
    }
    kq_linear_free(l);
    kq_experts_free(e);
    kq_gguf_close(g);
    kq_gguf_writer_free(w);
    unlink(path);
    kt_weight_free(&wl);
    kt_weight_free(&we);
    kq_backend_close(b);
}

int main(void)
{
    kt_init("test_threads");
    run("cpu-ref:threads=1");
    run("cpu:threads=3");
    run_loads("cpu-ref:threads=2");
    run_loads("cpu");
    return kt_finish();
}
