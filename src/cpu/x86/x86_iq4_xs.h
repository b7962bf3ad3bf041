/* iq4_xs x kq_act256 tile body, 256 bits wide, included by
 * avx2_q2_k_q3_k_iq4_xs.c and avx512_q2_k_q3_k_iq4_xs.c.
 *
 * Strategy: each 32-value sub-block j is 16 bytes of nibbles in both 128-bit
 * lanes shifted by 0 and 4 (element order), looked up in the iq4_nl grid by
 * one vpshufb (x86_block32.h does the same per 32-value block); signed
 * values multiply as |w| against the activation with w's sign (vpsignb; no
 * saturation: 2 * 127 * 127 < 32767), then madd by the sub-block's scale
 * (6 bits minus 32, unpacked for all eight in general registers), add.
 * One float update per block. */
#if defined(__x86_64__)

#include "cpu/x86/x86_tile256.h"
#include "formats/blocks.h"

#define IQ4XS_FN(name) KQ_X86_CAT(name, KQ_X86_SUFFIX)

/* The eight scales ls_j - 32 as int16 in both 128-bit lanes: nibble j of
 * scales_l and two bits j of scales_h, spread to one byte each. */
KQ_X86_INLINE __m256i IQ4XS_FN(iq4xs_scales_)(const uint8_t *blk)
{
    uint64_t l = kq_x86_load_u32(blk + offsetof(kq_block_iq4_xs, scales_l));
    l = (l | l << 16) & 0x0000FFFF0000FFFFull;
    l = (l | l << 8) & 0x00FF00FF00FF00FFull;
    l = (l | l << 4) & 0x0F0F0F0F0F0F0F0Full;
    uint64_t h = kq_x86_load_u16(blk + offsetof(kq_block_iq4_xs, scales_h));
    h = (h | h << 24) & 0x000000FF000000FFull;
    h = (h | h << 12) & 0x000F000F000F000Full;
    h = (h | h << 6) & 0x0303030303030303ull;
    const __m128i s8 = _mm_sub_epi8(_mm_cvtsi64_si128((long long)(l | h << 4)), _mm_set1_epi8(32));
    return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(s8));
}

KQ_X86_INLINE void IQ4XS_FN(iq4xs_block_)(const uint8_t *blk, const kq_act256 *const *ab,
                                          const int NC, __m256 *acc)
{
    const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)kq_iq4nl_values));
    const __m256i shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4), m4 = _mm256_set1_epi8(0x0F);
    const __m256i sc16 = IQ4XS_FN(iq4xs_scales_)(blk);
    const uint8_t *qs = blk + offsetof(kq_block_iq4_xs, qs);
    __m256i sum[KQ_X86_NC];
    for (int c = 0; c < NC; c++) sum[c] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
        const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(qs + 16 * j)));
        const __m256i wv = _mm256_shuffle_epi8(grid, _mm256_and_si256(_mm256_srlv_epi32(q, shift), m4));
        const __m256i wa = _mm256_sign_epi8(wv, wv);
        const __m256i s = _mm256_shuffle_epi8(sc16, kq_x86_mask(kq_x86_bcast16[j]));
        for (int c = 0; c < NC; c++) {
            const __m256i av = _mm256_loadu_si256((const __m256i *)(const void *)(ab[c]->q + 32 * j));
            sum[c] = _mm256_add_epi32(sum[c], kq_x86_dot_scaled(wa, _mm256_sign_epi8(av, wv), s));
            KQ_X86_KEEP(sum[c]);
        }
    }
    const __m256 vd = _mm256_set1_ps(kq_x86_half(blk + offsetof(kq_block_iq4_xs, d)));
    for (int c = 0; c < NC; c++)
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[c]), _mm256_mul_ps(vd, _mm256_broadcast_ss(&ab[c]->d)), acc[c]);
}

#define IQ4XS_BLOCK(blk, ab, NC, acc) IQ4XS_FN(iq4xs_block_)(blk, ab, NC, acc)
KQ_X86_TILE256(IQ4XS_FN(iq4xs_tile_), IQ4XS_BLOCK, sizeof(kq_block_iq4_xs))

#endif
