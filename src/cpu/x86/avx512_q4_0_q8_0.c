/* q4_0 and q8_0 tile kernels for AVX-512 BW without VNNI (maddubs); the body
 * and its strategy are in avx512_q4_0_q8_0.h.
 *
 * Measured (avx512.c says how), q4_0 / q8_0: nc 1: 9.3 / 23.6 GB/s of
 * weights; nc 4: 52 / 55 GOP/s; nc 8: 78 / 81 GOP/s. */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 0
#define KQ_X86_SUFFIX bw
#include "cpu/x86/avx512_q4_0_q8_0.h"

const kq_ukernel kq__avx512_q4_0[2] = {
    {"q4_0 avx512 4x4", 4, 4, q40_avx512_bw},
    {"q4_0 avx512 4x8", 4, 8, q40_avx512_bw},
};

const kq_ukernel kq__avx512_q8_0[2] = {
    {"q8_0 avx512 4x4", 4, 4, q80_avx512_bw},
    {"q8_0 avx512 4x8", 4, 8, q80_avx512_bw},
};
#endif
