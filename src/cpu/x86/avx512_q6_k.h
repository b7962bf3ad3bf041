/* q6_K x kq_act256 tile kernel, AVX-512, as a body included by
 * avx512_q6_k.c (BW) and avx512_vnni_q6_k.c (VNNI), which define
 * KQ_X86_VNNI to 0 or 1 and KQ_X86_SUFFIX.
 *
 * Strategy: as avx2_q6_k.c at twice the width. Each half of a row's block
 * gives two zmm of unsigned 6-bit values: 64 bytes of ql against qh copied
 * into both halves and shifted per half by variable 16-bit shifts, so one
 * zmm holds the activation's 64 values 128n + 64p ... in order. Each 128-bit
 * lane is one 16-value sub-block; its int16 scale comes from one vpermw.
 *   BW:   per zmm maddubs, madd by the scales, add;
 *   VNNI: per zmm vpdpbusd (|lane| <= 4 * 63 * 128 fits int16), the two
 *         zmm of a half packed to int16, one madd by the scales in packs'
 *         lane order, add.
 * The -32 offset is taken out once per block from the group sums. */
#if defined(__x86_64__)

#ifndef KQ_X86_VNNI
#error "define KQ_X86_VNNI before including avx512_q6_k.h"
#endif

#define Q6K_FN(name) KQ_X86_CAT(name, KQ_X86_SUFFIX)

/* vpermw indices: half n, pair p -> int16 lane i takes scale 8n + 4p + i / 8. */
#define Q6_IDX8(v) v, v, v, v, v, v, v, v
#define Q6_IDX(s) {Q6_IDX8(s), Q6_IDX8(s + 1), Q6_IDX8(s + 2), Q6_IDX8(s + 3)}
#if KQ_X86_VNNI
/* packs_epi32(d0, d1) puts, in 128-bit lane k, four int16 of d0 (sub-block
 * 8n + k) then four of d1 (8n + 4 + k). */
#define Q6_HALF(v) v, v, v, v
#define Q6_VL(s) Q6_HALF(s), Q6_HALF(s + 4)
#define Q6_VIDX(s) {Q6_VL(s), Q6_VL(s + 1), Q6_VL(s + 2), Q6_VL(s + 3)}
static const int16_t q6k_vnni_idx[2][32] = {Q6_VIDX(0), Q6_VIDX(8)};
#else
static const int16_t q6k_idx[4][32] = {Q6_IDX(0), Q6_IDX(4), Q6_IDX(8), Q6_IDX(12)};
#endif
/* Per-half shift counts of qh: the ql low nibble pairs with qh << 4 | qh << 2,
 * the high nibble with qh | qh >> 2. */
#define Q6_SH(a, b) {Q6_IDX8(a), Q6_IDX8(a), Q6_IDX8(b), Q6_IDX8(b)}
static const int16_t q6k_shl[32] = Q6_SH(4, 2);
static const int16_t q6k_shr[32] = Q6_SH(0, 2);

/* One row's block at blk against the NC activation blocks, into acc[c]. */
KQ_X86_INLINE void Q6K_FN(q6k_block_)(const uint8_t *blk, const kq_act256 *const *ab, const int NC,
                                      __m512 *acc)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i m3 = _mm512_set1_epi8(0x30);
    const __m512i shl = kq_x86_load512(q6k_shl), shr = kq_x86_load512(q6k_shr);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(blk + 192)));
    const __m512i sc512 = _mm512_castsi256_si512(sc16); /* vpermw reads lanes 0..15 only */
    __m512i sum[KQ_X86_NC];
    /* Start from -32 * sum(scale_g * bsum_g): the offset of every value. */
    for (int c = 0; c < NC; c++) {
        const __m256i off = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(const void *)ab[c]->bsum));
        sum[c] = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5)));
    }
    for (int n = 0; n < 2; n++) {
        const __m512i ql = kq_x86_load512(blk + 64 * n);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 128 + 32 * n)));
        __m512i v[2];
        v[0] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, shl), m3));
        v[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                               _mm512_and_si512(_mm512_srlv_epi16(qh, shr), m3));
#if KQ_X86_VNNI
        const __m512i s = _mm512_permutexvar_epi16(kq_x86_load512(q6k_vnni_idx[n]), sc512);
        for (int c = 0; c < NC; c++) {
            const __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v[0], kq_x86_load512(ab[c]->q + 128 * n));
            const __m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v[1], kq_x86_load512(ab[c]->q + 128 * n + 64));
            sum[c] = _mm512_add_epi32(sum[c], _mm512_madd_epi16(_mm512_packs_epi32(d0, d1), s));
            KQ_X86_KEEP512(sum[c]);
        }
#else
        for (int p = 0; p < 2; p++) {
            const __m512i s = _mm512_permutexvar_epi16(kq_x86_load512(q6k_idx[2 * n + p]), sc512);
            for (int c = 0; c < NC; c++) {
                const __m512i av = kq_x86_load512(ab[c]->q + 128 * n + 64 * p);
                sum[c] = _mm512_add_epi32(sum[c], _mm512_madd_epi16(_mm512_maddubs_epi16(v[p], av), s));
                KQ_X86_KEEP512(sum[c]);
            }
        }
#endif
    }
    const __m512 vd = _mm512_set1_ps(kq_x86_half(blk + 208));
    for (int c = 0; c < NC; c++) {
        const __m512 da = _mm512_set1_ps(ab[c]->d);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[c]), _mm512_mul_ps(vd, da), acc[c]);
    }
}

/* Loop orders (each row streaming through K alone for nc <= 4, else blocks
 * outer) and prefetch as in avx2_q4_k_q5_k.c. */
KQ_X86_INLINE void Q6K_FN(q6k_tile_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                     size_t a_stride, const int NC, int64_t n_blocks, float *out,
                                     int64_t ldo)
{
    enum { BB = 210 };
    const kq_act256 *ab[KQ_X86_NC];
    if (NC <= KQ_X86_STREAM_NC) {
        for (int r = 0; r < nr; r++) {
            __m512 acc[KQ_X86_NC];
            for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps();
            const uint8_t *blk = w + (size_t)r * w_stride;
            for (int64_t b = 0; b < n_blocks; b++, blk += BB) {
                kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, BB);
                for (int c = 0; c < NC; c++)
                    ab[c] = (const kq_act256 *)(const void *)(a + (size_t)c * a_stride) + b;
                Q6K_FN(q6k_block_)(blk, ab, NC, acc);
            }
            for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = kq_x86_hsum512(acc[c]);
        }
        return;
    }
    __m512 acc[KQ_X86_MR][KQ_X86_NC];
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n_blocks; b++) {
        for (int c = 0; c < NC; c++)
            ab[c] = (const kq_act256 *)(const void *)(a + (size_t)c * a_stride) + b;
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * BB;
            kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, BB);
            Q6K_FN(q6k_block_)(blk, ab, NC, acc[r]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = kq_x86_hsum512(acc[r][c]);
}

static void Q6K_FN(q6k_avx512_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                       size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q6K_CALL(N) Q6K_FN(q6k_tile_)(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo)
    KQ_X86_NC_SWITCH(nc, Q6K_CALL)
#undef Q6K_CALL
}

#endif
