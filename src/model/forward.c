/* One forward pass over a batch of tokens: the embedding rows, then per layer
 * norm -> fused q/k/v -> q/k norms and RoPE -> KV cache -> attention ->
 * output projection -> residual -> norm -> feed-forward (SwiGLU, GELU-gated or
 * routed experts) -> residual, then the final norm and the output head for the
 * rows whose logits are wanted. Every linear is one kquant call over the
 * whole batch, so a prompt takes the GEMM paths and a --parallel step the
 * batched-decode ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model.h"

/* Token embeddings, dequantized from the file's rows and scaled. */
static kq_status embed(kq_model *m, const int32_t *tokens, int64_t n)
{
    const int64_t d = m->c.n_embd;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *row = (const uint8_t *)m->embd.data + (size_t)tokens[i] * m->embd_row_bytes;
        float *x = m->buf.x + i * d;
        kq_status st = kq_dequantize(m->embd.type, row, m->embd_row_bytes, 1, d, x);
        if (st != KQ_OK) return kq__fail_context(st, "model: token_embd row %d: ", tokens[i]);
        if (m->c.embd_scale != 1.0f)
            for (int64_t k = 0; k < d; k++) x[k] *= m->c.embd_scale;
    }
    return KQ_OK;
}

typedef struct qk_task {
    kq_model *m;
    int64_t layer;
    const int32_t *pos, *seq;
} qk_task;

static void norm_heads(float *v, const float *w, int64_t heads, int64_t hd, double eps)
{
    for (int64_t h = 0; h < heads; h++) {
        float *x = v + h * hd;
        double ss = 0;
        for (int64_t i = 0; i < hd; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / sqrt(ss / (double)hd + eps));
        for (int64_t i = 0; i < hd; i++) x[i] = x[i] * scale * w[i];
    }
}

/* Per token: q/k head norms, RoPE, and the key and value into the cache. */
static void qk_rows(void *ctx, int64_t b, int64_t e)
{
    const qk_task *t = ctx;
    kq_model *m = t->m;
    const kq_model_config *c = &m->c;
    const kq_model_layer *L = &m->layers[t->layer];
    const int64_t hd = c->head_dim, q_dim = c->n_head * hd, kv = m->kv_dim;
    for (int64_t i = b; i < e; i++) {
        float *q = m->buf.qkv + i * (q_dim + 2 * kv), *k = q + q_dim, *v = k + kv;
        if (c->qk_norm) {
            norm_heads(q, L->q_norm, c->n_head, hd, c->eps);
            norm_heads(k, L->k_norm, c->n_head_kv, hd, c->eps);
        }
        kq__op_rope(c, t->layer, L->rope_freqs, q, c->n_head, hd, t->pos[i]);
        kq__op_rope(c, t->layer, L->rope_freqs, k, c->n_head_kv, hd, t->pos[i]);
        size_t s = t->seq ? (size_t)t->seq[i] : 0;
        size_t slot = ((s * (size_t)c->n_layer + (size_t)t->layer) * (size_t)m->n_ctx +
                       (size_t)t->pos[i]) * (size_t)kv;
        memcpy(m->k_cache + slot, k, (size_t)kv * sizeof(float));
        memcpy(m->v_cache + slot, v, (size_t)kv * sizeof(float));
    }
}

/* Keeps the rows of the tokens whose logits are wanted, in order, at the
 * front of x and q/k/v (and of pos and seq): past the last layer's KV cache
 * write, the other rows feed nothing. Returns their count. */
static int64_t keep_wanted(kq_model *m, const uint8_t *want, int32_t *pos, int32_t *seq, int64_t n)
{
    const int64_t d = m->c.n_embd, qkv_dim = m->c.n_head * m->c.head_dim + 2 * m->kv_dim;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!want[i]) continue;
        if (k != i) {
            memcpy(m->buf.x + k * d, m->buf.x + i * d, (size_t)d * sizeof(float));
            memcpy(m->buf.qkv + k * qkv_dim, m->buf.qkv + i * qkv_dim, (size_t)qkv_dim * sizeof(float));
            pos[k] = pos[i];
            seq[k] = seq[i];
        }
        k++;
    }
    return k;
}

/* want (NULL: all rows) is given for the last layer only; *n shrinks to the
 * wanted rows there. pos and seq are the forward's own copies. */
static kq_status attention_block(kq_model *m, int64_t l, int32_t *pos, int32_t *seq, int64_t *np,
                                 const uint8_t *want)
{
    int64_t n = *np;
    const kq_model_config *c = &m->c;
    const kq_model_layer *L = &m->layers[l];
    const int64_t d = c->n_embd, qkv_dim = c->n_head * c->head_dim + 2 * m->kv_dim;
    kq_status st;
    kq__op_rmsnorm(m->b, m->buf.x, L->attn_norm, m->buf.h, n, d, d, d, c->eps);
    if ((st = kq_linear_forward(m->b, L->qkv, m->buf.h, m->buf.qkv, n))) return st;
    if (L->qkv_bias) kq__op_add_rows(m->buf.qkv, L->qkv_bias, n, qkv_dim);
    qk_task t = {m, l, pos, seq};
    kq__model_parallel(m->b, n, 1, qk_rows, &t);
    if (want) *np = n = keep_wanted(m, want, pos, seq, n);
    if (n == 0) return KQ_OK;
    if ((st = kq__model_attention(m, l, pos, seq, n))) return st;
    if ((st = kq_linear_forward(m->b, L->wo, m->buf.att, m->buf.y, n))) return st;
    if (L->post_attn_norm)
        kq__op_rmsnorm(m->b, m->buf.y, L->post_attn_norm, m->buf.y, n, d, d, d, c->eps);
    kq__op_add(m->b, m->buf.x, m->buf.y, n * d);
    return KQ_OK;
}

/* Routed experts: softmax over the router's logits, top-k renormalised
 * (qwen3moe), SwiGLU per chosen expert, and the weighted sum of their outputs. */
static kq_status moe_block(kq_model *m, const kq_model_layer *L, int64_t n)
{
    const kq_model_config *c = &m->c;
    const int64_t d = c->n_embd, k = c->n_expert_used, f = c->n_ff_exp;
    kq_status st;
    if ((st = kq_linear_forward(m->b, L->router, m->buf.h, m->buf.router, n))) return st;
    for (int64_t i = 0; i < n; i++)
        kq__op_softmax_topk(m->buf.router + i * c->n_expert, c->n_expert, k, 1, m->buf.ids + i * k,
                            m->buf.moe_w + i * k);
    if ((st = kq_experts_forward_swiglu(m->b, L->gate_exps, L->up_exps, m->buf.h, d, 0, m->buf.ids,
                                        n, k, m->buf.moe_act)))
        return st;
    if ((st = kq_experts_forward(m->b, L->down_exps, m->buf.moe_act, k * f, f, m->buf.ids, n, k,
                                 m->buf.moe_out)))
        return st;
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

static kq_status ffn_block(kq_model *m, int64_t l, int64_t n)
{
    const kq_model_config *c = &m->c;
    const kq_model_layer *L = &m->layers[l];
    const int64_t d = c->n_embd;
    kq_status st;
    kq__op_rmsnorm(m->b, m->buf.x, L->ffn_norm, m->buf.h, n, d, d, d, c->eps);
    if (c->n_expert > 0) {
        if ((st = moe_block(m, L, n))) return st;
    } else {
        if (c->gelu) {
            if ((st = kq_linear_forward(m->b, L->gate_up, m->buf.h, m->buf.ff, n))) return st;
            kq__op_gelu_mul(m->b, m->buf.ff, m->buf.ffa, n, c->n_ff);
        } else {
            if ((st = kq_linear_forward_swiglu(m->b, L->gate_up, m->buf.h, m->buf.ffa, n))) return st;
        }
        if ((st = kq_linear_forward(m->b, L->down, m->buf.ffa, m->buf.y, n))) return st;
    }
    if (L->post_ffn_norm)
        kq__op_rmsnorm(m->b, m->buf.y, L->post_ffn_norm, m->buf.y, n, d, d, d, c->eps);
    kq__op_add(m->b, m->buf.x, m->buf.y, n * d);
    return KQ_OK;
}

kq_status kq__model_forward(kq_model *m, const int32_t *tokens, const int32_t *pos_in,
                            const int32_t *seq_in, int64_t n, const uint8_t *want, float *logits)
{
    const kq_model_config *c = &m->c;
    const int64_t d = c->n_embd;
    int32_t *pos = malloc((size_t)n * 2 * sizeof(int32_t));
    if (!pos) return kq__fail(KQ_ERR_NO_MEMORY, "model: no memory for a batch of %lld", (long long)n);
    int32_t *seq = pos + n;
    memcpy(pos, pos_in, (size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) seq[i] = seq_in ? seq_in[i] : 0;
    int64_t rows = n;
    kq_status st = embed(m, tokens, n);
    for (int64_t l = 0; st == KQ_OK && l < c->n_layer; l++) {
        st = attention_block(m, l, pos, seq, &rows, l == c->n_layer - 1 ? want : NULL);
        if (st == KQ_OK && rows > 0) st = ffn_block(m, l, rows);
        if (st != KQ_OK) st = kq__fail_context(st, "model: layer %lld: ", (long long)l);
    }
    free(pos);
    if (st != KQ_OK || rows == 0) return st;

    /* rows: every token's, or the wanted ones' (kept in order by the last layer) */
    const int64_t n_out = rows;
    kq__op_rmsnorm(m->b, m->buf.x, m->out_norm, m->buf.out_rows, n_out, d, d, d, c->eps);
    if ((st = kq_linear_forward(m->b, m->output, m->buf.out_rows, logits, n_out)))
        return kq__fail_context(st, "model: output head: ");
    if (m->output_bias) kq__op_add_rows(logits, m->output_bias, n_out, c->n_vocab);
    if (c->softcap > 0) {
        float cap = c->softcap;
        for (int64_t i = 0; i < n_out * c->n_vocab; i++) logits[i] = cap * tanhf(logits[i] / cap);
    }
    return KQ_OK;
}
