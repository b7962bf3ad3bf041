/* The dotprod part of the CPU int8 ceiling, built apart with the extension
 * enabled (neon_dotprod_peak.c). */
#ifndef KQ_CPU_ARM_NEON_PEAK_H
#define KQ_CPU_ARM_NEON_PEAK_H

#include <stdint.h>

/* Independent sdot accumulators: enough to cover the latency. */
#define KQ_NEON_PEAK_ACCS 12

#if defined(__aarch64__)
/* iters iterations of KQ_NEON_PEAK_ACCS sdot (16 int8 products each); the
 * result only keeps the work from being optimized away. */
uint64_t kq__neon_dotprod_peak_loop(int64_t iters);
#endif

#endif
