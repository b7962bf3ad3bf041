/* AVX2 (+FMA, F16C) micro-kernels: the lookup and the shuffle masks the
 * kernels share. The kernels are in avx2_<type>.c; their speeds are in each
 * file's header, measured on the CI-class machine (AMD EPYC Zen 3, 2 vCPU at
 * 2.45 GHz, one core) with a hand-built program calling one kernel on 64
 * weight rows x K = 4096 (weights in L2) and nc activation rows, best of
 * 3000 passes, other jobs sharing the machine: GB/s counts weight bytes,
 * GOP/s counts 2 * rows * K * nc. A loop of independent maddubs + madd + add
 * reaches 139 GOP/s a core there. Variant 0 is the 4x4 tile, variant 1 the
 * 4x8 (the same code; the wider tile amortizes each row's unpacking). */
#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)

#include "kquant.h"

#define KQ_B16(j) 2 * (j), 2 * (j) + 1
#define KQ_B16x8(j) KQ_B16(j), KQ_B16(j), KQ_B16(j), KQ_B16(j), \
                    KQ_B16(j), KQ_B16(j), KQ_B16(j), KQ_B16(j)
#define KQ_B16_ROW(j) {KQ_B16x8(j), KQ_B16x8(j)}
const uint8_t kq_x86_bcast16[8][32] = {
    KQ_B16_ROW(0), KQ_B16_ROW(1), KQ_B16_ROW(2), KQ_B16_ROW(3),
    KQ_B16_ROW(4), KQ_B16_ROW(5), KQ_B16_ROW(6), KQ_B16_ROW(7),
};
#define KQ_P16_ROW(i) {KQ_B16x8(2 * (i)), KQ_B16x8(2 * (i) + 1)}
const uint8_t kq_x86_pair16[4][32] = {
    KQ_P16_ROW(0), KQ_P16_ROW(1), KQ_P16_ROW(2), KQ_P16_ROW(3),
};

const kq_ukernel *kq__ukernel_avx2(int weight_type, int variant)
{
    kq__x86_half_table_init();
    const int v = variant ? 1 : 0;
    switch (weight_type) {
#define KQ_AVX2_CASE(id, name, block, elems, act) \
    case id:                                      \
        return &kq__avx2_##name[v];
        KQ_QUANT_TYPES(KQ_AVX2_CASE)
#undef KQ_AVX2_CASE
    default:
        return NULL; /* float weights */
    }
}

#endif
