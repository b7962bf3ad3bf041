/* The kernel table of one NEON build: included last by neon_plain.c and
 * neon_dotprod.c, after the tile bodies, with KQ_NEON_LABEL naming the
 * build in kernel names. */
#ifndef KQ_CPU_ARM_NEON_TABLE_H
#define KQ_CPU_ARM_NEON_TABLE_H

#if defined(__aarch64__)
#include "neon_kernels.h"

#include "formats/type_list.h"

/* One entry per row of formats/type_list.h: a type whose tile
 * (neon_tile_<name>) is missing does not compile. */
#define KQ_NEON_ENTRY(id, name, block, elems, act)                                             \
    case id: {                                                                                 \
        static const kq_ukernel k = {#name " " KQ_NEON_LABEL " 4x4", KQ_NEON_MR, KQ_NEON_NC,   \
                                     KQ_NEON_SUFFIX(neon_tile_##name)};                        \
        return &k;                                                                             \
    }

const kq_ukernel *KQ_NEON_SUFFIX(kq__neon_ukernel)(int weight_type)
{
    switch (weight_type) {
        KQ_QUANT_TYPES(KQ_NEON_ENTRY)
    default:
        return NULL; /* float weights */
    }
}
#endif /* __aarch64__ */
#endif
