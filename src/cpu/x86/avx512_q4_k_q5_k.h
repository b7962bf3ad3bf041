/* q4_K and q5_K x kq_act256 tile kernels, AVX-512, as a body included by
 * avx512_q4_k_q5_k.c (BW) and avx512_vnni_q4_k_q5_k.c (VNNI), which define
 * KQ_X86_VNNI to 0 or 1 and KQ_X86_SUFFIX.
 *
 * Strategy: as avx2_q4_k_q5_k.c at twice the width. Each 32-byte run j of qs
 * becomes one zmm: its low nibbles (sub-block 2j) in the low half, its high
 * nibbles (2j+1) in the high half (a broadcast load and one variable shift:
 * the 512-bit cross-half insert would take port 5, already busy with the
 * scale shuffles), the order of the activation's 64 values 64j..64j+63, so
 * one 64-byte load feeds it. Per activation row and two zmm:
 *   BW:   per zmm maddubs, madd against its two sub-block scales (vpshufb of
 *         the eight int16 scales, one mask per 128-bit lane), add;
 *   VNNI: per zmm vpdpbusd into int32 (|lane| <= 4 * 31 * 128 fits int16),
 *         the two results packed to int16 (port 5), one madd against the
 *         four scales in packs' lane order, add: 3 multiply-port ops per 128
 *         values instead of 4.
 * Mins as in the AVX2 kernel. */
#if defined(__x86_64__)

#ifndef KQ_X86_VNNI
#error "define KQ_X86_VNNI before including avx512_q4_k_q5_k.h"
#endif

#define Q4K5_FN(name) KQ_X86_CAT(name, KQ_X86_SUFFIX)

#if KQ_X86_VNNI
/* packs_epi32(d0, d1) puts, in 128-bit lane k, four int16 of d0 then four of
 * d1; d0 (run 2jp) holds sub-block 4jp in lanes 0-1 and 4jp+1 in 2-3, d1
 * (run 2jp+1) 4jp+2 and 4jp+3. Bytes of int16 scale a then a + 2. */
#define Q4K5_P(a) 2 * (a), 2 * (a) + 1
#define Q4K5_L(a) Q4K5_P(a), Q4K5_P(a), Q4K5_P(a), Q4K5_P(a), \
                  Q4K5_P(a + 2), Q4K5_P(a + 2), Q4K5_P(a + 2), Q4K5_P(a + 2)
#define Q4K5_ROW(b) {Q4K5_L(b), Q4K5_L(b), Q4K5_L(b + 1), Q4K5_L(b + 1)}
static const uint8_t q4k5_vnni_mask[2][64] = {Q4K5_ROW(0), Q4K5_ROW(4)};
#endif

/* One row's block at blk against the NC activation blocks: acc[c] gets the
 * scale term, accm[c] the min term (subtracted at the end). */
KQ_X86_INLINE void Q4K5_FN(q4k5_block_)(const uint8_t *blk, const kq_act256 *const *ab,
                                        const __m128i *bsp, const int NC, __m512 *acc,
                                        __m128 *accm, const int Q5)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i m16 = _mm512_set1_epi8(0x10);
    const __m512i nib_shift = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
    const __m512i hb_shift = _mm512_setr_epi32(0x00040004, 0x00040004, 0x00040004, 0x00040004,
                                               0x00040004, 0x00040004, 0x00040004, 0x00040004,
                                               0x00030003, 0x00030003, 0x00030003, 0x00030003,
                                               0x00030003, 0x00030003, 0x00030003, 0x00030003);
    const uint8_t *qs = blk + (Q5 ? 48 : 16);
    __m128i sc8, m8;
    kq_x86_kscales(blk + 4, &sc8, &m8);
    const __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sc8));
    const __m128i mins = _mm_cvtepu8_epi16(m8);
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)kq_x86_load_u32(blk)));
    __m512i qh = _mm512_setzero_si512();
    if (Q5) qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 16)));
    __m512i sum[KQ_X86_NC];
    for (int c = 0; c < NC; c++) sum[c] = _mm512_setzero_si512();
    for (int jp = 0; jp < 2; jp++) {
        __m512i wv[2];
        for (int h = 0; h < 2; h++) {
            /* Run j = 2 jp + h of 32 bytes in both halves, shifted by 0 and
             * 4: low nibbles then high, with no cross-half insert. */
            const __m512i q = _mm512_broadcast_i64x4(
                _mm256_loadu_si256((const __m256i *)(const void *)(qs + 64 * jp + 32 * h)));
            wv[h] = _mm512_and_si512(_mm512_srlv_epi64(q, nib_shift), m4);
            if (Q5) {
                /* Bits 2j (low half) and 2j+1 (high half) of each qh byte to
                 * bit 4; 16-bit shifts by at most 4 keep the kept bit inside
                 * its byte. */
                wv[h] = _mm512_or_si512(wv[h], _mm512_and_si512(_mm512_sllv_epi16(qh, hb_shift), m16));
                qh = _mm512_srli_epi16(qh, 2);
            }
        }
#if KQ_X86_VNNI
        /* Sub-blocks 4jp..4jp+3, laid out as packs_epi32 leaves them. */
        const __m512i s = _mm512_shuffle_epi8(sc16, kq_x86_load512(q4k5_vnni_mask[jp]));
        for (int c = 0; c < NC; c++) {
            const __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[0], kq_x86_load512(ab[c]->q + 128 * jp));
            const __m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[1], kq_x86_load512(ab[c]->q + 128 * jp + 64));
            sum[c] = _mm512_add_epi32(sum[c], _mm512_madd_epi16(_mm512_packs_epi32(d0, d1), s));
            KQ_X86_KEEP512(sum[c]);
        }
#else
        for (int h = 0; h < 2; h++) {
            /* bcast16[2j] and [2j+1] are adjacent: one 64-byte mask. */
            const int j = 2 * jp + h;
            const __m512i s = _mm512_shuffle_epi8(sc16, kq_x86_load512(kq_x86_bcast16[2 * j]));
            for (int c = 0; c < NC; c++) {
                const __m512i av = kq_x86_load512(ab[c]->q + 64 * j);
                sum[c] = _mm512_add_epi32(sum[c], _mm512_madd_epi16(_mm512_maddubs_epi16(wv[h], av), s));
                KQ_X86_KEEP512(sum[c]);
            }
        }
#endif
    }
    const __m512 vd = _mm512_broadcastss_ps(dd);
    const __m128 vm = _mm_shuffle_ps(dd, dd, 0x55);
    for (int c = 0; c < NC; c++) {
        const __m512 da = _mm512_set1_ps(ab[c]->d);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[c]), _mm512_mul_ps(vd, da), acc[c]);
        const __m128 mm = _mm_cvtepi32_ps(_mm_madd_epi16(mins, bsp[c]));
        accm[c] = _mm_fmadd_ps(mm, _mm_mul_ps(vm, _mm512_castps512_ps128(da)), accm[c]);
    }
}

KQ_X86_INLINE void Q4K5_FN(q4k5_acts_)(const uint8_t *a, size_t a_stride, int64_t b, const int NC,
                                       const kq_act256 **ab, __m128i *bsp)
{
    for (int c = 0; c < NC; c++) {
        ab[c] = (const kq_act256 *)(const void *)(a + (size_t)c * a_stride) + b;
        const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)ab[c]->bsum);
        bsp[c] = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    }
}

KQ_X86_INLINE float Q4K5_FN(q4k5_total_)(__m512 acc, __m128 accm)
{
    return kq_x86_hsum512(_mm512_sub_ps(acc, _mm512_insertf32x4(_mm512_setzero_ps(), accm, 0)));
}

/* Loop orders (each row streaming through K alone for nc <= 4, else blocks
 * outer) and prefetch as in avx2_q4_k_q5_k.c. */
KQ_X86_INLINE void Q4K5_FN(q4k5_tile_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                       size_t a_stride, const int NC, int64_t n_blocks, float *out,
                                       int64_t ldo, const int Q5)
{
    const size_t bb = Q5 ? 176 : 144;
    const kq_act256 *ab[KQ_X86_NC];
    __m128i bsp[KQ_X86_NC];
    if (NC <= KQ_X86_STREAM_NC) {
        for (int r = 0; r < nr; r++) {
            __m512 acc[KQ_X86_NC];
            __m128 accm[KQ_X86_NC];
            for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps(), accm[c] = _mm_setzero_ps();
            const uint8_t *blk = w + (size_t)r * w_stride;
            for (int64_t b = 0; b < n_blocks; b++, blk += bb) {
                kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, bb);
                Q4K5_FN(q4k5_acts_)(a, a_stride, b, NC, ab, bsp);
                Q4K5_FN(q4k5_block_)(blk, ab, bsp, NC, acc, accm, Q5);
            }
            for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = Q4K5_FN(q4k5_total_)(acc[c], accm[c]);
        }
        return;
    }
    __m512 acc[KQ_X86_MR][KQ_X86_NC];
    __m128 accm[KQ_X86_MR][KQ_X86_NC];
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps(), accm[r][c] = _mm_setzero_ps();
    for (int64_t b = 0; b < n_blocks; b++) {
        Q4K5_FN(q4k5_acts_)(a, a_stride, b, NC, ab, bsp);
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * bb;
            kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, bb);
            Q4K5_FN(q4k5_block_)(blk, ab, bsp, NC, acc[r], accm[r], Q5);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = Q4K5_FN(q4k5_total_)(acc[r][c], accm[r][c]);
}

static void Q4K5_FN(q4k_avx512_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q4K_CALL(N) Q4K5_FN(q4k5_tile_)(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, 0)
    KQ_X86_NC_SWITCH(nc, Q4K_CALL)
#undef Q4K_CALL
}

static void Q4K5_FN(q5k_avx512_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q5K_CALL(N) Q4K5_FN(q4k5_tile_)(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, 1)
    KQ_X86_NC_SWITCH(nc, Q5K_CALL)
#undef Q5K_CALL
}

#endif
