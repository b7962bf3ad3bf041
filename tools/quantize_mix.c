/* Which type each tensor gets in `kq quantize`. The mixes follow the
 * per-tensor rules of llama.cpp's quantizer (llama_tensor_get_type in its
 * src/llama-quant.cpp) for the mixes named in quantize_mix.h: more bits
 * where quantization error hurts most (the output projection, the value
 * projections, ffn_down on some layers, attn_output in the smallest mixes),
 * the base type elsewhere. What it leaves out: its importance-matrix
 * variants, the 70B-model attn_v rule (which needs the model size), and
 * --pure / per-tensor overrides. Rows that do not fill the chosen type's
 * blocks take llama.cpp's fallback type (see fallback_type). */
#include "quantize_mix.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The single-type targets, with llama.cpp's llama_ftype value for a file
 * made of them (the closest where it has no uniform one: "_S" variants keep
 * most weights at the base type; MXFP4_MOE puts experts in MXFP4). */
static const struct {
    int type;
    uint32_t ftype;
} g_types[] = {
    {KQ_TYPE_Q4_0, 2},    /* LLAMA_FTYPE_MOSTLY_Q4_0 */
    {KQ_TYPE_Q4_1, 3},    /* LLAMA_FTYPE_MOSTLY_Q4_1 */
    {KQ_TYPE_Q8_0, 7},    /* LLAMA_FTYPE_MOSTLY_Q8_0 */
    {KQ_TYPE_Q5_0, 8},    /* LLAMA_FTYPE_MOSTLY_Q5_0 */
    {KQ_TYPE_Q5_1, 9},    /* LLAMA_FTYPE_MOSTLY_Q5_1 */
    {KQ_TYPE_Q3_K, 11},   /* LLAMA_FTYPE_MOSTLY_Q3_K_S */
    {KQ_TYPE_Q4_K, 14},   /* LLAMA_FTYPE_MOSTLY_Q4_K_S */
    {KQ_TYPE_Q5_K, 16},   /* LLAMA_FTYPE_MOSTLY_Q5_K_S */
    {KQ_TYPE_IQ4_NL, 25}, /* LLAMA_FTYPE_MOSTLY_IQ4_NL */
    {KQ_TYPE_MXFP4, 38},  /* LLAMA_FTYPE_MOSTLY_MXFP4_MOE */
};

static const struct {
    const char *name;
    kq_qmix mix;
    int base_type;
    uint32_t ftype;
} g_mixes[] = {
    {"q2_k", KQ_MIX_Q2_K, KQ_TYPE_Q2_K, 10},       /* LLAMA_FTYPE_MOSTLY_Q2_K */
    {"q3_k_m", KQ_MIX_Q3_K_M, KQ_TYPE_Q3_K, 12},   /* LLAMA_FTYPE_MOSTLY_Q3_K_M */
    {"q4_k_m", KQ_MIX_Q4_K_M, KQ_TYPE_Q4_K, 15},   /* LLAMA_FTYPE_MOSTLY_Q4_K_M */
    {"q5_k_m", KQ_MIX_Q5_K_M, KQ_TYPE_Q5_K, 17},   /* LLAMA_FTYPE_MOSTLY_Q5_K_M */
    {"q6_k", KQ_MIX_Q6_K, KQ_TYPE_Q6_K, 18},       /* LLAMA_FTYPE_MOSTLY_Q6_K */
    {"iq4_xs", KQ_MIX_IQ4_XS, KQ_TYPE_IQ4_XS, 30}, /* LLAMA_FTYPE_MOSTLY_IQ4_XS */
};

int kq_qplan_parse(const char *arg, kq_qplan *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof g_mixes / sizeof g_mixes[0]; i++) {
        if (strcasecmp(arg, g_mixes[i].name) != 0) continue;
        snprintf(out->label, sizeof out->label, "%s", g_mixes[i].name);
        out->base_type = g_mixes[i].base_type;
        out->mix = g_mixes[i].mix;
        out->ftype = g_mixes[i].ftype;
        return 0;
    }
    kq_type t;
    if (kq_type_from_name(arg, &t) == KQ_OK) {
        for (size_t i = 0; i < sizeof g_types / sizeof g_types[0]; i++) {
            if (g_types[i].type != (int)t) continue;
            snprintf(out->label, sizeof out->label, "%s", kq_type_name(t));
            out->base_type = (int)t;
            out->ftype = g_types[i].ftype;
            return 0;
        }
    }
    snprintf(err, err_cap,
             "unknown target type '%.40s' (known: the types q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, "
             "mxfp4, q3_K, q4_K, q5_K and the mixes q2_k, q3_k_m, q4_k_m, q5_k_m, q6_k, iq4_xs; "
             "case does not matter)",
             arg);
    return -1;
}

int64_t kq_qplan_layer_of(const char *name, const char **rest)
{
    if (strncmp(name, "blk.", 4) != 0) return -1;
    const char *p = name + 4;
    int64_t n = 0;
    int digits = 0;
    /* Nine digits at most: no model has a billion layers, and the bound
     * keeps the sum from overflowing on a hostile name. */
    while (*p >= '0' && *p <= '9' && digits < 9) n = n * 10 + (*p++ - '0'), digits++;
    if (digits == 0 || *p != '.') return -1;
    if (rest) *rest = p + 1;
    return n;
}

int kq_qplan_is_attn_v(const char *name)
{
    return strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight") ||
           strstr(name, "attn_kv_b.weight");
}

/* An unsigned metadata value <arch>.<suffix>, or 0 if absent (or beyond
 * INT32_MAX: no real model, and the bound keeps 7 * n below from overflowing). */
static int64_t arch_uint(const kq_gguf *g, const char *arch, size_t len, const char *suffix)
{
    char key[256];
    uint64_t n;
    snprintf(key, sizeof key, "%.*s.%s", (int)len, arch, suffix);
    if (kq_gguf_get_uint(g, key, &n) == KQ_OK && n <= INT32_MAX) return (int64_t)n;
    return 0;
}

void kq_qmodel_read(const kq_gguf *g, kq_qmodel *m)
{
    memset(m, 0, sizeof *m);
    const char *arch;
    size_t len;
    int64_t heads = 0, kv_heads = 0;
    if (kq_gguf_get_string(g, "general.architecture", &arch, &len) == KQ_OK && len < 200) {
        m->n_layers = arch_uint(g, arch, len, "block_count");
        m->n_expert = arch_uint(g, arch, len, "expert_count");
        heads = arch_uint(g, arch, len, "attention.head_count");
        kv_heads = arch_uint(g, arch, len, "attention.head_count_kv");
        m->falcon = len == 6 && !memcmp(arch, "falcon", 6);
    }
    /* llama.cpp: n_head / n_head_kv, n_head_kv defaulting to n_head */
    m->n_gqa = heads > 0 && kv_heads > 0 ? heads / kv_heads : 1;
    int64_t top = -1;
    m->tied = 1;
    for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
        kq_tensor_info t;
        if (kq_gguf_tensor(g, i, &t) != KQ_OK) continue;
        int64_t l = kq_qplan_layer_of(t.name, NULL);
        if (l > top) top = l;
        if (kq_qplan_is_attn_v(t.name)) m->n_attn_v++;
        if (!strcmp(t.name, "output.weight")) m->tied = 0;
    }
    if (m->n_layers == 0) m->n_layers = top + 1;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers, and
 * every third layer in between, in integer division as llama.cpp does it. */
static int use_more_bits(int64_t i, int64_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int is_float_type(int type)
{
    return type == KQ_TYPE_F32 || type == KQ_TYPE_F16 || type == KQ_TYPE_BF16;
}

/* The output projection (and token_embd when it doubles as one): Q8_0 if
 * its rows do not fill the base type's blocks (or on Falcon), else Q6_K,
 * unless the base is Q8_0 already. */
static int output_type(const kq_qplan *p, const kq_qmodel *m, const kq_tensor_info *t)
{
    if (m->falcon || t->ne[0] % kq_type_block_elems(p->base_type) != 0) return KQ_TYPE_Q8_0;
    return p->base_type == KQ_TYPE_Q8_0 ? KQ_TYPE_Q8_0 : KQ_TYPE_Q6_K;
}

static int attn_v_type(const kq_qplan *p, const kq_qmodel *m, int64_t i_attn_v)
{
    int type = p->base_type;
    switch (p->mix) {
    case KQ_MIX_Q2_K: type = m->n_gqa >= 4 ? KQ_TYPE_Q4_K : KQ_TYPE_Q3_K; break;
    case KQ_MIX_Q3_K_M: type = i_attn_v < 2 ? KQ_TYPE_Q5_K : KQ_TYPE_Q4_K; break;
    case KQ_MIX_IQ4_XS: if (m->n_gqa >= 4) type = KQ_TYPE_Q5_K; break;
    case KQ_MIX_Q4_K_M:
    case KQ_MIX_Q5_K_M: if (use_more_bits(i_attn_v, m->n_attn_v)) type = KQ_TYPE_Q6_K; break;
    case KQ_MIX_Q6_K: break;
    case KQ_MIX_NONE: break;
    }
    /* eight experts: llama.cpp spends the few bytes on Q8_0 */
    return m->n_expert == 8 ? KQ_TYPE_Q8_0 : type;
}

static int ffn_down_type(const kq_qplan *p, const kq_qmodel *m, int64_t layer)
{
    const int64_t n = m->n_layers;
    if (layer < 0) return p->base_type; /* no blk.N: llama.cpp would refuse; keep the base */
    switch (p->mix) {
    case KQ_MIX_Q2_K: return KQ_TYPE_Q3_K;
    case KQ_MIX_Q3_K_M:
        if (layer < n / 16) return KQ_TYPE_Q5_K;
        return !m->falcon || use_more_bits(layer, n) ? KQ_TYPE_Q4_K : KQ_TYPE_Q3_K;
    case KQ_MIX_Q4_K_M:
        if (m->falcon)
            return layer < n / 16 ? KQ_TYPE_Q6_K : use_more_bits(layer, n) ? KQ_TYPE_Q5_K : KQ_TYPE_Q4_K;
        return use_more_bits(layer, n) ? KQ_TYPE_Q6_K : KQ_TYPE_Q4_K;
    case KQ_MIX_IQ4_XS: return layer < n / 8 ? KQ_TYPE_Q5_K : p->base_type;
    case KQ_MIX_Q5_K_M: return use_more_bits(layer, n) ? KQ_TYPE_Q6_K : p->base_type;
    case KQ_MIX_Q6_K:
    case KQ_MIX_NONE: return p->base_type;
    }
    return p->base_type;
}

static int attn_output_type(const kq_qplan *p, const kq_qmodel *m)
{
    if (m->falcon) return p->base_type;
    if (m->n_expert == 8)
        return p->mix == KQ_MIX_Q2_K || p->mix == KQ_MIX_Q3_K_M || p->mix == KQ_MIX_Q4_K_M ||
                       p->mix == KQ_MIX_IQ4_XS
                   ? KQ_TYPE_Q5_K
                   : p->base_type;
    if (p->mix == KQ_MIX_Q2_K) return KQ_TYPE_Q3_K;
    if (p->mix == KQ_MIX_Q3_K_M) return KQ_TYPE_Q4_K;
    return p->base_type;
}

/* The mix's type for a tensor by its role, as llama.cpp sorts names: the
 * first category that matches wins. */
static int mix_type(const kq_qplan *p, const kq_qmodel *m, const kq_tensor_info *t,
                    int64_t i_attn_v, const char **why)
{
    const char *name = t->name;
    const int is_embd = !strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight");
    int type = p->base_type;
    if (!strcmp(name, "output.weight") || (m->tied && is_embd)) {
        type = output_type(p, m, t);
        *why = is_embd ? "token_embd doubles as the output" : "output.weight";
    } else if (is_embd) {
        return type;
    } else if (kq_qplan_is_attn_v(name)) {
        type = attn_v_type(p, m, i_attn_v);
        *why = "value projection";
    } else if (strstr(name, "attn_k.weight")) {
        if (m->n_expert == 8) type = KQ_TYPE_Q8_0;
        *why = "key projection, eight experts";
    } else if (strstr(name, "attn_q.weight")) {
        return type;
    } else if (strstr(name, "attn_output.weight")) {
        type = attn_output_type(p, m);
        *why = "attention output";
    } else if (strstr(name, "ffn_up") || strstr(name, "ffn_gate")) {
        return type;
    } else if (strstr(name, "ffn_down")) {
        type = ffn_down_type(p, m, kq_qplan_layer_of(name, NULL));
        *why = "ffn_down on this layer";
    }
    if (type == p->base_type) *why = NULL;
    return type;
}

/* llama.cpp's fallback for rows that do not fill whole blocks of `type`:
 * 256-element types go to a 32-element type of about their size (Q2_K and
 * Q3_K to Q4_0, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0, IQ4_XS to
 * IQ4_NL). 0 when there is none (a 32-element type already). */
static int fallback_type(int type)
{
    switch (type) {
    case KQ_TYPE_Q2_K:
    case KQ_TYPE_Q3_K: return KQ_TYPE_Q4_0;
    case KQ_TYPE_Q4_K: return KQ_TYPE_Q5_0;
    case KQ_TYPE_Q5_K: return KQ_TYPE_Q5_1;
    case KQ_TYPE_Q6_K: return KQ_TYPE_Q8_0;
    case KQ_TYPE_IQ4_XS: return KQ_TYPE_IQ4_NL;
    default: return 0;
    }
}

kq_qaction kq_qplan_tensor(const kq_qplan *p, const kq_qmodel *m, const kq_tensor_info *t,
                           int64_t i_attn_v, int *type, const char **why)
{
    *type = t->type;
    *why = NULL;
    if (!is_float_type(t->type)) {
        *why = "not a float type: copied";
        return KQ_Q_COPY;
    }
    /* Norms, biases and other vectors are tiny and sensitive: as llama.cpp,
     * only tensors of two or more dimensions are quantized. */
    if (t->n_dims < 2) {
        *why = "1-D";
        return KQ_Q_KEEP;
    }
    if (strstr(t->name, "_norm.weight")) {
        *why = "norm";
        return KQ_Q_KEEP;
    }
    /* The MoE router picks experts by small differences of its outputs;
     * llama.cpp never quantizes it either. */
    if (strstr(t->name, "ffn_gate_inp.weight")) {
        *why = "expert router";
        return KQ_Q_KEEP;
    }
    int target = p->mix != KQ_MIX_NONE ? mix_type(p, m, t, i_attn_v, why) : p->base_type;
    if (t->ne[0] % kq_type_block_elems(target) != 0) {
        const int fb = fallback_type(target);
        if (fb && t->ne[0] % kq_type_block_elems(fb) == 0) {
            *type = fb;
            *why = "row length not a multiple of 256";
            return KQ_Q_CONVERT;
        }
        /* llama.cpp writes F16 here; the float tensor is kept as it is */
        *why = "row length not a multiple of 32";
        return KQ_Q_KEEP;
    }
    *type = target;
    return KQ_Q_CONVERT;
}
