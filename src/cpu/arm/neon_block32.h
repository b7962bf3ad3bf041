/* The 32-element block types q4_0, q4_1, q5_0, q5_1, iq4_nl and mxfp4: one
 * NEON tile body (included by neon_plain.c and neon_dotprod.c) whose
 * constants (block32_spec, the same as x86_block32.h's) pick the type.
 *
 * Strategy: as q8_0 (neon_q8_0.h): per block the tile's activation blocks
 * stay in registers; each weight row's 16 bytes of nibbles become two int8
 * registers (elements 0-15 and 16-31), looked up through vqtbl1q in the
 * type's 16-value grid (identity - 8 for q4_0, none for q4_1/q5_1); q5_0 and
 * q5_1 spread their 32-bit qh one bit per byte (vqtbl1q of its bytes, vtst
 * against the bit) and OR in 0x10 (q5_1) or 0xF0 where the bit is clear
 * (q5_0: nibble - 16). The nc dot products fold into one vector (lane =
 * activation row) that one fma scales by d_w * d_a (fp16 d, or mxfp4's
 * E8M0 2^(e - 128)); q4_1/q5_1 add m * d_a * (the activation block's sum).
 * The plain build widens iq4_nl's products (|w| up to 127) pair by pair;
 * the other grids stay within neon_dot32_small's |w| <= 32.
 * Speed: unmeasured on real ARM hardware (tested under qemu-aarch64 only). */
#ifndef KQ_CPU_ARM_NEON_BLOCK32_H
#define KQ_CPU_ARM_NEON_BLOCK32_H

#include "neon_common.h"

#if defined(__aarch64__)
#include "cpu/block32_spec.h"

/* 32 fifth bits (the little-endian word at qh) as 0xFF / 0x00 bytes. */
KQ_NEON_INLINE void neon_b32_high_bits(const uint8_t *qh, uint8x16_t *lo, uint8x16_t *hi)
{
    static const uint8_t spread_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    static const uint8_t bits[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint32_t h;
    memcpy(&h, qh, 4);
    const uint8x16_t hv = vreinterpretq_u8_u32(vdupq_n_u32(h));
    const uint8x16_t idx = vld1q_u8(spread_lo), bit = vld1q_u8(bits);
    *lo = vtstq_u8(vqtbl1q_u8(hv, idx), bit);
    *hi = vtstq_u8(vqtbl1q_u8(hv, vaddq_u8(idx, vdupq_n_u8(2))), bit);
}

KQ_NEON_INLINE uint8x16_t neon_b32_fifth(uint8x16_t v, uint8x16_t set, const int q5_0)
{
    return q5_0 ? vorrq_u8(v, vbicq_u8(vdupq_n_u8(0xF0), set)) : vorrq_u8(v, vandq_u8(set, vdupq_n_u8(0x10)));
}

KQ_NEON_INLINE void KQ_NEON_SUFFIX(block32_body)(const uint8_t *w, size_t w_stride, int nr,
                                                 const uint8_t *a, size_t a_stride, const int nc,
                                                 int64_t n_blocks, float *out, int64_t ldo,
                                                 const block32_spec S)
{
    const size_t wb = (size_t)S.bytes, ab = sizeof(kq_act32);
    const uint8_t *wr[KQ_NEON_MR];
    float32x4_t acc[KQ_NEON_MR];
    for (int r = 0; r < KQ_NEON_MR; r++) wr[r] = neon_row(w, w_stride, nr, r), acc[r] = vdupq_n_f32(0);
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    const int8x16_t grid = vld1q_s8(kq_block32_grid(S.grid));
    for (int64_t b = 0; b < n_blocks; b++) {
        const uint8_t *ablk = a + (size_t)b * ab;
        const float32x4_t ad = neon_act_scales(ablk, a_stride, nc, offsetof(kq_act32, d));
        int8x16_t aq[KQ_NEON_NC][2];
        float32x4_t asum = vdupq_n_f32(0);
        for (int c = 0; c < nc; c++) {
            const int8_t *q = (const int8_t *)(ablk + (size_t)c * a_stride);
            aq[c][0] = vld1q_s8(q);
            aq[c][1] = vld1q_s8(q + 16);
        }
        if (S.m >= 0) {
            int32_t s[4] = {0, 0, 0, 0};
            for (int c = 0; c < nc; c++)
                memcpy(&s[c], ablk + (size_t)c * a_stride + offsetof(kq_act32, sum), 4);
            asum = vmulq_f32(vcvtq_f32_s32(vld1q_s32(s)), ad);
        }
        for (int r = 0; r < KQ_NEON_MR; r++) {
            const uint8_t *blk = wr[r] + (size_t)b * wb;
            const uint8x16_t qs = vld1q_u8(blk + S.qs);
            uint8x16_t v0 = vandq_u8(qs, low4), v1 = vshrq_n_u8(qs, 4);
            if (S.grid != KQ_B32_NONE) {
                v0 = vreinterpretq_u8_s8(vqtbl1q_s8(grid, v0));
                v1 = vreinterpretq_u8_s8(vqtbl1q_s8(grid, v1));
            }
            if (S.qh >= 0) {
                uint8x16_t h0, h1;
                neon_b32_high_bits(blk + S.qh, &h0, &h1);
                v0 = neon_b32_fifth(v0, h0, S.q5_0);
                v1 = neon_b32_fifth(v1, h1, S.q5_0);
            }
            const int8x16_t w0 = vreinterpretq_s8_u8(v0), w1 = vreinterpretq_s8_u8(v1);
            int32x4_t t[KQ_NEON_NC];
            for (int c = 0; c < nc; c++)
                t[c] = S.grid == KQ_B32_IQ4NL ? neon_dot32_full(w0, aq[c][0], w1, aq[c][1])
                                              : neon_dot32_small(w0, aq[c][0], w1, aq[c][1]);
            const float32x4_t s = vcvtq_f32_s32(neon_fold(t, nc));
            const float d = S.e8m0 ? kq_e8m0_half(blk[0]) : neon_fp16(blk);
            acc[r] = vfmaq_f32(acc[r], s, vmulq_n_f32(ad, d));
            if (S.m >= 0) acc[r] = vfmaq_n_f32(acc[r], asum, neon_fp16(blk + S.m));
        }
    }
    neon_store_tile(acc, nr, nc, out, ldo);
}

/* The tile body and function of one type. */
#define KQ_NEON_BLOCK32(name, SPEC)                                                             \
    KQ_NEON_INLINE void KQ_NEON_SUFFIX(name##_body)(const uint8_t *w, size_t w_stride, int nr,  \
                                                    const uint8_t *a, size_t a_stride,          \
                                                    const int nc, int64_t n_blocks, float *out, \
                                                    int64_t ldo)                                \
    {                                                                                           \
        const block32_spec S = SPEC;                                                            \
        KQ_NEON_SUFFIX(block32_body)(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, S);   \
    }                                                                                           \
    KQ_NEON_TILE_FN(KQ_NEON_SUFFIX(neon_tile_##name), KQ_NEON_SUFFIX(name##_body))

KQ_NEON_BLOCK32(q4_0, KQ_B32_SPEC_Q4_0)
KQ_NEON_BLOCK32(q4_1, KQ_B32_SPEC_Q4_1)
KQ_NEON_BLOCK32(q5_0, KQ_B32_SPEC_Q5_0)
KQ_NEON_BLOCK32(q5_1, KQ_B32_SPEC_Q5_1)
KQ_NEON_BLOCK32(iq4_nl, KQ_B32_SPEC_IQ4_NL)
KQ_NEON_BLOCK32(mxfp4, KQ_B32_SPEC_MXFP4)

#endif /* __aarch64__ */
#endif
