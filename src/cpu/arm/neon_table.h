/* The kernel table of one NEON build: included last by neon_plain.c and
 * neon_dotprod.c, after the tile bodies, with KQ_NEON_LABEL naming the
 * build in kernel names. */
#ifndef KQ_CPU_ARM_NEON_TABLE_H
#define KQ_CPU_ARM_NEON_TABLE_H

#if defined(__aarch64__)
#include "neon_kernels.h"

#define KQ_NEON_ENTRY(type_id, fn, type_name)                                                  \
    case type_id: {                                                                            \
        static const kq_ukernel k = {type_name " " KQ_NEON_LABEL " 4x4", KQ_NEON_MR,           \
                                     KQ_NEON_NC, fn};                                           \
        return &k;                                                                             \
    }

const kq_ukernel *KQ_NEON_SUFFIX(kq__neon_ukernel)(int weight_type)
{
    switch (weight_type) {
        KQ_NEON_ENTRY(KQ_TYPE_Q4_0, KQ_NEON_SUFFIX(neon_tile_q4_0), "q4_0")
        KQ_NEON_ENTRY(KQ_TYPE_Q8_0, KQ_NEON_SUFFIX(neon_tile_q8_0), "q8_0")
        KQ_NEON_ENTRY(KQ_TYPE_Q4_K, KQ_NEON_SUFFIX(neon_tile_q4_K), "q4_K")
        KQ_NEON_ENTRY(KQ_TYPE_Q5_K, KQ_NEON_SUFFIX(neon_tile_q5_K), "q5_K")
        KQ_NEON_ENTRY(KQ_TYPE_Q6_K, KQ_NEON_SUFFIX(neon_tile_q6_K), "q6_K")
    default:
        return NULL;
    }
}
#endif /* __aarch64__ */
#endif
