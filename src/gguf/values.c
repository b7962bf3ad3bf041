/* Metadata value access: type names, scalar and array getters with checked
 * conversions, and the name index shared by the reader and the writer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "gguf_internal.h"

/* ---------------------------------------------------------------- types */

static const char *const g_vtype_names[] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const unsigned char g_vtype_sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

int kq__gguf_vtype_known(uint32_t vtype) { return vtype <= KQ_GGUF_F64; }

size_t kq__gguf_vtype_size(uint32_t vtype)
{
    return kq__gguf_vtype_known(vtype) ? g_vtype_sizes[vtype] : 0;
}

const char *kq__gguf_vtype_str(uint32_t vtype)
{
    return kq__gguf_vtype_known(vtype) ? g_vtype_names[vtype] : "unknown";
}

const char *kq_gguf_vtype_name(int vtype)
{
    return vtype >= 0 && kq__gguf_vtype_known((uint32_t)vtype) ? g_vtype_names[vtype] : NULL;
}

/* ---------------------------------------------------------------- scalars */

typedef enum { NUM_SIGNED, NUM_UNSIGNED, NUM_FLOAT, NUM_BOOL, NUM_NONE } num_kind;

typedef struct num {
    num_kind kind;
    int64_t i;
    uint64_t u;
    double f;
} num;

/* Decodes one little-endian element of type t at q (unaligned). */
static num load_num(uint32_t t, const uint8_t *q)
{
    num r = {NUM_NONE, 0, 0, 0.0};
    switch (t) {
    case KQ_GGUF_U8: r.kind = NUM_UNSIGNED; r.u = q[0]; break;
    case KQ_GGUF_I8: r.kind = NUM_SIGNED; r.i = (int8_t)q[0]; break;
    case KQ_GGUF_U16: { uint16_t x; memcpy(&x, q, 2); r.kind = NUM_UNSIGNED; r.u = x; break; }
    case KQ_GGUF_I16: { int16_t x; memcpy(&x, q, 2); r.kind = NUM_SIGNED; r.i = x; break; }
    case KQ_GGUF_U32: { uint32_t x; memcpy(&x, q, 4); r.kind = NUM_UNSIGNED; r.u = x; break; }
    case KQ_GGUF_I32: { int32_t x; memcpy(&x, q, 4); r.kind = NUM_SIGNED; r.i = x; break; }
    case KQ_GGUF_U64: { uint64_t x; memcpy(&x, q, 8); r.kind = NUM_UNSIGNED; r.u = x; break; }
    case KQ_GGUF_I64: { int64_t x; memcpy(&x, q, 8); r.kind = NUM_SIGNED; r.i = x; break; }
    case KQ_GGUF_F32: { float x; memcpy(&x, q, 4); r.kind = NUM_FLOAT; r.f = x; break; }
    case KQ_GGUF_F64: { double x; memcpy(&x, q, 8); r.kind = NUM_FLOAT; r.f = x; break; }
    case KQ_GGUF_BOOL: r.kind = NUM_BOOL; r.u = q[0] != 0; break;
    default: break;
    }
    return r;
}

/* "key 'general.x'" or "key 'general.x' element 3". */
static const char *where(char *buf, size_t n, const kq_gguf_value *v, int64_t idx)
{
    const char *key = v->key ? v->key : "(unnamed)";
    if (idx < 0)
        snprintf(buf, n, "key '%s'", key);
    else
        snprintf(buf, n, "key '%s' element %lld", key, (long long)idx);
    return buf;
}

static kq_status get_int_at(const kq_gguf_value *v, uint32_t t, const uint8_t *q, int64_t idx,
                            int64_t *out)
{
    char w[320];
    num x = load_num(t, q);
    if (x.kind == NUM_SIGNED) {
        *out = x.i;
        return KQ_OK;
    }
    if (x.kind == NUM_UNSIGNED) {
        if (x.u > (uint64_t)INT64_MAX)
            return kq__fail(KQ_ERR_RANGE, "%s: %s value %llu does not fit in int64",
                            where(w, sizeof w, v, idx), kq__gguf_vtype_str(t),
                            (unsigned long long)x.u);
        *out = (int64_t)x.u;
        return KQ_OK;
    }
    return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not an integer",
                    where(w, sizeof w, v, idx), kq__gguf_vtype_str(t));
}

static kq_status get_uint_at(const kq_gguf_value *v, uint32_t t, const uint8_t *q, int64_t idx,
                             uint64_t *out)
{
    char w[320];
    num x = load_num(t, q);
    if (x.kind == NUM_UNSIGNED) {
        *out = x.u;
        return KQ_OK;
    }
    if (x.kind == NUM_SIGNED) {
        if (x.i < 0)
            return kq__fail(KQ_ERR_RANGE, "%s: %s value %lld is negative, not a uint64",
                            where(w, sizeof w, v, idx), kq__gguf_vtype_str(t), (long long)x.i);
        *out = (uint64_t)x.i;
        return KQ_OK;
    }
    return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not an integer",
                    where(w, sizeof w, v, idx), kq__gguf_vtype_str(t));
}

static kq_status get_float_at(const kq_gguf_value *v, uint32_t t, const uint8_t *q, int64_t idx,
                              double *out)
{
    char w[320];
    num x = load_num(t, q);
    if (x.kind == NUM_FLOAT) {
        *out = x.f;
        return KQ_OK;
    }
    return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not f32 or f64",
                    where(w, sizeof w, v, idx), kq__gguf_vtype_str(t));
}

static kq_status get_bool_at(const kq_gguf_value *v, uint32_t t, const uint8_t *q, int64_t idx,
                             int *out)
{
    char w[320];
    num x = load_num(t, q);
    if (x.kind == NUM_BOOL) {
        *out = (int)x.u;
        return KQ_OK;
    }
    return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not bool", where(w, sizeof w, v, idx),
                    kq__gguf_vtype_str(t));
}

/* The message names the output by its name in kquant.h ("out", "s"). */
#define CHECK_ARGS(v, out)                                                                    \
    do {                                                                                      \
        kq__clear_error();                                                                    \
        if (!(v)) return kq__fail(KQ_ERR_INVALID_ARG, "%s: value is NULL", __func__);         \
        if (!(out)) return kq__fail(KQ_ERR_INVALID_ARG, "%s: %s is NULL", __func__, #out);    \
    } while (0)

kq_gguf_vtype kq_gguf_value_type(const kq_gguf_value *v)
{
    return v ? (kq_gguf_vtype)v->type : (kq_gguf_vtype)-1;
}

kq_status kq_gguf_value_array(const kq_gguf_value *v, kq_gguf_vtype *elem_type, int64_t *count)
{
    char w[320];
    kq__clear_error();
    if (!v) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_value_array: value is NULL");
    if (v->type != KQ_GGUF_ARRAY)
        return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not array", where(w, sizeof w, v, -1),
                        kq__gguf_vtype_str(v->type));
    if (elem_type) *elem_type = (kq_gguf_vtype)v->elem_type;
    if (count) *count = v->count;
    return KQ_OK;
}

kq_status kq_gguf_value_int(const kq_gguf_value *v, int64_t *out)
{
    CHECK_ARGS(v, out);
    return get_int_at(v, v->type, v->p, -1, out);
}

kq_status kq_gguf_value_uint(const kq_gguf_value *v, uint64_t *out)
{
    CHECK_ARGS(v, out);
    return get_uint_at(v, v->type, v->p, -1, out);
}

kq_status kq_gguf_value_float(const kq_gguf_value *v, double *out)
{
    CHECK_ARGS(v, out);
    return get_float_at(v, v->type, v->p, -1, out);
}

kq_status kq_gguf_value_bool(const kq_gguf_value *v, int *out)
{
    CHECK_ARGS(v, out);
    return get_bool_at(v, v->type, v->p, -1, out);
}

kq_status kq_gguf_value_string(const kq_gguf_value *v, const char **s, size_t *len)
{
    char w[320];
    CHECK_ARGS(v, s);
    if (v->type != KQ_GGUF_STRING)
        return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not string",
                        where(w, sizeof w, v, -1), kq__gguf_vtype_str(v->type));
    *s = (const char *)v->p;
    if (len) *len = (size_t)v->len;
    return KQ_OK;
}

/* ---------------------------------------------------------------- arrays */

/* Checks v is an array and i an index of it. */
static kq_status check_index(const kq_gguf_value *v, int64_t i)
{
    char w[320];
    if (v->type != KQ_GGUF_ARRAY)
        return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not array", where(w, sizeof w, v, -1),
                        kq__gguf_vtype_str(v->type));
    if (i < 0 || i >= v->count)
        return kq__fail(KQ_ERR_RANGE, "%s: index %lld is out of range (the array has %lld elements)",
                        where(w, sizeof w, v, -1), (long long)i, (long long)v->count);
    return KQ_OK;
}

/* Element i of a primitive array; NULL (and elements typed string/array go
 * to the getters' type error) otherwise. */
static const uint8_t *elem_ptr(const kq_gguf_value *v, int64_t i)
{
    size_t sz = kq__gguf_vtype_size(v->elem_type);
    static const uint8_t zero[8];
    return sz ? v->p + (size_t)i * sz : zero;
}

kq_status kq_gguf_array_int(const kq_gguf_value *v, int64_t i, int64_t *out)
{
    CHECK_ARGS(v, out);
    kq_status s = check_index(v, i);
    if (s != KQ_OK) return s;
    return get_int_at(v, v->elem_type, elem_ptr(v, i), i, out);
}

kq_status kq_gguf_array_uint(const kq_gguf_value *v, int64_t i, uint64_t *out)
{
    CHECK_ARGS(v, out);
    kq_status s = check_index(v, i);
    if (s != KQ_OK) return s;
    return get_uint_at(v, v->elem_type, elem_ptr(v, i), i, out);
}

kq_status kq_gguf_array_float(const kq_gguf_value *v, int64_t i, double *out)
{
    CHECK_ARGS(v, out);
    kq_status s = check_index(v, i);
    if (s != KQ_OK) return s;
    return get_float_at(v, v->elem_type, elem_ptr(v, i), i, out);
}

kq_status kq_gguf_array_bool(const kq_gguf_value *v, int64_t i, int *out)
{
    CHECK_ARGS(v, out);
    kq_status s = check_index(v, i);
    if (s != KQ_OK) return s;
    return get_bool_at(v, v->elem_type, elem_ptr(v, i), i, out);
}

kq_status kq_gguf_array_string(const kq_gguf_value *v, int64_t i, const char **s, size_t *len)
{
    char w[320];
    CHECK_ARGS(v, s);
    kq_status st = check_index(v, i);
    if (st != KQ_OK) return st;
    if (v->elem_type != KQ_GGUF_STRING)
        return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not string",
                        where(w, sizeof w, v, i), kq__gguf_vtype_str(v->elem_type));
    *s = v->strs[i].p;
    if (len) *len = (size_t)v->strs[i].len;
    return KQ_OK;
}

kq_status kq_gguf_array_item(const kq_gguf_value *v, int64_t i, const kq_gguf_value **out)
{
    char w[320];
    CHECK_ARGS(v, out);
    kq_status s = check_index(v, i);
    if (s != KQ_OK) return s;
    if (v->elem_type != KQ_GGUF_ARRAY)
        return kq__fail(KQ_ERR_TYPE, "%s: value type is %s, not array", where(w, sizeof w, v, i),
                        kq__gguf_vtype_str(v->elem_type));
    *out = &v->items[i];
    return KQ_OK;
}

/* ---------------------------------------------------------------- name index */

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static int index_grow(kq__name_index *ix)
{
    size_t cap = ix->cap ? ix->cap * 2 : 16;
    if (cap < ix->cap || cap > SIZE_MAX / sizeof(kq__name_slot)) return -1;
    kq__name_slot *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i].idx = -1;
    for (size_t i = 0; i < ix->cap; i++) {
        if (ix->slots[i].idx < 0) continue;
        size_t j = (size_t)ix->slots[i].hash & (cap - 1);
        while (slots[j].idx >= 0) j = (j + 1) & (cap - 1);
        slots[j] = ix->slots[i];
    }
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    return 0;
}

int64_t kq__name_insert(kq__name_index *ix, const char *name, size_t len, int64_t idx)
{
    if ((ix->n + 1) * 2 > ix->cap && index_grow(ix) != 0) return -2;
    uint64_t h = hash_name(name, len);
    size_t j = (size_t)h & (ix->cap - 1);
    while (ix->slots[j].idx >= 0) {
        const kq__name_slot *s = &ix->slots[j];
        if (s->hash == h && s->len == len && memcmp(s->name, name, len) == 0) return s->idx;
        j = (j + 1) & (ix->cap - 1);
    }
    ix->slots[j].hash = h;
    ix->slots[j].name = name;
    ix->slots[j].len = len;
    ix->slots[j].idx = idx;
    ix->n++;
    return -1;
}

int64_t kq__name_find(const kq__name_index *ix, const char *name, size_t len)
{
    if (!ix->cap) return -1;
    uint64_t h = hash_name(name, len);
    size_t j = (size_t)h & (ix->cap - 1);
    while (ix->slots[j].idx >= 0) {
        const kq__name_slot *s = &ix->slots[j];
        if (s->hash == h && s->len == len && memcmp(s->name, name, len) == 0) return s->idx;
        j = (j + 1) & (ix->cap - 1);
    }
    return -1;
}

void kq__name_index_free(kq__name_index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->cap = ix->n = 0;
}
