/* Helpers shared by the AVX2 tile kernels (avx2_*.c, compiled with -mavx2
 * -mfma -mf16c; the AVX-512 files include it too, for the scalar parts).
 *
 * Every kernel unpacks a weight row's block once into 8-bit vectors and
 * applies it to the tile's NC activation rows (NC a compile-time constant,
 * one instance per value, so the NC int32 sums stay in registers); the float
 * accumulators are touched once per block. With few activation rows each
 * weight row streams through K alone; with many, blocks go outer and the
 * tile's rows inner (KQ_X86_STREAM_NC below). */
#ifndef KQ_CPU_X86_AVX2_COMMON_H
#define KQ_CPU_X86_AVX2_COMMON_H

#if defined(__x86_64__)

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "cpu/ukernel.h"
#include "formats/type_list.h"

#define KQ_X86_INLINE static inline __attribute__((always_inline))
/* The largest tile any x86 kernel declares. */
#define KQ_X86_MR 4
#define KQ_X86_NC 8

KQ_X86_INLINE uint32_t kq_x86_load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

KQ_X86_INLINE uint16_t kq_x86_load_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* fp16 at p (any alignment) to float, through F16C. */
KQ_X86_INLINE float kq_x86_half(const void *p)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(kq_x86_load_u16(p))));
}

/* Every fp16 bit pattern as a float, and every E8M0 byte as
 * kq_e8m0_half (avx2_half_table.c), filled by
 * kq__x86_half_table_init(), which the AVX2 and AVX-512 kernel lookups call. */
extern float kq__x86_half_table[65536];
extern float kq__x86_e8m0_table[256];
void kq__x86_half_table_init(void);

/* The fp16 at p, broadcast: a table read, no vector operation spent. */
KQ_X86_INLINE __m256 kq_x86_half_bcast(const void *p)
{
    return _mm256_broadcast_ss(&kq__x86_half_table[kq_x86_load_u16(p)]);
}

KQ_X86_INLINE float kq_x86_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The 6-bit scales and mins of q4_K/q5_K (docs/formats.md): sc[0..7] as bytes in
 * the low 8 bytes of *sc, m[0..7] in those of *m. In 32-bit words u0, u1, u2
 * of the 12 bytes: sc0-3 = u0 & 0x3f.., m0-3 = u1 & 0x3f.., sc4-7 =
 * (u2 & 0x0f..) | ((u0 >> 2) & 0x30..), m4-7 = ((u2 >> 4) & 0x0f..) |
 * ((u1 >> 2) & 0x30..): every byte's two high bits sit at the same place in
 * its word. Done in general registers, idle in these kernels, leaving two
 * moves on the vector ports (a 128-bit version took 7 vector operations). */
KQ_X86_INLINE void kq_x86_kscales(const uint8_t *s, __m128i *sc, __m128i *m)
{
    const uint32_t u0 = kq_x86_load_u32(s), u1 = kq_x86_load_u32(s + 4),
                   u2 = kq_x86_load_u32(s + 8);
    const uint64_t sc03 = u0 & 0x3f3f3f3fu, m03 = u1 & 0x3f3f3f3fu;
    const uint64_t sc47 = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
    const uint64_t m47 = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
    *sc = _mm_cvtsi64_si128((long long)(sc03 | sc47 << 32));
    *m = _mm_cvtsi64_si128((long long)(m03 | m47 << 32));
}

/* Shuffle masks that broadcast int16 element j of a 128-bit lane to every
 * int16 of the lane (byte pairs 2j, 2j+1). */
extern const uint8_t kq_x86_bcast16[8][32];
/* Masks for q6_K: int16 element 2i in the low 128-bit lane, 2i+1 in the high. */
extern const uint8_t kq_x86_pair16[4][32];

KQ_X86_INLINE __m256i kq_x86_mask(const uint8_t m[32])
{
    return _mm256_loadu_si256((const __m256i *)(const void *)m);
}

/* A 32-value block's fifth bits (q5_0, q5_1: the 32-bit qh at p, bit j for
 * element j) as bytes: 0xFF where element j's bit is set, else 0. */
KQ_X86_INLINE __m256i kq_x86_qh_set(const uint8_t *p)
{
    /* vpshufb spreads qh's byte j / 8 over bytes j; each byte then tests its bit */
    static const uint8_t spread[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                       2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static const uint8_t bits[32] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128,
                                     1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32((int)kq_x86_load_u32(p)), kq_x86_mask(spread));
    const __m256i bit = kq_x86_mask(bits);
    return _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
}

/* Sum of the int8 products of unsigned w and signed a, in 8 int32 lanes,
 * each 16-bit pair sum scaled by the int16 lanes of s. No saturation when
 * w <= 63 and |a| <= 128 (2 * 63 * 128 < 32767). */
KQ_X86_INLINE __m256i kq_x86_dot_scaled(__m256i w, __m256i a, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), s);
}

/* Activation rows up to which the k-quant kernels let each weight row
 * stream through K alone (see avx2_q4_k_q5_k.c): at nc = 4 this made kq bench
 * m = 4 on two threads 1.1-2.4x faster than blocks outer; and how far ahead
 * of the block in use they prefetch weights: about 100 ns of DRAM latency
 * at a core's 12-14 GB/s (1792 bytes measured best for q4_K from DRAM on
 * Zen 3: 1.2x over 1152). Prefetching past a row's end is harmless. */
#define KQ_X86_STREAM_NC 4
#ifndef KQ_X86_PF_BYTES
#define KQ_X86_PF_BYTES 1792
#endif

/* Prefetches the cache lines of a block of `bytes` at p into L1. */
KQ_X86_INLINE void kq_x86_prefetch_block(const uint8_t *p, size_t bytes)
{
    for (size_t l = 0; l < bytes; l += 64) _mm_prefetch((const char *)p + l, _MM_HINT_T0);
}

/* Pins v in a register at this point. GCC otherwise reassociates the
 * integer sums of a fully unrolled block into one tree at its end, which
 * keeps every product alive and spills them (measured: 3x slower at nc 4). */
#define KQ_X86_KEEP(v) __asm__("" : "+x"(v))

/* The NC switch: calls body(..., N) with a literal N so every instance is
 * compiled with its activation count known. */
#define KQ_X86_NC_SWITCH(nc, call)                                                                \
    switch (nc) {                                                                                  \
    case 1: call(1); break;                                                                        \
    case 2: call(2); break;                                                                        \
    case 3: call(3); break;                                                                        \
    case 4: call(4); break;                                                                        \
    case 5: call(5); break;                                                                        \
    case 6: call(6); break;                                                                        \
    case 7: call(7); break;                                                                        \
    default: call(8); break;                                                                       \
    }

/* Names of the kernels compiled more than once from one body. */
#define KQ_X86_CAT2(a, b) a##b
#define KQ_X86_CAT(a, b) KQ_X86_CAT2(a, b)

/* The AVX2 kernel tables, one per row of formats/type_list.h: [0] small
 * tiles (decode), [1] large m. */
#define KQ_AVX2_DECLARE(id, name, block, elems, act) extern const kq_ukernel kq__avx2_##name[2];
KQ_QUANT_TYPES(KQ_AVX2_DECLARE)
#undef KQ_AVX2_DECLARE

#endif
#endif
