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
#include "ops.h"

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
    const int64_t qkv_dim = c->n_head * c->head_dim + 2 * m->kv_dim;
    kq_status st;
    if ((st = kq_linear_forward(m->b, L->qkv, m->buf.h, m->buf.qkv, n))) return st;
    if (L->qkv_bias && (st = kq__mop_add_rows(m, m->buf.qkv, L->qkv_bias, n, qkv_dim))) return st;
    if (m->dev) {
        /* pos and seq are device copies here; the wanted rows are gathered
         * after the last layer instead */
        if ((st = kq__mop_attention(m, l, pos, seq, n))) return st;
    } else {
        kq__model_qk_prep(m, l, pos, seq, n);
        if (want) *np = n = keep_wanted(m, want, pos, seq, n);
        if (n == 0) return KQ_OK;
        if ((st = kq__model_attention(m, l, pos, seq, n))) return st;
    }
    if ((st = kq_linear_forward(m->b, L->wo, m->buf.att, m->buf.y, n))) return st;
    return kq__mop_residual(m, m->buf.x, m->buf.y, L->post_attn_norm, L->ffn_norm, m->buf.h, n);
}

/* Routed experts: softmax over the router's logits, top-k renormalised
 * (qwen3moe), SwiGLU per chosen expert, and the weighted sum of their outputs. */
static kq_status moe_block(kq_model *m, const kq_model_layer *L, int64_t n)
{
    const kq_model_config *c = &m->c;
    const int64_t d = c->n_embd, k = c->n_expert_used, f = c->n_ff_exp;
    kq_status st;
    if ((st = kq_linear_forward(m->b, L->router, m->buf.h, m->buf.router, n)) ||
        (st = kq__mop_route(m, n)) ||
        (st = kq_experts_forward_swiglu(m->b, L->gate_exps, L->up_exps, m->buf.h, d, 0, m->buf.ids,
                                        n, k, m->buf.moe_act)) ||
        (st = kq_experts_forward(m->b, L->down_exps, m->buf.moe_act, k * f, f, m->buf.ids, n, k,
                                 m->buf.moe_out)))
        return st;
    return kq__mop_moe_combine(m, n);
}

static kq_status ffn_block(kq_model *m, int64_t l, int64_t n)
{
    const kq_model_config *c = &m->c;
    const kq_model_layer *L = &m->layers[l];
    kq_status st;
    if (c->n_expert > 0) {
        if ((st = moe_block(m, L, n))) return st;
    } else {
        const kq_glu act = c->gelu ? KQ_GLU_GELU : KQ_GLU_SILU;
        if ((st = kq_linear_forward_glu(m->b, L->gate_up, m->buf.h, m->buf.ffa, n, act))) return st;
        if ((st = kq_linear_forward(m->b, L->down, m->buf.ffa, m->buf.y, n))) return st;
    }
    /* h = the next layer's attention input; the head norms x itself, after
     * its row gather */
    const float *next = l + 1 < c->n_layer ? m->layers[l + 1].attn_norm : NULL;
    return kq__mop_residual(m, m->buf.x, m->buf.y, L->post_ffn_norm, next, m->buf.h, n);
}

/* Every layer over the batch's *rows rows. want (NULL: all rows; host
 * backends only) is handed to the last layer, which keeps the wanted rows
 * and shrinks *rows to them. */
static kq_status layers(kq_model *m, int32_t *pos, int32_t *seq, int64_t *rows,
                        const uint8_t *want)
{
    const int64_t d = m->c.n_embd;
    /* each layer's residual step norms the next layer's input; the first
     * layer's is normed here */
    kq_status st = kq__mop_rmsnorm(m, m->buf.x, m->layers[0].attn_norm, m->buf.h, *rows, d, d, d);
    for (int64_t l = 0; st == KQ_OK && l < m->c.n_layer; l++) {
        const uint8_t *w = l == m->c.n_layer - 1 ? want : NULL;
        st = attention_block(m, l, pos, seq, rows, w);
        if (st == KQ_OK && *rows > 0) st = ffn_block(m, l, *rows);
        if (st != KQ_OK) st = kq__fail_context(st, "model: layer %lld: ", (long long)l);
    }
    return st;
}

/* The output head over the n_out rows of x that idx names (device: the
 * indices are in buf.d_idx; n_out == n: every row, in order). */
static kq_status head(kq_model *m, int64_t n, int64_t n_out, float *out)
{
    const kq_model_config *c = &m->c;
    const int64_t d = c->n_embd;
    const float *rows_x = m->buf.x;
    kq_status st;
    if (n_out < n) {
        if ((st = kq__mop_gather(m, n_out))) return st;
        rows_x = m->buf.out_rows;
    }
    if ((st = kq__mop_rmsnorm(m, rows_x, m->out_norm, m->buf.out_rows, n_out, d, d, d)) ||
        (st = kq_linear_forward(m->b, m->output, m->buf.out_rows, out, n_out)))
        return kq__fail_context(st, "model: output head: ");
    if (m->output_bias && (st = kq__mop_add_rows(m, out, m->output_bias, n_out, c->n_vocab)))
        return st;
    if (c->softcap > 0 && (st = kq__mop_softcap(m, out, c->softcap, n_out * c->n_vocab))) return st;
    return KQ_OK;
}

/* A device pass after its inputs are in place: every layer over all n rows
 * (the KV cache needs each), then the head over the wanted ones. Device
 * work only, the same for every pass of one (n, n_out): graph.c captures it. */
typedef struct device_pass {
    const int32_t *pos, *seq; /* device */
    int64_t n, n_out;
    float *out; /* device logits, or the model's own host logits (ops.c) */
} device_pass;

static kq_status device_body(kq_model *m, void *ctx)
{
    const device_pass *p = ctx;
    int64_t rows = p->n;
    kq_status st = layers(m, (int32_t *)p->pos, (int32_t *)p->seq, &rows, NULL);
    if (st != KQ_OK || p->n_out == 0) return st;
    return head(m, p->n, p->n_out, p->out);
}

static kq_status device_forward(kq_model *m, const int32_t *tokens, const int32_t *pos,
                                const int32_t *seq, const int32_t *idx, int64_t n,
                                int64_t n_out, float *logits)
{
    device_pass p = {.n = n, .n_out = n_out};
    kq_status st = kq__mop_inputs(m, tokens, pos, seq, idx, n, n_out, &p.pos, &p.seq);
    if (st == KQ_OK && n_out > 0) st = kq__mop_logits_dst(m, logits, n_out, &p.out);
    /* Routing copies the router's logits to the host mid-pass: MoE models
     * run their passes uncaptured. */
    if (st == KQ_OK)
        st = m->c.n_expert > 0 ? device_body(m, &p)
                               : kq__model_graph_run(m, n, n_out, p.out, device_body, &p);
    if (st != KQ_OK || n_out == 0) return st;
    return kq__mop_logits_out(m, logits, n_out);
}

static kq_status host_forward(kq_model *m, const int32_t *tokens, int32_t *pos, int32_t *seq,
                              int64_t n, int64_t n_out, const uint8_t *want, float *logits)
{
    kq_status st = kq__mop_embed(m, tokens, n);
    int64_t rows = n;
    if (st == KQ_OK) st = layers(m, pos, seq, &rows, want);
    /* the last layer kept the wanted rows, in order, at the front of x */
    if (st != KQ_OK || n_out == 0) return st;
    return head(m, n_out, n_out, logits);
}

kq_status kq__model_forward(kq_model *m, const int32_t *tokens, const int32_t *pos_in,
                            const int32_t *seq_in, int64_t n, const uint8_t *want, float *logits)
{
    int32_t *pos = malloc((size_t)n * 3 * sizeof(int32_t));
    if (!pos) return kq__fail(KQ_ERR_NO_MEMORY, "model: no memory for a batch of %lld", (long long)n);
    int32_t *seq = pos + n, *idx = pos + 2 * n;
    memcpy(pos, pos_in, (size_t)n * sizeof(int32_t));
    int64_t n_out = 0;
    for (int64_t i = 0; i < n; i++) {
        seq[i] = seq_in ? seq_in[i] : 0;
        if (!want || want[i]) idx[n_out++] = (int32_t)i;
    }
    kq_status st = m->dev ? device_forward(m, tokens, pos, seq, idx, n, n_out, logits)
                          : host_forward(m, tokens, pos, seq, n, n_out, want, logits);
    free(pos);
    return st;
}
