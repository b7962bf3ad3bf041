/* The shape every scalar micro-kernel shares (src/cpu/ukernel.h): a tile of
 * up to 4 weight rows by 4 activation rows. Per block, each weight row is
 * unpacked once into signed bytes (k-quants: int16 values with the
 * sub-block scale folded in), then dotted with each activation row's block
 * in integers; only the per-block result is a float. The float sum over
 * blocks runs in block order for every (row, column) alone, so a result
 * does not depend on the tile it was computed in. The integer loops are
 * written so the compiler vectorizes them (SSE2 on x86-64, NEON on ARM64).
 *
 * Measured (Zen 3 EPYC 2.45 GHz, 1 core, gcc 12 -O3, 64 rows x K = 4096 in
 * L2, machine shared with other builds): weight GB/s at nc = 1 and int8
 * TOP/s at nc = 4: q4_0 1.6 / 0.009, q8_0 3.2 / 0.009, q4_K 1.9 / 0.015,
 * q5_K 1.7 / 0.012, q6_K 1.4 / 0.009. A fallback: the SIMD kernels are
 * 5-20x faster. */
#ifndef KQ_CPU_SCALAR_TILE_H
#define KQ_CPU_SCALAR_TILE_H

#include <stdint.h>
#include <string.h>

#include "cpu/ukernel.h"
#include "formats/type_list.h"
#include "kquant.h"

#define KQ_SCALAR_MR 4
#define KQ_SCALAR_NC 4

/* One weight block, unpacked. What q holds depends on the type (the value
 * with its offset removed where that keeps it signed: q4_0 q - 8, q5_0
 * q - 16, q6_K q - 32, q3_K q - 4 (hbit clear); the grid value for iq4_nl,
 * iq4_xs and mxfp4; q4_1/q5_1 and q2_K/q4_K/q5_K keep q >= 0 and carry their
 * mins). */
typedef struct scalar_unpacked {
    int8_t q[256];
    int16_t qs[256]; /* k-quants: q times its sub-block scale (|.| <= 63 * 31) */
    int16_t sc[16]; /* sub-block scales (k-quants) */
    int16_t mn[16]; /* sub-block mins (q4_K, q5_K: 8; q2_K: 16) */
    float d, dmin;  /* dmin: the min's scale (k-quants) or the min m (q4_1, q5_1) */
} scalar_unpacked;

typedef void (*scalar_unpack_fn)(const uint8_t *block, scalar_unpacked *u);
/* The dot product of an unpacked weight block with one activation block. */
typedef float (*scalar_dot_fn)(const scalar_unpacked *u, const uint8_t *act);

static inline float scalar_fp16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return kq_fp16_to_f32(h);
}

static inline int32_t scalar_dot_i8(const int8_t *x, const int8_t *y, int n)
{
    int32_t s = 0;
    for (int j = 0; j < n; j++) s += (int32_t)x[j] * (int32_t)y[j];
    return s;
}

/* One long int16 x int8 dot product vectorizes far better than sixteen
 * short int8 ones: the k-quants fold their scales into qs first. */
static inline int32_t scalar_dot_i16(const int16_t *x, const int8_t *y, int n)
{
    int32_t s = 0;
    for (int j = 0; j < n; j++) s += (int32_t)x[j] * (int32_t)y[j];
    return s;
}

static inline void scalar_tile(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                               size_t a_stride, int nc, int64_t n_blocks, float *out,
                               int64_t ldo, size_t w_block, size_t a_block,
                               scalar_unpack_fn unpack, scalar_dot_fn dot)
{
    float acc[KQ_SCALAR_MR][KQ_SCALAR_NC] = {{0}};
    scalar_unpacked u;
    for (int64_t b = 0; b < n_blocks; b++) {
        for (int r = 0; r < nr; r++) {
            unpack(w + (size_t)r * w_stride + (size_t)b * w_block, &u);
            for (int c = 0; c < nc; c++)
                acc[r][c] += dot(&u, a + (size_t)c * a_stride + (size_t)b * a_block);
        }
    }
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) out[c * ldo + r] = acc[r][c];
}

/* The per-type tiles, for the lookup (scalar.c): kq__scalar_tile_<name> for
 * every row of formats/type_list.h. */
#define KQ_SCALAR_DECLARE(id, name, block, elems, act)                                          \
    void kq__scalar_tile_##name(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,    \
                                size_t a_stride, int nc, int64_t n_blocks, float *out,          \
                                int64_t ldo);
KQ_QUANT_TYPES(KQ_SCALAR_DECLARE)
#undef KQ_SCALAR_DECLARE

#endif
