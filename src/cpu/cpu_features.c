/* Run-time CPU feature detection: cpuid + xgetbv on x86-64, the auxiliary
 * vector on ARM64. Compilers' own __builtin_cpu_supports does not know every
 * feature we need (clang 14 lacks "avxvnni"), so we read the bits ourselves. */
#include "cpu_features.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static void detect(kq_cpu_features *f)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave) return;
    unsigned long long xcr0 = xgetbv0();
    int ymm_ok = (xcr0 & 0x6) == 0x6;    /* SSE and AVX state */
    int zmm_ok = (xcr0 & 0xe6) == 0xe6;  /* plus opmask and both ZMM halves */
    if (!ymm_ok || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    f->avx2 = (b >> 5) & 1;
    f->fma = fma;
    f->f16c = f16c;
    if (zmm_ok) {
        f->avx512f = (b >> 16) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        f->avx512vnni = (c >> 11) & 1;
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f->avxvnni = (a >> 4) & 1;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

static void detect(kq_cpu_features *f)
{
    unsigned long hw = getauxval(AT_HWCAP);
    /* Advanced SIMD is part of every ARMv8-A application core, but a kernel
     * may hide it (and dotprod with it). */
    f->neon = (hw & HWCAP_ASIMD) != 0;
    f->dotprod = f->neon && (hw & HWCAP_ASIMDDP) != 0;
}
#else
static void detect(kq_cpu_features *f) { (void)f; }
#endif

static kq_cpu_features g_features;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static char g_model[96] = "CPU";

/* The first "model name" (x86) or "Model"/"CPU part" line (ARM) of cpuinfo. */
static void read_model_name(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) && strncmp(line, "Model", 5)) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        size_t n = strcspn(v, "\n");
        if (n == 0) continue;
        snprintf(g_model, sizeof g_model, "%.*s", (int)n, v);
        break;
    }
    fclose(f);
}

static void detect_once(void)
{
    detect(&g_features);
    read_model_name();
}

const char *kq__cpu_model_name(void)
{
    pthread_once(&g_once, detect_once);
    return g_model;
}

const kq_cpu_features *kq__cpu_features(void)
{
    pthread_once(&g_once, detect_once);
    return &g_features;
}

/* sysfs spells sizes "32768K" or "1M". */
static unsigned long long parse_size(const char *s)
{
    unsigned long long v = 0;
    char unit = 0;
    if (sscanf(s, "%llu%c", &v, &unit) < 1) return 0;
    if (unit == 'K') v <<= 10;
    if (unit == 'M') v <<= 20;
    return v;
}

unsigned long long kq__cpu_llc_bytes(void)
{
    unsigned long long best = 0;
    int best_level = 0;
    for (int i = 0; i < 8; i++) {
        char path[96], buf[32];
        int level = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r"))) continue;
        unsigned long long size = fgets(buf, sizeof buf, f) ? parse_size(buf) : 0;
        fclose(f);
        if (level > best_level || (level == best_level && size > best)) best = size, best_level = level;
    }
    return best ? best : 32ull << 20;
}
