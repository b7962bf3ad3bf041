/* Mixture-of-experts weights: E stacked [N, K] slabs, multiplied per
 * (token, slot) pair by the expert its id names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "core.h"
#include "error.h"

static void experts_destroy(kq_experts *e)
{
    if (!e) return;
    if (e->impl && e->backend->ops->experts_release) e->backend->ops->experts_release(e->backend, e);
    kq__part_free(&e->w);
    kq__backend_release(e->backend);
    free(e);
}

static kq_status experts_load(kq_backend *b, int type, const void *bytes, size_t nbytes,
                              int64_t n_experts, int64_t n_rows, int64_t n_cols, const char *fn,
                              kq_experts **out)
{
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!b) return kq__fail(KQ_ERR_INVALID_ARG, "%s: backend is NULL", fn);
    if (n_experts <= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_experts = %lld must be > 0", fn,
                        (long long)n_experts);
    if (n_rows <= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_rows = %lld must be > 0", fn, (long long)n_rows);
    int64_t all_rows;
    if (kq__mul_i64(n_experts, n_rows, &all_rows))
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_experts = %lld x n_rows = %lld overflows", fn,
                        (long long)n_experts, (long long)n_rows);
    kq_experts *e = calloc(1, sizeof *e);
    if (!e) return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory", fn);
    e->backend = b;
    kq__backend_retain(b);
    kq_status st = kq__part_init(&e->w, type, bytes, nbytes, all_rows, n_cols, fn);
    if (st) {
        experts_destroy(e);
        return st;
    }
    e->n_experts = n_experts;
    e->n_rows = n_rows;
    e->n_cols = n_cols;
    e->expert_bytes = e->w.row_size * (size_t)n_rows;
    if (b->ops->experts_prepare && (st = b->ops->experts_prepare(b, e)) != KQ_OK) {
        e->impl = NULL;
        experts_destroy(e);
        return st;
    }
    *out = e;
    return KQ_OK;
}

kq_status kq_experts_load(kq_backend *b, int type, const void *bytes, size_t nbytes,
                          int64_t n_experts, int64_t n_rows, int64_t n_cols, kq_experts **out)
{
    kq__clear_error();
    return experts_load(b, type, bytes, nbytes, n_experts, n_rows, n_cols, "kq_experts_load", out);
}

kq_status kq_experts_from_gguf(kq_backend *b, const kq_gguf *g, const char *name, kq_experts **out)
{
    kq__clear_error();
    const char *fn = "kq_experts_from_gguf";
    if (out) *out = NULL;
    if (!g) return kq__fail(KQ_ERR_INVALID_ARG, "%s: gguf is NULL", fn);
    if (!name) return kq__fail(KQ_ERR_INVALID_ARG, "%s: name is NULL", fn);
    kq_tensor_info ti;
    kq_status st = kq_gguf_find_tensor(g, name, &ti);
    if (st) return kq__fail_context(st, "%s: ", fn);
    if (ti.n_dims != 3 && !(ti.n_dims == 4 && ti.ne[3] == 1))
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: tensor '%s' has %d dims; stacked experts need 3 ([K, N, E])", fn,
                        name, ti.n_dims);
    st = experts_load(b, ti.type, ti.data, (size_t)ti.nbytes, ti.ne[2], ti.ne[1], ti.ne[0], fn,
                      out);
    if (st) return kq__fail_context(st, "tensor '%s': ", name);
    return KQ_OK;
}

void kq_experts_free(kq_experts *e) { experts_destroy(e); }
int64_t kq_experts_count(const kq_experts *e) { return e ? e->n_experts : 0; }
int64_t kq_experts_rows(const kq_experts *e) { return e ? e->n_rows : 0; }
int64_t kq_experts_cols(const kq_experts *e) { return e ? e->n_cols : 0; }
/* As kq_linear_is_zero_copy: uploaded weights are not used in place. */
int kq_experts_is_zero_copy(const kq_experts *e)
{
    return e && e->w.mapping != NULL &&
           (e->backend->ops->host_memory || e->backend->spec.host_weights);
}

/* Host ids: each must name an expert; the message says which pair does not. */
static kq_status check_ids(const kq_experts *e, const int32_t *ids, int64_t m, int64_t top_k)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t s = 0; s < top_k; s++) {
            int32_t id = ids[i * top_k + s];
            if (id < 0 || id >= e->n_experts)
                return kq__fail(KQ_ERR_RANGE,
                                "kq_experts_forward: ids[%lld] (token %lld, slot %lld) = %d is "
                                "outside [0, %lld)",
                                (long long)(i * top_k + s), (long long)i, (long long)s, (int)id,
                                (long long)e->n_experts);
        }
    return KQ_OK;
}

static int ranges_overlap(const void *a, size_t na, const void *b, size_t nb)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + nb && b0 < a0 + na;
}

/* Every size the call implies fits in int64 and size_t; returns the extents
 * of x (floats) and y (floats). */
static kq_status check_extents(const kq_experts *e, int64_t ts, int64_t ss, int64_t m,
                               int64_t top_k, int64_t *nx, int64_t *ny)
{
    int64_t pairs, a, c, ext;
    if (kq__mul_i64(m, top_k, &pairs) || kq__mul_i64(pairs, e->n_rows, ny) ||
        kq__mul_i64(m - 1, ts, &a) || kq__mul_i64(top_k - 1, ss, &c) ||
        __builtin_add_overflow(a, c, &ext) || __builtin_add_overflow(ext, e->n_cols, nx) ||
        (uint64_t)*nx > SIZE_MAX / sizeof(float) || (uint64_t)*ny > SIZE_MAX / sizeof(float))
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "kq_experts_forward: m = %lld, top_k = %lld, token_stride = %lld, "
                        "slot_stride = %lld overflow the buffer sizes",
                        (long long)m, (long long)top_k, (long long)ts, (long long)ss);
    return KQ_OK;
}

/* The checks every experts call makes. Sets *skip when m = 0. */
static kq_status check_forward(const char *fn, kq_backend *b, const kq_experts *e,
                               const float *x, int64_t token_stride, int64_t slot_stride,
                               const int32_t *ids, int64_t m, int64_t top_k, const float *y,
                               int *skip)
{
    *skip = 0;
    if (!b) return kq__fail(KQ_ERR_INVALID_ARG, "%s: backend is NULL", fn);
    if (!e) return kq__fail(KQ_ERR_INVALID_ARG, "%s: experts is NULL", fn);
    if (e->backend != b)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: the experts were loaded on backend '%s', not on this '%s' backend",
                        fn, e->backend->name, b->name);
    if (m < 0) return kq__fail(KQ_ERR_INVALID_ARG, "%s: m = %lld must be >= 0", fn, (long long)m);
    if (top_k <= 0 || top_k > e->n_experts)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: top_k = %lld must be in [1, n_experts = %lld]",
                        fn, (long long)top_k, (long long)e->n_experts);
    if (token_stride < 0 || slot_stride < 0)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: token_stride = %lld and slot_stride = %lld must be >= 0", fn,
                        (long long)token_stride, (long long)slot_stride);
    if (m == 0) {
        *skip = 1;
        return KQ_OK;
    }
    if (!x) return kq__fail(KQ_ERR_INVALID_ARG, "%s: x is NULL", fn);
    if (!ids) return kq__fail(KQ_ERR_INVALID_ARG, "%s: ids is NULL", fn);
    if (!y) return kq__fail(KQ_ERR_INVALID_ARG, "%s: y is NULL", fn);
    int64_t nx = 0, ny = 0;
    kq_status st = check_extents(e, token_stride, slot_stride, m, top_k, &nx, &ny);
    if (st) return st;
    if (b->ops->host_memory) {
        if ((st = check_ids(e, ids, m, top_k)) != KQ_OK) return st;
        if (ranges_overlap(x, (size_t)nx * sizeof(float), y, (size_t)ny * sizeof(float)))
            return kq__fail(KQ_ERR_INVALID_ARG, "%s: y overlaps x", fn);
        if (ranges_overlap(ids, (size_t)(m * top_k) * sizeof(int32_t), y,
                           (size_t)ny * sizeof(float)))
            return kq__fail(KQ_ERR_INVALID_ARG, "%s: y overlaps ids", fn);
    }
    return KQ_OK;
}

kq_status kq_experts_forward(kq_backend *b, const kq_experts *e, const float *x,
                             int64_t token_stride, int64_t slot_stride, const int32_t *ids,
                             int64_t m, int64_t top_k, float *y)
{
    kq__clear_error();
    int skip;
    kq_status st = check_forward("kq_experts_forward", b, e, x, token_stride, slot_stride, ids, m,
                                 top_k, y, &skip);
    if (st || skip) return st;
    if (!kq__profile_enabled())
        return b->ops->experts_forward(b, e, x, token_stride, slot_stride, ids, m, top_k, y);

    double t0;
    st = kq__profile_start(b, &t0);
    if (st == KQ_OK)
        st = b->ops->experts_forward(b, e, x, token_stride, slot_stride, ids, m, top_k, y);
    return kq__profile_stop(b, st, t0, "experts", e->w.traits->name, e->n_rows, e->n_cols,
                            e->n_experts, top_k, m);
}

kq_status kq_experts_forward_swiglu(kq_backend *b, const kq_experts *gate, const kq_experts *up,
                                    const float *x, int64_t token_stride, int64_t slot_stride,
                                    const int32_t *ids, int64_t m, int64_t top_k, float *y)
{
    kq__clear_error();
    const char *fn = "kq_experts_forward_swiglu";
    if (!up) return kq__fail(KQ_ERR_INVALID_ARG, "%s: up is NULL", fn);
    if (gate && (gate->n_experts != up->n_experts || gate->n_rows != up->n_rows ||
                 gate->n_cols != up->n_cols))
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: gate is %lld experts of [%lld, %lld] but up is %lld of [%lld, %lld]; "
                        "they must match",
                        fn, (long long)gate->n_experts, (long long)gate->n_rows,
                        (long long)gate->n_cols, (long long)up->n_experts, (long long)up->n_rows,
                        (long long)up->n_cols);
    if (gate && up->backend != gate->backend)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: gate and up were loaded on different backends",
                        fn);
    int skip;
    kq_status st = check_forward(fn, b, gate, x, token_stride, slot_stride, ids, m, top_k, y,
                                 &skip);
    if (st || skip) return st;
    if (!b->ops->experts_swiglu)
        return kq__fail(KQ_ERR_UNSUPPORTED, "%s: backend '%s' has no SwiGLU kernel", fn, b->name);
    if (!kq__profile_enabled())
        return b->ops->experts_swiglu(b, gate, up, x, token_stride, slot_stride, ids, m, top_k, y);

    double t0;
    st = kq__profile_start(b, &t0);
    if (st == KQ_OK)
        st = b->ops->experts_swiglu(b, gate, up, x, token_stride, slot_stride, ids, m, top_k, y);
    char label[64];
    snprintf(label, sizeof label, "%s+%s", gate->w.traits->name, up->w.traits->name);
    return kq__profile_stop(b, st, t0, "experts_swiglu", label, up->n_rows, up->n_cols,
                            up->n_experts, top_k, m);
}
