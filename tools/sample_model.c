/* kq sample OUT.gguf --model NAME: a whole model with a real architecture's
 * shapes and metadata and random weights, typed by llama.cpp's Q4_K_M mix
 * (the rules of `kq quantize`), for `kq bench-model` where the real file is
 * not at hand: Llama-3-8B's 4.9 GB, or any model on a GPU machine with no
 * network. The file has no tokenizer, so it serves bench-model (random token
 * ids), not `kq run`.
 *
 * Rows are drawn from row_pool.h's pools, as kq bench's built-in layers
 * are: quantizing eight billion weights would take longer than the
 * benchmark, and the kernels' speed does not depend on which rows they
 * read. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kq.h"
#include "kquant.h"
#include "quantize_mix.h"
#include "row_pool.h"

typedef struct sm_spec {
    const char *name, *arch, *label;
    int64_t n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim, n_vocab, n_ctx, n_swa;
    double rope_base, eps;
    int tied, gemma; /* gemma: q/k norms and post norms */
} sm_spec;

static const sm_spec sm_models[] = {
    {"gemma3-270m", "gemma3", "Gemma 3 270M shapes, random weights", 640, 18, 2048, 4, 1, 256,
     262144, 32768, 512, 1e6, 1e-6, 1, 1},
    {"llama3-8b", "llama", "Llama 3 8B shapes, random weights", 4096, 32, 14336, 32, 8, 128,
     128256, 8192, 0, 5e5, 1e-5, 0, 0},
};

typedef struct sm_state {
    kq_gguf_writer *w;
    kq_qplan plan;
    kq_qmodel model;
    int64_t i_attn_v;
    uint64_t rng;
    row_pools pools;
    void **bufs; /* tensor bytes, alive until the save */
    int n_bufs;
} sm_state;

static int keep(sm_state *s, void *buf)
{
    void **grown = realloc(s->bufs, (size_t)(s->n_bufs + 1) * sizeof *grown);
    if (!grown) return -1;
    s->bufs = grown;
    s->bufs[s->n_bufs++] = buf;
    return 0;
}

/* A 1-D norm vector near 1 (the files store Gemma's as the 1 + w llama.cpp
 * writes). */
static int add_norm(sm_state *s, const char *name, int64_t n)
{
    float *v = malloc((size_t)n * sizeof *v);
    if (!v || keep(s, v)) {
        free(v);
        return kq_tool_error("sample", "out of memory");
    }
    for (int64_t i = 0; i < n; i++) v[i] = 1.0f + 0.1f * bench_normal(&s->rng);
    int64_t ne[1] = {n};
    if (kq_gguf_writer_add_tensor(s->w, name, KQ_TYPE_F32, 1, ne, v, (size_t)n * sizeof *v))
        return kq_tool_error("sample", name);
    return 0;
}

/* A rows x k matrix in the type the mix gives it. */
static int add_matrix(sm_state *s, const char *name, int64_t rows, int64_t k)
{
    kq_tensor_info t = {.name = name, .type = KQ_TYPE_F32, .n_dims = 2, .ne = {k, rows, 1, 1}};
    int type;
    const char *why;
    if (kq_qplan_tensor(&s->plan, &s->model, &t, s->i_attn_v, &type, &why) != KQ_Q_CONVERT)
        type = KQ_TYPE_F32;
    if (kq_qplan_is_attn_v(name)) s->i_attn_v++;
    const row_pool *p = row_pool_get(&s->pools, type, k, &s->rng);
    if (!p) return kq_tool_error("sample", name);
    uint8_t *data = row_pool_tensor(p, rows, &s->rng);
    if (!data || keep(s, data)) {
        free(data);
        return kq_tool_error("sample", "out of memory");
    }
    int64_t ne[2] = {k, rows};
    if (kq_gguf_writer_add_tensor(s->w, name, type, 2, ne, data, p->row_size * (size_t)rows))
        return kq_tool_error("sample", name);
    return 0;
}

static int set_u32(sm_state *s, const sm_spec *m, const char *key, int64_t v)
{
    char full[96];
    snprintf(full, sizeof full, "%s.%s", m->arch, key);
    uint32_t u = (uint32_t)v;
    return kq_gguf_writer_set(s->w, full, KQ_GGUF_U32, &u) != KQ_OK;
}

static int set_f32(sm_state *s, const sm_spec *m, const char *key, double v)
{
    char full[96];
    snprintf(full, sizeof full, "%s.%s", m->arch, key);
    float f = (float)v;
    return kq_gguf_writer_set(s->w, full, KQ_GGUF_F32, &f) != KQ_OK;
}

static int add_metadata(sm_state *s, const sm_spec *m)
{
    int rc = kq_gguf_writer_set_string(s->w, "general.architecture", m->arch, strlen(m->arch)) ||
             kq_gguf_writer_set_string(s->w, "general.name", m->label, strlen(m->label));
    rc = rc || set_u32(s, m, "embedding_length", m->n_embd) ||
         set_u32(s, m, "block_count", m->n_layer) || set_u32(s, m, "feed_forward_length", m->n_ff) ||
         set_u32(s, m, "attention.head_count", m->n_head) ||
         set_u32(s, m, "attention.head_count_kv", m->n_head_kv) ||
         set_u32(s, m, "attention.key_length", m->head_dim) ||
         set_u32(s, m, "attention.value_length", m->head_dim) ||
         set_u32(s, m, "rope.dimension_count", m->head_dim) ||
         set_u32(s, m, "context_length", m->n_ctx) || set_f32(s, m, "rope.freq_base", m->rope_base) ||
         set_f32(s, m, "attention.layer_norm_rms_epsilon", m->eps);
    if (m->n_swa) rc = rc || set_u32(s, m, "attention.sliding_window", m->n_swa);
    uint32_t ft = s->plan.ftype;
    rc = rc || kq_gguf_writer_set(s->w, "general.file_type", KQ_GGUF_U32, &ft);
    return rc ? kq_tool_error("sample", "metadata") : 0;
}

static int add_layer(sm_state *s, const sm_spec *m, int64_t l)
{
    const int64_t d = m->n_embd, qd = m->n_head * m->head_dim, kvd = m->n_head_kv * m->head_dim;
    char name[64];
    int rc = 0;
#define T(role) (snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, role), name)
    rc = rc || add_norm(s, T("attn_norm.weight"), d);
    rc = rc || add_matrix(s, T("attn_q.weight"), qd, d);
    rc = rc || add_matrix(s, T("attn_k.weight"), kvd, d);
    rc = rc || add_matrix(s, T("attn_v.weight"), kvd, d);
    rc = rc || add_matrix(s, T("attn_output.weight"), d, qd);
    rc = rc || add_norm(s, T("ffn_norm.weight"), d);
    rc = rc || add_matrix(s, T("ffn_gate.weight"), m->n_ff, d);
    rc = rc || add_matrix(s, T("ffn_up.weight"), m->n_ff, d);
    rc = rc || add_matrix(s, T("ffn_down.weight"), d, m->n_ff);
    if (m->gemma) {
        rc = rc || add_norm(s, T("attn_q_norm.weight"), m->head_dim);
        rc = rc || add_norm(s, T("attn_k_norm.weight"), m->head_dim);
        rc = rc || add_norm(s, T("post_attention_norm.weight"), d);
        rc = rc || add_norm(s, T("post_ffw_norm.weight"), d);
    }
#undef T
    return rc;
}

static void sm_usage(FILE *f)
{
    fprintf(f, "usage: kq sample OUT.gguf --model NAME [--seed N]\n  NAME:");
    for (size_t i = 0; i < sizeof sm_models / sizeof sm_models[0]; i++)
        fprintf(f, " %s", sm_models[i].name);
    fprintf(f, "\n  a whole model of that architecture's shapes, random weights in the Q4_K_M\n"
               "  mix, no tokenizer: for kq bench-model\n");
}

int kq_cmd_sample_model(const char *out, const char *model, uint64_t seed)
{
    const sm_spec *m = NULL;
    for (size_t i = 0; i < sizeof sm_models / sizeof sm_models[0]; i++)
        if (!strcmp(sm_models[i].name, model)) m = &sm_models[i];
    if (!m) {
        fprintf(stderr, "kq sample: unknown model '%s'\n", model);
        sm_usage(stderr);
        return 2;
    }
    sm_state s = {.rng = seed ? seed : 0x9E3779B97F4A7C15ull};
    char err[128];
    if (kq_qplan_parse("q4_k_m", &s.plan, err, sizeof err)) {
        fprintf(stderr, "kq sample: %s\n", err);
        return 1;
    }
    s.model = (kq_qmodel){.n_layers = m->n_layer, .n_attn_v = m->n_layer,
                          .n_gqa = m->n_head / m->n_head_kv, .tied = m->tied};
    if (kq_gguf_writer_new(3, &s.w) != KQ_OK) return kq_tool_error("sample", "writer");
    int rc = add_metadata(&s, m);
    rc = rc || add_matrix(&s, "token_embd.weight", m->n_vocab, m->n_embd);
    rc = rc || add_norm(&s, "output_norm.weight", m->n_embd);
    if (!m->tied) rc = rc || add_matrix(&s, "output.weight", m->n_vocab, m->n_embd);
    for (int64_t l = 0; l < m->n_layer && !rc; l++) rc = add_layer(&s, m, l);
    if (!rc && kq_gguf_writer_save(s.w, out) != KQ_OK) rc = kq_tool_error("sample", out);
    kq_gguf_writer_free(s.w);
    for (int i = 0; i < s.n_bufs; i++) free(s.bufs[i]);
    free(s.bufs);
    row_pools_free(&s.pools);
    if (!rc) printf("kq sample: wrote %s (%s)\n", out, m->label);
    return rc;
}
