/* The NEON tile kernels built with the dot-product extension (sdot), for
 * ARMv8.2+ cores that report it (HWCAP_ASIMDDP). CMakeLists.txt compiles
 * this file alone with -march=armv8.2-a+dotprod; neon.c calls into it only
 * after checking the CPU. Strategy per type: neon_q*.h. */
#if defined(__aarch64__)
#define KQ_NEON_DOTPROD 1
#define KQ_NEON_LABEL "neon-dotprod"
#include "neon_block32.h"
#include "neon_iq4_xs.h"
#include "neon_q2_k_q3_k.h"
#include "neon_q4_k_q5_k.h"
#include "neon_q6_k.h"
#include "neon_q8_0.h"
#include "neon_table.h"
#else
typedef int kq__neon_dotprod_empty; /* ISO C wants a declaration per file */
#endif
