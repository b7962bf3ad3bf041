/* q6_K x kq_act256, scalar: values unpacked as q - 32 (signed), sixteen int8
 * scales of 16 elements, one fp16 d. */
#include "scalar_tile.h"

static void unpack_q6_K(const uint8_t *blk, scalar_unpacked *u)
{
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = blk + 64 * n, *qh = blk + 128 + 32 * n;
        int8_t *y = u->q + 128 * n;
        for (int l = 0; l < 32; l++) {
            y[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            y[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            y[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            y[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
    for (int g = 0; g < 16; g++) u->sc[g] = (int8_t)blk[192 + g];
    for (int g = 0; g < 16; g++) {
        int16_t sc = u->sc[g];
        for (int l = 0; l < 16; l++) u->qs[16 * g + l] = (int16_t)(sc * u->q[16 * g + l]);
    }
    u->d = scalar_fp16(blk + 208);
}

static float dot_q6_K(const scalar_unpacked *u, const uint8_t *act)
{
    const kq_act256 *x = (const kq_act256 *)act;
    return x->d * u->d * (float)scalar_dot_i16(u->qs, x->q, 256);
}

void kq__scalar_tile_q6_K(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                          size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
    scalar_tile(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, 210, sizeof(kq_act256),
                unpack_q6_K, dot_q6_K);
}
