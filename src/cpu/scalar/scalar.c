/* Scalar micro-kernels: the portable path, and the one every other ISA's
 * results are checked against in tests; one tile shape (4 x 4) for all
 * tiers (strategy and speed: scalar_tile.h). The switch expands
 * formats/type_list.h, so a listed type without a scalar tile does not link. */
#include "scalar_tile.h"

#define SCALAR_KERNEL(id, name, block, elems, act)                                  \
    case id: {                                                                    \
        static const kq_ukernel k = {#name " scalar 4x4", KQ_SCALAR_MR, KQ_SCALAR_NC, \
                                     kq__scalar_tile_##name};                      \
        return &k;                                                                \
    }

const kq_ukernel *kq__ukernel_scalar(int weight_type, int variant)
{
    (void)variant; /* one kernel serves every tier */
    switch (weight_type) {
        KQ_QUANT_TYPES(SCALAR_KERNEL)
    default:
        return NULL; /* float weights: computed in double by the drivers */
    }
}
