/* What the processor running us can execute, read once at run time, so one
 * binary carries several instruction-set paths and picks the widest. */
#ifndef KQ_CPU_FEATURES_H
#define KQ_CPU_FEATURES_H

typedef struct kq_cpu_features {
    /* x86-64; each needs the OS to save the wider registers (XGETBV). */
    int avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512vnni;
    int avxvnni; /* VEX-encoded vpdpbusd on 256-bit registers */
    /* ARM64 */
    int neon, dotprod;
} kq_cpu_features;

const kq_cpu_features *kq__cpu_features(void);

/* Size in bytes of the last-level cache (L3 or the largest level found),
 * from sysfs; 32 MiB when nothing can be read. */
unsigned long long kq__cpu_llc_bytes(void);

/* "AMD EPYC 9654 96-Core Processor" or similar; "CPU" when unknown. */
const char *kq__cpu_model_name(void);

#endif
