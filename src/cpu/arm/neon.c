/* The NEON micro-kernel lookup: the dotprod build where the CPU has sdot,
 * the plain ARMv8.0 build otherwise. Both builds offer one 4 x 4 tile per
 * type that serves every tier (variant 0 and 1). */
#include "cpu/ukernel.h"

#if defined(__aarch64__)
#include "cpu/cpu_features.h"
#include "neon_kernels.h"

const kq_ukernel *kq__ukernel_neon(int weight_type, int variant)
{
    (void)variant;
    if (kq__cpu_features()->dotprod) return kq__neon_ukernel_dotprod(weight_type);
    return kq__neon_ukernel_plain(weight_type);
}
#endif
