/* The formats layer: fp16/bf16 conversions (exhaustive where possible,
 * against independent formulas and the compiler's _Float16), block geometry
 * and the type table, quantize -> dequantize error per type, Q8_K semantics,
 * edge-case blocks, unaligned buffers, and every argument error of the public
 * type and conversion calls (status and message). Bit-exactness against the
 * gguf Python package is tests/python/test_formats_oracle.py. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/type_list.h"
#include "kquant.h"
#include "testutil.h"

/* The ids of formats/type_list.h, for the loops that must cover every
 * quantized weight type (a new type is covered without editing them). */
#define QUANT_ID(id, name, block, elems, act) id,

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------ fp16 */

/* Independent decode of a half: sign * 2^(e-15) * (1 + m/1024), or
 * 2^-14 * m/1024 for subnormals, computed with ldexp in double. */
static double half_formula(uint16_t h)
{
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(1024 + m), e - 25);
    return s ? -v : v;
}

/* Independent f32 -> half rounding in double: the nearest multiple of the
 * half spacing at f's binade (2^-24 below 2^-14), ties to even through
 * nearbyint, overflow to inf at 65520. Returns the rounded value. */
static double half_round_formula(float f)
{
    const double a = fabs((double)f);
    double r;
    if (a >= 65520.0) {
        r = INFINITY;
    } else if (a == 0) {
        r = 0;
    } else {
        int e;
        frexp(a, &e); /* a in [2^(e-1), 2^e) */
        int lo = e - 1;
        if (lo < -14) lo = -14;
        const double q = ldexp(1.0, lo - 10);
        r = nearbyint(a / q) * q;
    }
    return signbit(f) ? -r : r;
}

static int is_half_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

static void check_fp16(void)
{
    /* decode: all 65536 */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float got = kq_fp16_to_f32((uint16_t)h);
        const double want = half_formula((uint16_t)h);
        int ok;
        if (isnan(want))
            ok = isnan(got) && (fbits(got) >> 31) == (h >> 15) &&
                 ((fbits(got) >> 13) & 0x3ff) == (h & 0x3ff); /* payload kept */
        else
            ok = (double)got == want && !!signbit(got) == !!signbit(want);
        if (!ok && bad++ < 5)
            KT_CHECK(0, "kq_fp16_to_f32(0x%04x) = %a (0x%08x), formula %a", h, (double)got,
                     fbits(got), want);
    }
    KT_CHECK(bad == 0, "fp16 decode: %d of 65536 differ from the ldexp formula", bad);

    /* encode: every half round-trips exactly; NaN halves stay NaN */
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const uint16_t back = kq_f32_to_fp16(kq_fp16_to_f32((uint16_t)h));
        const int ok = is_half_nan((uint16_t)h) ? is_half_nan(back) && (back >> 15) == (h >> 15)
                                                : back == h;
        if (!ok && bad++ < 5) KT_CHECK(0, "fp16 round trip 0x%04x -> 0x%04x", h, back);
    }
    KT_CHECK(bad == 0, "fp16 round trip: %d of 65536 fail", bad);

    /* encode: boundary and random floats against the rounding formula */
    float edge[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.996f, 65520.0f, -65520.0f, 65536.0f,
                    FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, 0x1p-14f, 0x1p-24f, 0x1p-25f,
                    0x1.000002p-25f, 0x1.fffffep-26f, 0x1.8p-24f, 0x1.8p-23f, 0x1.4p-24f,
                    0x1.ffcp-15f, 0x1.ffep-15f, 0x1.fffp-15f, FLT_MIN, 0x1p-149f, 1e-10f,
                    0x1.002p0f, 0x1.006p0f, 0x1.001p0f, 0x1.0010002p0f};
    enum { N_RANDOM = 1 << 22 };
    const int n_edge = (int)(sizeof edge / sizeof edge[0]);
    bad = 0;
    int bad_f16 = 0;
    for (int64_t i = 0; i < n_edge + 3 * 65536 + N_RANDOM; i++) {
        float f;
        if (i < n_edge) {
            f = edge[i];
        } else if (i < n_edge + 3 * 65536) {
            /* midpoints between neighbouring halves, and one float ulp either side */
            const int64_t k = i - n_edge;
            const uint16_t h = (uint16_t)(k / 3);
            if ((h & 0x7c00) == 0x7c00) continue;
            const float a = kq_fp16_to_f32(h), b = kq_fp16_to_f32((uint16_t)(h + 1));
            if ((h & 0x7fff) == 0x7bff) continue; /* next is inf: covered by edges */
            float mid = (float)(((double)a + (double)b) / 2);
            if (k % 3 == 1) mid = nextafterf(mid, INFINITY);
            if (k % 3 == 2) mid = nextafterf(mid, -INFINITY);
            f = mid;
        } else {
            /* random bit patterns, half of them squeezed into the half range */
            uint32_t u = (uint32_t)kt_u64();
            if (i & 1) u = (u & 0x807fffffu) | ((uint32_t)kt_range(100, 145) << 23);
            f = bitsf(u);
        }
        const uint16_t h = kq_f32_to_fp16(f);
        int ok;
        if (isnan(f)) {
            ok = is_half_nan(h) && (h >> 15) == (fbits(f) >> 31);
        } else {
            const double want = half_round_formula(f);
            const float got = kq_fp16_to_f32(h);
            ok = (double)got == want && !!signbit(got) == !!signbit(want);
        }
        if (!ok && bad++ < 5)
            KT_CHECK(0, "kq_f32_to_fp16(%a = 0x%08x) = 0x%04x (%a), formula %a", (double)f, fbits(f),
                     h, (double)kq_fp16_to_f32(h), half_round_formula(f));
#ifdef __FLT16_MAX__
        const _Float16 c = (_Float16)f;
        uint16_t cb;
        memcpy(&cb, &c, sizeof cb);
        const int ok16 = isnan(f) ? is_half_nan(cb) == is_half_nan(h) : cb == h;
        if (!ok16 && bad_f16++ < 5)
            KT_CHECK(0, "kq_f32_to_fp16(%a) = 0x%04x, (_Float16) cast gives 0x%04x", (double)f, h, cb);
#endif
    }
    KT_CHECK(bad == 0, "fp16 encode: %d floats differ from the rounding formula", bad);
    KT_CHECK(bad_f16 == 0, "fp16 encode: %d floats differ from the _Float16 cast", bad_f16);

#ifdef __FLT16_MAX__
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 c;
        const uint16_t hb = (uint16_t)h;
        memcpy(&c, &hb, sizeof c);
        const float want = (float)c, got = kq_fp16_to_f32(hb);
        const int ok = isnan(want) ? isnan(got) : fbits(want) == fbits(got);
        if (!ok && bad++ < 5) KT_CHECK(0, "kq_fp16_to_f32(0x%04x) = %a, _Float16 gives %a", h,
                                       (double)got, (double)want);
    }
    KT_CHECK(bad == 0, "fp16 decode: %d of 65536 differ from _Float16", bad);
#else
    printf("note: no _Float16 in this compiler; fp16 checked against formulas only\n");
#endif
}

/* ------------------------------------------------------------------ bf16 */

static double bf16_formula(uint16_t h)
{
    const int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 0)
        v = ldexp((double)m, -133);
    else if (e == 255)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(128 + m), e - 134);
    return s ? -v : v;
}

/* Nearest bf16 value of f, ties to even; overflow to inf at (2 - 2^-8) 2^127. */
static double bf16_round_formula(float f)
{
    const double a = fabs((double)f);
    double r;
    if (isinf(a)) {
        r = INFINITY;
    } else if (a == 0) {
        r = 0;
    } else {
        int e;
        frexp(a, &e);
        int lo = e - 1;
        if (lo < -126) lo = -126;
        const double q = ldexp(1.0, lo - 7);
        r = nearbyint(a / q) * q;
        if (r >= 0x1p128) r = INFINITY;
    }
    return signbit(f) ? -r : r;
}

static void check_bf16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float got = kq_bf16_to_f32((uint16_t)h);
        const double want = bf16_formula((uint16_t)h);
        const int ok = isnan(want) ? isnan(got) && fbits(got) == h << 16
                                   : (double)got == want && !!signbit(got) == !!signbit(want);
        if (!ok && bad++ < 5) KT_CHECK(0, "kq_bf16_to_f32(0x%04x) = %a, formula %a", h, (double)got, want);
        const uint16_t back = kq_f32_to_bf16(got);
        const int rt = isnan(want) ? (back & 0x7f80) == 0x7f80 && (back & 0x7f) && (back >> 15) == (h >> 15)
                                   : back == h;
        if (!rt && bad++ < 5) KT_CHECK(0, "bf16 round trip 0x%04x -> 0x%04x", h, back);
    }
    KT_CHECK(bad == 0, "bf16 decode/round trip: %d failures", bad);

    /* a signalling NaN whose payload lives only in the low 16 bits must stay NaN */
    KT_CHECK((kq_f32_to_bf16(bitsf(0x7f800001u)) & 0x7fff) > 0x7f80, "bf16 of sNaN 0x7f800001 = 0x%04x",
             kq_f32_to_bf16(bitsf(0x7f800001u)));
    KT_CHECK((kq_f32_to_bf16(bitsf(0xff800001u)) & 0xffc0) == 0xffc0, "bf16 of -sNaN keeps sign, quiet");
    KT_CHECK(kq_f32_to_bf16(FLT_MAX) == 0x7f80, "bf16(FLT_MAX) rounds to inf");
    KT_CHECK(kq_f32_to_bf16(bitsf(0x3f808000u)) == 0x3f80, "bf16 tie to even (down)");
    KT_CHECK(kq_f32_to_bf16(bitsf(0x3f818000u)) == 0x3f82, "bf16 tie to even (up)");

    bad = 0;
    for (int i = 0; i < (1 << 22); i++) {
        uint32_t u = (uint32_t)kt_u64();
        if (i & 1) u &= 0x80ffffffu; /* many subnormals and tiny values */
        if ((i & 7) == 2) u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
        const float f = bitsf(u);
        const uint16_t h = kq_f32_to_bf16(f);
        int ok;
        if (isnan(f)) {
            ok = (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0 && (h >> 15) == (u >> 31);
        } else {
            const double want = bf16_round_formula(f);
            const float got = kq_bf16_to_f32(h);
            ok = (double)got == want && !!signbit(got) == !!signbit(want);
        }
        if (!ok && bad++ < 5)
            KT_CHECK(0, "kq_f32_to_bf16(0x%08x) = 0x%04x, formula %a", u, h, bf16_round_formula(f));
    }
    KT_CHECK(bad == 0, "bf16 encode: %d floats differ from the rounding formula", bad);
}

/* ------------------------------------------------------------------ table */

static void check_table(void)
{
    static const struct {
        int id;
        const char *name;
        int64_t elems;
        size_t bytes;
    } known[] = {
        {0, "f32", 1, 4},          {1, "f16", 1, 2},           {2, "q4_0", 32, 18},
        {3, "q4_1", 32, 20},       {6, "q5_0", 32, 22},        {7, "q5_1", 32, 24},
        {8, "q8_0", 32, 34},       {9, "q8_1", 32, 40},        {10, "q2_K", 256, 84},
        {11, "q3_K", 256, 110},    {12, "q4_K", 256, 144},     {13, "q5_K", 256, 176},
        {14, "q6_K", 256, 210},    {15, "q8_K", 256, 292},     {16, "iq2_xxs", 256, 66},
        {17, "iq2_xs", 256, 74},   {18, "iq3_xxs", 256, 98},   {19, "iq1_s", 256, 50},
        {20, "iq4_nl", 32, 18},    {21, "iq3_s", 256, 110},    {22, "iq2_s", 256, 82},
        {23, "iq4_xs", 256, 136},  {24, "i8", 1, 1},           {25, "i16", 1, 2},
        {26, "i32", 1, 4},         {27, "i64", 1, 8},          {28, "f64", 1, 8},
        {29, "iq1_m", 256, 56},    {30, "bf16", 1, 2},         {34, "tq1_0", 256, 54},
        {35, "tq2_0", 256, 66},    {39, "mxfp4", 32, 17},      {40, "nvfp4", 64, 36},
        {41, "q1_0", 128, 18},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const int id = known[i].id;
        const char *nm = kq_type_name(id);
        KT_CHECK(nm && strcmp(nm, known[i].name) == 0, "kq_type_name(%d) = %s, want %s", id,
                 nm ? nm : "NULL", known[i].name);
        KT_CHECK(kq_type_block_elems(id) == known[i].elems, "block_elems(%s)", known[i].name);
        KT_CHECK(kq_type_block_bytes(id) == known[i].bytes, "block_bytes(%s) = %zu, want %zu",
                 known[i].name, kq_type_block_bytes(id), known[i].bytes);
        const kq_type_traits *t = kq__type_traits(id);
        KT_CHECK(t && t->type == id, "kq__type_traits(%d)", id);
        kq_type parsed = (kq_type)-1;
        KT_OK(kq_type_from_name(known[i].name, &parsed));
        KT_CHECK((int)parsed == id, "kq_type_from_name(%s) = %d", known[i].name, (int)parsed);
    }
    const int removed[] = {4, 5, 31, 32, 33, 36, 37, 38, -1, 42, 1000, -1000};
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        const int id = removed[i];
        KT_CHECK(kq_type_name(id) == NULL && kq__type_traits(id) == NULL &&
                     kq_type_block_elems(id) == 0 && kq_type_block_bytes(id) == 0 &&
                     !kq_type_is_supported(id),
                 "removed/unknown id %d has an entry", id);
    }
    /* written out here, not taken from type_list.h, so the test checks the list */
    const int weights[] = {KQ_TYPE_F32,   KQ_TYPE_F16,  KQ_TYPE_BF16,   KQ_TYPE_Q4_0,
                           KQ_TYPE_Q4_1,  KQ_TYPE_Q5_0, KQ_TYPE_Q5_1,   KQ_TYPE_Q8_0,
                           KQ_TYPE_Q2_K,  KQ_TYPE_Q3_K, KQ_TYPE_Q4_K,   KQ_TYPE_Q5_K,
                           KQ_TYPE_Q6_K,  KQ_TYPE_IQ4_NL, KQ_TYPE_IQ4_XS, KQ_TYPE_MXFP4};
    const int n_weights = (int)(sizeof weights / sizeof weights[0]);
    int n_weight = 0;
    for (int id = -2; id < 64; id++) n_weight += kq_type_is_supported(id);
    KT_CHECK(n_weight == n_weights, "%d types claim weight support, want %d", n_weight, n_weights);
    for (int i = 0; i < n_weights; i++) {
        const kq_type_traits *t = kq__type_traits(weights[i]);
        KT_CHECK(kq_type_is_supported(weights[i]) && t->to_float && t->from_float,
                 "%s is a convertible weight type", kq_type_name(weights[i]));
    }
    const kq_type_traits *q8k = kq__type_traits(KQ_TYPE_Q8_K);
    KT_CHECK(!kq_type_is_supported(KQ_TYPE_Q8_K) && q8k->to_float && q8k->from_float,
             "q8_K converts but is no weight type");
    KT_CHECK(kq__type_traits(KQ_TYPE_IQ2_XXS)->to_float == NULL, "iq2_xxs has geometry only");

    kq_type t;
    KT_OK(kq_type_from_name("Q4_k", &t));
    KT_CHECK(t == KQ_TYPE_Q4_K, "case-insensitive Q4_k");
    KT_OK(kq_type_from_name("BF16", &t));
    KT_CHECK(t == KQ_TYPE_BF16, "case-insensitive BF16");

    KT_CHECK(sizeof(kq_block_q6_K) == 210 && sizeof(kq_block_q8_K) == 292 &&
                 sizeof(kq_block_q4_K) == 144 && sizeof(kq_block_q5_K) == 176 &&
                 sizeof(kq_block_q4_0) == 18 && sizeof(kq_block_q8_0) == 34,
             "block struct sizes");
    KT_CHECK(offsetof(kq_block_q6_K, d) == 208 && offsetof(kq_block_q8_K, bsums) == 260 &&
                 offsetof(kq_block_q5_K, qs) == 48,
             "block field offsets");
}

/* ------------------------------------------------------------------ round trips */

static double rel_rms(const float *x, const float *y, int64_t n)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        s += (double)x[i] * x[i];
    }
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

static int roundtrip(int type, const float *x, int64_t rows, int64_t cols, float *y)
{
    size_t rs;
    if (kq_row_size(type, cols, &rs) != KQ_OK) return 0;
    const size_t nbytes = rs * (size_t)rows;
    unsigned char *q = malloc(nbytes);
    int ok = q && kq_quantize(type, x, rows, cols, q, nbytes) == KQ_OK &&
             kq_dequantize(type, q, nbytes, rows, cols, y) == KQ_OK;
    if (!ok) fprintf(stderr, "roundtrip %s: %s\n", kq_type_name(type), kq_last_error());
    free(q);
    return ok;
}

static int all_finite(const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return 0;
    return 1;
}

static void check_roundtrips(void)
{
    static const struct {
        int type;
        double max_rel;  /* relative RMS bound on standard normal data */
        double tiny_rel; /* the same for N(0, 1e-6) data; < 0: finite is all we ask */
    } types[] = {
        /* Q4_0 and Q8_0 are ggml's reference byte for byte: their d falls to an
         * fp16 subnormal or zero at this size, as in ggml. The k-quants try a
         * subnormal-aware encoding there (the reference gives 100-300%). */
        {KQ_TYPE_F32, 0.0, 0.0},        {KQ_TYPE_F16, 3e-4, 0.05},    {KQ_TYPE_BF16, 2.5e-3, 2.5e-3},
        {KQ_TYPE_Q8_0, 0.008, -1},      {KQ_TYPE_Q4_0, 0.10, -1},     {KQ_TYPE_Q4_K, 0.08, 0.15},
        {KQ_TYPE_Q5_K, 0.042, 0.15},    {KQ_TYPE_Q6_K, 0.021, 0.15},  {KQ_TYPE_Q8_K, 0.01, 0.01},
        /* Q4_1, Q5_0, Q5_1 are ggml's reference too (fp16 d and m, as in
         * ggml); the others search their scales and try neighbouring fp16
         * super-scales, so tiny data keeps its relative error. Bounds: the
         * measured error (q4_1 .079, q5_0 .041, q5_1 .038, iq4_nl .074,
         * mxfp4 .11, q2_K .27, q3_K .15, iq4_xs .074) plus ~10%. */
        {KQ_TYPE_Q4_1, 0.087, -1},      {KQ_TYPE_Q5_0, 0.045, -1},    {KQ_TYPE_Q5_1, 0.042, -1},
        /* IQ4_NL/IQ4_XS at N(0, 1e-6): the scale wanted, ~2e-8, is below
         * fp16's smallest subnormal (6e-8), so ~0.2 is what fp16 allows */
        {KQ_TYPE_IQ4_NL, 0.082, 0.25},  {KQ_TYPE_MXFP4, 0.125, 0.15}, {KQ_TYPE_Q2_K, 0.30, 0.35},
        {KQ_TYPE_Q3_K, 0.165, 0.20},    {KQ_TYPE_IQ4_XS, 0.082, 0.25},
    };
    /* the bounds are measured per type, so each listed type needs its row */
    static const int listed[] = {KQ_QUANT_TYPES(QUANT_ID)};
    for (size_t li = 0; li < sizeof listed / sizeof listed[0]; li++) {
        int found = 0;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
            found |= types[ti].type == listed[li];
        KT_CHECK(found, "%s (formats/type_list.h) has no round-trip error bound here",
                 kq_type_name(listed[li]));
    }
    const int64_t rows = 8, cols = 2048, n = rows * cols;
    float *x = malloc(sizeof(float) * (size_t)n);
    float *y = malloc(sizeof(float) * (size_t)n);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int type = types[ti].type;
        const char *nm = kq_type_name(type);
        const int64_t be = kq_type_block_elems(type);

        kt_fill_normal(x, n, 1.0f);
        kt_poison(y, n);
        if (KT_CHECK(roundtrip(type, x, rows, cols, y), "%s round trip runs", nm)) {
            const double e = rel_rms(x, y, n);
            KT_CHECK(e <= types[ti].max_rel, "%s: relative RMS error %.5f > %.5f", nm, e,
                     types[ti].max_rel);
            KT_CHECK(all_finite(y, n), "%s: non-finite output", nm);
        }

        /* all-zero blocks decode to zero */
        memset(x, 0, sizeof(float) * (size_t)n);
        kt_poison(y, n);
        if (roundtrip(type, x, rows, cols, y)) {
            int zero = 1;
            for (int64_t i = 0; i < n; i++) zero &= y[i] == 0;
            KT_CHECK(zero, "%s: zeros do not come back as zeros", nm);
        }

        /* constant blocks (positive and negative) */
        for (int64_t i = 0; i < n; i++) x[i] = (i / be) % 2 ? 0.75f : -1.25f;
        kt_poison(y, n);
        if (roundtrip(type, x, rows, cols, y)) {
            const double e = rel_rms(x, y, n);
            /* MXFP4's values under a power-of-two scale include 1 and 1.5
             * but not 1.25: -1.25 is 20% off at best (0.75 is exact) */
            const double bound = type == KQ_TYPE_MXFP4 ? 0.21 : 0.02;
            KT_CHECK(all_finite(y, n) && e < bound, "%s: constant blocks, relative RMS %.5f", nm, e);
        }

        /* one huge value per block among small ones; no NaN, the big one kept */
        kt_fill_normal(x, n, 1.0f);
        for (int64_t i = 0; i < n; i += be) x[i + kt_range(0, be - 1)] = 3000.0f;
        kt_poison(y, n);
        if (roundtrip(type, x, rows, cols, y)) {
            int big_ok = 1;
            for (int64_t i = 0; i < n; i++)
                if (x[i] == 3000.0f) big_ok &= fabs(y[i] - 3000.0) < 3000.0 * 0.07;
            KT_CHECK(all_finite(y, n) && big_ok, "%s: single huge value per block", nm);
        }

        /* tiny values (fp16 subnormal scales) and beyond-fp16 values: finite */
        kt_fill_normal(x, n, 1e-6f);
        kt_poison(y, n);
        if (roundtrip(type, x, rows, cols, y)) {
            const double e = rel_rms(x, y, n);
            KT_CHECK(all_finite(y, n) && (types[ti].tiny_rel < 0 || e <= types[ti].tiny_rel),
                     "%s: tiny values (N(0, 1e-6)), relative RMS %.5f > %.5f", nm, e,
                     types[ti].tiny_rel);
        }
        if (type != KQ_TYPE_F16) { /* f16 itself overflows to inf by definition */
            kt_fill_normal(x, n, 1e9f);
            kt_poison(y, n);
            if (roundtrip(type, x, rows, cols, y))
                KT_CHECK(all_finite(y, n), "%s: values beyond the fp16 range give non-finite output",
                         nm);
        }
    }
    free(x);
    free(y);
}

/* The converters accept buffers at any byte address. */
static void check_unaligned(void)
{
    const int types[] = {KQ_TYPE_F16, KQ_TYPE_BF16, KQ_TYPE_Q8_K, KQ_QUANT_TYPES(QUANT_ID)};
    const int64_t rows = 3, cols = 512, n = rows * cols;
    float *x = malloc(sizeof(float) * (size_t)n);
    float *y0 = malloc(sizeof(float) * (size_t)n);
    float *y1 = malloc(sizeof(float) * (size_t)n);
    kt_fill_normal(x, n, 1.0f);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t rs;
        KT_OK(kq_row_size(types[i], cols, &rs));
        const size_t nb = rs * (size_t)rows;
        unsigned char *a = malloc(nb), *b = malloc(nb + 3);
        KT_OK(kq_quantize(types[i], x, rows, cols, a, nb));
        KT_OK(kq_quantize(types[i], x, rows, cols, b + 1, nb));
        KT_CHECK(memcmp(a, b + 1, nb) == 0, "%s: quantize to an odd address differs",
                 kq_type_name(types[i]));
        KT_OK(kq_dequantize(types[i], a, nb, rows, cols, y0));
        KT_OK(kq_dequantize(types[i], b + 1, nb, rows, cols, y1));
        KT_CHECK(memcmp(y0, y1, sizeof(float) * (size_t)n) == 0,
                 "%s: dequantize from an odd address differs", kq_type_name(types[i]));
        free(a);
        free(b);
    }
    free(x);
    free(y0);
    free(y1);
}

/* ------------------------------------------------------- issue 17: bad input */

/* Every block format a weight can be quantized to (f32/f16/bf16 carry inf
 * and NaN through; Q8_K is an activation format but a block format too). */
/* every quantized weight type of formats/type_list.h, and the activation type */
static const int g_block_types[] = {KQ_QUANT_TYPES(QUANT_ID) KQ_TYPE_Q8_K};
#define N_BLOCK_TYPES (sizeof g_block_types / sizeof g_block_types[0])

/* Issue 17 defect 3: one inf or NaN used to quantize its block to finite
 * garbage with KQ_OK. Now the call refuses it, names row and column, and
 * leaves dst untouched. */
static void check_non_finite(void)
{
    const int64_t rows = 3, cols = 512, n = rows * cols;
    float *x = malloc(sizeof(float) * (size_t)n);
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const char *bad_name[3] = {"NaN", "+inf", "-inf"};
    for (size_t ti = 0; ti < N_BLOCK_TYPES; ti++) {
        const int type = g_block_types[ti];
        size_t rs;
        KT_OK(kq_row_size(type, cols, &rs));
        const size_t nb = rs * (size_t)rows;
        unsigned char *q = malloc(nb), *q0 = malloc(nb);
        for (int b = 0; b < 3; b++) {
            kt_fill_normal(x, n, 1.0f);
            const int64_t r = kt_range(0, rows - 1), c = kt_range(0, cols - 1);
            x[r * cols + c] = bad[b];
            kt_fill_bytes(q, nb);
            memcpy(q0, q, nb);
            char row_s[32], col_s[32];
            snprintf(row_s, sizeof row_s, "row %lld", (long long)r);
            snprintf(col_s, sizeof col_s, "column %lld is", (long long)c);
            KT_EXPECT(kq_quantize(type, x, rows, cols, q, nb), KQ_ERR_INVALID_ARG, row_s);
            KT_CHECK(strstr(kq_last_error(), col_s) && strstr(kq_last_error(), bad_name[b]) &&
                         strstr(kq_last_error(), kq_type_name(type)),
                     "%s: message \"%s\" names column %lld, %s and the type",
                     kq_type_name(type), kq_last_error(), (long long)c, bad_name[b]);
            KT_CHECK(memcmp(q, q0, nb) == 0, "%s: a refused call wrote dst", kq_type_name(type));
        }
        free(q);
        free(q0);
    }
    /* the float formats carry them: f16 keeps NaN a NaN */
    kt_fill_normal(x, n, 1.0f);
    x[5] = NAN;
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)n);
    KT_OK(kq_quantize(KQ_TYPE_F16, x, rows, cols, h, sizeof(uint16_t) * (size_t)n));
    KT_CHECK((h[5] & 0x7fff) > 0x7c00, "f16 of NaN is NaN");
    free(h);
    free(x);
}

/* Issue 17 defect 4: a single finite weight of 5e12 or more zeroed its
 * block in Q6_K (the scale search weighs by x^2, its sums grow as x^3 and
 * overflowed); the other searches had the same sums. Now no block format
 * zeroes such a block: the huge weight decodes to a large value of its own
 * sign (as large as the fp16 scales allow: at least 6e4 for every type;
 * Q4_1/Q5_1 reach no lower than their fp16 min, -65504), and the whole
 * block stays finite. */
static void check_huge_weights(void)
{
    const float huge[4] = {5e12f, -7e12f, 1e20f, -3e38f};
    float x[256], y[256];
    unsigned char q[512];
    for (size_t ti = 0; ti < N_BLOCK_TYPES; ti++) {
        const int type = g_block_types[ti];
        const int64_t be = kq_type_block_elems(type);
        const size_t bb = kq_type_block_bytes(type);
        for (int h = 0; h < 4; h++) {
            kt_fill_normal(x, be, 1.0f);
            const int64_t at = kt_range(0, be - 1);
            x[at] = huge[h];
            kt_poison(y, be);
            if (!KT_OK(kq_quantize(type, x, 1, be, q, bb))) continue;
            KT_OK(kq_dequantize(type, q, bb, 1, be, y));
            KT_CHECK(all_finite(y, be) && y[at] * (huge[h] > 0 ? 1.0f : -1.0f) >= 6e4f,
                     "%s: weight %g at %lld decodes to %g (finite block: %d)", kq_type_name(type),
                     (double)huge[h], (long long)at, (double)y[at], all_finite(y, be));
        }
    }
}

/* ------------------------------------------------------------------ Q8_K */

static void check_q8_K(void)
{
    enum { NB = 64 };
    float x[NB * 256];
    kq_block_q8_K blk[NB];
    kt_fill_normal(x, NB * 256, 2.0f);
    for (int i = 0; i < 256; i++) x[3 * 256 + i] = 0; /* block 3 all zero */
    x[5 * 256 + 17] = -40.0f;                          /* block 5: negative extreme */
    x[6 * 256 + 200] = 40.0f;                          /* block 6: positive extreme */
    for (int i = 0; i < 256; i++) x[7 * 256 + i] = 0.5f; /* block 7 constant */
    KT_OK(kq_quantize(KQ_TYPE_Q8_K, x, 1, NB * 256, blk, sizeof blk));

    int bad = 0;
    for (int b = 0; b < NB; b++) {
        const float *xb = x + b * 256;
        float amax = 0, max = 0;
        for (int i = 0; i < 256; i++)
            if (fabsf(xb[i]) > amax) {
                amax = fabsf(xb[i]);
                max = xb[i];
            }
        if (amax == 0) {
            int z = blk[b].d == 0;
            for (int i = 0; i < 256; i++) z &= blk[b].qs[i] == 0;
            for (int g = 0; g < 16; g++) z &= blk[b].bsums[g] == 0;
            KT_CHECK(z, "q8_K all-zero block %d: d = %g, q and bsums must be 0", b, (double)blk[b].d);
            continue;
        }
        const float iscale = -127.f / max;
        if (blk[b].d != 1 / iscale) bad++;
        for (int i = 0; i < 256; i++) {
            float r = nearbyintf(iscale * xb[i]); /* round half to even */
            if (r > 127) r = 127;
            if (blk[b].qs[i] != (int)r) bad++;
            if (xb[i] == max && blk[b].qs[i] != -127) bad++;
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += blk[b].qs[16 * g + i];
            if (blk[b].bsums[g] != s) bad++;
        }
    }
    KT_CHECK(bad == 0, "q8_K: %d mismatches of d, q or bsums against the definition", bad);
    int all_m127 = 1;
    for (int i = 0; i < 256; i++) all_m127 &= blk[7].qs[i] == -127;
    KT_CHECK(all_m127 && fabsf(blk[7].d * -127.f - 0.5f) < 1e-6f,
             "q8_K constant block 0.5: d = %g (want -0.5/127), q = -127", (double)blk[7].d);

    float y[NB * 256];
    KT_OK(kq_dequantize(KQ_TYPE_Q8_K, blk, sizeof blk, 1, NB * 256, y));
    bad = 0;
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < 256; i++)
            if (fbits(y[b * 256 + i]) != fbits(blk[b].d * (float)blk[b].qs[i])) bad++;
    KT_CHECK(bad == 0, "q8_K dequantize is d * q (%d differ)", bad);
}

/* ------------------------------------------------------------------ API errors */

#define EXPECT_ERR(call, status, ...)                                                        \
    do {                                                                                     \
        const kq_status st_ = (call);                                                        \
        KT_CHECK(st_ == (status), "%s returned %s, want %s (%s)", #call, kq_status_name(st_), \
                 kq_status_name(status), kq_last_error());                                   \
        const char *subs_[] = {__VA_ARGS__};                                                 \
        for (size_t k_ = 0; k_ < sizeof subs_ / sizeof subs_[0]; k_++)                       \
            KT_CHECK(strstr(kq_last_error(), subs_[k_]) != NULL,                             \
                     "%s: message \"%s\" lacks \"%s\"", #call, kq_last_error(), subs_[k_]);  \
    } while (0)

static void check_api_errors(void)
{
    float xf[512];
    unsigned char qb[1024];
    size_t rs = 0;
    kt_fill_normal(xf, 512, 1.0f);

    /* kq_row_size */
    EXPECT_ERR(kq_row_size(KQ_TYPE_Q4_K, 256, NULL), KQ_ERR_INVALID_ARG, "kq_row_size", "out");
    EXPECT_ERR(kq_row_size(4, 256, &rs), KQ_ERR_INVALID_ARG, "kq_row_size", "type = 4");
    EXPECT_ERR(kq_row_size(-3, 256, &rs), KQ_ERR_INVALID_ARG, "type = -3");
    EXPECT_ERR(kq_row_size(KQ_TYPE_Q4_K, 0, &rs), KQ_ERR_INVALID_ARG, "n_cols = 0");
    EXPECT_ERR(kq_row_size(KQ_TYPE_Q4_K, -256, &rs), KQ_ERR_INVALID_ARG, "n_cols = -256");
    EXPECT_ERR(kq_row_size(KQ_TYPE_Q4_K, 100, &rs), KQ_ERR_INVALID_ARG,
               "n_cols = 100 is not a multiple of the q4_K block (256)");
    EXPECT_ERR(kq_row_size(28 /* f64 */, INT64_C(1) << 62, &rs), KQ_ERR_INVALID_ARG, "overflow");
    EXPECT_ERR(kq_row_size(KQ_TYPE_F32, INT64_MAX, &rs), KQ_ERR_INVALID_ARG, "overflow");
    KT_OK(kq_row_size(KQ_TYPE_Q6_K, 512, &rs));
    KT_CHECK(rs == 420, "q6_K row of 512 = %zu bytes", rs);
    KT_CHECK(kq_last_error()[0] == '\0', "a successful call clears the message");
    KT_OK(kq_row_size(16 /* iq2_xxs: geometry only */, 256, &rs));
    KT_CHECK(rs == 66, "iq2_xxs row of 256 = %zu", rs);

    /* kq_dequantize */
    float y[512];
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 144, 1, 100, y), KQ_ERR_INVALID_ARG,
               "kq_dequantize: n_cols = 100 is not a multiple of the q4_K block (256)");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 100, 1, 256, y), KQ_ERR_INVALID_ARG,
               "kq_dequantize", "src_bytes = 100", "expected n_rows * row_size", "144");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 288, 1, 256, y), KQ_ERR_INVALID_ARG, "src_bytes = 288");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, NULL, 144, 1, 256, y), KQ_ERR_INVALID_ARG, "src is NULL");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 144, 1, 256, NULL), KQ_ERR_INVALID_ARG, "dst is NULL");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 144, 0, 256, y), KQ_ERR_INVALID_ARG, "n_rows = 0");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 144, -2, 256, y), KQ_ERR_INVALID_ARG, "n_rows = -2");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 144, 1, 0, y), KQ_ERR_INVALID_ARG, "n_cols = 0");
    EXPECT_ERR(kq_dequantize(99, qb, 144, 1, 256, y), KQ_ERR_INVALID_ARG, "type = 99");
    EXPECT_ERR(kq_dequantize(5, qb, 144, 1, 256, y), KQ_ERR_INVALID_ARG, "type = 5");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_IQ2_XXS, qb, 66, 1, 256, y), KQ_ERR_UNSUPPORTED, "type = 16",
               "iq2_xxs");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 144, INT64_MAX / 4, 256, y), KQ_ERR_INVALID_ARG,
               "n_rows = ", "overflow");
    EXPECT_ERR(kq_dequantize(KQ_TYPE_Q4_K, qb, 144, INT64_C(1) << 40, INT64_C(1) << 24, y),
               KQ_ERR_INVALID_ARG, "overflow");

    /* kq_quantize */
    EXPECT_ERR(kq_quantize(KQ_TYPE_Q8_0, xf, 1, 100, qb, 34), KQ_ERR_INVALID_ARG,
               "kq_quantize: n_cols = 100 is not a multiple of the q8_0 block (32)");
    EXPECT_ERR(kq_quantize(KQ_TYPE_Q8_0, xf, 2, 256, qb, 100), KQ_ERR_INVALID_ARG, "kq_quantize",
               "dst_bytes = 100", "expected n_rows * row_size", "544");
    EXPECT_ERR(kq_quantize(KQ_TYPE_Q8_0, NULL, 1, 256, qb, 272), KQ_ERR_INVALID_ARG, "src is NULL");
    EXPECT_ERR(kq_quantize(KQ_TYPE_Q8_0, xf, 1, 256, NULL, 272), KQ_ERR_INVALID_ARG, "dst is NULL");
    EXPECT_ERR(kq_quantize(KQ_TYPE_Q8_0, xf, 0, 256, qb, 272), KQ_ERR_INVALID_ARG, "n_rows = 0");
    EXPECT_ERR(kq_quantize(KQ_TYPE_Q8_0, xf, 1, -32, qb, 272), KQ_ERR_INVALID_ARG, "n_cols = -32");
    EXPECT_ERR(kq_quantize(31, xf, 1, 256, qb, 272), KQ_ERR_INVALID_ARG, "type = 31");
    EXPECT_ERR(kq_quantize(KQ_TYPE_IQ3_S, xf, 1, 256, qb, 110), KQ_ERR_UNSUPPORTED, "iq3_s");
    EXPECT_ERR(kq_quantize(KQ_TYPE_Q8_0, xf, INT64_MAX / 16, 256, qb, 272), KQ_ERR_INVALID_ARG,
               "overflow");
    KT_OK(kq_quantize(KQ_TYPE_Q8_0, xf, 2, 256, qb, 544));
    KT_CHECK(kq_last_error()[0] == '\0', "a successful kq_quantize clears the message");

    /* kq_type_from_name */
    kq_type t;
    EXPECT_ERR(kq_type_from_name(NULL, &t), KQ_ERR_INVALID_ARG, "name is NULL");
    EXPECT_ERR(kq_type_from_name("q4_K", NULL), KQ_ERR_INVALID_ARG, "out is NULL");
    EXPECT_ERR(kq_type_from_name("q4_kk", &t), KQ_ERR_INVALID_ARG, "\"q4_kk\"");
    EXPECT_ERR(kq_type_from_name("", &t), KQ_ERR_INVALID_ARG, "name = \"\"");
}

int main(void)
{
    kt_init("test_formats");
    check_table();
    check_fp16();
    check_bf16();
    check_roundtrips();
    check_unaligned();
    check_q8_K();
    check_non_finite();
    check_huge_weights();
    check_api_errors();
    return kt_finish();
}
