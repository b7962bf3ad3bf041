/* q4_0 and q8_0 x kq_act32 tile kernels, AVX2.
 *
 * Strategy: the tile's rows outer, blocks inner, so the NC float
 * accumulators stay in registers (a 32-value block is too short to pay for
 * accumulators in memory, measured 1.2x slower). A row's block becomes one
 * vector of bytes applied to all NC activation rows. q8_0's are signed:
 * maddubs takes |w| and the activation with w's sign moved onto it (no
 * saturation: 2 * 128 * 127 < 32767), madd by ones. q4_0's nibbles stay
 * unsigned (0..15) and the -8 comes after the madd, as the activation
 * block's sum subtracted from each of the 8 int32 lanes: a broadcast load
 * and one subtraction, where signed nibbles cost a subtraction and two
 * vpsignb.
 * Each block has its own float scale, so the int32 lanes are converted and
 * accumulated with d * da every block (one cvt and one fma per tile entry);
 * d is a broadcast load from avx2_half_table.c's table, no vector operation.
 *
 * Measured (avx2.c says how), q4_0 / q8_0, weights in L2: nc 1: 12.2 /
 * 26.6 GB/s of weights before the unsigned nibbles and the scale table,
 * q4_0 16.5 GB/s after (1.45 -> 1.09 ns a block); nc 4: 63 / 67 GOP/s;
 * nc 8: 69 / 71 GOP/s. Each 32-value block still pays a cvt, a mul and an
 * fma on the two FMA pipes beside maddubs and madd, so these stay below
 * the k-quant kernels. kq bench, 4096x4096, m = 1, 2 threads, from DRAM:
 * q4_0 600 -> 400-500 us (46% -> 58-69% of the read ceiling), q8_0 83-90%.
 */
#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)

enum { Q40_BYTES = 18, Q80_BYTES = 34 };

/* Low nibbles (values 0..15) in the low lane, high nibbles in the high lane:
 * the 16 bytes loaded into both lanes, shifted by 0 and 4 (two vector ops
 * rather than four for shift-and-insert). */
KQ_X86_INLINE __m256i q40_unpack(const uint8_t *blk)
{
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(blk + 2)));
    return _mm256_and_si256(_mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                            _mm256_set1_epi8(0x0F));
}

/* One block of one row against the NC activation rows, into acc[]. Q8
 * selects q8_0 (32 bytes read at blk + 2 of 34), else q4_0 (16 of 18). */
KQ_X86_INLINE void q40_block(const uint8_t *blk, const uint8_t *a, size_t a_stride, int64_t b,
                             const int NC, __m256 *acc, const int Q8)
{
    const __m256i ones = _mm256_set1_epi16(1);
    /* q8_0: signed weights, their magnitudes, and per activation row the
     * sign moved onto the activation: maddubs(|w|, a * sign(w)). q4_0: the
     * nibbles as they are (0..15) and the -8 afterwards (below). */
    const __m256i wv = Q8 ? _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2)) : q40_unpack(blk);
    const __m256i wa = Q8 ? _mm256_sign_epi8(wv, wv) : wv;
    const __m256 vd = kq_x86_half_bcast(blk);
    for (int c = 0; c < NC; c++) {
        const kq_act32 *ab = (const kq_act32 *)(const void *)(a + (size_t)c * a_stride) + b;
        const __m256i av = _mm256_loadu_si256((const __m256i *)(const void *)ab->q);
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(wa, Q8 ? _mm256_sign_epi8(av, wv) : av), ones);
        /* q4_0's -8 * (sum of the block's activations), spread as -sum over
         * each of the 8 lanes. */
        if (!Q8) s = _mm256_sub_epi32(s, _mm256_set1_epi32(ab->sum));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(vd, _mm256_broadcast_ss(&ab->d)), acc[c]);
    }
}

KQ_X86_INLINE void q40_tile(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                            size_t a_stride, const int NC, int64_t n_blocks, float *out,
                            int64_t ldo, const int Q8)
{
    const size_t bb = Q8 ? Q80_BYTES : Q40_BYTES;
    /* With few activation rows the fma chain (4 cycles a block) would bound
     * the loop: even and odd blocks then go to separate accumulators. */
    const int two = NC <= 2;
    for (int r = 0; r < nr; r++) {
        const uint8_t *blk = w + (size_t)r * w_stride;
        __m256 acc0[KQ_X86_NC], acc1[KQ_X86_NC];
        for (int c = 0; c < NC; c++) acc0[c] = acc1[c] = _mm256_setzero_ps();
        int64_t b = 0;
        for (; b + 1 < n_blocks; b += 2, blk += 2 * bb) {
            /* Two blocks (36 or 68 bytes) a step: one line ahead each step. */
            _mm_prefetch((const char *)blk + KQ_X86_PF_BYTES, _MM_HINT_T0);
            if (Q8) _mm_prefetch((const char *)blk + KQ_X86_PF_BYTES + 64, _MM_HINT_T0);
            q40_block(blk, a, a_stride, b, NC, acc0, Q8);
            q40_block(blk + bb, a, a_stride, b + 1, NC, two ? acc1 : acc0, Q8);
        }
        if (b < n_blocks) q40_block(blk, a, a_stride, b, NC, acc0, Q8);
        for (int c = 0; c < NC; c++)
            out[(int64_t)c * ldo + r] = kq_x86_hsum(_mm256_add_ps(acc0[c], acc1[c]));
    }
}

static void q40_avx2(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a, size_t a_stride,
                     int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q40_CALL(N) q40_tile(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, 0)
    KQ_X86_NC_SWITCH(nc, Q40_CALL)
#undef Q40_CALL
}

static void q80_avx2(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a, size_t a_stride,
                     int nc, int64_t n_blocks, float *out, int64_t ldo)
{
#define Q80_CALL(N) q40_tile(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo, 1)
    KQ_X86_NC_SWITCH(nc, Q80_CALL)
#undef Q80_CALL
}

const kq_ukernel kq__avx2_q4_0[2] = {
    {"q4_0 avx2 4x4", 4, 4, q40_avx2},
    {"q4_0 avx2 4x8", 4, 8, q40_avx2},
};

const kq_ukernel kq__avx2_q8_0[2] = {
    {"q8_0 avx2 4x4", 4, 4, q80_avx2},
    {"q8_0 avx2 4x8", 4, 8, q80_avx2},
};

#endif
