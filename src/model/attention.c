/* Causal grouped-query attention of a batch against the KV cache, on host
 * memory. Each (token, head) pair walks its sequence's keys from the window's
 * start to its own position in blocks of KEY_BLOCK: the block's scores, then
 * one rescale of the running sum (the streaming softmax), so no buffer grows
 * with the context and each thread needs only its stack. */
#include <math.h>
#include <string.h>

#include "model.h"
#include "vec.h"

#define KEY_BLOCK 64

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
        /* k follows q in the row: one pass rotates both, each angle's cos
         * and sin computed once for all heads */
        kq__op_rope(c, t->layer, L->rope_freqs, q, c->n_head + c->n_head_kv, hd, t->pos[i]);
        size_t s = t->seq ? (size_t)t->seq[i] : 0;
        size_t slot = ((s * (size_t)c->n_layer + (size_t)t->layer) * (size_t)m->n_ctx +
                       (size_t)t->pos[i]) * (size_t)kv;
        memcpy(m->k_cache + slot, k, (size_t)kv * sizeof(float));
        memcpy(m->v_cache + slot, v, (size_t)kv * sizeof(float));
    }
}

void kq__model_qk_prep(kq_model *m, int64_t layer, const int32_t *pos, const int32_t *seq,
                       int64_t n)
{
    qk_task t = {m, layer, pos, seq};
    kq__model_parallel(m->b, n, 1, qk_rows, &t);
}

typedef struct attn_task {
    const kq_model *m;
    int64_t layer;
    const int32_t *pos, *seq;
    float scale;
} attn_task;

#define GROUP 8 /* query heads of one KV head taken together */

/* Token i, query heads h0 .. h0 + nh - 1 (nh <= GROUP), all of KV head g:
 * each key and value row is read once for all of them. */
static void attend(const attn_task *t, int64_t i, int64_t g, int64_t h0, int nh)
{
    const kq_model *m = t->m;
    const kq_model_config *c = &m->c;
    const int64_t hd = c->head_dim, kv_dim = m->kv_dim;
    const int64_t q_dim = c->n_head * hd, qkv_dim = q_dim + 2 * kv_dim;
    const int32_t p = t->pos[i];
    const int32_t s = t->seq ? t->seq[i] : 0;
    const float *q = m->buf.qkv + i * qkv_dim + h0 * hd;
    const size_t base = ((size_t)s * (size_t)c->n_layer + (size_t)t->layer) * (size_t)m->n_ctx;
    const float *K = m->k_cache + base * (size_t)kv_dim + g * hd;
    const float *V = m->v_cache + base * (size_t)kv_dim + g * hd;
    float *out = m->buf.att + i * q_dim + h0 * hd;

    int64_t lo = 0;
    if (c->n_swa > 0 && c->is_swa[t->layer] && p - c->n_swa + 1 > 0) lo = p - c->n_swa + 1;
    for (int64_t d = 0; d < nh * hd; d++) out[d] = 0;
    float run_max[GROUP];
    double run_sum[GROUP];
    float sc[KEY_BLOCK][GROUP];
    for (int h = 0; h < nh; h++) run_max[h] = -INFINITY, run_sum[h] = 0;
    for (int64_t j0 = lo; j0 <= p; j0 += KEY_BLOCK) {
        int64_t nb = p + 1 - j0 < KEY_BLOCK ? p + 1 - j0 : KEY_BLOCK;
        float bmax[GROUP];
        for (int h = 0; h < nh; h++) bmax[h] = -INFINITY;
        kq__vdot_block(q, hd, nh, K + (size_t)j0 * (size_t)kv_dim, kv_dim, (int)nb, hd, &sc[0][0],
                       GROUP);
        for (int64_t j = 0; j < nb; j++)
            for (int h = 0; h < nh; h++) {
                sc[j][h] *= t->scale;
                if (sc[j][h] > bmax[h]) bmax[h] = sc[j][h];
            }
        for (int h = 0; h < nh; h++)
            if (bmax[h] > run_max[h]) {
                float r = expf(run_max[h] - bmax[h]); /* 0 on the first block */
                for (int64_t d = 0; d < hd; d++) out[h * hd + d] *= r;
                run_sum[h] *= r;
                run_max[h] = bmax[h];
            }
        for (int64_t j = 0; j < nb; j++)
            for (int h = 0; h < nh; h++) {
                sc[j][h] = expf(sc[j][h] - run_max[h]);
                run_sum[h] += sc[j][h];
            }
        kq__vaxpy_block(out, hd, nh, &sc[0][0], GROUP, V + (size_t)j0 * (size_t)kv_dim, kv_dim,
                        (int)nb, hd);
    }
    for (int h = 0; h < nh; h++) {
        float inv = (float)(1.0 / run_sum[h]);
        for (int64_t d = 0; d < hd; d++) out[h * hd + d] *= inv;
    }
}

/* Work units: (token, KV head, chunk of at most GROUP of its query heads). */
static void attend_range(void *ctx, int64_t b, int64_t e)
{
    const attn_task *t = ctx;
    const kq_model_config *c = &t->m->c;
    const int64_t rep = c->n_head / c->n_head_kv, chunks = (rep + GROUP - 1) / GROUP;
    const int64_t per_token = c->n_head_kv * chunks;
    for (int64_t u = b; u < e; u++) {
        int64_t i = u / per_token, r = u % per_token, g = r / chunks, ch = r % chunks;
        int64_t h0 = g * rep + ch * GROUP;
        int64_t nh = rep - ch * GROUP < GROUP ? rep - ch * GROUP : GROUP;
        attend(t, i, g, h0, (int)nh);
    }
}

kq_status kq__model_attention(kq_model *m, int64_t layer, const int32_t *pos,
                              const int32_t *seq, int64_t n)
{
    attn_task t = {m, layer, pos, seq, m->c.attn_scale};
    const int64_t rep = m->c.n_head / m->c.n_head_kv;
    kq__model_parallel(m->b, n * m->c.n_head_kv * ((rep + GROUP - 1) / GROUP), 1, attend_range, &t);
    return KQ_OK;
}
