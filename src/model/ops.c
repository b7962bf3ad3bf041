/* The forward pass's operations, each run where the backend keeps its
 * memory: on the host (ops_cpu.c, attention.c) or on the CUDA device
 * (ops_cuda.cu, queued on the backend's stream). forward.c calls only these. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/error.h"
#include "model.h"
#include "ops.h"

/* KQ_PROFILE=1: every op below is timed like a linear call (the backend
 * drained before and after), under "model:<op>", so that the profile of a
 * whole pass shows the time between the linears too. m is the rows. */
static kq_status prof_begin(kq_model *m, double *t0)
{
    *t0 = 0;
    return kq__profile_enabled() ? kq__profile_start(m->b, t0) : KQ_OK;
}

static kq_status prof_end(kq_model *m, kq_status st, double t0, const char *op, int64_t rows,
                          int64_t n)
{
    if (!kq__profile_enabled()) return st;
    return kq__profile_stop(m->b, st, t0, op, "f32", n, 0, 0, 0, rows);
}

/* Runs `call` (a kq_status expression) between prof_begin and prof_end. */
#define PROFILED(op, rows, n, call)                                \
    do {                                                           \
        double t0_;                                                \
        kq_status st_ = prof_begin(m, &t0_);                       \
        if (st_ == KQ_OK) st_ = (call);                            \
        return prof_end(m, st_, t0_, "model:" op, (rows), (n));    \
    } while (0)
#ifdef KQ_HAVE_CUDA
#include "ops_cuda.h"

static kq_status cu(int err, const char *what)
{
    if (!err) return KQ_OK;
    return kq__fail(KQ_ERR_BACKEND, "model: %s on the device: %s", what, kq__cu_error_string(err));
}

static kq_cu_arch cu_arch(const kq_model *m)
{
    const kq_model_config *c = &m->c;
    kq_cu_arch a = {(int)c->n_head, (int)c->n_head_kv, (int)c->head_dim, (int)c->n_rot,
                    c->rope_neox, (int)c->n_layer, m->n_ctx, c->n_swa, (float)c->eps,
                    c->attn_scale, c->rope_base, c->rope_scale, c->rope_base_swa,
                    c->rope_scale_swa};
    return a;
}
#define STREAM kq_backend_stream(m->b)
#endif

static kq_status rmsnorm_run(kq_model *m, const float *x, const float *w, float *y, int64_t rows,
                             int64_t n, int64_t sx, int64_t sy)
{
#ifdef KQ_HAVE_CUDA
    if (m->dev) return cu(kq__cu_rmsnorm(STREAM, x, w, y, rows, n, sx, sy, (float)m->c.eps), "rmsnorm");
#endif
    kq__op_rmsnorm(m->b, x, w, y, rows, n, sx, sy, m->c.eps);
    return KQ_OK;
}

kq_status kq__mop_rmsnorm(kq_model *m, const float *x, const float *w, float *y, int64_t rows,
                          int64_t n, int64_t sx, int64_t sy)
{
    PROFILED("rmsnorm", rows, n, rmsnorm_run(m, x, w, y, rows, n, sx, sy));
}

/* The end of a sublayer: y through its own norm (post_w; NULL: none), added
 * into the residual stream x, and the next sublayer's input h = norm(x)
 * with norm_w (NULL: h is not written). One kernel on a device, where it
 * replaces three small launches; on the host the same three steps. */
static kq_status residual_run(kq_model *m, float *x, float *y, const float *post_w,
                              const float *norm_w, float *h, int64_t rows)
{
    const int64_t d = m->c.n_embd;
#ifdef KQ_HAVE_CUDA
    if (m->dev)
        return cu(kq__cu_residual(STREAM, x, y, post_w, norm_w, h, rows, d, (float)m->c.eps),
                  "residual and norm");
#endif
    if (post_w) kq__op_rmsnorm(m->b, y, post_w, y, rows, d, d, d, m->c.eps);
    kq__op_add(m->b, x, y, rows * d);
    if (norm_w) kq__op_rmsnorm(m->b, x, norm_w, h, rows, d, d, d, m->c.eps);
    return KQ_OK;
}

kq_status kq__mop_residual(kq_model *m, float *x, float *y, const float *post_w,
                           const float *norm_w, float *h, int64_t rows)
{
    PROFILED("residual", rows, m->c.n_embd, residual_run(m, x, y, post_w, norm_w, h, rows));
}

static kq_status add_rows_run(kq_model *m, float *y, const float *bias, int64_t rows, int64_t n)
{
#ifdef KQ_HAVE_CUDA
    if (m->dev) return cu(kq__cu_add_rows(STREAM, y, bias, rows, n), "bias");
#endif
    (void)m;
    kq__op_add_rows(y, bias, rows, n);
    return KQ_OK;
}

kq_status kq__mop_add_rows(kq_model *m, float *y, const float *bias, int64_t rows, int64_t n)
{
    PROFILED("add_rows", rows, n, add_rows_run(m, y, bias, rows, n));
}

static kq_status softcap_run(kq_model *m, float *x, float cap, int64_t n)
{
#ifdef KQ_HAVE_CUDA
    if (m->dev) return cu(kq__cu_softcap(STREAM, x, cap, n), "softcap");
#endif
    (void)m;
    for (int64_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
    return KQ_OK;
}

kq_status kq__mop_softcap(kq_model *m, float *x, float cap, int64_t n)
{
    PROFILED("softcap", 1, n, softcap_run(m, x, cap, n));
}

/* The batch's embedding rows into dst, dequantized on the host from the
 * file's mapping. */
static kq_status embed_rows(kq_model *m, const int32_t *tokens, int64_t n, float *dst)
{
    const int64_t d = m->c.n_embd;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *row = (const uint8_t *)m->embd.data + (size_t)tokens[i] * m->embd_row_bytes;
        float *x = dst + i * d;
        kq_status st = kq_dequantize(m->embd.type, row, m->embd_row_bytes, 1, d, x);
        if (st != KQ_OK) return kq__fail_context(st, "model: token_embd row %d: ", tokens[i]);
        if (m->c.embd_scale != 1.0f)
            for (int64_t k = 0; k < d; k++) x[k] *= m->c.embd_scale;
    }
    return KQ_OK;
}

kq_status kq__mop_embed(kq_model *m, const int32_t *tokens, int64_t n)
{
    if (m->dev) return kq__fail(KQ_ERR_UNSUPPORTED, "model: host embedding on a device backend");
    PROFILED("embed", n, m->c.n_embd, embed_rows(m, tokens, n, m->buf.x));
}

/* A device pass's inputs go in one asynchronous copy from page-locked
 * staging laid out as x's allocation: the embedding rows, then positions,
 * sequences and wanted rows as int32. A decode step's synchronous copies
 * (three, from pageable memory) took ~8 us each on an H100 (RESULTS.md,
 * seventh session). The host writes the staging only after the previous
 * copy out of it has run (stage_ev). */
static kq_status inputs_run(kq_model *m, const int32_t *tokens, const int32_t *pos,
                            const int32_t *seq, const int32_t *idx, int64_t n, int64_t n_out,
                            const int32_t **dpos, const int32_t **dseq)
{
#ifdef KQ_HAVE_CUDA
    kq_model_bufs *B = &m->buf;
    const int64_t d = m->c.n_embd, n_idx = n_out < n ? n_out : 0;
    int e = kq__cu_event_sync(B->stage_ev);
    if (e) return cu(e, "waiting for the last input copy");
    kq_status st = embed_rows(m, tokens, n, B->stage);
    if (st != KQ_OK) return st;
    int32_t *si = (int32_t *)(B->stage + n * d);
    memcpy(si, pos, (size_t)n * sizeof(int32_t));
    memcpy(si + n, seq, (size_t)n * sizeof(int32_t));
    if (n_idx) memcpy(si + 2 * n, idx, (size_t)n_idx * sizeof(int32_t));
    /* reserve() sized both sides for n x (n_embd + 3) */
    const size_t bytes = (size_t)(n * d + 2 * n + n_idx) * sizeof(float);
    if ((e = kq__cu_copy_in_async(STREAM, B->x, B->stage, bytes)) ||
        (e = kq__cu_event_record(B->stage_ev, STREAM)))
        return cu(e, "copying the pass's inputs");
    int32_t *di = (int32_t *)(B->x + n * d);
    *dpos = di;
    *dseq = di + n;
    B->d_idx = di + 2 * n;
    return KQ_OK;
#else
    (void)m, (void)tokens, (void)pos, (void)seq, (void)idx, (void)n, (void)n_out, (void)dpos, (void)dseq;
    return kq__fail(KQ_ERR_UNSUPPORTED, "model: device inputs without the CUDA backend");
#endif
}

kq_status kq__mop_inputs(kq_model *m, const int32_t *tokens, const int32_t *pos,
                         const int32_t *seq, const int32_t *idx, int64_t n, int64_t n_out,
                         const int32_t **dpos, const int32_t **dseq)
{
    PROFILED("inputs", n, m->c.n_embd, inputs_run(m, tokens, pos, seq, idx, n, n_out, dpos, dseq));
}

static kq_status attention_run(kq_model *m, int64_t layer, const int32_t *pos, const int32_t *seq,
                               int64_t n)
{
#ifdef KQ_HAVE_CUDA
    if (m->dev) {
        const kq_model_layer *L = &m->layers[layer];
        kq_cu_arch a = cu_arch(m);
        int swa = m->c.n_swa > 0 && m->c.is_swa[layer];
        kq_status st = cu(kq__cu_qk_prep(STREAM, &a, (int)layer, swa, m->buf.qkv, L->q_norm,
                                         L->k_norm, L->rope_freqs, m->d_inv_freq, pos, seq, n,
                                         m->k_cache,
                                         m->v_cache), "q/k norms and rope");
        if (st != KQ_OK) return st;
        const kq_cu_att_scratch sc = {m->buf.att_part, m->buf.att_ticket, m->buf.att_tokens};
        return cu(kq__cu_attention(STREAM, &a, (int)layer, swa, m->buf.qkv, pos, seq, n, m->k_cache,
                                   m->v_cache, &sc, m->buf.att), "attention");
    }
#endif
    kq__model_qk_prep(m, layer, pos, seq, n);
    return kq__model_attention(m, layer, pos, seq, n);
}

kq_status kq__mop_attention(kq_model *m, int64_t layer, const int32_t *pos, const int32_t *seq,
                            int64_t n)
{
    PROFILED("attention", n, m->c.n_head * m->c.head_dim, attention_run(m, layer, pos, seq, n));
}

/* Router logits -> top-k ids and weights: on the host (the logits are copied
 * over from a device), the ids and weights then where the experts read them. */
kq_status kq__mop_route(kq_model *m, int64_t n)
{
    const kq_model_config *c = &m->c;
    const int64_t k = c->n_expert_used;
    float *lg = m->dev ? m->buf.host_router : m->buf.router;
    int32_t *ids = m->dev ? m->buf.host_ids : m->buf.ids;
    float *w = m->dev ? m->buf.host_w : m->buf.moe_w;
    kq_status st;
    if (m->dev && (st = kq_copy_to_host(m->b, lg, m->buf.router,
                                         (size_t)(n * c->n_expert) * sizeof(float))))
        return st;
    for (int64_t i = 0; i < n; i++)
        kq__op_softmax_topk(lg + i * c->n_expert, c->n_expert, k, 1, ids + i * k, w + i * k);
    if (!m->dev) return KQ_OK;
    st = kq_copy_to_device(m->b, m->buf.ids, ids, (size_t)(n * k) * sizeof(int32_t));
    if (st == KQ_OK) st = kq_copy_to_device(m->b, m->buf.moe_w, w, (size_t)(n * k) * sizeof(float));
    return st;
}

static kq_status moe_combine_run(kq_model *m, int64_t n)
{
    const int64_t d = m->c.n_embd, k = m->c.n_expert_used;
#ifdef KQ_HAVE_CUDA
    if (m->dev) return cu(kq__cu_moe_combine(STREAM, m->buf.moe_out, m->buf.moe_w, m->buf.y, n, k, d), "expert sum");
#endif
    for (int64_t i = 0; i < n; i++) {
        float *y = m->buf.y + i * d;
        for (int64_t j = 0; j < d; j++) y[j] = 0;
        for (int64_t s = 0; s < k; s++) {
            const float *e = m->buf.moe_out + (i * k + s) * d;
            float w = m->buf.moe_w[i * k + s];
            for (int64_t j = 0; j < d; j++) y[j] += w * e[j];
        }
    }
    return KQ_OK;
}

kq_status kq__mop_moe_combine(kq_model *m, int64_t n)
{
    PROFILED("moe_sum", n, m->c.n_embd, moe_combine_run(m, n));
}

/* The wanted rows' indices where the device gather reads them (before a
 * pass: a synchronous copy, which a captured pass cannot hold). */
/* out_rows = the rows of x that buf.d_idx names (device backends only: the
 * host path keeps its wanted rows in place). */
kq_status kq__mop_gather(kq_model *m, int64_t n_out)
{
#ifdef KQ_HAVE_CUDA
    if (m->dev)
        return cu(kq__cu_gather_rows(STREAM, m->buf.x, m->buf.d_idx, m->buf.out_rows, n_out, m->c.n_embd),
                  "gather");
#endif
    (void)m, (void)n_out;
    return kq__fail(KQ_ERR_UNSUPPORTED, "model: a device row gather on a host backend");
}

/* The head may write the model's own page-locked logits itself: its stores
 * cross the bus while it runs, where a copy after it took ~27 us a step
 * for Gemma 3's 1 MB of logits on an H100 (RESULTS.md, seventh session),
 * and 8 times that for 8 sequences. Not where a pass adds a bias or a
 * softcap to the logits (those kernels would read them over the bus too);
 * KQ_LOGITS_DIRECT=0 turns it off, for comparison. */
static int logits_direct(const kq_model *m, const float *host_logits)
{
    static atomic_int off = -1; /* read once; racing first calls agree */
    int o = atomic_load_explicit(&off, memory_order_relaxed);
    if (o < 0) {
        const char *e = getenv("KQ_LOGITS_DIRECT");
        o = e && !strcmp(e, "0");
        atomic_store_explicit(&off, o, memory_order_relaxed);
    }
    return !o && host_logits == m->buf.own_logits && m->buf.own_mapped && !m->output_bias &&
           !(m->c.softcap > 0);
}

/* Where the output head writes: the caller's host array on host backends; on
 * the others a device buffer (grown as needed), or the model's own
 * page-locked logits (logits_direct). */
kq_status kq__mop_logits_dst(kq_model *m, float *host_logits, int64_t n_out, float **dst)
{
    m->buf.logits_direct = 0;
    if (!m->dev) {
        *dst = host_logits;
        return KQ_OK;
    }
    if (logits_direct(m, host_logits)) {
        m->buf.logits_direct = 1;
        *dst = host_logits;
        return KQ_OK;
    }
    if (n_out > m->buf.cap_logits) {
        kq__model_graphs_free(m); /* they name the old logits buffer */
        kq_free(m->b, m->buf.d_logits);
        m->buf.d_logits = NULL;
        m->buf.cap_logits = 0;
        size_t bytes;
        if (__builtin_mul_overflow((size_t)n_out, (size_t)m->c.n_vocab * sizeof(float), &bytes))
            return kq__fail(KQ_ERR_NO_MEMORY, "model: logits of %lld rows are too large", (long long)n_out);
        kq_status st = kq_alloc(m->b, bytes, (void **)&m->buf.d_logits);
        if (st != KQ_OK) return st;
        m->buf.cap_logits = n_out;
    }
    *dst = m->buf.d_logits;
    return KQ_OK;
}

static kq_status logits_out_run(kq_model *m, float *host_logits, int64_t n_out)
{
    if (!m->dev) return KQ_OK;
    if (m->buf.logits_direct) return kq_backend_sync(m->b);
    return kq_copy_to_host(m->b, host_logits, m->buf.d_logits,
                           (size_t)(n_out * m->c.n_vocab) * sizeof(float));
}

kq_status kq__mop_logits_out(kq_model *m, float *host_logits, int64_t n_out)
{
    PROFILED("logits_out", n_out, m->c.n_vocab, logits_out_run(m, host_logits, n_out));
}
