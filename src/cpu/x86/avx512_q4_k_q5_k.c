/* q4_K and q5_K tile kernels for AVX-512 BW without VNNI; the body and its
 * strategy are in avx512_q4_k_q5_k.h.
 *
 * Measured (avx512.c says how), q4_K / q5_K: nc 1: 17.7 / 17.9 GB/s of
 * weights; nc 4: 96 / 93 GOP/s; nc 8: 118 / 115 GOP/s. */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 0
#define KQ_X86_SUFFIX bw
#include "cpu/x86/avx512_q4_k_q5_k.h"

const kq_ukernel kq__avx512_q4_K[2] = {
    {"q4_K avx512 4x4", 4, 4, q4k_avx512_bw},
    {"q4_K avx512 4x8", 4, 8, q4k_avx512_bw},
};

const kq_ukernel kq__avx512_q5_K[2] = {
    {"q5_K avx512 4x4", 4, 4, q5k_avx512_bw},
    {"q5_K avx512 4x8", 4, 8, q5k_avx512_bw},
};
#endif
