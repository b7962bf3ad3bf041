#include "parallel.h"

#include <pthread.h>

#define KQ_PAR_MAX 256

typedef struct range_job {
    kq_range_fn fn;
    void *ctx;
    int64_t begin, end;
} range_job;

static void *run_job(void *p)
{
    range_job *j = p;
    j->fn(j->ctx, j->begin, j->end);
    return NULL;
}

int kq__parallel_for(int n_threads, int64_t n, kq_range_fn fn, void *ctx)
{
    if (n_threads > KQ_PAR_MAX) n_threads = KQ_PAR_MAX;
    if (n_threads > n) n_threads = (int)n;
    if (n_threads <= 1) {
        if (n > 0) fn(ctx, 0, n);
        return 0;
    }
    range_job jobs[KQ_PAR_MAX];
    pthread_t tids[KQ_PAR_MAX];
    int started[KQ_PAR_MAX] = {0};
    int rc = 0;
    for (int t = 0; t < n_threads; t++) {
        jobs[t].fn = fn;
        jobs[t].ctx = ctx;
        jobs[t].begin = n * t / n_threads;
        jobs[t].end = n * (t + 1) / n_threads;
    }
    for (int t = 1; t < n_threads; t++)
        started[t] = pthread_create(&tids[t], NULL, run_job, &jobs[t]) == 0;
    fn(ctx, jobs[0].begin, jobs[0].end);
    for (int t = 1; t < n_threads; t++) {
        if (started[t]) {
            pthread_join(tids[t], NULL);
        } else { /* could not spawn: do that share here */
            fn(ctx, jobs[t].begin, jobs[t].end);
            rc = -1;
        }
    }
    return rc;
}
