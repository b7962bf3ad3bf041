#include "testutil.h"

#include <stddef.h>

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/type_list.h"

static const char *g_name = "test";
static uint64_t g_seed, g_state;
static long g_pass, g_fail;

void kt_init(const char *name)
{
    g_name = name;
    const char *env = getenv("KQ_TEST_SEED");
    if (env && *env) {
        g_seed = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g_seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    g_state = g_seed;
}

uint64_t kt_seed(void) { return g_seed; }

/* splitmix64: small, fast, and every seed gives a good stream. */
uint64_t kt_u64(void)
{
    uint64_t z = (g_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double kt_uniform(void) { return (double)(kt_u64() >> 11) * 0x1.0p-53; }

int64_t kt_range(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(kt_u64() % (uint64_t)(hi - lo + 1));
}

double kt_normal(void)
{
    double u1 = kt_uniform(), u2 = kt_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void kt_fill_normal(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)kt_normal() * scale;
}

void kt_fill_bytes(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)kt_u64();
}

void kt_poison(float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = nanf("");
}

int kt_check(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        g_pass++;
        return 1;
    }
    g_fail++;
    if (g_fail <= 30) {
        fprintf(stderr, "FAIL %s:%d (seed KQ_TEST_SEED=%llu): ", file, line,
                (unsigned long long)g_seed);
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    return 0;
}

int kt_failures(void) { return (int)g_fail; }

int kt_finish(void)
{
    printf("%s: %ld passed, %ld failed\n", g_name, g_pass, g_fail);
    if (g_fail) printf("%s: rerun with KQ_TEST_SEED=%llu\n", g_name, (unsigned long long)g_seed);
    return g_fail ? 1 : 0;
}

const char *kt_tmp_path(const char *leaf)
{
    static char buf[4][1024];
    static int slot;
    const char *dir = getenv("KQ_TEST_TMP");
    if (!dir || !*dir) dir = "/tmp";
    char *p = buf[slot++ & 3];
    snprintf(p, sizeof buf[0], "%s/%s-%ld-%s", dir, g_name, (long)getpid(), leaf);
    return p;
}

void kt_matmul_ref(const float *w, int64_t n, int64_t k, const float *x, int64_t m, double *y,
                   double *abs)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < n; r++) {
            double s = 0, a = 0;
            for (int64_t j = 0; j < k; j++) {
                double p = (double)w[r * k + j] * (double)x[i * k + j];
                s += p;
                a += fabs(p);
            }
            y[i * n + r] = s;
            if (abs) abs[i * n + r] = a;
        }
}

#define KT_QUANT_ID(id, name, block, elems, act) id,
const int kt_weight_types[] = {KQ_TYPE_F32, KQ_TYPE_F16, KQ_TYPE_BF16,
                               KQ_QUANT_TYPES(KT_QUANT_ID)};
#undef KT_QUANT_ID
const int kt_n_weight_types = (int)(sizeof kt_weight_types / sizeof kt_weight_types[0]);

int kt_block_layout_of(int type, kt_block_layout *o)
{
    /* fp16 fields, E8M0 byte, and the quant-only byte range of each block. */
#define KT_H(s, f) (int)offsetof(s, f)
    switch (type) {
    case KQ_TYPE_Q4_0: *o = (kt_block_layout){32, 18, {0, -1}, -1, 2, 16}; break;
    case KQ_TYPE_Q4_1: *o = (kt_block_layout){32, 20, {0, 2}, -1, 4, 16}; break;
    case KQ_TYPE_Q5_0: *o = (kt_block_layout){32, 22, {0, -1}, -1, 2, 20}; break;
    case KQ_TYPE_Q5_1: *o = (kt_block_layout){32, 24, {0, 2}, -1, 4, 20}; break;
    case KQ_TYPE_Q8_0: *o = (kt_block_layout){32, 34, {0, -1}, -1, 2, 32}; break;
    case KQ_TYPE_IQ4_NL: *o = (kt_block_layout){32, 18, {0, -1}, -1, 2, 16}; break;
    case KQ_TYPE_MXFP4: *o = (kt_block_layout){32, 17, {-1, -1}, 0, 1, 16}; break;
    case KQ_TYPE_Q2_K:
        *o = (kt_block_layout){256, 84, {KT_H(kq_block_q2_K, d), KT_H(kq_block_q2_K, dmin)}, -1,
                               KT_H(kq_block_q2_K, qs), 64};
        break;
    case KQ_TYPE_Q3_K: /* hmask then qs */
        *o = (kt_block_layout){256, 110, {KT_H(kq_block_q3_K, d), -1}, -1, 0, 96};
        break;
    case KQ_TYPE_Q4_K: *o = (kt_block_layout){256, 144, {0, 2}, -1, 16, 128}; break;
    case KQ_TYPE_Q5_K: /* qh then qs */
        *o = (kt_block_layout){256, 176, {0, 2}, -1, 16, 160};
        break;
    case KQ_TYPE_Q6_K: *o = (kt_block_layout){256, 210, {208, -1}, -1, 0, 192}; break;
    case KQ_TYPE_IQ4_XS: *o = (kt_block_layout){256, 136, {0, -1}, -1, 8, 128}; break;
    default: return -1;
    }
#undef KT_H
    return 0;
}

void kt_random_blocks(int type, uint8_t *dst, int64_t nb)
{
    kt_block_layout L;
    if (kt_block_layout_of(type, &L)) return;
    kt_fill_bytes(dst, (size_t)(nb * L.bytes));
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = dst + b * L.bytes;
        for (int i = 0; i < 2; i++) {
            uint8_t *hi = L.half[i] >= 0 ? blk + L.half[i] + 1 : NULL;
            /* Exponent all ones is inf/NaN: clearing its top bit keeps the rest. */
            if (hi && (*hi & 0x7c) == 0x7c) *hi = (uint8_t)(*hi & ~0x40);
        }
        if (L.e8m0 >= 0 && blk[L.e8m0] > 144) blk[L.e8m0] = (uint8_t)(blk[L.e8m0] - 128);
    }
}

/* Random blocks under layer-sized scales (testutil.h). */
static void random_layer_blocks(int type, uint8_t *dst, int64_t nb)
{
    kt_block_layout L;
    kt_random_blocks(type, dst, nb);
    if (kt_block_layout_of(type, &L)) return;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = dst + b * L.bytes;
        for (int i = 0; i < 2; i++)
            if (L.half[i] >= 0) {
                const float v = (float)((kt_range(0, 1) ? 1 : -1) * (1e-4 + 3.9e-3 * kt_uniform()));
                const uint16_t h = kq_f32_to_fp16(v);
                memcpy(blk + L.half[i], &h, 2);
            }
        if (L.e8m0 >= 0) blk[L.e8m0] = (uint8_t)kt_range(118, 123);
    }
}

int kt_weight_make(kt_weight *w, int type, int64_t n_rows, int64_t n_cols)
{
    memset(w, 0, sizeof *w);
    size_t row;
    if (kq_row_size(type, n_cols, &row) != KQ_OK) return -1;
    size_t n = (size_t)(n_rows * n_cols);
    float *src = malloc(n * sizeof *src);
    w->type = type;
    w->n_rows = n_rows;
    w->n_cols = n_cols;
    w->nbytes = row * (size_t)n_rows;
    w->bytes = malloc(w->nbytes);
    w->deq = malloc(n * sizeof *w->deq);
    int rc = -1;
    if (src && w->bytes && w->deq) {
        /* Rows of different scales, as real layers have. */
        for (int64_t r = 0; r < n_rows; r++)
            kt_fill_normal(src + r * n_cols, n_cols, (float)(0.02 * (1.0 + 4.0 * kt_uniform())));
        kq_status st = kq_quantize(type, src, n_rows, n_cols, w->bytes, w->nbytes);
        kt_block_layout L;
        if (st == KQ_ERR_UNSUPPORTED && kt_block_layout_of(type, &L) == 0) {
            random_layer_blocks(type, w->bytes, (int64_t)(w->nbytes / (size_t)L.bytes));
            st = KQ_OK;
        }
        if (st == KQ_OK &&
            kq_dequantize(type, w->bytes, w->nbytes, n_rows, n_cols, w->deq) == KQ_OK)
            rc = 0;
    }
    free(src);
    if (rc) kt_weight_free(w);
    return rc;
}

void kt_weight_free(kt_weight *w)
{
    free(w->bytes);
    free(w->deq);
    w->bytes = NULL;
    w->deq = NULL;
}

int kt_close_f32(float got, double want, double abs_scale)
{
    if (!(got == got)) return 0; /* NaN: an unwritten (poisoned) output */
    double tol = 0x1p-23 * fabs(want) + 0x1p-36 * abs_scale + 1e-30;
    return fabs((double)got - want) <= tol;
}

int kt_act_block(int type)
{
    switch (type) {
#define KT_ACT_CASE(id, name, block, elems, act) \
    case id:                                     \
        return act;
        KQ_QUANT_TYPES(KT_ACT_CASE)
#undef KT_ACT_CASE
    default:
        return 0;
    }
}

/* The activation error: x_k is replaced by d * q_k with d = amax / 127 of
 * its block and q_k = round(x_k / d), so |x_k - d q_k| <= d / 2 = amax / 254,
 * widened by 2^-15 for the rounding of d and of x_k / d (which can push a
 * value within 127 * 2^-24 of a half to the other integer). Weighted by
 * |w_k| and summed, that bounds the whole product's error from it.
 * The float work: per block a kernel rounds a few products and an int ->
 * float conversion (<= 6 roundings) of terms no larger than 3 M |x| (M the
 * block's largest |w|: a k-quant's d sc q and dmin m terms are each within
 * twice the block's range), then adds the block into a running sum
 * (n_blocks more roundings of at most that much): (n_blocks + 8) * 3 * 2^-24
 * * sum M |x| covers both, and the reference's own float dequantization
 * (one rounding per weight). */
double kt_act8_tol(const float *w, const float *x, int64_t k, int block)
{
    double quant = 0, scale = 0;
    for (int64_t b0 = 0; b0 < k; b0 += block) {
        double amax = 0, wmax = 0, wsum = 0, xsum = 0;
        for (int64_t j = b0; j < b0 + block; j++) {
            amax = fmax(amax, fabs(x[j]));
            wmax = fmax(wmax, fabs(w[j]));
            wsum += fabs(w[j]);
            xsum += fabs(x[j]);
        }
        quant += wsum * amax / 254.0;
        scale += wmax * xsum;
    }
    return quant * (1.0 + 0x1p-15) + (double)(k / block + 8) * 3.0 * 0x1p-24 * scale + 1e-30;
}

int kt_close_on(const char *what, int type, float got, double want, double abs_scale,
                const float *w, const float *x, int64_t k)
{
    int block = kt_act_block(type);
    int act8 = block && strncmp(what, "cpu", 3) == 0 && (what[3] == ' ' || what[3] == ':' ||
                                                         what[3] == '\0');
    if (!act8) return kt_close_f32(got, want, abs_scale);
    if (!(got == got)) return 0;
    return fabs((double)got - want) <= kt_act8_tol(w, x, k, block);
}
