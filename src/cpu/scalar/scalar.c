/* Scalar micro-kernels: none yet (the CPU driver issue adds them). */
#include "cpu/ukernel.h"

const kq_ukernel *kq__ukernel_scalar(int weight_type, int variant)
{
    (void)weight_type;
    (void)variant;
    return NULL;
}
