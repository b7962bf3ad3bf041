/* q4_0 and q8_0 x kq_act32 tile kernels, AVX-512, as a body included by
 * avx512_q4_0_q8_0.c (BW: maddubs) and avx512_vnni_q4_0_q8_0.c (vpdpbusd),
 * which define KQ_X86_VNNI to 0 or 1 and KQ_X86_SUFFIX.
 *
 * Strategy: weights as signed bytes (q4_0: nibble - 8), multiplied as |w|
 * against the activation with w's sign moved onto it (no offsets; with
 * maddubs no saturation: 2 * 128 * 127 < 32767). With nc <= 4 each row
 * streams through K alone, a block at a time in 256 bits, as
 * avx2_q4_0_q8_0.c (VNNI: one vpdpbusd for maddubs + madd). With more
 * activation rows, blocks outer in pairs: one zmm holds two whole blocks
 * (weights of blocks b, b+1 of a row; the activation's two q[32] joined
 * once per pair and shared by the tile's rows); each 256-bit half has its
 * own scale d_w * d_a, so the int32 lanes are converted and accumulated
 * with one fma per pair of blocks. An odd last block runs at 256 bits. */
#if defined(__x86_64__)

#ifndef KQ_X86_VNNI
#error "define KQ_X86_VNNI before including avx512_q4_0_q8_0.h"
#endif

#define Q40_FN(name) KQ_X86_CAT(name, KQ_X86_SUFFIX)

/* Blocks b (low half) and b + 1 (high half) of a row as signed bytes (q4_0:
 * nibble - 8, its 16 bytes in both 128-bit lanes of their half shifted by 0
 * and 4; q8_0: as stored). */
KQ_X86_INLINE __m512i Q40_FN(q40_pair_)(const uint8_t *blk, size_t bb, const int Q8)
{
    if (Q8)
        return kq_x86_join(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 2)),
                           _mm256_loadu_si256((const __m256i *)(const void *)(blk + bb + 2)));
    const __m512i q = kq_x86_join(
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(blk + 2))),
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(blk + bb + 2))));
    const __m512i nib = _mm512_and_si512(_mm512_srlv_epi64(q, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)),
                                         _mm512_set1_epi8(0x0F));
    return _mm512_sub_epi8(nib, _mm512_set1_epi8(8));
}

/* int32 lanes of the products of signed w and a, summed in fours (VNNI) or
 * pairs of pairs: |w| against a with w's sign moved onto it (a masked
 * negate), the unsigned x signed form both instructions take. */
KQ_X86_INLINE __m512i Q40_FN(q40_dot_)(__m512i wabs, __mmask64 neg, __m512i av)
{
    const __m512i as = _mm512_mask_sub_epi8(av, neg, _mm512_setzero_si512(), av);
#if KQ_X86_VNNI
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), wabs, as);
#else
    return _mm512_madd_epi16(_mm512_maddubs_epi16(wabs, as), _mm512_set1_epi16(1));
#endif
}

/* The same for one block in 256 bits (sign moved by vpsignb). */
KQ_X86_INLINE __m256i Q40_FN(q40_dot256_)(__m256i wv, __m256i av)
{
    const __m256i wabs = _mm256_sign_epi8(wv, wv), as = _mm256_sign_epi8(av, wv);
#if KQ_X86_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), wabs, as);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, as), _mm256_set1_epi16(1));
#endif
}

/* One block of a row as signed bytes in 256 bits. */
KQ_X86_INLINE __m256i Q40_FN(q40_one_)(const uint8_t *blk, const int Q8)
{
    if (Q8) return _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(blk + 2)));
    return _mm256_sub_epi8(_mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)),
                                            _mm256_set1_epi8(0x0F)),
                           _mm256_set1_epi8(8));
}

/* Block b of one row against the NC activation rows, 256 bits, into acc[c]. */
KQ_X86_INLINE void Q40_FN(q40_block256_)(const uint8_t *blk, const uint8_t *a, size_t a_stride,
                                         int64_t b, const int NC, __m256 *acc, const int Q8)
{
    const __m256i wv = Q40_FN(q40_one_)(blk, Q8);
    const __m256 vd = _mm256_set1_ps(kq_x86_half(blk));
    for (int c = 0; c < NC; c++) {
        const kq_act32 *ab = (const kq_act32 *)(const void *)(a + (size_t)c * a_stride) + b;
        const __m256i s = Q40_FN(q40_dot256_)(wv, _mm256_loadu_si256((const __m256i *)(const void *)ab->q));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(vd, _mm256_broadcast_ss(&ab->d)), acc[c]);
    }
}

/* Few activation rows: each row one sequential stream through K, a block at
 * a time in 256 bits (the 512-bit pair form would pay a cross-half join per
 * activation row and block, on port 5, for no reuse: measured 1.2x slower
 * at nc 1), two accumulators against the fma latency. */
KQ_X86_INLINE void Q40_FN(q40_rows_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                     size_t a_stride, const int NC, int64_t n_blocks, float *out,
                                     int64_t ldo, const int Q8)
{
    const size_t bb = Q8 ? 34 : 18;
    for (int r = 0; r < nr; r++) {
        const uint8_t *blk = w + (size_t)r * w_stride;
        __m256 acc0[KQ_X86_NC], acc1[KQ_X86_NC];
        for (int c = 0; c < NC; c++) acc0[c] = acc1[c] = _mm256_setzero_ps();
        int64_t b = 0;
        for (; b + 1 < n_blocks; b += 2, blk += 2 * bb) {
            _mm_prefetch((const char *)blk + KQ_X86_PF_BYTES, _MM_HINT_T0);
            if (Q8) _mm_prefetch((const char *)blk + KQ_X86_PF_BYTES + 64, _MM_HINT_T0);
            Q40_FN(q40_block256_)(blk, a, a_stride, b, NC, acc0, Q8);
            Q40_FN(q40_block256_)(blk + bb, a, a_stride, b + 1, NC, acc1, Q8);
        }
        if (b < n_blocks) Q40_FN(q40_block256_)(blk, a, a_stride, b, NC, acc0, Q8);
        for (int c = 0; c < NC; c++)
            out[(int64_t)c * ldo + r] = kq_x86_hsum(_mm256_add_ps(acc0[c], acc1[c]));
    }
}

/* Many activation rows: blocks outer in pairs, the tile's rows inner, so
 * each joined activation pair and its scales serve all weight rows. */
KQ_X86_INLINE void Q40_FN(q40_blocks_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                       size_t a_stride, const int NC, int64_t n_blocks, float *out,
                                       int64_t ldo, const int Q8)
{
    const size_t bb = Q8 ? 34 : 18;
    __m512 acc[KQ_X86_MR][KQ_X86_NC];
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps();
    const int64_t n_pairs = n_blocks / 2;
    for (int64_t p = 0; p < n_pairs; p++) {
        __m512i av[KQ_X86_NC];
        __m512 da[KQ_X86_NC];
        for (int c = 0; c < NC; c++) {
            const kq_act32 *ab = (const kq_act32 *)(const void *)(a + (size_t)c * a_stride) + 2 * p;
            av[c] = kq_x86_join(_mm256_loadu_si256((const __m256i *)(const void *)ab[0].q),
                                _mm256_loadu_si256((const __m256i *)(const void *)ab[1].q));
            da[c] = _mm512_mask_mov_ps(_mm512_set1_ps(ab[0].d), 0xFF00, _mm512_set1_ps(ab[1].d));
        }
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * w_stride + (size_t)(2 * p) * bb;
            _mm_prefetch((const char *)blk + KQ_X86_PF_BYTES, _MM_HINT_T0);
            if (Q8) _mm_prefetch((const char *)blk + KQ_X86_PF_BYTES + 64, _MM_HINT_T0);
            const __m512i wv = Q40_FN(q40_pair_)(blk, bb, Q8);
            const __m512i wabs = _mm512_abs_epi8(wv);
            const __mmask64 neg = _mm512_movepi8_mask(wv);
            const __m512 vd = _mm512_mask_mov_ps(_mm512_set1_ps(kq_x86_half(blk)), 0xFF00,
                                                 _mm512_set1_ps(kq_x86_half(blk + bb)));
            for (int c = 0; c < NC; c++) {
                const __m512i s = Q40_FN(q40_dot_)(wabs, neg, av[c]);
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(vd, da[c]), acc[r][c]);
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        __m256 last[KQ_X86_NC];
        for (int c = 0; c < NC; c++) last[c] = _mm256_setzero_ps();
        if (n_blocks & 1)
            Q40_FN(q40_block256_)(w + (size_t)r * w_stride + (size_t)(n_blocks - 1) * bb, a, a_stride,
                                  n_blocks - 1, NC, last, Q8);
        for (int c = 0; c < NC; c++)
            out[(int64_t)c * ldo + r] = kq_x86_hsum512(_mm512_add_ps(acc[r][c], _mm512_zextps256_ps512(last[c])));
    }
}

KQ_X86_INLINE void Q40_FN(q40_tile_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                     size_t a_stride, const int NC, int64_t n_blocks, float *out,
                                     int64_t ldo, const int Q8)
{
    if (NC <= KQ_X86_STREAM_NC)
        Q40_FN(q40_rows_)(w, w_stride, nr, a, a_stride, NC, n_blocks, out, ldo, Q8);
    else
        Q40_FN(q40_blocks_)(w, w_stride, nr, a, a_stride, NC, n_blocks, out, ldo, Q8);
}

static void Q40_FN(q40_avx512_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q40_CALL(N) Q40_FN(q40_tile_)(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, 0)
    KQ_X86_NC_SWITCH(nc, Q40_CALL)
#undef Q40_CALL
}

static void Q40_FN(q80_avx512_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q80_CALL(N) Q40_FN(q40_tile_)(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, 1)
    KQ_X86_NC_SWITCH(nc, Q80_CALL)
#undef Q80_CALL
}

#endif
