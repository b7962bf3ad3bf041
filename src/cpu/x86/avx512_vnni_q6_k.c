/* q6_K tile kernel for AVX-512 with VNNI (vpdpbusd, then one madd by the
 * sub-block scales per two zmm); the body and its strategy are in
 * avx512_q6_k.h.
 *
 * Measured (avx512.c says how): nc 1: 27.8 GB/s of weights; nc 4: 114
 * GOP/s; nc 8: 123 GOP/s (AVX2 in the same run: 20.5 GB/s, 98 GOP/s;
 * another run reached 31.8 GB/s and 151 GOP/s). */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 1
#define KQ_X86_SUFFIX vnni
#include "cpu/x86/avx512_q6_k.h"

const kq_ukernel kq__avx512_vnni_q6_K[2] = {
    {"q6_K avx512-vnni 4x4", 4, 4, q6k_avx512_vnni},
    {"q6_K avx512-vnni 4x8", 4, 8, q6k_avx512_vnni},
};
#endif
