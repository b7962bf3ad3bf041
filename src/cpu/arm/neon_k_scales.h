/* The 6-bit scales and mins of a q4_K / q5_K block (docs/formats.md), decoded
 * for the NEON tiles: four 32-bit word operations per row and block instead
 * of a byte loop, then widened into the vector shapes the kernels multiply
 * by. */
#ifndef KQ_CPU_ARM_NEON_K_SCALES_H
#define KQ_CPU_ARM_NEON_K_SCALES_H

#include "neon_common.h"

#if defined(__aarch64__)

typedef struct neon_k_scales {
    /* sc[ch] = {s[2ch], s[2ch], s[2ch+1], s[2ch+1]}: one pair of lanes per
     * 32-element sub-block of the 64-element chunk ch, matching
     * vpaddq(dot of sub-block 2ch, dot of sub-block 2ch+1). */
    int32x4_t sc[4];
    int16x8_t mn; /* the eight mins, lane j for sub-block j */
} neon_k_scales;

/* packed: the 12 scale bytes at any address. Bytes 0-3 hold scales 0-3 in
 * their low 6 bits, bytes 4-7 mins 0-3; bytes 8-11 hold the low 4 bits of
 * scales 4-7 (low nibble) and mins 4-7 (high nibble), whose top 2 bits are
 * the top bits of bytes 0-3 and 4-7. */
KQ_NEON_INLINE neon_k_scales neon_k_scales_decode(const uint8_t *packed)
{
    uint32_t s0, s1, s2;
    memcpy(&s0, packed, 4);
    memcpy(&s1, packed + 4, 4);
    memcpy(&s2, packed + 8, 4);
    const uint32_t sc_lo = s0 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (s2 & 0x0f0f0f0fu) | ((s0 >> 2) & 0x30303030u);
    const uint32_t mn_lo = s1 & 0x3f3f3f3fu;
    const uint32_t mn_hi = ((s2 >> 4) & 0x0f0f0f0fu) | ((s1 >> 2) & 0x30303030u);
    neon_k_scales k;
    const uint16x8_t sc = vmovl_u8(vcreate_u8((uint64_t)sc_lo | (uint64_t)sc_hi << 32));
    const uint16x8_t z0 = vzip1q_u16(sc, sc), z1 = vzip2q_u16(sc, sc);
    k.sc[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(z0)));
    k.sc[1] = vreinterpretq_s32_u32(vmovl_high_u16(z0));
    k.sc[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(z1)));
    k.sc[3] = vreinterpretq_s32_u32(vmovl_high_u16(z1));
    k.mn = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8((uint64_t)mn_lo | (uint64_t)mn_hi << 32)));
    return k;
}

/* sum over sub-blocks j of mn[j] * (activation sum of sub-block j), as an
 * int32x4 whose lanes add up to it. bsum: the activation block's 16 sums of
 * 16 values; adjacent pairs make the 32-value sub-block sums. */
KQ_NEON_INLINE int32x4_t neon_k_min_dot(int16x8_t mn, const int16_t *bsum)
{
    const int16x8_t s = vpaddq_s16(vld1q_s16(bsum), vld1q_s16(bsum + 8));
    return vmlal_high_s16(vmull_s16(vget_low_s16(mn), vget_low_s16(s)), mn, s);
}

#endif /* __aarch64__ */
#endif
