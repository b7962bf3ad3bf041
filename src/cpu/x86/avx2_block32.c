/* q4_1, q5_0, q5_1, iq4_nl and mxfp4 tile kernels, AVX2: the body shared
 * with AVX-512 is x86_block32.h (its header says how the types differ).
 *
 * Measured (avx2.c says how; best of 400 passes, machine loaded by other
 * jobs), q4_1 / q5_0 / q5_1 / iq4_nl / mxfp4: nc 1: 14.2 / 11.8 / 12.2 /
 * 12.0 / 11.6 GB/s of weights (q4_0 12.8 in the same run): like q4_0, each
 * 32-value block pays its scale conversion and fma, about 13 vector
 * operations, which bounds nc 1 near a core's DRAM bandwidth; nc 4: 62 / 56
 * / 51 / 62 / 63 GOP/s; nc 8: 51 / 61 / 57 / 65 / 66 GOP/s (q4_0 57 / 72;
 * q4_1 and q5_1 carry a second accumulator per activation row for the
 * min). */
#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 0
#define KQ_X86_SUFFIX avx2
#define KQ_X86_TABLE(name) kq__avx2_##name
#define KQ_X86_LABEL "avx2"
#include "cpu/x86/x86_block32.h"

B32_TYPE(q4_1, KQ_B32_SPEC_Q4_1)
B32_TYPE(q5_0, KQ_B32_SPEC_Q5_0)
B32_TYPE(q5_1, KQ_B32_SPEC_Q5_1)
B32_TYPE(iq4_nl, KQ_B32_SPEC_IQ4_NL)
B32_TYPE(mxfp4, KQ_B32_SPEC_MXFP4)
#endif
