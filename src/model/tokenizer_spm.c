/* SentencePiece-style tokenization (tokenizer.ggml.model = "llama"), as
 * llama.cpp does it (docs/tokenizers.md): spaces become U+2581, the text is
 * cut into UTF-8 characters, and adjacent symbols whose concatenation is a
 * token are merged, the highest-scoring pair first (the leftmost among equal
 * scores), until no pair is a token. Symbols that are not tokens fall back to
 * one byte token per byte. */
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "model/tokenizer_impl.h"
#include "model/unicode.h"

typedef struct symbol {
    int prev, next; /* -1 at the ends */
    size_t off, n;  /* bytes of the escaped text; n = 0 once merged away */
} symbol;

typedef struct session {
    const kq_tokenizer *t;
    const char *text;
    symbol *sym;
    kq_pairq q;
} session;

static kq_status try_pair(session *s, int l, int r)
{
    if (l < 0 || r < 0) return KQ_OK;
    int32_t id = kq__tok_find(s->t, s->text + s->sym[l].off, s->sym[l].n + s->sym[r].n);
    if (id < 0) return KQ_OK;
    return kq__pairq_push(&s->q, (kq_pair){-(double)s->t->scores[id], l, r, s->sym[l].n,
                                           s->sym[r].n});
}

static kq_status emit(session *s, kq_ids *out)
{
    kq_status st = KQ_OK;
    for (int i = 0; i != -1 && st == KQ_OK; i = s->sym[i].next) {
        const symbol *y = &s->sym[i];
        int32_t id = kq__tok_find(s->t, s->text + y->off, y->n);
        if (id >= 0) {
            st = kq__ids_push(out, id);
            continue;
        }
        for (size_t j = 0; j < y->n && st == KQ_OK; j++) {
            unsigned char c = (unsigned char)s->text[y->off + j];
            id = kq__tok_byte_token(s->t, c);
            if (id < 0)
                st = kq__fail(KQ_ERR_UNSUPPORTED,
                              "tokenize: byte 0x%02X is no token and the vocabulary has no "
                              "byte token <0x%02X> for it",
                              c, c);
            else
                st = kq__ids_push(out, id);
        }
    }
    return st;
}

kq_status kq__spm_tokenize(const kq_tokenizer *t, const char *raw, size_t len, kq_ids *out)
{
    if (len == 0) return KQ_OK;
    size_t spaces = 0, n_esc, sym_bytes;
    for (size_t i = 0; i < len; i++) spaces += raw[i] == ' ';
    if (kq__add_size(len, 2 * spaces, &n_esc) || n_esc > (size_t)INT32_MAX ||
        kq__mul_size(n_esc, sizeof(symbol), &sym_bytes))
        return kq__fail(KQ_ERR_RANGE, "tokenize: text of %zu bytes is too long", len);
    char *text = malloc(n_esc);
    session s = {t, text, malloc(sym_bytes), {0}};
    kq_status st = KQ_OK;
    if (!text || !s.sym) {
        st = kq__fail(KQ_ERR_NO_MEMORY, "tokenize: out of memory for %zu bytes of text", len);
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == ' ') {
            memcpy(text + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            text[k++] = raw[i];
        }
    }

    int n_sym = 0;
    for (size_t off = 0; off < n_esc;) {
        size_t n = kq__utf8_len((unsigned char)text[off]);
        if (n > n_esc - off) n = n_esc - off;
        s.sym[n_sym] = (symbol){n_sym - 1, off + n == n_esc ? -1 : n_sym + 1, off, n};
        off += n;
        n_sym++;
    }
    for (int i = 1; i < n_sym && st == KQ_OK; i++) st = try_pair(&s, i - 1, i);
    while (st == KQ_OK && s.q.n > 0) {
        kq_pair b = kq__pairq_pop(&s.q);
        symbol *l = &s.sym[b.left], *r = &s.sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n != b.nl || r->n != b.nr) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s.sym[r->next].prev = b.left;
        st = try_pair(&s, l->prev, b.left);
        if (st == KQ_OK) st = try_pair(&s, b.left, l->next);
    }
    if (st == KQ_OK) st = emit(&s, out);
done:
    free(text);
    free(s.sym);
    free(s.q.v);
    return st;
}
