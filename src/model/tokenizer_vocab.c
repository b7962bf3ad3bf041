/* The vocabulary's lookups: token text to id, merge pair to rank, byte to
 * its fallback token, all through one open-addressing string table. */
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "model/tokenizer_impl.h"

uint64_t kq__hash_more(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

kq_status kq__ids_push(kq_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        size_t bytes;
        if (cap <= ids->cap || kq__mul_size(cap, sizeof *ids->v, &bytes))
            return kq__fail(KQ_ERR_NO_MEMORY, "tokenize: too many tokens");
        int32_t *v = realloc(ids->v, bytes);
        if (!v) return kq__fail(KQ_ERR_NO_MEMORY, "tokenize: out of memory for %zu ids", cap);
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return KQ_OK;
}

void kq__strmap_free(kq_strmap *m)
{
    free(m->arena);
    free(m->off);
    free(m->len);
    free(m->val);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

kq_status kq__strmap_init(kq_strmap *m, size_t n, size_t bytes, const char *what)
{
    memset(m, 0, sizeof *m);
    size_t slots = 16;
    if (n > UINT32_MAX - 1) return kq__fail(KQ_ERR_RANGE, "%s: %zu entries", what, n);
    while (slots < n * 2) {
        if (slots > SIZE_MAX / 4) return kq__fail(KQ_ERR_RANGE, "%s: %zu entries", what, n);
        slots *= 2;
    }
    m->arena = malloc(bytes ? bytes : 1);
    m->off = malloc((n ? n : 1) * sizeof *m->off);
    m->len = malloc((n ? n : 1) * sizeof *m->len);
    m->val = malloc((n ? n : 1) * sizeof *m->val);
    m->slots = calloc(slots, sizeof *m->slots);
    if (!m->arena || !m->off || !m->len || !m->val || !m->slots) {
        kq__strmap_free(m);
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory for %zu entries (%zu bytes)", what,
                        n, bytes);
    }
    m->arena_cap = bytes;
    m->cap = n;
    m->mask = slots - 1;
    return KQ_OK;
}

/* Slot of the entry equal to s (*found = 1), or the empty slot where it goes. */
static size_t strmap_slot(const kq_strmap *m, uint64_t h, const char *s, size_t n, int *found)
{
    size_t i = (size_t)h & m->mask;
    for (;;) {
        uint32_t e = m->slots[i];
        if (e == 0) {
            *found = 0;
            return i;
        }
        e--;
        if (m->len[e] == n && memcmp(m->arena + m->off[e], s, n) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & m->mask;
    }
}

void kq__strmap_add(kq_strmap *m, const char *s, size_t n, int32_t val, int *dup)
{
    int found;
    size_t slot = strmap_slot(m, kq__hash_more(KQ__HASH_SEED, s, n), s, n, &found);
    *dup = found;
    if (found) return;
    /* Loading sized the table for every string it adds. */
    if (m->n >= m->cap || n > m->arena_cap - m->arena_len) __builtin_trap();
    size_t e = m->n++;
    memcpy(m->arena + m->arena_len, s, n);
    m->off[e] = m->arena_len;
    m->len[e] = (uint32_t)n;
    m->val[e] = val;
    m->arena_len += n;
    m->slots[slot] = (uint32_t)(e + 1);
}

int32_t kq__tok_find(const kq_tokenizer *t, const char *s, size_t n)
{
    int found;
    size_t slot = strmap_slot(&t->tokens, kq__hash_more(KQ__HASH_SEED, s, n), s, n, &found);
    return found ? t->tokens.val[t->tokens.slots[slot] - 1] : -1;
}

int32_t kq__tok_merge_rank(const kq_tokenizer *t, const char *l, size_t nl, const char *r,
                           size_t nr)
{
    const kq_strmap *m = &t->merges;
    if (!m->slots) return -1;
    uint64_t h = kq__hash_more(KQ__HASH_SEED, l, nl);
    h = kq__hash_more(h, " ", 1);
    h = kq__hash_more(h, r, nr);
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        uint32_t e = m->slots[i];
        if (e == 0) return -1;
        e--;
        const char *p = m->arena + m->off[e];
        if (m->len[e] == nl + 1 + nr && t->merge_split[e] == nl && memcmp(p, l, nl) == 0 &&
            p[nl] == ' ' && memcmp(p + nl + 1, r, nr) == 0)
            return m->val[e];
    }
}

int32_t kq__tok_byte_token(const kq_tokenizer *t, unsigned char b)
{
    static const char hex[] = "0123456789ABCDEF";
    char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    int32_t id = kq__tok_find(t, name, 6);
    return id >= 0 ? id : kq__tok_find(t, (const char *)&b, 1);
}

