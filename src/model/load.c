/* Weights of a model onto its backend. q/k/v and gate/up are each loaded as
 * one fused linear (kquant fuses parts of different types), so a layer runs
 * five linear calls; every tensor's shape is checked against the
 * architecture before it is used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "model.h"

static int has_tensor(const kq_gguf *g, const char *name)
{
    kq_tensor_info t;
    return kq_gguf_find_tensor(g, name, &t) == KQ_OK;
}

/* The bytes of a tensor, added to what a decoded token reads. */
static void count_bytes(kq_model *m, const char *name, uint64_t num, uint64_t den)
{
    kq_tensor_info t;
    if (kq_gguf_find_tensor(m->g, name, &t) == KQ_OK) m->weight_bytes += t.nbytes / den * num;
}

/* A 1-D tensor of n elements (norms, biases) as floats in a new allocation
 * of backend memory. */
static kq_status load_vector(kq_model *m, const char *name, int64_t n, float **out)
{
    kq_tensor_info t;
    kq_status st = kq_gguf_find_tensor(m->g, name, &t);
    if (st != KQ_OK) return kq__fail_context(st, "model: ");
    if (t.n_dims != 1 || t.ne[0] != n)
        return kq__fail(KQ_ERR_FORMAT, "model: %s has %d dims, ne[0] = %lld; want one of %lld",
                        name, t.n_dims, (long long)t.ne[0], (long long)n);
    float *host = malloc((size_t)n * sizeof(float));
    if (!host) return kq__fail(KQ_ERR_NO_MEMORY, "model: no memory for %s", name);
    st = kq_dequantize(t.type, t.data, (size_t)t.nbytes, 1, n, host);
    if (st != KQ_OK) {
        free(host);
        return kq__fail_context(st, "model: %s: ", name);
    }
    float *dev = NULL;
    st = kq_alloc(m->b, (size_t)n * sizeof(float), (void **)&dev);
    if (st == KQ_OK) st = kq_copy_to_device(m->b, dev, host, (size_t)n * sizeof(float));
    free(host);
    if (st != KQ_OK) {
        kq_free(m->b, dev);
        return kq__fail_context(st, "model: %s: ", name);
    }
    *out = dev;
    m->weight_bytes += (uint64_t)n * sizeof(float);
    return KQ_OK;
}

static kq_status check_linear(const kq_linear *l, const char *name, int64_t rows, int64_t cols)
{
    if (kq_linear_rows(l) != rows || kq_linear_cols(l) != cols)
        return kq__fail(KQ_ERR_FORMAT, "model: %s is %lld x %lld (rows x cols), want %lld x %lld",
                        name, (long long)kq_linear_rows(l), (long long)kq_linear_cols(l),
                        (long long)rows, (long long)cols);
    return KQ_OK;
}

static kq_status load_linear(kq_model *m, const char *const *names, int n_names, int64_t rows,
                             int64_t cols, kq_linear **out)
{
    kq_status st = n_names == 1 ? kq_linear_from_gguf(m->b, m->g, names[0], out)
                                : kq_linear_from_gguf_fused(m->b, m->g, names, n_names, out);
    if (st != KQ_OK) return kq__fail_context(st, "model: loading %s: ", names[0]);
    for (int i = 0; i < n_names; i++) count_bytes(m, names[i], 1, 1);
    return check_linear(*out, names[0], rows, cols);
}

/* q, k and v biases packed as the fused rows are; zeros for a missing one. */
static kq_status load_qkv_bias(kq_model *m, int64_t l, kq_model_layer *L)
{
    const kq_model_config *c = &m->c;
    const char *role[3] = {"q", "k", "v"};
    int64_t rows[3] = {c->n_head * c->head_dim, c->n_head_kv * c->head_dim,
                       c->n_head_kv * c->head_dim};
    char name[3][96];
    int any = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(name[i], sizeof name[i], "blk.%lld.attn_%s.bias", (long long)l, role[i]);
        any |= has_tensor(m->g, name[i]);
    }
    if (!any) return KQ_OK;
    int64_t total = rows[0] + rows[1] + rows[2];
    float *host = calloc((size_t)total, sizeof(float));
    if (!host) return kq__fail(KQ_ERR_NO_MEMORY, "model: no memory for the q/k/v biases");
    kq_status st = KQ_OK;
    int64_t off = 0;
    for (int i = 0; i < 3 && st == KQ_OK; off += rows[i], i++) {
        kq_tensor_info t;
        if (kq_gguf_find_tensor(m->g, name[i], &t) != KQ_OK) continue;
        if (t.n_dims != 1 || t.ne[0] != rows[i])
            st = kq__fail(KQ_ERR_FORMAT, "model: %s has ne[0] = %lld, want %lld", name[i],
                          (long long)t.ne[0], (long long)rows[i]);
        else
            st = kq_dequantize(t.type, t.data, (size_t)t.nbytes, 1, rows[i], host + off);
    }
    if (st == KQ_OK) st = kq_alloc(m->b, (size_t)total * sizeof(float), (void **)&L->qkv_bias);
    if (st == KQ_OK)
        st = kq_copy_to_device(m->b, L->qkv_bias, host, (size_t)total * sizeof(float));
    free(host);
    return st;
}

static kq_status load_experts(kq_model *m, const char *name, int64_t rows, int64_t cols,
                              kq_experts **out)
{
    kq_status st = kq_experts_from_gguf(m->b, m->g, name, out);
    if (st != KQ_OK) return kq__fail_context(st, "model: loading %s: ", name);
    if (kq_experts_count(*out) != m->c.n_expert || kq_experts_rows(*out) != rows ||
        kq_experts_cols(*out) != cols)
        return kq__fail(KQ_ERR_FORMAT, "model: %s holds %lld experts of %lld x %lld, want %lld of "
                        "%lld x %lld", name, (long long)kq_experts_count(*out),
                        (long long)kq_experts_rows(*out), (long long)kq_experts_cols(*out),
                        (long long)m->c.n_expert, (long long)rows, (long long)cols);
    count_bytes(m, name, (uint64_t)m->c.n_expert_used, (uint64_t)m->c.n_expert);
    return KQ_OK;
}

static kq_status load_layer(kq_model *m, int64_t l)
{
    const kq_model_config *c = &m->c;
    kq_model_layer *L = &m->layers[l];
    char n0[96], n1[96], n2[96];
    kq_status st;
#define NAME(buf, role) snprintf(buf, sizeof buf, "blk.%lld.%s", (long long)l, role)

    NAME(n0, "attn_norm.weight");
    if ((st = load_vector(m, n0, c->n_embd, &L->attn_norm))) return st;
    NAME(n0, "ffn_norm.weight");
    if ((st = load_vector(m, n0, c->n_embd, &L->ffn_norm))) return st;
    if (c->post_norms) {
        NAME(n0, "post_attention_norm.weight");
        if ((st = load_vector(m, n0, c->n_embd, &L->post_attn_norm))) return st;
        NAME(n0, "post_ffw_norm.weight");
        if ((st = load_vector(m, n0, c->n_embd, &L->post_ffn_norm))) return st;
    }
    if (c->qk_norm) {
        NAME(n0, "attn_q_norm.weight");
        if ((st = load_vector(m, n0, c->head_dim, &L->q_norm))) return st;
        NAME(n0, "attn_k_norm.weight");
        if ((st = load_vector(m, n0, c->head_dim, &L->k_norm))) return st;
    }

    int64_t q_rows = c->n_head * c->head_dim, kv_rows = c->n_head_kv * c->head_dim;
    NAME(n0, "attn_qkv.weight");
    if (has_tensor(m->g, n0)) {
        const char *names[1] = {n0};
        st = load_linear(m, names, 1, q_rows + 2 * kv_rows, c->n_embd, &L->qkv);
    } else {
        NAME(n0, "attn_q.weight");
        NAME(n1, "attn_k.weight");
        NAME(n2, "attn_v.weight");
        kq_linear *part;
        /* each part's shape first, so a wrong one is named */
        const char *each[3] = {n0, n1, n2};
        int64_t rows[3] = {q_rows, kv_rows, kv_rows};
        for (int i = 0; i < 3; i++) {
            st = kq_linear_from_gguf(m->b, m->g, each[i], &part);
            if (st != KQ_OK) return kq__fail_context(st, "model: loading %s: ", each[i]);
            st = check_linear(part, each[i], rows[i], c->n_embd);
            kq_linear_free(part);
            if (st != KQ_OK) return st;
        }
        st = load_linear(m, each, 3, q_rows + 2 * kv_rows, c->n_embd, &L->qkv);
    }
    if (st != KQ_OK) return st;
    if ((st = load_qkv_bias(m, l, L))) return st;
    NAME(n0, "attn_output.weight");
    {
        const char *names[1] = {n0};
        if ((st = load_linear(m, names, 1, c->n_embd, q_rows, &L->wo))) return st;
    }
    L->rope_freqs = NULL;

    if (c->n_expert > 0) {
        NAME(n0, "ffn_gate_inp.weight");
        const char *names[1] = {n0};
        if ((st = load_linear(m, names, 1, c->n_expert, c->n_embd, &L->router))) return st;
        NAME(n0, "ffn_gate_exps.weight");
        if ((st = load_experts(m, n0, c->n_ff_exp, c->n_embd, &L->gate_exps))) return st;
        NAME(n0, "ffn_up_exps.weight");
        if ((st = load_experts(m, n0, c->n_ff_exp, c->n_embd, &L->up_exps))) return st;
        NAME(n0, "ffn_down_exps.weight");
        if ((st = load_experts(m, n0, c->n_embd, c->n_ff_exp, &L->down_exps))) return st;
    } else {
        NAME(n0, "ffn_gate.weight");
        NAME(n1, "ffn_up.weight");
        const char *names[2] = {n0, n1};
        kq_linear *part;
        for (int i = 0; i < 2; i++) {
            st = kq_linear_from_gguf(m->b, m->g, names[i], &part);
            if (st != KQ_OK) return kq__fail_context(st, "model: loading %s: ", names[i]);
            st = check_linear(part, names[i], c->n_ff, c->n_embd);
            kq_linear_free(part);
            if (st != KQ_OK) return st;
        }
        if ((st = load_linear(m, names, 2, 2 * c->n_ff, c->n_embd, &L->gate_up))) return st;
        NAME(n0, "ffn_down.weight");
        const char *down[1] = {n0};
        if ((st = load_linear(m, down, 1, c->n_embd, c->n_ff, &L->down))) return st;
    }
#undef NAME
    return KQ_OK;
}

kq_status kq__model_load_weights(kq_model *m)
{
    const kq_model_config *c = &m->c;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return kq__fail(KQ_ERR_NO_MEMORY, "model: no memory for the layers");
    kq_status st = kq_gguf_find_tensor(m->g, "token_embd.weight", &m->embd);
    if (st != KQ_OK) return st;
    st = kq_row_size(m->embd.type, c->n_embd, &m->embd_row_bytes);
    if (st != KQ_OK) return kq__fail_context(st, "model: token_embd.weight: ");
    uint64_t need;
    if (kq__mul_u64(m->embd_row_bytes, (uint64_t)c->n_vocab, &need) || need != m->embd.nbytes)
        return kq__fail(KQ_ERR_FORMAT, "model: token_embd.weight holds %llu bytes, not %lld rows",
                        (unsigned long long)m->embd.nbytes, (long long)c->n_vocab);

    for (int64_t l = 0; l < c->n_layer; l++)
        if ((st = load_layer(m, l))) return kq__fail_context(st, "layer %lld: ", (long long)l);

    if (has_tensor(m->g, "rope_freqs.weight")) {
        float *f;
        if ((st = load_vector(m, "rope_freqs.weight", c->n_rot / 2, &f))) return st;
        /* one tensor serves every layer; layer 0 owns it */
        for (int64_t l = 0; l < c->n_layer; l++) m->layers[l].rope_freqs = f;
    }
    if ((st = load_vector(m, "output_norm.weight", c->n_embd, &m->out_norm))) return st;
    const char *out_name = has_tensor(m->g, "output.weight") ? "output.weight" : "token_embd.weight";
    const char *names[1] = {out_name};
    if ((st = load_linear(m, names, 1, c->n_vocab, c->n_embd, &m->output))) return st;
    if (has_tensor(m->g, "output.bias"))
        if ((st = load_vector(m, "output.bias", c->n_vocab, &m->output_bias))) return st;
    return KQ_OK;
}

void kq__model_free_weights(kq_model *m)
{
    if (m->layers) {
        for (int64_t l = 0; l < m->c.n_layer; l++) {
            kq_model_layer *L = &m->layers[l];
            kq_free(m->b, L->attn_norm);
            kq_free(m->b, L->ffn_norm);
            kq_free(m->b, L->post_attn_norm);
            kq_free(m->b, L->post_ffn_norm);
            kq_free(m->b, L->q_norm);
            kq_free(m->b, L->k_norm);
            kq_free(m->b, L->qkv_bias);
            kq_linear_free(L->qkv);
            kq_linear_free(L->wo);
            kq_linear_free(L->gate_up);
            kq_linear_free(L->down);
            kq_linear_free(L->router);
            kq_experts_free(L->gate_exps);
            kq_experts_free(L->up_exps);
            kq_experts_free(L->down_exps);
        }
        kq_free(m->b, m->layers[0].rope_freqs);
        free(m->layers);
        m->layers = NULL;
    }
    kq_free(m->b, m->out_norm);
    kq_free(m->b, m->output_bias);
    kq_linear_free(m->output);
}
