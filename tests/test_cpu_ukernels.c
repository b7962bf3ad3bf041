/* The CPU micro-kernels (src/cpu/ukernel.h) of every instruction set this
 * CPU and build can run, against a double reference from the dequantized
 * weights and the activation blocks' exact values d * q.
 *
 * For each ISA x weight type (every row of formats/type_list.h) x variant x
 * n_blocks in {1, 3, 56}, two weight sets (kq_quantize'd normal floats where
 * kquant has a quantizer for the type, and random bytes whose fp16 scales
 * are forced finite and E8M0 exponents kept below 2^16, so every bit pattern
 * of the quants, grids and packed scales shows up), rows at odd addresses with odd strides, activation blocks built here
 * (random q in [-127, 127], some blocks all +-127 to reach the largest
 * partial sums), every tile edge nr = 1..mr, nc = 1..nc, out with ldo > nr:
 * the entries outside the tile must keep their NaN poison. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_features.h"
#include "cpu/ukernel.h"
#include "formats/type_list.h"
#include "testutil.h"

enum { MAX_MR = 16, MAX_NC = 16 };

/* Every quantized weight type (formats/type_list.h). */
#define TYPE_ID(id, name, block, elems, act) id,
#define TYPE_NAME(id, name, block, elems, act) #name,
static const int g_types[] = {KQ_QUANT_TYPES(TYPE_ID)};
static const char *const g_type_names[] = {KQ_QUANT_TYPES(TYPE_NAME)};
#undef TYPE_ID
#undef TYPE_NAME

typedef struct tile_data {
    int type, elems, bytes;
    int64_t nb, k;
    size_t row_bytes, w_stride, a_stride;
    uint8_t *wbuf, *w; /* w = wbuf + 1: rows at odd addresses */
    float *deq;        /* MAX_MR x k */
    float *mag;        /* MAX_MR x k: a bound on each element's terms */
    void *act;         /* MAX_NC rows of nb blocks, 64-byte aligned */
    double *x;         /* MAX_NC x k: d * q, exact */
} tile_data;

/* Weight rows (quantized normals, or random bytes) and their dequantization.
 * mag[k] = |deq[k]| + 2 |deq0[k]|, deq0 the dequantization with the quant
 * bits zeroed: it bounds the magnitude of the separate terms the kernels
 * sum exactly (d * sc * q and dmin * m; d * q and m for q4_1/q5_1;
 * d * sc * q and d * sc * 32 for q6_K, * 4 for q3_K), since
 * |d sc| q <= |deq| + |deq0| there. */
static int make_weights(tile_data *t, int random_bytes)
{
    kt_block_layout L;
    kt_block_layout_of(t->type, &L);
    const int qoff = L.qoff, qlen = L.qlen;
    float *src = malloc((size_t)t->k * sizeof *src);
    uint8_t *zero = malloc(t->row_bytes);
    float *deq0 = malloc((size_t)t->k * sizeof *deq0);
    int ok = src && zero && deq0;
    for (int r = 0; ok && r < MAX_MR; r++) {
        uint8_t *row = t->w + (size_t)r * t->w_stride;
        if (random_bytes) {
            kt_random_blocks(t->type, row, t->nb);
        } else {
            kt_fill_normal(src, t->k, (float)(0.02 * (1.0 + 4.0 * kt_uniform())));
            ok = kq_quantize(t->type, src, 1, t->k, row, t->row_bytes) == KQ_OK;
        }
        memcpy(zero, row, t->row_bytes);
        for (int64_t b = 0; b < t->nb; b++) memset(zero + b * t->bytes + qoff, 0, (size_t)qlen);
        float *deq = t->deq + r * t->k;
        ok = ok && kq_dequantize(t->type, row, t->row_bytes, 1, t->k, deq) == KQ_OK &&
             kq_dequantize(t->type, zero, t->row_bytes, 1, t->k, deq0) == KQ_OK;
        for (int64_t i = 0; ok && i < t->k; i++)
            t->mag[r * t->k + i] = fabsf(deq[i]) + 2.0f * fabsf(deq0[i]);
    }
    free(src);
    free(zero);
    free(deq0);
    return ok ? 0 : -1;
}

/* One block's q: uniform in [-127, 127], or (1 in 8) all +-127, the largest
 * partial sums the quantizer can produce. */
static void random_q(int8_t *q, int n)
{
    const int extreme = kt_range(0, 7) == 0;
    for (int j = 0; j < n; j++)
        q[j] = (int8_t)(extreme ? (kt_range(0, 1) ? 127 : -127) : kt_range(-127, 127));
}

static float random_d(void)
{
    return kt_range(0, 15) == 0 ? 0.0f : (float)(0.001 + kt_uniform());
}

static void make_acts(tile_data *t)
{
    const kq_act_kind kind = t->elems == 32 ? KQ_ACT_32 : KQ_ACT_256;
    for (int c = 0; c < MAX_NC; c++) {
        uint8_t *row = (uint8_t *)t->act + (size_t)c * t->a_stride;
        double *x = t->x + c * t->k;
        for (int64_t b = 0; b < t->nb; b++) {
            if (kind == KQ_ACT_32) {
                kq_act32 *blk = (kq_act32 *)(void *)row + b;
                random_q(blk->q, 32);
                blk->d = random_d();
                blk->sum = 0;
                for (int j = 0; j < 32; j++) {
                    blk->sum += blk->q[j];
                    x[b * 32 + j] = (double)blk->d * blk->q[j];
                }
            } else {
                kq_act256 *blk = (kq_act256 *)(void *)row + b;
                memset(blk, 0, sizeof *blk);
                random_q(blk->q, 256);
                blk->d = random_d();
                for (int j = 0; j < 256; j++) {
                    blk->bsum[j / 16] = (int16_t)(blk->bsum[j / 16] + blk->q[j]);
                    x[b * 256 + j] = (double)blk->d * blk->q[j];
                }
            }
        }
    }
}

static int data_alloc(tile_data *t, int type, int64_t nb)
{
    memset(t, 0, sizeof *t);
    kt_block_layout L;
    if (kt_block_layout_of(type, &L)) return -1;
    t->type = type;
    t->elems = L.elems;
    t->bytes = L.bytes;
    t->nb = nb;
    t->k = nb * t->elems;
    t->row_bytes = (size_t)(nb * t->bytes);
    t->w_stride = t->row_bytes + (size_t)kt_range(0, 3); /* any alignment */
    t->a_stride = (size_t)nb * kq__act_block_bytes(t->elems == 32 ? KQ_ACT_32 : KQ_ACT_256);
    t->wbuf = malloc(1 + t->w_stride * MAX_MR);
    t->w = t->wbuf ? t->wbuf + 1 : NULL;
    t->deq = malloc(sizeof(float) * MAX_MR * (size_t)t->k);
    t->mag = malloc(sizeof(float) * MAX_MR * (size_t)t->k);
    const size_t abytes = (t->a_stride * MAX_NC + 63) / 64 * 64;
    t->act = aligned_alloc(64, abytes);
    t->x = malloc(sizeof(double) * MAX_NC * (size_t)t->k);
    return t->wbuf && t->deq && t->mag && t->act && t->x ? 0 : -1;
}

static void data_free(tile_data *t)
{
    free(t->wbuf);
    free(t->deq);
    free(t->mag);
    free(t->act);
    free(t->x);
}

/* The first 8 activation rows of t as one kq_act32x8 tile (ukernel.h), for
 * the variant 2 kernels: built here from the kq_act32 blocks by the
 * layout's definition, not by the library's kq__act_quantize_x8. */
static kq_act32x8 *make_x8(const tile_data *t)
{
    kq_act32x8 *x8 = aligned_alloc(64, sizeof(kq_act32x8) * (size_t)t->nb);
    if (!x8) return NULL;
    for (int r = 0; r < 8; r++)
        for (int64_t b = 0; b < t->nb; b++) {
            const kq_act32 *blk = (const kq_act32 *)(const void *)((const uint8_t *)t->act +
                                                                   (size_t)r * t->a_stride) + b;
            for (int j = 0; j < 32; j++) x8[b].q[j / 4][4 * r + j % 4] = blk->q[j];
            x8[b].d[r] = blk->d;
            x8[b].sum[r] = blk->sum;
        }
    return x8;
}

/* Runs every tile shape of kernel k on t and checks it; act: the
 * activations as the kernel reads them (t->act, or make_x8's tile). */
static void check_kernel(const kq_ukernel *k, const tile_data *t, const void *act,
                         const char *what)
{
    double want[MAX_MR][MAX_NC], mag[MAX_MR][MAX_NC];
    for (int r = 0; r < k->mr; r++)
        for (int c = 0; c < k->nc; c++) {
            double s = 0, m = 0;
            for (int64_t i = 0; i < t->k; i++) {
                s += (double)t->deq[r * t->k + i] * t->x[c * t->k + i];
                m += (double)t->mag[r * t->k + i] * fabs(t->x[c * t->k + i]);
            }
            want[r][c] = s;
            mag[r][c] = m;
        }
    /* The kernels sum exact int8 products in int32; the float steps are one
     * int32 -> float conversion of each lane, the product d * da, one fma
     * per block into the accumulator (at most n_blocks roundings of a
     * partial sum bounded by mag), a horizontal sum of <= 16 lanes (4) and
     * the min term (2); the reference's own dequantization rounds 3 times
     * per element. Each rounding is at most 2^-24 of mag: 2x that count. */
    const double tol_rel = 2.0 * (double)(t->nb + 12) * 0x1p-24;
    float out[MAX_NC * (MAX_MR + 3)];
    int bad = 0;
    for (int nr = 1; nr <= k->mr && !bad; nr++)
        for (int nc = 1; nc <= k->nc && !bad; nc++) {
            const int64_t ldo = nr + 3;
            kt_poison(out, MAX_NC * (MAX_MR + 3));
            k->tile(t->w, t->w_stride, nr, (const uint8_t *)act, t->a_stride, nc, t->nb, out, ldo);
            for (int c = 0; c < MAX_NC; c++)
                for (int r = 0; r < ldo; r++) {
                    const float got = out[c * ldo + r];
                    if (c < nc && r < nr) {
                        const double tol = tol_rel * mag[r][c] + 1e-30;
                        bad |= !KT_CHECK(fabs((double)got - want[r][c]) <= tol,
                                         "%s %s nb=%lld tile %dx%d: out[%d,%d] = %.9g, want %.9g "
                                         "(tol %.3g)",
                                         k->name, what, (long long)t->nb, nr, nc, r, c, got,
                                         want[r][c], tol);
                    } else {
                        bad |= !KT_CHECK(isnan(got), "%s %s nb=%lld tile %dx%d ldo %lld: wrote "
                                                      "outside the tile at [%d,%d]",
                                         k->name, what, (long long)t->nb, nr, nc, (long long)ldo,
                                         r, c);
                    }
                    if (bad) return;
                }
        }
}

/* Whether kq_quantize encodes the type (some types are decode-only). */
static int has_quantizer(int type)
{
    float x[256] = {0};
    uint8_t out[512];
    return kq_quantize(type, x, 1, 256, out, sizeof out) != KQ_ERR_UNSUPPORTED;
}

static void run_isa(kq_isa isa)
{
    static const int64_t nbs[] = {1, 3, 56};
    printf("%s: running:", kq__isa_name(isa));
    for (size_t ti = 0; ti < sizeof g_types / sizeof g_types[0]; ti++)
        for (int v = 0; v < 3; v++) {
            const kq_ukernel *k = kq__ukernel(isa, g_types[ti], v);
            if (k || v < 2) printf(" [%s]", k ? k->name : "none");
        }
    printf("\n");
    fflush(stdout);
    for (size_t ti = 0; ti < sizeof g_types / sizeof g_types[0]; ti++)
        for (size_t ni = 0; ni < sizeof nbs / sizeof nbs[0]; ni++)
            for (int mode = 0; mode < 2; mode++) {
                if (mode == 0 && !has_quantizer(g_types[ti])) {
                    if (ni == 0)
                        printf("%s %s: quantized weights skipped: kq_quantize cannot encode "
                               "it (random-bytes weights still run)\n",
                               kq__isa_name(isa), g_type_names[ti]);
                    continue;
                }
                tile_data t;
                if (data_alloc(&t, g_types[ti], nbs[ni]) || make_weights(&t, mode)) {
                    KT_CHECK(0, "%s: could not build test data", g_type_names[ti]);
                    data_free(&t);
                    continue;
                }
                make_acts(&t);
                for (int v = 0; v < 2; v++) {
                    const kq_ukernel *k = kq__ukernel(isa, g_types[ti], v);
                    if (!KT_CHECK(k && k->mr >= 1 && k->mr <= MAX_MR && k->nc >= 1 &&
                                      k->nc <= MAX_NC && k->tile,
                                  "%s %s variant %d: no usable kernel", kq__isa_name(isa),
                                  g_type_names[ti], v))
                        continue;
                    check_kernel(k, &t, t.act, mode ? "random-bytes weights" : "quantized weights");
                }
                /* Variant 2 (kq_act32x8 tiles), where this ISA has it. */
                const kq_ukernel *k2 = kq__ukernel(isa, g_types[ti], 2);
                if (k2 && KT_CHECK(t.elems == 32 && k2->nc <= 8 && k2->mr <= MAX_MR,
                                   "%s %s variant 2: tile %dx%d on a %d-value type",
                                   kq__isa_name(isa), g_type_names[ti], k2->mr, k2->nc, t.elems)) {
                    kq_act32x8 *x8 = make_x8(&t);
                    if (KT_CHECK(x8 != NULL, "out of memory"))
                        check_kernel(k2, &t, x8, mode ? "random-bytes weights, x8" : "quantized weights, x8");
                    free(x8);
                }
                data_free(&t);
            }
}

/* kq__cpu_glu_mul (the gated feed-forward's epilogue, src/cpu/glu.c) against
 * the gates in double, over runs of odd lengths (the vector loop and its
 * scalar tail), g from -100 to 100 and u normal. Bound: 2^-20 of the
 * result (the AVX2 exponential's polynomial is within 2e-7 relative; the
 * divide and three products add a few roundings), plus, for GELU, 2^-21
 * |z| of it, z = 2 sqrt(2/pi) (g + 0.044715 g^3): z is formed in float (a
 * few roundings of 2^-24 |z|) and e^z carries that absolute error as a
 * relative one; plus 1e-35 (1 + |g|) |u|, since the exponential stops at
 * e^-87 where the exact gate goes on shrinking toward zero. NaN in g gives
 * NaN. */
static double glu_ref(kq_glu act, double g)
{
    if (act == KQ_GLU_SILU) return g / (1.0 + exp(-g));
    /* 0.5 g (1 + tanh t) as g sigmoid(2t): 1 + tanh t cancels in double too
     * for t below about -17 */
    const double c = sqrt(2.0 / 3.14159265358979323846);
    return g / (1.0 + exp(-2 * c * (g + 0.044715 * g * g * g)));
}

static void glu_check(void)
{
    enum { N = 203 };
    float g[N], u[N], y[N];
    for (int act = KQ_GLU_SILU; act <= KQ_GLU_GELU; act++)
        for (int rep = 0; rep < 20; rep++) {
            const int n = (int)kt_range(1, N);
            for (int i = 0; i < n; i++) {
                const double r = kt_uniform();
                g[i] = (float)(rep < 10 ? 8.0 * (2 * r - 1) : 100.0 * (2 * r - 1));
                u[i] = (float)kt_normal();
            }
            g[0] = rep == 3 ? NAN : rep == 4 ? 0.0f : rep == 5 ? -0.0f : g[0];
            kt_poison(y, N);
            KT_CHECK(kq__cpu_glu_mul((kq_glu)act, g, u, y, n) == 0, "glu act %d", act);
            int bad = 0;
            for (int i = 0; i < n; i++) {
                const double want = glu_ref((kq_glu)act, g[i]) * u[i];
                const double gg = g[i];
                const double z = act == KQ_GLU_GELU
                                     ? 2 * sqrt(2.0 / 3.14159265358979323846) * (gg + 0.044715 * gg * gg * gg)
                                     : 0.0;
                const double tol = (0x1p-20 + 0x1p-21 * fabs(z)) * fabs(want) +
                                   1e-35 * (1 + fabs(gg)) * fabs(u[i]);
                const int ok = g[i] != g[i] ? y[i] != y[i] : fabs((double)y[i] - want) <= tol;
                if (!ok && bad++ == 0)
                    KT_CHECK(0, "glu %s: g = %.9g, u = %.9g: got %.9g, want %.9g",
                             act == KQ_GLU_GELU ? "gelu" : "silu", g[i], u[i], y[i], want);
            }
            for (int i = n; i < N; i++)
                if (y[i] == y[i] && bad++ == 0) KT_CHECK(0, "glu wrote past its %d outputs", n);
            KT_CHECK(bad == 0, "glu act %d: %d outputs wrong", act, bad);
        }
    KT_CHECK(kq__cpu_glu_mul((kq_glu)5, g, u, y, 1) == -1, "glu refuses act 5");
}

int main(void)
{
    kt_init("test_cpu_ukernels");
    glu_check();
    const kq_cpu_features *f = kq__cpu_features();
    int ran = 0;
    for (int i = 0; i < KQ_ISA_COUNT; i++) {
        if (!kq__isa_available((kq_isa)i)) {
            printf("%s: skipped: this build or CPU cannot run it (cpu: avx2 %d fma %d f16c %d "
                   "avx512f %d bw %d vl %d vnni %d neon %d dotprod %d)\n",
                   kq__isa_name((kq_isa)i), f->avx2, f->fma, f->f16c, f->avx512f, f->avx512bw,
                   f->avx512vl, f->avx512vnni, f->neon, f->dotprod);
            continue;
        }
        if (i == KQ_ISA_AVX512)
            printf("avx512: VNNI %s\n", f->avx512vnni ? "present: vpdpbusd kernels run"
                                                      : "absent: non-VNNI AVX-512 kernels run");
        run_isa((kq_isa)i);
        ran++;
    }
    printf("%d instruction set(s) ran\n", ran);
    return kt_finish();
}
