/* The public type and conversion calls of kquant.h, over the type table. The
 * status-returning calls clear the thread's message first and name the
 * argument and its value in every failure. The plain queries (name, block
 * geometry, is_supported), which cannot fail, leave the message alone, so a
 * caller may print kq_last_error() next to kq_type_name() in any order. */
#include <math.h>
#include <stdint.h>

#include "core/checked.h"
#include "core/error.h"
#include "formats.h"
#include "kquant.h"

const char *kq_type_name(int type)
{
    const kq_type_traits *t = kq__type_traits(type);
    return t ? t->name : NULL;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int name_equal_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b)) return 0;
    return *a == *b;
}

#define KQ_MAX_TYPE_ID 64 /* above every id the table knows */

kq_status kq_type_from_name(const char *name, kq_type *out)
{
    kq__clear_error();
    if (!name) return kq__fail(KQ_ERR_INVALID_ARG, "kq_type_from_name: name is NULL");
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_type_from_name: out is NULL");
    for (int id = 0; id < KQ_MAX_TYPE_ID; id++) {
        const kq_type_traits *t = kq__type_traits(id);
        if (t && name_equal_nocase(name, t->name)) {
            *out = (kq_type)id;
            return KQ_OK;
        }
    }
    return kq__fail(KQ_ERR_INVALID_ARG,
                    "kq_type_from_name: name = \"%.64s\" is not a ggml type name "
                    "(e.g. \"f32\", \"q4_K\", \"bf16\")",
                    name);
}

int64_t kq_type_block_elems(int type)
{
    const kq_type_traits *t = kq__type_traits(type);
    return t ? t->block_elems : 0;
}

size_t kq_type_block_bytes(int type)
{
    const kq_type_traits *t = kq__type_traits(type);
    return t ? t->block_bytes : 0;
}

int kq_type_is_supported(int type)
{
    const kq_type_traits *t = kq__type_traits(type);
    return t && t->is_weight;
}

/* Type lookup plus row geometry; `fn` names the public call in messages. */
static kq_status lookup_row(const char *fn, int type, int64_t n_cols, const kq_type_traits **tt,
                            size_t *row_size)
{
    const kq_type_traits *t = kq__type_traits(type);
    if (!t) return kq__fail(KQ_ERR_INVALID_ARG, "%s: type = %d is not a known ggml type id", fn, type);
    if (n_cols <= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_cols = %lld must be > 0", fn, (long long)n_cols);
    const int64_t ne[4] = {n_cols, 1, 1, 1};
    uint64_t bytes = 0, total;
    kq_size_check sc = kq__tensor_bytes(t, ne, &bytes, &total);
    if (sc == KQ_SIZE_PARTIAL_BLOCK)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_cols = %lld is not a multiple of the %s block (%lld)",
                        fn, (long long)n_cols, t->name, (long long)t->block_elems);
    if (sc == KQ_SIZE_OVERFLOW || bytes > SIZE_MAX)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_cols = %lld: a row of %s overflows size_t", fn,
                        (long long)n_cols, t->name);
    *tt = t;
    *row_size = (size_t)bytes;
    return KQ_OK;
}

kq_status kq_row_size(int type, int64_t n_cols, size_t *out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_row_size: out is NULL");
    const kq_type_traits *t = NULL;
    size_t row = 0;
    kq_status s = lookup_row("kq_row_size", type, n_cols, &t, &row);
    if (s != KQ_OK) return s;
    *out = row;
    return KQ_OK;
}

/* Checks shared by kq_quantize and kq_dequantize: everything but the pointers
 * and the converter. On success *row is the row size in bytes. */
static kq_status check_matrix(const char *fn, const kq_type_traits *t, int64_t n_rows,
                              int64_t n_cols, const char *bytes_name, size_t nbytes, size_t row)
{
    if (n_rows <= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: n_rows = %lld must be > 0", fn, (long long)n_rows);
    size_t total, floats;
    if (kq__mul_size((size_t)n_rows, row, &total))
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: n_rows = %lld times the row size %zu (%s, n_cols = %lld) overflows size_t",
                        fn, (long long)n_rows, row, t->name, (long long)n_cols);
    if (kq__mul_size((size_t)n_rows, (size_t)n_cols, &floats) ||
        kq__mul_size(floats, sizeof(float), &floats))
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: n_rows = %lld x n_cols = %lld floats overflow size_t", fn,
                        (long long)n_rows, (long long)n_cols);
    if (nbytes != total)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: %s = %zu, expected n_rows * row_size = %lld * %zu = %zu (%s, n_cols = %lld)",
                        fn, bytes_name, nbytes, (long long)n_rows, row, total, t->name,
                        (long long)n_cols);
    return KQ_OK;
}

/* A block format has no code for inf or NaN: one in a block would turn its
 * scale (and so every other weight of the block) into garbage while the
 * call reported success (issue 17). The first offender is named by row and
 * column; the float formats (block of 1) carry them through instead. */
static kq_status check_finite(const char *fn, const kq_type_traits *t, const float *src,
                              int64_t n_rows, int64_t n_cols)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = src + (size_t)r * (size_t)n_cols;
        for (int64_t c = 0; c < n_cols; c++) {
            if (isfinite(x[c])) continue;
            return kq__fail(KQ_ERR_INVALID_ARG,
                            "%s: src at row %lld, column %lld is %s: %s cannot encode a "
                            "non-finite weight",
                            fn, (long long)r, (long long)c,
                            isnan(x[c]) ? "NaN" : x[c] > 0 ? "+inf" : "-inf", t->name);
        }
    }
    return KQ_OK;
}

kq_status kq_quantize(int type, const float *src, int64_t n_rows, int64_t n_cols, void *dst,
                      size_t dst_bytes)
{
    static const char fn[] = "kq_quantize";
    kq__clear_error();
    const kq_type_traits *t = NULL;
    size_t row = 0;
    kq_status s = lookup_row(fn, type, n_cols, &t, &row);
    if (s != KQ_OK) return s;
    if (!t->from_float)
        return kq__fail(KQ_ERR_UNSUPPORTED, "%s: type = %d (%s) has no quantizer in kquant", fn, type,
                        t->name);
    if (!src) return kq__fail(KQ_ERR_INVALID_ARG, "%s: src is NULL", fn);
    if (!dst) return kq__fail(KQ_ERR_INVALID_ARG, "%s: dst is NULL", fn);
    s = check_matrix(fn, t, n_rows, n_cols, "dst_bytes", dst_bytes, row);
    if (s != KQ_OK) return s;

    if (t->block_elems > 1) { /* a block format: no encoding of inf or NaN */
        s = check_finite(fn, t, src, n_rows, n_cols);
        if (s != KQ_OK) return s;
    }

    unsigned char *out = dst;
    for (int64_t r = 0; r < n_rows; r++)
        t->from_float(src + (size_t)r * (size_t)n_cols, out + (size_t)r * row, n_cols);
    return KQ_OK;
}

kq_status kq_dequantize(int type, const void *src, size_t src_bytes, int64_t n_rows,
                        int64_t n_cols, float *dst)
{
    static const char fn[] = "kq_dequantize";
    kq__clear_error();
    const kq_type_traits *t = NULL;
    size_t row = 0;
    kq_status s = lookup_row(fn, type, n_cols, &t, &row);
    if (s != KQ_OK) return s;
    if (!t->to_float)
        return kq__fail(KQ_ERR_UNSUPPORTED, "%s: type = %d (%s) cannot be decoded by kquant", fn, type,
                        t->name);
    if (!src) return kq__fail(KQ_ERR_INVALID_ARG, "%s: src is NULL", fn);
    if (!dst) return kq__fail(KQ_ERR_INVALID_ARG, "%s: dst is NULL", fn);
    s = check_matrix(fn, t, n_rows, n_cols, "src_bytes", src_bytes, row);
    if (s != KQ_OK) return s;

    const unsigned char *in = src;
    for (int64_t r = 0; r < n_rows; r++)
        t->to_float(in + (size_t)r * row, dst + (size_t)r * (size_t)n_cols, n_cols);
    return KQ_OK;
}
