/* Splits [0, n) into contiguous ranges over up to n_threads threads; the
 * calling thread takes the first range. Threads are created per call: this
 * serves the reference backend, where clarity beats the cost of a spawn. */
#ifndef KQ_CPU_PARALLEL_H
#define KQ_CPU_PARALLEL_H

#include <stdint.h>

typedef void (*kq_range_fn)(void *ctx, int64_t begin, int64_t end);

/* Returns 0, or -1 when no thread could be started (then the caller's thread
 * has done all of the work itself: the result is still complete). */
int kq__parallel_for(int n_threads, int64_t n, kq_range_fn fn, void *ctx);

#endif
