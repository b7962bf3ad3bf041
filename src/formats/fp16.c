/* IEEE half and bfloat16 <-> float32, by integer bit manipulation only (no
 * _Float16, no F16C), so the result is the same on every compiler and CPU.
 * f32 -> half and f32 -> bf16 round to nearest, ties to even; NaN stays NaN
 * (quieted, sign and top payload bits kept); overflow goes to infinity. */
#include "kquant.h"

#include <string.h>

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float kq_fp16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;

    if (exp == 0x1f) /* inf, NaN (payload kept) */
        return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) /* normal: rebias 15 -> 127 */
        return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0) /* signed zero */
        return f32_from_bits(sign);
    /* subnormal half, mant * 2^-24: normalize so bit 10 is the hidden bit */
    uint32_t e = 113; /* biased f32 exponent of 2^-14 */
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return f32_from_bits(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

uint16_t kq_f32_to_fp16(float f)
{
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;

    if (a > 0x7f800000u) /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* >= 65520 (the tie above 65504 rounds up), or inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* >= 2^-14: a normal half */
        const uint32_t r = a - (112u << 23); /* rebias the exponent 127 -> 15 */
        return (uint16_t)(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
    }
    if (a <= 0x33000000u) /* <= 2^-25, half the smallest subnormal: ties to 0 */
        return sign;
    /* subnormal half: value = m * 2^(e - 150), in units of 2^-24 that is
     * m >> (126 - e); shift is 14..24 here */
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++; /* may carry into 0x400, the smallest normal: still right */
    return (uint16_t)(sign | q);
}

float kq_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

uint16_t kq_f32_to_bf16(float f)
{
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: set the quiet bit */
        return (uint16_t)((u >> 16) | 0x40u);
    /* cannot wrap: the largest non-NaN pattern, 0xff800000, plus 0x8000 fits */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
