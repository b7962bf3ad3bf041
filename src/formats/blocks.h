/* Block layouts of the quantized types kquant computes with, bit-exact with
 * GGUF (see FORMATS.md). fp16 fields are stored as their raw uint16_t bits;
 * everything is little-endian.
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

/* Q8_K: the activation format of k-quant dot products. */
typedef struct kq_block_q8_K {
    float d;                           /* float32 scale */
    int8_t qs[KQ_QK_K];
    int16_t bsums[KQ_QK_K / 16];       /* sum of each group of 16 qs */
} kq_block_q8_K;

_Static_assert(sizeof(float) == 4, "float must be IEEE binary32");

_Static_assert(sizeof(kq_block_q4_0) == 18, "Q4_0 block is 18 bytes");
_Static_assert(offsetof(kq_block_q4_0, d) == 0, "Q4_0 d @0");
_Static_assert(offsetof(kq_block_q4_0, qs) == 2, "Q4_0 qs @2");

_Static_assert(sizeof(kq_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(offsetof(kq_block_q8_0, d) == 0, "Q8_0 d @0");
_Static_assert(offsetof(kq_block_q8_0, qs) == 2, "Q8_0 qs @2");

_Static_assert(sizeof(kq_block_q4_K) == 144, "Q4_K block is 144 bytes");
_Static_assert(offsetof(kq_block_q4_K, d) == 0, "Q4_K d @0");
_Static_assert(offsetof(kq_block_q4_K, dmin) == 2, "Q4_K dmin @2");
_Static_assert(offsetof(kq_block_q4_K, scales) == 4, "Q4_K scales @4");
_Static_assert(offsetof(kq_block_q4_K, qs) == 16, "Q4_K qs @16");

_Static_assert(sizeof(kq_block_q5_K) == 176, "Q5_K block is 176 bytes");
_Static_assert(offsetof(kq_block_q5_K, d) == 0, "Q5_K d @0");
_Static_assert(offsetof(kq_block_q5_K, dmin) == 2, "Q5_K dmin @2");
_Static_assert(offsetof(kq_block_q5_K, scales) == 4, "Q5_K scales @4");
_Static_assert(offsetof(kq_block_q5_K, qh) == 16, "Q5_K qh @16");
_Static_assert(offsetof(kq_block_q5_K, qs) == 48, "Q5_K qs @48");

_Static_assert(sizeof(kq_block_q6_K) == 210, "Q6_K block is 210 bytes (no padding)");
_Static_assert(offsetof(kq_block_q6_K, ql) == 0, "Q6_K ql @0");
_Static_assert(offsetof(kq_block_q6_K, qh) == 128, "Q6_K qh @128");
_Static_assert(offsetof(kq_block_q6_K, scales) == 192, "Q6_K scales @192");
_Static_assert(offsetof(kq_block_q6_K, d) == 208, "Q6_K d @208");

_Static_assert(sizeof(kq_block_q8_K) == 292, "Q8_K block is 292 bytes");
_Static_assert(offsetof(kq_block_q8_K, d) == 0, "Q8_K d @0");
_Static_assert(offsetof(kq_block_q8_K, qs) == 4, "Q8_K qs @4");
_Static_assert(offsetof(kq_block_q8_K, bsums) == 260, "Q8_K bsums @260");

#endif
