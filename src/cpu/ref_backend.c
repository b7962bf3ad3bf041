/* The reference backend ("cpu-ref"): each weight row is dequantized exactly (formats/) and dotted with
 * the activations in double, then rounded once to float. It is the oracle
 * every fast kernel is compared with, so it favours obviousness over speed;
 * rows are spread over `threads` threads only to keep big checks quick. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ceilings.h"
#include "core/core.h"
#include "core/error.h"
#include "cpu_features.h"
#include "parallel.h"

typedef struct ref_state {
    int threads;
} ref_state;

static double dot_f64(const float *w, const float *x, int64_t k)
{
    double s = 0.0;
    for (int64_t j = 0; j < k; j++) s += (double)w[j] * (double)x[j];
    return s;
}

/* ---------------------------------------------------------------- linear */

typedef struct linear_job {
    const kq_linear *l;
    const float *x;
    float *y;
    int64_t m;
    int failed; /* a scratch allocation failed in some thread */
    kq_glu act; /* gated calls */
} linear_job;

/* Global row index -> (part, row within part). */
static const kq_weight_part *part_of_row(const kq_linear *l, int64_t row)
{
    int p = 0;
    while (p + 1 < l->n_parts && row >= l->parts[p + 1].row_offset) p++;
    return &l->parts[p];
}

static void linear_rows(void *ctx, int64_t begin, int64_t end)
{
    linear_job *j = ctx;
    const kq_linear *l = j->l;
    float *w = malloc((size_t)l->n_cols * sizeof *w);
    if (!w) {
        j->failed = 1;
        return;
    }
    for (int64_t row = begin; row < end; row++) {
        const kq_weight_part *p = part_of_row(l, row);
        const uint8_t *src = p->data + (size_t)(row - p->row_offset) * p->row_size;
        p->traits->to_float(src, w, l->n_cols);
        for (int64_t i = 0; i < j->m; i++)
            j->y[i * l->n_rows + row] = (float)dot_f64(w, j->x + i * l->n_cols, l->n_cols);
    }
    free(w);
}

static double silu_f64(double g) { return g / (1.0 + exp(-g)); }

/* kq_glu's gates in double; -1 (NaN) for an act that is no kq_glu */
static double glu_f64(kq_glu act, double g)
{
    switch (act) {
    case KQ_GLU_SILU: return silu_f64(g);
    case KQ_GLU_GELU: /* 0.5 g (1 + tanh t) as g sigmoid(2t), which does not cancel for t << 0 */
        return g / (1.0 + exp(-2 * 0.7978845608028654 * (g + 0.044715 * g * g * g)));
    }
    return NAN;
}

/* Gated: output r needs gate row r and up row h + r; both are dequantized,
 * dotted in double, and combined before the one rounding to float. */
static void glu_rows(void *ctx, int64_t begin, int64_t end)
{
    linear_job *j = ctx;
    const kq_linear *l = j->l;
    int64_t h = l->n_rows / 2, k = l->n_cols;
    float *wg = malloc((size_t)k * 2 * sizeof *wg);
    if (!wg) {
        j->failed = 1;
        return;
    }
    float *wu = wg + k;
    for (int64_t r = begin; r < end; r++) {
        const kq_weight_part *pg = part_of_row(l, r), *pu = part_of_row(l, h + r);
        pg->traits->to_float(pg->data + (size_t)(r - pg->row_offset) * pg->row_size, wg, k);
        pu->traits->to_float(pu->data + (size_t)(h + r - pu->row_offset) * pu->row_size, wu, k);
        for (int64_t i = 0; i < j->m; i++) {
            const float *xr = j->x + i * k;
            j->y[i * h + r] = (float)(glu_f64(j->act, dot_f64(wg, xr, k)) * dot_f64(wu, xr, k));
        }
    }
    free(wg);
}

static kq_status ref_linear_glu(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                int64_t m, kq_glu act)
{
    ref_state *s = b->impl;
    if (act != KQ_GLU_SILU && act != KQ_GLU_GELU)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_linear_forward_glu: act = %d is no kq_glu", (int)act);
    linear_job j = {l, x, y, m, 0, act};
    kq__parallel_for(s->threads, l->n_rows / 2, glu_rows, &j);
    if (j.failed)
        return kq__fail(KQ_ERR_NO_MEMORY,
                        "kq_linear_forward_glu: cannot allocate two %lld-float rows",
                        (long long)l->n_cols);
    return KQ_OK;
}

static kq_status ref_linear_forward(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                    int64_t m)
{
    ref_state *s = b->impl;
    linear_job j = {l, x, y, m, 0, KQ_GLU_SILU};
    kq__parallel_for(s->threads, l->n_rows, linear_rows, &j);
    if (j.failed)
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_linear_forward: cannot allocate a %lld-float row",
                        (long long)l->n_cols);
    return KQ_OK;
}

/* ---------------------------------------------------------------- experts */

typedef struct experts_job {
    const kq_experts *e;
    const kq_experts *up; /* SwiGLU: e is the gate; NULL for a plain call */
    const float *x;
    int64_t token_stride, slot_stride, top_k;
    const int64_t *order;   /* pair indices sorted by expert */
    const int64_t *starts;  /* per expert: first index into order; starts[E] = pairs */
    float *y;
    int failed;
} experts_job;

/* Each thread takes a range of output rows and, for every expert in use,
 * dequantizes that row once and applies it to all pairs routed there. */
static void experts_rows(void *ctx, int64_t begin, int64_t end)
{
    experts_job *j = ctx;
    const kq_experts *e = j->e;
    int64_t n = e->n_rows, k = e->n_cols;
    const kq_experts *up = j->up;
    float *w = malloc((size_t)k * 2 * sizeof *w);
    if (!w) {
        j->failed = 1;
        return;
    }
    float *wu = w + k;
    for (int64_t ex = 0; ex < e->n_experts; ex++) {
        if (j->starts[ex] == j->starts[ex + 1]) continue;
        const uint8_t *slab = e->w.data + (size_t)ex * e->expert_bytes;
        const uint8_t *slab_up = up ? up->w.data + (size_t)ex * up->expert_bytes : NULL;
        for (int64_t r = begin; r < end; r++) {
            e->w.traits->to_float(slab + (size_t)r * e->w.row_size, w, k);
            if (up) up->w.traits->to_float(slab_up + (size_t)r * up->w.row_size, wu, k);
            for (int64_t q = j->starts[ex]; q < j->starts[ex + 1]; q++) {
                int64_t pair = j->order[q];
                int64_t i = pair / j->top_k, s = pair % j->top_k;
                const float *xr = j->x + i * j->token_stride + s * j->slot_stride;
                double g = dot_f64(w, xr, k);
                j->y[pair * n + r] = (float)(up ? silu_f64(g) * dot_f64(wu, xr, k) : g);
            }
        }
    }
    free(w);
}

static kq_status ref_experts_run(kq_backend *b, const kq_experts *e, const kq_experts *up,
                                 const float *x, int64_t token_stride, int64_t slot_stride,
                                 const int32_t *ids, int64_t m, int64_t top_k, float *y)
{
    ref_state *s = b->impl;
    int64_t pairs = m * top_k, n_e = e->n_experts;
    int64_t *order = malloc((size_t)pairs * sizeof *order);
    int64_t *starts = calloc((size_t)n_e + 1, sizeof *starts);
    if (!order || !starts) {
        free(order);
        free(starts);
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_experts_forward: cannot allocate routing tables");
    }
    /* Counting sort of the pairs by expert (ids were checked by the core). */
    for (int64_t p = 0; p < pairs; p++) starts[ids[p] + 1]++;
    for (int64_t ex = 0; ex < n_e; ex++) starts[ex + 1] += starts[ex];
    int64_t *fill = malloc((size_t)n_e * sizeof *fill);
    if (!fill) {
        free(order);
        free(starts);
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_experts_forward: cannot allocate routing tables");
    }
    memcpy(fill, starts, (size_t)n_e * sizeof *fill);
    for (int64_t p = 0; p < pairs; p++) order[fill[ids[p]]++] = p;
    free(fill);

    experts_job j = {e, up, x, token_stride, slot_stride, top_k, order, starts, y, 0};
    kq__parallel_for(s->threads, e->n_rows, experts_rows, &j);
    free(order);
    free(starts);
    if (j.failed)
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_experts_forward: cannot allocate a %lld-float row",
                        (long long)e->n_cols);
    return KQ_OK;
}

static kq_status ref_experts_forward(kq_backend *b, const kq_experts *e, const float *x,
                                     int64_t token_stride, int64_t slot_stride,
                                     const int32_t *ids, int64_t m, int64_t top_k, float *y)
{
    return ref_experts_run(b, e, NULL, x, token_stride, slot_stride, ids, m, top_k, y);
}

static kq_status ref_experts_swiglu(kq_backend *b, const kq_experts *gate, const kq_experts *up,
                                    const float *x, int64_t token_stride, int64_t slot_stride,
                                    const int32_t *ids, int64_t m, int64_t top_k, float *y)
{
    return ref_experts_run(b, gate, up, x, token_stride, slot_stride, ids, m, top_k, y);
}

/* ---------------------------------------------------------------- backend */

static void ref_close(kq_backend *b) { free(b->impl); }

static kq_status ref_ceilings(kq_backend *b, kq_ceilings *out)
{
    return kq__cpu_ceilings(((ref_state *)b->impl)->threads, out);
}

static const kq_backend_ops ref_ops = {
    .kind = "cpu-ref",
    .host_memory = 1,
    .close = ref_close,
    .linear_forward = ref_linear_forward,
    .experts_forward = ref_experts_forward,
    .linear_glu = ref_linear_glu,
    .experts_swiglu = ref_experts_swiglu,
    .ceilings = ref_ceilings,
};

kq_status kq__cpu_ref_open(kq_backend *b)
{
    ref_state *s = calloc(1, sizeof *s);
    if (!s) return kq__fail(KQ_ERR_NO_MEMORY, "kq_backend_open: out of memory");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    /* Results do not depend on the thread count: each output is one thread's
     * double sum, so the default may use every core. */
    s->threads = b->spec.threads > 0 ? b->spec.threads : (int)(cores < 64 ? cores : 64);
    b->ops = &ref_ops;
    b->impl = s;
    snprintf(b->device, sizeof b->device,
             "%s, %ld cores; reference kernels (exact dequantization, double "
             "accumulation), %d thread%s",
             kq__cpu_model_name(), cores, s->threads, s->threads == 1 ? "" : "s");
    return KQ_OK;
}
