/* The tokenizer's state and the pieces its files share (docs/tokenizers.md).
 * Loading (tokenizer.c) builds it from GGUF metadata; the SPM merger
 * (tokenizer_spm.c), the byte-level BPE merger (tokenizer_bpe.c) and the
 * pre-tokenizer scanners (tokenizer_pre.c) read it. */
#ifndef KQ_MODEL_TOKENIZER_IMPL_H
#define KQ_MODEL_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "model/tokenizer.h"

/* Token attributes: the tokenizer.ggml.token_type codes mapped to llama.cpp's
 * attribute bits, which detection by text may add to. */
enum {
    KQ_TOK_UNKNOWN = 1 << 0,
    KQ_TOK_UNUSED = 1 << 1,
    KQ_TOK_NORMAL = 1 << 2,
    KQ_TOK_CONTROL = 1 << 3,
    KQ_TOK_USER_DEFINED = 1 << 4,
    KQ_TOK_BYTE = 1 << 5,
    KQ_TOK_EOG = 1 << 6 /* ours: ends generation */
};

enum kq_tok_kind { KQ_TOK_SPM = 1, KQ_TOK_BPE = 2 };

/* The pre-tokenizer regexes implemented, each as a hand-written scanner. */
enum kq_tok_pre {
    KQ_PRE_NONE = 0, /* SPM: no pre-tokenizer */
    KQ_PRE_GPT2,     /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
    KQ_PRE_LLAMA3,   /* Llama 3: letters with one leading non-letter, \p{N}{1,3}, ... */
    KQ_PRE_QWEN2     /* as Llama 3 with single digits */
};

/* An open-addressing table from byte strings to int32 values. Its size is
 * fixed when made (all the strings' bytes and their count are known from the
 * metadata); the strings are copied into one arena. */
typedef struct kq_strmap {
    char *arena;
    size_t arena_len, arena_cap;
    size_t *off;
    uint32_t *len;
    int32_t *val;
    size_t n, cap;
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t mask;
} kq_strmap;
/* Room for n strings of `bytes` bytes in all; what names the table in errors. */
kq_status kq__strmap_init(kq_strmap *m, size_t n, size_t bytes, const char *what);
void kq__strmap_free(kq_strmap *m);
/* Adds s -> val; an equal string already there keeps its value (*dup = 1). */
void kq__strmap_add(kq_strmap *m, const char *s, size_t n, int32_t val, int *dup);

struct kq_tokenizer {
    enum kq_tok_kind kind;
    enum kq_tok_pre pre;
    int32_t n_vocab;
    kq_strmap tokens; /* text -> id; entry i is token i */
    float *scores;
    uint8_t *attr;
    /* BPE merges: the "left right" lines, keyed by the whole line, valued by
     * rank; merge_split[i] is the byte length of entry i's left part. */
    kq_strmap merges;
    uint32_t *merge_split;
    int32_t *special; /* ids matched in the text before tokenizing, longest first */
    size_t n_special;
    int32_t bos, eos, eot, eom, unk;
    int add_bos, add_eos, add_space_prefix, ignore_merges;
};

/* A growing array of token ids. */
typedef struct kq_ids {
    int32_t *v;
    size_t n, cap;
} kq_ids;
kq_status kq__ids_push(kq_ids *ids, int32_t id);

/* Pairs of adjacent symbols waiting to merge, lowest key first and the
 * leftmost among equal keys (SPM queues minus the score, BPE the rank). A
 * pair is stale once either side has changed size since it was queued. */
typedef struct kq_pair {
    double key;
    int left, right;
    size_t nl, nr;
} kq_pair;
typedef struct kq_pairq {
    kq_pair *v;
    size_t n, cap;
} kq_pairq;
kq_status kq__pairq_push(kq_pairq *q, kq_pair p);
kq_pair kq__pairq_pop(kq_pairq *q); /* q->n > 0 */

/* Hash of a byte string; kq__hash_more continues a hash over more bytes. */
uint64_t kq__hash_more(uint64_t h, const void *p, size_t n);
#define KQ__HASH_SEED 0xcbf29ce484222325ull

/* Token id of a text, or -1. */
int32_t kq__tok_find(const kq_tokenizer *t, const char *s, size_t n);
/* Rank of merging left and right, or -1. */
int32_t kq__tok_merge_rank(const kq_tokenizer *t, const char *l, size_t nl, const char *r,
                           size_t nr);
/* The id of byte b's fallback token ("<0xAB>", else the one-byte text), or -1. */
int32_t kq__tok_byte_token(const kq_tokenizer *t, unsigned char b);

/* Tokenizes one fragment of raw text (no special tokens in it), appending. */
kq_status kq__spm_tokenize(const kq_tokenizer *t, const char *text, size_t len, kq_ids *out);
kq_status kq__bpe_tokenize(const kq_tokenizer *t, const char *text, size_t len, kq_ids *out);

/* Splits code points cp[0..n) into words as the pre-tokenizer does: writes
 * each word's length in code points to lens (room for n), sets *n_words. */
kq_status kq__pretokenize(enum kq_tok_pre pre, const uint32_t *cp, size_t n, size_t *lens,
                          size_t *n_words);

/* GPT-2's byte-to-character map (printable bytes stand for themselves, the
 * rest map to U+0100 onwards) and its inverse (-1 for other characters). */
uint32_t kq__bpe_byte_char(unsigned char b);
int kq__bpe_char_byte(uint32_t cp);

#endif
