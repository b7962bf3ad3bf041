/* q4_1, q5_0, q5_1, iq4_nl and mxfp4 tile kernels, AVX2: the body shared
 * with AVX-512 is x86_block32.h (its header says how the types differ).
 * Speeds: the table in docs/ and bench/RESULTS.md (kq bench, m = 1). */
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
