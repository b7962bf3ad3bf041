/* Pieces every NEON tile kernel shares (src/cpu/arm/neon_*.h).
 *
 * The kernels are written once and compiled twice: neon_dotprod.c defines
 * KQ_NEON_DOTPROD 1 and is built with -march=armv8.2-a+dotprod, so the
 * int8 products below become sdot; neon_plain.c leaves it 0 and they become
 * widening multiplies (smull/smlal) summed pairwise into int32 (saddlp /
 * sadalp), which every ARMv8.0 core runs.
 *
 * The products differ in which int32 lane a sum lands in, never in the sum
 * of a vector's lanes; every kernel only reads such sums (pairwise adds
 * fold lanes), so both builds give the same integers per block.
 *
 * Tile shape: KQ_NEON_MR (4) weight rows by up to KQ_NEON_NC (4) activation
 * rows. Float accumulators hold, per weight row, one lane per activation row;
 * the tile is transposed into out once, at its end. */
#ifndef KQ_CPU_ARM_NEON_COMMON_H
#define KQ_CPU_ARM_NEON_COMMON_H

#if defined(__aarch64__)
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "cpu/ukernel.h"
#include "kquant.h"

#ifndef KQ_NEON_DOTPROD
#error "define KQ_NEON_DOTPROD to 0 or 1 before including neon_common.h"
#endif

#define KQ_NEON_MR 4
#define KQ_NEON_NC 4

#if KQ_NEON_DOTPROD
#define KQ_NEON_SUFFIX(name) name##_dotprod
#else
#define KQ_NEON_SUFFIX(name) name##_plain
#endif

#define KQ_NEON_INLINE static inline __attribute__((always_inline))

/* The pointer p, made opaque to the optimizer. The k-quant kernels reload
 * a block's activations for each weight row from L1; seeing the loads as
 * invariant across rows, the compiler would hoist all 64 registers of them
 * out of the row loop and spill them to the stack, a copy per block. */
KQ_NEON_INLINE const uint8_t *neon_opaque(const uint8_t *p)
{
    __asm__("" : "+r"(p));
    return p;
}

/* Sum of w[j] * a[j] over 32 bytes, as an int32x4 whose lanes add up to the
 * dot product. Small weights only: |w| <= 32 keeps the plain build's int16
 * lanes (4 products each, at most 4 * 32 * 127) from overflowing. */
KQ_NEON_INLINE int32x4_t neon_dot32_small(int8x16_t w0, int8x16_t a0, int8x16_t w1, int8x16_t a1)
{
#if KQ_NEON_DOTPROD
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, a0), w1, a1);
#else
    int16x8_t p = vmull_s8(vget_low_s8(w0), vget_low_s8(a0));
    p = vmlal_high_s8(p, w0, a0);
    p = vmlal_s8(p, vget_low_s8(w1), vget_low_s8(a1));
    p = vmlal_high_s8(p, w1, a1);
    return vpaddlq_s16(p);
#endif
}

/* The same over 16 bytes. */
KQ_NEON_INLINE int32x4_t neon_dot16_small(int8x16_t w, int8x16_t a)
{
#if KQ_NEON_DOTPROD
    return vdotq_s32(vdupq_n_s32(0), w, a);
#else
    return vpaddlq_s16(vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(a)), w, a));
#endif
}

/* 32 bytes of any int8 weights (q8_0 may hold -128): the plain build widens
 * each product pair to int32 before it could overflow int16. */
KQ_NEON_INLINE int32x4_t neon_dot32_full(int8x16_t w0, int8x16_t a0, int8x16_t w1, int8x16_t a1)
{
#if KQ_NEON_DOTPROD
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, a0), w1, a1);
#else
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)));
    s = vpadalq_s16(s, vmull_high_s8(w0, a0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(a1)));
    return vpadalq_s16(s, vmull_high_s8(w1, a1));
#endif
}

/* Folds nc vectors into one whose lane c is the sum of t[c]'s lanes (lanes
 * at or past nc are don't-care). nc is a constant after inlining. */
KQ_NEON_INLINE int32x4_t neon_fold(const int32x4_t t[KQ_NEON_NC], int nc)
{
    if (nc == 1) {
        int32x4_t p = vpaddq_s32(t[0], t[0]);
        return vpaddq_s32(p, p);
    }
    if (nc == 2) {
        int32x4_t p = vpaddq_s32(t[0], t[1]);
        return vpaddq_s32(p, p);
    }
    int32x4_t p01 = vpaddq_s32(t[0], t[1]);
    int32x4_t p23 = vpaddq_s32(t[2], nc == 4 ? t[3] : t[2]);
    return vpaddq_s32(p01, p23);
}

/* fp16 bits at any address, as float. */
KQ_NEON_INLINE float neon_fp16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* Lane c: the scale of activation row c's block b (0 for lanes past nc). */
KQ_NEON_INLINE float32x4_t neon_act_scales(const uint8_t *a, size_t a_stride, int nc, size_t d_off)
{
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int c = 0; c < nc; c++) memcpy(&s[c], a + (size_t)c * a_stride + d_off, sizeof(float));
    return vld1q_f32(s);
}

/* Weight row r of the tile; rows past nr repeat the last one (computed and
 * dropped), so every row pointer is readable and the loops have fixed trip
 * counts. */
KQ_NEON_INLINE const uint8_t *neon_row(const uint8_t *w, size_t w_stride, int nr, int r)
{
    return w + (size_t)(r < nr ? r : nr - 1) * w_stride;
}

/* acc[r] lane c -> out[c * ldo + r] for r < nr, c < nc. */
KQ_NEON_INLINE void neon_store_tile(const float32x4_t acc[KQ_NEON_MR], int nr, int nc, float *out,
                                    int64_t ldo)
{
    float t[KQ_NEON_MR][4];
    for (int r = 0; r < KQ_NEON_MR; r++) vst1q_f32(t[r], acc[r]);
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) out[c * ldo + r] = t[r][c];
}

/* Expands a tile body written for a constant number of activation rows
 * (BODY(w, w_stride, nr, a, a_stride, NC, n_blocks, out, ldo)) into a tile
 * function that dispatches on nc, so each instance has fixed trip counts. */
#define KQ_NEON_TILE_FN(fn, body)                                                              \
    static void fn(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,                 \
                   size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)          \
    {                                                                                           \
        switch (nc) {                                                                           \
        case 1: body(w, w_stride, nr, a, a_stride, 1, n_blocks, out, ldo); break;               \
        case 2: body(w, w_stride, nr, a, a_stride, 2, n_blocks, out, ldo); break;               \
        case 3: body(w, w_stride, nr, a, a_stride, 3, n_blocks, out, ldo); break;               \
        default: body(w, w_stride, nr, a, a_stride, 4, n_blocks, out, ldo); break;              \
        }                                                                                       \
    }

#endif /* __aarch64__ */
#endif
