/* q4_K and q5_K x kq_act256 tile kernels, AVX2.
 *
 * Strategy: a row's block is decoded once: scales and mins by word-wide bit
 * operations in general registers, each 32-byte run j of qs into two vectors
 * of nibbles (sub-blocks 2j and 2j+1; for q5_K with their fifth bits from
 * qh, bits 2j and 2j+1 of each byte moved to bit 4 by 16-bit shifts that
 * never cross a byte for the bit kept), which are then applied to all NC
 * activation rows: maddubs (u8 x s8 -> int16 pairs), madd against the
 * sub-block scale broadcast in int16 (-> int32), add. The NC int32 sums stay
 * in registers across the block; the float accumulators take
 * d * da * sum - dmin * da * sum(m_j * bsum_j) once per block.
 * Loop order: with nc <= 4 each row streams through all of K alone (one
 * sequential stream per row, which the hardware prefetcher follows: four
 * rows interleaved block by block measured 1.4x slower from DRAM at
 * K = 4096), the activation blocks staying in L1; with more activation rows,
 * blocks outer and the tile's rows inner, so one block of each activation
 * row serves all weight rows from L1. Both prefetch the weights ahead.
 *
 * Measured (avx2.c says how), q4_K / q5_K, weights in L2: nc 1: 20.0 /
 * 19.1 GB/s of weights (1.5x a core's DRAM bandwidth); nc 2: 14.3 / 13.3
 * GB/s; nc 4: 113 / 101 GOP/s; nc 8: 123 / 115 GOP/s, 88% of the
 * machine's maddubs + madd loop (139 GOP/s a core). At nc 1 the bound is
 * the vector ports (about 65 operations a block, 8 of them maddubs); from
 * nc 4 on, maddubs itself (1 a cycle). From DRAM, nc 1, one thread, K =
 * 4096: 10.4 / 11.6 GB/s against 10.9 / 11.1 GB/s for a plain read in the
 * same run. */
#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)

/* The activation blocks b of the NC rows, and their bsum pairs (one int16
 * per 32-value sub-block: the min term's weights). */
KQ_X86_INLINE void q4k5_acts(const uint8_t *a, size_t a_stride, int64_t b, const int NC,
                             const kq_act256 **ab, __m128i *bsp)
{
    for (int c = 0; c < NC; c++) {
        ab[c] = (const kq_act256 *)(const void *)(a + (size_t)c * a_stride) + b;
        const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)ab[c]->bsum);
        bsp[c] = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    }
}

/* One row's block at blk against the NC activation blocks: acc[c] gets the
 * scale term, accm[c] the min term (subtracted at the end). */
KQ_X86_INLINE void q4k5_block(const uint8_t *blk, const kq_act256 *const *ab, const __m128i *bsp,
                              const int NC, __m256 *acc, __m128 *accm, const int Q5)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m16 = _mm256_set1_epi8(0x10);
    const uint8_t *qs = blk + (Q5 ? 48 : 16);
    __m128i sc8, m8;
    kq_x86_kscales(blk + 4, &sc8, &m8);
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8));
    const __m128i mins = _mm_cvtepu8_epi16(m8);
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)kq_x86_load_u32(blk)));
    __m256i qh = _mm256_setzero_si256();
    if (Q5) qh = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 16));
    __m256i sum[KQ_X86_NC];
    for (int c = 0; c < NC; c++) sum[c] = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * j));
        __m256i lo = _mm256_and_si256(q, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (Q5) {
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(qh, 4), m16));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(qh, 3), m16));
            qh = _mm256_srli_epi16(qh, 2);
        }
        const __m256i slo = _mm256_shuffle_epi8(sc16, kq_x86_mask(kq_x86_bcast16[2 * j]));
        const __m256i shi = _mm256_shuffle_epi8(sc16, kq_x86_mask(kq_x86_bcast16[2 * j + 1]));
        for (int c = 0; c < NC; c++) {
            const int8_t *aq = ab[c]->q + 64 * j;
            const __m256i p0 = kq_x86_dot_scaled(lo, _mm256_loadu_si256((const __m256i *)(const void *)aq), slo);
            const __m256i p1 = kq_x86_dot_scaled(hi, _mm256_loadu_si256((const __m256i *)(const void *)(aq + 32)), shi);
            sum[c] = _mm256_add_epi32(sum[c], _mm256_add_epi32(p0, p1));
            KQ_X86_KEEP(sum[c]);
        }
    }
    const __m256 vd = _mm256_broadcastss_ps(dd);
    const __m128 vm = _mm_shuffle_ps(dd, dd, 0x55);
    for (int c = 0; c < NC; c++) {
        const __m256 da = _mm256_broadcast_ss(&ab[c]->d);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[c]), _mm256_mul_ps(vd, da), acc[c]);
        const __m128 mm = _mm_cvtepi32_ps(_mm_madd_epi16(mins, bsp[c]));
        accm[c] = _mm_fmadd_ps(mm, _mm_mul_ps(vm, _mm256_castps256_ps128(da)), accm[c]);
    }
}

KQ_X86_INLINE float q4k5_total(__m256 acc, __m128 accm)
{
    return kq_x86_hsum(_mm256_sub_ps(acc, _mm256_insertf128_ps(_mm256_setzero_ps(), accm, 0)));
}

KQ_X86_INLINE void q4k5_tile(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                             size_t a_stride, const int NC, int64_t n_blocks, float *out,
                             int64_t ldo, const int Q5)
{
    const size_t bb = Q5 ? 176 : 144;
    const kq_act256 *ab[KQ_X86_NC];
    __m128i bsp[KQ_X86_NC];
    if (NC <= KQ_X86_STREAM_NC) {
        for (int r = 0; r < nr; r++) {
            __m256 acc[KQ_X86_NC];
            __m128 accm[KQ_X86_NC];
            for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps(), accm[c] = _mm_setzero_ps();
            const uint8_t *blk = w + (size_t)r * w_stride;
            for (int64_t b = 0; b < n_blocks; b++, blk += bb) {
                kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, bb);
                q4k5_acts(a, a_stride, b, NC, ab, bsp);
                q4k5_block(blk, ab, bsp, NC, acc, accm, Q5);
            }
            for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = q4k5_total(acc[c], accm[c]);
        }
        return;
    }
    __m256 acc[KQ_X86_MR][KQ_X86_NC];
    __m128 accm[KQ_X86_MR][KQ_X86_NC];
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps(), accm[r][c] = _mm_setzero_ps();
    for (int64_t b = 0; b < n_blocks; b++) {
        q4k5_acts(a, a_stride, b, NC, ab, bsp);
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * bb;
            kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, bb);
            q4k5_block(blk, ab, bsp, NC, acc[r], accm[r], Q5);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = q4k5_total(acc[r][c], accm[r][c]);
}

static void q4k_avx2(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a, size_t a_stride,
                     int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q4K_CALL(N) q4k5_tile(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, 0)
    KQ_X86_NC_SWITCH(nc, Q4K_CALL)
#undef Q4K_CALL
}

static void q5k_avx2(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a, size_t a_stride,
                     int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q5K_CALL(N) q4k5_tile(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, 1)
    KQ_X86_NC_SWITCH(nc, Q5K_CALL)
#undef Q5K_CALL
}

const kq_ukernel kq__avx2_q4_K[2] = {
    {"q4_K avx2 4x4", 4, 4, q4k_avx2},
    {"q4_K avx2 4x8", 4, 8, q4k_avx2},
};

const kq_ukernel kq__avx2_q5_K[2] = {
    {"q5_K avx2 4x4", 4, 4, q5k_avx2},
    {"q5_K avx2 4x8", 4, 8, q5k_avx2},
};

#endif
