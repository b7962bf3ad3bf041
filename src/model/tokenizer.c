/* Tokenizing: the split of a text around the special tokens it contains,
 * BOS/EOS, and the pieces tokens stand for (docs/tokenizers.md). The mergers
 * are tokenizer_spm.c and tokenizer_bpe.c; loading is tokenizer_load.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "model/tokenizer_impl.h"
#include "model/unicode.h"

/* A piece of the input: raw text [off, off + len) or a special token. */
typedef struct fragment {
    int32_t id; /* -1 for text */
    size_t off, len;
} fragment;

typedef struct frag_list {
    fragment *v;
    size_t n, cap;
} frag_list;

static kq_status frag_push(frag_list *l, int32_t id, size_t off, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16, bytes;
        if (kq__mul_size(cap, sizeof *l->v, &bytes))
            return kq__fail(KQ_ERR_NO_MEMORY, "tokenize: too many fragments");
        fragment *v = realloc(l->v, bytes);
        if (!v) return kq__fail(KQ_ERR_NO_MEMORY, "tokenize: out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (fragment){id, off, len};
    return KQ_OK;
}

static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m > n) return NULL;
    const char *end = hay + (n - m);
    for (const char *p = hay; p <= end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p) + 1);
        if (!p) return NULL;
        if (memcmp(p, needle, m) == 0) return p;
    }
    return NULL;
}

/* Splits the text around special tokens: each token in turn (longest first)
 * is cut out of every text fragment wherever it occurs, left to right. */
static kq_status partition(const kq_tokenizer *t, const char *text, size_t len,
                           int parse_special, frag_list *out)
{
    frag_list a = {0}, b = {0};
    kq_status st = frag_push(&a, -1, 0, len);
    unsigned char present[256] = {0};
    for (size_t i = 0; i < len; i++) present[(unsigned char)text[i]] = 1;
    for (size_t k = 0; k < t->n_special && st == KQ_OK; k++) {
        int32_t id = t->special[k];
        if (!parse_special && (t->attr[id] & (KQ_TOK_CONTROL | KQ_TOK_UNKNOWN))) continue;
        const char *s = t->tokens.arena + t->tokens.off[id];
        size_t n = t->tokens.len[id];
        if (n > len || !present[(unsigned char)s[0]]) continue;
        int hit = 0;
        b.n = 0;
        for (size_t f = 0; f < a.n && st == KQ_OK; f++) {
            fragment fr = a.v[f];
            if (fr.id >= 0) {
                st = frag_push(&b, fr.id, fr.off, fr.len);
                continue;
            }
            size_t off = fr.off, rem = fr.len;
            const char *m;
            while (st == KQ_OK && rem >= n && (m = find_bytes(text + off, rem, s, n)) != NULL) {
                size_t at = (size_t)(m - text);
                hit = 1;
                if (at > off) st = frag_push(&b, -1, off, at - off);
                if (st == KQ_OK) st = frag_push(&b, id, at, n);
                rem -= at - off + n;
                off = at + n;
            }
            if (st == KQ_OK && rem > 0) st = frag_push(&b, -1, off, rem);
        }
        if (hit) {
            frag_list tmp = a;
            a = b;
            b = tmp;
        }
    }
    free(b.v);
    if (st != KQ_OK) {
        free(a.v);
        return st;
    }
    *out = a;
    return KQ_OK;
}

kq_status kq__tokenize(const kq_tokenizer *t, const char *text, size_t len, int add_special,
                       int parse_special, int32_t **out, size_t *n_out)
{
    if (!t || !out || !n_out || (!text && len))
        return kq__fail(KQ_ERR_INVALID_ARG, "kq__tokenize: NULL argument");
    *out = NULL;
    *n_out = 0;
    kq_ids ids = {0};
    frag_list frags = {0};
    kq_status st = KQ_OK;
    if (len > 0 && (st = partition(t, text, len, parse_special, &frags)) != KQ_OK) return st;
    if (add_special && t->add_bos) {
        if (t->bos < 0)
            st = kq__fail(KQ_ERR_FORMAT, "tokenize: the vocabulary adds a BOS token but has none");
        else
            st = kq__ids_push(&ids, t->bos);
    }
    /* SPM puts a space before the text at the start and after each special
     * token, where the vocabulary asks for a space prefix. */
    int prev_special = 1;
    char *buf = NULL;
    for (size_t f = 0; f < frags.n && st == KQ_OK; f++) {
        const fragment *fr = &frags.v[f];
        if (fr->id >= 0) {
            st = kq__ids_push(&ids, fr->id);
            prev_special = 1;
            continue;
        }
        if (t->kind == KQ_TOK_SPM) {
            const char *s = text + fr->off;
            size_t n = fr->len;
            if (t->add_space_prefix && prev_special) {
                free(buf);
                buf = malloc(n + 1);
                if (!buf) {
                    st = kq__fail(KQ_ERR_NO_MEMORY, "tokenize: out of memory");
                    break;
                }
                buf[0] = ' ';
                memcpy(buf + 1, s, n);
                s = buf;
                n++;
            }
            st = kq__spm_tokenize(t, s, n, &ids);
        } else {
            st = kq__bpe_tokenize(t, text + fr->off, fr->len, &ids);
        }
        prev_special = 0;
    }
    free(buf);
    free(frags.v);
    if (st == KQ_OK && add_special && t->add_eos) {
        if (t->eos < 0)
            st = kq__fail(KQ_ERR_FORMAT, "tokenize: the vocabulary adds an EOS token but has none");
        else
            st = kq__ids_push(&ids, t->eos);
    }
    if (st == KQ_OK && !ids.v) {
        ids.v = malloc(sizeof *ids.v);
        if (!ids.v) st = kq__fail(KQ_ERR_NO_MEMORY, "tokenize: out of memory");
    }
    if (st != KQ_OK) {
        free(ids.v);
        return st;
    }
    *out = ids.v;
    *n_out = ids.n;
    return KQ_OK;
}

/* ---------------------------------------------------------------- pieces */

typedef struct piece_out {
    char *buf;
    size_t cap, len;
} piece_out;

static void put(piece_out *o, const void *p, size_t n)
{
    if (o->len < o->cap) memcpy(o->buf + o->len, p, n <= o->cap - o->len ? n : o->cap - o->len);
    o->len += n;
}

/* The byte a byte token stands for: two hex digits after "<0x". */
static unsigned char byte_of(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 3; i < 5 && i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) break;
        v = v * 16 + (unsigned)d;
    }
    return (unsigned char)v;
}

/* A byte-level BPE token's characters mapped back to bytes; a character no
 * byte maps to is written as llama.cpp writes it. */
static void bpe_decode(const char *s, size_t n, piece_out *o)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = kq__utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = kq__bpe_char_byte(cp);
        if (b >= 0) {
            unsigned char c = (unsigned char)b;
            put(o, &c, 1);
        } else {
            unsigned char u[4];
            size_t m = kq__utf8_encode(cp, u);
            char hex[3];
            put(o, "[UNK_BYTE_0x", 12);
            for (size_t j = 0; j < m; j++) {
                snprintf(hex, sizeof hex, "%02x", u[j]);
                put(o, hex, 2);
            }
            put(o, s, n);
            put(o, "]", 1);
        }
        i += k;
    }
}

kq_status kq__token_to_piece(const kq_tokenizer *t, int32_t id, int show_special, char *buf,
                             size_t cap, size_t *len)
{
    if (!t || !len || (!buf && cap))
        return kq__fail(KQ_ERR_INVALID_ARG, "kq__token_to_piece: NULL argument");
    if (id < 0 || id >= t->n_vocab)
        return kq__fail(KQ_ERR_RANGE, "token_to_piece: id %d outside the vocabulary [0, %d)", id,
                        t->n_vocab);
    piece_out o = {buf, cap, 0};
    uint8_t a = t->attr[id];
    const char *s = t->tokens.arena + t->tokens.off[id];
    size_t n = t->tokens.len[id];
    if (a & (KQ_TOK_UNKNOWN | KQ_TOK_CONTROL)) {
        if (show_special) put(&o, s, n);
    } else if (a & KQ_TOK_USER_DEFINED) {
        put(&o, s, n);
    } else if (a & KQ_TOK_NORMAL) {
        if (t->kind == KQ_TOK_BPE) {
            bpe_decode(s, n, &o);
        } else {
            /* U+2581 (E2 96 81) stands for a space. */
            size_t i = 0;
            while (i < n) {
                if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                    put(&o, " ", 1);
                    i += 3;
                } else {
                    put(&o, s + i, 1);
                    i++;
                }
            }
        }
    } else if (a & KQ_TOK_BYTE) {
        unsigned char c = byte_of(s, n);
        put(&o, &c, 1);
    }
    *len = o.len;
    if (o.len > cap)
        return kq__fail(KQ_ERR_RANGE, "token_to_piece: token %d's piece is %zu bytes, room for %zu",
                        id, o.len, cap);
    return KQ_OK;
}
