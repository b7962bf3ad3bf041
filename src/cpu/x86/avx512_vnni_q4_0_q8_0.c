/* q4_0 and q8_0 tile kernels for AVX-512 with VNNI (vpdpbusd sums four
 * u8 x s8 products straight into int32, one operation where maddubs + madd
 * take two); the body and its strategy are in avx512_q4_0_q8_0.h.
 *
 * Measured (avx512.c says how), q4_0 / q8_0: nc 1: 10.8 / 26.9 GB/s of
 * weights; nc 4: 61 / 62 GOP/s; nc 8: 94 / 97 GOP/s (AVX2 in the same run:
 * 10.1 / 23.6 GB/s, 55 / 55 GOP/s). */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 1
#define KQ_X86_SUFFIX vnni
#include "cpu/x86/avx512_q4_0_q8_0.h"

const kq_ukernel kq__avx512_vnni_q4_0[2] = {
    {"q4_0 avx512-vnni 4x4", 4, 4, q40_avx512_vnni},
    {"q4_0 avx512-vnni 4x8", 4, 8, q40_avx512_vnni},
};

const kq_ukernel kq__avx512_vnni_q8_0[2] = {
    {"q8_0 avx512-vnni 4x4", 4, 4, q80_avx512_vnni},
    {"q8_0 avx512-vnni 4x8", 4, 8, q80_avx512_vnni},
};
#endif
