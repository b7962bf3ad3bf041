/* q6_K tile kernel for AVX-512 BW without VNNI; the body and its strategy
 * are in avx512_q6_k.h.
 *
 * Measured (avx512.c says how): nc 1: 24.2 GB/s of weights; nc 4: 102
 * GOP/s; nc 8: 116 GOP/s. */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 0
#define KQ_X86_SUFFIX bw
#include "cpu/x86/avx512_q6_k.h"

const kq_ukernel kq__avx512_q6_K[2] = {
    {"q6_K avx512 4x4", 4, 4, q6k_avx512_bw},
    {"q6_K avx512 4x8", 4, 8, q6k_avx512_bw},
};
#endif
