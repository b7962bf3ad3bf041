/* The one list of quantized weight types kquant computes with. Every
 * per-type dispatch (the reference converters' table, the CPU micro-kernel
 * tables, the CUDA kernel switches) expands this list, so a type missing a
 * body is a compile error or an explicit "unsupported" status, never a
 * silent default.
 *
 * X(ID, name, BLOCK, block_elems, act) with
 *   ID          the kq_type enumerator (the ggml id),
 *   name        the lower-case token ggml prints ("q4_K"), used to paste
 *               function names (kq__q4_K_to_float, kq__scalar_tile_q4_K),
 *   BLOCK       the block struct in blocks.h,
 *   block_elems elements per block,
 *   act         the CPU activation block the type's int8 kernels pair with:
 *               32 (kq_act32) or 256 (kq_act256, k-quant super-blocks).
 *
 * Float weights (f32, f16, bf16) are not in this list: every backend runs
 * them through its float path. Q8_K is an activation format, not a weight.
 * docs/adding-a-type.md walks through adding a row here. */
#ifndef KQ_FORMATS_TYPE_LIST_H
#define KQ_FORMATS_TYPE_LIST_H

#include "blocks.h"

#define KQ_QUANT_TYPES(X)                                           \
    X(KQ_TYPE_Q4_0, q4_0, kq_block_q4_0, 32, 32)                    \
    X(KQ_TYPE_Q4_1, q4_1, kq_block_q4_1, 32, 32)                    \
    X(KQ_TYPE_Q5_0, q5_0, kq_block_q5_0, 32, 32)                    \
    X(KQ_TYPE_Q5_1, q5_1, kq_block_q5_1, 32, 32)                    \
    X(KQ_TYPE_Q8_0, q8_0, kq_block_q8_0, 32, 32)                    \
    X(KQ_TYPE_IQ4_NL, iq4_nl, kq_block_iq4_nl, 32, 32)              \
    X(KQ_TYPE_MXFP4, mxfp4, kq_block_mxfp4, 32, 32)                 \
    X(KQ_TYPE_Q2_K, q2_K, kq_block_q2_K, KQ_QK_K, 256)              \
    X(KQ_TYPE_Q3_K, q3_K, kq_block_q3_K, KQ_QK_K, 256)              \
    X(KQ_TYPE_Q4_K, q4_K, kq_block_q4_K, KQ_QK_K, 256)              \
    X(KQ_TYPE_Q5_K, q5_K, kq_block_q5_K, KQ_QK_K, 256)              \
    X(KQ_TYPE_Q6_K, q6_K, kq_block_q6_K, KQ_QK_K, 256)              \
    X(KQ_TYPE_IQ4_XS, iq4_xs, kq_block_iq4_xs, KQ_QK_K, 256)

#endif
