/* GGUF reader: maps the file, parses and validates every count, length and
 * offset (all untrusted), and answers queries on keys and tensors. Nothing is
 * allocated for a count before the bytes left in the file show it could be
 * true. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "formats/formats.h"
#include "gguf_internal.h"
#include "mapping.h"

#define GGUF_MAGIC_BYTES "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32u

/* The fewest bytes a key/value pair or a tensor info can take: key length
 * (8) + value type (4) + a 1-byte value; name length (8) + n_dims (4) + one
 * dimension (8) + type (4) + offset (8). */
#define MIN_KV_BYTES 13u
#define MIN_TENSOR_INFO_BYTES 32u
#define MIN_STRING_BYTES 8u
#define MIN_ARRAY_BYTES 12u

typedef struct kq__kv {
    char *key;
    size_t key_len;
    uint64_t offset; /* file offset of the pair */
    kq_gguf_value val;
} kq__kv;

typedef struct kq__tensor {
    char *name;
    size_t name_len;
    int type;
    int n_dims;
    int64_t ne[4];
    uint64_t offset;     /* relative to the data section */
    uint64_t nbytes;
    uint64_t info_offset; /* file offset of the tensor info */
    uint64_t offset_pos;  /* file offset of its offset field */
} kq__tensor;

struct kq_gguf {
    char *path;
    kq_mapping *map;
    const uint8_t *base;
    uint64_t size;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    kq__kv *kvs;
    int64_t n_kv, cap_kv;
    kq__tensor *tensors;
    int64_t n_tensors, cap_tensors;
    kq__name_index kv_ix, t_ix;
};

typedef struct parser {
    kq_gguf *g;
    uint64_t pos;
    char where[320]; /* what is being parsed, for messages */
} parser;

/* ---------------------------------------------------------------- errors */

static kq_status perr(parser *p, kq_status s, uint64_t off, const char *fmt, ...) KQ_PRINTF(4, 5);

static kq_status perr(parser *p, kq_status s, uint64_t off, const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kq__fail(s, "GGUF '%s' at byte offset %llu (%s): %s", p->g->path,
                    (unsigned long long)off, p->where, msg);
}

static void set_where(parser *p, const char *fmt, ...) KQ_PRINTF(2, 3);

static void set_where(parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->where, sizeof p->where, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- primitives */

static uint64_t left(const parser *p) { return p->g->size - p->pos; }

static kq_status need(parser *p, uint64_t n, const char *what)
{
    if (n > left(p))
        return perr(p, KQ_ERR_FORMAT,
                    p->pos, "file truncated: %s needs %llu bytes, only %llu left (file size %llu)",
                    what, (unsigned long long)n, (unsigned long long)left(p),
                    (unsigned long long)p->g->size);
    return KQ_OK;
}

static kq_status rd_u32(parser *p, uint32_t *v, const char *what)
{
    kq_status s = need(p, 4, what);
    if (s != KQ_OK) return s;
    memcpy(v, p->g->base + p->pos, 4);
    p->pos += 4;
    return KQ_OK;
}

static kq_status rd_u64(parser *p, uint64_t *v, const char *what)
{
    kq_status s = need(p, 8, what);
    if (s != KQ_OK) return s;
    memcpy(v, p->g->base + p->pos, 8);
    p->pos += 8;
    return KQ_OK;
}

/* A string: u64 length + bytes, pointing into the mapping. */
static kq_status rd_string(parser *p, const char **str, uint64_t *len, const char *what)
{
    uint64_t off = p->pos;
    char lw[96];
    snprintf(lw, sizeof lw, "the length of %s", what);
    kq_status s = rd_u64(p, len, lw);
    if (s != KQ_OK) return s;
    if (*len > left(p))
        return perr(p, KQ_ERR_FORMAT, off,
                    "%s length %llu exceeds the %llu bytes left in the file (file size %llu)",
                    what, (unsigned long long)*len, (unsigned long long)left(p),
                    (unsigned long long)p->g->size);
    *str = (const char *)(p->g->base + p->pos);
    p->pos += *len;
    return KQ_OK;
}

/* A key or tensor name: no embedded NUL; returns a NUL-terminated copy. */
static kq_status rd_name(parser *p, char **copy, size_t *len, const char *what)
{
    uint64_t off = p->pos;
    const char *s = NULL;
    uint64_t n;
    kq_status st = rd_string(p, &s, &n, what);
    if (st != KQ_OK) return st;
    const char *nul = memchr(s, 0, (size_t)n);
    if (nul)
        return perr(p, KQ_ERR_FORMAT, off, "%s contains a NUL byte at position %llu (of %llu)",
                    what, (unsigned long long)(nul - s), (unsigned long long)n);
    char *c = malloc((size_t)n + 1);
    if (!c)
        return perr(p, KQ_ERR_NO_MEMORY, off, "cannot allocate %llu bytes for %s",
                    (unsigned long long)n + 1, what);
    memcpy(c, s, (size_t)n);
    c[n] = '\0';
    *copy = c;
    *len = (size_t)n;
    return KQ_OK;
}

/* Grows *arr to hold at least n + 1 elements; at most `max` are ever needed. */
static int grow(void **arr, int64_t *cap, int64_t n, int64_t max, size_t elsize)
{
    if (n < *cap) return 0;
    int64_t c = *cap ? *cap * 2 : 16;
    if (c > max) c = max;
    if (c <= n) c = n + 1;
    void *q = realloc(*arr, (size_t)c * elsize);
    if (!q) return -1;
    *arr = q;
    *cap = c;
    return 0;
}

/* ---------------------------------------------------------------- values */

static void free_value(kq_gguf_value *v)
{
    free(v->strs);
    v->strs = NULL;
    if (v->items) {
        for (int64_t i = 0; i < v->count; i++) free_value(&v->items[i]);
        free(v->items);
        v->items = NULL;
    }
}

/* Parses a value of type `type` (already known to be valid). depth counts
 * the arrays this value is inside of. */
static kq_status parse_value(parser *p, kq_gguf_value *v, uint32_t type, int depth,
                             const char *key)
{
    kq_status s;
    memset(v, 0, sizeof *v);
    v->type = type;
    v->key = key;
    if (type == KQ_GGUF_STRING) {
        const char *str;
        s = rd_string(p, &str, &v->len, "string value");
        v->p = (const uint8_t *)str;
        return s;
    }
    if (type != KQ_GGUF_ARRAY) {
        size_t sz = kq__gguf_vtype_size(type);
        char what[48];
        snprintf(what, sizeof what, "%s value", kq__gguf_vtype_str(type));
        s = need(p, sz, what);
        if (s != KQ_OK) return s;
        v->p = p->g->base + p->pos;
        p->pos += sz;
        return KQ_OK;
    }
    uint64_t off = p->pos;
    if (depth >= KQ_GGUF_MAX_DEPTH)
        return perr(p, KQ_ERR_FORMAT, off, "arrays nested deeper than %d levels",
                    KQ_GGUF_MAX_DEPTH);
    uint32_t et;
    if ((s = rd_u32(p, &et, "array element type")) != KQ_OK) return s;
    if (!kq__gguf_vtype_known(et))
        return perr(p, KQ_ERR_FORMAT, off, "unknown array element type id %u", et);
    uint64_t count_pos = p->pos, count;
    if ((s = rd_u64(p, &count, "array length")) != KQ_OK) return s;
    v->elem_type = et;
    uint64_t room = left(p);
    size_t sz = kq__gguf_vtype_size(et);
    uint64_t min = sz ? sz : et == KQ_GGUF_STRING ? MIN_STRING_BYTES : MIN_ARRAY_BYTES;
    if (count > room / min)
        return perr(p, KQ_ERR_FORMAT, count_pos,
                    "array length %llu of %s elements cannot fit in the %llu bytes left "
                    "(each takes at least %llu)",
                    (unsigned long long)count, kq__gguf_vtype_str(et), (unsigned long long)room,
                    (unsigned long long)min);
    v->count = (int64_t)count;
    if (sz) {
        v->p = p->g->base + p->pos;
        p->pos += count * sz;
        return KQ_OK;
    }
    v->p = p->g->base + p->pos;
    if (count == 0) return KQ_OK;
    if (et == KQ_GGUF_STRING) {
        v->strs = calloc((size_t)count, sizeof *v->strs);
        if (!v->strs)
            return perr(p, KQ_ERR_NO_MEMORY, count_pos,
                        "cannot allocate the index of %llu strings", (unsigned long long)count);
        for (uint64_t i = 0; i < count; i++) {
            s = rd_string(p, &v->strs[i].p, &v->strs[i].len, "string array element");
            if (s != KQ_OK) return s;
        }
        return KQ_OK;
    }
    v->items = calloc((size_t)count, sizeof *v->items);
    if (!v->items)
        return perr(p, KQ_ERR_NO_MEMORY, count_pos, "cannot allocate %llu array nodes",
                    (unsigned long long)count);
    for (uint64_t i = 0; i < count; i++) {
        s = parse_value(p, &v->items[i], KQ_GGUF_ARRAY, depth + 1, key);
        if (s != KQ_OK) return s;
    }
    return KQ_OK;
}

/* ---------------------------------------------------------------- parsing */

static kq_status parse_header(parser *p, uint64_t *n_tensors, uint64_t *n_kv)
{
    kq_gguf *g = p->g;
    kq_status s;
    set_where(p, "header");
    if ((s = need(p, 4, "the magic")) != KQ_OK) return s;
    if (memcmp(g->base, GGUF_MAGIC_BYTES, 4) != 0)
        return perr(p, KQ_ERR_FORMAT, 0,
                    "bad magic 0x%02x 0x%02x 0x%02x 0x%02x: not a GGUF file "
                    "(expected the bytes \"GGUF\")",
                    g->base[0], g->base[1], g->base[2], g->base[3]);
    p->pos = 4;
    uint32_t version;
    if ((s = rd_u32(p, &version, "the version")) != KQ_OK) return s;
    if (version != 2 && version != 3) {
        uint32_t sw = __builtin_bswap32(version);
        if ((version & 0xFFFFu) == 0 && sw >= 1 && sw <= 3)
            return perr(p, KQ_ERR_UNSUPPORTED, 4,
                        "version field reads 0x%08x, which is version %u byte-swapped: a "
                        "big-endian GGUF file; only little-endian files are supported",
                        version, sw);
        return perr(p, KQ_ERR_UNSUPPORTED, 4,
                    "unsupported GGUF version %u (this reader supports versions 2 and 3)%s",
                    version, version == 1 ? "; version 1 files use 32-bit counts and are obsolete"
                                          : "");
    }
    g->version = version;
    if ((s = rd_u64(p, n_tensors, "the tensor count")) != KQ_OK) return s;
    if ((s = rd_u64(p, n_kv, "the key/value count")) != KQ_OK) return s;
    uint64_t room = left(p);
    if (*n_kv > room / MIN_KV_BYTES)
        return perr(p, KQ_ERR_FORMAT, 16,
                    "n_kv = %llu key/value pairs cannot fit in the %llu bytes after the header "
                    "(each takes at least %u)",
                    (unsigned long long)*n_kv, (unsigned long long)room, MIN_KV_BYTES);
    if (*n_tensors > room / MIN_TENSOR_INFO_BYTES)
        return perr(p, KQ_ERR_FORMAT, 8,
                    "n_tensors = %llu tensor infos cannot fit in the %llu bytes after the header "
                    "(each takes at least %u)",
                    (unsigned long long)*n_tensors, (unsigned long long)room,
                    MIN_TENSOR_INFO_BYTES);
    if (*n_kv * MIN_KV_BYTES + *n_tensors * MIN_TENSOR_INFO_BYTES > room)
        return perr(p, KQ_ERR_FORMAT, 8,
                    "n_tensors = %llu and n_kv = %llu cannot both fit in the %llu bytes after "
                    "the header",
                    (unsigned long long)*n_tensors, (unsigned long long)*n_kv,
                    (unsigned long long)room);
    return KQ_OK;
}

static kq_status parse_kvs(parser *p, uint64_t n_kv)
{
    kq_gguf *g = p->g;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow((void **)&g->kvs, &g->cap_kv, g->n_kv, (int64_t)n_kv, sizeof *g->kvs) != 0)
            return perr(p, KQ_ERR_NO_MEMORY, p->pos, "cannot allocate %lld key/value records",
                        (long long)n_kv);
        kq__kv *kv = &g->kvs[g->n_kv];
        memset(kv, 0, sizeof *kv);
        kv->offset = p->pos;
        set_where(p, "kv %llu key", (unsigned long long)i);
        kq_status s = rd_name(p, &kv->key, &kv->key_len, "key");
        if (s != KQ_OK) return s;
        g->n_kv++; /* owns kv->key from here on */
        set_where(p, "kv %llu '%.200s'", (unsigned long long)i, kv->key);
        int64_t dup = kq__name_insert(&g->kv_ix, kv->key, kv->key_len, (int64_t)i);
        if (dup == -2)
            return perr(p, KQ_ERR_NO_MEMORY, kv->offset, "cannot grow the key index");
        if (dup >= 0)
            return perr(p, KQ_ERR_FORMAT, kv->offset, "duplicate key '%.200s' (first at kv %lld)",
                        kv->key, (long long)dup);
        uint64_t tpos = p->pos;
        uint32_t type;
        if ((s = rd_u32(p, &type, "value type")) != KQ_OK) return s;
        if (!kq__gguf_vtype_known(type))
            return perr(p, KQ_ERR_FORMAT, tpos, "unknown value type id %u", type);
        if ((s = parse_value(p, &kv->val, type, 0, kv->key)) != KQ_OK) return s;
    }
    return KQ_OK;
}

static kq_status parse_tensor_infos(parser *p, uint64_t n_tensors)
{
    kq_gguf *g = p->g;
    kq_status s;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (grow((void **)&g->tensors, &g->cap_tensors, g->n_tensors, (int64_t)n_tensors,
                 sizeof *g->tensors) != 0)
            return perr(p, KQ_ERR_NO_MEMORY, p->pos, "cannot allocate %lld tensor records",
                        (long long)n_tensors);
        kq__tensor *t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof *t);
        t->info_offset = p->pos;
        set_where(p, "tensor %llu name", (unsigned long long)i);
        if ((s = rd_name(p, &t->name, &t->name_len, "tensor name")) != KQ_OK) return s;
        g->n_tensors++;
        set_where(p, "tensor %llu '%.200s'", (unsigned long long)i, t->name);
        int64_t dup = kq__name_insert(&g->t_ix, t->name, t->name_len, (int64_t)i);
        if (dup == -2)
            return perr(p, KQ_ERR_NO_MEMORY, t->info_offset, "cannot grow the tensor index");
        if (dup >= 0)
            return perr(p, KQ_ERR_FORMAT, t->info_offset,
                        "duplicate tensor name '%.200s' (first at tensor %lld)", t->name,
                        (long long)dup);
        uint64_t dpos = p->pos;
        uint32_t n_dims;
        if ((s = rd_u32(p, &n_dims, "n_dims")) != KQ_OK) return s;
        if (n_dims < 1 || n_dims > 4)
            return perr(p, KQ_ERR_FORMAT, dpos, "n_dims = %u, must be 1 to 4", n_dims);
        t->n_dims = (int)n_dims;
        int64_t elems = 1;
        for (int j = 0; j < 4; j++) t->ne[j] = 1;
        for (uint32_t j = 0; j < n_dims; j++) {
            uint64_t npos = p->pos, ne;
            if ((s = rd_u64(p, &ne, "a dimension")) != KQ_OK) return s;
            if (ne == 0)
                return perr(p, KQ_ERR_FORMAT, npos, "dimension ne[%u] is 0", j);
            if (ne > (uint64_t)INT64_MAX)
                return perr(p, KQ_ERR_FORMAT, npos, "dimension ne[%u] = %llu exceeds INT64_MAX", j,
                            (unsigned long long)ne);
            t->ne[j] = (int64_t)ne;
            if (kq__mul_i64(elems, (int64_t)ne, &elems))
                return perr(p, KQ_ERR_FORMAT, npos,
                            "the element count overflows int64 at dimension ne[%u] = %llu "
                            "(ne = [%lld, %lld, %lld, %lld] so far)",
                            j, (unsigned long long)ne, (long long)t->ne[0], (long long)t->ne[1],
                            (long long)t->ne[2], (long long)t->ne[3]);
        }
        uint64_t tpos = p->pos;
        uint32_t type;
        if ((s = rd_u32(p, &type, "tensor type")) != KQ_OK) return s;
        const kq_type_traits *tt = type <= (uint32_t)INT32_MAX ? kq__type_traits((int)type) : NULL;
        if (!tt || tt->block_elems <= 0 || tt->block_bytes == 0)
            return perr(p, KQ_ERR_FORMAT, tpos, "unknown tensor type id %u", type);
        t->type = (int)type;
        uint64_t row_bytes, nb = 0;
        kq_size_check sc = kq__tensor_bytes(tt, t->ne, &row_bytes, &nb);
        if (sc == KQ_SIZE_PARTIAL_BLOCK)
            return perr(p, KQ_ERR_FORMAT, tpos,
                        "ne[0] = %lld is not a multiple of the %s block size %lld",
                        (long long)t->ne[0], tt->name, (long long)tt->block_elems);
        if (sc == KQ_SIZE_OVERFLOW)
            return perr(p, KQ_ERR_FORMAT, tpos,
                        "the byte size of %s [%lld, %lld, %lld, %lld] overflows 64 bits",
                        tt->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                        (long long)t->ne[3]);
        t->nbytes = nb;
        t->offset_pos = p->pos;
        if ((s = rd_u64(p, &t->offset, "tensor data offset")) != KQ_OK) return s;
    }
    return KQ_OK;
}

static kq_status parse_alignment(parser *p)
{
    kq_gguf *g = p->g;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    static const char key[] = "general.alignment";
    int64_t i = kq__name_find(&g->kv_ix, key, sizeof key - 1);
    if (i < 0) return KQ_OK;
    const kq__kv *kv = &g->kvs[i];
    set_where(p, "kv %lld '%s'", (long long)i, key);
    if (kv->val.type != KQ_GGUF_U32)
        return perr(p, KQ_ERR_FORMAT, kv->offset, "general.alignment has type %s, must be u32",
                    kq__gguf_vtype_str(kv->val.type));
    uint32_t a;
    memcpy(&a, kv->val.p, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return perr(p, KQ_ERR_FORMAT, kv->offset,
                    "general.alignment = %u is not a power of two (nonzero)", a);
    if (a > KQ_GGUF_MAX_ALIGNMENT)
        return perr(p, KQ_ERR_FORMAT, kv->offset,
                    "general.alignment = %u exceeds the largest supported (%u)", a,
                    KQ_GGUF_MAX_ALIGNMENT);
    g->alignment = a;
    return KQ_OK;
}

typedef struct span {
    uint64_t start, end;
    int64_t idx;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static kq_status check_tensor_data(parser *p)
{
    kq_gguf *g = p->g;
    uint64_t pad = (g->alignment - p->pos % g->alignment) % g->alignment;
    g->data_offset = p->pos + pad;
    if (g->n_tensors == 0) return KQ_OK;
    if (g->data_offset > g->size) {
        set_where(p, "tensor data section");
        return perr(p, KQ_ERR_FORMAT, g->data_offset,
                    "the tensor data section starts past the end of the file (file size %llu, "
                    "tensor infos end at %llu, alignment %llu)",
                    (unsigned long long)g->size, (unsigned long long)p->pos,
                    (unsigned long long)g->alignment);
    }
    uint64_t room = g->size - g->data_offset;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const kq__tensor *t = &g->tensors[i];
        set_where(p, "tensor %lld '%.200s'", (long long)i, t->name);
        if (t->offset % g->alignment != 0)
            return perr(p, KQ_ERR_FORMAT, t->offset_pos,
                        "data offset %llu is not a multiple of the alignment %llu",
                        (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (t->offset > room || t->nbytes > room - t->offset)
            return perr(p, KQ_ERR_FORMAT, t->offset_pos,
                        "data at offset %llu + %llu bytes extends past the end of the file "
                        "(the data section holds %llu bytes from file offset %llu; file size "
                        "%llu)",
                        (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                        (unsigned long long)room, (unsigned long long)g->data_offset,
                        (unsigned long long)g->size);
    }
    span *sp = malloc((size_t)g->n_tensors * sizeof *sp);
    if (!sp) return perr(p, KQ_ERR_NO_MEMORY, 0, "cannot allocate the overlap check");
    for (int64_t i = 0; i < g->n_tensors; i++) {
        sp[i].start = g->tensors[i].offset;
        sp[i].end = g->tensors[i].offset + g->tensors[i].nbytes;
        sp[i].idx = i;
    }
    qsort(sp, (size_t)g->n_tensors, sizeof *sp, span_cmp);
    kq_status s = KQ_OK;
    uint64_t max_end = 0;
    int64_t max_idx = -1;
    for (int64_t k = 0; k < g->n_tensors; k++) {
        if (max_idx >= 0 && sp[k].start < max_end) {
            const kq__tensor *a = &g->tensors[max_idx], *b = &g->tensors[sp[k].idx];
            set_where(p, "tensor %lld '%.200s'", (long long)sp[k].idx, b->name);
            s = perr(p, KQ_ERR_FORMAT, b->offset_pos,
                     "data [%llu, %llu) overlaps tensor %lld '%.200s' at [%llu, %llu)",
                     (unsigned long long)b->offset, (unsigned long long)(b->offset + b->nbytes),
                     (long long)max_idx, a->name, (unsigned long long)a->offset,
                     (unsigned long long)(a->offset + a->nbytes));
            break;
        }
        if (max_idx < 0 || sp[k].end > max_end) {
            max_end = sp[k].end;
            max_idx = sp[k].idx;
        }
    }
    free(sp);
    return s;
}

/* ---------------------------------------------------------------- open, close */

static void gguf_free(kq_gguf *g)
{
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free_value(&g->kvs[i].val);
        free(g->kvs[i].key);
    }
    free(g->kvs);
    for (int64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    kq__name_index_free(&g->kv_ix);
    kq__name_index_free(&g->t_ix);
    kq__mapping_release(g->map);
    free(g->path);
    free(g);
}

void kq_gguf_close(kq_gguf *g)
{
    gguf_free(g);
}

kq_status kq_gguf_open(const char *path, kq_gguf **out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_open: path is NULL");
    kq_gguf *g = calloc(1, sizeof *g);
    if (!g) return kq__fail(KQ_ERR_NO_MEMORY, "kq_gguf_open('%s'): out of memory", path);
    size_t plen = strlen(path);
    g->path = malloc(plen + 1);
    if (!g->path) {
        free(g);
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_gguf_open('%s'): out of memory", path);
    }
    memcpy(g->path, path, plen + 1);
    kq_status s = kq__mapping_open(path, &g->map);
    if (s != KQ_OK) {
        free(g->path);
        free(g);
        return s;
    }
    g->base = kq__mapping_data(g->map);
    g->size = kq__mapping_size(g->map);

    parser p = {.g = g, .pos = 0};
    uint64_t n_tensors = 0, n_kv = 0;
    if ((s = parse_header(&p, &n_tensors, &n_kv)) == KQ_OK &&
        (s = parse_kvs(&p, n_kv)) == KQ_OK && (s = parse_tensor_infos(&p, n_tensors)) == KQ_OK &&
        (s = parse_alignment(&p)) == KQ_OK)
        s = check_tensor_data(&p);
    if (s != KQ_OK) {
        gguf_free(g); /* keeps the message */
        return s;
    }
    *out = g;
    return KQ_OK;
}

/* ---------------------------------------------------------------- queries */

uint32_t kq_gguf_version(const kq_gguf *g)
{
    return g ? g->version : 0;
}

uint64_t kq_gguf_file_size(const kq_gguf *g)
{
    return g ? g->size : 0;
}

uint64_t kq_gguf_alignment(const kq_gguf *g)
{
    return g ? g->alignment : 0;
}

uint64_t kq_gguf_data_offset(const kq_gguf *g)
{
    return g ? g->data_offset : 0;
}

int64_t kq_gguf_n_kv(const kq_gguf *g)
{
    return g ? g->n_kv : 0;
}

const char *kq_gguf_kv_key(const kq_gguf *g, int64_t i)
{
    if (!g || i < 0 || i >= g->n_kv) return NULL;
    return g->kvs[i].key;
}

const kq_gguf_value *kq_gguf_kv_value(const kq_gguf *g, int64_t i)
{
    if (!g || i < 0 || i >= g->n_kv) return NULL;
    return &g->kvs[i].val;
}

/* `user_out` is the caller's output pointer, named `out_name` in messages:
 * checked here so a NULL one is reported against the call it was passed to. */
static kq_status find_kv(const kq_gguf *g, const char *key, const void *user_out,
                         const char *out_name, const kq_gguf_value **out, const char *fn)
{
    if (!g) return kq__fail(KQ_ERR_INVALID_ARG, "%s: the GGUF handle is NULL", fn);
    if (!key) return kq__fail(KQ_ERR_INVALID_ARG, "%s: key is NULL", fn);
    if (!user_out) return kq__fail(KQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, out_name);
    int64_t i = kq__name_find(&g->kv_ix, key, strlen(key));
    if (i < 0)
        return kq__fail(KQ_ERR_NOT_FOUND, "GGUF '%s': no key '%s'", g->path, key);
    *out = &g->kvs[i].val;
    return KQ_OK;
}

kq_status kq_gguf_find_kv(const kq_gguf *g, const char *key, const kq_gguf_value **out)
{
    kq__clear_error();
    return find_kv(g, key, out, "out", out, "kq_gguf_find_kv");
}

#define GET_BY_KEY(fn, getter, T)                                                             \
    kq_status fn(const kq_gguf *g, const char *key, T *out)                                   \
    {                                                                                         \
        kq__clear_error();                                                                    \
        const kq_gguf_value *v = NULL;                                                             \
        kq_status s = find_kv(g, key, out, "out", &v, #fn);                                   \
        if (s != KQ_OK) return s;                                                             \
        return getter(v, out);                                                                \
    }

GET_BY_KEY(kq_gguf_get_int, kq_gguf_value_int, int64_t)
GET_BY_KEY(kq_gguf_get_uint, kq_gguf_value_uint, uint64_t)
GET_BY_KEY(kq_gguf_get_float, kq_gguf_value_float, double)
GET_BY_KEY(kq_gguf_get_bool, kq_gguf_value_bool, int)

kq_status kq_gguf_get_string(const kq_gguf *g, const char *key, const char **s, size_t *len)
{
    kq__clear_error();
    const kq_gguf_value *v = NULL;
    kq_status st = find_kv(g, key, s, "s", &v, "kq_gguf_get_string");
    if (st != KQ_OK) return st;
    return kq_gguf_value_string(v, s, len);
}

int64_t kq_gguf_n_tensors(const kq_gguf *g)
{
    return g ? g->n_tensors : 0;
}

static void fill_info(const kq_gguf *g, int64_t i, kq_tensor_info *out)
{
    const kq__tensor *t = &g->tensors[i];
    out->name = t->name;
    out->type = t->type;
    out->n_dims = t->n_dims;
    for (int j = 0; j < 4; j++) out->ne[j] = t->ne[j];
    out->offset = t->offset;
    out->nbytes = t->nbytes;
    out->data = g->base + g->data_offset + t->offset;
}

kq_status kq_gguf_tensor(const kq_gguf *g, int64_t i, kq_tensor_info *out)
{
    kq__clear_error();
    if (!g) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_tensor: the GGUF handle is NULL");
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_tensor: out is NULL");
    if (i < 0 || i >= g->n_tensors)
        return kq__fail(KQ_ERR_RANGE, "GGUF '%s': tensor index %lld is out of range (%lld tensors)",
                        g->path, (long long)i, (long long)g->n_tensors);
    fill_info(g, i, out);
    return KQ_OK;
}

kq_status kq_gguf_find_tensor(const kq_gguf *g, const char *name, kq_tensor_info *out)
{
    kq__clear_error();
    if (!g) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_find_tensor: the GGUF handle is NULL");
    if (!name) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_find_tensor: name is NULL");
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_find_tensor: out is NULL");
    int64_t i = kq__name_find(&g->t_ix, name, strlen(name));
    if (i < 0)
        return kq__fail(KQ_ERR_NOT_FOUND, "GGUF '%s': no tensor named '%s'", g->path, name);
    fill_info(g, i, out);
    return KQ_OK;
}
