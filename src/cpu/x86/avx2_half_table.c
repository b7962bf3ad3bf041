/* Every fp16 bit pattern's float value, for the 32-value block kernels.
 *
 * Why a table: at m = 1 a q4_0 / q5_0 / iq4_nl block of 32 weights costs
 * about 8 vector operations, and converting its fp16 scale through F16C
 * (a general-register load, vmovd, vcvtph2ps, vbroadcastss) added three of
 * them. A broadcast load from this table costs none: on the CI-class Zen 3
 * core a q4_0 row in L2 went from 1.28 to 1.09 ns a block. Only the
 * exponent range one tensor's scales use is touched, a few cache lines.
 *
 * Filled once, with F16C (this file is built with -mf16c), so every entry
 * is the bits vcvtph2ps gives: the kernels' results do not change. mxfp4's
 * E8M0 scales get the same treatment (256 entries of kq_e8m0_half). Filled
 * from the AVX2 and AVX-512 kernel lookups, which are the only ways to the
 * kernels that read it. */
#include "cpu/x86/avx2_common.h"

#if defined(__x86_64__)

#include <pthread.h>

#include "formats/blocks.h"

float kq__x86_half_table[65536];
float kq__x86_e8m0_table[256];

static pthread_once_t g_half_once = PTHREAD_ONCE_INIT;

static void fill_half_table(void)
{
    for (unsigned h = 0; h < 65536u; h += 8) {
        const __m128i bits = _mm_add_epi16(_mm_set1_epi16((short)h), _mm_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_storeu_ps(&kq__x86_half_table[h], _mm256_cvtph_ps(bits));
    }
    for (int e = 0; e < 256; e++) kq__x86_e8m0_table[e] = kq_e8m0_half((uint8_t)e);
}

void kq__x86_half_table_init(void) { pthread_once(&g_half_once, fill_half_table); }

#endif
