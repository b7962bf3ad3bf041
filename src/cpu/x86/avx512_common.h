/* Helpers shared by the AVX-512 tile kernels (avx512_*.c, compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512dq plus AVX2/FMA/F16C; files named
 * *avx512*vnni* also with -mavx512vnni). The kernels keep the AVX2 shape
 * (avx2_common.h: blocks outer, tile rows inner, NC int32 sums in
 * registers) with twice the width: one zmm holds 64 values of a k-quant
 * block, or two whole 32-value blocks of q4_0/q8_0. */
#ifndef KQ_CPU_X86_AVX512_COMMON_H
#define KQ_CPU_X86_AVX512_COMMON_H

#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)

/* AVX512F only (no DQ), as kq__isa_available checks F/BW/VL. */
KQ_X86_INLINE float kq_x86_hsum512(__m512 v)
{
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    return kq_x86_hsum(h);
}

/* KQ_X86_KEEP for zmm: "v" lets it stay in any of the 32 registers. */
#define KQ_X86_KEEP512(v) __asm__("" : "+v"(v))

KQ_X86_INLINE __m512i kq_x86_load512(const void *p)
{
    return _mm512_loadu_si512(p);
}

/* Two 256-bit vectors as one zmm: a in the low half, b in the high. */
KQ_X86_INLINE __m512i kq_x86_join(__m256i a, __m256i b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

/* The AVX-512 kernel tables, one per row of formats/type_list.h: [0] small
 * tiles (decode), [1] large m. The _vnni ones are handed out only where the
 * CPU has VNNI. */
#define KQ_AVX512_DECLARE(id, name, block, elems, act)  \
    extern const kq_ukernel kq__avx512_##name[2];      \
    extern const kq_ukernel kq__avx512_vnni_##name[2];
KQ_QUANT_TYPES(KQ_AVX512_DECLARE)
#undef KQ_AVX512_DECLARE

#endif
#endif
