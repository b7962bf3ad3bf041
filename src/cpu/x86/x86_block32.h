/* The 32-element block types q4_0, q4_1, q5_0, q5_1, iq4_nl and mxfp4 x
 * kq_act32: one tile body, 256 bits wide, included by avx2_block32.c
 * (maddubs + madd), avx512_block32.c (the same with AVX-512's encodings and
 * 32 registers) and avx512_vnni_block32.c (vpdpbusd), which define
 * KQ_X86_VNNI, KQ_X86_SUFFIX, KQ_X86_TABLE(name) and KQ_X86_LABEL.
 *
 * The types differ only in constants (block32_spec, a compile-time
 * constant at every call, so each type gets its own straight-line code):
 *   values  a block's 16 bytes of nibbles, in both 128-bit lanes shifted by
 *           0 and 4 (element j at byte j), become int8 through one vpshufb
 *           of a 16-entry table: the iq4_nl or mxfp4 grid, identity - 8 for
 *           q4_0; q4_1/q5_1 keep the nibble (0..15) and need none;
 *   5th bit q5_0/q5_1: the 32-bit qh spread one bit per byte (vpshufb of
 *           its bytes, vpcmpeqb against the bit) then OR 0x10 (q5_1), or
 *           OR 0xF0 where the bit is clear, which makes nibble - 16 (q5_0);
 *   scale   fp16 d, or mxfp4's E8M0 exponent as 2^(e - 128) (blocks.h);
 *   min     q4_1/q5_1: m * d_a * (the activation block's sum), into a
 *           second accumulator per row.
 * Signed values are multiplied as |w| against the activation with w's sign
 * moved onto it (vpsignb; no saturation: 2 * 127 * 127 < 32767), unsigned
 * ones directly. The loop is avx2_q4_0_q8_0.c's: rows outer, blocks inner in
 * pairs, two accumulator sets while few activation rows leave the fma
 * latency exposed. */
#if defined(__x86_64__)

#ifndef KQ_X86_VNNI
#error "define KQ_X86_VNNI before including x86_block32.h"
#endif

#include <stddef.h>

#include "cpu/block32_spec.h"

#define B32_FN(name) KQ_X86_CAT(name, KQ_X86_SUFFIX)


KQ_X86_INLINE __m256i B32_FN(b32_grid_)(const int grid)
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)kq_block32_grid(grid)));
}

/* The block's 32 values as bytes: signed for every type but q4_1/q5_1. */
KQ_X86_INLINE __m256i B32_FN(b32_values_)(const uint8_t *blk, const block32_spec S, __m256i grid)
{
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(blk + S.qs)));
    __m256i v = _mm256_and_si256(_mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                                 _mm256_set1_epi8(0x0F));
    if (S.grid != KQ_B32_NONE) v = _mm256_shuffle_epi8(grid, v);
    if (S.qh >= 0) {
        const __m256i set = kq_x86_qh_set(blk + S.qh);
        v = S.q5_0 ? _mm256_or_si256(v, _mm256_andnot_si256(set, _mm256_set1_epi8((char)0xF0)))
                   : _mm256_or_si256(v, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    return v;
}

/* int32 lanes summing to the dot product of w and a; wa = |w| for signed w. */
KQ_X86_INLINE __m256i B32_FN(b32_dot_)(__m256i wv, __m256i wa, __m256i av, const int is_signed)
{
    const __m256i x = is_signed ? _mm256_sign_epi8(av, wv) : av;
    const __m256i u = is_signed ? wa : wv;
#if KQ_X86_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, x);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
#endif
}

/* One block of one row against the NC activation rows: acc[c] += the scale
 * term, accm[c] lane 1 += the min term (q4_1/q5_1). */
KQ_X86_INLINE void B32_FN(b32_block_)(const uint8_t *blk, const uint8_t *a, size_t a_stride,
                                      int64_t b, const int NC, __m256 *acc, __m128 *accm,
                                      const block32_spec S, __m256i grid)
{
    const int is_signed = S.m < 0;
    const __m256i wv = B32_FN(b32_values_)(blk, S, grid);
    const __m256i wa = is_signed ? _mm256_sign_epi8(wv, wv) : wv;
    /* lane 0 the scale, lane 1 the min (q4_1/q5_1: d and m are adjacent). */
    if (S.m < 0) {
        /* No min: d * da in 256 bits from a broadcast load, one shuffle per
         * activation row fewer than the 128-bit pair below (q5_0 and
         * iq4_nl at m = 64..512: about 8% faster against q8_0 in the same
         * runs); the product and the sums are the same bits. The scale
         * comes from a table (avx2_half_table.c): no vector operation. */
        const __m256 vd = S.e8m0 ? _mm256_broadcast_ss(&kq__x86_e8m0_table[blk[0]]) : kq_x86_half_bcast(blk);
        for (int c = 0; c < NC; c++) {
            const kq_act32 *ab = (const kq_act32 *)(const void *)(a + (size_t)c * a_stride) + b;
            const __m256i s = B32_FN(b32_dot_)(wv, wa, _mm256_loadu_si256((const __m256i *)(const void *)ab->q), is_signed);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(vd, _mm256_broadcast_ss(&ab->d)), acc[c]);
        }
        return;
    }
    const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128((int)kq_x86_load_u32(blk)));
    for (int c = 0; c < NC; c++) {
        const kq_act32 *ab = (const kq_act32 *)(const void *)(a + (size_t)c * a_stride) + b;
        const __m256i s = B32_FN(b32_dot_)(wv, wa, _mm256_loadu_si256((const __m256i *)(const void *)ab->q), is_signed);
        const __m128 sdm = _mm_mul_ps(dm, _mm_broadcast_ss(&ab->d));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_broadcastss_ps(sdm), acc[c]);
        if (S.m >= 0)
            accm[c] = _mm_fmadd_ps(sdm, _mm_cvtepi32_ps(_mm_set1_epi32(ab->sum)), accm[c]);
    }
}

KQ_X86_INLINE void B32_FN(b32_tile_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                                     size_t a_stride, const int NC, int64_t n_blocks, float *out,
                                     int64_t ldo, const block32_spec S)
{
    const size_t bb = (size_t)S.bytes;
    const __m256i grid = B32_FN(b32_grid_)(S.grid);
    const int two = NC <= 2;
    for (int r = 0; r < nr; r++) {
        const uint8_t *blk = w + (size_t)r * w_stride;
        __m256 acc0[KQ_X86_NC], acc1[KQ_X86_NC];
        __m128 accm[KQ_X86_NC];
        for (int c = 0; c < NC; c++) acc0[c] = acc1[c] = _mm256_setzero_ps(), accm[c] = _mm_setzero_ps();
        int64_t b = 0;
        for (; b + 1 < n_blocks; b += 2, blk += 2 * bb) {
            /* Two blocks (34 to 48 bytes) a step: one line ahead each step. */
            _mm_prefetch((const char *)blk + KQ_X86_PF_BYTES, _MM_HINT_T0);
            B32_FN(b32_block_)(blk, a, a_stride, b, NC, acc0, accm, S, grid);
            B32_FN(b32_block_)(blk + bb, a, a_stride, b + 1, NC, two ? acc1 : acc0, accm, S, grid);
        }
        if (b < n_blocks) B32_FN(b32_block_)(blk, a, a_stride, b, NC, acc0, accm, S, grid);
        for (int c = 0; c < NC; c++) {
            float v = kq_x86_hsum(_mm256_add_ps(acc0[c], acc1[c]));
            if (S.m >= 0) v += _mm_cvtss_f32(_mm_shuffle_ps(accm[c], accm[c], 0x55));
            out[(int64_t)c * ldo + r] = v;
        }
    }
}

/* One tile function and table per type: [0] 4x4 tiles (decode), [1] 4x8. */
#define B32_CALL(N) B32_FN(b32_tile_)(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, S)
#define B32_TYPE(name, SPEC)                                                                    \
    static void B32_FN(name##_tile_)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a, \
                                     size_t a_stride, int nc, int64_t n_blocks, float *out,      \
                                     int64_t ldo)                                                \
    {                                                                                           \
        const block32_spec S = SPEC;                                                            \
        KQ_X86_NC_SWITCH(nc, B32_CALL)                                                          \
    }                                                                                           \
    const kq_ukernel KQ_X86_TABLE(name)[2] = {                                                  \
        {#name " " KQ_X86_LABEL " 4x4", 4, 4, B32_FN(name##_tile_)},                            \
        {#name " " KQ_X86_LABEL " 4x8", 4, 8, B32_FN(name##_tile_)},                            \
    };

#endif
