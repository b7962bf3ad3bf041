/* q4_1, q5_0, q5_1, iq4_nl and mxfp4 tile kernels for AVX-512 without VNNI:
 * x86_block32.h's 256-bit body built with AVX-512 (EVEX encodings, 32
 * vector registers). At m = 1 these types are bound by memory, and a
 * 32-value block is one ymm; the wide work of large m is vpmaddubsw either
 * way. */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_VNNI 0
#define KQ_X86_SUFFIX avx512
#define KQ_X86_TABLE(name) kq__avx512_##name
#define KQ_X86_LABEL "avx512"
#include "cpu/x86/x86_block32.h"

B32_TYPE(q4_1, KQ_B32_SPEC_Q4_1)
B32_TYPE(q5_0, KQ_B32_SPEC_Q5_0)
B32_TYPE(q5_1, KQ_B32_SPEC_Q5_1)
B32_TYPE(iq4_nl, KQ_B32_SPEC_IQ4_NL)
B32_TYPE(mxfp4, KQ_B32_SPEC_MXFP4)
#endif
