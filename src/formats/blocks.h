/* Block layouts of the quantized types kquant computes with, bit-exact with
 * GGUF (docs/formats.md). fp16 fields are stored as their raw uint16_t bits;
 * everything is little-endian.
 *
 * This is the one declaration of each layout: plain C11 that CUDA C++
 * includes too (src/cuda/ and src/cpu/ read the structs, sizes and the
 * scale helpers at the end from here). A new type adds its struct, its
 * asserts and its row in type_list.h; docs/adding-a-type.md says the rest.
 *
 * A row of blocks in a file or a caller's buffer may sit at any byte address
 * (a row of Q6_K blocks is only 2-byte aligned, and callers may pass odd
 * pointers): code that reads blocks from outside memory should memcpy a block
 * into a local struct (as the reference converters here do) rather than
 * dereference a cast pointer. */
#ifndef KQ_FORMATS_BLOCKS_H
#define KQ_FORMATS_BLOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
#define KQ_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define KQ_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
#ifdef __CUDACC__
#define KQ_INLINE static inline __host__ __device__
#else
#define KQ_INLINE static inline
#endif

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kquant's block formats assume a little-endian host"
#endif

#define KQ_QK4_0 32       /* elements per Q4_0 block */
#define KQ_QK8_0 32       /* elements per Q8_0 block */
#define KQ_QK_K 256       /* elements per k-quant super-block */
#define KQ_K_SCALE_SIZE 12 /* bytes of packed 6-bit scales and mins (Q4_K, Q5_K) */

/* Q4_0: x = d * (q - 8); element j (0..15) is the low nibble of qs[j],
 * element j + 16 its high nibble. */
typedef struct kq_block_q4_0 {
    uint16_t d;              /* fp16 */
    uint8_t qs[KQ_QK4_0 / 2];
} kq_block_q4_0;

/* Q8_0: x = d * q. */
typedef struct kq_block_q8_0 {
    uint16_t d;              /* fp16 */
    int8_t qs[KQ_QK8_0];
} kq_block_q8_0;

/* Q4_K: eight sub-blocks of 32, x = (d * sc_j) * q - (dmin * m_j). */
typedef struct kq_block_q4_K {
    uint16_t d;                        /* fp16 super-scale of the 6-bit scales */
    uint16_t dmin;                     /* fp16 super-scale of the 6-bit mins */
    uint8_t scales[KQ_K_SCALE_SIZE];   /* 8 scales and 8 mins, 6 bits each */
    uint8_t qs[KQ_QK_K / 2];           /* 4-bit quants */
} kq_block_q4_K;

/* Q5_K: Q4_K plus a fifth bit per element in qh. */
typedef struct kq_block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[KQ_K_SCALE_SIZE];
    uint8_t qh[KQ_QK_K / 8];           /* high bits */
    uint8_t qs[KQ_QK_K / 2];           /* low 4 bits */
} kq_block_q5_K;

/* Q6_K: sixteen sub-blocks of 16, x = (d * sc_j) * (q - 32); 210 bytes. */
typedef struct kq_block_q6_K {
    uint8_t ql[KQ_QK_K / 2];           /* low 4 bits */
    uint8_t qh[KQ_QK_K / 4];           /* high 2 bits */
    int8_t scales[KQ_QK_K / 16];       /* 8-bit sub-block scales */
    uint16_t d;                        /* fp16 super-scale */
} kq_block_q6_K;

/* Q4_1: x = d * q + m, q in 0..15, nibbles ordered as Q4_0. */
typedef struct kq_block_q4_1 {
    uint16_t d;              /* fp16 */
    uint16_t m;              /* fp16 */
    uint8_t qs[KQ_QK4_0 / 2];
} kq_block_q4_1;

/* Q5_0: x = d * (q - 16), q = nibble | fifth bit << 4. qh is one
 * little-endian 32-bit word: bit j is the fifth bit of element j (the low
 * nibble of qs[j] for j < 16, the high nibble of qs[j - 16] for j >= 16). */
typedef struct kq_block_q5_0 {
    uint16_t d;              /* fp16 */
    uint8_t qh[4];
    uint8_t qs[KQ_QK4_0 / 2];
} kq_block_q5_0;

/* Q5_1: x = d * q + m, q as Q5_0 (0..31). */
typedef struct kq_block_q5_1 {
    uint16_t d;              /* fp16 */
    uint16_t m;              /* fp16 */
    uint8_t qh[4];
    uint8_t qs[KQ_QK4_0 / 2];
} kq_block_q5_1;

/* IQ4_NL: x = d * kq_iq4nl_values[q], q a nibble ordered as Q4_0. */
typedef struct kq_block_iq4_nl {
    uint16_t d;              /* fp16 */
    uint8_t qs[KQ_QK4_0 / 2];
} kq_block_iq4_nl;

/* MXFP4 (OCP microscaling FP4, as gpt-oss ships its experts):
 * x = kq_e8m0_half(e) * kq_mxfp4_values[q], q a nibble ordered as Q4_0.
 * The table holds the E2M1 values doubled (so they are integers) and the
 * scale is halved to match: 2^(e - 128) exactly. */
typedef struct kq_block_mxfp4 {
    uint8_t e;               /* E8M0 exponent, bias 127 */
    uint8_t qs[KQ_QK4_0 / 2];
} kq_block_mxfp4;

/* Q2_K: sixteen sub-blocks of 16, x = (d * sc_j) * q - (dmin * m_j) with
 * q in 0..3; scales[j] holds sc_j in its low nibble and m_j in its high one.
 * For half n = 0, 1 and shift s = 0, 2, 4, 6 (the s-th pair of sub-blocks
 * 8n + 2(s/2), 8n + 2(s/2) + 1), element 128n + 32(s/2) + l, l < 32, is
 * (qs[32n + l] >> s) & 3. */
typedef struct kq_block_q2_K {
    uint8_t scales[KQ_QK_K / 16];
    uint8_t qs[KQ_QK_K / 4];
    uint16_t d;              /* fp16 super-scale of the scales */
    uint16_t dmin;           /* fp16 super-scale of the mins */
} kq_block_q2_K;

/* Q3_K: sixteen sub-blocks of 16, x = (d * (sc_j - 32)) * (q - 4 * !hbit)
 * with q in 0..3 from qs (same order as Q2_K) and the high bit of element
 * 128n + 32(s/2) + l at bit 4n + s/2 of hmask[l]; the 6-bit sc_j are packed
 * in scales[12] (kq_q3k_scales unpacks them). */
typedef struct kq_block_q3_K {
    uint8_t hmask[KQ_QK_K / 8];
    uint8_t qs[KQ_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;              /* fp16 */
} kq_block_q3_K;

/* IQ4_XS: eight sub-blocks of 32, x = (d * (ls_j - 32)) * kq_iq4nl_values[q];
 * ls_j is 6 bits: low nibble from scales_l[j / 2] (>> 4 * (j % 2)), high two
 * bits from scales_h >> 2j. Sub-block j's 32 nibbles are qs[16j .. 16j + 15],
 * ordered as Q4_0. */
typedef struct kq_block_iq4_xs {
    uint16_t d;              /* fp16 */
    uint16_t scales_h;
    uint8_t scales_l[KQ_QK_K / 64];
    uint8_t qs[KQ_QK_K / 2];
} kq_block_iq4_xs;

/* Q8_K: the activation format of k-quant dot products. */
typedef struct kq_block_q8_K {
    float d;                           /* float32 scale */
    int8_t qs[KQ_QK_K];
    int16_t bsums[KQ_QK_K / 16];       /* sum of each group of 16 qs */
} kq_block_q8_K;

KQ_STATIC_ASSERT(sizeof(float) == 4, "float must be IEEE binary32");

KQ_STATIC_ASSERT(sizeof(kq_block_q4_0) == 18, "Q4_0 block is 18 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_q4_0, d) == 0, "Q4_0 d @0");
KQ_STATIC_ASSERT(offsetof(kq_block_q4_0, qs) == 2, "Q4_0 qs @2");

KQ_STATIC_ASSERT(sizeof(kq_block_q8_0) == 34, "Q8_0 block is 34 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_q8_0, d) == 0, "Q8_0 d @0");
KQ_STATIC_ASSERT(offsetof(kq_block_q8_0, qs) == 2, "Q8_0 qs @2");

KQ_STATIC_ASSERT(sizeof(kq_block_q4_K) == 144, "Q4_K block is 144 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_q4_K, d) == 0, "Q4_K d @0");
KQ_STATIC_ASSERT(offsetof(kq_block_q4_K, dmin) == 2, "Q4_K dmin @2");
KQ_STATIC_ASSERT(offsetof(kq_block_q4_K, scales) == 4, "Q4_K scales @4");
KQ_STATIC_ASSERT(offsetof(kq_block_q4_K, qs) == 16, "Q4_K qs @16");

KQ_STATIC_ASSERT(sizeof(kq_block_q5_K) == 176, "Q5_K block is 176 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_K, d) == 0, "Q5_K d @0");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_K, dmin) == 2, "Q5_K dmin @2");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_K, scales) == 4, "Q5_K scales @4");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_K, qh) == 16, "Q5_K qh @16");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_K, qs) == 48, "Q5_K qs @48");

KQ_STATIC_ASSERT(sizeof(kq_block_q6_K) == 210, "Q6_K block is 210 bytes (no padding)");
KQ_STATIC_ASSERT(offsetof(kq_block_q6_K, ql) == 0, "Q6_K ql @0");
KQ_STATIC_ASSERT(offsetof(kq_block_q6_K, qh) == 128, "Q6_K qh @128");
KQ_STATIC_ASSERT(offsetof(kq_block_q6_K, scales) == 192, "Q6_K scales @192");
KQ_STATIC_ASSERT(offsetof(kq_block_q6_K, d) == 208, "Q6_K d @208");

KQ_STATIC_ASSERT(sizeof(kq_block_q8_K) == 292, "Q8_K block is 292 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_q8_K, d) == 0, "Q8_K d @0");
KQ_STATIC_ASSERT(offsetof(kq_block_q8_K, qs) == 4, "Q8_K qs @4");
KQ_STATIC_ASSERT(offsetof(kq_block_q8_K, bsums) == 260, "Q8_K bsums @260");

KQ_STATIC_ASSERT(sizeof(kq_block_q4_1) == 20, "Q4_1 block is 20 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_q4_1, m) == 2, "Q4_1 m @2");
KQ_STATIC_ASSERT(offsetof(kq_block_q4_1, qs) == 4, "Q4_1 qs @4");

KQ_STATIC_ASSERT(sizeof(kq_block_q5_0) == 22, "Q5_0 block is 22 bytes (no padding)");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_0, qh) == 2, "Q5_0 qh @2");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_0, qs) == 6, "Q5_0 qs @6");

KQ_STATIC_ASSERT(sizeof(kq_block_q5_1) == 24, "Q5_1 block is 24 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_1, m) == 2, "Q5_1 m @2");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_1, qh) == 4, "Q5_1 qh @4");
KQ_STATIC_ASSERT(offsetof(kq_block_q5_1, qs) == 8, "Q5_1 qs @8");

KQ_STATIC_ASSERT(sizeof(kq_block_iq4_nl) == 18, "IQ4_NL block is 18 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_iq4_nl, qs) == 2, "IQ4_NL qs @2");

KQ_STATIC_ASSERT(sizeof(kq_block_mxfp4) == 17, "MXFP4 block is 17 bytes (no padding)");
KQ_STATIC_ASSERT(offsetof(kq_block_mxfp4, qs) == 1, "MXFP4 qs @1");

KQ_STATIC_ASSERT(sizeof(kq_block_q2_K) == 84, "Q2_K block is 84 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_q2_K, qs) == 16, "Q2_K qs @16");
KQ_STATIC_ASSERT(offsetof(kq_block_q2_K, d) == 80, "Q2_K d @80");
KQ_STATIC_ASSERT(offsetof(kq_block_q2_K, dmin) == 82, "Q2_K dmin @82");

KQ_STATIC_ASSERT(sizeof(kq_block_q3_K) == 110, "Q3_K block is 110 bytes (no padding)");
KQ_STATIC_ASSERT(offsetof(kq_block_q3_K, qs) == 32, "Q3_K qs @32");
KQ_STATIC_ASSERT(offsetof(kq_block_q3_K, scales) == 96, "Q3_K scales @96");
KQ_STATIC_ASSERT(offsetof(kq_block_q3_K, d) == 108, "Q3_K d @108");

KQ_STATIC_ASSERT(sizeof(kq_block_iq4_xs) == 136, "IQ4_XS block is 136 bytes");
KQ_STATIC_ASSERT(offsetof(kq_block_iq4_xs, scales_h) == 2, "IQ4_XS scales_h @2");
KQ_STATIC_ASSERT(offsetof(kq_block_iq4_xs, scales_l) == 4, "IQ4_XS scales_l @4");
KQ_STATIC_ASSERT(offsetof(kq_block_iq4_xs, qs) == 8, "IQ4_XS qs @8");

/* ---------------------------------------------------------------- shared helpers
 * Scale unpacking and value tables, the same code for the reference
 * converters, the CPU kernels and the CUDA kernels. On CUDA the tables are
 * host arrays: kernels copy them to constant memory or registers. */

/* The non-linear 4-bit grid of IQ4_NL and IQ4_XS. */
static const int8_t kq_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                           1,    13,   25,  38,  53,  69,  89,  113};
/* E2M1 (FP4) values times two: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives. */
static const int8_t kq_mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* 2^(e - 128) as a float, exact for every e (e < 2 gives a subnormal):
 * the MXFP4 scale with the halving that kq_mxfp4_values' doubling needs. */
KQ_INLINE float kq_e8m0_half(uint8_t e)
{
    uint32_t bits = e < 2 ? (uint32_t)0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Sub-block j's 6-bit scale and min of a Q4_K/Q5_K block's scales[12]. */
KQ_INLINE void kq_k4_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *mn)
{
    if (j < 4) {
        *sc = (uint8_t)(s[j] & 63);
        *mn = (uint8_t)(s[j + 4] & 63);
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *mn = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* The sixteen 6-bit scales of a Q3_K block, each minus 32 (-32..31). */
KQ_INLINE void kq_q3k_scales(const uint8_t s[12], int8_t out[16])
{
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
        int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* Sub-block j's 6-bit IQ4_XS scale minus 32 (-32..31). */
KQ_INLINE int kq_iq4xs_scale(const kq_block_iq4_xs *b, int j)
{
    int lo = (b->scales_l[j / 2] >> (4 * (j % 2))) & 0xF;
    int hi = (b->scales_h >> (2 * j)) & 3;
    return (lo | (hi << 4)) - 32;
}

#endif
