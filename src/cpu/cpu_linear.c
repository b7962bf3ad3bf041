/* Dense, fused and gated (SwiGLU, GeGLU) drivers of the "cpu" backend.
 *
 * One call: quantize the m activation rows once per activation kind its
 * parts need (on the pool when large), then spread work units over the
 * pool. A unit is (a block of output rows, a block of activation rows):
 *   m = 1      units of ~256 KiB of weight rows; each thread streams its
 *              rows once (GEMV, bound by memory bandwidth);
 *   m 2..16    the same units with all m rows in one block: each weight tile
 *              is read from memory once and applied to every activation tile
 *              from cache;
 *   m > 16     units of ~64 KiB of weight rows, which stay in L2 while
 *              ~192 KiB blocks of activation rows go by (kernel variant 1).
 * Units may cross the parts of a fused linear; each part's rows go through
 * that part's kernel. SwiGLU units cover output rows r and h + r together
 * and combine them from a per-thread buffer. The unit grid depends only on
 * the shapes and the kernels, never on the thread count or on timing, so
 * every output is the same bits however the threads share the work. */
#include <string.h>

#include "core/error.h"
#include "cpu_backend.h"

typedef struct lin_job {
    const cpu_state *s;
    const kq_linear *l;
    cpu_acts a;
    float *y;
    int64_t m, n_out; /* n_out: output columns (n_rows, or h for a gated call) */
    int glu;           /* gate/up pairs, combined by act */
    kq_glu act;
    atomic_int bad_act;
    cpu_blocking bl;
    int64_t n_mb, units;
    float *tbuf; /* SwiGLU: per thread, gate then up blocks of rb x mb */
    float *fbuf; /* float parts: per thread, one expanded row */
    size_t tbuf_floats, fbuf_floats;
    atomic_llong next;
} lin_job;

static void lin_worker(void *ctx, int tid, int n_threads)
{
    (void)n_threads;
    lin_job *j = ctx;
    const kq_linear *l = j->l;
    float *fbuf = j->fbuf ? j->fbuf + (size_t)tid * j->fbuf_floats : NULL;
    float *gate = j->tbuf ? j->tbuf + (size_t)tid * j->tbuf_floats : NULL;
    for (;;) {
        int64_t u = atomic_fetch_add(&j->next, 1);
        if (u >= j->units) break;
        int64_t g0 = u / j->n_mb * j->bl.rb, c0 = u % j->n_mb * j->bl.mb;
        int64_t g1 = g0 + j->bl.rb < j->n_out ? g0 + j->bl.rb : j->n_out;
        int64_t c1 = c0 + j->bl.mb < j->m ? c0 + j->bl.mb : j->m;
        if (!j->glu) {
            kq__cpu_rows_block(j->s, l, j->bl.variant, g0, g1, &j->a, c0, c1,
                               j->y + c0 * l->n_rows + g0, l->n_rows, fbuf);
            continue;
        }
        int64_t h = j->n_out, w = g1 - g0;
        float *up = gate + j->tbuf_floats / 2;
        kq__cpu_rows_block(j->s, l, j->bl.variant, g0, g1, &j->a, c0, c1, gate, w, fbuf);
        kq__cpu_rows_block(j->s, l, j->bl.variant, h + g0, h + g1, &j->a, c0, c1, up, w, fbuf);
        for (int64_t c = c0; c < c1; c++)
            if (kq__cpu_glu_mul(j->act, gate + (c - c0) * w, up + (c - c0) * w, j->y + c * h + g0, w))
                atomic_store(&j->bad_act, 1);
    }
}

static const float *dense_row(const void *ctx, int64_t c)
{
    const lin_job *j = ctx;
    return j->a.x + c * j->a.x_stride;
}

static kq_status lin_run(kq_backend *b, const kq_linear *l, const float *x, float *y, int64_t m,
                         int glu, kq_glu act, const char *fn)
{
    cpu_state *s = b->impl;
    int64_t k = l->n_cols;
    int has_float = 0, types[64];
    size_t max_row = 0;
    /* The blocking sizes by the kinds' row bytes (kq_act32x8 has
     * kq_act32's), so it does not depend on the variant chosen below. */
    unsigned base_kinds = 0;
    for (int p = 0; p < l->n_parts; p++) {
        int kind = kq__act_kind_of(l->parts[p].type);
        if (kind < 0) has_float = 1;
        else base_kinds |= 1u << kind;
        if (p < 64) types[p] = l->parts[p].type;
        if (l->parts[p].row_size > max_row) max_row = l->parts[p].row_size;
    }
    size_t act_bytes = has_float ? (size_t)k * sizeof(float) : 0;
    for (int kind = 0; kind < KQ_ACT_KINDS; kind++)
        if (base_kinds & (1u << kind)) act_bytes += kq__cpu_act_row_bytes(kind, k);

    /* m is bounded by the caller's x only: refuse sizes the scratch
     * arithmetic below could not hold. */
    if ((double)(m + 8) * (double)(act_bytes + 64) > 0x1p60)
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: m = %lld needs too much scratch", fn, (long long)m);
    lin_job j = {.s = s, .l = l, .y = y, .m = m, .glu = glu, .act = act};
    atomic_init(&j.bad_act, 0);
    j.n_out = glu ? l->n_rows / 2 : l->n_rows;
    j.bl = kq__cpu_blocking(s, types, l->n_parts < 64 ? l->n_parts : 64, max_row, act_bytes, m,
                            1);
    /* m >= 8: variant 2 (kq_act32x8) for the parts that have it, which
     * needs every activation block to start on a multiple of 8 rows (at
     * m <= 16 the block is all m rows). */
    if (m >= 8 && (j.bl.mb >= m || j.bl.mb % 8 == 0))
        j.bl.variant = j.bl.variant == 1 ? KQ_CPU_X8 : KQ_CPU_X8_SMALL;
    unsigned kinds = 0;
    for (int p = 0; p < l->n_parts; p++) {
        int kind = kq__act_kind_of(l->parts[p].type);
        if (kind < 0) continue;
        kinds |= 1u << (kq__cpu_part_x8(s, j.bl.variant, l->parts[p].type) ? KQ_ACT_32X8 : kind);
    }
    /* kq_act32x8 rows come in tiles of 8. */
    const int64_t m8 = (m + 7) / 8 * 8;
    j.n_mb = (m + j.bl.mb - 1) / j.bl.mb;
    j.units = (j.n_out + j.bl.rb - 1) / j.bl.rb * j.n_mb;
    j.a.x = x;
    j.a.x_stride = k;

    /* Scratch: the quantized rows of each kind, then per-thread buffers. */
    size_t off[KQ_ACT_KINDS] = {0}, total = 0;
    for (int kind = 0; kind < KQ_ACT_KINDS; kind++)
        if (kinds & (1u << kind)) {
            off[kind] = total;
            total += kq__cpu_align64(kq__cpu_act_row_bytes(kind, k) *
                                     (size_t)(kind == KQ_ACT_32X8 ? m8 : m));
        }
    size_t t_off = total, f_off;
    if (glu) j.tbuf_floats = (size_t)(2 * j.bl.rb * j.bl.mb);
    total += kq__cpu_align64(j.tbuf_floats * sizeof(float) * (size_t)s->threads);
    f_off = total;
    if (has_float) j.fbuf_floats = kq__cpu_align64((size_t)k * sizeof(float)) / sizeof(float);
    total += j.fbuf_floats * sizeof(float) * (size_t)s->threads;

    pthread_mutex_lock(&s->call_mu);
    uint8_t *mem = kq__cpu_scratch(s, total);
    if (!mem) {
        pthread_mutex_unlock(&s->call_mu);
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes of scratch", fn, total);
    }
    for (int kind = 0; kind < KQ_ACT_KINDS; kind++)
        if (kinds & (1u << kind)) {
            j.a.q[kind] = mem + off[kind];
            j.a.q_stride[kind] = kq__cpu_act_row_bytes(kind, k);
        }
    j.tbuf = glu ? (float *)(mem + t_off) : NULL;
    j.fbuf = has_float ? (float *)(mem + f_off) : NULL;
    if (kinds & (1u << KQ_ACT_32X8)) {
        /* rows past m in the last tile: zero (their lanes are never stored) */
        const size_t st = j.a.q_stride[KQ_ACT_32X8];
        memset((uint8_t *)j.a.q[KQ_ACT_32X8] + (size_t)(m8 - 8) * st, 0, 8 * st);
    }
    if (kinds) kq__cpu_quantize_rows(s, kinds, m, k, dense_row, &j, &j.a);
    atomic_init(&j.next, 0);
    if (j.units == 1 || s->threads == 1)
        lin_worker(&j, 0, 1);
    else
        kq__pool_run(s->pool, lin_worker, &j);
    pthread_mutex_unlock(&s->call_mu);
    if (atomic_load(&j.bad_act))
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: act = %d is no kq_glu", fn, (int)act);
    return KQ_OK;
}

kq_status kq__cpu_linear_forward(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                 int64_t m)
{
    return lin_run(b, l, x, y, m, 0, KQ_GLU_SILU, "kq_linear_forward");
}

kq_status kq__cpu_linear_glu(kq_backend *b, const kq_linear *l, const float *x, float *y,
                             int64_t m, kq_glu act)
{
    return lin_run(b, l, x, y, m, 1, act, act == KQ_GLU_SILU ? "kq_linear_forward_swiglu"
                                                            : "kq_linear_forward_glu");
}
