/* Byte-level BPE (tokenizer.ggml.model = "gpt2"), as llama.cpp does it
 * (docs/tokenizers.md): the pre-tokenizer cuts the text into words; each
 * word's UTF-8 bytes are written as GPT-2's byte characters; adjacent symbols
 * merge by the rank of their pair in tokenizer.ggml.merges, lowest first (the
 * leftmost among equal ranks). */
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "model/tokenizer_impl.h"
#include "model/unicode.h"

/* Bytes that stand for themselves: '!'..'~', 0xA1..0xAC, 0xAE..0xFF. The
 * other 68 take U+0100 onwards in byte order. */
static int self_byte(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t kq__bpe_byte_char(unsigned char b)
{
    if (self_byte(b)) return b;
    uint32_t k = 0;
    for (unsigned i = 0; i < b; i++) k += !self_byte(i);
    return 0x100 + k;
}

int kq__bpe_char_byte(uint32_t cp)
{
    if (cp < 0x100) return self_byte(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    uint32_t k = cp - 0x100;
    for (unsigned b = 0; b < 256; b++)
        if (!self_byte(b) && k-- == 0) return (int)b;
    return -1;
}

typedef struct symbol {
    int prev, next;
    size_t off, n;
} symbol;

typedef struct word_state {
    const kq_tokenizer *t;
    const char *w;
    symbol *sym;
    kq_pairq q;
} word_state;

static kq_status try_pair(word_state *s, int l, int r)
{
    if (l < 0 || r < 0) return KQ_OK;
    const symbol *a = &s->sym[l], *b = &s->sym[r];
    int32_t rank = kq__tok_merge_rank(s->t, s->w + a->off, a->n, s->w + b->off, b->n);
    if (rank < 0) return KQ_OK;
    return kq__pairq_push(&s->q, (kq_pair){(double)rank, l, r, a->n, b->n});
}

/* Merges one encoded word (w[0..n), n > 0) and appends its tokens. */
static kq_status merge_word(word_state *s, const char *w, size_t n, kq_ids *out)
{
    const kq_tokenizer *t = s->t;
    if (t->ignore_merges) {
        int32_t id = kq__tok_find(t, w, n);
        if (id >= 0) return kq__ids_push(out, id);
    }
    s->w = w;
    s->q.n = 0;
    int n_sym = 0;
    for (size_t off = 0; off < n;) {
        size_t k = kq__utf8_len((unsigned char)w[off]);
        if (k > n - off) k = n - off;
        s->sym[n_sym] = (symbol){n_sym - 1, off + k == n ? -1 : n_sym + 1, off, k};
        off += k;
        n_sym++;
    }
    kq_status st = KQ_OK;
    for (int i = 1; i < n_sym && st == KQ_OK; i++) st = try_pair(s, i - 1, i);
    while (st == KQ_OK && s->q.n > 0) {
        kq_pair p = kq__pairq_pop(&s->q);
        symbol *l = &s->sym[p.left], *r = &s->sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n != p.nl || r->n != p.nr) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = p.left;
        st = try_pair(s, l->prev, p.left);
        if (st == KQ_OK) st = try_pair(s, p.left, l->next);
    }
    for (int i = 0; i != -1 && st == KQ_OK; i = s->sym[i].next) {
        const symbol *y = &s->sym[i];
        int32_t id = kq__tok_find(t, w + y->off, y->n);
        if (id >= 0) {
            st = kq__ids_push(out, id);
            continue;
        }
        /* llama.cpp then tries each byte of the encoded symbol as a one-byte
         * token and drops the bytes that are none. */
        for (size_t j = 0; j < y->n && st == KQ_OK; j++) {
            id = kq__tok_find(t, w + y->off + j, 1);
            if (id >= 0) st = kq__ids_push(out, id);
        }
    }
    return st;
}

kq_status kq__bpe_tokenize(const kq_tokenizer *t, const char *text, size_t len, kq_ids *out)
{
    if (len == 0) return KQ_OK;
    /* A code point is at most 4 UTF-8 bytes, each at most 2 encoded bytes. */
    size_t cp_bytes, len_bytes, word_bytes, sym_bytes;
    if (kq__mul_size(len, sizeof(uint32_t), &cp_bytes) ||
        kq__mul_size(len, sizeof(size_t), &len_bytes) || kq__mul_size(len, 8, &word_bytes) ||
        word_bytes > (size_t)INT32_MAX || kq__mul_size(word_bytes, sizeof(symbol), &sym_bytes))
        return kq__fail(KQ_ERR_RANGE, "tokenize: text of %zu bytes is too long", len);
    uint32_t *cp = malloc(cp_bytes);
    size_t *lens = malloc(len_bytes);
    char *word = malloc(word_bytes);
    word_state s = {t, NULL, malloc(sym_bytes), {0}};
    kq_status st = KQ_OK;
    if (!cp || !lens || !word || !s.sym) {
        st = kq__fail(KQ_ERR_NO_MEMORY, "tokenize: out of memory for %zu bytes of text", len);
        goto done;
    }
    size_t n_cp = 0;
    for (size_t i = 0; i < len;) i += kq__utf8_decode((const unsigned char *)text + i, len - i,
                                                      &cp[n_cp++]);
    size_t n_words = 0;
    st = kq__pretokenize(t->pre, cp, n_cp, lens, &n_words);
    size_t at = 0;
    for (size_t w = 0; w < n_words && st == KQ_OK; w++) {
        size_t n = 0;
        for (size_t i = at; i < at + lens[w]; i++) {
            unsigned char u[4];
            size_t k = kq__utf8_encode(cp[i], u);
            for (size_t j = 0; j < k; j++) {
                unsigned char e[4];
                size_t m = kq__utf8_encode(kq__bpe_byte_char(u[j]), e);
                memcpy(word + n, e, m);
                n += m;
            }
        }
        at += lens[w];
        if (n > 0) st = merge_word(&s, word, n, out);
    }
done:
    free(cp);
    free(lens);
    free(word);
    free(s.sym);
    free(s.q.v);
    return st;
}
