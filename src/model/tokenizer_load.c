/* Loading a tokenizer from GGUF metadata: which keys, which defaults, which
 * token texts end generation, all as llama.cpp reads them
 * (docs/tokenizers.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "model/tokenizer_impl.h"

static const char K_MODEL[] = "tokenizer.ggml.model";
static const char K_PRE[] = "tokenizer.ggml.pre";
static const char K_TOKENS[] = "tokenizer.ggml.tokens";
static const char K_SCORES[] = "tokenizer.ggml.scores";
static const char K_TYPES[] = "tokenizer.ggml.token_type";
static const char K_MERGES[] = "tokenizer.ggml.merges";

/* A key that may be absent: KQ_OK with *v NULL when it is. */
static kq_status find_optional(const kq_gguf *g, const char *key, const kq_gguf_value **v)
{
    kq_status s = kq_gguf_find_kv(g, key, v);
    if (s == KQ_ERR_NOT_FOUND) {
        *v = NULL;
        return KQ_OK;
    }
    return s;
}

/* An array of elem_type with at least min_count elements. */
static kq_status get_array(const char *key, const kq_gguf_value *v, const kq_gguf_vtype *types,
                           int n_types, int64_t min_count, int64_t *count)
{
    kq_gguf_vtype et;
    kq_status s = kq_gguf_value_array(v, &et, count);
    if (s != KQ_OK) return kq__fail_context(s, "tokenizer: %s: ", key);
    int ok = 0;
    for (int i = 0; i < n_types; i++) ok |= et == types[i];
    if (!ok)
        return kq__fail(KQ_ERR_FORMAT, "tokenizer: %s is an array of %s, not of %s", key,
                        kq_gguf_vtype_name(et) ? kq_gguf_vtype_name(et) : "?",
                        kq_gguf_vtype_name(types[0]));
    if (*count < min_count)
        return kq__fail(KQ_ERR_FORMAT, "tokenizer: %s has %lld elements, fewer than the %lld tokens",
                        key, (long long)*count, (long long)min_count);
    return KQ_OK;
}

static kq_status optional_bool(const kq_gguf *g, const char *key, int *out)
{
    int b;
    kq_status s = kq_gguf_get_bool(g, key, &b);
    if (s == KQ_ERR_NOT_FOUND) return KQ_OK;
    if (s != KQ_OK) return kq__fail_context(s, "tokenizer: ");
    *out = b;
    return KQ_OK;
}

/* A special token id from metadata; an absent key leaves *id as it is. */
static kq_status optional_id(const kq_gguf *g, const char *key, int32_t n_vocab, int32_t *id)
{
    int64_t v;
    kq_status s = kq_gguf_get_int(g, key, &v);
    if (s == KQ_ERR_NOT_FOUND) return KQ_OK;
    if (s != KQ_OK) return kq__fail_context(s, "tokenizer: ");
    if (v < 0 || v >= n_vocab)
        return kq__fail(KQ_ERR_FORMAT, "tokenizer: %s = %lld is outside the vocabulary [0, %d)",
                        key, (long long)v, n_vocab);
    *id = (int32_t)v;
    return KQ_OK;
}

/* Pre-tokenizer names, grouped as llama.cpp groups them, with the flags each
 * group sets. Names llama.cpp knows but whose regexes are not implemented
 * here are refused by name. */
typedef struct pre_entry {
    const char *name;
    enum kq_tok_pre pre;
    int ignore_merges, add_bos;
} pre_entry;

static const pre_entry PRE_TABLE[] = {
    {"llama3", KQ_PRE_LLAMA3, 1, 1},   {"llama-v3", KQ_PRE_LLAMA3, 1, 1},
    {"llama-bpe", KQ_PRE_LLAMA3, 1, 1}, {"falcon3", KQ_PRE_LLAMA3, 1, 1},
    {"falcon-h1", KQ_PRE_LLAMA3, 1, 1}, {"pixtral", KQ_PRE_LLAMA3, 1, 1},
    {"midm-2.0", KQ_PRE_LLAMA3, 1, 1},  {"lfm2", KQ_PRE_LLAMA3, 1, 1},
    {"jina-v5-nano", KQ_PRE_LLAMA3, 1, 1}, {"dbrx", KQ_PRE_LLAMA3, 0, 0},
    {"smaug-bpe", KQ_PRE_LLAMA3, 0, 0},
    {"qwen2", KQ_PRE_QWEN2, 0, 0},      {"deepseek-r1-qwen", KQ_PRE_QWEN2, 0, 0},
    {"kormo", KQ_PRE_QWEN2, 0, 0},      {"f2llmv2", KQ_PRE_QWEN2, 0, 0},
    {"megrez", KQ_PRE_QWEN2, 0, 0},     {"stablelm2", KQ_PRE_QWEN2, 0, 0},
    {"gpt-2", KQ_PRE_GPT2, 0, 0},       {"phi-2", KQ_PRE_GPT2, 0, 0},
    {"gigachat", KQ_PRE_GPT2, 0, 0},    {"a.x-4.0", KQ_PRE_GPT2, 0, 0},
    {"mellum", KQ_PRE_GPT2, 0, 0},      {"mpt", KQ_PRE_GPT2, 0, 0},
    {"olmo", KQ_PRE_GPT2, 0, 0},        {"exaone4", KQ_PRE_GPT2, 0, 0},
};

static kq_status load_kind(kq_tokenizer *t, const kq_gguf *g)
{
    const char *s;
    size_t n;
    kq_status st = kq_gguf_get_string(g, K_MODEL, &s, &n);
    if (st != KQ_OK) return kq__fail_context(st, "tokenizer: ");
    if (n == 5 && memcmp(s, "llama", 5) == 0) {
        t->kind = KQ_TOK_SPM;
        t->pre = KQ_PRE_NONE;
        t->add_space_prefix = 1;
        t->add_bos = 1;
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        return KQ_OK;
    }
    if (!(n == 4 && memcmp(s, "gpt2", 4) == 0))
        return kq__fail(KQ_ERR_UNSUPPORTED,
                        "tokenizer: %s = '%.*s': only 'llama' (SentencePiece) and 'gpt2' "
                        "(byte-level BPE) are implemented",
                        K_MODEL, (int)(n > 64 ? 64 : n), s);
    t->kind = KQ_TOK_BPE;
    t->bos = 11;
    t->eos = 11;
    st = kq_gguf_get_string(g, K_PRE, &s, &n);
    if (st == KQ_ERR_NOT_FOUND) {
        s = "default";
        n = 7;
    } else if (st != KQ_OK) {
        return kq__fail_context(st, "tokenizer: ");
    }
    for (size_t i = 0; i < sizeof PRE_TABLE / sizeof PRE_TABLE[0]; i++) {
        if (strlen(PRE_TABLE[i].name) == n && memcmp(PRE_TABLE[i].name, s, n) == 0) {
            t->pre = PRE_TABLE[i].pre;
            t->ignore_merges = PRE_TABLE[i].ignore_merges;
            t->add_bos = PRE_TABLE[i].add_bos;
            return KQ_OK;
        }
    }
    return kq__fail(KQ_ERR_UNSUPPORTED,
                    "tokenizer: %s = '%.*s': this pre-tokenizer is not implemented (llama-bpe "
                    "and the other Llama 3 names, qwen2, gpt-2 are)",
                    K_PRE, (int)(n > 64 ? 64 : n), s);
}

static kq_status load_tokens(kq_tokenizer *t, const kq_gguf *g)
{
    static const kq_gguf_vtype str_t[] = {KQ_GGUF_STRING};
    static const kq_gguf_vtype score_t[] = {KQ_GGUF_F32, KQ_GGUF_I32};
    static const kq_gguf_vtype type_t[] = {KQ_GGUF_I32};
    const kq_gguf_value *vt, *vs, *vy;
    int64_t n, ns = 0, ny = 0;
    kq_status st = kq_gguf_find_kv(g, K_TOKENS, &vt);
    if (st != KQ_OK) return kq__fail_context(st, "tokenizer: ");
    if ((st = get_array(K_TOKENS, vt, str_t, 1, 0, &n)) != KQ_OK) return st;
    if (n < 1 || n >= INT32_MAX)
        return kq__fail(KQ_ERR_FORMAT, "tokenizer: %s has %lld tokens (want 1 to %d)", K_TOKENS,
                        (long long)n, INT32_MAX - 1);
    if ((st = find_optional(g, K_SCORES, &vs)) != KQ_OK) return st;
    if (vs && (st = get_array(K_SCORES, vs, score_t, 2, n, &ns)) != KQ_OK) return st;
    kq_gguf_vtype score_type = KQ_GGUF_F32;
    if (vs) kq_gguf_value_array(vs, &score_type, NULL);
    if ((st = find_optional(g, K_TYPES, &vy)) != KQ_OK) return st;
    if (vy && (st = get_array(K_TYPES, vy, type_t, 1, n, &ny)) != KQ_OK) return st;
    t->n_vocab = (int32_t)n;

    /* An empty token text becomes "[EMPTY_<id>]", as in llama.cpp. */
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        if ((st = kq_gguf_array_string(vt, i, &s, &len)) != KQ_OK)
            return kq__fail_context(st, "tokenizer: ");
        if (len == 0) len = 32;
        if (len > UINT32_MAX || kq__add_size(bytes, len, &bytes))
            return kq__fail(KQ_ERR_FORMAT, "tokenizer: token %lld: text too long", (long long)i);
    }
    if ((st = kq__strmap_init(&t->tokens, (size_t)n, bytes, "tokenizer: tokens")) != KQ_OK) return st;
    t->scores = malloc((size_t)n * sizeof *t->scores);
    t->attr = malloc((size_t)n);
    if (!t->scores || !t->attr)
        return kq__fail(KQ_ERR_NO_MEMORY, "tokenizer: out of memory for %lld tokens", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        char empty[32];
        kq_gguf_array_string(vt, i, &s, &len);
        if (len == 0) {
            len = (size_t)snprintf(empty, sizeof empty, "[EMPTY_%lld]", (long long)i);
            s = empty;
        }
        int dup;
        kq__strmap_add(&t->tokens, s, len, (int32_t)i, &dup);
        if (dup)
            return kq__fail(KQ_ERR_FORMAT, "tokenizer: token %lld repeats the text of token %d",
                            (long long)i, kq__tok_find(t, s, len));
        double score = 0;
        if (vs) {
            if (score_type == KQ_GGUF_F32) {
                st = kq_gguf_array_float(vs, i, &score);
            } else {
                int64_t iv;
                st = kq_gguf_array_int(vs, i, &iv);
                score = (double)(float)iv;
            }
            if (st != KQ_OK) return kq__fail_context(st, "tokenizer: ");
        }
        t->scores[i] = (float)score;
        uint8_t a = KQ_TOK_NORMAL;
        if (vy) {
            int64_t ty;
            if ((st = kq_gguf_array_int(vy, i, &ty)) != KQ_OK)
                return kq__fail_context(st, "tokenizer: ");
            switch (ty) {
            case 1: a = KQ_TOK_NORMAL; break;
            case 2: a = KQ_TOK_UNKNOWN; break;
            case 3: a = KQ_TOK_CONTROL; break;
            case 4: a = KQ_TOK_USER_DEFINED; break;
            case 5: a = KQ_TOK_UNUSED; break;
            case 6: a = KQ_TOK_BYTE; break;
            default: a = 0; break; /* undefined: no piece, never special */
            }
        }
        t->attr[i] = a;
    }
    return KQ_OK;
}

static kq_status load_merges(kq_tokenizer *t, const kq_gguf *g)
{
    static const kq_gguf_vtype str_t[] = {KQ_GGUF_STRING};
    const kq_gguf_value *v;
    int64_t n;
    kq_status st = kq_gguf_find_kv(g, K_MERGES, &v);
    if (st != KQ_OK) return kq__fail_context(st, "tokenizer: byte-level BPE needs merges: ");
    if ((st = get_array(K_MERGES, v, str_t, 1, 0, &n)) != KQ_OK) return st;
    if (n >= INT32_MAX)
        return kq__fail(KQ_ERR_FORMAT, "tokenizer: %s has %lld merges", K_MERGES, (long long)n);
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        if ((st = kq_gguf_array_string(v, i, &s, &len)) != KQ_OK)
            return kq__fail_context(st, "tokenizer: ");
        if (len > UINT32_MAX || kq__add_size(bytes, len, &bytes))
            return kq__fail(KQ_ERR_FORMAT, "tokenizer: merge %lld too long", (long long)i);
    }
    if ((st = kq__strmap_init(&t->merges, (size_t)n, bytes, "tokenizer: merges")) != KQ_OK) return st;
    t->merge_split = malloc((n ? (size_t)n : 1) * sizeof *t->merge_split);
    if (!t->merge_split) return kq__fail(KQ_ERR_NO_MEMORY, "tokenizer: out of memory for merges");
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        kq_gguf_array_string(v, i, &s, &len);
        /* The first space after the first byte splits a merge; a line without
         * one can never match two non-empty parts. */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) continue;
        int dup;
        size_t e = t->merges.n;
        kq__strmap_add(&t->merges, s, len, (int32_t)i, &dup);
        if (!dup) t->merge_split[e] = (uint32_t)(sp - s); /* earlier rank wins */
    }
    return KQ_OK;
}

static int32_t find_cstr(const kq_tokenizer *t, const char *s)
{
    return kq__tok_find(t, s, strlen(s));
}

/* The first of the texts present (lowest id), or -1. */
static int32_t find_any(const kq_tokenizer *t, const char *const *texts)
{
    int32_t best = -1;
    for (; *texts; texts++) {
        int32_t id = find_cstr(t, *texts);
        if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    return best;
}

/* Texts of tokens that end generation, and of the FIM tokens llama.cpp
 * detects (the pad, repo and separator ones also end generation). */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~[", NULL};
static const char *const EOT_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
    "<end_of_utterance>", NULL};
static const char *const FIM_PRE[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", "\xe2\x96\x81<PRE>",
    "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const FIM_SUF[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>", "\xe2\x96\x81<SUF>",
    "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const FIM_MID[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", "\xe2\x96\x81<MID>",
    "<|code_middle|>", "<|middle|>", NULL};
static const char *const FIM_PAD[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
                                      NULL};
static const char *const FIM_REP[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                      "<reponame>", NULL};
static const char *const FIM_SEP[] = {"<|file_sep|>", NULL};

static kq_status load_special(kq_tokenizer *t, const kq_gguf *g)
{
    const int32_t nv = t->n_vocab;
    kq_status st;
    if (t->bos >= nv) t->bos = -1;
    if (t->eos >= nv) t->eos = -1;
    if (t->unk >= nv) t->unk = -1;
    t->eot = t->eom = -1;
    int32_t fim[6] = {-1, -1, -1, -1, -1, -1};
    static const char *const fim_keys[6] = {
        "tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id",
        "tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.fim_pad_token_id",
        "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id"};
    static const char *const *const fim_texts[6] = {FIM_PRE, FIM_SUF, FIM_MID,
                                                    FIM_PAD, FIM_REP, FIM_SEP};
    if ((st = optional_id(g, "tokenizer.ggml.bos_token_id", nv, &t->bos)) != KQ_OK ||
        (st = optional_id(g, "tokenizer.ggml.eos_token_id", nv, &t->eos)) != KQ_OK ||
        (st = optional_id(g, "tokenizer.ggml.eot_token_id", nv, &t->eot)) != KQ_OK ||
        (st = optional_id(g, "tokenizer.ggml.eom_token_id", nv, &t->eom)) != KQ_OK ||
        (st = optional_id(g, "tokenizer.ggml.unknown_token_id", nv, &t->unk)) != KQ_OK)
        return st;
    /* The older names of the first three FIM keys, then the current ones. */
    if ((st = optional_id(g, "tokenizer.ggml.prefix_token_id", nv, &fim[0])) != KQ_OK ||
        (st = optional_id(g, "tokenizer.ggml.suffix_token_id", nv, &fim[1])) != KQ_OK ||
        (st = optional_id(g, "tokenizer.ggml.middle_token_id", nv, &fim[2])) != KQ_OK)
        return st;
    for (int i = 0; i < 6; i++)
        if ((st = optional_id(g, fim_keys[i], nv, &fim[i])) != KQ_OK) return st;
    if ((st = optional_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos)) != KQ_OK ||
        (st = optional_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos)) != KQ_OK)
        return st;

    /* Detection by text: a token found this way is made a control token. */
    if (t->eot < 0) t->eot = find_any(t, EOT_TEXTS);
    if (t->eom < 0) t->eom = find_cstr(t, "<|eom_id|>");
    if (t->eot >= 0) t->attr[t->eot] |= KQ_TOK_CONTROL;
    if (t->eom >= 0) t->attr[t->eom] |= KQ_TOK_CONTROL;
    for (int i = 0; i < 6; i++) {
        if (fim[i] < 0) {
            fim[i] = find_any(t, fim_texts[i]);
            if (fim[i] >= 0) t->attr[fim[i]] |= KQ_TOK_CONTROL;
        }
        if (i >= 3 && fim[i] >= 0) t->attr[fim[i]] |= KQ_TOK_EOG;
    }
    for (const char *const *s = EOG_TEXTS; *s; s++) {
        int32_t id = find_cstr(t, *s);
        if (id >= 0) t->attr[id] |= KQ_TOK_EOG | KQ_TOK_CONTROL;
    }
    /* gpt-oss's channel tokens always render. */
    static const char *const rendered[] = {"<|channel|>", "<|message|>", "<|start|>",
                                           "<|constrain|>", NULL};
    for (const char *const *s = rendered; *s; s++) {
        int32_t id = find_cstr(t, *s);
        if (id >= 0) t->attr[id] = (uint8_t)((t->attr[id] & KQ_TOK_EOG) | KQ_TOK_USER_DEFINED);
    }
    if (t->eos >= 0) t->attr[t->eos] |= KQ_TOK_EOG;
    if (t->eot >= 0) t->attr[t->eot] |= KQ_TOK_EOG;
    if (t->eom >= 0) t->attr[t->eom] |= KQ_TOK_EOG;

    /* Where "<|return|>" and "<|call|>" (or "<|calls|>" and "<|flush|>")
     * end generation, "<|end|>" is an ordinary user-defined token; where
     * "<|tool_response>" or "<|plamo:eos|>" does, "</s>" is a normal one. */
    int32_t ret = find_cstr(t, "<|return|>"), call = find_cstr(t, "<|call|>");
    int32_t calls = find_cstr(t, "<|calls|>"), flush = find_cstr(t, "<|flush|>");
    int32_t end = find_cstr(t, "<|end|>");
    int has_call = (call >= 0 && (t->attr[call] & KQ_TOK_EOG)) ||
                   (calls >= 0 && (t->attr[calls] & KQ_TOK_EOG));
    int has_ret = ret >= 0 && (t->attr[ret] & KQ_TOK_EOG);
    int has_flush = flush >= 0 && (t->attr[flush] & KQ_TOK_EOG);
    if (end >= 0 && (t->attr[end] & KQ_TOK_EOG) && ((has_ret && has_call) || (has_call && has_flush)))
        t->attr[end] = KQ_TOK_USER_DEFINED;
    int32_t s_end = find_cstr(t, "</s>"), tr = find_cstr(t, "<|tool_response>");
    int32_t pe = find_cstr(t, "<|plamo:eos|>");
    if (s_end >= 0 && (t->attr[s_end] & KQ_TOK_EOG) &&
        ((tr >= 0 && (t->attr[tr] & KQ_TOK_EOG)) || (pe >= 0 && (t->attr[pe] & KQ_TOK_EOG))))
        t->attr[s_end] = KQ_TOK_NORMAL;
    return KQ_OK;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Tokens matched in the text before tokenizing, longest first (equal
 * lengths by id; llama.cpp leaves that order unspecified). */
static kq_status build_special(kq_tokenizer *t)
{
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        n += (t->attr[i] & (KQ_TOK_CONTROL | KQ_TOK_USER_DEFINED | KQ_TOK_UNKNOWN)) != 0;
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return kq__fail(KQ_ERR_NO_MEMORY, "tokenizer: out of memory");
    }
    /* Sort keys: the complement of the length above the id. */
    size_t k = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (KQ_TOK_CONTROL | KQ_TOK_USER_DEFINED | KQ_TOK_UNKNOWN))
            keys[k++] = ((uint64_t)(UINT32_MAX - t->tokens.len[i]) << 32) | (uint32_t)i;
    qsort(keys, n, sizeof *keys, u64_cmp);
    for (size_t i = 0; i < n; i++) t->special[i] = (int32_t)(keys[i] & 0xFFFFFFFFu);
    t->n_special = n;
    free(keys);
    return KQ_OK;
}

kq_status kq__tokenizer_from_gguf(const kq_gguf *g, kq_tokenizer **out)
{
    if (!g || !out) return kq__fail(KQ_ERR_INVALID_ARG, "kq__tokenizer_from_gguf: NULL argument");
    *out = NULL;
    kq_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return kq__fail(KQ_ERR_NO_MEMORY, "tokenizer: out of memory");
    kq_status st;
    if ((st = load_kind(t, g)) != KQ_OK || (st = load_tokens(t, g)) != KQ_OK ||
        (t->kind == KQ_TOK_BPE && (st = load_merges(t, g)) != KQ_OK) ||
        (st = optional_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix)) != KQ_OK ||
        (st = load_special(t, g)) != KQ_OK || (st = build_special(t)) != KQ_OK) {
        kq__tokenizer_free(t);
        return st;
    }
    if (t->kind == KQ_TOK_BPE) t->add_space_prefix = 0; /* llama.cpp ignores it for BPE */
    *out = t;
    return KQ_OK;
}

void kq__tokenizer_free(kq_tokenizer *t)
{
    if (!t) return;
    kq__strmap_free(&t->tokens);
    kq__strmap_free(&t->merges);
    free(t->merge_split);
    free(t->scores);
    free(t->attr);
    free(t->special);
    free(t);
}

int32_t kq__tokenizer_n_vocab(const kq_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t kq__tokenizer_bos(const kq_tokenizer *t) { return t ? t->bos : -1; }
int32_t kq__tokenizer_eos(const kq_tokenizer *t) { return t ? t->eos : -1; }

int kq__tokenizer_is_eog(const kq_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_vocab && (t->attr[id] & KQ_TOK_EOG) != 0;
}

