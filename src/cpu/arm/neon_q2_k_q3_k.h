/* q2_K and q3_K tile bodies for NEON (included by neon_plain.c and
 * neon_dotprod.c): one body, q3_K adding the third bit under a constant
 * flag.
 *
 * Strategy: q6_K's (neon_q6_k.h). Per 256-element block and weight row the
 * sixteen sub-block scales are widened once into 4 int32 vectors; each half
 * n is 32 bytes of 2-bit planes, and shift j of them gives the values of
 * sub-blocks 8n + 2j (first 16 bytes) and 8n + 2j + 1 (next 16). q3_K ORs
 * in bit 4n + j of hmask (vtst) as 4 and subtracts 4, so its values are
 * signed (-4..3) and need no activation sums; q2_K's stay 0..3 and its
 * mins leave as dmin * sum_g m_g bsum_g (an int16 dot with the group sums).
 * Four sub-block dots fold into one vector (lane = sub-block) that one
 * integer multiply-add scales, exact in int32. One or two float fmas per
 * block and row.
 * Speed: unmeasured on real ARM hardware (tested under qemu-aarch64 only). */
#ifndef KQ_CPU_ARM_NEON_Q2_K_Q3_K_H
#define KQ_CPU_ARM_NEON_Q2_K_Q3_K_H

#include "neon_common.h"

#if defined(__aarch64__)
#include <stddef.h>

#include "formats/blocks.h"

/* Sixteen int8 scales as four int32 vectors, lane i of sc[q] = scale 4q + i. */
KQ_NEON_INLINE void neon_widen_scales(int8x16_t s8, int32x4_t sc[4])
{
    const int16x8_t lo = vmovl_s8(vget_low_s8(s8)), hi = vmovl_high_s8(s8);
    sc[0] = vmovl_s16(vget_low_s16(lo)), sc[1] = vmovl_high_s16(lo);
    sc[2] = vmovl_s16(vget_low_s16(hi)), sc[3] = vmovl_high_s16(hi);
}

KQ_NEON_INLINE void KQ_NEON_SUFFIX(q23_K_body)(const uint8_t *w, size_t w_stride, int nr,
                                               const uint8_t *a, size_t a_stride, const int nc,
                                               int64_t n_blocks, float *out, int64_t ldo,
                                               const int q3)
{
    const size_t wb = q3 ? sizeof(kq_block_q3_K) : sizeof(kq_block_q2_K), ab = sizeof(kq_act256);
    const size_t qs_at = q3 ? offsetof(kq_block_q3_K, qs) : offsetof(kq_block_q2_K, qs);
    const size_t d_at = q3 ? offsetof(kq_block_q3_K, d) : offsetof(kq_block_q2_K, d);
    const uint8_t *wr[KQ_NEON_MR];
    float32x4_t acc[KQ_NEON_MR];
    for (int r = 0; r < KQ_NEON_MR; r++) wr[r] = neon_row(w, w_stride, nr, r), acc[r] = vdupq_n_f32(0);
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (int64_t b = 0; b < n_blocks; b++) {
        const uint8_t *ablk = a + (size_t)b * ab;
        const float32x4_t ad = neon_act_scales(ablk, a_stride, nc, offsetof(kq_act256, d));
        for (int r = 0; r < KQ_NEON_MR; r++) {
            const uint8_t *blk = wr[r] + (size_t)b * wb;
            const uint8_t *arow = neon_opaque(ablk);
            int32x4_t sc[4];
            int16x8_t mn_lo = vdupq_n_s16(0), mn_hi = mn_lo;
            uint8x16_t hm0 = vdupq_n_u8(0), hm1 = hm0;
            if (q3) {
                int8_t s[16];
                kq_q3k_scales(blk + offsetof(kq_block_q3_K, scales), s);
                neon_widen_scales(vld1q_s8(s), sc);
                hm0 = vld1q_u8(blk + offsetof(kq_block_q3_K, hmask));
                hm1 = vld1q_u8(blk + offsetof(kq_block_q3_K, hmask) + 16);
            } else {
                const uint8x16_t s = vld1q_u8(blk + offsetof(kq_block_q2_K, scales));
                neon_widen_scales(vreinterpretq_s8_u8(vandq_u8(s, vdupq_n_u8(0xF))), sc);
                const uint8x16_t m = vshrq_n_u8(s, 4);
                mn_lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m)));
                mn_hi = vreinterpretq_s16_u16(vmovl_high_u8(m));
            }
            int32x4_t is[KQ_NEON_NC];
            for (int c = 0; c < nc; c++) is[c] = vdupq_n_s32(0);
            for (int n = 0; n < 2; n++) {
                const uint8x16_t q0 = vld1q_u8(blk + qs_at + 32 * n), q1 = vld1q_u8(blk + qs_at + 32 * n + 16);
                for (int jp = 0; jp < 2; jp++) {
                    int8x16_t v[4];
                    for (int t = 0; t < 2; t++) {
                        const int j = 2 * jp + t;
                        uint8x16_t v0 = vandq_u8(vshlq_u8(q0, vdupq_n_s8((int8_t)(-2 * j))), m3);
                        uint8x16_t v1 = vandq_u8(vshlq_u8(q1, vdupq_n_s8((int8_t)(-2 * j))), m3);
                        if (q3) {
                            const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << (4 * n + j)));
                            const uint8x16_t four = vdupq_n_u8(4);
                            v0 = vorrq_u8(v0, vandq_u8(vtstq_u8(hm0, bit), four));
                            v1 = vorrq_u8(v1, vandq_u8(vtstq_u8(hm1, bit), four));
                            v[2 * t] = vsubq_s8(vreinterpretq_s8_u8(v0), vdupq_n_s8(4));
                            v[2 * t + 1] = vsubq_s8(vreinterpretq_s8_u8(v1), vdupq_n_s8(4));
                        } else {
                            v[2 * t] = vreinterpretq_s8_u8(v0);
                            v[2 * t + 1] = vreinterpretq_s8_u8(v1);
                        }
                    }
                    /* v[0..3]: sub-blocks 8n + 4jp .. 8n + 4jp + 3, values 128n + 64jp .. */
                    for (int c = 0; c < nc; c++) {
                        const int8_t *x = (const int8_t *)(arow + (size_t)c * a_stride) + 128 * n + 64 * jp;
                        const int32x4_t t0 = neon_dot16_small(v[0], vld1q_s8(x));
                        const int32x4_t t1 = neon_dot16_small(v[1], vld1q_s8(x + 16));
                        const int32x4_t t2 = neon_dot16_small(v[2], vld1q_s8(x + 32));
                        const int32x4_t t3 = neon_dot16_small(v[3], vld1q_s8(x + 48));
                        const int32x4_t p = vpaddq_s32(vpaddq_s32(t0, t1), vpaddq_s32(t2, t3));
                        is[c] = vmlaq_s32(is[c], p, sc[2 * n + jp]);
                    }
                }
            }
            const float32x4_t isum = vcvtq_f32_s32(neon_fold(is, nc));
            acc[r] = vfmaq_f32(acc[r], isum, vmulq_n_f32(ad, neon_fp16(blk + d_at)));
            if (!q3) {
                int32x4_t ms[KQ_NEON_NC];
                for (int c = 0; c < nc; c++) {
                    const kq_act256 *act = (const kq_act256 *)(arow + (size_t)c * a_stride);
                    const int16x8_t b0 = vld1q_s16(act->bsum), b1 = vld1q_s16(act->bsum + 8);
                    int32x4_t m = vmull_s16(vget_low_s16(mn_lo), vget_low_s16(b0));
                    m = vmlal_high_s16(m, mn_lo, b0);
                    m = vmlal_s16(m, vget_low_s16(mn_hi), vget_low_s16(b1));
                    ms[c] = vmlal_high_s16(m, mn_hi, b1);
                }
                const float32x4_t msum = vcvtq_f32_s32(neon_fold(ms, nc));
                acc[r] = vfmsq_f32(acc[r], msum,
                                   vmulq_n_f32(ad, neon_fp16(blk + offsetof(kq_block_q2_K, dmin))));
            }
        }
    }
    neon_store_tile(acc, nr, nc, out, ldo);
}

KQ_NEON_INLINE void KQ_NEON_SUFFIX(q2_K_body)(const uint8_t *w, size_t w_stride, int nr,
                                              const uint8_t *a, size_t a_stride, const int nc,
                                              int64_t n_blocks, float *out, int64_t ldo)
{
    KQ_NEON_SUFFIX(q23_K_body)(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, 0);
}

KQ_NEON_INLINE void KQ_NEON_SUFFIX(q3_K_body)(const uint8_t *w, size_t w_stride, int nr,
                                              const uint8_t *a, size_t a_stride, const int nc,
                                              int64_t n_blocks, float *out, int64_t ldo)
{
    KQ_NEON_SUFFIX(q23_K_body)(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, 1);
}

KQ_NEON_TILE_FN(KQ_NEON_SUFFIX(neon_tile_q2_K), KQ_NEON_SUFFIX(q2_K_body))
KQ_NEON_TILE_FN(KQ_NEON_SUFFIX(neon_tile_q3_K), KQ_NEON_SUFFIX(q3_K_body))

#endif /* __aarch64__ */
#endif
