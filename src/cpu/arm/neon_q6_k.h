/* q6_K tile body for NEON (included by neon_plain.c and neon_dotprod.c).
 *
 * Strategy: per 256-element block and weight row, the 16 int8 scales are
 * widened once into 4 int32 vectors (one per 64-element quarter). A quarter
 * is rebuilt from 4 ql and 2 qh registers into 4 registers of q - 32 in
 * element order (each one 16-element sub-block), dotted with every
 * activation row of the tile; the 4 sub-block dots fold into one vector
 * (lane = sub-block) that one integer multiply-add scales, so the block's
 * sum stays exact in int32 (at most 16 * 128 * 16 * 32 * 127). Per block and
 * row the sums fold to one lane per activation row and enter the float
 * accumulator scaled by d * d_a. Subtracting 32 from the weights keeps the
 * values signed for sdot and needs no activation sums.
 * Speed: unmeasured on real ARM hardware (tested for correctness under
 * qemu-aarch64 only). */
#ifndef KQ_CPU_ARM_NEON_Q6_K_H
#define KQ_CPU_ARM_NEON_Q6_K_H

#include "neon_common.h"

#if defined(__aarch64__)
#include <stddef.h>

#include "formats/blocks.h"

/* low | high2 - 32 as int8. */
KQ_NEON_INLINE int8x16_t neon_q6_value(uint8x16_t low, uint8x16_t high2)
{
    return vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, high2)), vdupq_n_s8(32));
}

/* Adds to is[c] (c < nc) the scaled dots of the 64 weights w[0..3] with
 * activation values q[64 * quarter ..] of each row. */
KQ_NEON_INLINE void neon_q6_quarter(const int8x16_t wq[4], int32x4_t sc, const uint8_t *ablk,
                                    size_t a_stride, const int nc, int quarter,
                                    int32x4_t is[KQ_NEON_NC])
{
    for (int c = 0; c < nc; c++) {
        const int8_t *q = (const int8_t *)(ablk + (size_t)c * a_stride) + 64 * quarter;
        const int32x4_t t0 = neon_dot16_small(wq[0], vld1q_s8(q));
        const int32x4_t t1 = neon_dot16_small(wq[1], vld1q_s8(q + 16));
        const int32x4_t t2 = neon_dot16_small(wq[2], vld1q_s8(q + 32));
        const int32x4_t t3 = neon_dot16_small(wq[3], vld1q_s8(q + 48));
        const int32x4_t p = vpaddq_s32(vpaddq_s32(t0, t1), vpaddq_s32(t2, t3));
        is[c] = vmlaq_s32(is[c], p, sc);
    }
}

KQ_NEON_INLINE void KQ_NEON_SUFFIX(q6_K_body)(const uint8_t *w, size_t w_stride, int nr,
                                              const uint8_t *a, size_t a_stride, const int nc,
                                              int64_t n_blocks, float *out, int64_t ldo)
{
    const size_t wb = sizeof(kq_block_q6_K), ab = sizeof(kq_act256);
    const uint8_t *wr[KQ_NEON_MR];
    float32x4_t acc[KQ_NEON_MR];
    for (int r = 0; r < KQ_NEON_MR; r++) wr[r] = neon_row(w, w_stride, nr, r), acc[r] = vdupq_n_f32(0);
    const uint8x16_t low4 = vdupq_n_u8(0x0F), bits45 = vdupq_n_u8(0x30);
    for (int64_t b = 0; b < n_blocks; b++) {
        const uint8_t *ablk = a + (size_t)b * ab;
        const float32x4_t ad = neon_act_scales(ablk, a_stride, nc, offsetof(kq_act256, d));
        for (int r = 0; r < KQ_NEON_MR; r++) {
            const uint8_t *blk = wr[r] + (size_t)b * wb;
            const uint8_t *arow = neon_opaque(ablk);
            const int8x16_t sc8 = vld1q_s8((const int8_t *)blk + offsetof(kq_block_q6_K, scales));
            const int16x8_t sc_lo = vmovl_s8(vget_low_s8(sc8)), sc_hi = vmovl_high_s8(sc8);
            const int32x4_t sc[4] = {vmovl_s16(vget_low_s16(sc_lo)), vmovl_high_s16(sc_lo),
                                     vmovl_s16(vget_low_s16(sc_hi)), vmovl_high_s16(sc_hi)};
            int32x4_t is[KQ_NEON_NC];
            for (int c = 0; c < nc; c++) is[c] = vdupq_n_s32(0);
            for (int n = 0; n < 2; n++) {
                /* Half n: ql[64n ..] and qh[32n ..] hold elements 128n .. 128n + 127. */
                const uint8_t *ql = blk + offsetof(kq_block_q6_K, ql) + 64 * n;
                const uint8_t *qh = blk + offsetof(kq_block_q6_K, qh) + 32 * n;
                const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16);
                const uint8x16_t l2 = vld1q_u8(ql + 32), l3 = vld1q_u8(ql + 48);
                const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
                /* Quarter 2n: low nibbles; qh bits 0-1 (first 32) and 2-3 (next 32). */
                const int8x16_t lo[4] = {
                    neon_q6_value(vandq_u8(l0, low4), vandq_u8(vshlq_n_u8(h0, 4), bits45)),
                    neon_q6_value(vandq_u8(l1, low4), vandq_u8(vshlq_n_u8(h1, 4), bits45)),
                    neon_q6_value(vandq_u8(l2, low4), vandq_u8(vshlq_n_u8(h0, 2), bits45)),
                    neon_q6_value(vandq_u8(l3, low4), vandq_u8(vshlq_n_u8(h1, 2), bits45))};
                neon_q6_quarter(lo, sc[2 * n], arow, a_stride, nc, 2 * n, is);
                /* Quarter 2n + 1: high nibbles; qh bits 4-5 and 6-7. */
                const int8x16_t hi[4] = {
                    neon_q6_value(vshrq_n_u8(l0, 4), vandq_u8(h0, bits45)),
                    neon_q6_value(vshrq_n_u8(l1, 4), vandq_u8(h1, bits45)),
                    neon_q6_value(vshrq_n_u8(l2, 4), vandq_u8(vshrq_n_u8(h0, 2), bits45)),
                    neon_q6_value(vshrq_n_u8(l3, 4), vandq_u8(vshrq_n_u8(h1, 2), bits45))};
                neon_q6_quarter(hi, sc[2 * n + 1], arow, a_stride, nc, 2 * n + 1, is);
            }
            const float32x4_t isum = vcvtq_f32_s32(neon_fold(is, nc));
            acc[r] = vfmaq_f32(acc[r], isum,
                               vmulq_n_f32(ad, neon_fp16(blk + offsetof(kq_block_q6_K, d))));
        }
    }
    neon_store_tile(acc, nr, nc, out, ldo);
}

KQ_NEON_TILE_FN(KQ_NEON_SUFFIX(neon_tile_q6_K), KQ_NEON_SUFFIX(q6_K_body))

#endif /* __aarch64__ */
#endif
