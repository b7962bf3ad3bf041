/* iq4_xs x kq_act256, scalar: iq4_nl's grid per nibble, eight sub-blocks of
 * 32 with 6-bit scales (minus 32) folded into int16 values (|.| <= 32 * 127)
 * before one long dot product. */
#include "scalar_tile.h"

static void unpack_iq4_xs(const uint8_t *blk, scalar_unpacked *u)
{
    kq_block_iq4_xs b;
    memcpy(&b, blk, sizeof b);
    for (int j = 0; j < 8; j++) {
        const int sc = kq_iq4xs_scale(&b, j);
        for (int l = 0; l < 16; l++) {
            u->qs[32 * j + l] = (int16_t)(sc * kq_iq4nl_values[b.qs[16 * j + l] & 0xF]);
            u->qs[32 * j + 16 + l] = (int16_t)(sc * kq_iq4nl_values[b.qs[16 * j + l] >> 4]);
        }
    }
    u->d = kq_fp16_to_f32(b.d);
}

static float dot_iq4_xs(const scalar_unpacked *u, const uint8_t *act)
{
    const kq_act256 *x = (const kq_act256 *)act;
    return x->d * u->d * (float)scalar_dot_i16(u->qs, x->q, 256);
}

void kq__scalar_tile_iq4_xs(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                            size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
    scalar_tile(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, sizeof(kq_block_iq4_xs),
                sizeof(kq_act256), unpack_iq4_xs, dot_iq4_xs);
}
