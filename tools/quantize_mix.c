/* Which type each tensor gets in `kq quantize`. The q4_k_m mix follows
 * llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_K_M rules for the tensors this tool
 * handles: more bits where quantization error hurts most (the output
 * projection, and attn_v / ffn_down on the first and last eighth of the
 * layers and every third layer between), Q4_K elsewhere. */
#include "quantize_mix.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The targets, with llama.cpp's llama_ftype value for a file made of them.
 * A file of uniform Q4_K / Q5_K is closest to llama.cpp's "_S" (small)
 * variants, which keep most weights at the base type. */
static const struct {
    int type;
    uint32_t ftype;
} g_targets[] = {
    {KQ_TYPE_Q4_0, 2},  /* LLAMA_FTYPE_MOSTLY_Q4_0 */
    {KQ_TYPE_Q8_0, 7},  /* LLAMA_FTYPE_MOSTLY_Q8_0 */
    {KQ_TYPE_Q4_K, 14}, /* LLAMA_FTYPE_MOSTLY_Q4_K_S */
    {KQ_TYPE_Q5_K, 16}, /* LLAMA_FTYPE_MOSTLY_Q5_K_S */
    {KQ_TYPE_Q6_K, 18}, /* LLAMA_FTYPE_MOSTLY_Q6_K */
};
#define FTYPE_Q4_K_M 15u /* LLAMA_FTYPE_MOSTLY_Q4_K_M */

int kq_qplan_parse(const char *arg, kq_qplan *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    if (!strcasecmp(arg, "q4_k_m")) {
        snprintf(out->label, sizeof out->label, "q4_k_m");
        out->base_type = KQ_TYPE_Q4_K;
        out->mix_q4_k_m = 1;
        out->ftype = FTYPE_Q4_K_M;
        return 0;
    }
    kq_type t;
    if (kq_type_from_name(arg, &t) == KQ_OK) {
        for (size_t i = 0; i < sizeof g_targets / sizeof g_targets[0]; i++) {
            if (g_targets[i].type != (int)t) continue;
            snprintf(out->label, sizeof out->label, "%s", kq_type_name(t));
            out->base_type = (int)t;
            out->ftype = g_targets[i].ftype;
            return 0;
        }
    }
    snprintf(err, err_cap,
             "unknown target type '%.40s' (known: q4_0, q8_0, q4_K, q5_K, q6_K, q4_k_m; "
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

int64_t kq_qplan_layer_count(const kq_gguf *g)
{
    const char *arch;
    size_t len;
    if (kq_gguf_get_string(g, "general.architecture", &arch, &len) == KQ_OK && len < 200) {
        char key[256];
        uint64_t n;
        snprintf(key, sizeof key, "%.*s.block_count", (int)len, arch);
        /* A count beyond INT32_MAX is not a real model; ignoring it keeps
         * 7 * n below from overflowing. */
        if (kq_gguf_get_uint(g, key, &n) == KQ_OK && n > 0 && n <= INT32_MAX) return (int64_t)n;
    }
    int64_t top = -1;
    for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
        kq_tensor_info t;
        if (kq_gguf_tensor(g, i, &t) != KQ_OK) continue;
        int64_t l = kq_qplan_layer_of(t.name, NULL);
        if (l > top) top = l;
    }
    return top + 1;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers, and
 * every third layer in between, in integer division as llama.cpp does it. */
static int use_more_bits(int64_t i, int64_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* attn_v and every ffn_down form (ffn_down, ffn_down_exps, ffn_down_shexp):
 * the tensors llama.cpp's mixes give more bits layer by layer. */
static int is_layer_sensitive(const char *rest)
{
    if (!strncmp(rest, "attn_v.", 7)) return 1;
    return !strncmp(rest, "ffn_down", 8) && (rest[8] == '.' || rest[8] == '_');
}

static int is_float_type(int type)
{
    return type == KQ_TYPE_F32 || type == KQ_TYPE_F16 || type == KQ_TYPE_BF16;
}

kq_qaction kq_qplan_tensor(const kq_qplan *p, const kq_tensor_info *t, int64_t n_layers, int *type,
                           const char **why)
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
    int target = p->base_type;
    if (p->mix_q4_k_m) {
        const char *rest;
        int64_t layer = kq_qplan_layer_of(t->name, &rest);
        if (!strcmp(t->name, "output.weight")) {
            target = KQ_TYPE_Q6_K;
            *why = "output.weight";
        } else if (layer >= 0 && is_layer_sensitive(rest) && use_more_bits(layer, n_layers)) {
            target = KQ_TYPE_Q6_K;
            *why = "more bits on this layer";
        }
    }
    int64_t block = kq_type_block_elems(target);
    if (t->ne[0] % block != 0) {
        /* K types need rows of whole 256-element super-blocks; Q8_0 keeps
         * almost all of their precision with 32-element blocks. */
        if (block > 32 && t->ne[0] % 32 == 0) {
            *type = KQ_TYPE_Q8_0;
            *why = "row length not a multiple of 256";
            return KQ_Q_CONVERT;
        }
        *why = "row length not a multiple of 32";
        return KQ_Q_KEEP;
    }
    *type = target;
    return KQ_Q_CONVERT;
}
