/* q4_0 tile body for NEON (included by neon_plain.c and neon_dotprod.c).
 *
 * Strategy: per 32-element block, the tile's activation blocks (2 x 16 bytes
 * each) stay in registers; each of the 4 weight rows is unpacked once (two
 * nibble halves, minus 8, as int8) and dotted with every activation row.
 * The nc int32 dot vectors of a row fold into one vector (lane = activation
 * row) and one fused multiply-add by d_w * d_a accumulates the block in
 * float, so a result sums its blocks in block order.
 * Speed: unmeasured on real ARM hardware (tested for correctness under
 * qemu-aarch64 only). */
#ifndef KQ_CPU_ARM_NEON_Q4_0_H
#define KQ_CPU_ARM_NEON_Q4_0_H

#include "neon_common.h"

#if defined(__aarch64__)
#include <stddef.h>

#include "formats/blocks.h"

KQ_NEON_INLINE void KQ_NEON_SUFFIX(q4_0_body)(const uint8_t *w, size_t w_stride, int nr,
                                              const uint8_t *a, size_t a_stride, const int nc,
                                              int64_t n_blocks, float *out, int64_t ldo)
{
    const size_t wb = sizeof(kq_block_q4_0), ab = sizeof(kq_act32);
    const uint8_t *wr[KQ_NEON_MR];
    float32x4_t acc[KQ_NEON_MR];
    for (int r = 0; r < KQ_NEON_MR; r++) wr[r] = neon_row(w, w_stride, nr, r), acc[r] = vdupq_n_f32(0);
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t b = 0; b < n_blocks; b++) {
        const uint8_t *ablk = a + (size_t)b * ab;
        const float32x4_t ad = neon_act_scales(ablk, a_stride, nc, offsetof(kq_act32, d));
        int8x16_t aq[KQ_NEON_NC][2];
        for (int c = 0; c < nc; c++) {
            const int8_t *q = (const int8_t *)(ablk + (size_t)c * a_stride);
            aq[c][0] = vld1q_s8(q);
            aq[c][1] = vld1q_s8(q + 16);
        }
        for (int r = 0; r < KQ_NEON_MR; r++) {
            const uint8_t *blk = wr[r] + (size_t)b * wb;
            const uint8x16_t qs = vld1q_u8(blk + 2);
            const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, low4)), eight);
            const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(qs, 4)), eight);
            int32x4_t t[KQ_NEON_NC];
            for (int c = 0; c < nc; c++) t[c] = neon_dot32_small(w0, aq[c][0], w1, aq[c][1]);
            const float32x4_t s = vcvtq_f32_s32(neon_fold(t, nc));
            acc[r] = vfmaq_f32(acc[r], s, vmulq_n_f32(ad, neon_fp16(blk)));
        }
    }
    neon_store_tile(acc, nr, nc, out, ldo);
}

KQ_NEON_TILE_FN(KQ_NEON_SUFFIX(neon_tile_q4_0), KQ_NEON_SUFFIX(q4_0_body))

#endif /* __aarch64__ */
#endif
