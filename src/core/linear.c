/* Linear and fused linear objects: load (validate, zero-copy or copy, hand to
 * the backend), forward (validate, profile, dispatch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "core.h"
#include "error.h"

/* More parts than any real fused layer has; bounds the loops and messages. */
#define KQ_MAX_PARTS 64

static void linear_destroy(kq_linear *l)
{
    if (!l) return;
    if (l->impl && l->backend->ops->linear_release) l->backend->ops->linear_release(l->backend, l);
    for (int i = 0; i < l->n_parts; i++) kq__part_free(&l->parts[i]);
    free(l->parts);
    kq__backend_release(l->backend);
    free(l);
}

static kq_status load_parts(kq_backend *b, const kq_part *parts, int n_parts, int64_t n_cols,
                            const char *fn, kq_linear **out)
{
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!b) return kq__fail(KQ_ERR_INVALID_ARG, "%s: backend is NULL", fn);
    if (!parts) return kq__fail(KQ_ERR_INVALID_ARG, "%s: parts is NULL", fn);
    if (n_parts <= 0 || n_parts > KQ_MAX_PARTS)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_parts = %d must be in [1, %d]", fn, n_parts,
                        KQ_MAX_PARTS);
    kq_linear *l = calloc(1, sizeof *l);
    kq_weight_part *ps = calloc((size_t)n_parts, sizeof *ps);
    if (!l || !ps) {
        free(l);
        free(ps);
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory", fn);
    }
    l->backend = b;
    kq__backend_retain(b);
    l->parts = ps;
    l->n_cols = n_cols;
    int64_t rows = 0;
    for (int i = 0; i < n_parts; i++) {
        char what[64];
        if (n_parts == 1)
            snprintf(what, sizeof what, "%s", fn);
        else
            snprintf(what, sizeof what, "%s: part %d", fn, i);
        kq_status st = kq__part_init(&ps[i], parts[i].type, parts[i].bytes, parts[i].nbytes,
                                     parts[i].n_rows, n_cols, what);
        l->n_parts = i + 1; /* so destroy frees what this part may hold */
        if (st == KQ_OK && __builtin_add_overflow(rows, parts[i].n_rows, &rows))
            st = kq__fail(KQ_ERR_INVALID_ARG, "%s: total rows overflow at part %d", fn, i);
        if (st) {
            linear_destroy(l);
            return st;
        }
        ps[i].row_offset = rows - parts[i].n_rows;
    }
    l->n_rows = rows;
    if (b->ops->linear_prepare) {
        kq_status st = b->ops->linear_prepare(b, l);
        if (st) {
            l->impl = NULL;
            linear_destroy(l);
            return st;
        }
    }
    *out = l;
    return KQ_OK;
}

kq_status kq_linear_load(kq_backend *b, int type, const void *bytes, size_t nbytes,
                         int64_t n_rows, int64_t n_cols, kq_linear **out)
{
    kq__clear_error();
    kq_part p = {type, bytes, nbytes, n_rows};
    return load_parts(b, &p, 1, n_cols, "kq_linear_load", out);
}

kq_status kq_linear_load_fused(kq_backend *b, const kq_part *parts, int n_parts, int64_t n_cols,
                               kq_linear **out)
{
    kq__clear_error();
    return load_parts(b, parts, n_parts, n_cols, "kq_linear_load_fused", out);
}

/* A 2-D tensor as one part; higher dims must be 1. `index` is the name's
 * place in a fused list (-1 for a single name), for the message. */
static kq_status tensor_part(const kq_gguf *g, const char *name, int index, const char *fn,
                             kq_part *p, int64_t *n_cols)
{
    if (!name && index < 0) return kq__fail(KQ_ERR_INVALID_ARG, "%s: name is NULL", fn);
    if (!name) return kq__fail(KQ_ERR_INVALID_ARG, "%s: names[%d] is NULL", fn, index);
    kq_tensor_info ti;
    kq_status st = kq_gguf_find_tensor(g, name, &ti);
    if (st) return kq__fail_context(st, "%s: ", fn);
    if (ti.ne[2] != 1 || ti.ne[3] != 1)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: tensor '%s' has %d dims [%lld, %lld, %lld, %lld]; a linear needs 2 "
                        "(3-D expert stacks load with kq_experts_from_gguf)",
                        fn, name, ti.n_dims, (long long)ti.ne[0], (long long)ti.ne[1],
                        (long long)ti.ne[2], (long long)ti.ne[3]);
    p->type = ti.type;
    p->bytes = ti.data;
    p->nbytes = (size_t)ti.nbytes;
    p->n_rows = ti.ne[1];
    *n_cols = ti.ne[0];
    return KQ_OK;
}

kq_status kq_linear_from_gguf(kq_backend *b, const kq_gguf *g, const char *name, kq_linear **out)
{
    return kq_linear_from_gguf_fused(b, g, &name, 1, out);
}

kq_status kq_linear_from_gguf_fused(kq_backend *b, const kq_gguf *g, const char *const *names,
                                    int n_names, kq_linear **out)
{
    kq__clear_error();
    const char *fn = n_names == 1 ? "kq_linear_from_gguf" : "kq_linear_from_gguf_fused";
    if (out) *out = NULL;
    if (!g) return kq__fail(KQ_ERR_INVALID_ARG, "%s: gguf is NULL", fn);
    if (!names) return kq__fail(KQ_ERR_INVALID_ARG, "%s: names is NULL", fn);
    if (n_names <= 0 || n_names > KQ_MAX_PARTS)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_names = %d must be in [1, %d]", fn, n_names,
                        KQ_MAX_PARTS);
    kq_part parts[KQ_MAX_PARTS];
    int64_t n_cols = 0;
    for (int i = 0; i < n_names; i++) {
        int64_t k = 0;
        kq_status st = tensor_part(g, names[i], n_names == 1 ? -1 : i, fn, &parts[i], &k);
        if (st) return st;
        if (i > 0 && k != n_cols)
            return kq__fail(KQ_ERR_INVALID_ARG,
                            "%s: tensor '%s' has rows of %lld, but '%s' has %lld: fused parts "
                            "need the same K",
                            fn, names[i], (long long)k, names[0], (long long)n_cols);
        n_cols = k;
    }
    kq_status st = load_parts(b, parts, n_names, n_cols, fn, out);
    if (st && n_names == 1) return kq__fail_context(st, "tensor '%s': ", names[0]);
    return st;
}

void kq_linear_free(kq_linear *l) { linear_destroy(l); }
int64_t kq_linear_rows(const kq_linear *l) { return l ? l->n_rows : 0; }
int64_t kq_linear_cols(const kq_linear *l) { return l ? l->n_cols : 0; }
int kq_linear_n_parts(const kq_linear *l) { return l ? l->n_parts : 0; }

/* On a device backend the weights are used in place only where they stay in
 * mapped host memory (cuda:host_weights=1); otherwise they were uploaded. */
static int used_in_place(const kq_backend *b)
{
    return b->ops->host_memory || b->spec.host_weights;
}

int kq_linear_is_zero_copy(const kq_linear *l)
{
    if (!l || !used_in_place(l->backend)) return 0;
    for (int i = 0; i < l->n_parts; i++)
        if (!l->parts[i].mapping) return 0;
    return 1;
}

/* Two host ranges of floats overlap: the output would clobber the input. */
static int ranges_overlap(const float *a, size_t na, const float *b, size_t nb)
{
    uintptr_t a0 = (uintptr_t)a, a1 = a0 + na * sizeof(float);
    uintptr_t b0 = (uintptr_t)b, b1 = b0 + nb * sizeof(float);
    return a0 < b1 && b0 < a1;
}

static void type_label(const kq_linear *l, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < l->n_parts && used + 1 < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? "+" : "", l->parts[i].traits->name);
        if (n < 0) break;
        used += (size_t)n;
    }
}

/* The checks every forward call makes: handles, m, pointers, sizes, overlap.
 * y_rows is the width of y (n_rows, or n_rows / 2 for SwiGLU). Sets *skip
 * when m = 0 (nothing to do). */
static kq_status check_forward(const char *fn, kq_backend *b, const kq_linear *l, const float *x,
                               const float *y, int64_t m, int64_t y_rows, int *skip)
{
    *skip = 0;
    if (!b) return kq__fail(KQ_ERR_INVALID_ARG, "%s: backend is NULL", fn);
    if (!l) return kq__fail(KQ_ERR_INVALID_ARG, "%s: linear is NULL", fn);
    if (l->backend != b)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: the linear was loaded on backend '%s', not on this '%s' backend", fn,
                        l->backend->name, b->name);
    if (m < 0) return kq__fail(KQ_ERR_INVALID_ARG, "%s: m = %lld must be >= 0", fn, (long long)m);
    if (m == 0) {
        *skip = 1; /* no tokens: nothing to read or write */
        return KQ_OK;
    }
    if (!x) return kq__fail(KQ_ERR_INVALID_ARG, "%s: x is NULL", fn);
    if (!y) return kq__fail(KQ_ERR_INVALID_ARG, "%s: y is NULL", fn);
    int64_t nx, ny;
    if (kq__mul_i64(m, l->n_cols, &nx) || kq__mul_i64(m, y_rows, &ny) ||
        (uint64_t)nx > SIZE_MAX / sizeof(float) || (uint64_t)ny > SIZE_MAX / sizeof(float))
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: m = %lld makes x or y overflow", fn,
                        (long long)m);
    if (b->ops->host_memory && ranges_overlap(x, (size_t)nx, y, (size_t)ny))
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: y overlaps x", fn);
    return KQ_OK;
}

kq_status kq_linear_forward(kq_backend *b, const kq_linear *l, const float *x, float *y,
                            int64_t m)
{
    kq__clear_error();
    int skip;
    kq_status st = check_forward("kq_linear_forward", b, l, x, y, m, l ? l->n_rows : 0, &skip);
    if (st || skip) return st;
    if (!kq__profile_enabled()) return b->ops->linear_forward(b, l, x, y, m);

    double t0;
    st = kq__profile_start(b, &t0);
    if (st == KQ_OK) st = b->ops->linear_forward(b, l, x, y, m);
    char label[160];
    type_label(l, label, sizeof label);
    return kq__profile_stop(b, st, t0, l->n_parts > 1 ? "fused" : "linear", label, l->n_rows,
                            l->n_cols, 0, 0, m);
}

static const char *glu_name(kq_glu act)
{
    return act == KQ_GLU_SILU ? "swiglu" : "geglu";
}

static kq_status glu_forward(kq_backend *b, const kq_linear *l, const float *x, float *y,
                             int64_t m, kq_glu act, const char *fn)
{
    kq__clear_error();
    if (act != KQ_GLU_SILU && act != KQ_GLU_GELU)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: act = %d is no kq_glu", fn, (int)act);
    int skip;
    kq_status st = check_forward(fn, b, l, x, y, m, l ? l->n_rows / 2 : 0, &skip);
    if (st) return st;
    if (l->n_rows % 2 != 0)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: the linear has %lld rows; a gated feed-forward needs gate and up "
                        "halves of equal rows (an even count)",
                        fn, (long long)l->n_rows);
    if (skip) return KQ_OK;
    if (!b->ops->linear_glu)
        return kq__fail(KQ_ERR_UNSUPPORTED, "%s: backend '%s' has no gated feed-forward kernel", fn,
                        b->name);
    if (!kq__profile_enabled()) return b->ops->linear_glu(b, l, x, y, m, act);

    double t0;
    st = kq__profile_start(b, &t0);
    if (st == KQ_OK) st = b->ops->linear_glu(b, l, x, y, m, act);
    char label[160];
    type_label(l, label, sizeof label);
    return kq__profile_stop(b, st, t0, glu_name(act), label, l->n_rows, l->n_cols, 0, 0, m);
}

kq_status kq_linear_forward_swiglu(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                   int64_t m)
{
    return glu_forward(b, l, x, y, m, KQ_GLU_SILU, "kq_linear_forward_swiglu");
}

kq_status kq_linear_forward_glu(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                int64_t m, kq_glu act)
{
    return glu_forward(b, l, x, y, m, act, "kq_linear_forward_glu");
}
