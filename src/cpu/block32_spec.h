/* What tells the 32-element block types q4_0, q4_1, q5_0, q5_1, iq4_nl and
 * mxfp4 apart, for the one tile body each SIMD ISA has for all of them
 * (x86/x86_block32.h, arm/neon_block32.h): every one is 16 bytes of nibbles
 * in Q4_0's order, optionally a 32-bit word of fifth bits, a scale (fp16 d,
 * or mxfp4's E8M0 exponent) and optionally an fp16 min. Offsets are checked
 * against blocks.h here. */
#ifndef KQ_CPU_BLOCK32_SPEC_H
#define KQ_CPU_BLOCK32_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "formats/blocks.h"

enum { KQ_B32_NONE, KQ_B32_Q4_0, KQ_B32_IQ4NL, KQ_B32_MXFP4 };

typedef struct block32_spec {
    int bytes;  /* block size */
    int qs, qh; /* offsets of the nibbles and of the fifth bits (-1: none) */
    int m;      /* offset of the fp16 min (-1: none; values are then signed) */
    int e8m0;   /* scale: 1 = E8M0 byte at 0, 0 = fp16 d at 0 */
    int grid;   /* KQ_B32_*: the 16-value lookup, or none (q4_1, q5_1: the nibble) */
    int q5_0;   /* a clear fifth bit means - 16 */
} block32_spec;

#define KQ_B32_SPEC_Q4_0 {18, 2, -1, -1, 0, KQ_B32_Q4_0, 0}
#define KQ_B32_SPEC_Q4_1 {20, 4, -1, 2, 0, KQ_B32_NONE, 0}
#define KQ_B32_SPEC_Q5_0 {22, 6, 2, -1, 0, KQ_B32_NONE, 1}
#define KQ_B32_SPEC_Q5_1 {24, 8, 4, 2, 0, KQ_B32_NONE, 0}
#define KQ_B32_SPEC_IQ4_NL {18, 2, -1, -1, 0, KQ_B32_IQ4NL, 0}
#define KQ_B32_SPEC_MXFP4 {17, 1, -1, -1, 1, KQ_B32_MXFP4, 0}

KQ_STATIC_ASSERT(sizeof(kq_block_q4_0) == 18 && offsetof(kq_block_q4_0, qs) == 2,
                 "KQ_B32_SPEC_Q4_0 matches blocks.h");
KQ_STATIC_ASSERT(sizeof(kq_block_q4_1) == 20 && offsetof(kq_block_q4_1, qs) == 4 &&
                     offsetof(kq_block_q4_1, m) == 2,
                 "KQ_B32_SPEC_Q4_1 matches blocks.h");
KQ_STATIC_ASSERT(sizeof(kq_block_q5_0) == 22 && offsetof(kq_block_q5_0, qs) == 6 &&
                     offsetof(kq_block_q5_0, qh) == 2,
                 "KQ_B32_SPEC_Q5_0 matches blocks.h");
KQ_STATIC_ASSERT(sizeof(kq_block_q5_1) == 24 && offsetof(kq_block_q5_1, qs) == 8 &&
                     offsetof(kq_block_q5_1, qh) == 4 && offsetof(kq_block_q5_1, m) == 2,
                 "KQ_B32_SPEC_Q5_1 matches blocks.h");
KQ_STATIC_ASSERT(sizeof(kq_block_iq4_nl) == 18 && offsetof(kq_block_iq4_nl, qs) == 2,
                 "KQ_B32_SPEC_IQ4_NL matches blocks.h");
KQ_STATIC_ASSERT(sizeof(kq_block_mxfp4) == 17 && offsetof(kq_block_mxfp4, qs) == 1,
                 "KQ_B32_SPEC_MXFP4 matches blocks.h");

/* Identity minus 8: q4_0's values through the same lookup as the grids. */
static const int8_t kq_b32_q4_0_values[16] = {-8, -7, -6, -5, -4, -3, -2, -1,
                                              0,  1,  2,  3,  4,  5,  6,  7};

/* The 16-value table of a grid (q4_0's for KQ_B32_NONE: unused there). */
static inline const int8_t *kq_block32_grid(int grid)
{
    return grid == KQ_B32_IQ4NL ? kq_iq4nl_values
         : grid == KQ_B32_MXFP4 ? kq_mxfp4_values
                                : kq_b32_q4_0_values;
}

#endif
