/* What q4_K and q5_K share: the 6-bit scales and mins (docs/formats.md) and the
 * block dot product  d * sum_j sc_j S_j - dmin * sum_j m_j A_j,  where S_j is
 * the integer dot product of sub-block j and A_j its activation sum (two of
 * kq_act256's bsum groups), scaled once by the activation's d. */
#ifndef KQ_CPU_SCALAR_KQUANT_H
#define KQ_CPU_SCALAR_KQUANT_H

#include "scalar_tile.h"

static inline void scalar_unpack_scales_k(const uint8_t *s, scalar_unpacked *u)
{
    for (int j = 0; j < 4; j++) {
        u->sc[j] = (int16_t)(s[j] & 63);
        u->mn[j] = (int16_t)(s[j + 4] & 63);
    }
    for (int j = 4; j < 8; j++) {
        u->sc[j] = (int16_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        u->mn[j] = (int16_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

static inline float scalar_dot_k_mins(const scalar_unpacked *u, const uint8_t *act)
{
    const kq_act256 *x = (const kq_act256 *)act;
    int32_t sum = scalar_dot_i16(u->qs, x->q, 256), mins = 0;
    for (int j = 0; j < 8; j++) mins += u->mn[j] * (x->bsum[2 * j] + x->bsum[2 * j + 1]);
    return x->d * (u->d * (float)sum - u->dmin * (float)mins);
}

/* qs[e] = sc_j * q[e] for the eight sub-blocks of 32. */
static inline void scalar_scale_subblocks_k(scalar_unpacked *u)
{
    for (int j = 0; j < 8; j++) {
        int16_t sc = u->sc[j];
        for (int l = 0; l < 32; l++) u->qs[32 * j + l] = (int16_t)(sc * u->q[32 * j + l]);
    }
}

#endif
