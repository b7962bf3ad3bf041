/* The sdot loop of the CPU's int8 dot-product ceiling (src/cpu/ceilings.c).
 * It lives apart so that CMake builds it with -march=armv8.2-a+dotprod: a
 * function-level target attribute is not enough for clang 14, whose
 * arm_neon.h declares vdotq_s32 only when the whole file targets dotprod.
 * ceilings.c calls it only on CPUs that report the extension. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "neon_peak.h"

uint64_t kq__neon_dotprod_peak_loop(int64_t iters)
{
    int32x4_t acc[KQ_NEON_PEAK_ACCS];
    int8x16_t a = vdupq_n_s8(3), b = vdupq_n_s8(-5);
    for (int j = 0; j < KQ_NEON_PEAK_ACCS; j++) acc[j] = vdupq_n_s32(j);
    for (int64_t i = 0; i < iters; i++) {
        __asm__ volatile("" : "+w"(a));
        for (int j = 0; j < KQ_NEON_PEAK_ACCS; j++) acc[j] = vdotq_s32(acc[j], a, b);
    }
    for (int j = 1; j < KQ_NEON_PEAK_ACCS; j++) acc[0] = vaddq_s32(acc[0], acc[j]);
    return (uint64_t)vaddvq_s32(acc[0]);
}
#else
typedef int kq__neon_dotprod_peak_empty; /* ISO C wants a declaration per file */
#endif
