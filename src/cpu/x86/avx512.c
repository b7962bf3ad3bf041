/* AVX-512 micro-kernels: the lookup. The kernels are in avx512_<type>.c;
 * those using vpdpbusd (avx512_vnni_*.c, built with -mavx512vnni) are
 * handed out only where cpuid reports AVX512_VNNI; elsewhere the BW ones
 * (maddubs) run.
 *
 * Speeds in each file's header were measured on the GPU machine's host
 * ("Intel Xeon Processor", a 16-vCPU VM at 2.1 GHz nominal, with VNNI; the
 * CI machine has no AVX-512), one core, by the same program and shapes as
 * avx2.c describes: 64 weight rows x K = 4096 in L2, best of 3000 passes,
 * GB/s of weight bytes, GOP/s = 2 * rows * K * nc, all from one run. The
 * VM's timings moved by up to 25% between runs: loops of independent zmm
 * maddubs + madd + add reached 158-286 GOP/s a core, ymm ones 77-146.
 * From DRAM (nc 1, one thread, K = 4096) the VNNI kernels stream q4_K,
 * q6_K and q8_0 at 12 GB/s and q4_0 at 9.6, where a plain read reaches
 * 13-17 GB/s on one core. */
#include "cpu/x86/avx512_common.h"

#if defined(__x86_64__)

#include "cpu/cpu_features.h"
#include "kquant.h"

const kq_ukernel *kq__ukernel_avx512(int weight_type, int variant)
{
    kq__x86_half_table_init();
    const int v = variant ? 1 : 0;
    const int vnni = kq__cpu_features()->avx512vnni;
    switch (weight_type) {
#define KQ_AVX512_CASE(id, name, block, elems, act) \
    case id:                                        \
        return vnni ? &kq__avx512_vnni_##name[v] : &kq__avx512_##name[v];
        KQ_QUANT_TYPES(KQ_AVX512_CASE)
#undef KQ_AVX512_CASE
    default:
        return NULL; /* float weights */
    }
}

#endif
