/* q4_1, q5_0, q5_1, iq4_nl and mxfp4 tile kernels for AVX-512 with VNNI:
 * x86_block32.h's body with one 256-bit vpdpbusd where the others take
 * vpmaddubsw + vpmaddwd. */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 1
#define KQ_X86_SUFFIX avx512_vnni
#define KQ_X86_TABLE(name) kq__avx512_vnni_##name
#define KQ_X86_LABEL "avx512-vnni"
#include "cpu/x86/x86_block32.h"

B32_TYPE(q4_1, KQ_B32_SPEC_Q4_1)
B32_TYPE(q5_0, KQ_B32_SPEC_Q5_0)
B32_TYPE(q5_1, KQ_B32_SPEC_Q5_1)
B32_TYPE(iq4_nl, KQ_B32_SPEC_IQ4_NL)
B32_TYPE(mxfp4, KQ_B32_SPEC_MXFP4)
#endif
