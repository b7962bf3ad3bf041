/* The 32-element block types other than q4_0 and q8_0, x kq_act32, scalar:
 * q4_1, q5_0, q5_1 (4 or 5 bits, with or without a min) and iq4_nl, mxfp4
 * (a nibble looked up in a 16-value grid). Every one is a signed or
 * unsigned byte per element and one block scale; q4_1/q5_1 add
 * m * (sum of the activation block), through kq_act32's sum. */
#include "scalar_tile.h"

/* Element j (< 16) is the low nibble of qs[j], j + 16 its high one. */
static void nibbles(const uint8_t *qs, int8_t *q)
{
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(qs[j] & 0xF);
        q[j + 16] = (int8_t)(qs[j] >> 4);
    }
}

/* Adds the fifth bits of a q5_0 / q5_1 block (bit j of the word qh). */
static void fifth_bits(const uint8_t *qh, int8_t *q)
{
    uint32_t h;
    memcpy(&h, qh, 4);
    for (int j = 0; j < 32; j++) q[j] = (int8_t)(q[j] | (((h >> j) & 1) << 4));
}

static void grid(int8_t *q, const int8_t table[16])
{
    for (int j = 0; j < 32; j++) q[j] = table[q[j]];
}

static void unpack_q4_1(const uint8_t *blk, scalar_unpacked *u)
{
    u->d = scalar_fp16(blk + offsetof(kq_block_q4_1, d));
    u->dmin = scalar_fp16(blk + offsetof(kq_block_q4_1, m));
    nibbles(blk + offsetof(kq_block_q4_1, qs), u->q);
}

static void unpack_q5_0(const uint8_t *blk, scalar_unpacked *u)
{
    u->d = scalar_fp16(blk + offsetof(kq_block_q5_0, d));
    nibbles(blk + offsetof(kq_block_q5_0, qs), u->q);
    fifth_bits(blk + offsetof(kq_block_q5_0, qh), u->q);
    for (int j = 0; j < 32; j++) u->q[j] = (int8_t)(u->q[j] - 16);
}

static void unpack_q5_1(const uint8_t *blk, scalar_unpacked *u)
{
    u->d = scalar_fp16(blk + offsetof(kq_block_q5_1, d));
    u->dmin = scalar_fp16(blk + offsetof(kq_block_q5_1, m));
    nibbles(blk + offsetof(kq_block_q5_1, qs), u->q);
    fifth_bits(blk + offsetof(kq_block_q5_1, qh), u->q);
}

static void unpack_iq4_nl(const uint8_t *blk, scalar_unpacked *u)
{
    u->d = scalar_fp16(blk + offsetof(kq_block_iq4_nl, d));
    nibbles(blk + offsetof(kq_block_iq4_nl, qs), u->q);
    grid(u->q, kq_iq4nl_values);
}

static void unpack_mxfp4(const uint8_t *blk, scalar_unpacked *u)
{
    u->d = kq_e8m0_half(blk[offsetof(kq_block_mxfp4, e)]);
    nibbles(blk + offsetof(kq_block_mxfp4, qs), u->q);
    grid(u->q, kq_mxfp4_values);
}

static float dot_scaled(const scalar_unpacked *u, const uint8_t *act)
{
    const kq_act32 *x = (const kq_act32 *)act;
    return u->d * x->d * (float)scalar_dot_i8(u->q, x->q, 32);
}

static float dot_with_min(const scalar_unpacked *u, const uint8_t *act)
{
    const kq_act32 *x = (const kq_act32 *)act;
    return x->d * (u->d * (float)scalar_dot_i8(u->q, x->q, 32) + u->dmin * (float)x->sum);
}

#define BLOCK32_TILE(name, unpack, dot)                                                        \
    void kq__scalar_tile_##name(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,   \
                                size_t a_stride, int nc, int64_t n_blocks, float *out,         \
                                int64_t ldo)                                                   \
    {                                                                                          \
        scalar_tile(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo,                      \
                    sizeof(kq_block_##name), sizeof(kq_act32), unpack, dot);                   \
    }

BLOCK32_TILE(q4_1, unpack_q4_1, dot_with_min)
BLOCK32_TILE(q5_0, unpack_q5_0, dot_scaled)
BLOCK32_TILE(q5_1, unpack_q5_1, dot_with_min)
BLOCK32_TILE(iq4_nl, unpack_iq4_nl, dot_scaled)
BLOCK32_TILE(mxfp4, unpack_mxfp4, dot_scaled)
