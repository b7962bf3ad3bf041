/* Variant 2 of the 32-value block types q4_0, q4_1, q5_0, q5_1 and mxfp4,
 * AVX2: m >= 8 in the dense drivers, activations as kq_act32x8 tiles
 * (ukernel.h).
 *
 * Why: the other large-m kernels (x86_block32.h, avx2_q4_0_q8_0.c) hold one
 * activation row per accumulator, so each 32-value block of each (weight
 * row, activation row) pair costs a convert, a multiply and an fma on a
 * vector whose 8 lanes are all partial sums of that one pair: about 6
 * vector operations per 32 multiply-adds. Here the 8 lanes are the tile's
 * 8 activation rows.
 *
 * Strategy: a tile of up to 4 weight rows x 8 activation rows, blocks
 * inner. Each row's block is decoded once to 32 unsigned bytes (element j
 * at byte j: the nibble, with the fifth bit for q5_0/q5_1, or mxfp4's
 * doubled grid value + 12) into a stack buffer; then for each group of 4
 * elements one broadcast load of the row's 4 bytes and one vpmaddubsw
 * against the activation tile's 32-byte group (4 values of each of the 8
 * rows) give, per lane, that row pair's partial dot product. Four groups
 * add in int16 (each vpmaddubsw lane is at most 2 * 31 * 127 = 7874, four
 * of them 31496 < 32767), then one vpmaddwd to int32. Per block and row:
 * the offset (q4_0 8, q5_0 16, mxfp4 12) times the activation block's sums
 * comes off in int32 (computed once per block for all rows), one convert,
 * and one fma with d_w * d_a (the 8 d_a are one vector); q4_1/q5_1's min
 * adds m * (d_a * sum) with one more fma. About 3 vector operations per 32
 * multiply-adds, plus the decode shared by the tile's 8 rows.
 *
 * Measured (CI-class Zen 3 core, hand-built loop of q5_0-like blocks, 64
 * rows x 64 activation rows x K = 640 in L2): 109 GOP/s against 56 for
 * the 4x8 kernel of x86_block32.h. kq bench, 2 threads: q5_0 4096x640 m
 * = 8 / 16 330 / 630 us (560 / 920-1170 before), q4_0 4096x4096 m = 512
 * 98-101 ms (155-207); more in bench/RESULTS.md (2026-12-07, third
 * session). Signed types (q8_0, iq4_nl) were tried here with vpsignb on
 * the tile and a vpmaddwd per group: no faster than variant 1, dropped. */
#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)

#include <stddef.h>

#include "cpu/block32_spec.h"
#include "kquant.h"

/* mxfp4's grid (kq_mxfp4_values, doubled E2M1 values) spans -12..12: + 12
 * makes it unsigned for vpmaddubsw, and x8_offset takes the 12 back. */
enum { X8_MXFP4_SHIFT = 12 };

/* A block's 32 values as unsigned bytes (the type's offset not removed). */
KQ_X86_INLINE __m256i x8_values(const uint8_t *blk, const block32_spec S)
{
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(blk + S.qs)));
    __m256i v = _mm256_and_si256(_mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                                 _mm256_set1_epi8(0x0F));
    if (S.grid == KQ_B32_MXFP4) {
        const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)kq_block32_grid(S.grid)));
        v = _mm256_add_epi8(_mm256_shuffle_epi8(grid, v), _mm256_set1_epi8(X8_MXFP4_SHIFT));
    }
    if (S.qh >= 0) v = _mm256_or_si256(v, _mm256_and_si256(kq_x86_qh_set(blk + S.qh), _mm256_set1_epi8(0x10)));
    return v;
}

/* The offset each unsigned value carries: 8, 16, 12, or 0 with a min. */
static inline int x8_offset(const block32_spec S)
{
    if (S.m >= 0) return 0;
    if (S.grid == KQ_B32_MXFP4) return X8_MXFP4_SHIFT;
    return S.qh >= 0 ? 16 : 8;
}

/* offset * sum per lane, from the tile's 8 int32 sums. */
KQ_X86_INLINE __m256i x8_offset_sums(__m256i sum, const int off)
{
    if (off == 8) return _mm256_slli_epi32(sum, 3);
    if (off == 16) return _mm256_slli_epi32(sum, 4);
    if (off == 12) return _mm256_add_epi32(_mm256_slli_epi32(sum, 3), _mm256_slli_epi32(sum, 2));
    return _mm256_setzero_si256();
}

/* Rows r < NR of the tile: its 8 lanes are the activation rows. */
KQ_X86_INLINE void x8_tile(const uint8_t *w, size_t w_stride, const int NR, const kq_act32x8 *a,
                           int nc, int64_t n_blocks, float *out, int64_t ldo, const block32_spec S)
{
    const int off = x8_offset(S);
    const size_t bb = (size_t)S.bytes;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_ps();
    _Alignas(32) uint8_t u[4][32];
    for (int64_t b = 0; b < n_blocks; b++) {
        const kq_act32x8 *t = &a[b];
        __m256 vd[4], vm[4];
        for (int r = 0; r < NR; r++) {
            const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * bb;
            _mm_prefetch((const char *)blk + KQ_X86_PF_BYTES, _MM_HINT_T0);
            _mm256_store_si256((__m256i *)(void *)u[r], x8_values(blk, S));
            vd[r] = S.e8m0 ? _mm256_broadcast_ss(&kq__x86_e8m0_table[blk[0]]) : kq_x86_half_bcast(blk);
            if (S.m >= 0) vm[r] = kq_x86_half_bcast(blk + S.m);
        }
        __m256i s[4];
        for (int r = 0; r < NR; r++) s[r] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i a0 = _mm256_load_si256((const __m256i *)(const void *)t->q[4 * h + 0]);
            const __m256i a1 = _mm256_load_si256((const __m256i *)(const void *)t->q[4 * h + 1]);
            const __m256i a2 = _mm256_load_si256((const __m256i *)(const void *)t->q[4 * h + 2]);
            const __m256i a3 = _mm256_load_si256((const __m256i *)(const void *)t->q[4 * h + 3]);
            for (int r = 0; r < NR; r++) {
                const uint8_t *g = u[r] + 16 * h;
                __m256i p = _mm256_maddubs_epi16(_mm256_set1_epi32((int)kq_x86_load_u32(g)), a0);
                p = _mm256_add_epi16(p, _mm256_maddubs_epi16(_mm256_set1_epi32((int)kq_x86_load_u32(g + 4)), a1));
                p = _mm256_add_epi16(p, _mm256_maddubs_epi16(_mm256_set1_epi32((int)kq_x86_load_u32(g + 8)), a2));
                p = _mm256_add_epi16(p, _mm256_maddubs_epi16(_mm256_set1_epi32((int)kq_x86_load_u32(g + 12)), a3));
                s[r] = _mm256_add_epi32(s[r], _mm256_madd_epi16(p, ones));
            }
        }
        const __m256 da = _mm256_load_ps(t->d);
        const __m256i sum = _mm256_load_si256((const __m256i *)(const void *)t->sum);
        const __m256i corr = x8_offset_sums(sum, off);
        const __m256 dsum = S.m >= 0 ? _mm256_mul_ps(da, _mm256_cvtepi32_ps(sum)) : da;
        for (int r = 0; r < NR; r++) {
            const __m256i sr = off ? _mm256_sub_epi32(s[r], corr) : s[r];
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sr), _mm256_mul_ps(vd[r], da), acc[r]);
            if (S.m >= 0) acc[r] = _mm256_fmadd_ps(vm[r], dsum, acc[r]);
        }
    }
    for (int r = 0; r < NR; r++) {
        _Alignas(32) float v[8];
        _mm256_store_ps(v, acc[r]);
        for (int c = 0; c < nc; c++) out[(int64_t)c * ldo + r] = v[c];
    }
}

#define X8_TYPE(name, SPEC)                                                                       \
    static void x8_##name(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,            \
                          size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)     \
    {                                                                                             \
        (void)a_stride;                                                                           \
        const block32_spec S = SPEC;                                                              \
        const kq_act32x8 *t = (const kq_act32x8 *)(const void *)a;                                \
        switch (nr) {                                                                             \
        case 1: x8_tile(w, w_stride, 1, t, nc, n_blocks, out, ldo, S); break;                     \
        case 2: x8_tile(w, w_stride, 2, t, nc, n_blocks, out, ldo, S); break;                     \
        case 3: x8_tile(w, w_stride, 3, t, nc, n_blocks, out, ldo, S); break;                     \
        default: x8_tile(w, w_stride, 4, t, nc, n_blocks, out, ldo, S); break;                    \
        }                                                                                         \
    }                                                                                             \
    static const kq_ukernel x8_k_##name = {#name " avx2 4x8 x8", 4, 8, x8_##name};

X8_TYPE(q4_0, KQ_B32_SPEC_Q4_0)
X8_TYPE(q4_1, KQ_B32_SPEC_Q4_1)
X8_TYPE(q5_0, KQ_B32_SPEC_Q5_0)
X8_TYPE(q5_1, KQ_B32_SPEC_Q5_1)
X8_TYPE(mxfp4, KQ_B32_SPEC_MXFP4)

const kq_ukernel *kq__ukernel_avx2_x8(int weight_type)
{
    kq__x86_half_table_init();
    switch (weight_type) {
    case KQ_TYPE_Q4_0: return &x8_k_q4_0;
    case KQ_TYPE_Q4_1: return &x8_k_q4_1;
    case KQ_TYPE_Q5_0: return &x8_k_q5_0;
    case KQ_TYPE_Q5_1: return &x8_k_q5_1;
    case KQ_TYPE_MXFP4: return &x8_k_mxfp4;
    default: return NULL; /* variant 1 serves the other types */
    }
}

#endif
