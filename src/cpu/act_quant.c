/* Activation quantization: one row of floats into int8 blocks with one float
 * scale per block (kq_act32 / kq_act256 of ukernel.h), done once per call and
 * read by every micro-kernel of every ISA. Plain C that the compiler
 * vectorizes; the bytes are the same on every machine, so the ISAs differ
 * only in how their kernels round partial sums.
 *
 * Rounding: q = round-half-even(x / d), d = amax / 127. x / d lies in
 * [-127, 127] up to one rounding, so the clamp only guards that rounding. The
 * 1.5 * 2^23 trick rounds half to even in the default rounding mode and
 * vectorizes on any x86-64 (roundps needs SSE4.1). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "formats/formats.h"
#include "formats/type_list.h"
#include "kquant.h"
#include "ukernel.h"

/* From type_list.h's act column: a quantized type without one is a compile
 * error there, and a type outside the list (float weights) gets -1. */
int kq__act_kind_of(int weight_type)
{
    switch (weight_type) {
#define KQ_ACT_CASE(id, name, block, elems, act) \
    case id:                                     \
        return (act) == 32 ? KQ_ACT_32 : KQ_ACT_256;
        KQ_QUANT_TYPES(KQ_ACT_CASE)
#undef KQ_ACT_CASE
    default:
        return -1;
    }
}

/* Quantizes n values; returns d. Non-finite input: q = 0 and d = NaN, so
 * every dot product with the block comes out NaN as the reference's would
 * come out non-finite. */
static float quantize_block(const float *x, int8_t *q, size_t n)
{
    float amax = 0.0f;
    int finite = 1;
    for (size_t j = 0; j < n; j++) {
        float a = fabsf(x[j]);
        finite &= a <= FLT_MAX;
        amax = a > amax ? a : amax;
    }
    float d = amax / 127.0f;
    if (!finite || d == 0.0f) {
        memset(q, 0, n);
        return finite ? 0.0f : NAN;
    }
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    for (size_t j = 0; j < n; j++) {
        float v = x[j] / d;
        v = v > 127.0f ? 127.0f : v;
        v = v < -127.0f ? -127.0f : v;
        q[j] = (int8_t)(int)((v + magic) - magic);
    }
    return d;
}

static void quantize_32(const float *x, kq_act32 *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        kq_act32 *o = &dst[b];
        o->d = quantize_block(x + 32 * b, o->q, 32);
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += o->q[j];
        o->sum = s;
    }
}

static void quantize_256(const float *x, kq_act256 *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        kq_act256 *o = &dst[b];
        o->d = quantize_block(x + 256 * b, o->q, 256);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += o->q[16 * g + j];
            o->bsum[g] = (int16_t)s;
        }
        memset(o->pad_, 0, sizeof o->pad_);
    }
}

void kq__act_quantize(kq_act_kind a, const float *x, void *dst, int64_t k)
{
    if (a == KQ_ACT_32)
        quantize_32(x, dst, k / 32);
    else
        quantize_256(x, dst, k / 256);
}
