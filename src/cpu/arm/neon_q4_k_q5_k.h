/* q4_K and q5_K tile bodies for NEON (included by neon_plain.c and
 * neon_dotprod.c): one body, q5_K adding the fifth bit.
 *
 * Strategy: per 256-element block and weight row, the 6-bit scales and mins
 * are decoded once (neon_k_scales.h); then for each 64-element chunk the 32
 * packed bytes are split into 4 registers of nibbles (sub-blocks 2ch and
 * 2ch+1), and every activation row of the tile is dotted with them (4 sdot,
 * or 8 widening multiplies without dotprod). q5_K loads a row's 32 qh bytes
 * once per block (2 registers); for chunk ch, vtst against the bit masks
 * 1 << 2ch and 2 << 2ch adds 16 to each nibble whose high bit is set
 * (values 0..31). The two sub-block dots fold into one vector that one
 * integer multiply-add scales by {s, s, s', s'}, so the block's sum of
 * scale * dot stays exact in int32 (at most 8 * 63 * 32 * 31 * 127). The
 * mins term is an int16 dot of the 8 mins with the activation's sub-block
 * sums. Per block and row, both fold to one lane per activation row and
 * enter the float accumulator as d_a * (d * isum - dmin * msum).
 * Registers (nc = 4): 4 float accumulators, 4 int32 block sums, 4 weight
 * and 4 activation registers, 4 scale vectors (+2 qh for q5_K).
 * Speed: unmeasured on real ARM hardware (tested for correctness under
 * qemu-aarch64 only). */
#ifndef KQ_CPU_ARM_NEON_Q4_K_Q5_K_H
#define KQ_CPU_ARM_NEON_Q4_K_Q5_K_H

#include "neon_k_scales.h"

#if defined(__aarch64__)
#include <stddef.h>

#include "formats/blocks.h"

/* The nibbles in n with 16 added where mask's bit is set in h. */
KQ_NEON_INLINE uint8x16_t neon_q5_value(uint8x16_t n, uint8x16_t h, uint8x16_t mask)
{
    return vorrq_u8(n, vandq_u8(vtstq_u8(h, mask), vdupq_n_u8(16)));
}

/* q5 is a constant at each call, so each type gets its own code. Both block
 * layouts put d, dmin and the scales first; q5_K has qh before qs. */
KQ_NEON_INLINE void KQ_NEON_SUFFIX(q45_K_body)(const uint8_t *w, size_t w_stride, int nr,
                                               const uint8_t *a, size_t a_stride, const int nc,
                                               int64_t n_blocks, float *out, int64_t ldo,
                                               const int q5)
{
    const size_t wb = q5 ? sizeof(kq_block_q5_K) : sizeof(kq_block_q4_K), ab = sizeof(kq_act256);
    const size_t qs_at = q5 ? offsetof(kq_block_q5_K, qs) : offsetof(kq_block_q4_K, qs);
    _Static_assert(offsetof(kq_block_q4_K, scales) == offsetof(kq_block_q5_K, scales),
                   "q4_K and q5_K scales at the same offset");
    const uint8_t *wr[KQ_NEON_MR];
    float32x4_t acc[KQ_NEON_MR];
    for (int r = 0; r < KQ_NEON_MR; r++) wr[r] = neon_row(w, w_stride, nr, r), acc[r] = vdupq_n_f32(0);
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    for (int64_t b = 0; b < n_blocks; b++) {
        const uint8_t *ablk = a + (size_t)b * ab;
        const float32x4_t ad = neon_act_scales(ablk, a_stride, nc, offsetof(kq_act256, d));
        for (int r = 0; r < KQ_NEON_MR; r++) {
            const uint8_t *blk = wr[r] + (size_t)b * wb;
            const uint8_t *arow = neon_opaque(ablk);
            const neon_k_scales k = neon_k_scales_decode(blk + offsetof(kq_block_q4_K, scales));
            const uint8_t *qs = blk + qs_at;
            uint8x16_t qh0 = vdupq_n_u8(0), qh1 = qh0;
            if (q5) {
                qh0 = vld1q_u8(blk + offsetof(kq_block_q5_K, qh));
                qh1 = vld1q_u8(blk + offsetof(kq_block_q5_K, qh) + 16);
            }
            int32x4_t is[KQ_NEON_NC], ms[KQ_NEON_NC];
            for (int c = 0; c < nc; c++) is[c] = vdupq_n_s32(0);
            for (int ch = 0; ch < 4; ch++) {
                const uint8x16_t q0 = vld1q_u8(qs + 32 * ch), q1 = vld1q_u8(qs + 32 * ch + 16);
                uint8x16_t l0 = vandq_u8(q0, low4), l1 = vandq_u8(q1, low4);
                uint8x16_t h0 = vshrq_n_u8(q0, 4), h1 = vshrq_n_u8(q1, 4);
                if (q5) {
                    const uint8x16_t mlo = vdupq_n_u8((uint8_t)(1u << (2 * ch)));
                    const uint8x16_t mhi = vdupq_n_u8((uint8_t)(2u << (2 * ch)));
                    l0 = neon_q5_value(l0, qh0, mlo), l1 = neon_q5_value(l1, qh1, mlo);
                    h0 = neon_q5_value(h0, qh0, mhi), h1 = neon_q5_value(h1, qh1, mhi);
                }
                const int8x16_t sl0 = vreinterpretq_s8_u8(l0), sl1 = vreinterpretq_s8_u8(l1);
                const int8x16_t sh0 = vreinterpretq_s8_u8(h0), sh1 = vreinterpretq_s8_u8(h1);
                for (int c = 0; c < nc; c++) {
                    const int8_t *q = (const int8_t *)(arow + (size_t)c * a_stride) + 64 * ch;
                    const int32x4_t tl = neon_dot32_small(sl0, vld1q_s8(q), sl1, vld1q_s8(q + 16));
                    const int32x4_t th =
                        neon_dot32_small(sh0, vld1q_s8(q + 32), sh1, vld1q_s8(q + 48));
                    is[c] = vmlaq_s32(is[c], vpaddq_s32(tl, th), k.sc[ch]);
                }
            }
            for (int c = 0; c < nc; c++) {
                const kq_act256 *act = (const kq_act256 *)(arow + (size_t)c * a_stride);
                ms[c] = neon_k_min_dot(k.mn, act->bsum);
            }
            const float32x4_t isum = vcvtq_f32_s32(neon_fold(is, nc));
            const float32x4_t msum = vcvtq_f32_s32(neon_fold(ms, nc));
            acc[r] = vfmaq_f32(acc[r], isum, vmulq_n_f32(ad, neon_fp16(blk)));
            acc[r] = vfmsq_f32(acc[r], msum, vmulq_n_f32(ad, neon_fp16(blk + 2)));
        }
    }
    neon_store_tile(acc, nr, nc, out, ldo);
}

KQ_NEON_INLINE void KQ_NEON_SUFFIX(q4_K_body)(const uint8_t *w, size_t w_stride, int nr,
                                              const uint8_t *a, size_t a_stride, const int nc,
                                              int64_t n_blocks, float *out, int64_t ldo)
{
    KQ_NEON_SUFFIX(q45_K_body)(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, 0);
}

KQ_NEON_INLINE void KQ_NEON_SUFFIX(q5_K_body)(const uint8_t *w, size_t w_stride, int nr,
                                              const uint8_t *a, size_t a_stride, const int nc,
                                              int64_t n_blocks, float *out, int64_t ldo)
{
    KQ_NEON_SUFFIX(q45_K_body)(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, 1);
}

KQ_NEON_TILE_FN(KQ_NEON_SUFFIX(neon_tile_q4_K), KQ_NEON_SUFFIX(q4_K_body))
KQ_NEON_TILE_FN(KQ_NEON_SUFFIX(neon_tile_q5_K), KQ_NEON_SUFFIX(q5_K_body))

#endif /* __aarch64__ */
#endif
