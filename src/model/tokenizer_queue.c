/* The merge queue shared by the SPM and BPE mergers: a binary heap. */
#include <stdlib.h>

#include "core/checked.h"
#include "core/error.h"
#include "model/tokenizer_impl.h"

static int before(const kq_pair *a, const kq_pair *b)
{
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

kq_status kq__pairq_push(kq_pairq *q, kq_pair p)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64, bytes;
        if (kq__mul_size(cap, sizeof *q->v, &bytes))
            return kq__fail(KQ_ERR_NO_MEMORY, "tokenize: merge queue too long");
        kq_pair *v = realloc(q->v, bytes);
        if (!v) return kq__fail(KQ_ERR_NO_MEMORY, "tokenize: out of memory for the merge queue");
        q->v = v;
        q->cap = cap;
    }
    size_t i = q->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!before(&p, &q->v[up])) break;
        q->v[i] = q->v[up];
        i = up;
    }
    q->v[i] = p;
    return KQ_OK;
}

kq_pair kq__pairq_pop(kq_pairq *q)
{
    kq_pair top = q->v[0], last = q->v[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n) break;
        if (c + 1 < q->n && before(&q->v[c + 1], &q->v[c])) c++;
        if (!before(&q->v[c], &last)) break;
        q->v[i] = q->v[c];
        i = c;
    }
    if (q->n > 0) q->v[i] = last;
    return top;
}
