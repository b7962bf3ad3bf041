/* q2_K, q3_K and iq4_xs tile kernels, AVX2: the bodies shared with AVX-512
 * are x86_q2_k_q3_k.h and x86_iq4_xs.h (their headers give the strategy).
 *
 * Measured (avx2.c says how; best of 400 passes, machine loaded by other
 * jobs), q2_K / q3_K / iq4_xs: nc 1: 13.5 / 12.9 / 14.5 GB/s of weights
 * (q4_K 20.4 in the same run: these pay a shift, a mask and a scale shuffle
 * per 32 values of 2 or 4 bits, q4_K per 64); nc 4: 136 / 118 / 94 GOP/s;
 * nc 8: 136 / 120 / 108 GOP/s (q4_K 119 / 129), at the maddubs bound for the
 * 2-bit types; iq4_xs pays two vpsignb per 32 values for its signed grid. */
#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)
#define KQ_X86_SUFFIX avx2
#define KQ_X86_TABLE(name) kq__avx2_##name
#define KQ_X86_LABEL "avx2"
#include "cpu/x86/x86_iq4_xs.h"
#include "cpu/x86/x86_q2_k_q3_k.h"

KQ_X86_TILE256_TABLE(q2_K, Q23_FN(q2k_tile_), Q23_FN(q2k_avx2_))
KQ_X86_TILE256_TABLE(q3_K, Q23_FN(q3k_tile_), Q23_FN(q3k_avx2_))
KQ_X86_TILE256_TABLE(iq4_xs, IQ4XS_FN(iq4xs_tile_), IQ4XS_FN(iq4xs_avx2_))
#endif
