/* The public model calls (include/kquant_model.h): open, the KV cache and
 * its sequences, the batch checks in front of the forward pass, and the
 * tokenizer calls through the model. */
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/core.h"
#include "core/error.h"
#include "model.h"

/* n floats of backend memory, n counted in elements with overflow checked. */
static kq_status alloc_floats(kq_backend *b, int64_t a, int64_t c, float **out, const char *what)
{
    int64_t n;
    size_t bytes;
    if (a <= 0 || c <= 0 || kq__mul_i64(a, c, &n) || kq__mul_size((size_t)n, sizeof(float), &bytes))
        return kq__fail(KQ_ERR_NO_MEMORY, "model: %s of %lld x %lld floats is too large", what,
                        (long long)a, (long long)c);
    kq_status st = kq_alloc(b, bytes, (void **)out);
    return st == KQ_OK ? KQ_OK : kq__fail_context(st, "model: %s: ", what);
}

#ifdef KQ_HAVE_CUDA
#include "ops_cuda.h"
#endif

static void free_staging(kq_model_bufs *B)
{
#ifdef KQ_HAVE_CUDA
    /* the last copy out of the staging may still be queued */
    if (B->stage_ev) kq__cu_event_sync(B->stage_ev);
    kq__cu_event_free(B->stage_ev);
    kq__cu_host_free(B->stage);
#endif
    B->stage_ev = NULL;
    B->stage = NULL;
}

/* Page-locked staging of `floats` floats for a device pass's inputs, and the
 * event that guards it. */
static kq_status alloc_staging(kq_model *m, size_t floats)
{
#ifdef KQ_HAVE_CUDA
    kq_model_bufs *B = &m->buf;
    void *p = NULL;
    int e = kq__cu_host_alloc(floats * sizeof(float), &p);
    if (e)
        return kq__fail(KQ_ERR_NO_MEMORY, "model: %zu bytes of page-locked input staging: %s",
                        floats * sizeof(float), kq__cu_error_string(e));
    B->stage = p;
    if ((e = kq__cu_event_new(&B->stage_ev)))
        return kq__fail(KQ_ERR_BACKEND, "model: an event for the input staging: %s",
                        kq__cu_error_string(e));
    return KQ_OK;
#else
    (void)m, (void)floats;
    return kq__fail(KQ_ERR_UNSUPPORTED, "model: device input staging without the CUDA backend");
#endif
}

static void free_bufs(kq_model *m)
{
    kq_model_bufs *B = &m->buf;
    float **all[] = {&B->x, &B->h, &B->y, &B->qkv, &B->att, &B->ffa,
                     &B->router, &B->moe_w, &B->moe_act, &B->moe_out, &B->out_rows};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        kq_free(m->b, *all[i]);
        *all[i] = NULL;
    }
    kq_free(m->b, B->ids);
    kq_free(m->b, B->att_part);
    kq_free(m->b, B->att_ticket);
    B->att_part = NULL;
    B->att_ticket = NULL;
    B->att_tokens = 0;
    free_staging(B);
    free(B->host_router);
    free(B->host_w);
    free(B->host_ids);
    B->ids = B->d_idx = B->host_ids = NULL;
    B->host_router = B->host_w = NULL;
    B->cap = 0;
}

/* The split decode attention's scratch (ops_cuda.h), for the batches it
 * takes: the partial sums, and tickets that start at zero. */
static kq_status alloc_attention_scratch(kq_model *m, int64_t n)
{
#ifdef KQ_HAVE_CUDA
    kq_model_bufs *B = &m->buf;
    const int64_t t = n < KQ_CU_SPLIT_MAX_TOKENS ? n : KQ_CU_SPLIT_MAX_TOKENS;
    const kq_cu_arch a = {.n_head = (int)m->c.n_head, .head_dim = (int)m->c.head_dim};
    kq_status st;
    if ((st = alloc_floats(m->b, kq__cu_attention_part_floats(&a, t), 1, &B->att_part,
                           "attention partials")) ||
        (st = alloc_floats(m->b, t, m->c.n_head, (float **)&B->att_ticket, "attention tickets")))
        return st;
    const size_t tickets = (size_t)(t * m->c.n_head);
    int32_t *zero = calloc(tickets, sizeof(int32_t));
    if (!zero) return kq__fail(KQ_ERR_NO_MEMORY, "model: no host memory for the attention tickets");
    st = kq_copy_to_device(m->b, B->att_ticket, zero, tickets * sizeof(int32_t));
    free(zero);
    if (st == KQ_OK) B->att_tokens = t;
    return st;
#else
    (void)m, (void)n;
    return KQ_OK;
#endif
}

/* Scratch for a batch of n tokens (grown, never shrunk). */
static kq_status reserve(kq_model *m, int64_t n)
{
    if (n <= m->buf.cap) return KQ_OK;
    /* captured graphs name the buffers about to be freed */
    kq__model_graphs_free(m);
    free_bufs(m);
    const kq_model_config *c = &m->c;
    kq_model_bufs *B = &m->buf;
    const int64_t q_dim = c->n_head * c->head_dim, k = c->n_expert_used;
    /* on a device, x's allocation also holds the pass's positions,
     * sequences and wanted rows, so that one copy sends all inputs */
    const int64_t x_cols = c->n_embd + (m->dev ? 3 : 0);
    kq_status st;
    if ((st = alloc_floats(m->b, n, x_cols, &B->x, "batch x")) ||
        (st = alloc_floats(m->b, n, c->n_embd, &B->h, "batch h")) ||
        (st = alloc_floats(m->b, n, c->n_embd, &B->y, "batch y")) ||
        (st = alloc_floats(m->b, n, c->n_embd, &B->out_rows, "output rows")) ||
        (st = alloc_floats(m->b, n, q_dim + 2 * m->kv_dim, &B->qkv, "batch q/k/v")) ||
        (st = alloc_floats(m->b, n, q_dim, &B->att, "batch attention")))
        goto fail;
    if (c->n_expert > 0) {
        if ((st = alloc_floats(m->b, n, c->n_expert, &B->router, "router logits")) ||
            (st = alloc_floats(m->b, n, k, &B->moe_w, "expert weights")) ||
            (st = alloc_floats(m->b, n * k, c->n_ff_exp, &B->moe_act, "expert activations")) ||
            (st = alloc_floats(m->b, n * k, c->n_embd, &B->moe_out, "expert outputs")) ||
            (st = alloc_floats(m->b, n, k, (float **)&B->ids, "expert ids")))
            goto fail;
    } else {
        if ((st = alloc_floats(m->b, n, c->n_ff, &B->ffa, "batch feed-forward")))
            goto fail;
    }
    if (m->dev) {
        /* n x x_cols was checked by alloc_floats */
        if ((st = alloc_staging(m, (size_t)(n * x_cols))) || (st = alloc_attention_scratch(m, n)))
            goto fail;
        if (c->n_expert > 0) {
            B->host_router = malloc((size_t)n * (size_t)c->n_expert * sizeof(float));
            B->host_w = malloc((size_t)n * (size_t)k * sizeof(float));
            B->host_ids = malloc((size_t)n * (size_t)k * sizeof(int32_t));
            if (!B->host_router || !B->host_w || !B->host_ids) {
                st = kq__fail(KQ_ERR_NO_MEMORY, "model: no host memory for the routing");
                goto fail;
            }
        }
    }
    B->cap = n;
    return KQ_OK;
fail:
    free_bufs(m);
    return st;
}

static void own_logits_free(kq_model *m)
{
#ifdef KQ_HAVE_CUDA
    if (m->dev)
        kq__cu_host_free(m->buf.own_logits);
    else
#endif
        free(m->buf.own_logits);
    m->buf.own_logits = NULL;
    m->buf.own_mapped = 0;
    m->buf.cap_own = 0;
    m->buf.own_rows = 0;
}

static kq_status alloc_cache(kq_model *m)
{
    int64_t per_seq, total;
    if (kq__mul_i64(m->c.n_layer, m->n_ctx, &per_seq) || kq__mul_i64(per_seq, m->n_seq, &total))
        return kq__fail(KQ_ERR_NO_MEMORY, "model: KV cache of %lld layers x %lld positions x "
                        "%lld sequences is too large", (long long)m->c.n_layer,
                        (long long)m->n_ctx, (long long)m->n_seq);
    kq_status st;
    if ((st = alloc_floats(m->b, total, m->kv_dim, &m->k_cache, "K cache")) ||
        (st = alloc_floats(m->b, total, m->kv_dim, &m->v_cache, "V cache")))
        return st;
    if (m->dev) {
        const size_t bytes = (size_t)m->c.n_rot * sizeof(double);
        if ((st = kq_alloc(m->b, bytes, (void **)&m->d_inv_freq)) ||
            (st = kq_copy_to_device(m->b, m->d_inv_freq, m->c.inv_freq, bytes)))
            return kq__fail_context(st, "model: the RoPE table: ");
    }
    m->seq_len = calloc((size_t)m->n_seq, sizeof(int32_t));
    if (!m->seq_len) return kq__fail(KQ_ERR_NO_MEMORY, "model: no memory for the sequence table");
    return KQ_OK;
}

kq_status kq_model_open(kq_backend *b, const char *path, const kq_model_params *params,
                        kq_model **out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_model_open: out is NULL");
    *out = NULL;
    if (!b || !path) return kq__fail(KQ_ERR_INVALID_ARG, "kq_model_open: backend or path is NULL");
#ifndef KQ_HAVE_CUDA
    if (!b->ops->host_memory)
        return kq__fail(KQ_ERR_UNSUPPORTED,
                        "kq_model_open: this build runs models on host-memory backends only, not '%s'",
                        b->name);
#endif
    kq_model_params p = {0, 0};
    if (params) p = *params;
    if (p.n_ctx < 0 || p.n_ctx > KQ_MODEL_MAX_CTX || p.n_seq < 0 || p.n_seq > KQ_MODEL_MAX_SEQ)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_model_open: n_ctx = %d (0..%d), n_seq = %d (0..%d)",
                        p.n_ctx, KQ_MODEL_MAX_CTX, p.n_seq, KQ_MODEL_MAX_SEQ);

    kq_model *m = calloc(1, sizeof *m);
    if (!m) return kq__fail(KQ_ERR_NO_MEMORY, "kq_model_open: no memory");
    m->b = b;
    m->dev = !b->ops->host_memory;
    kq__model_graphs_init(m);
    kq_status st = kq_gguf_open(path, &m->g);
    if (st == KQ_OK) st = kq__model_config(m->g, &m->c);
    const char *tk;
    size_t tk_len;
    /* A file without a vocabulary still runs on token ids. */
    if (st == KQ_OK && kq_gguf_get_string(m->g, "tokenizer.ggml.model", &tk, &tk_len) == KQ_OK) {
        st = kq__tokenizer_from_gguf(m->g, &m->tok);
        if (st == KQ_OK && kq__tokenizer_n_vocab(m->tok) > m->c.n_vocab)
            st = kq__fail(KQ_ERR_FORMAT, "model: the tokenizer has %d tokens, token_embd.weight %lld rows",
                          kq__tokenizer_n_vocab(m->tok), (long long)m->c.n_vocab);
    }
    if (st == KQ_OK) {
        const char *s;
        size_t len;
        if (kq_gguf_get_string(m->g, "general.name", &s, &len) == KQ_OK) {
            if (len >= sizeof m->name) len = sizeof m->name - 1;
            memcpy(m->name, s, len);
        }
        m->kv_dim = m->c.n_head_kv * m->c.head_dim;
        /* the device kernels stage one head in shared memory */
        if (m->dev && m->c.head_dim > 1024)
            st = kq__fail(KQ_ERR_UNSUPPORTED, "model: head dimension %lld on '%s': at most 1024",
                          (long long)m->c.head_dim, b->name);
    }
    if (st == KQ_OK) {
        m->n_ctx = p.n_ctx ? p.n_ctx : (m->c.n_ctx_train < 4096 ? m->c.n_ctx_train : 4096);
        m->n_seq = p.n_seq ? p.n_seq : 1;
        st = kq__model_load_weights(m);
    }
    if (st == KQ_OK) st = alloc_cache(m);
    if (st == KQ_OK) st = reserve(m, 1);
    if (st != KQ_OK) {
        kq_model_free(m);
        return st;
    }
    *out = m;
    return KQ_OK;
}

void kq_model_free(kq_model *m)
{
    if (!m) return;
    kq__model_graphs_free(m);
    free_bufs(m);
    kq_free(m->b, m->buf.d_logits);
    own_logits_free(m);
    kq__model_free_weights(m);
    kq_free(m->b, m->k_cache);
    kq_free(m->b, m->v_cache);
    kq_free(m->b, m->d_inv_freq);
    free(m->seq_len);
    kq__tokenizer_free(m->tok);
    kq__model_config_free(&m->c);
    kq_gguf_close(m->g);
    free(m);
}

kq_status kq_model_get_info(const kq_model *m, kq_model_info *out)
{
    kq__clear_error();
    if (!m || !out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_model_get_info: NULL argument");
    const kq_model_config *c = &m->c;
    *out = (kq_model_info){
        .arch = c->arch_name, .name = m->name, .n_vocab = (int32_t)c->n_vocab,
        .n_embd = (int32_t)c->n_embd, .n_layer = (int32_t)c->n_layer,
        .n_head = (int32_t)c->n_head, .n_head_kv = (int32_t)c->n_head_kv,
        .head_dim = (int32_t)c->head_dim, .n_ff = (int32_t)(c->n_expert ? c->n_ff_exp : c->n_ff),
        .n_expert = (int32_t)c->n_expert, .n_expert_used = (int32_t)c->n_expert_used,
        .n_ctx = (int32_t)m->n_ctx, .n_seq = (int32_t)m->n_seq,
        .bos = m->tok ? kq__tokenizer_bos(m->tok) : -1,
        .eos = m->tok ? kq__tokenizer_eos(m->tok) : -1,
        .weight_bytes = m->weight_bytes,
    };
    return KQ_OK;
}

uint64_t kq_model_graph_replays(const kq_model *m)
{
    return m ? m->graphs.replays : 0;
}

kq_status kq_model_tokenize(const kq_model *m, const char *text, size_t len, int add_special,
                            int parse_special, int32_t **out, size_t *n_out)
{
    kq__clear_error();
    if (!m || (!text && len) || !out || !n_out)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_model_tokenize: NULL argument");
    if (!m->tok) return kq__fail(KQ_ERR_UNSUPPORTED, "kq_model_tokenize: the file has no tokenizer");
    return kq__tokenize(m->tok, text ? text : "", len, add_special, parse_special, out, n_out);
}

kq_status kq_model_token_to_piece(const kq_model *m, int32_t id, char *buf, size_t cap,
                                  size_t *len)
{
    kq__clear_error();
    if (!m || (!buf && cap) || !len)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_model_token_to_piece: NULL argument");
    if (!m->tok)
        return kq__fail(KQ_ERR_UNSUPPORTED, "kq_model_token_to_piece: the file has no tokenizer");
    return kq__token_to_piece(m->tok, id, 0, buf, cap, len);
}

int kq_model_is_eog(const kq_model *m, int32_t id)
{
    return m && m->tok && kq__tokenizer_is_eog(m->tok, id);
}

/* Each sequence's positions must continue it in batch order; the check runs
 * on a copy of the lengths, so a refused batch changes nothing. */
static kq_status check_batch(const kq_model *m, const int32_t *tokens, const int32_t *pos,
                             const int32_t *seq, int64_t n, int32_t *len)
{
    memcpy(len, m->seq_len, (size_t)m->n_seq * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        int32_t s = seq ? seq[i] : 0;
        if (tokens[i] < 0 || tokens[i] >= m->c.n_vocab)
            return kq__fail(KQ_ERR_RANGE, "kq_model_forward: token %lld is %d, outside [0, %lld)",
                            (long long)i, tokens[i], (long long)m->c.n_vocab);
        if (s < 0 || s >= m->n_seq)
            return kq__fail(KQ_ERR_RANGE, "kq_model_forward: seq[%lld] = %d, outside [0, %lld)",
                            (long long)i, s, (long long)m->n_seq);
        if (pos[i] != len[s])
            return kq__fail(KQ_ERR_INVALID_ARG,
                            "kq_model_forward: pos[%lld] = %d, but sequence %d continues at %d",
                            (long long)i, pos[i], s, len[s]);
        if (pos[i] >= m->n_ctx)
            return kq__fail(KQ_ERR_RANGE, "kq_model_forward: pos[%lld] = %d: the context holds %lld",
                            (long long)i, pos[i], (long long)m->n_ctx);
        len[s]++;
    }
    return KQ_OK;
}

/* Room for n_out rows of logits of the model's own (grown, never shrunk). */
static kq_status own_logits_reserve(kq_model *m, int64_t n_out)
{
    if (n_out <= m->buf.cap_own) return KQ_OK;
    kq__model_graphs_free(m); /* a head may write the old buffer */
    own_logits_free(m);
    size_t bytes;
    if (kq__mul_size((size_t)n_out, (size_t)m->c.n_vocab * sizeof(float), &bytes))
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_model_forward: logits of %lld rows are too large",
                        (long long)n_out);
    void *p = NULL;
#ifdef KQ_HAVE_CUDA
    if (m->dev) {
        int e = kq__cu_host_alloc(bytes, &p);
        if (e)
            return kq__fail(KQ_ERR_NO_MEMORY, "kq_model_forward: %zu bytes of page-locked memory "
                            "for the logits: %s", bytes, kq__cu_error_string(e));
        m->buf.own_mapped = kq__cu_host_mapped(p);
    } else
#endif
        p = malloc(bytes);
    if (!p)
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_model_forward: no memory for %lld rows of logits",
                        (long long)n_out);
    m->buf.own_logits = p;
    m->buf.cap_own = n_out;
    return KQ_OK;
}

const float *kq_model_logits(const kq_model *m, int64_t *rows)
{
    const int64_t r = m ? m->buf.own_rows : 0;
    if (rows) *rows = r;
    return r > 0 ? m->buf.own_logits : NULL;
}

kq_status kq_model_forward(kq_model *m, const int32_t *tokens, const int32_t *pos,
                           const int32_t *seq, int64_t n, const uint8_t *want_logits,
                           float *logits)
{
    kq__clear_error();
    if (!m || !tokens || !pos || n <= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_model_forward: NULL argument or n = %lld",
                        (long long)n);
    int64_t n_out = 0;
    for (int64_t i = 0; i < n; i++) n_out += !want_logits || want_logits[i];
    m->buf.own_rows = 0;
    if (n > (int64_t)m->n_seq * m->n_ctx)
        return kq__fail(KQ_ERR_RANGE, "kq_model_forward: n = %lld exceeds the cache", (long long)n);
    int32_t *len = malloc((size_t)m->n_seq * sizeof(int32_t));
    if (!len) return kq__fail(KQ_ERR_NO_MEMORY, "kq_model_forward: no memory");
    kq_status st = check_batch(m, tokens, pos, seq, n, len);
    if (st == KQ_OK) st = reserve(m, n);
    const int own = n_out > 0 && !logits;
    if (st == KQ_OK && own && (st = own_logits_reserve(m, n_out)) == KQ_OK) logits = m->buf.own_logits;
    if (st == KQ_OK) st = kq__model_forward(m, tokens, pos, seq, n, want_logits, logits);
    if (st == KQ_OK) memcpy(m->seq_len, len, (size_t)m->n_seq * sizeof(int32_t));
    if (st == KQ_OK && own) m->buf.own_rows = n_out;
    free(len);
    return st;
}

kq_status kq_model_seq_reset(kq_model *m, int32_t seq)
{
    kq__clear_error();
    if (!m) return kq__fail(KQ_ERR_INVALID_ARG, "kq_model_seq_reset: model is NULL");
    if (seq == -1) {
        memset(m->seq_len, 0, (size_t)m->n_seq * sizeof(int32_t));
        return KQ_OK;
    }
    if (seq < 0 || seq >= m->n_seq)
        return kq__fail(KQ_ERR_RANGE, "kq_model_seq_reset: seq = %d, outside [0, %lld)", seq,
                        (long long)m->n_seq);
    m->seq_len[seq] = 0;
    return KQ_OK;
}

int32_t kq_model_seq_len(const kq_model *m, int32_t seq)
{
    if (!m || seq < 0 || seq >= m->n_seq) return -1;
    return m->seq_len[seq];
}
