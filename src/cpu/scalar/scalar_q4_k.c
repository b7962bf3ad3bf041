/* q4_K x kq_act256, scalar (shared math in scalar_kquant.h). */
#include "scalar_kquant.h"

static void unpack_q4_K(const uint8_t *blk, scalar_unpacked *u)
{
    u->d = scalar_fp16(blk);
    u->dmin = scalar_fp16(blk + 2);
    scalar_unpack_scales_k(blk + 4, u);
    const uint8_t *qs = blk + 16;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            u->q[64 * c + l] = (int8_t)(qs[32 * c + l] & 0xF);
            u->q[64 * c + 32 + l] = (int8_t)(qs[32 * c + l] >> 4);
        }
    scalar_scale_subblocks_k(u);
}

void kq__scalar_tile_q4_K(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                          size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
    scalar_tile(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, 144, sizeof(kq_act256),
                unpack_q4_K, scalar_dot_k_mins);
}
