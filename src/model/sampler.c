/* Token sampling: greedy, or top-k, then top-p over the softmax at a
 * temperature, then a draw from a seeded generator (splitmix64), so a run
 * with the same seed repeats itself. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "kquant_model.h"

typedef struct kq_cand {
    float logit;
    int32_t id;
} kq_cand;

struct kq_sampler {
    kq_sampler_params p;
    int32_t n_vocab;
    uint64_t state;
    kq_cand *cand;
    float *prob;
};

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

kq_status kq_sampler_new(const kq_sampler_params *p, int32_t n_vocab, kq_sampler **out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_sampler_new: out is NULL");
    *out = NULL;
    if (!p || n_vocab <= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_sampler_new: params NULL or n_vocab = %d", n_vocab);
    if (!isfinite(p->temp) || !isfinite(p->top_p))
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_sampler_new: temp and top_p must be finite");
    kq_sampler *s = calloc(1, sizeof *s);
    if (!s) return kq__fail(KQ_ERR_NO_MEMORY, "kq_sampler_new: no memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->state = p->seed;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    if (!s->cand || !s->prob) {
        kq_sampler_free(s);
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_sampler_new: no memory for %d candidates", n_vocab);
    }
    *out = s;
    return KQ_OK;
}

void kq_sampler_free(kq_sampler *s)
{
    if (!s) return;
    free(s->cand);
    free(s->prob);
    free(s);
}

/* Larger logit first, then lower id, so the order is total. */
static int before(const kq_cand *a, const kq_cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int by_logit(const void *a, const void *b)
{
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* The k best of n candidates to the front, sorted: insertion into a sorted
 * run of k, cheap when k is small against a large vocabulary. */
static void top_k(kq_cand *c, int32_t n, int32_t k)
{
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++) {
        kq_cand x = c[i];
        int32_t j;
        if (kept < k)
            j = kept++;
        else if (before(&x, &c[k - 1]))
            j = k - 1;
        else
            continue;
        while (j > 0 && before(&x, &c[j - 1])) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

kq_status kq_sampler_sample(kq_sampler *s, const float *logits, int32_t *out)
{
    kq__clear_error();
    if (!s || !logits || !out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_sampler_sample: NULL argument");
    const int32_t n = s->n_vocab;
    if (s->p.temp <= 0) {
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
            if (logits[i] > logits[best]) best = i;
        *out = best;
        return KQ_OK;
    }
    for (int32_t i = 0; i < n; i++) s->cand[i] = (kq_cand){logits[i], i};
    int32_t k = s->p.top_k > 0 && s->p.top_k < n ? s->p.top_k : n;
    if (k < n)
        top_k(s->cand, n, k);
    else
        qsort(s->cand, (size_t)n, sizeof *s->cand, by_logit);
    double mx = s->cand[0].logit, sum = 0;
    for (int32_t i = 0; i < k; i++) {
        s->prob[i] = (float)exp(((double)s->cand[i].logit - mx) / s->p.temp);
        sum += s->prob[i];
    }
    int32_t keep = k;
    if (s->p.top_p > 0 && s->p.top_p < 1) {
        double acc = 0;
        for (int32_t i = 0; i < k; i++) {
            acc += s->prob[i] / sum;
            if (acc >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double total = 0;
    for (int32_t i = 0; i < keep; i++) total += s->prob[i];
    double r = (double)(next_u64(&s->state) >> 11) * 0x1p-53 * total;
    for (int32_t i = 0; i < keep; i++) {
        r -= s->prob[i];
        if (r < 0) {
            *out = s->cand[i].id;
            return KQ_OK;
        }
    }
    *out = s->cand[keep - 1].id;
    return KQ_OK;
}
