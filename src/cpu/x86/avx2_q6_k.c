/* q6_K x kq_act256 tile kernel, AVX2.
 *
 * Strategy: each half of a row's block (64 bytes of ql, 32 of qh) becomes
 * four vectors of unsigned 6-bit values (0..63), two 16-value sub-blocks
 * each; the -32 offset is
 * taken out once per block as 32 * sum(scale_g * bsum_g), one madd against
 * the activation's group sums. Each weight vector is applied to all NC
 * activation rows: maddubs, madd against its two int8 scales widened to
 * int16 (one per 128-bit lane), add. The float accumulators are updated
 * once per block. Loop orders (each row streaming through K alone for
 * nc <= 4, else blocks outer) and prefetch as in avx2_q4_k_q5_k.c.
 *
 * Measured (avx2.c says how), weights in L2: nc 1: 26.8 GB/s of weights;
 * nc 2: 20.1 GB/s; nc 4: 12.8 GB/s, 124 GOP/s; nc 8: 119-122 GOP/s (88% of
 * the maddubs loop). From DRAM, nc 1, one thread, K = 4096: 12.8 GB/s
 * against 13.0 GB/s for a plain read in the same run. */
#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)

enum { Q6K_BYTES = 210 };

KQ_X86_INLINE __m256i q6k_load(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* One row's block at blk against the NC activation blocks, into acc[c]. */
KQ_X86_INLINE void q6k_block(const uint8_t *blk, const kq_act256 *const *ab, const int NC,
                             __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m3 = _mm256_set1_epi8(0x30);
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)(blk + 192));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    __m256i sum[KQ_X86_NC];
    /* Start from -32 * sum(scale_g * bsum_g): the offset of every value. */
    for (int c = 0; c < NC; c++) {
        const __m256i off = _mm256_madd_epi16(sc16, q6k_load((const uint8_t *)ab[c]->bsum));
        sum[c] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
    }
    for (int n = 0; n < 2; n++) {
        const __m256i sch = _mm256_broadcastsi128_si256(
            n == 0 ? _mm256_castsi256_si128(sc16) : _mm256_extracti128_si256(sc16, 1));
        const __m256i ql0 = q6k_load(blk + 64 * n), ql1 = q6k_load(blk + 64 * n + 32);
        const __m256i qh = q6k_load(blk + 128 + 32 * n);
        __m256i v[4];
        v[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                               _mm256_and_si256(_mm256_slli_epi16(qh, 4), m3));
        v[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                               _mm256_and_si256(_mm256_slli_epi16(qh, 2), m3));
        v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                               _mm256_and_si256(qh, m3));
        v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m3));
        for (int i = 0; i < 4; i++) {
            const __m256i s = _mm256_shuffle_epi8(sch, kq_x86_mask(kq_x86_pair16[i]));
            for (int c = 0; c < NC; c++) {
                const __m256i av = q6k_load((const uint8_t *)ab[c]->q + 128 * n + 32 * i);
                sum[c] = _mm256_add_epi32(sum[c], kq_x86_dot_scaled(v[i], av, s));
                KQ_X86_KEEP(sum[c]);
            }
        }
    }
    const __m256 vd = _mm256_set1_ps(kq_x86_half(blk + 208));
    for (int c = 0; c < NC; c++) {
        const __m256 da = _mm256_broadcast_ss(&ab[c]->d);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[c]), _mm256_mul_ps(vd, da), acc[c]);
    }
}

KQ_X86_INLINE void q6k_acts(const uint8_t *a, size_t a_stride, int64_t b, const int NC,
                            const kq_act256 **ab)
{
    for (int c = 0; c < NC; c++)
        ab[c] = (const kq_act256 *)(const void *)(a + (size_t)c * a_stride) + b;
}

/* Loop orders and prefetch as in avx2_q4_k_q5_k.c. */
KQ_X86_INLINE void q6k_tile(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                            size_t a_stride, const int NC, int64_t n_blocks, float *out,
                            int64_t ldo)
{
    const kq_act256 *ab[KQ_X86_NC];
    if (NC <= KQ_X86_STREAM_NC) {
        for (int r = 0; r < nr; r++) {
            __m256 acc[KQ_X86_NC];
            for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();
            const uint8_t *blk = w + (size_t)r * w_stride;
            for (int64_t b = 0; b < n_blocks; b++, blk += Q6K_BYTES) {
                kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, Q6K_BYTES);
                q6k_acts(a, a_stride, b, NC, ab);
                q6k_block(blk, ab, NC, acc);
            }
            for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = kq_x86_hsum(acc[c]);
        }
        return;
    }
    __m256 acc[KQ_X86_MR][KQ_X86_NC];
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; b++) {
        q6k_acts(a, a_stride, b, NC, ab);
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * Q6K_BYTES;
            kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, Q6K_BYTES);
            q6k_block(blk, ab, NC, acc[r]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = kq_x86_hsum(acc[r][c]);
}

static void q6k_avx2(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a, size_t a_stride,
                     int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q6K_CALL(N) q6k_tile(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo)
    KQ_X86_NC_SWITCH(nc, Q6K_CALL)
#undef Q6K_CALL
}

const kq_ukernel kq__avx2_q6_K[2] = {
    {"q6_K avx2 4x4", 4, 4, q6k_avx2},
    {"q6_K avx2 4x8", 4, 8, q6k_avx2},
};

#endif
