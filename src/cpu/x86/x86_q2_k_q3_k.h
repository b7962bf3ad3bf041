/* q2_K and q3_K x kq_act256 tile bodies, 256 bits wide, included by
 * avx2_q2_k_q3_k_iq4_xs.c and avx512_q2_k_q3_k_iq4_xs.c, which define
 * KQ_X86_SUFFIX, KQ_X86_TABLE(name) and KQ_X86_LABEL.
 *
 * Strategy: q6_K's (avx2_q6_k.c). Each half n of a block is 32 bytes of 2-bit
 * planes: shift j (0..3) of them is the 32 values 128n + 32j .., sub-block
 * 8n + 2j in the low 128-bit lane and 8n + 2j + 1 in the high one, in the
 * activation's order. q3_K ORs in its third bit from hmask (bit 4n + j of
 * byte l, moved to bit 2 by one 16-bit shift that keeps it inside its byte),
 * so both types multiply unsigned values (0..3, 0..7) by maddubs, then madd
 * by the two sub-block scales of the lanes (kq_x86_pair16), add.
 *   q2_K: scales[g] = sc | m << 4; the mins leave as dmin * sum_g m_g bsum_g,
 *         one madd against the activation's group sums, a second integer sum;
 *   q3_K: value = (q | h << 2) - 4: the -4 leaves as 4 * sum_g sc_g bsum_g
 *         (signed 6-bit scales, unpacked in general registers), as q6_K's -32.
 * The float accumulators are updated once per block. */
#if defined(__x86_64__)

#include "cpu/x86/x86_tile256.h"
#include "formats/blocks.h"

#define Q23_FN(name) KQ_X86_CAT(name, KQ_X86_SUFFIX)

/* Sixteen int16 scales: sub-blocks 0-7 of half 0 in the low 128-bit lane
 * and again in the high one (n = 0), or 8-15 (n = 1), for kq_x86_pair16. */
KQ_X86_INLINE __m256i Q23_FN(q23_half_scales_)(__m256i sc16, int n)
{
    return _mm256_broadcastsi128_si256(n == 0 ? _mm256_castsi256_si128(sc16)
                                              : _mm256_extracti128_si256(sc16, 1));
}

/* Sixteen signed q3_K scales (-32..31) as int8, from scales[12] (blocks.h:
 * low nibbles from bytes 0-7, low then high; two high bits from bytes 8-11). */
KQ_X86_INLINE __m128i Q23_FN(q3k_scales_)(const uint8_t *s)
{
    uint64_t lo8;
    memcpy(&lo8, s, 8);
    const uint32_t u = kq_x86_load_u32(s + 8);
    const uint64_t m4 = 0x0F0F0F0F0F0F0F0Full, m2 = 0x03030303u;
    const uint64_t lo_a = lo8 & m4, lo_b = (lo8 >> 4) & m4;
    const uint64_t hi_a = (u & m2) | (uint64_t)((u >> 2) & m2) << 32;
    const uint64_t hi_b = ((u >> 4) & m2) | (uint64_t)((u >> 6) & m2) << 32;
    const __m128i v = _mm_set_epi64x((long long)(lo_b | hi_b << 4), (long long)(lo_a | hi_a << 4));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

/* One row's q2_K (Q3 = 0) or q3_K (Q3 = 1) block against the NC activation
 * blocks, into acc[c]. */
KQ_X86_INLINE void Q23_FN(q23_block_)(const uint8_t *blk, const kq_act256 *const *ab,
                                      const int NC, __m256 *acc, const int Q3)
{
    const __m256i m3 = _mm256_set1_epi8(3);
    const size_t qs_at = Q3 ? offsetof(kq_block_q3_K, qs) : offsetof(kq_block_q2_K, qs);
    __m256i sc16, mn16 = _mm256_setzero_si256(), hm = _mm256_setzero_si256();
    if (Q3) {
        sc16 = _mm256_cvtepi8_epi16(Q23_FN(q3k_scales_)(blk + offsetof(kq_block_q3_K, scales)));
        hm = _mm256_loadu_si256((const __m256i *)(const void *)(blk + offsetof(kq_block_q3_K, hmask)));
    } else {
        const __m256i s = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(blk + offsetof(kq_block_q2_K, scales))));
        sc16 = _mm256_and_si256(s, _mm256_set1_epi16(0xF));
        mn16 = _mm256_srli_epi16(s, 4);
    }
    __m256i sum[KQ_X86_NC], msum[KQ_X86_NC];
    for (int c = 0; c < NC; c++) {
        const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)ab[c]->bsum);
        if (Q3) /* start from -4 * sum(sc_g * bsum_g) */
            sum[c] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 2));
        else
            sum[c] = _mm256_setzero_si256(), msum[c] = _mm256_madd_epi16(mn16, bs);
    }
    for (int n = 0; n < 2; n++) {
        const __m256i sch = Q23_FN(q23_half_scales_)(sc16, n);
        const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(blk + qs_at + 32 * n));
        for (int j = 0; j < 4; j++) {
            __m256i v = _mm256_and_si256(j ? _mm256_srli_epi16(q, 2 * j) : q, m3);
            if (Q3) {
                const int k = 4 * n + j; /* hmask bit of these 32 values, to bit 2 */
                const __m256i h = k >= 2 ? _mm256_srli_epi16(hm, k - 2) : _mm256_slli_epi16(hm, 2 - k);
                v = _mm256_or_si256(v, _mm256_and_si256(h, _mm256_set1_epi8(4)));
            }
            const __m256i s = _mm256_shuffle_epi8(sch, kq_x86_mask(kq_x86_pair16[j]));
            for (int c = 0; c < NC; c++) {
                const __m256i av = _mm256_loadu_si256((const __m256i *)(const void *)(ab[c]->q + 128 * n + 32 * j));
                sum[c] = _mm256_add_epi32(sum[c], kq_x86_dot_scaled(v, av, s));
                KQ_X86_KEEP(sum[c]);
            }
        }
    }
    if (Q3) {
        const __m256 vd = _mm256_set1_ps(kq_x86_half(blk + offsetof(kq_block_q3_K, d)));
        for (int c = 0; c < NC; c++)
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[c]), _mm256_mul_ps(vd, _mm256_broadcast_ss(&ab[c]->d)), acc[c]);
    } else {
        const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)kq_x86_load_u32(blk + offsetof(kq_block_q2_K, d))));
        const __m256 vd = _mm256_broadcastss_ps(dd);
        const __m256 vm = _mm256_broadcastss_ps(_mm_shuffle_ps(dd, dd, 0x55));
        for (int c = 0; c < NC; c++) {
            const __m256 da = _mm256_broadcast_ss(&ab[c]->d);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[c]), _mm256_mul_ps(vd, da), acc[c]);
            acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[c]), _mm256_mul_ps(vm, da), acc[c]);
        }
    }
}

#define Q2K_BLOCK(blk, ab, NC, acc) Q23_FN(q23_block_)(blk, ab, NC, acc, 0)
#define Q3K_BLOCK(blk, ab, NC, acc) Q23_FN(q23_block_)(blk, ab, NC, acc, 1)
KQ_X86_TILE256(Q23_FN(q2k_tile_), Q2K_BLOCK, sizeof(kq_block_q2_K))
KQ_X86_TILE256(Q23_FN(q3k_tile_), Q3K_BLOCK, sizeof(kq_block_q3_K))

#endif
