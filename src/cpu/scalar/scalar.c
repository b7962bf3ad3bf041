/* Scalar micro-kernels: the portable path every ISA falls back to, one tile
 * shape (4 x 4) for all tiers (strategy and speed: scalar_tile.h). */
#include "scalar_tile.h"

#define SCALAR_KERNEL(type_id, fn, label)                                         \
    case type_id: {                                                               \
        static const kq_ukernel k = {label, KQ_SCALAR_MR, KQ_SCALAR_NC, fn};       \
        return &k;                                                                \
    }

const kq_ukernel *kq__ukernel_scalar(int weight_type, int variant)
{
    (void)variant; /* one kernel serves every tier */
    switch (weight_type) {
        SCALAR_KERNEL(KQ_TYPE_Q4_0, kq__scalar_tile_q4_0, "q4_0 scalar 4x4")
        SCALAR_KERNEL(KQ_TYPE_Q8_0, kq__scalar_tile_q8_0, "q8_0 scalar 4x4")
        SCALAR_KERNEL(KQ_TYPE_Q4_K, kq__scalar_tile_q4_K, "q4_K scalar 4x4")
        SCALAR_KERNEL(KQ_TYPE_Q5_K, kq__scalar_tile_q5_K, "q5_K scalar 4x4")
        SCALAR_KERNEL(KQ_TYPE_Q6_K, kq__scalar_tile_q6_K, "q6_K scalar 4x4")
    default:
        return NULL;
    }
}
