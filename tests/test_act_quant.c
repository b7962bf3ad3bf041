/* Activation quantization (kq__act_quantize, src/cpu/act_quant.c) against
 * its rule, written out here in scalar float: d = max|x| / 127, q =
 * round-half-even(x / d) clamped to [-127, 127], the block sums, and a
 * non-finite block giving d = NaN and q = 0. The library runs an AVX2 body
 * where the CPU has one (this test then checks it byte for byte against the
 * rule) and the plain loops elsewhere (the NEON step of make test runs this
 * test on them).
 *
 * Inputs: fresh seeded normal rows of several scales, rows whose values sit
 * exactly on the rounding ties (x / d = k + 1/2 with d a power of two, so
 * the division is exact and only half-to-even decides), all-zero blocks,
 * subnormals, and blocks holding one NaN or infinity. Output blocks are
 * poisoned (0x5A bytes) before each call. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ukernel.h"
#include "testutil.h"

enum { K = 1024 };

/* The rule for one block of n values. */
static float rule(const float *x, int8_t *q, int n)
{
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        if (!isfinite(x[j])) {
            memset(q, 0, (size_t)n);
            return NAN;
        }
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    }
    float d = amax / 127.0f;
    if (d == 0.0f) {
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    for (int j = 0; j < n; j++) {
        float v = x[j] / d; /* one IEEE division, as the library does */
        if (v > 127.0f) v = 127.0f;
        if (v < -127.0f) v = -127.0f;
        q[j] = (int8_t)nearbyintf(v); /* default mode: half to even */
    }
    return d;
}

static int same_d(float got, float want)
{
    return (isnan(got) && isnan(want)) || memcmp(&got, &want, sizeof got) == 0;
}

static void check_row(const float *x, const char *what)
{
    static kq_act32 a32[K / 32];
    static kq_act256 a256[K / 256];
    int8_t q[256];
    memset(a32, 0x5A, sizeof a32);
    memset(a256, 0x5A, sizeof a256);
    kq__act_quantize(KQ_ACT_32, x, a32, K);
    kq__act_quantize(KQ_ACT_256, x, a256, K);
    int bad32 = 0, bad256 = 0;
    for (int b = 0; b < K / 32; b++) {
        float d = rule(x + 32 * b, q, 32);
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += q[j];
        if (!same_d(a32[b].d, d) || memcmp(a32[b].q, q, 32) || a32[b].sum != s) bad32++;
    }
    for (int b = 0; b < K / 256; b++) {
        float d = rule(x + 256 * b, q, 256);
        int ok = same_d(a256[b].d, d) && !memcmp(a256[b].q, q, 256);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += q[16 * g + j];
            ok &= a256[b].bsum[g] == s;
        }
        bad256 += !ok;
    }
    /* kq_act32x8: this row as row r of a poisoned tile; the other rows'
     * bytes must keep the poison. */
    static kq_act32x8 x8[K / 32];
    const int r = (int)kt_range(0, 7);
    memset(x8, 0x5A, sizeof x8);
    kq__act_quantize_x8(x, x8, r, K);
    int bad_x8 = 0;
    for (int b = 0; b < K / 32; b++) {
        float d = rule(x + 32 * b, q, 32);
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += q[j];
        int ok = same_d(x8[b].d[r], d) && x8[b].sum[r] == s;
        for (int j = 0; j < 32; j++) ok &= x8[b].q[j / 4][4 * r + j % 4] == q[j];
        for (int o = 0; o < 8; o++) {
            if (o == r) continue;
            uint32_t poison;
            memcpy(&poison, &x8[b].sum[o], 4);
            ok &= poison == 0x5A5A5A5Au;
            for (int g = 0; g < 8; g++) ok &= (uint8_t)x8[b].q[g][4 * o] == 0x5A;
        }
        bad_x8 += !ok;
    }
    KT_CHECK(bad_x8 == 0, "%s: %d of %d kq_act32x8 blocks (row %d) differ from the rule or touch "
             "other rows", what, bad_x8, K / 32, r);
    KT_CHECK(bad32 == 0, "%s: %d of %d kq_act32 blocks differ from the rule", what, bad32, K / 32);
    KT_CHECK(bad256 == 0, "%s: %d of %d kq_act256 blocks differ from the rule", what, bad256, K / 256);
}

int main(void)
{
    kt_init("test_act_quant");
    static float x[K];
    const float scales[] = {1e-30f, 1e-3f, 1.0f, 3e4f, 1e30f};
    for (int r = 0; r < 40; r++) {
        kt_fill_normal(x, K, scales[r % 5]);
        check_row(x, "normal row");
    }
    /* ties: amax = 127 * 2^e makes d = 2^e exactly; x = (k + 1/2) d */
    for (int r = 0; r < 20; r++) {
        float d = ldexpf(1.0f, (int)kt_range(-20, 20));
        for (int i = 0; i < K; i++) {
            if (i % 32 == 0) {
                x[i] = (i / 32) % 2 ? 127.0f * d : -127.0f * d;
                continue;
            }
            x[i] = ((float)kt_range(-127, 126) + 0.5f) * d;
        }
        check_row(x, "rounding ties");
    }
    /* zeros, subnormals, and one non-finite value in some blocks */
    for (int r = 0; r < 20; r++) {
        kt_fill_normal(x, K, 1.0f);
        for (int i = 0; i < 32; i++) x[i] = 0.0f;
        for (int i = 32; i < 64; i++) x[i] = (float)kt_range(-3, 3) * FLT_MIN / 8;
        const float bad[] = {NAN, INFINITY, -INFINITY};
        x[kt_range(64, K - 1)] = bad[r % 3];
        check_row(x, "zeros, subnormals, non-finite");
    }
    return kt_finish();
}
