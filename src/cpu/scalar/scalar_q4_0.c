/* q4_0 x kq_act32, scalar: x = d * (q - 8); the offset is applied while
 * unpacking so the byte dot product is signed. */
#include "scalar_tile.h"

static void unpack_q4_0(const uint8_t *blk, scalar_unpacked *u)
{
    u->d = scalar_fp16(blk);
    const uint8_t *qs = blk + 2;
    for (int j = 0; j < 16; j++) {
        u->q[j] = (int8_t)((qs[j] & 0xF) - 8);
        u->q[j + 16] = (int8_t)((qs[j] >> 4) - 8);
    }
}

static float dot_q4_0(const scalar_unpacked *u, const uint8_t *act)
{
    const kq_act32 *x = (const kq_act32 *)act;
    return u->d * x->d * (float)scalar_dot_i8(u->q, x->q, 32);
}

void kq__scalar_tile_q4_0(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                          size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
    scalar_tile(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, 18, sizeof(kq_act32),
                unpack_q4_0, dot_q4_0);
}
