/* NEON micro-kernels: none yet, so the drivers take the scalar ones. */
#include "cpu/ukernel.h"

#if defined(__aarch64__)
const kq_ukernel *kq__ukernel_neon(int weight_type, int variant)
{
    (void)weight_type;
    (void)variant;
    return NULL;
}
#endif
