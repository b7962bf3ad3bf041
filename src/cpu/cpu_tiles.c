/* The building block of every cpu driver: a block of outputs (weight rows x
 * activation rows) of one weight part. Int8 types go through the part's
 * micro-kernel tile by tile, row tiles outside and activation tiles inside,
 * so a tile of weight rows is read from memory once and reused from L1/L2
 * for every activation tile of the block. Float weights (f32, f16, bf16) are
 * expanded one row at a time and dotted in double, like the reference
 * backend: exact to float rounding, not tuned for speed.
 *
 * Also here: the blocking rule and the activation quantization phase. */
#include <string.h>

#include "cpu_backend.h"

static void float_block(const kq_weight_part *p, int64_t r0, int64_t r1, const cpu_acts *a,
                        int64_t c0, int64_t c1, int64_t k, float *out, int64_t ldo, float *fbuf)
{
    for (int64_t r = r0; r < r1; r++) {
        p->traits->to_float(p->data + (size_t)r * p->row_size, fbuf, k);
        for (int64_t c = c0; c < c1; c++) {
            const float *x = a->x_rows ? a->x_rows[c] : a->x + c * a->x_stride;
            double s0 = 0, s1 = 0;
            int64_t j = 0;
            for (; j + 2 <= k; j += 2) {
                s0 += (double)fbuf[j] * x[j];
                s1 += (double)fbuf[j + 1] * x[j + 1];
            }
            for (; j < k; j++) s0 += (double)fbuf[j] * x[j];
            out[(c - c0) * ldo + (r - r0)] = (float)(s0 + s1);
        }
    }
}

void kq__cpu_part_block(const cpu_state *s, const kq_weight_part *p, int variant, int64_t r0,
                        int64_t r1, const cpu_acts *a, int64_t c0, int64_t c1, int64_t n_cols,
                        float *out, int64_t ldo, float *fbuf)
{
    /* Variant 2 where the type has it (the driver quantized kq_act32x8
     * rows for it: kq__cpu_part_x8), the size class's own otherwise. */
    const int x8 = kq__cpu_part_x8(s, variant, p->type);
    if (x8) variant = KQ_CPU_X8;
    else if (variant == KQ_CPU_X8) variant = 1;
    else if (variant == KQ_CPU_X8_SMALL) variant = 0;
    const kq_ukernel *k = s->kern[variant][p->type];
    if (!k) {
        float_block(p, r0, r1, a, c0, c1, n_cols, out, ldo, fbuf);
        return;
    }
    int kind = x8 ? KQ_ACT_32X8 : kq__act_kind_of(p->type);
    const uint8_t *act = a->q[kind];
    size_t as = a->q_stride[kind];
    int64_t n_blocks = n_cols / kq__act_block_elems((kq_act_kind)kind);
    for (int64_t r = r0; r < r1; r += k->mr) {
        int nr = (int)(r1 - r < k->mr ? r1 - r : k->mr);
        const uint8_t *w = p->data + (size_t)r * p->row_size;
        for (int64_t c = c0; c < c1; c += k->nc) {
            int nc = (int)(c1 - c < k->nc ? c1 - c : k->nc);
            k->tile(w, p->row_size, nr, act + (size_t)c * as, as, nc, n_blocks,
                    out + (c - c0) * ldo + (r - r0), ldo);
        }
    }
}

void kq__cpu_rows_block(const cpu_state *s, const kq_linear *l, int variant, int64_t g0,
                        int64_t g1, const cpu_acts *a, int64_t c0, int64_t c1, float *out,
                        int64_t ldo, float *fbuf)
{
    for (int pi = 0; pi < l->n_parts && g0 < g1; pi++) {
        const kq_weight_part *p = &l->parts[pi];
        int64_t p0 = p->row_offset, p1 = p->row_offset + p->n_rows;
        if (g0 >= p1) continue;
        int64_t e = g1 < p1 ? g1 : p1;
        kq__cpu_part_block(s, p, variant, g0 - p0, e - p0, a, c0, c1, l->n_cols, out, ldo, fbuf);
        out += e - g0;
        g0 = e;
    }
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t lcm_capped(int64_t a, int64_t b)
{
    int64_t l = a / gcd64(a, b) * b;
    return l > 64 ? a : l; /* odd edge sizes: give up alignment, keep correctness */
}

/* Weight rows per unit. Large m: about 64 KiB of weights, so a unit's rows
 * stay in L2 while the activation blocks go by. m <= 16 on a dense layer
 * (long_runs): about 256 KiB, so each thread streams long runs (fewer
 * restarts of the hardware prefetcher) while a layer still has a hundred
 * units or so to balance over threads; experts keep 64 KiB, since a few
 * small experts need the finer grain to balance.
 * Activation rows per block (large m): about 192 KiB of quantized rows,
 * which stay in L2 across the unit's row tiles. */
#define UNIT_WEIGHT_BYTES_LARGE_M (64u << 10)
#define UNIT_WEIGHT_BYTES_SMALL_M (256u << 10)
#define BLOCK_ACT_BYTES (192u << 10)
#define BLOCK_OUT_FLOATS (32 << 10)

cpu_blocking kq__cpu_blocking(const cpu_state *s, const int *types, int n_types,
                              size_t max_row_bytes, size_t act_row_bytes, int64_t m,
                              int long_runs)
{
    cpu_blocking bl;
    bl.variant = m > KQ_CPU_SMALL_M;
    int64_t mr = 1, nc = 1;
    for (int i = 0; i < n_types; i++) {
        for (int v = bl.variant; v <= (bl.variant ? KQ_CPU_X8 : 0); v++) {
            const kq_ukernel *k = types[i] < KQ_CPU_MAX_TYPE ? s->kern[v][types[i]] : NULL;
            if (!k) continue;
            mr = lcm_capped(mr, k->mr);
            nc = lcm_capped(nc, k->nc);
        }
    }
    size_t unit = bl.variant || !long_runs ? UNIT_WEIGHT_BYTES_LARGE_M : UNIT_WEIGHT_BYTES_SMALL_M;
    int64_t rb = (int64_t)(unit / (max_row_bytes ? max_row_bytes : 1));
    rb = (rb + mr - 1) / mr * mr;
    if (rb < mr) rb = mr;
    if (rb > 1024) rb = 1024 / mr * mr;
    bl.rb = rb;
    bl.mb = m;
    if (bl.variant && act_row_bytes) {
        int64_t mb = (int64_t)(BLOCK_ACT_BYTES / act_row_bytes);
        /* A unit's output block (rb x mb floats; drivers buffer it per
         * thread for experts and SwiGLU) stays within 128 KiB too. */
        if (mb > BLOCK_OUT_FLOATS / rb) mb = BLOCK_OUT_FLOATS / rb;
        mb = mb / nc * nc;
        if (mb < nc) mb = nc;
        if (mb < m) bl.mb = mb;
    }
    return bl;
}

int kq__cpu_part_x8(const cpu_state *s, int variant, int type)
{
    return (variant == KQ_CPU_X8 || variant == KQ_CPU_X8_SMALL) && type >= 0 &&
           type < KQ_CPU_MAX_TYPE && s->kern[KQ_CPU_X8][type];
}

/* ---------------------------------------------------------------- quantization */

typedef struct quant_job {
    unsigned kinds;
    int64_t n, k, chunk;
    cpu_row_fn src;
    const void *src_ctx;
    cpu_acts *a;
    atomic_llong next;
} quant_job;

static void quant_rows(quant_job *j, int64_t c0, int64_t c1)
{
    for (int64_t c = c0; c < c1; c++) {
        const float *x = j->src(j->src_ctx, c);
        for (int kind = 0; kind < KQ_ACT_KINDS; kind++) {
            if (!(j->kinds & (1u << kind))) continue;
            uint8_t *q = (uint8_t *)j->a->q[kind];
            const size_t st = j->a->q_stride[kind];
            if (kind == KQ_ACT_32X8)
                kq__act_quantize_x8(x, q + (size_t)(c / 8 * 8) * st, (int)(c % 8), j->k);
            else
                kq__act_quantize((kq_act_kind)kind, x, q + (size_t)c * st, j->k);
        }
    }
}

static void quant_worker(void *ctx, int tid, int n_threads)
{
    (void)tid, (void)n_threads;
    quant_job *j = ctx;
    for (;;) {
        int64_t c0 = atomic_fetch_add(&j->next, j->chunk);
        if (c0 >= j->n) break;
        quant_rows(j, c0, c0 + j->chunk < j->n ? c0 + j->chunk : j->n);
    }
}

void kq__cpu_quantize_rows(cpu_state *s, unsigned kinds, int64_t n, int64_t k, cpu_row_fn src,
                           const void *src_ctx, cpu_acts *a)
{
    quant_job j = {.kinds = kinds, .n = n, .k = k, .src = src, .src_ctx = src_ctx, .a = a};
    /* Small inputs are quicker on the calling thread than a pool round trip. */
    if (s->threads == 1 || n * k < (1 << 16)) {
        quant_rows(&j, 0, n);
        return;
    }
    j.chunk = (n + 4 * s->threads - 1) / (4 * s->threads);
    atomic_init(&j.next, 0);
    kq__pool_run(s->pool, quant_worker, &j);
}
