/* q2_K, q3_K and iq4_xs tile kernels for AVX-512: the 256-bit bodies of
 * x86_q2_k_q3_k.h and x86_iq4_xs.h built with AVX-512 (EVEX encodings, 32
 * vector registers). Both tables (with and without VNNI) hold these: every
 * 16- or 32-value sub-block has its own scale, which vpmaddubsw's int16
 * pairs take in one vpmaddwd; vpdpbusd's int32 sums would need a pack or a
 * 32-bit multiply per sub-block to take it, which saves no operations. */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)
#define KQ_X86_SUFFIX avx512
#define KQ_X86_TABLE(name) kq__avx512_##name
#define KQ_X86_LABEL "avx512"
#include "cpu/x86/x86_iq4_xs.h"
#include "cpu/x86/x86_q2_k_q3_k.h"

KQ_X86_TILE256_TABLE(q2_K, Q23_FN(q2k_tile_), Q23_FN(q2k_avx512_))
KQ_X86_TILE256_TABLE(q3_K, Q23_FN(q3k_tile_), Q23_FN(q3k_avx512_))
KQ_X86_TILE256_TABLE(iq4_xs, IQ4XS_FN(iq4xs_tile_), IQ4XS_FN(iq4xs_avx512_))

#define VNNI_TABLE(name, fn)                            \
    const kq_ukernel kq__avx512_vnni_##name[2] = {      \
        {#name " avx512 4x4", 4, 4, fn},                \
        {#name " avx512 4x8", 4, 8, fn},                \
    };
VNNI_TABLE(q2_K, Q23_FN(q2k_avx512_))
VNNI_TABLE(q3_K, Q23_FN(q3k_avx512_))
VNNI_TABLE(iq4_xs, IQ4XS_FN(iq4xs_avx512_))
#endif
