/* q5_K x kq_act256, scalar: q4_K's layout plus a fifth bit from qh. */
#include "scalar_kquant.h"

static void unpack_q5_K(const uint8_t *blk, scalar_unpacked *u)
{
    u->d = scalar_fp16(blk);
    u->dmin = scalar_fp16(blk + 2);
    scalar_unpack_scales_k(blk + 4, u);
    const uint8_t *qh = blk + 16, *qs = blk + 48;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int lo = (qs[32 * c + l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4);
            int hi = (qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
            u->q[64 * c + l] = (int8_t)lo;
            u->q[64 * c + 32 + l] = (int8_t)hi;
        }
    scalar_scale_subblocks_k(u);
}

void kq__scalar_tile_q5_K(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                          size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
    scalar_tile(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, 176, sizeof(kq_act256),
                unpack_q5_K, scalar_dot_k_mins);
}
