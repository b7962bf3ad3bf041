/* The NEON tile kernels for every ARMv8.0 core: int8 products by widening
 * multiplies (smull/smlal) and pairwise adds into int32. Used where the CPU
 * lacks the dot-product extension. Strategy per type: neon_q*.h. */
#if defined(__aarch64__)
#define KQ_NEON_DOTPROD 0
#define KQ_NEON_LABEL "neon"
#include "neon_block32.h"
#include "neon_iq4_xs.h"
#include "neon_q2_k_q3_k.h"
#include "neon_q4_k_q5_k.h"
#include "neon_q6_k.h"
#include "neon_q8_0.h"
#include "neon_table.h"
#else
typedef int kq__neon_plain_empty; /* ISO C wants a declaration per file */
#endif
