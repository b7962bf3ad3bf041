/* Random quantized rows for the tools' synthetic weights (kq bench's
 * built-in layers, kq sample --model): a pool of ROW_POOL_ROWS distinct rows
 * per (type, row length), quantized once by kquant's own quantizers, from
 * which tensors of any size are drawn row by row. Quantizing every row of a
 * model would take longer than the run that uses it, and a kernel's speed
 * does not depend on which rows it reads. */
#ifndef KQ_TOOL_ROW_POOL_H
#define KQ_TOOL_ROW_POOL_H

#include <stddef.h>
#include <stdint.h>

#define ROW_POOL_ROWS 512
#define ROW_POOL_MAX 16

typedef struct row_pool {
    int type;
    int64_t k;
    size_t row_size;
    uint8_t *rows; /* ROW_POOL_ROWS quantized rows */
} row_pool;

typedef struct row_pools {
    row_pool p[ROW_POOL_MAX];
    int n;
} row_pools;

/* The pool of (type, k), made on first use; NULL when out of memory, when
 * ROW_POOL_MAX pools exist, or when the type refuses the row length. */
row_pool *row_pool_get(row_pools *ps, int type, int64_t k, uint64_t *rng);
void row_pools_free(row_pools *ps);
/* n_rows rows drawn from the pool (malloc'd; NULL when out of memory or
 * the size overflows). */
uint8_t *row_pool_tensor(const row_pool *rp, int64_t n_rows, uint64_t *rng);

#endif
