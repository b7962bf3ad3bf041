/* iq4_xs tile body for NEON (included by neon_plain.c and neon_dotprod.c).
 *
 * Strategy: per 256-element block and weight row the eight scales (6 bits
 * minus 32) are unpacked once; each 32-element sub-block's 16 bytes of
 * nibbles become two int8 registers through vqtbl1q in the iq4_nl grid
 * (neon_block32.h's iq4_nl lookup), dotted with every activation row (the
 * plain build widening pairs, as |w| reaches 127) and multiply-added into
 * the row's int32 sums by the sub-block scale, exact in int32 (at most
 * 8 * 8 * 127 * 127 * 32 per lane). One float fma per block and row.
 * Speed: unmeasured on real ARM hardware (tested under qemu-aarch64 only). */
#ifndef KQ_CPU_ARM_NEON_IQ4_XS_H
#define KQ_CPU_ARM_NEON_IQ4_XS_H

#include "neon_common.h"

#if defined(__aarch64__)
#include <stddef.h>

#include "formats/blocks.h"

KQ_NEON_INLINE void KQ_NEON_SUFFIX(iq4_xs_body)(const uint8_t *w, size_t w_stride, int nr,
                                                const uint8_t *a, size_t a_stride, const int nc,
                                                int64_t n_blocks, float *out, int64_t ldo)
{
    const size_t wb = sizeof(kq_block_iq4_xs), ab = sizeof(kq_act256);
    const uint8_t *wr[KQ_NEON_MR];
    float32x4_t acc[KQ_NEON_MR];
    for (int r = 0; r < KQ_NEON_MR; r++) wr[r] = neon_row(w, w_stride, nr, r), acc[r] = vdupq_n_f32(0);
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    const int8x16_t grid = vld1q_s8(kq_iq4nl_values);
    for (int64_t b = 0; b < n_blocks; b++) {
        const uint8_t *ablk = a + (size_t)b * ab;
        const float32x4_t ad = neon_act_scales(ablk, a_stride, nc, offsetof(kq_act256, d));
        for (int r = 0; r < KQ_NEON_MR; r++) {
            const uint8_t *blk = wr[r] + (size_t)b * wb;
            const uint8_t *arow = neon_opaque(ablk);
            kq_block_iq4_xs head;
            memcpy(&head, blk, offsetof(kq_block_iq4_xs, qs));
            const uint8_t *qs = blk + offsetof(kq_block_iq4_xs, qs);
            int32x4_t is[KQ_NEON_NC];
            for (int c = 0; c < nc; c++) is[c] = vdupq_n_s32(0);
            for (int j = 0; j < 8; j++) {
                const int sc = kq_iq4xs_scale(&head, j);
                const uint8x16_t q = vld1q_u8(qs + 16 * j);
                const int8x16_t w0 = vqtbl1q_s8(grid, vandq_u8(q, low4));
                const int8x16_t w1 = vqtbl1q_s8(grid, vshrq_n_u8(q, 4));
                for (int c = 0; c < nc; c++) {
                    const int8_t *x = (const int8_t *)(arow + (size_t)c * a_stride) + 32 * j;
                    is[c] = vmlaq_n_s32(is[c], neon_dot32_full(w0, vld1q_s8(x), w1, vld1q_s8(x + 16)), sc);
                }
            }
            const float32x4_t isum = vcvtq_f32_s32(neon_fold(is, nc));
            acc[r] = vfmaq_f32(acc[r], isum, vmulq_n_f32(ad, neon_fp16(blk)));
        }
    }
    neon_store_tile(acc, nr, nc, out, ldo);
}

KQ_NEON_TILE_FN(KQ_NEON_SUFFIX(neon_tile_iq4_xs), KQ_NEON_SUFFIX(iq4_xs_body))

#endif /* __aarch64__ */
#endif
