/* row_pool.h: random quantized rows, drawn into tensors. */
#include "row_pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kquant.h"

row_pool *row_pool_get(row_pools *ps, int type, int64_t k, uint64_t *rng)
{
    for (int i = 0; i < ps->n; i++)
        if (ps->p[i].type == type && ps->p[i].k == k) return &ps->p[i];
    if (ps->n == ROW_POOL_MAX) return NULL;
    row_pool *rp = &ps->p[ps->n];
    rp->type = type, rp->k = k;
    if (kq_row_size(type, k, &rp->row_size)) return NULL;
    float *src = malloc((size_t)ROW_POOL_ROWS * (size_t)k * sizeof *src);
    rp->rows = malloc((size_t)ROW_POOL_ROWS * rp->row_size);
    if (!src || !rp->rows) {
        free(src);
        free(rp->rows);
        return NULL;
    }
    /* Weights of a trained layer sit near N(0, 1/K); a few rows get a larger
     * scale so that the blocks' scales differ as they do in real files. */
    for (int64_t r = 0; r < ROW_POOL_ROWS; r++) {
        float scale = (float)(1.0 / sqrt((double)k)) * (r % 7 == 0 ? 4.0f : 1.0f);
        for (int64_t j = 0; j < k; j++) src[r * k + j] = bench_normal(rng) * scale;
    }
    kq_status st = kq_quantize(type, src, ROW_POOL_ROWS, k, rp->rows,
                               (size_t)ROW_POOL_ROWS * rp->row_size);
    free(src);
    if (st) {
        free(rp->rows);
        return NULL;
    }
    ps->n++;
    return rp;
}

void row_pools_free(row_pools *ps)
{
    for (int i = 0; i < ps->n; i++) free(ps->p[i].rows);
    ps->n = 0;
}

uint8_t *row_pool_tensor(const row_pool *rp, int64_t n_rows, uint64_t *rng)
{
    size_t bytes;
    if (n_rows < 0 || __builtin_mul_overflow((size_t)n_rows, rp->row_size, &bytes)) return NULL;
    uint8_t *t = malloc(bytes ? bytes : 1);
    if (!t) return NULL;
    for (int64_t r = 0; r < n_rows; r++)
        memcpy(t + (size_t)r * rp->row_size,
               rp->rows + (size_t)(bench_rand(rng) % ROW_POOL_ROWS) * rp->row_size, rp->row_size);
    return t;
}
