/* The architecture of a GGUF model from its metadata ({arch}.* keys), with
 * every count checked before anything is sized from it. The per-architecture
 * facts (RoPE ordering, attention scale, Gemma 3's sliding-window pattern and
 * local RoPE base, its embedding scale) follow llama.cpp's loader, which
 * defines what these files mean. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model.h"

static const struct {
    const char *name;
    kq_arch arch;
} arch_names[] = {
    {"llama", KQ_ARCH_LLAMA},     {"qwen2", KQ_ARCH_QWEN2},   {"qwen3", KQ_ARCH_QWEN3},
    {"qwen3moe", KQ_ARCH_QWEN3MOE}, {"gemma3", KQ_ARCH_GEMMA3},
};

/* An integer key "<arch>.<key>" in [lo, hi]; *out keeps its default when the
 * key is absent and not required. */
static kq_status get_int(const kq_gguf *g, const char *arch, const char *key, int required,
                         int64_t lo, int64_t hi, int64_t *out)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int64_t v;
    kq_status st = kq_gguf_get_int(g, full, &v);
    if (st == KQ_ERR_NOT_FOUND && !required) return KQ_OK;
    if (st == KQ_ERR_NOT_FOUND) return kq__fail(KQ_ERR_FORMAT, "model: metadata key '%s' is missing", full);
    if (st != KQ_OK) return kq__fail_context(KQ_ERR_FORMAT, "model: metadata key '%s': ", full);
    if (v < lo || v > hi)
        return kq__fail(KQ_ERR_FORMAT, "model: %s = %lld is outside [%lld, %lld]", full,
                        (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return KQ_OK;
}

static kq_status get_float(const kq_gguf *g, const char *arch, const char *key, double lo,
                           double hi, double *out)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    double v;
    kq_status st = kq_gguf_get_float(g, full, &v);
    if (st == KQ_ERR_NOT_FOUND) return KQ_OK;
    if (st != KQ_OK) return kq__fail_context(KQ_ERR_FORMAT, "model: metadata key '%s': ", full);
    if (!(v >= lo && v <= hi))
        return kq__fail(KQ_ERR_FORMAT, "model: %s = %g is outside [%g, %g]", full, v, lo, hi);
    *out = v;
    return KQ_OK;
}

/* Gemma 3: every sixth layer is global unless the file lists the pattern
 * (llama.cpp's set_swa_pattern: layer l slides when l % p < p - 1). */
static kq_status swa_pattern(const kq_gguf *g, kq_model_config *c)
{
    const kq_gguf_value *v;
    int64_t pattern = 6;
    kq_status st = kq_gguf_find_kv(g, "gemma3.attention.sliding_window_pattern", &v);
    if (st == KQ_OK && kq_gguf_value_type(v) == KQ_GGUF_ARRAY) {
        kq_gguf_vtype et;
        int64_t count;
        if (kq_gguf_value_array(v, &et, &count) != KQ_OK || count != c->n_layer)
            return kq__fail(KQ_ERR_FORMAT,
                            "model: gemma3.attention.sliding_window_pattern must list %lld layers",
                            (long long)c->n_layer);
        for (int64_t l = 0; l < count; l++) {
            int b;
            if (kq_gguf_array_bool(v, l, &b) != KQ_OK)
                return kq__fail(KQ_ERR_FORMAT,
                                "model: gemma3.attention.sliding_window_pattern[%lld] is not a bool",
                                (long long)l);
            c->is_swa[l] = (uint8_t)(b != 0);
        }
        return KQ_OK;
    }
    st = get_int(g, "gemma3", "attention.sliding_window_pattern", 0, 0, KQ_MODEL_MAX_LAYERS,
                 &pattern);
    if (st != KQ_OK) return st;
    for (int64_t l = 0; l < c->n_layer; l++)
        c->is_swa[l] = (uint8_t)(pattern == 0 || l % pattern < pattern - 1);
    return KQ_OK;
}

static kq_status rope_scaling(const kq_gguf *g, kq_model_config *c)
{
    char key[160];
    const char *s;
    size_t len;
    snprintf(key, sizeof key, "%s.rope.scaling.type", c->arch_name);
    kq_status st = kq_gguf_get_string(g, key, &s, &len);
    if (st == KQ_OK && !(len == 4 && !memcmp(s, "none", 4)) &&
        !(len == 6 && !memcmp(s, "linear", 6)))
        return kq__fail(KQ_ERR_UNSUPPORTED, "model: %s = '%.*s': only none and linear are supported",
                        key, (int)(len > 32 ? 32 : len), s);
    if (st != KQ_OK && st != KQ_ERR_NOT_FOUND)
        return kq__fail_context(KQ_ERR_FORMAT, "model: metadata key '%s': ", key);
    double factor = 0;
    st = get_float(g, c->arch_name, "rope.scaling.factor", 0, 1e6, &factor);
    if (st != KQ_OK) return st;
    if (factor == 0) {
        st = get_float(g, c->arch_name, "rope.scale_linear", 0, 1e6, &factor);
        if (st != KQ_OK) return st;
    }
    c->rope_scale = factor == 0 ? 1.0 : 1.0 / factor;
    return KQ_OK;
}

kq_status kq__model_config(const kq_gguf *g, kq_model_config *c)
{
    memset(c, 0, sizeof *c);
    const char *s;
    size_t len;
    kq_status st = kq_gguf_get_string(g, "general.architecture", &s, &len);
    if (st != KQ_OK) return kq__fail_context(KQ_ERR_FORMAT, "model: general.architecture: ");
    int found = 0;
    for (size_t i = 0; i < sizeof arch_names / sizeof arch_names[0]; i++)
        if (strlen(arch_names[i].name) == len && !memcmp(arch_names[i].name, s, len)) {
            c->arch = arch_names[i].arch;
            c->arch_name = arch_names[i].name;
            found = 1;
        }
    if (!found)
        return kq__fail(KQ_ERR_UNSUPPORTED,
                        "model: architecture '%.*s' is not supported (llama, qwen2, qwen3, "
                        "qwen3moe, gemma3)",
                        (int)(len > 64 ? 64 : len), s);
    const char *a = c->arch_name;

    if ((st = get_int(g, a, "embedding_length", 1, 1, KQ_MODEL_MAX_DIM, &c->n_embd)) ||
        (st = get_int(g, a, "block_count", 1, 1, KQ_MODEL_MAX_LAYERS, &c->n_layer)) ||
        (st = get_int(g, a, "attention.head_count", 1, 1, KQ_MODEL_MAX_HEADS, &c->n_head)))
        return st;
    c->n_head_kv = c->n_head;
    c->n_ctx_train = 4096;
    if ((st = get_int(g, a, "attention.head_count_kv", 0, 1, KQ_MODEL_MAX_HEADS, &c->n_head_kv)) ||
        (st = get_int(g, a, "context_length", 0, 1, INT64_MAX, &c->n_ctx_train)))
        return st;
    if (c->n_head % c->n_head_kv)
        return kq__fail(KQ_ERR_FORMAT, "model: head_count %lld is not a multiple of head_count_kv %lld",
                        (long long)c->n_head, (long long)c->n_head_kv);
    c->head_dim = c->n_embd / c->n_head;
    int64_t vdim = -1;
    if ((st = get_int(g, a, "attention.key_length", 0, 1, KQ_MODEL_MAX_DIM, &c->head_dim)) ||
        (st = get_int(g, a, "attention.value_length", 0, 1, KQ_MODEL_MAX_DIM, &vdim)))
        return st;
    if (vdim != -1 && vdim != c->head_dim)
        return kq__fail(KQ_ERR_UNSUPPORTED, "model: value_length %lld differs from key_length %lld",
                        (long long)vdim, (long long)c->head_dim);
    if (c->head_dim < 2 || c->head_dim % 2)
        return kq__fail(KQ_ERR_FORMAT, "model: head dimension %lld must be even and >= 2",
                        (long long)c->head_dim);
    if (c->n_head * c->head_dim > KQ_MODEL_MAX_DIM)
        return kq__fail(KQ_ERR_FORMAT, "model: head_count x key_length = %lld is too large",
                        (long long)(c->n_head * c->head_dim));
    c->n_rot = c->head_dim;
    if ((st = get_int(g, a, "rope.dimension_count", 0, 2, c->head_dim, &c->n_rot))) return st;
    if (c->n_rot % 2) return kq__fail(KQ_ERR_FORMAT, "model: rope.dimension_count %lld is odd", (long long)c->n_rot);
    if (c->arch == KQ_ARCH_LLAMA && c->n_rot != c->head_dim)
        return kq__fail(KQ_ERR_FORMAT, "model: llama needs rope.dimension_count = head dimension %lld",
                        (long long)c->head_dim);

    c->eps = 1e-5;
    if ((st = get_float(g, a, "attention.layer_norm_rms_epsilon", 0, 1, &c->eps))) return st;
    c->rope_base = 10000.0;
    if ((st = get_float(g, a, "rope.freq_base", 1e-3, 1e30, &c->rope_base))) return st;
    if ((st = rope_scaling(g, c))) return st;
    c->rope_neox = c->arch != KQ_ARCH_LLAMA;
    c->rope_base_swa = 10000.0; /* llama.cpp's default for the local layers */
    c->rope_scale_swa = 1.0;

    c->is_swa = calloc((size_t)c->n_layer, 1);
    if (!c->is_swa) return kq__fail(KQ_ERR_NO_MEMORY, "model: no memory for the layer table");

    c->attn_scale = (float)(1.0 / sqrt((double)c->head_dim));
    c->embd_scale = 1.0f;
    c->qk_norm = c->arch == KQ_ARCH_QWEN3 || c->arch == KQ_ARCH_QWEN3MOE || c->arch == KQ_ARCH_GEMMA3;
    if (c->arch == KQ_ARCH_GEMMA3) {
        c->gelu = 1;
        c->post_norms = 1;
        c->embd_scale = sqrtf((float)c->n_embd);
        /* Gemma 3 27B (62 layers) scales by n_embd / n_head, the others by the
         * head dimension (gemma_pytorch's query_pre_attn_scalar). */
        if (c->n_layer == 62) c->attn_scale = (float)(1.0 / sqrt((double)(c->n_embd / c->n_head)));
        if ((st = get_int(g, a, "attention.sliding_window", 0, 0, INT64_MAX, &c->n_swa))) return st;
        if (c->n_swa > 0) {
            if ((st = swa_pattern(g, c))) return st;
            if ((st = get_float(g, a, "rope.freq_base_swa", 1e-3, 1e30, &c->rope_base_swa))) return st;
        }
        double cap = 0;
        if ((st = get_float(g, a, "final_logit_softcapping", 0, 1e6, &cap))) return st;
        c->softcap = (float)cap;
    }

    if (c->arch == KQ_ARCH_QWEN3MOE) {
        if ((st = get_int(g, a, "expert_count", 1, 1, KQ_MODEL_MAX_EXPERTS, &c->n_expert)) ||
            (st = get_int(g, a, "expert_used_count", 1, 1, c->n_expert, &c->n_expert_used)) ||
            (st = get_int(g, a, "expert_feed_forward_length", 0, 1, KQ_MODEL_MAX_DIM, &c->n_ff_exp)))
            return st;
        c->n_ff = 0;
        if ((st = get_int(g, a, "feed_forward_length", 0, 0, KQ_MODEL_MAX_DIM, &c->n_ff))) return st;
        if (c->n_ff_exp == 0) {
            if (c->n_ff == 0)
                return kq__fail(KQ_ERR_FORMAT, "model: qwen3moe.expert_feed_forward_length is missing");
            c->n_ff_exp = c->n_ff / c->n_expert_used;
        }
    } else {
        if ((st = get_int(g, a, "feed_forward_length", 1, 1, KQ_MODEL_MAX_DIM, &c->n_ff))) return st;
    }

    c->inv_freq = malloc((size_t)c->n_rot * sizeof(double));
    if (!c->inv_freq) return kq__fail(KQ_ERR_NO_MEMORY, "model: no memory for the RoPE table");
    for (int64_t i = 0; i < c->n_rot / 2; i++) {
        c->inv_freq[i] = pow(c->rope_base, -2.0 * (double)i / (double)c->n_rot);
        c->inv_freq[c->n_rot / 2 + i] = pow(c->rope_base_swa, -2.0 * (double)i / (double)c->n_rot);
    }

    kq_tensor_info t;
    st = kq_gguf_find_tensor(g, "token_embd.weight", &t);
    if (st != KQ_OK) return kq__fail_context(KQ_ERR_FORMAT, "model: token_embd.weight: ");
    if (t.n_dims != 2 || t.ne[0] != c->n_embd || t.ne[1] < 1 || t.ne[1] > KQ_MODEL_MAX_VOCAB)
        return kq__fail(KQ_ERR_FORMAT,
                        "model: token_embd.weight is [%lld, %lld], want [n_embd = %lld, n_vocab "
                        "<= %d]",
                        (long long)t.ne[0], (long long)t.ne[1], (long long)c->n_embd,
                        KQ_MODEL_MAX_VOCAB);
    c->n_vocab = t.ne[1];
    return KQ_OK;
}

void kq__model_config_free(kq_model_config *c)
{
    free(c->is_swa);
    free(c->inv_freq);
    c->is_swa = NULL;
    c->inv_freq = NULL;
}
