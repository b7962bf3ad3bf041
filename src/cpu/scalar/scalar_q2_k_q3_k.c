/* q2_K and q3_K x kq_act256, scalar: 2-bit planes (q3_K with a third bit
 * from hmask), sixteen sub-blocks of 16 with their own scale. Both fold the
 * scale into int16 values before one long dot product; q2_K subtracts
 * dmin * sum_g m_g * bsum[g], q3_K keeps its -4 offset in the values. */
#include "scalar_tile.h"

/* Element 128n + 32j + l sits at bits 2j of qs[32n + l] (blocks.h). */
static int plane_value(const uint8_t *qs, int e)
{
    const int n = e / 128, j = (e % 128) / 32, l = e % 32;
    return (qs[32 * n + l] >> (2 * j)) & 3;
}

static void scale_groups(scalar_unpacked *u)
{
    for (int g = 0; g < 16; g++)
        for (int l = 0; l < 16; l++) u->qs[16 * g + l] = (int16_t)(u->sc[g] * u->q[16 * g + l]);
}

static void unpack_q2_K(const uint8_t *blk, scalar_unpacked *u)
{
    const uint8_t *sc = blk + offsetof(kq_block_q2_K, scales);
    for (int g = 0; g < 16; g++) {
        u->sc[g] = (int16_t)(sc[g] & 0xF);
        u->mn[g] = (int16_t)(sc[g] >> 4);
    }
    for (int e = 0; e < 256; e++) u->q[e] = (int8_t)plane_value(blk + offsetof(kq_block_q2_K, qs), e);
    scale_groups(u);
    u->d = scalar_fp16(blk + offsetof(kq_block_q2_K, d));
    u->dmin = scalar_fp16(blk + offsetof(kq_block_q2_K, dmin));
}

static float dot_q2_K(const scalar_unpacked *u, const uint8_t *act)
{
    const kq_act256 *x = (const kq_act256 *)act;
    int32_t mins = 0;
    for (int g = 0; g < 16; g++) mins += u->mn[g] * x->bsum[g];
    return x->d * (u->d * (float)scalar_dot_i16(u->qs, x->q, 256) - u->dmin * (float)mins);
}

static void unpack_q3_K(const uint8_t *blk, scalar_unpacked *u)
{
    int8_t sc[16];
    kq_q3k_scales(blk + offsetof(kq_block_q3_K, scales), sc);
    for (int g = 0; g < 16; g++) u->sc[g] = sc[g];
    const uint8_t *hm = blk + offsetof(kq_block_q3_K, hmask);
    for (int e = 0; e < 256; e++) {
        const int n = e / 128, j = (e % 128) / 32, l = e % 32;
        const int h = (hm[l] >> (4 * n + j)) & 1;
        u->q[e] = (int8_t)(plane_value(blk + offsetof(kq_block_q3_K, qs), e) - (h ? 0 : 4));
    }
    scale_groups(u);
    u->d = scalar_fp16(blk + offsetof(kq_block_q3_K, d));
}

static float dot_q3_K(const scalar_unpacked *u, const uint8_t *act)
{
    const kq_act256 *x = (const kq_act256 *)act;
    return x->d * u->d * (float)scalar_dot_i16(u->qs, x->q, 256);
}

void kq__scalar_tile_q2_K(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                          size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
    scalar_tile(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, sizeof(kq_block_q2_K),
                sizeof(kq_act256), unpack_q2_K, dot_q2_K);
}

void kq__scalar_tile_q3_K(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                          size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)
{
    scalar_tile(w, w_stride, nr, a, a_stride, nc, n_blocks, out, ldo, sizeof(kq_block_q3_K),
                sizeof(kq_act256), unpack_q3_K, dot_q3_K);
}
