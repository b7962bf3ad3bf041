/* CPU ceilings: streaming read bandwidth over a buffer far beyond the last-
 * level cache, and the int8 dot-product peak of the widest instruction set
 * present, each run on `threads` threads at once.
 *
 * The dot-product loops keep all operands in registers with enough
 * independent accumulators to cover the instruction latency (5 cycles at 2
 * per cycle needs 10); an empty asm statement makes one operand opaque each
 * iteration so the compiler cannot hoist the products out of the loop. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ceilings.h"
#include "core/core.h"
#include "core/error.h"
#include "cpu_features.h"
#include "parallel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>

#include "arm/neon_peak.h"
#endif

/* ---------------------------------------------------------------- reading */

/* The read ceiling is what the kernels could reach if they did nothing but
 * read, so it is measured reading the way they read: every thread at once,
 * each over its own contiguous share (the kernels split weight rows among
 * threads), with software prefetch the same distance ahead (the x86
 * kernels' KQ_X86_PF_BYTES), as one stream per thread and as four
 * interleaved ones (a tile of weight rows), keeping the best pass of the
 * best variant. A median of plain reads came out below what the kernels
 * achieved (m = 1 at 105-128% of it on a 2-core AVX2 machine): a ceiling
 * the kernels beat measures the probe, not the memory. */
/* The same value as KQ_X86_PF_BYTES in x86/avx2_common.h (that header needs
 * AVX2 code generation, which this file must not assume). */
#define READ_PF_BYTES 1792
#define READ_MAX_STREAMS 4

typedef struct read_job {
    const uint8_t *buf;
    size_t bytes;
    int parts;
    int streams; /* interleaved streams per thread */
    uint64_t sink[64];
} read_job;

/* 128 bytes of each of `streams` streams in turn, `step` bytes apart. */
static uint64_t read_portable(const uint8_t *p, size_t n, int streams, size_t step)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 128 <= n; i += 128)
        for (int s = 0; s < streams; s++) {
            const uint64_t *q = (const uint64_t *)(p + (size_t)s * step + i);
            __builtin_prefetch((const char *)q + READ_PF_BYTES);
            __builtin_prefetch((const char *)q + READ_PF_BYTES + 64);
            for (int k = 0; k < 16; k += 4) a ^= q[k], b ^= q[k + 1], c ^= q[k + 2], d ^= q[k + 3];
        }
    return a ^ b ^ c ^ d;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n, int streams,
                                                          size_t step)
{
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= n; i += 128)
        for (int s = 0; s < streams; s++) {
            const uint8_t *q = p + (size_t)s * step + i;
            _mm_prefetch((const char *)q + READ_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)q + READ_PF_BYTES + 64, _MM_HINT_T0);
            a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)q));
            b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(q + 32)));
            c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(q + 64)));
            d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(q + 96)));
        }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a);
    return out[0] ^ out[1] ^ out[2] ^ out[3];
}
#endif

/* A thread's share, a multiple of 128 bytes per stream. */
static size_t share_bytes(const read_job *j)
{
    return j->bytes / (size_t)j->parts / READ_MAX_STREAMS / 128 * 128 * READ_MAX_STREAMS;
}

/* One 256 KiB unit, as the drivers hand out at m = 1. */
#define READ_UNIT (256u << 10)

static uint64_t read_span(const uint8_t *p, size_t n, int streams, size_t step)
{
#if defined(__x86_64__)
    if (kq__cpu_features()->avx2) return read_avx2(p, n, streams, step);
#endif
    return read_portable(p, n, streams, step);
}

static void read_part(void *ctx, int64_t begin, int64_t end)
{
    read_job *j = ctx;
    size_t chunk = share_bytes(j), step = chunk / (size_t)(j->streams > 0 ? j->streams : 1);
    if (j->streams == 0) {
        /* Units dealt round-robin: thread t reads units t, t + T, ..., so the
         * threads read neighbouring memory at any moment, as the drivers'
         * shared unit counter makes them do. */
        size_t units = chunk * (size_t)j->parts / READ_UNIT;
        for (int64_t t = begin; t < end; t++)
            for (size_t u = (size_t)t; u < units; u += (size_t)j->parts)
                j->sink[t % 64] ^= read_span(j->buf + u * READ_UNIT, READ_UNIT, 1, READ_UNIT);
        return;
    }
    for (int64_t t = begin; t < end; t++) {
        const uint8_t *p = j->buf + (size_t)t * chunk;
#if defined(__x86_64__)
        if (kq__cpu_features()->avx2) {
            j->sink[t % 64] ^= read_avx2(p, step, j->streams, step);
            continue;
        }
#endif
        j->sink[t % 64] ^= read_portable(p, step, j->streams, step);
    }
}

static void fill_part(void *ctx, int64_t begin, int64_t end)
{
    read_job *j = ctx;
    size_t chunk = share_bytes(j);
    for (int64_t t = begin; t < end; t++) {
        uint64_t *q = (uint64_t *)(j->buf + (size_t)t * chunk);
        uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
        for (size_t i = 0; i < chunk / 8; i++) q[i] = (x += 0x9E3779B97F4A7C15ull);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define DOT_PASSES 40
#define READ_PASSES 3

/* Reads are timed a segment at a time, each about what one call of a large
 * op reads: a kernel call takes a millisecond or two, and a shorter timing
 * is less often cut by another process sharing the cores, so a ceiling
 * timed over whole 512 MiB passes came out far below what the calls
 * reached on a busy machine. */
#define READ_SEGMENT (32u << 20)

static kq_status measure_read(int threads, unsigned long long llc, double *gbs)
{
    /* Eight times the last-level cache, so no segment is still cached when
     * its turn comes again; at least 512 MiB. */
    size_t bytes = (size_t)llc * 8;
    if (bytes < (512u << 20)) bytes = 512u << 20;
    if (bytes > (2ull << 30)) bytes = 2ull << 30;
    read_job j;
    memset(&j, 0, sizeof j);
    j.bytes = bytes;
    j.parts = threads;
    /* Room past the end for the prefetches that run ahead of the reads. */
    const uint8_t *base = aligned_alloc(128, bytes + READ_PF_BYTES + 128);
    if (!base)
        return kq__fail(KQ_ERR_NO_MEMORY, "ceilings: cannot allocate a %zu MiB read buffer",
                        bytes >> 20);
    j.buf = base;
    /* Each thread first touches the part it reads, so pages land near it. */
    kq__parallel_for(threads, threads, fill_part, &j);
    size_t seg = READ_SEGMENT < bytes ? READ_SEGMENT : bytes;
    double best = 0.0;
    /* 0: 256 KiB units dealt round-robin; 1: one contiguous share per
     * thread; 4: four interleaved streams within each share. */
    static const int variants[] = {0, 1, READ_MAX_STREAMS};
    for (int v = 0; v < 3; v++) {
        j.streams = variants[v];
        j.buf = base;
        j.bytes = seg;
        size_t per_seg = share_bytes(&j) * (size_t)threads;
        if (!j.streams) per_seg = per_seg / READ_UNIT * READ_UNIT;
        kq__parallel_for(threads, threads, read_part, &j); /* warm the threads */
        for (int p = 0; p < READ_PASSES; p++)
            for (size_t off = 0; off + seg <= bytes; off += seg) {
                j.buf = base + off;
                double t0 = kq__now_seconds();
                kq__parallel_for(threads, threads, read_part, &j);
                double g = (double)per_seg / (kq__now_seconds() - t0) * 1e-9;
                if (g > best) best = g;
            }
    }
    *gbs = best;
    free((void *)base);
    return KQ_OK;
}

/* ---------------------------------------------------------------- int8 dot */

typedef uint64_t (*dot_loop_fn)(int64_t iters);

typedef struct dot_job {
    dot_loop_fn fn;
    int64_t iters;
    uint64_t sink[64];
} dot_job;

#if defined(__x86_64__)
#define ACCS 12
/* Ops per iteration: ACCS instructions of 32 (ymm) or 64 (zmm) u8 x s8
 * products, 2 ops each. */
__attribute__((target("avx512f,avx512vnni"))) static uint64_t dot_avx512vnni(int64_t iters)
{
    __m512i acc[ACCS], a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x05F60708);
    for (int j = 0; j < ACCS; j++) acc[j] = _mm512_set1_epi32(j);
    for (int64_t i = 0; i < iters; i++) {
        __asm__ volatile("" : "+v"(a));
        for (int j = 0; j < ACCS; j++) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
    }
    for (int j = 1; j < ACCS; j++) acc[0] = _mm512_add_epi32(acc[0], acc[j]);
    return (uint64_t)_mm512_reduce_add_epi32(acc[0]);
}

__attribute__((target("avxvnni"))) static uint64_t dot_avxvnni(int64_t iters)
{
    __m256i acc[ACCS], a = _mm256_set1_epi32(0x01020304), b = _mm256_set1_epi32(0x05F60708);
    for (int j = 0; j < ACCS; j++) acc[j] = _mm256_set1_epi32(j);
    for (int64_t i = 0; i < iters; i++) {
        __asm__ volatile("" : "+x"(a));
        for (int j = 0; j < ACCS; j++) acc[j] = _mm256_dpbusd_avx_epi32(acc[j], a, b);
    }
    for (int j = 1; j < ACCS; j++) acc[0] = _mm256_add_epi32(acc[0], acc[j]);
    return (uint64_t)_mm256_extract_epi32(acc[0], 0);
}

/* AVX2 has no int8 dot product into int32. Its instruction is vpmaddubsw:
 * 32 u8 x s8 products summed in pairs to int16. Kernels widen to int32 only
 * every few blocks, so the ceiling is vpmaddubsw's own throughput, with the
 * int16 sums kept by vpaddw (another port). The sums wrap: only time counts. */
__attribute__((target("avx2"))) static uint64_t dot_avx2(int64_t iters)
{
    /* Each accumulator has its own b: equal products would be computed once. */
    __m256i acc[ACCS], b[ACCS], a = _mm256_set1_epi32(0x01020304);
    for (int j = 0; j < ACCS; j++) acc[j] = _mm256_set1_epi16((short)j), b[j] = _mm256_set1_epi8((char)(j + 3));
    for (int64_t i = 0; i < iters; i++) {
        __asm__ volatile("" : "+x"(a));
        for (int j = 0; j < ACCS; j++) acc[j] = _mm256_add_epi16(acc[j], _mm256_maddubs_epi16(a, b[j]));
    }
    for (int j = 1; j < ACCS; j++) acc[0] = _mm256_add_epi16(acc[0], acc[j]);
    return (uint64_t)_mm256_extract_epi16(acc[0], 0);
}
#elif defined(__aarch64__)
#define ACCS KQ_NEON_PEAK_ACCS
/* The sdot loop: kq__neon_dotprod_peak_loop (arm/neon_dotprod_peak.c). */

/* Without dotprod: widening multiplies of 8 lanes, pairwise-added into int32. */
static uint64_t dot_neon(int64_t iters)
{
    int32x4_t acc[ACCS];
    int8x16_t a = vdupq_n_s8(3), b = vdupq_n_s8(-5);
    for (int j = 0; j < ACCS; j++) acc[j] = vdupq_n_s32(j);
    for (int64_t i = 0; i < iters; i++) {
        __asm__ volatile("" : "+w"(a));
        for (int j = 0; j < ACCS; j += 2) {
            int8x16_t bj = vaddq_s8(b, vdupq_n_s8((int8_t)j)); /* distinct, so none is shared */
            acc[j] = vpadalq_s16(acc[j], vmull_s8(vget_low_s8(a), vget_low_s8(bj)));
            acc[j + 1] = vpadalq_s16(acc[j + 1], vmull_high_s8(a, bj));
        }
    }
    for (int j = 1; j < ACCS; j++) acc[0] = vaddq_s32(acc[0], acc[j]);
    return (uint64_t)vaddvq_s32(acc[0]);
}
#endif

/* Portable: what a scalar int8 loop can do, for machines with no SIMD path. */
#define SCALAR_ACCS 8
static uint64_t dot_scalar(int64_t iters)
{
    int32_t acc[SCALAR_ACCS] = {0};
    int32_t a = 3, b = -5;
    for (int64_t i = 0; i < iters; i++) {
        __asm__ volatile("" : "+r"(a));
        for (int j = 0; j < SCALAR_ACCS; j++) acc[j] += (int8_t)(a + j) * (int8_t)b;
    }
    int32_t s = 0;
    for (int j = 0; j < SCALAR_ACCS; j++) s += acc[j];
    return (uint64_t)(uint32_t)s;
}

static void dot_part(void *ctx, int64_t begin, int64_t end)
{
    dot_job *j = ctx;
    for (int64_t t = begin; t < end; t++) j->sink[t % 64] ^= j->fn(j->iters);
}

/* The widest int8 dot product the CPU runs, and its ops per loop iteration. */
static dot_loop_fn pick_dot(double *ops_per_iter, const char **what)
{
    const kq_cpu_features *f = kq__cpu_features();
    (void)f;
#if defined(__x86_64__)
    if (f->avx512f && f->avx512vnni) {
        *ops_per_iter = ACCS * 64 * 2, *what = "int8 dot, avx512-vnni vpdpbusd";
        return dot_avx512vnni;
    }
    if (f->avxvnni) {
        *ops_per_iter = ACCS * 32 * 2, *what = "int8 dot, avx-vnni vpdpbusd";
        return dot_avxvnni;
    }
    if (f->avx2) {
        *ops_per_iter = ACCS * 32 * 2, *what = "int8 dot, avx2 vpmaddubsw";
        return dot_avx2;
    }
#elif defined(__aarch64__)
    if (f->dotprod) {
        *ops_per_iter = ACCS * 16 * 2, *what = "int8 dot, neon sdot";
        return kq__neon_dotprod_peak_loop;
    }
    *ops_per_iter = ACCS / 2 * 16 * 2, *what = "int8 dot, neon smull";
    return dot_neon;
#endif
    *ops_per_iter = SCALAR_ACCS * 2, *what = "int8 dot, scalar";
    return dot_scalar;
}

static void measure_dot(int threads, double *tops, const char **what)
{
    double ops_per_iter;
    dot_job j;
    memset(&j, 0, sizeof j);
    j.fn = pick_dot(&ops_per_iter, what);
    /* Size the loop from a short trial so each timed pass lasts ~5 ms: as
     * for reading, short timings are the ones another process on the same
     * cores leaves whole, and the fastest of many is the peak. */
    j.iters = 1 << 16;
    double t0 = kq__now_seconds();
    kq__parallel_for(threads, threads, dot_part, &j);
    double trial = kq__now_seconds() - t0;
    if (trial > 0) j.iters = (int64_t)((double)j.iters * 0.005 / trial) + 1;
    double t[DOT_PASSES];
    for (int p = 0; p < DOT_PASSES; p++) {
        t0 = kq__now_seconds();
        kq__parallel_for(threads, threads, dot_part, &j);
        t[p] = kq__now_seconds() - t0;
    }
    /* The fastest pass, as for reading: a peak the kernels can beat (they
     * did under load, when the median pass shared its cores) is no peak. */
    qsort(t, DOT_PASSES, sizeof t[0], cmp_double);
    *tops = ops_per_iter * (double)j.iters * threads / t[0] * 1e-12;
}

kq_status kq__cpu_ceilings(int threads, kq_ceilings *out)
{
    memset(out, 0, sizeof *out);
    out->llc_bytes = kq__cpu_llc_bytes();
    kq_status st = measure_read(threads, out->llc_bytes, &out->read_gbs);
    if (st) return st;
    const char *what = "";
    measure_dot(threads, &out->int8_tops, &what);
    out->compute_tops = out->int8_tops;
    snprintf(out->compute_what, sizeof out->compute_what, "%s", what);
    return KQ_OK;
}
