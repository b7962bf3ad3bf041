/* Thread pool (pool.h). A run publishes (fn, ctx) and bumps a generation
 * counter; workers watch the counter, spinning for up to ~100 us before
 * they sleep on `wake`. The caller works as thread 0, then waits for the
 * pending count to reach zero the same way (spin, then sleep on `done`).
 * The generation bump and the sleepers' check both happen under the mutex,
 * so no wake-up is lost; the spinning paths use only the atomics. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_NS 100000 /* how long an idle thread polls before it sleeps */

struct kq_pool {
    int n; /* threads in all, caller included */
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_uint gen;
    atomic_int pending; /* workers still running the current job */
    atomic_int stop;
    kq_pool_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    kq_pool *p;
    int tid;
} worker_arg;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Polls for a new generation (or stop) for up to SPIN_NS; 1 if one came.
 * spin_pending likewise waits for the workers to finish. */
static int spin_gen(kq_pool *p, unsigned seen)
{
    long long until = 0;
    for (int i = 0;; i++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen ||
            atomic_load_explicit(&p->stop, memory_order_relaxed))
            return 1;
        cpu_relax();
        if ((i & 255) == 255) {
            long long t = now_ns();
            if (!until) until = t + SPIN_NS;
            else if (t > until) return 0;
        }
    }
}

static int spin_pending(kq_pool *p)
{
    long long until = 0;
    for (int i = 0;; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return 1;
        cpu_relax();
        if ((i & 255) == 255) {
            long long t = now_ns();
            if (!until) until = t + SPIN_NS;
            else if (t > until) return 0;
        }
    }
}

static void *worker_main(void *v)
{
    worker_arg *wa = v;
    kq_pool *p = wa->p;
    int tid = wa->tid;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        if (!spin_gen(p, seen)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        p->fn(p->ctx, tid, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

kq_pool *kq__pool_create(int n_threads)
{
    kq_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (n_threads < 1) n_threads = 1;
    p->tids = calloc((size_t)n_threads, sizeof *p->tids);
    if (!p->tids) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    p->n = 1;
    /* Workers are numbered in start order, so a failed start leaves a
     * smaller pool with contiguous thread indices. */
    for (int t = 1; t < n_threads; t++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->p = p;
        wa->tid = t;
        if (pthread_create(&p->tids[t], NULL, worker_main, wa) != 0) {
            free(wa);
            break;
        }
        p->n = t + 1;
    }
    return p;
}

int kq__pool_threads(const kq_pool *p) { return p->n; }

void kq__pool_run(kq_pool *p, kq_pool_fn fn, void *ctx)
{
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    if (!spin_pending(p)) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void kq__pool_destroy(kq_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++) pthread_join(p->tids[t], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p);
}
