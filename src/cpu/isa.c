/* Instruction-set selection and the micro-kernel lookup.
 *
 * An ISA is usable when this build carries its code (its folder compiled for
 * this architecture) and cpuid / the ARM hwcaps say the CPU runs it. The
 * backend picks the widest usable one unless KQ_CPU_ISA names another; a
 * named ISA that is unknown or unusable fails the open, so a test that asks
 * for a path never silently measures a different one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cpu_features.h"
#include "ukernel.h"

static const char *const g_isa_names[KQ_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

const char *kq__isa_name(kq_isa isa)
{
    return (unsigned)isa < KQ_ISA_COUNT ? g_isa_names[isa] : "unknown";
}

int kq__isa_available(kq_isa isa)
{
    const kq_cpu_features *f = kq__cpu_features();
    switch (isa) {
    case KQ_ISA_SCALAR:
        return 1;
#if defined(__x86_64__)
    case KQ_ISA_AVX2:
        return f->avx2 && f->fma && f->f16c;
    case KQ_ISA_AVX512:
        /* The AVX-512 kernels also use AVX2/FMA/F16C instructions. */
        return f->avx512f && f->avx512bw && f->avx512vl && f->avx2 && f->fma && f->f16c;
#endif
#if defined(__aarch64__)
    case KQ_ISA_NEON:
        return f->neon;
#endif
    default:
        (void)f;
        return 0;
    }
}

int kq__isa_select(char *err, size_t cap)
{
    const char *want = getenv("KQ_CPU_ISA");
    if (want && *want) {
        for (int i = 0; i < KQ_ISA_COUNT; i++) {
            if (strcasecmp(want, g_isa_names[i]) != 0) continue;
            if (kq__isa_available((kq_isa)i)) return i;
            if (err)
                snprintf(err, cap,
                         "KQ_CPU_ISA=%s: this CPU or build cannot run %s code", want,
                         g_isa_names[i]);
            return -1;
        }
        if (err)
            snprintf(err, cap, "KQ_CPU_ISA=%s: unknown instruction set (known: scalar, avx2, "
                               "avx512, neon)", want);
        return -1;
    }
    for (int i = KQ_ISA_COUNT - 1; i > 0; i--)
        if (kq__isa_available((kq_isa)i)) return i;
    return KQ_ISA_SCALAR;
}

/* The ISA's own lookup; NULL where it has no kernel for (type, variant). */
static const kq_ukernel *isa_lookup(kq_isa isa, int weight_type, int variant)
{
    switch (isa) {
    case KQ_ISA_SCALAR:
        return kq__ukernel_scalar(weight_type, variant);
#if defined(__x86_64__)
    case KQ_ISA_AVX2:
        return kq__ukernel_avx2(weight_type, variant);
    case KQ_ISA_AVX512:
        return kq__ukernel_avx512(weight_type, variant);
#endif
#if defined(__aarch64__)
    case KQ_ISA_NEON:
        return kq__ukernel_neon(weight_type, variant);
#endif
    default:
        return NULL;
    }
}

/* Falls back from variant 1 to variant 0 of the same ISA only (variant 2
 * has no fallback: the dense drivers then take variant 1). Every ISA's
 * table expands type_list.h, so a quantized type without a kernel is a
 * compile error there; NULL here (a float type, or an ISA this CPU cannot
 * run) makes the backend's open fail rather than quietly run scalar code. */
const kq_ukernel *kq__ukernel(kq_isa isa, int weight_type, int variant)
{
    if (!kq__isa_available(isa)) return NULL;
    if (variant == 2) {
#if defined(__x86_64__)
        if (isa == KQ_ISA_AVX2) return kq__ukernel_avx2_x8(weight_type);
#endif
        return NULL;
    }
    const kq_ukernel *k = isa_lookup(isa, weight_type, variant);
    if (!k && variant != 0) k = isa_lookup(isa, weight_type, 0);
    return k;
}
