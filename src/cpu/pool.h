/* A persistent thread pool for the "cpu" backend: threads are created at
 * open and joined at close, never per call. A run hands one function to
 * every thread (the caller is thread 0) and returns when all have finished;
 * the function splits the work itself (drivers take work units from an
 * atomic counter). Idle workers spin briefly for the next run, then sleep on
 * a condition variable, so back-to-back small calls do not pay a wake-up and
 * an idle process burns no CPU. One run at a time: callers serialize above. */
#ifndef KQ_CPU_POOL_H
#define KQ_CPU_POOL_H

typedef struct kq_pool kq_pool;

/* fn(ctx, thread index, thread count). */
typedef void (*kq_pool_fn)(void *ctx, int tid, int n_threads);

/* n_threads in all, the caller included. Returns NULL only when memory runs
 * out; if some threads cannot be started the pool runs with fewer
 * (kq__pool_threads says how many). */
kq_pool *kq__pool_create(int n_threads);
void kq__pool_destroy(kq_pool *p); /* NULL is a no-op */
int kq__pool_threads(const kq_pool *p);
void kq__pool_run(kq_pool *p, kq_pool_fn fn, void *ctx);

#endif
