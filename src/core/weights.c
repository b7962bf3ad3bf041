/* Weight storage shared by linears and experts: validate a run of rows, then
 * use it in place from a file mapping, or copy it into owned memory. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error.h"

/* Owned copies are 64-byte aligned so SIMD kernels may use aligned loads
 * where the row size allows. */
#define KQ_WEIGHT_ALIGN 64

kq_status kq__part_init(kq_weight_part *p, int type, const void *bytes, size_t nbytes,
                        int64_t n_rows, int64_t n_cols, const char *what)
{
    memset(p, 0, sizeof *p);
    const kq_type_traits *tt = kq__type_traits(type);
    if (!tt)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: type = %d is not a known ggml type id", what,
                        type);
    if (!tt->is_weight || !tt->to_float)
        return kq__fail(KQ_ERR_UNSUPPORTED,
                        "%s: type %s is not supported for weights "
                        "(supported: f32, f16, bf16, q4_0, q8_0, q4_K, q5_K, q6_K)",
                        what, tt->name);
    if (n_rows <= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_rows = %lld must be > 0", what,
                        (long long)n_rows);
    if (n_cols <= 0 || n_cols % tt->block_elems != 0)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: n_cols = %lld must be a positive multiple of the %s block (%lld)",
                        what, (long long)n_cols, tt->name, (long long)tt->block_elems);
    uint64_t row_size, total;
    const int64_t ne[4] = {n_cols, n_rows, 1, 1};
    if (kq__tensor_bytes(tt, ne, &row_size, &total) != KQ_SIZE_OK || total > SIZE_MAX)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: %lld rows x %lld cols of %s overflow size_t",
                        what, (long long)n_rows, (long long)n_cols, tt->name);
    if (!bytes) return kq__fail(KQ_ERR_INVALID_ARG, "%s: bytes is NULL", what);
    if (nbytes != total)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: nbytes = %zu, expected %lld rows x %llu bytes (%s, %lld cols) = %llu",
                        what, nbytes, (long long)n_rows, (unsigned long long)row_size, tt->name,
                        (long long)n_cols, (unsigned long long)total);
    p->type = type;
    p->traits = tt;
    p->nbytes = nbytes;
    p->row_size = (size_t)row_size;
    p->n_rows = n_rows;
    p->mapping = kq__mapping_find(bytes, nbytes);
    if (p->mapping) {
        p->data = bytes;
        return KQ_OK;
    }
    size_t alloc = (nbytes + KQ_WEIGHT_ALIGN - 1) / KQ_WEIGHT_ALIGN * KQ_WEIGHT_ALIGN;
    if (posix_memalign(&p->owned, KQ_WEIGHT_ALIGN, alloc) != 0) {
        p->owned = NULL;
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes for a copy of the weights",
                        what, nbytes);
    }
    memcpy(p->owned, bytes, nbytes);
    p->data = p->owned;
    return KQ_OK;
}

void kq__part_free(kq_weight_part *p)
{
    kq__mapping_release(p->mapping);
    free(p->owned);
    p->mapping = NULL;
    p->owned = NULL;
}
