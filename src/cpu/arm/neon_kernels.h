/* The two builds of the NEON tile kernels (neon_common.h says how they
 * differ) and what each offers, for the lookup in neon.c. */
#ifndef KQ_CPU_ARM_NEON_KERNELS_H
#define KQ_CPU_ARM_NEON_KERNELS_H

#include "cpu/ukernel.h"

#if defined(__aarch64__)
/* The kernel for a weight type (one serves every tier), or NULL. The
 * dotprod build runs only on CPUs with the dot-product extension. */
const kq_ukernel *kq__neon_ukernel_dotprod(int weight_type);
const kq_ukernel *kq__neon_ukernel_plain(int weight_type);
#endif

#endif
