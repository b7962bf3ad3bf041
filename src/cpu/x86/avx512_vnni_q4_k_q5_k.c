/* q4_K and q5_K tile kernels for AVX-512 with VNNI (vpdpbusd, then one
 * madd by the sub-block scales per two zmm); the body and its strategy are
 * in avx512_q4_k_q5_k.h.
 *
 * Measured (avx512.c says how), q4_K / q5_K: nc 1: 19.5 / 19.3 GB/s of
 * weights; nc 4: 108 / 101 GOP/s; nc 8: 135 / 127 GOP/s (AVX2 in the same
 * run: 18.1 / 15.4 GB/s, 102 / 90 GOP/s; another run reached 23 GB/s and
 * 172 GOP/s for q4_K). */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 1
#define KQ_X86_SUFFIX vnni
#include "cpu/x86/avx512_q4_k_q5_k.h"

const kq_ukernel kq__avx512_vnni_q4_K[2] = {
    {"q4_K avx512-vnni 4x4", 4, 4, q4k_avx512_vnni},
    {"q4_K avx512-vnni 4x8", 4, 8, q4k_avx512_vnni},
};

const kq_ukernel kq__avx512_vnni_q5_K[2] = {
    {"q5_K avx512-vnni 4x4", 4, 4, q5k_avx512_vnni},
    {"q5_K avx512-vnni 4x8", 4, 8, q5k_avx512_vnni},
};
#endif
