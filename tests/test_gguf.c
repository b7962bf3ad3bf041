/* GGUF reader, writer and mapping registry: round trips of every value type
 * and of tensors of several types, shapes, alignments and versions; getter
 * conversions and errors; the mapping registry; one malformed file per
 * class of error (status, problem and position in the message); a
 * truncation sweep and a byte-corruption fuzz that must never crash.
 *
 * KQ_GGUF_PRINT_ERRORS=1 prints each malformed class with its message;
 * KQ_GGUF_FUZZ_ITERS=N runs N corrupted files instead of 1500. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/mapping.h"
#include "kquant.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static void b_put(bb *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void b_u8(bb *b, uint8_t v) { b_put(b, &v, 1); }
static void b_u16(bb *b, uint16_t v) { b_put(b, &v, 2); }
static void b_u32(bb *b, uint32_t v) { b_put(b, &v, 4); }
static void b_u64(bb *b, uint64_t v) { b_put(b, &v, 8); }
static void b_f64(bb *b, double v) { b_put(b, &v, 8); }
static void b_strn(bb *b, const char *s, size_t n)
{
    b_u64(b, n);
    b_put(b, s, n);
}
static void b_str(bb *b, const char *s) { b_strn(b, s, strlen(s)); }
static void b_zeros(bb *b, size_t n)
{
    for (size_t i = 0; i < n; i++) b_u8(b, 0);
}
static void b_pad(bb *b, size_t align)
{
    while (b->n % align) b_u8(b, 0);
}
static void b_hdr(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b_put(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
/* A key and its value type; returns the offset of the value type field. */
static size_t b_key(bb *b, const char *key, uint32_t vtype)
{
    b_str(b, key);
    size_t at = b->n;
    b_u32(b, vtype);
    return at;
}
static void b_kv_u32(bb *b, const char *key, uint32_t v)
{
    b_key(b, key, KQ_GGUF_U32);
    b_u32(b, v);
}

typedef struct ti_pos {
    size_t start, ndims, ne[4], type, offset;
} ti_pos;

static ti_pos b_ti(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                   uint64_t offset)
{
    ti_pos p;
    memset(&p, 0, sizeof p);
    p.start = b->n;
    b_str(b, name);
    p.ndims = b->n;
    b_u32(b, n_dims);
    for (uint32_t j = 0; j < n_dims; j++) {
        if (j < 4) p.ne[j] = b->n;
        b_u64(b, ne[j]);
    }
    p.type = b->n;
    b_u32(b, type);
    p.offset = b->n;
    b_u64(b, offset);
    return p;
}

static void b_free(bb *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    int rc = fclose(f);
    return (w == n && rc == 0) ? 0 : -1;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    memcpy(c, s, n);
    return c;
}

static int has(const char *msg, const char *sub) { return sub == NULL || strstr(msg, sub) != NULL; }

/* ---------------------------------------------------------------- value checks */

static size_t vsize(uint32_t t)
{
    static const size_t s[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? s[t] : 0;
}

/* Checks element i (i < 0: the scalar itself) of v against raw little-endian bytes. */
static void check_elem(const kq_gguf_value *v, int64_t i, uint32_t t, const uint8_t *raw,
                       const char *what)
{
    int64_t si = 0;
    uint64_t ui = 0;
    double f = 0;
    int bo = 0;
    kq_status s;
    switch (t) {
    case KQ_GGUF_U8: case KQ_GGUF_U16: case KQ_GGUF_U32: case KQ_GGUF_U64: {
        uint64_t want = 0;
        memcpy(&want, raw, vsize(t));
        s = i < 0 ? kq_gguf_value_uint(v, &ui) : kq_gguf_array_uint(v, i, &ui);
        KT_CHECK(s == KQ_OK && ui == want, "%s[%lld] %s: got %llu want %llu (%s)", what,
                 (long long)i, kq_gguf_vtype_name((int)t), (unsigned long long)ui,
                 (unsigned long long)want, kq_last_error());
        break;
    }
    case KQ_GGUF_I8: case KQ_GGUF_I16: case KQ_GGUF_I32: case KQ_GGUF_I64: {
        int64_t want = 0;
        if (t == KQ_GGUF_I8) want = (int8_t)raw[0];
        if (t == KQ_GGUF_I16) { int16_t x; memcpy(&x, raw, 2); want = x; }
        if (t == KQ_GGUF_I32) { int32_t x; memcpy(&x, raw, 4); want = x; }
        if (t == KQ_GGUF_I64) memcpy(&want, raw, 8);
        s = i < 0 ? kq_gguf_value_int(v, &si) : kq_gguf_array_int(v, i, &si);
        KT_CHECK(s == KQ_OK && si == want, "%s[%lld] %s: got %lld want %lld (%s)", what,
                 (long long)i, kq_gguf_vtype_name((int)t), (long long)si, (long long)want,
                 kq_last_error());
        break;
    }
    case KQ_GGUF_F32: case KQ_GGUF_F64: {
        double want;
        if (t == KQ_GGUF_F32) { float x; memcpy(&x, raw, 4); want = x; }
        else memcpy(&want, raw, 8);
        s = i < 0 ? kq_gguf_value_float(v, &f) : kq_gguf_array_float(v, i, &f);
        int same = isnan(want) ? isnan(f) : (f == want && signbit(f) == signbit(want));
        KT_CHECK(s == KQ_OK && same, "%s[%lld] %s: got %g want %g (%s)", what, (long long)i,
                 kq_gguf_vtype_name((int)t), f, want, kq_last_error());
        break;
    }
    case KQ_GGUF_BOOL:
        s = i < 0 ? kq_gguf_value_bool(v, &bo) : kq_gguf_array_bool(v, i, &bo);
        KT_CHECK(s == KQ_OK && bo == (raw[0] != 0), "%s[%lld] bool: got %d want %d (%s)", what,
                 (long long)i, bo, raw[0] != 0, kq_last_error());
        break;
    default:
        KT_CHECK(0, "check_elem: bad type %u", t);
    }
}

/* Deep equality of two values through the public getters only. */
static int value_equal(const kq_gguf_value *a, const kq_gguf_value *b, int depth)
{
    if (depth > 20) return 0;
    kq_gguf_vtype ta = kq_gguf_value_type(a), tb = kq_gguf_value_type(b);
    if (ta != tb) return 0;
    if (ta == KQ_GGUF_STRING) {
        const char *sa, *sb;
        size_t la, lb;
        if (kq_gguf_value_string(a, &sa, &la) || kq_gguf_value_string(b, &sb, &lb)) return 0;
        return la == lb && memcmp(sa, sb, la) == 0;
    }
    if (ta != KQ_GGUF_ARRAY) {
        int64_t ia, ib;
        uint64_t ua, ub;
        double fa, fb;
        int ba, bb_;
        if (kq_gguf_value_int(a, &ia) == KQ_OK)
            return kq_gguf_value_int(b, &ib) == KQ_OK && ia == ib;
        if (kq_gguf_value_uint(a, &ua) == KQ_OK)
            return kq_gguf_value_uint(b, &ub) == KQ_OK && ua == ub;
        if (kq_gguf_value_float(a, &fa) == KQ_OK)
            return kq_gguf_value_float(b, &fb) == KQ_OK &&
                   (isnan(fa) ? isnan(fb) : memcmp(&fa, &fb, sizeof fa) == 0);
        if (kq_gguf_value_bool(a, &ba) == KQ_OK)
            return kq_gguf_value_bool(b, &bb_) == KQ_OK && ba == bb_;
        return 0;
    }
    kq_gguf_vtype ea, eb;
    int64_t na, nb;
    if (kq_gguf_value_array(a, &ea, &na) || kq_gguf_value_array(b, &eb, &nb)) return 0;
    if (ea != eb || na != nb) return 0;
    for (int64_t i = 0; i < na; i++) {
        if (ea == KQ_GGUF_ARRAY) {
            const kq_gguf_value *xa, *xb;
            if (kq_gguf_array_item(a, i, &xa) || kq_gguf_array_item(b, i, &xb)) return 0;
            if (!value_equal(xa, xb, depth + 1)) return 0;
        } else if (ea == KQ_GGUF_STRING) {
            const char *sa, *sb;
            size_t la, lb;
            if (kq_gguf_array_string(a, i, &sa, &la) || kq_gguf_array_string(b, i, &sb, &lb))
                return 0;
            if (la != lb || memcmp(sa, sb, la) != 0) return 0;
        } else if (ea == KQ_GGUF_F32 || ea == KQ_GGUF_F64) {
            double fa, fb;
            if (kq_gguf_array_float(a, i, &fa) || kq_gguf_array_float(b, i, &fb)) return 0;
            if (isnan(fa) ? !isnan(fb) : memcmp(&fa, &fb, sizeof fa) != 0) return 0;
        } else if (ea == KQ_GGUF_BOOL) {
            int x, y;
            if (kq_gguf_array_bool(a, i, &x) || kq_gguf_array_bool(b, i, &y) || x != y) return 0;
        } else if (ea == KQ_GGUF_U8 || ea == KQ_GGUF_U16 || ea == KQ_GGUF_U32 || ea == KQ_GGUF_U64) {
            uint64_t x, y;
            if (kq_gguf_array_uint(a, i, &x) || kq_gguf_array_uint(b, i, &y) || x != y) return 0;
        } else {
            int64_t x, y;
            if (kq_gguf_array_int(a, i, &x) || kq_gguf_array_int(b, i, &y) || x != y) return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- metadata */

#define N_SCALAR_TYPES 11
static const uint32_t g_scalar_types[N_SCALAR_TYPES] = {
    KQ_GGUF_U8, KQ_GGUF_I8, KQ_GGUF_U16, KQ_GGUF_I16, KQ_GGUF_U32, KQ_GGUF_I32,
    KQ_GGUF_F32, KQ_GGUF_BOOL, KQ_GGUF_U64, KQ_GGUF_I64, KQ_GGUF_F64};

/* Random bytes for one element; floats are finite or one of a few specials. */
static void rand_elem(uint32_t t, uint8_t *raw)
{
    kt_fill_bytes(raw, 8);
    if (t == KQ_GGUF_F32) {
        static const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, 1e-45f, 3.4e38f};
        float x = kt_range(0, 9) < 2 ? sp[kt_range(0, 5)] : (float)kt_normal() * 1000.0f;
        if (kt_range(0, 30) == 0) x = NAN;
        memcpy(raw, &x, 4);
    } else if (t == KQ_GGUF_F64) {
        double x = kt_range(0, 9) < 2 ? -0.0 : kt_normal() * 1e10;
        if (kt_range(0, 30) == 0) x = NAN;
        memcpy(raw, &x, 8);
    } else if (t == KQ_GGUF_BOOL && kt_range(0, 1)) {
        raw[0] = (uint8_t)kt_range(0, 1); /* sometimes 0/1, sometimes any byte */
    }
}

typedef struct meta_spec {
    char key[64];
    uint32_t type, elem;
    int64_t n;
    uint8_t scalar[8];
    uint8_t *elems;   /* arrays of scalars */
    char **strs;      /* strings and string arrays */
    size_t *lens;
} meta_spec;

#define MAX_SPECS 64

typedef struct meta_set {
    meta_spec s[MAX_SPECS];
    int n;
} meta_set;

static char *rand_string(size_t *len)
{
    size_t n = kt_range(0, 4) == 0 ? 0 : (size_t)kt_range(1, 40);
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = (char)kt_range(1, 255);
    if (n > 3 && kt_range(0, 3) == 0) s[n / 2] = '\0'; /* values may hold NUL bytes */
    s[n] = '\0';
    *len = n;
    return s;
}

/* Fills a writer with every scalar type, strings, and arrays of each type. */
static void make_meta(meta_set *m, kq_gguf_writer *w)
{
    m->n = 0;
    for (int k = 0; k < N_SCALAR_TYPES; k++) {
        meta_spec *s = &m->s[m->n++];
        memset(s, 0, sizeof *s);
        snprintf(s->key, sizeof s->key, "test.scalar.%s", kq_gguf_vtype_name((int)g_scalar_types[k]));
        s->type = g_scalar_types[k];
        rand_elem(s->type, s->scalar);
        KT_OK(kq_gguf_writer_set(w, s->key, (kq_gguf_vtype)s->type, s->scalar));
    }
    /* extremes */
    static const struct { const char *key; uint32_t t; uint64_t bits; } ext[] = {
        {"test.max.u64", KQ_GGUF_U64, UINT64_MAX},
        {"test.min.i64", KQ_GGUF_I64, (uint64_t)INT64_MIN},
        {"test.max.u8", KQ_GGUF_U8, 255},
        {"test.min.i8", KQ_GGUF_I8, 0x80},
    };
    for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++) {
        meta_spec *s = &m->s[m->n++];
        memset(s, 0, sizeof *s);
        snprintf(s->key, sizeof s->key, "%s", ext[k].key);
        s->type = ext[k].t;
        memcpy(s->scalar, &ext[k].bits, 8);
        KT_OK(kq_gguf_writer_set(w, s->key, (kq_gguf_vtype)s->type, s->scalar));
    }
    for (int k = 0; k < 3; k++) { /* strings, one empty */
        meta_spec *s = &m->s[m->n++];
        memset(s, 0, sizeof *s);
        snprintf(s->key, sizeof s->key, "test.string.%d", k);
        s->type = KQ_GGUF_STRING;
        s->strs = malloc(sizeof *s->strs);
        s->lens = malloc(sizeof *s->lens);
        if (k == 0) {
            s->strs[0] = dup_str("");
            s->lens[0] = 0;
        } else {
            s->strs[0] = rand_string(&s->lens[0]);
        }
        KT_OK(kq_gguf_writer_set_string(w, s->key, s->strs[0], s->lens[0]));
    }
    for (int k = 0; k < N_SCALAR_TYPES; k++) { /* arrays, some empty */
        meta_spec *s = &m->s[m->n++];
        memset(s, 0, sizeof *s);
        s->type = KQ_GGUF_ARRAY;
        s->elem = g_scalar_types[k];
        snprintf(s->key, sizeof s->key, "test.array.%s", kq_gguf_vtype_name((int)s->elem));
        s->n = kt_range(0, 5) == 0 ? 0 : kt_range(1, 300);
        size_t sz = vsize(s->elem);
        s->elems = malloc((size_t)s->n * sz + 8);
        for (int64_t i = 0; i < s->n; i++) {
            uint8_t raw[8];
            rand_elem(s->elem, raw);
            memcpy(s->elems + i * sz, raw, sz);
        }
        KT_OK(kq_gguf_writer_set_array(w, s->key, (kq_gguf_vtype)s->elem, s->n ? s->elems : NULL,
                                       s->n));
    }
    for (int k = 0; k < 3; k++) { /* string arrays, one empty */
        meta_spec *s = &m->s[m->n++];
        memset(s, 0, sizeof *s);
        s->type = KQ_GGUF_ARRAY;
        s->elem = KQ_GGUF_STRING;
        snprintf(s->key, sizeof s->key, "test.strings.%d", k);
        s->n = k == 0 ? 0 : kt_range(1, 50);
        s->strs = malloc(((size_t)s->n + 1) * sizeof *s->strs);
        s->lens = malloc(((size_t)s->n + 1) * sizeof *s->lens);
        for (int64_t i = 0; i < s->n; i++) s->strs[i] = rand_string(&s->lens[i]);
        KT_OK(kq_gguf_writer_set_string_array(w, s->key, (const char *const *)s->strs, s->lens,
                                              s->n));
    }
    /* lens = NULL: strlen of each */
    {
        meta_spec *s = &m->s[m->n++];
        memset(s, 0, sizeof *s);
        s->type = KQ_GGUF_ARRAY;
        s->elem = KQ_GGUF_STRING;
        snprintf(s->key, sizeof s->key, "tokenizer.ggml.tokens");
        static const char *toks[] = {"<s>", "</s>", "hello", "", "\xe2\x96\x81world"};
        s->n = 5;
        s->strs = malloc(5 * sizeof *s->strs);
        s->lens = malloc(5 * sizeof *s->lens);
        for (int i = 0; i < 5; i++) {
            s->strs[i] = dup_str(toks[i]);
            s->lens[i] = strlen(toks[i]);
        }
        KT_OK(kq_gguf_writer_set_string_array(w, s->key, toks, NULL, 5));
    }
}

static void free_meta(meta_set *m)
{
    for (int k = 0; k < m->n; k++) {
        meta_spec *s = &m->s[k];
        free(s->elems);
        int64_t ns = s->type == KQ_GGUF_STRING ? 1 : s->elem == KQ_GGUF_STRING ? s->n : 0;
        if (s->strs)
            for (int64_t i = 0; i < ns; i++) free(s->strs[i]);
        free(s->strs);
        free(s->lens);
    }
    m->n = 0;
}

static void check_meta(const meta_set *m, const kq_gguf *g, int64_t first_kv)
{
    for (int k = 0; k < m->n; k++) {
        const meta_spec *s = &m->s[k];
        const char *key = kq_gguf_kv_key(g, first_kv + k);
        KT_CHECK(key && strcmp(key, s->key) == 0, "kv %lld: key '%s', want '%s'",
                 (long long)(first_kv + k), key ? key : "(null)", s->key);
        const kq_gguf_value *v = NULL;
        if (!KT_OK(kq_gguf_find_kv(g, s->key, &v))) continue;
        KT_CHECK(v == kq_gguf_kv_value(g, first_kv + k), "%s: find_kv and kv_value differ", s->key);
        KT_CHECK(kq_gguf_value_type(v) == (kq_gguf_vtype)s->type, "%s: type %d, want %u", s->key,
                 (int)kq_gguf_value_type(v), s->type);
        if (s->type == KQ_GGUF_STRING) {
            const char *str;
            size_t len;
            KT_OK(kq_gguf_value_string(v, &str, &len));
            KT_CHECK(len == s->lens[0] && memcmp(str, s->strs[0], len) == 0, "%s: string differs",
                     s->key);
            KT_OK(kq_gguf_get_string(g, s->key, &str, &len));
        } else if (s->type == KQ_GGUF_ARRAY) {
            kq_gguf_vtype et;
            int64_t n;
            KT_OK(kq_gguf_value_array(v, &et, &n));
            KT_CHECK(et == (kq_gguf_vtype)s->elem && n == s->n, "%s: array %d x %lld, want %u x %lld",
                     s->key, (int)et, (long long)n, s->elem, (long long)s->n);
            if (n != s->n) continue;
            for (int64_t i = 0; i < n; i++) {
                if (s->elem == KQ_GGUF_STRING) {
                    const char *str;
                    size_t len;
                    kq_status st = kq_gguf_array_string(v, i, &str, &len);
                    KT_CHECK(st == KQ_OK && len == s->lens[i] && memcmp(str, s->strs[i], len) == 0,
                             "%s[%lld]: string differs", s->key, (long long)i);
                } else {
                    check_elem(v, i, s->elem, s->elems + i * vsize(s->elem), s->key);
                }
            }
        } else {
            check_elem(v, -1, s->type, s->scalar, s->key);
        }
    }
}

/* ---------------------------------------------------------------- nested arrays */

/* A hand-built file with arrays of arrays (the writer makes them only by
 * copying a reader value). */
static void build_nested(bb *b, uint32_t version)
{
    b_hdr(b, version, 0, 5);
    /* [["a","bc"], [], ["", "xy\0zw"]] */
    b_key(b, "nest.strs", KQ_GGUF_ARRAY);
    b_u32(b, KQ_GGUF_ARRAY);
    b_u64(b, 3);
    b_u32(b, KQ_GGUF_STRING); b_u64(b, 2); b_str(b, "a"); b_str(b, "bc");
    b_u32(b, KQ_GGUF_STRING); b_u64(b, 0);
    b_u32(b, KQ_GGUF_STRING); b_u64(b, 2); b_str(b, ""); b_strn(b, "xy\0zw", 5);
    /* [[[1,2],[3]], [[]]] of u16 */
    b_key(b, "nest.u16", KQ_GGUF_ARRAY);
    b_u32(b, KQ_GGUF_ARRAY); b_u64(b, 2);
    b_u32(b, KQ_GGUF_ARRAY); b_u64(b, 2);
    b_u32(b, KQ_GGUF_U16); b_u64(b, 2); b_u16(b, 1); b_u16(b, 2);
    b_u32(b, KQ_GGUF_U16); b_u64(b, 1); b_u16(b, 3);
    b_u32(b, KQ_GGUF_ARRAY); b_u64(b, 1);
    b_u32(b, KQ_GGUF_U16); b_u64(b, 0);
    /* an empty array of arrays */
    b_key(b, "nest.empty", KQ_GGUF_ARRAY);
    b_u32(b, KQ_GGUF_ARRAY); b_u64(b, 0);
    /* inner arrays of different element types: [[u8 7], [f64 1.5], [bool 1]] */
    b_key(b, "nest.mixed", KQ_GGUF_ARRAY);
    b_u32(b, KQ_GGUF_ARRAY); b_u64(b, 3);
    b_u32(b, KQ_GGUF_U8); b_u64(b, 1); b_u8(b, 7);
    b_u32(b, KQ_GGUF_F64); b_u64(b, 1); b_f64(b, 1.5);
    b_u32(b, KQ_GGUF_BOOL); b_u64(b, 1); b_u8(b, 1);
    /* 16 levels of arrays (the most accepted), an i32 -7 at the bottom */
    b_key(b, "nest.deep", KQ_GGUF_ARRAY);
    for (int d = 0; d < 15; d++) {
        b_u32(b, KQ_GGUF_ARRAY);
        b_u64(b, 1);
    }
    b_u32(b, KQ_GGUF_I32); b_u64(b, 1); b_u32(b, (uint32_t)-7);
    b_pad(b, 32);
}

static void check_nested(const kq_gguf *g)
{
    const kq_gguf_value *v, *it, *it2;
    kq_gguf_vtype et;
    int64_t n;
    const char *s;
    size_t len;
    if (!KT_OK(kq_gguf_find_kv(g, "nest.strs", &v))) return;
    KT_CHECK(kq_gguf_value_array(v, &et, &n) == KQ_OK && et == KQ_GGUF_ARRAY && n == 3,
             "nest.strs: array of 3 arrays");
    KT_OK(kq_gguf_array_item(v, 0, &it));
    KT_CHECK(kq_gguf_value_array(it, &et, &n) == KQ_OK && et == KQ_GGUF_STRING && n == 2,
             "nest.strs[0]: 2 strings");
    KT_CHECK(kq_gguf_array_string(it, 1, &s, &len) == KQ_OK && len == 2 && !memcmp(s, "bc", 2),
             "nest.strs[0][1] = bc");
    KT_OK(kq_gguf_array_item(v, 1, &it));
    KT_CHECK(kq_gguf_value_array(it, &et, &n) == KQ_OK && et == KQ_GGUF_STRING && n == 0,
             "nest.strs[1]: empty");
    KT_OK(kq_gguf_array_item(v, 2, &it));
    KT_CHECK(kq_gguf_array_string(it, 0, &s, &len) == KQ_OK && len == 0, "nest.strs[2][0] empty");
    KT_CHECK(kq_gguf_array_string(it, 1, &s, &len) == KQ_OK && len == 5 && !memcmp(s, "xy\0zw", 5),
             "nest.strs[2][1] holds a NUL");
    KT_CHECK(kq_gguf_array_string(v, 0, &s, &len) == KQ_ERR_TYPE, "array_string on array of arrays");

    KT_OK(kq_gguf_find_kv(g, "nest.u16", &v));
    KT_OK(kq_gguf_array_item(v, 0, &it));
    KT_OK(kq_gguf_array_item(it, 1, &it2));
    uint64_t u = 0;
    KT_CHECK(kq_gguf_array_uint(it2, 0, &u) == KQ_OK && u == 3, "nest.u16[0][1][0] = 3");
    KT_OK(kq_gguf_array_item(it, 0, &it2));
    KT_CHECK(kq_gguf_array_uint(it2, 1, &u) == KQ_OK && u == 2, "nest.u16[0][0][1] = 2");
    KT_OK(kq_gguf_array_item(v, 1, &it));
    KT_OK(kq_gguf_array_item(it, 0, &it2));
    KT_CHECK(kq_gguf_value_array(it2, &et, &n) == KQ_OK && et == KQ_GGUF_U16 && n == 0,
             "nest.u16[1][0] empty u16 array");

    KT_OK(kq_gguf_find_kv(g, "nest.empty", &v));
    KT_CHECK(kq_gguf_value_array(v, &et, &n) == KQ_OK && et == KQ_GGUF_ARRAY && n == 0,
             "nest.empty");
    KT_CHECK(kq_gguf_array_item(v, 0, &it) == KQ_ERR_RANGE, "item 0 of an empty array: range");

    KT_OK(kq_gguf_find_kv(g, "nest.mixed", &v));
    double f = 0;
    int bo = 0;
    KT_OK(kq_gguf_array_item(v, 0, &it));
    KT_CHECK(kq_gguf_array_uint(it, 0, &u) == KQ_OK && u == 7, "mixed[0][0] = 7");
    KT_OK(kq_gguf_array_item(v, 1, &it));
    KT_CHECK(kq_gguf_array_float(it, 0, &f) == KQ_OK && f == 1.5, "mixed[1][0] = 1.5");
    KT_OK(kq_gguf_array_item(v, 2, &it));
    KT_CHECK(kq_gguf_array_bool(it, 0, &bo) == KQ_OK && bo == 1, "mixed[2][0] = true");

    KT_OK(kq_gguf_find_kv(g, "nest.deep", &v));
    int depth = 1;
    while (kq_gguf_value_array(v, &et, &n) == KQ_OK && et == KQ_GGUF_ARRAY) {
        if (kq_gguf_array_item(v, 0, &v) != KQ_OK) break;
        depth++;
    }
    int64_t iv = 0;
    KT_CHECK(depth == 16 && kq_gguf_array_int(v, 0, &iv) == KQ_OK && iv == -7,
             "nest.deep: depth %d, value %lld", depth, (long long)iv);
}

/* ---------------------------------------------------------------- tensors */

typedef struct tspec {
    char name[48];
    int type, n_dims;
    int64_t ne[4];
    uint8_t *data;
    size_t nbytes;
} tspec;

#define N_TENSORS 11

static void make_tensors(tspec *t)
{
    static const struct { int type, n_dims; int64_t ne[4]; } sh[N_TENSORS] = {
        {KQ_TYPE_F32, 1, {64, 1, 1, 1}},      {KQ_TYPE_F16, 2, {32, 3, 1, 1}},
        {KQ_TYPE_BF16, 3, {16, 2, 2, 1}},     {KQ_TYPE_Q8_0, 3, {64, 2, 3, 1}},
        {KQ_TYPE_Q4_0, 2, {32, 5, 1, 1}},     {KQ_TYPE_Q4_K, 2, {256, 2, 1, 1}},
        {KQ_TYPE_Q5_K, 2, {512, 1, 1, 1}},    {KQ_TYPE_Q6_K, 4, {256, 3, 1, 2}},
        {KQ_TYPE_Q2_K, 1, {256, 1, 1, 1}},    {24 /* i8 */, 1, {7, 1, 1, 1}},
        {KQ_TYPE_Q6_K, 2, {256, 1, 1, 1}},
    };
    for (int i = 0; i < N_TENSORS; i++) {
        tspec *s = &t[i];
        snprintf(s->name, sizeof s->name, "blk.%d.%s.weight", i, kq_type_name(sh[i].type));
        s->type = sh[i].type;
        s->n_dims = sh[i].n_dims;
        memcpy(s->ne, sh[i].ne, sizeof s->ne);
        size_t be = (size_t)kq_type_block_elems(s->type), bs = kq_type_block_bytes(s->type);
        s->nbytes = (size_t)s->ne[0] / be * bs * (size_t)(s->ne[1] * s->ne[2] * s->ne[3]);
        s->data = malloc(s->nbytes);
        kt_fill_bytes(s->data, s->nbytes);
    }
    KT_CHECK(t[7].nbytes == 6 * 210, "q6_K [256,3,1,2] is 6 blocks of 210 bytes");
}

static void check_tensors(const tspec *t, const kq_gguf *g, uint64_t align)
{
    KT_CHECK(kq_gguf_n_tensors(g) == N_TENSORS, "n_tensors %lld", (long long)kq_gguf_n_tensors(g));
    const uint8_t *data_base = NULL;
    for (int i = 0; i < N_TENSORS && i < kq_gguf_n_tensors(g); i++) {
        kq_tensor_info ti, tf;
        if (!KT_OK(kq_gguf_tensor(g, i, &ti))) continue;
        KT_CHECK(strcmp(ti.name, t[i].name) == 0, "tensor %d name '%s' want '%s'", i, ti.name,
                 t[i].name);
        KT_CHECK(ti.type == t[i].type && ti.n_dims == t[i].n_dims, "tensor %d type/n_dims", i);
        KT_CHECK(memcmp(ti.ne, t[i].ne, sizeof ti.ne) == 0, "tensor %d ne", i);
        KT_CHECK(ti.nbytes == t[i].nbytes, "tensor %d nbytes %llu want %zu", i,
                 (unsigned long long)ti.nbytes, t[i].nbytes);
        KT_CHECK(ti.offset % align == 0, "tensor %d offset %llu not aligned to %llu", i,
                 (unsigned long long)ti.offset, (unsigned long long)align);
        KT_CHECK(ti.nbytes == t[i].nbytes && memcmp(ti.data, t[i].data, t[i].nbytes) == 0,
                 "tensor %d bytes differ", i);
        const uint8_t *base = (const uint8_t *)ti.data - ti.offset;
        if (!data_base) data_base = base;
        KT_CHECK(base == data_base, "tensor %d: data pointer is not data section + offset", i);
        KT_CHECK(((uintptr_t)ti.data - (uintptr_t)data_base) % align == 0 &&
                     ((uintptr_t)data_base - kq_gguf_data_offset(g)) % 4096 == 0,
                 "tensor %d data not at file offset data_offset + offset", i);
        KT_OK(kq_gguf_find_tensor(g, t[i].name, &tf));
        KT_CHECK(tf.data == ti.data && tf.nbytes == ti.nbytes, "find_tensor '%s' differs", t[i].name);
    }
}

static void free_tensors(tspec *t)
{
    for (int i = 0; i < N_TENSORS; i++) free(t[i].data);
}

/* ---------------------------------------------------------------- round trip */

static void test_round_trip(void)
{
    bb nb = {0};
    build_nested(&nb, 3);
    const char *npath = kt_tmp_path("nested.gguf");
    char *nested_path = dup_str(npath);
    write_bytes(nested_path, nb.p, nb.n);
    b_free(&nb);
    kq_gguf *ng = NULL;
    if (!KT_OK(kq_gguf_open(nested_path, &ng))) {
        free(nested_path);
        return;
    }
    KT_CHECK(kq_gguf_n_tensors(ng) == 0 && kq_gguf_n_kv(ng) == 5, "nested file counts");
    check_nested(ng);

    static const uint32_t aligns[] = {0 /* default 32 */, 64, 1, 4096, 32};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        for (uint32_t version = 2; version <= 3; version++) {
            kq_gguf_writer *w = NULL;
            if (!KT_OK(kq_gguf_writer_new(version, &w))) continue;
            int64_t first = 0;
            if (aligns[a]) {
                KT_OK(kq_gguf_writer_set(w, "general.alignment", KQ_GGUF_U32, &aligns[a]));
                first = 1;
            }
            meta_set *m = calloc(1, sizeof *m);
            make_meta(m, w);
            /* every nested value, copied from the reader */
            for (int64_t i = 0; i < kq_gguf_n_kv(ng); i++)
                KT_OK(kq_gguf_writer_set_value(w, kq_gguf_kv_key(ng, i), kq_gguf_kv_value(ng, i)));
            tspec t[N_TENSORS];
            make_tensors(t);
            for (int i = 0; i < N_TENSORS; i++)
                KT_OK(kq_gguf_writer_add_tensor(w, t[i].name, t[i].type, t[i].n_dims, t[i].ne,
                                                t[i].data, t[i].nbytes));
            char leaf[64];
            snprintf(leaf, sizeof leaf, "rt-a%u-v%u.gguf", aligns[a], version);
            char *path = dup_str(kt_tmp_path(leaf));
            KT_OK(kq_gguf_writer_save(w, path));
            kq_gguf_writer_free(w);

            kq_gguf *g = NULL;
            if (KT_OK(kq_gguf_open(path, &g))) {
                uint64_t align = aligns[a] ? aligns[a] : 32;
                KT_CHECK(kq_gguf_version(g) == version, "version %u want %u", kq_gguf_version(g),
                         version);
                KT_CHECK(kq_gguf_alignment(g) == align, "alignment %llu want %llu",
                         (unsigned long long)kq_gguf_alignment(g), (unsigned long long)align);
                KT_CHECK(kq_gguf_data_offset(g) % align == 0, "data offset %llu not aligned",
                         (unsigned long long)kq_gguf_data_offset(g));
                KT_CHECK(kq_gguf_file_size(g) % align == 0, "file size %llu not padded to %llu",
                         (unsigned long long)kq_gguf_file_size(g), (unsigned long long)align);
                int64_t nkv = first + m->n + kq_gguf_n_kv(ng);
                KT_CHECK(kq_gguf_n_kv(g) == nkv, "n_kv %lld want %lld", (long long)kq_gguf_n_kv(g),
                         (long long)nkv);
                check_meta(m, g, first);
                for (int64_t i = 0; i < kq_gguf_n_kv(ng); i++) {
                    const char *key = kq_gguf_kv_key(ng, i);
                    const kq_gguf_value *v = NULL;
                    KT_OK(kq_gguf_find_kv(g, key, &v));
                    KT_CHECK(v && value_equal(v, kq_gguf_kv_value(ng, i), 0),
                             "nested '%s' differs after a round trip", key);
                }
                check_nested(g);
                check_tensors(t, g, align);
                /* reader -> writer -> reader keeps everything */
                kq_gguf_writer *w2 = NULL;
                KT_OK(kq_gguf_writer_new(version, &w2));
                for (int64_t i = 0; i < kq_gguf_n_kv(g); i++)
                    KT_OK(kq_gguf_writer_set_value(w2, kq_gguf_kv_key(g, i), kq_gguf_kv_value(g, i)));
                for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
                    kq_tensor_info ti;
                    KT_OK(kq_gguf_tensor(g, i, &ti));
                    KT_OK(kq_gguf_writer_add_tensor(w2, ti.name, ti.type, ti.n_dims, ti.ne, ti.data,
                                                    (size_t)ti.nbytes));
                }
                char *path2 = dup_str(kt_tmp_path("rt-copy.gguf"));
                KT_OK(kq_gguf_writer_save(w2, path2));
                kq_gguf_writer_free(w2);
                size_t n1 = 0, n2 = 0;
                uint8_t *f1 = read_all(path, &n1), *f2 = read_all(path2, &n2);
                KT_CHECK(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0,
                         "copy of a file through reader and writer is not byte-identical "
                         "(align %u, v%u, %zu vs %zu bytes)",
                         aligns[a], version, n1, n2);
                free(f1);
                free(f2);
                unlink(path2);
                free(path2);
                kq_gguf_close(g);
            }
            unlink(path);
            free(path);
            free_tensors(t);
            free_meta(m);
            free(m);
        }
    }
    kq_gguf_close(ng);
    unlink(nested_path);
    free(nested_path);
}

/* An empty file from the writer: no keys, no tensors. */
static void test_empty_writer(void)
{
    kq_gguf_writer *w = NULL;
    KT_OK(kq_gguf_writer_new(2, &w));
    char *path = dup_str(kt_tmp_path("empty.gguf"));
    KT_OK(kq_gguf_writer_save(w, path));
    kq_gguf_writer_free(w);
    kq_gguf *g = NULL;
    if (KT_OK(kq_gguf_open(path, &g))) {
        KT_CHECK(kq_gguf_n_kv(g) == 0 && kq_gguf_n_tensors(g) == 0 && kq_gguf_version(g) == 2,
                 "empty file counts");
        KT_CHECK(kq_gguf_data_offset(g) == 32 && kq_gguf_file_size(g) == 32,
                 "empty file: data offset %llu, size %llu", (unsigned long long)kq_gguf_data_offset(g),
                 (unsigned long long)kq_gguf_file_size(g));
        kq_gguf_close(g);
    }
    unlink(path);
    free(path);
}

/* ---------------------------------------------------------------- getters */

static void test_getters(void)
{
    kq_gguf_writer *w = NULL;
    if (!KT_OK(kq_gguf_writer_new(3, &w))) return;
    uint8_t u8 = 200;
    int8_t i8 = -5;
    uint64_t u64max = UINT64_MAX, u64small = 42;
    int64_t i64min = INT64_MIN;
    float f32 = 1.25f;
    double f64 = -2.5;
    uint8_t bo = 1;
    uint32_t arr[3] = {1, 2, 3};
    int16_t neg[2] = {-1, 7};
    KT_OK(kq_gguf_writer_set(w, "u8", KQ_GGUF_U8, &u8));
    KT_OK(kq_gguf_writer_set(w, "i8", KQ_GGUF_I8, &i8));
    KT_OK(kq_gguf_writer_set(w, "u64max", KQ_GGUF_U64, &u64max));
    KT_OK(kq_gguf_writer_set(w, "u64small", KQ_GGUF_U64, &u64small));
    KT_OK(kq_gguf_writer_set(w, "i64min", KQ_GGUF_I64, &i64min));
    KT_OK(kq_gguf_writer_set(w, "f32", KQ_GGUF_F32, &f32));
    KT_OK(kq_gguf_writer_set(w, "f64", KQ_GGUF_F64, &f64));
    KT_OK(kq_gguf_writer_set(w, "bool", KQ_GGUF_BOOL, &bo));
    KT_OK(kq_gguf_writer_set_string(w, "str", "hello", 5));
    KT_OK(kq_gguf_writer_set_array(w, "arr", KQ_GGUF_U32, arr, 3));
    KT_OK(kq_gguf_writer_set_array(w, "neg", KQ_GGUF_I16, neg, 2));
    const char *ss[] = {"x", "yy"};
    KT_OK(kq_gguf_writer_set_string_array(w, "strs", ss, NULL, 2));
    int64_t ne[2] = {32, 2};
    float wdata[64] = {0};
    KT_OK(kq_gguf_writer_add_tensor(w, "w", KQ_TYPE_F32, 2, ne, wdata, sizeof wdata));

    /* writer argument errors */
    KT_CHECK(kq_gguf_writer_set(w, "u8", KQ_GGUF_U8, &u8) == KQ_ERR_INVALID_ARG &&
                 has(kq_last_error(), "'u8'") && has(kq_last_error(), "duplicate"),
             "duplicate key: %s", kq_last_error());
    KT_CHECK(kq_gguf_writer_set_string(w, "str", "x", 1) == KQ_ERR_INVALID_ARG,
             "duplicate string key");
    KT_CHECK(kq_gguf_writer_set(w, "s2", KQ_GGUF_STRING, "x") == KQ_ERR_INVALID_ARG &&
                 has(kq_last_error(), "not a scalar"),
             "set with a string type: %s", kq_last_error());
    KT_CHECK(kq_gguf_writer_set_array(w, "a2", KQ_GGUF_ARRAY, arr, 1) == KQ_ERR_INVALID_ARG,
             "set_array of arrays");
    KT_CHECK(kq_gguf_writer_set_array(w, "a3", KQ_GGUF_U32, NULL, 3) == KQ_ERR_INVALID_ARG,
             "set_array NULL elems");
    KT_CHECK(kq_gguf_writer_set_array(w, "a4", KQ_GGUF_U32, arr, -1) == KQ_ERR_INVALID_ARG,
             "set_array n < 0");
    uint64_t a64 = 64;
    uint32_t a48 = 48, a0 = 0;
    KT_CHECK(kq_gguf_writer_set(w, "general.alignment", KQ_GGUF_U64, &a64) == KQ_ERR_INVALID_ARG &&
                 has(kq_last_error(), "u32"),
             "alignment as u64: %s", kq_last_error());
    KT_CHECK(kq_gguf_writer_set(w, "general.alignment", KQ_GGUF_U32, &a48) == KQ_ERR_INVALID_ARG &&
                 has(kq_last_error(), "power of two"),
             "alignment 48: %s", kq_last_error());
    KT_CHECK(kq_gguf_writer_set(w, "general.alignment", KQ_GGUF_U32, &a0) == KQ_ERR_INVALID_ARG,
             "alignment 0");
    uint32_t a_huge = 1u << 31;
    KT_CHECK(kq_gguf_writer_set(w, "general.alignment", KQ_GGUF_U32, &a_huge) == KQ_ERR_INVALID_ARG &&
                 has(kq_last_error(), "16777216"),
             "alignment 2^31: %s", kq_last_error());
    KT_CHECK(kq_gguf_writer_add_tensor(w, "w", KQ_TYPE_F32, 2, ne, wdata, sizeof wdata) ==
                     KQ_ERR_INVALID_ARG &&
                 has(kq_last_error(), "'w'") && has(kq_last_error(), "duplicate"),
             "duplicate tensor: %s", kq_last_error());
    KT_CHECK(kq_gguf_writer_add_tensor(w, "w2", KQ_TYPE_F32, 2, ne, wdata, sizeof wdata - 4) ==
                     KQ_ERR_INVALID_ARG &&
                 has(kq_last_error(), "nbytes = 252") && has(kq_last_error(), "256"),
             "wrong nbytes: %s", kq_last_error());
    int64_t ne_bad[2] = {100, 1};
    KT_CHECK(kq_gguf_writer_add_tensor(w, "w3", KQ_TYPE_Q4_K, 2, ne_bad, wdata, 144) ==
                     KQ_ERR_INVALID_ARG &&
                 has(kq_last_error(), "multiple"),
             "ne[0] not a block multiple: %s", kq_last_error());
    KT_CHECK(kq_gguf_writer_add_tensor(w, "w4", 99, 2, ne, wdata, sizeof wdata) ==
                 KQ_ERR_INVALID_ARG,
             "unknown tensor type");
    KT_CHECK(kq_gguf_writer_add_tensor(w, "w5", KQ_TYPE_F32, 5, ne, wdata, sizeof wdata) ==
                 KQ_ERR_INVALID_ARG,
             "n_dims 5");
    KT_CHECK(kq_gguf_writer_add_tensor(w, "w6", KQ_TYPE_F32, 0, ne, wdata, sizeof wdata) ==
                 KQ_ERR_INVALID_ARG,
             "n_dims 0");
    int64_t ne0[2] = {32, 0};
    KT_CHECK(kq_gguf_writer_add_tensor(w, "w7", KQ_TYPE_F32, 2, ne0, wdata, 0) == KQ_ERR_INVALID_ARG,
             "zero dimension");
    kq_gguf_writer *w1 = (kq_gguf_writer *)1;
    KT_CHECK(kq_gguf_writer_new(1, &w1) == KQ_ERR_UNSUPPORTED && w1 == NULL, "writer version 1");
    KT_CHECK(kq_gguf_writer_save(w, "/nonexistent-kq-dir/x.gguf") == KQ_ERR_IO &&
                 has(kq_last_error(), "/nonexistent-kq-dir/x.gguf") &&
                 has(kq_last_error(), strerror(ENOENT)),
             "save into a missing folder: %s", kq_last_error());

    char *path = dup_str(kt_tmp_path("getters.gguf"));
    KT_OK(kq_gguf_writer_save(w, path));
    KT_CHECK(kq_last_error()[0] == '\0', "message cleared after success: '%s'", kq_last_error());
    kq_gguf_writer_free(w);
    kq_gguf *g = NULL;
    if (!KT_OK(kq_gguf_open(path, &g))) {
        free(path);
        return;
    }
    int64_t i = 0;
    uint64_t u = 0;
    double f = 0;
    int b = 0;
    const char *s = NULL;
    size_t len = 0;
    const kq_gguf_value *v = NULL;

    KT_CHECK(kq_gguf_get_int(g, "u8", &i) == KQ_OK && i == 200, "u8 as int");
    KT_CHECK(kq_gguf_get_uint(g, "u8", &u) == KQ_OK && u == 200, "u8 as uint");
    KT_CHECK(kq_gguf_get_int(g, "i8", &i) == KQ_OK && i == -5, "i8 as int");
    KT_CHECK(kq_gguf_get_uint(g, "i8", &u) == KQ_ERR_RANGE && has(kq_last_error(), "'i8'") &&
                 has(kq_last_error(), "-5"),
             "negative to uint: %s", kq_last_error());
    KT_CHECK(kq_gguf_get_int(g, "u64max", &i) == KQ_ERR_RANGE && has(kq_last_error(), "u64max") &&
                 has(kq_last_error(), "18446744073709551615"),
             "u64 max to int: %s", kq_last_error());
    KT_CHECK(kq_gguf_get_uint(g, "u64max", &u) == KQ_OK && u == UINT64_MAX, "u64 max");
    KT_CHECK(kq_gguf_get_int(g, "u64small", &i) == KQ_OK && i == 42, "small u64 to int");
    KT_CHECK(kq_gguf_get_int(g, "i64min", &i) == KQ_OK && i == INT64_MIN, "i64 min");
    KT_CHECK(kq_gguf_get_float(g, "f32", &f) == KQ_OK && f == 1.25, "f32");
    KT_CHECK(kq_gguf_get_float(g, "f64", &f) == KQ_OK && f == -2.5, "f64");
    KT_CHECK(kq_gguf_get_int(g, "f32", &i) == KQ_ERR_TYPE && has(kq_last_error(), "'f32'") &&
                 has(kq_last_error(), "not an integer"),
             "float as int: %s", kq_last_error());
    KT_CHECK(kq_gguf_get_float(g, "u8", &f) == KQ_ERR_TYPE && has(kq_last_error(), "u8"),
             "int as float: %s", kq_last_error());
    KT_CHECK(kq_gguf_get_bool(g, "bool", &b) == KQ_OK && b == 1, "bool");
    KT_CHECK(kq_gguf_get_int(g, "bool", &i) == KQ_ERR_TYPE, "bool as int");
    KT_CHECK(kq_gguf_get_bool(g, "u8", &b) == KQ_ERR_TYPE && has(kq_last_error(), "not bool"),
             "int as bool: %s", kq_last_error());
    KT_CHECK(kq_gguf_get_string(g, "str", &s, &len) == KQ_OK && len == 5 && !memcmp(s, "hello", 5),
             "string");
    KT_CHECK(kq_gguf_get_string(g, "u8", &s, &len) == KQ_ERR_TYPE &&
                 has(kq_last_error(), "not string"),
             "int as string: %s", kq_last_error());
    KT_CHECK(kq_gguf_get_int(g, "str", &i) == KQ_ERR_TYPE && has(kq_last_error(), "string"),
             "string as int: %s", kq_last_error());
    KT_CHECK(kq_gguf_get_int(g, "missing.key", &i) == KQ_ERR_NOT_FOUND &&
                 has(kq_last_error(), "'missing.key'"),
             "missing key: %s", kq_last_error());
    KT_CHECK(kq_gguf_find_kv(g, "nope", &v) == KQ_ERR_NOT_FOUND && has(kq_last_error(), "'nope'"),
             "find_kv missing: %s", kq_last_error());

    KT_OK(kq_gguf_find_kv(g, "arr", &v));
    kq_gguf_vtype et;
    int64_t n;
    KT_CHECK(kq_gguf_value_array(v, &et, &n) == KQ_OK && et == KQ_GGUF_U32 && n == 3, "arr");
    KT_CHECK(kq_gguf_array_int(v, 2, &i) == KQ_OK && i == 3, "arr[2]");
    KT_CHECK(kq_gguf_array_float(v, 0, &f) == KQ_ERR_TYPE && has(kq_last_error(), "element 0"),
             "arr float: %s", kq_last_error());
    KT_CHECK(kq_gguf_array_int(v, 3, &i) == KQ_ERR_RANGE && has(kq_last_error(), "'arr'") &&
                 has(kq_last_error(), "3"),
             "arr[3]: %s", kq_last_error());
    KT_CHECK(kq_gguf_array_int(v, -1, &i) == KQ_ERR_RANGE, "arr[-1]");
    KT_CHECK(kq_gguf_array_string(v, 0, &s, &len) == KQ_ERR_TYPE, "string of a u32 array");
    const kq_gguf_value *item;
    KT_CHECK(kq_gguf_array_item(v, 0, &item) == KQ_ERR_TYPE, "item of a u32 array");
    KT_CHECK(kq_gguf_value_int(v, &i) == KQ_ERR_TYPE && has(kq_last_error(), "array"),
             "array as int: %s", kq_last_error());
    KT_OK(kq_gguf_find_kv(g, "neg", &v));
    KT_CHECK(kq_gguf_array_uint(v, 0, &u) == KQ_ERR_RANGE && has(kq_last_error(), "element 0"),
             "neg[0] as uint: %s", kq_last_error());
    KT_CHECK(kq_gguf_array_uint(v, 1, &u) == KQ_OK && u == 7, "neg[1] as uint");
    KT_OK(kq_gguf_find_kv(g, "strs", &v));
    KT_CHECK(kq_gguf_array_string(v, 1, &s, &len) == KQ_OK && len == 2 && !memcmp(s, "yy", 2),
             "strs[1]");
    KT_CHECK(kq_gguf_array_int(v, 0, &i) == KQ_ERR_TYPE, "int of a string array");
    KT_OK(kq_gguf_find_kv(g, "u8", &v));
    KT_CHECK(kq_gguf_value_array(v, &et, &n) == KQ_ERR_TYPE && has(kq_last_error(), "not array"),
             "scalar as array: %s", kq_last_error());
    KT_CHECK(kq_gguf_array_int(v, 0, &i) == KQ_ERR_TYPE, "array_int on a scalar");
    KT_CHECK(kq_gguf_value_int(v, NULL) == KQ_ERR_INVALID_ARG, "NULL out");

    kq_tensor_info ti;
    KT_CHECK(kq_gguf_find_tensor(g, "nope.weight", &ti) == KQ_ERR_NOT_FOUND &&
                 has(kq_last_error(), "'nope.weight'"),
             "missing tensor: %s", kq_last_error());
    KT_CHECK(kq_gguf_tensor(g, 1, &ti) == KQ_ERR_RANGE, "tensor index out of range");
    KT_CHECK(kq_gguf_tensor(g, -1, &ti) == KQ_ERR_RANGE, "tensor index -1");
    KT_CHECK(kq_gguf_kv_key(g, -1) == NULL && kq_gguf_kv_key(g, kq_gguf_n_kv(g)) == NULL,
             "kv_key out of range");
    KT_CHECK(kq_gguf_kv_value(g, kq_gguf_n_kv(g)) == NULL, "kv_value out of range");

    /* NULL handles */
    KT_CHECK(kq_gguf_n_kv(NULL) == 0 && kq_gguf_n_tensors(NULL) == 0 && kq_gguf_version(NULL) == 0 &&
                 kq_gguf_alignment(NULL) == 0 && kq_gguf_data_offset(NULL) == 0 &&
                 kq_gguf_file_size(NULL) == 0 && kq_gguf_kv_key(NULL, 0) == NULL &&
                 kq_gguf_kv_value(NULL, 0) == NULL,
             "plain accessors on NULL");
    KT_CHECK(kq_gguf_get_int(NULL, "u8", &i) == KQ_ERR_INVALID_ARG, "get_int(NULL)");
    KT_CHECK(kq_gguf_get_string(NULL, "u8", &s, &len) == KQ_ERR_INVALID_ARG, "get_string(NULL)");
    KT_CHECK(kq_gguf_find_kv(g, NULL, &v) == KQ_ERR_INVALID_ARG, "find_kv(NULL key)");
    KT_CHECK(kq_gguf_find_tensor(NULL, "w", &ti) == KQ_ERR_INVALID_ARG, "find_tensor(NULL)");
    KT_CHECK(kq_gguf_tensor(NULL, 0, &ti) == KQ_ERR_INVALID_ARG, "tensor(NULL)");
    KT_CHECK(kq_gguf_value_int(NULL, &i) == KQ_ERR_INVALID_ARG, "value_int(NULL)");
    KT_CHECK(kq_gguf_value_string(NULL, &s, &len) == KQ_ERR_INVALID_ARG, "value_string(NULL)");
    KT_CHECK(kq_gguf_array_item(NULL, 0, &item) == KQ_ERR_INVALID_ARG, "array_item(NULL)");
    KT_CHECK(kq_gguf_value_array(NULL, &et, &n) == KQ_ERR_INVALID_ARG, "value_array(NULL)");
    KT_CHECK(kq_gguf_writer_set(NULL, "k", KQ_GGUF_U8, &u8) == KQ_ERR_INVALID_ARG, "set(NULL)");
    KT_CHECK(kq_gguf_writer_save(NULL, path) == KQ_ERR_INVALID_ARG, "save(NULL)");
    KT_CHECK(kq_gguf_open(path, NULL) == KQ_ERR_INVALID_ARG, "open(out NULL)");
    kq_gguf *g2 = (kq_gguf *)1;
    KT_CHECK(kq_gguf_open(NULL, &g2) == KQ_ERR_INVALID_ARG && g2 == NULL, "open(NULL path)");
    kq_gguf_close(NULL);
    kq_gguf_writer_free(NULL);

    KT_CHECK(kq_gguf_vtype_name(KQ_GGUF_U32) && !strcmp(kq_gguf_vtype_name(KQ_GGUF_U32), "u32") &&
                 !strcmp(kq_gguf_vtype_name(KQ_GGUF_ARRAY), "array") &&
                 !strcmp(kq_gguf_vtype_name(KQ_GGUF_F64), "f64") && kq_gguf_vtype_name(13) == NULL &&
                 kq_gguf_vtype_name(-1) == NULL,
             "vtype names");

    kq_gguf_close(g);
    unlink(path);
    free(path);
}

/* ---------------------------------------------------------------- mapping */

static int maps_contain(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, path)) found = 1;
    fclose(f);
    return found;
}

typedef struct th_arg {
    const void *p;
    size_t n;
    int ok;
} th_arg;

static void *th_find(void *arg)
{
    th_arg *a = arg;
    a->ok = 1;
    for (int k = 0; k < 20000; k++) {
        kq_mapping *m = kq__mapping_find(a->p, a->n);
        if (!m) {
            a->ok = 0;
            break;
        }
        kq__mapping_retain(m);
        kq__mapping_release(m);
        kq__mapping_release(m);
    }
    return NULL;
}

static void test_mapping(void)
{
    kq_gguf_writer *w = NULL;
    if (!KT_OK(kq_gguf_writer_new(3, &w))) return;
    int64_t ne[2] = {256, 4};
    size_t nbytes = 4 * 210;
    uint8_t *data = malloc(nbytes);
    kt_fill_bytes(data, nbytes);
    KT_OK(kq_gguf_writer_add_tensor(w, "q6", KQ_TYPE_Q6_K, 2, ne, data, nbytes));
    char *path = dup_str(kt_tmp_path("mapping.gguf"));
    char *real = NULL;
    KT_OK(kq_gguf_writer_save(w, path));
    kq_gguf_writer_free(w);
    real = realpath(path, NULL);

    int64_t live0 = kq__mapping_live_count();
    kq_gguf *g = NULL;
    if (!KT_OK(kq_gguf_open(path, &g))) goto out;
    KT_CHECK(kq__mapping_live_count() == live0 + 1, "open registers one mapping");
    kq_tensor_info ti;
    KT_OK(kq_gguf_tensor(g, 0, &ti));
    kq_mapping *m = kq__mapping_find(ti.data, (size_t)ti.nbytes);
    KT_CHECK(m != NULL, "find: the tensor's bytes are in a registered mapping");
    KT_CHECK(m && kq__mapping_size(m) == kq_gguf_file_size(g) &&
                 kq__mapping_data(m) + kq_gguf_data_offset(g) + ti.offset == ti.data,
             "mapping covers the whole file");
    KT_CHECK(kq__mapping_find(ti.data, (size_t)(kq_gguf_file_size(g) + 1)) == NULL,
             "find: a range longer than the file is in no mapping");
    KT_CHECK(kq__mapping_find(data, nbytes) == NULL, "find: heap bytes are in no mapping");
    KT_CHECK(kq__mapping_find(NULL, 1) == NULL, "find(NULL)");
    if (m) {
        const uint8_t *end = kq__mapping_data(m) + kq__mapping_size(m);
        kq_mapping *m2 = kq__mapping_find(end - 1, 1);
        KT_CHECK(m2 == m, "find: the last byte");
        kq__mapping_release(m2);
        KT_CHECK(kq__mapping_find(end - 1, 2) == NULL, "find: one byte past the end");
    }

    /* a second open of the same file is a second mapping */
    kq_gguf *g2 = NULL;
    KT_OK(kq_gguf_open(path, &g2));
    KT_CHECK(kq__mapping_live_count() == live0 + 2, "second open: second mapping");
    kq_gguf_close(g2);
    KT_CHECK(kq__mapping_live_count() == live0 + 1, "close of the second");

    /* concurrent find/retain/release */
    pthread_t th[4];
    th_arg args[4];
    for (int k = 0; k < 4; k++) {
        args[k].p = ti.data;
        args[k].n = (size_t)ti.nbytes;
        pthread_create(&th[k], NULL, th_find, &args[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        KT_CHECK(args[k].ok, "thread %d: find failed", k);
    }

    const void *tdata = ti.data;
    kq_gguf_close(g);
    KT_CHECK(kq__mapping_live_count() == live0 + 1, "a reference keeps the mapping after close");
    KT_CHECK(memcmp(tdata, data, nbytes) == 0, "tensor bytes readable after kq_gguf_close");
    if (real) KT_CHECK(maps_contain(real) == 1, "the file is still mapped");
    kq__mapping_release(m);
    KT_CHECK(kq__mapping_live_count() == live0, "the last release unregisters the mapping");
    if (real) KT_CHECK(maps_contain(real) == 0, "the last release unmaps the file");
    KT_CHECK(kq__mapping_find(tdata, 1) == NULL, "find after unmap");
    kq__mapping_release(NULL);

    /* a file that failed to parse leaves no mapping behind */
    write_bytes(path, "GGUF\x01\0\0\0", 8);
    KT_CHECK(kq_gguf_open(path, &g) != KQ_OK && kq__mapping_live_count() == live0,
             "a failed open releases its mapping");
out:
    unlink(path);
    free(path);
    free(real);
    free(data);
}

/* ---------------------------------------------------------------- malformed files */

static int g_classes;
static int g_print_errors;

/* Writes the bytes, opens them: the status and every given substring must
 * be in the message, and the message names the file. */
static void expect_bad(const char *cls, const bb *b, kq_status want, const char *sub1,
                       const char *sub2, const char *sub3)
{
    char leaf[96];
    snprintf(leaf, sizeof leaf, "bad-%d.gguf", g_classes);
    char *path = dup_str(kt_tmp_path(leaf));
    if (write_bytes(path, b->p, b->n) != 0) {
        KT_CHECK(0, "%s: cannot write %s", cls, path);
        free(path);
        return;
    }
    kq_gguf *g = (kq_gguf *)1;
    kq_status s = kq_gguf_open(path, &g);
    const char *msg = kq_last_error();
    KT_CHECK(s == want, "%s: status %s, want %s: %s", cls, kq_status_name(s), kq_status_name(want),
             msg);
    KT_CHECK(g == NULL, "%s: handle not NULL after failure", cls);
    KT_CHECK(has(msg, path), "%s: message does not name the file: %s", cls, msg);
    KT_CHECK(has(msg, sub1), "%s: message lacks '%s': %s", cls, sub1, msg);
    KT_CHECK(has(msg, sub2), "%s: message lacks '%s': %s", cls, sub2, msg);
    KT_CHECK(has(msg, sub3), "%s: message lacks '%s': %s", cls, sub3, msg);
    if (g_print_errors) {
        const char *short_msg = strstr(msg, "' ");
        printf("| %s | %s | %s |\n", cls, kq_status_name(s), short_msg ? short_msg + 2 : msg);
    }
    if (s == KQ_OK && g) kq_gguf_close(g);
    unlink(path);
    free(path);
    g_classes++;
}

static char *at(size_t off)
{
    static char buf[8][48];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, sizeof buf[0], "byte offset %zu ", off);
    return p;
}

static void test_malformed(void)
{
    bb b = {0};
    size_t o;
    ti_pos tp;
    uint64_t ne1[1] = {32}, ne2[2] = {32, 2};

    /* ---- container */
    expect_bad("empty file", &b, KQ_ERR_FORMAT, "empty (0 bytes)", NULL, NULL);

    b_put(&b, "GGU", 3);
    expect_bad("shorter than the magic", &b, KQ_ERR_FORMAT, "truncated", "the magic", at(0));
    b_free(&b);

    b_put(&b, "GGML", 4);
    b_u32(&b, 3);
    b_u64(&b, 0);
    b_u64(&b, 0);
    expect_bad("bad magic", &b, KQ_ERR_FORMAT, "bad magic 0x47 0x47 0x4d 0x4c", "not a GGUF file",
               at(0));
    b_free(&b);

    b_hdr(&b, 1, 0, 0);
    expect_bad("version 1", &b, KQ_ERR_UNSUPPORTED, "unsupported GGUF version 1", at(4), "header");
    b_free(&b);

    b_hdr(&b, 4, 0, 0);
    expect_bad("version 4", &b, KQ_ERR_UNSUPPORTED, "unsupported GGUF version 4", at(4), NULL);
    b_free(&b);

    b_hdr(&b, 0x03000000u, 0, 0);
    expect_bad("big-endian file", &b, KQ_ERR_UNSUPPORTED, "big-endian", "0x03000000", at(4));
    b_free(&b);

    b_put(&b, "GGUF", 4);
    b_u32(&b, 3);
    b_u64(&b, 0);
    b_u32(&b, 0);
    expect_bad("truncated key/value count", &b, KQ_ERR_FORMAT, "truncated", "key/value count", at(16));
    b_free(&b);

    /* Each field of the header and of a key/value or tensor info cut short:
     * the message names the field, the bytes it needs and has, and where. */
    b_put(&b, "GGUF", 4);
    b_u16(&b, 3);
    expect_bad("truncated version", &b, KQ_ERR_FORMAT,
               "file truncated: the version needs 4 bytes, only 2 left", at(4), "(header)");
    b_free(&b);

    b_put(&b, "GGUF", 4);
    b_u32(&b, 3);
    b_u32(&b, 0);
    expect_bad("truncated tensor count", &b, KQ_ERR_FORMAT,
               "file truncated: the tensor count needs 8 bytes, only 4 left", at(8), "(header)");
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    b_str(&b, "general.name");
    o = b.n;
    b_u16(&b, KQ_GGUF_STRING);
    expect_bad("truncated value type", &b, KQ_ERR_FORMAT,
               "file truncated: value type needs 4 bytes, only 2 left", "kv 0 'general.name'",
               at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "tokenizer.ggml.scores", KQ_GGUF_ARRAY) + 4;
    b_u16(&b, KQ_GGUF_F32);
    expect_bad("truncated array element type", &b, KQ_ERR_FORMAT,
               "file truncated: array element type needs 4 bytes, only 2 left",
               "kv 0 'tokenizer.ggml.scores'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "tokenizer.ggml.scores", KQ_GGUF_ARRAY) + 8;
    b_u32(&b, KQ_GGUF_F32);
    b_put(&b, "\x05\x00\x00", 3);
    expect_bad("truncated array length", &b, KQ_ERR_FORMAT,
               "file truncated: array length needs 8 bytes, only 3 left",
               "kv 0 'tokenizer.ggml.scores'", at(o));
    b_free(&b);

    /* Tensor infos: the name is long enough that the header's count check
     * (32 bytes per tensor info) passes and the cut field is reached. */
    static const char long_name[] = "blk.0.ffn_down_exps.weight.part";
    b_hdr(&b, 3, 1, 0);
    b_u64(&b, 40);
    b_put(&b, long_name, 30);
    expect_bad("truncated tensor name", &b, KQ_ERR_FORMAT,
               "tensor name length 40 exceeds the 30 bytes left in the file", "tensor 0 name",
               at(24));
    b_free(&b);

    b_hdr(&b, 3, 1, 0);
    b_str(&b, long_name);
    o = b.n;
    b_u16(&b, 2);
    expect_bad("truncated n_dims", &b, KQ_ERR_FORMAT, "file truncated: n_dims needs 4 bytes, only 2 left",
               "tensor 0 'blk.0.ffn_down_exps.weight.part'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 1, 0);
    b_str(&b, long_name);
    b_u32(&b, 2);
    b_u64(&b, 256);
    o = b.n;
    b_u32(&b, 4);
    expect_bad("truncated dimension", &b, KQ_ERR_FORMAT,
               "file truncated: a dimension needs 8 bytes, only 4 left",
               "tensor 0 'blk.0.ffn_down_exps.weight.part'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 1, 0);
    b_str(&b, long_name);
    b_u32(&b, 1);
    b_u64(&b, 256);
    o = b.n;
    b_u16(&b, KQ_TYPE_Q4_K);
    expect_bad("truncated tensor type", &b, KQ_ERR_FORMAT,
               "file truncated: tensor type needs 4 bytes, only 2 left",
               "tensor 0 'blk.0.ffn_down_exps.weight.part'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1ull << 60);
    b_zeros(&b, 64);
    expect_bad("huge n_kv", &b, KQ_ERR_FORMAT, "n_kv = 1152921504606846976", "cannot fit", at(16));
    b_free(&b);

    b_hdr(&b, 3, 1ull << 60, 0);
    b_zeros(&b, 64);
    expect_bad("huge n_tensors", &b, KQ_ERR_FORMAT, "n_tensors = 1152921504606846976", "cannot fit",
               at(8));
    b_free(&b);

    b_hdr(&b, 3, 1, 2);
    b_zeros(&b, 40);
    expect_bad("counts that cannot fit together", &b, KQ_ERR_FORMAT, "cannot both fit", at(8), NULL);
    b_free(&b);

    /* ---- metadata */
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 1ull << 63);
    b_zeros(&b, 16);
    expect_bad("huge key length", &b, KQ_ERR_FORMAT, "key length 9223372036854775808", "exceeds",
               "kv 0 key");
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b.n;
    b_strn(&b, "ab\0c", 4);
    b_u32(&b, KQ_GGUF_U8);
    b_u8(&b, 1);
    expect_bad("key with a NUL byte", &b, KQ_ERR_FORMAT, "key contains a NUL byte at position 2",
               "kv 0 key", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 3);
    b_kv_u32(&b, "a.b", 1);
    b_kv_u32(&b, "c", 2);
    o = b.n;
    b_kv_u32(&b, "a.b", 3);
    expect_bad("duplicate key", &b, KQ_ERR_FORMAT, "duplicate key 'a.b' (first at kv 0)",
               "kv 2 'a.b'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "x.y", 13);
    b_u32(&b, 0);
    expect_bad("unknown value type", &b, KQ_ERR_FORMAT, "unknown value type id 13", "kv 0 'x.y'",
               at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "arr", KQ_GGUF_ARRAY) + 4;
    b_u32(&b, 99);
    b_u64(&b, 0);
    expect_bad("unknown array element type", &b, KQ_ERR_FORMAT, "unknown array element type id 99",
               "kv 0 'arr'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "s", KQ_GGUF_STRING) + 4;
    b_u64(&b, 1ull << 62);
    b_put(&b, "abc", 3);
    expect_bad("huge string length", &b, KQ_ERR_FORMAT, "string value length 4611686018427387904",
               "exceeds the 3 bytes left", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "a", KQ_GGUF_ARRAY) + 8;
    b_u32(&b, KQ_GGUF_U32);
    b_u64(&b, 1ull << 40);
    b_zeros(&b, 16);
    expect_bad("huge array length", &b, KQ_ERR_FORMAT, "array length 1099511627776 of u32",
               "cannot fit", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "toks", KQ_GGUF_ARRAY) + 8;
    b_u32(&b, KQ_GGUF_STRING);
    b_u64(&b, 1000);
    b_str(&b, "x");
    expect_bad("huge string array count", &b, KQ_ERR_FORMAT, "array length 1000 of string",
               "kv 0 'toks'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "aa", KQ_GGUF_ARRAY) + 8;
    b_u32(&b, KQ_GGUF_ARRAY);
    b_u64(&b, 1ull << 50);
    b_zeros(&b, 24);
    expect_bad("huge array-of-arrays count", &b, KQ_ERR_FORMAT, "of array elements cannot fit",
               "kv 0 'aa'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    b_key(&b, "toks", KQ_GGUF_ARRAY);
    b_u32(&b, KQ_GGUF_STRING);
    b_u64(&b, 2);
    b_str(&b, "ok");
    o = b.n;
    b_u64(&b, 1000);
    b_zeros(&b, 8);
    expect_bad("string array element past the end", &b, KQ_ERR_FORMAT,
               "string array element length 1000", "kv 0 'toks'", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    b_key(&b, "deep", KQ_GGUF_ARRAY);
    for (int d = 0; d < 16; d++) {
        if (d == 15) o = b.n;
        b_u32(&b, KQ_GGUF_ARRAY);
        b_u64(&b, 1);
    }
    b_u32(&b, KQ_GGUF_U8);
    b_u64(&b, 0);
    expect_bad("arrays nested too deep", &b, KQ_ERR_FORMAT, "nested deeper than 16 levels",
               "kv 0 'deep'", at(o + 12));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b_key(&b, "big", KQ_GGUF_U64) + 4;
    b_put(&b, "abc", 3);
    expect_bad("truncated scalar value", &b, KQ_ERR_FORMAT, "truncated: u64 value needs 8 bytes",
               "only 3 left", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 2);
    b_kv_u32(&b, "aaaaaaaaaa", 1);
    o = b.n;
    b_u32(&b, 5);
    expect_bad("truncated key length", &b, KQ_ERR_FORMAT, "truncated", "length of key", at(o));
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    o = b.n;
    b_key(&b, "general.alignment", KQ_GGUF_U64);
    b_u64(&b, 64);
    b_pad(&b, 32);
    expect_bad("alignment not u32", &b, KQ_ERR_FORMAT, "general.alignment has type u64, must be u32",
               at(o), "'general.alignment'");
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 0);
    expect_bad("alignment 0", &b, KQ_ERR_FORMAT, "general.alignment = 0 is not a power of two",
               at(24), NULL);
    b_free(&b);

    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 48);
    expect_bad("alignment not a power of two", &b, KQ_ERR_FORMAT,
               "general.alignment = 48 is not a power of two", at(24), NULL);
    b_free(&b);

    /* Issue 17, defect 5: a huge alignment is refused whatever the tensor
     * count (with none, it once passed, and kq quantize padded its output
     * to 2 GiB). 2^24 is the largest accepted. */
    for (uint64_t n_t = 0; n_t <= 1; n_t++) {
        static const uint32_t huge[] = {1u << 31, 1u << 25};
        for (int h = 0; h < 2; h++) {
            uint64_t ne_one[1] = {32};
            b_hdr(&b, 3, n_t, 1);
            b_kv_u32(&b, "general.alignment", huge[h]);
            if (n_t) b_ti(&b, "a", 1, ne_one, KQ_TYPE_F32, 0);
            b_zeros(&b, 128);
            char want[96];
            snprintf(want, sizeof want, "general.alignment = %u exceeds the largest supported (16777216)",
                     huge[h]);
            expect_bad("alignment too large", &b, KQ_ERR_FORMAT, want, at(24), NULL);
            b_free(&b);
        }
    }
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 1u << 24);
    {
        char path[512];
        snprintf(path, sizeof path, "%s", kt_tmp_path("align-max.gguf"));
        kq_gguf *g = NULL;
        KT_CHECK(write_bytes(path, b.p, b.n) == 0, "write %s", path);
        KT_CHECK(kq_gguf_open(path, &g) == KQ_OK && kq_gguf_alignment(g) == (1u << 24),
                 "alignment 2^24 is accepted: %s", kq_last_error());
        kq_gguf_close(g);
        remove(path);
    }
    b_free(&b);

    /* ---- tensor infos */
    b_hdr(&b, 3, 1, 0);
    o = b.n;
    b_strn(&b, "w\0x", 3);
    b_u32(&b, 1);
    b_u64(&b, 32);
    b_u32(&b, 0);
    b_u64(&b, 0);
    b_pad(&b, 32);
    b_zeros(&b, 128);
    expect_bad("tensor name with a NUL byte", &b, KQ_ERR_FORMAT,
               "tensor name contains a NUL byte at position 1", "tensor 0 name", at(o));
    b_free(&b);

    b_hdr(&b, 3, 2, 0);
    b_ti(&b, "w", 1, ne1, KQ_TYPE_F32, 0);
    tp = b_ti(&b, "w", 1, ne1, KQ_TYPE_F32, 128);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_bad("duplicate tensor name", &b, KQ_ERR_FORMAT, "duplicate tensor name 'w' (first at tensor 0)",
               "tensor 1 'w'", at(tp.start));
    b_free(&b);

    b_hdr(&b, 3, 1, 0);
    tp = b_ti(&b, "w", 0, ne1, KQ_TYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 128);
    expect_bad("n_dims 0", &b, KQ_ERR_FORMAT, "n_dims = 0, must be 1 to 4", "tensor 0 'w'",
               at(tp.ndims));
    b_free(&b);

    {
        uint64_t ne5[5] = {32, 1, 1, 1, 1};
        b_hdr(&b, 3, 1, 0);
        tp = b_ti(&b, "w5", 5, ne5, KQ_TYPE_F32, 0);
        b_pad(&b, 32);
        b_zeros(&b, 128);
        expect_bad("n_dims 5", &b, KQ_ERR_FORMAT, "n_dims = 5, must be 1 to 4", "tensor 0 'w5'",
                   at(tp.ndims));
        b_free(&b);
    }

    {
        uint64_t ne[3] = {32, 0, 2};
        b_hdr(&b, 3, 1, 0);
        tp = b_ti(&b, "z", 3, ne, KQ_TYPE_F32, 0);
        b_pad(&b, 32);
        b_zeros(&b, 128);
        expect_bad("zero dimension", &b, KQ_ERR_FORMAT, "dimension ne[1] is 0", "tensor 0 'z'",
                   at(tp.ne[1]));
        b_free(&b);
    }

    {
        uint64_t ne[3] = {1ull << 32, 1ull << 30, 4};
        b_hdr(&b, 3, 1, 0);
        tp = b_ti(&b, "big", 3, ne, KQ_TYPE_F32, 0);
        b_pad(&b, 32);
        expect_bad("element count overflow", &b, KQ_ERR_FORMAT, "element count overflows int64",
                   "tensor 0 'big'", at(tp.ne[2]));
        b_free(&b);
    }

    {
        uint64_t ne[2] = {32, 1ull << 63};
        b_hdr(&b, 3, 1, 0);
        tp = b_ti(&b, "huge", 2, ne, KQ_TYPE_F32, 0);
        b_pad(&b, 32);
        expect_bad("dimension above INT64_MAX", &b, KQ_ERR_FORMAT,
                   "ne[1] = 9223372036854775808 exceeds INT64_MAX", "tensor 0 'huge'", at(tp.ne[1]));
        b_free(&b);
    }

    {
        uint64_t ne[2] = {1ull << 61, 2};
        b_hdr(&b, 3, 1, 0);
        tp = b_ti(&b, "f64", 2, ne, 28 /* f64: 8 bytes per element */, 0);
        b_pad(&b, 32);
        expect_bad("byte size overflow", &b, KQ_ERR_FORMAT, "byte size of f64", "overflows 64 bits",
                   at(tp.type));
        b_free(&b);
    }

    {
        uint64_t ne[2] = {100, 2};
        b_hdr(&b, 3, 1, 0);
        tp = b_ti(&b, "blk.0.ffn_up.weight", 2, ne, KQ_TYPE_Q4_K, 0);
        b_pad(&b, 32);
        b_zeros(&b, 512);
        expect_bad("ne[0] not a multiple of the block", &b, KQ_ERR_FORMAT,
                   "ne[0] = 100 is not a multiple of the q4_K block size 256",
                   "tensor 0 'blk.0.ffn_up.weight'", at(tp.type));
        b_free(&b);
    }

    b_hdr(&b, 3, 1, 0);
    tp = b_ti(&b, "w", 2, ne2, 99, 0);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_bad("unknown tensor type", &b, KQ_ERR_FORMAT, "unknown tensor type id 99", "tensor 0 'w'",
               at(tp.type));
    b_free(&b);

    b_hdr(&b, 3, 1, 0);
    tp = b_ti(&b, "w", 2, ne2, 4 /* removed q4_2 */, 0);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_bad("removed tensor type", &b, KQ_ERR_FORMAT, "unknown tensor type id 4", "tensor 0 'w'",
               at(tp.type));
    b_free(&b);

    b_hdr(&b, 3, 2, 0);
    b_ti(&b, "tensor.a.w", 1, ne1, KQ_TYPE_F32, 0);
    tp = b_ti(&b, "tensor.b.w", 1, ne1, KQ_TYPE_F32, 0);
    b.n -= 5; /* cut the offset field short */
    expect_bad("truncated tensor info", &b, KQ_ERR_FORMAT, "truncated: tensor data offset needs 8",
               "tensor 1 'tensor.b.w'", at(tp.offset));
    b_free(&b);

    /* ---- tensor data */
    b_hdr(&b, 3, 2, 0);
    b_ti(&b, "a", 1, ne1, KQ_TYPE_F32, 0);
    tp = b_ti(&b, "b", 1, ne1, KQ_TYPE_F32, 136);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_bad("misaligned offset", &b, KQ_ERR_FORMAT,
               "data offset 136 is not a multiple of the alignment 32", "tensor 1 'b'",
               at(tp.offset));
    b_free(&b);

    b_hdr(&b, 3, 1, 1);
    b_kv_u32(&b, "general.alignment", 64);
    tp = b_ti(&b, "a", 1, ne1, KQ_TYPE_F32, 32);
    b_pad(&b, 64);
    b_zeros(&b, 256);
    expect_bad("offset misaligned for a custom alignment", &b, KQ_ERR_FORMAT,
               "data offset 32 is not a multiple of the alignment 64", "tensor 0 'a'",
               at(tp.offset));
    b_free(&b);

    b_hdr(&b, 3, 2, 0);
    b_ti(&b, "a", 1, ne1, KQ_TYPE_F32, 0);
    tp = b_ti(&b, "b", 2, ne2, KQ_TYPE_F32, 128);
    b_pad(&b, 32);
    b_zeros(&b, 128 + 200);
    expect_bad("tensor data past the end", &b, KQ_ERR_FORMAT,
               "data at offset 128 + 256 bytes extends past the end of the file", "tensor 1 'b'",
               at(tp.offset));
    b_free(&b);

    b_hdr(&b, 3, 1, 0);
    tp = b_ti(&b, "far", 1, ne1, KQ_TYPE_F32, 0xFFFFFFFFFFFFFFE0ull);
    b_pad(&b, 32);
    b_zeros(&b, 128);
    expect_bad("tensor offset far past the end", &b, KQ_ERR_FORMAT,
               "data at offset 18446744073709551584", "extends past the end", at(tp.offset));
    b_free(&b);

    b_hdr(&b, 3, 3, 0);
    b_ti(&b, "a", 2, ne2, KQ_TYPE_F32, 0);
    b_ti(&b, "c", 1, ne1, KQ_TYPE_F32, 512);
    tp = b_ti(&b, "b", 1, ne1, KQ_TYPE_F32, 128);
    b_pad(&b, 32);
    b_zeros(&b, 1024);
    expect_bad("overlapping tensors", &b, KQ_ERR_FORMAT, "data [128, 256) overlaps tensor 0 'a' at [0, 256)",
               "tensor 2 'b'", at(tp.offset));
    b_free(&b);

    b_hdr(&b, 3, 1, 1);
    b_kv_u32(&b, "general.alignment", 1u << 20);
    b_ti(&b, "a", 1, ne1, KQ_TYPE_F32, 0);
    b_zeros(&b, 200);
    expect_bad("data section past the end", &b, KQ_ERR_FORMAT,
               "tensor data section starts past the end of the file", at(1u << 20), NULL);
    b_free(&b);

    /* ---- files that cannot be opened */
    {
        const char *dir = kt_tmp_path("a-dir");
        mkdir(dir, 0755);
        kq_gguf *g = (kq_gguf *)1;
        kq_status s = kq_gguf_open(dir, &g);
        KT_CHECK(s == KQ_ERR_IO && g == NULL && has(kq_last_error(), dir) &&
                     has(kq_last_error(), "not a regular file"),
                 "a folder: %s %s", kq_status_name(s), kq_last_error());
        if (g_print_errors) printf("| a folder | %s | %s |\n", kq_status_name(s), kq_last_error());
        rmdir(dir);
        g_classes++;
        const char *missing = kt_tmp_path("does-not-exist.gguf");
        s = kq_gguf_open(missing, &g);
        KT_CHECK(s == KQ_ERR_IO && has(kq_last_error(), missing) &&
                     has(kq_last_error(), strerror(ENOENT)),
                 "a missing file: %s %s", kq_status_name(s), kq_last_error());
        if (g_print_errors)
            printf("| a missing file | %s | %s |\n", kq_status_name(s), kq_last_error());
        g_classes++;
    }
    KT_CHECK(g_classes >= 30, "only %d malformed-file classes", g_classes);
}

/* ---------------------------------------------------------------- sweep, fuzz */

static uint8_t *small_valid_file(size_t *n, uint64_t *data_end)
{
    kq_gguf_writer *w = NULL;
    if (kq_gguf_writer_new(3, &w) != KQ_OK) return NULL;
    uint32_t u = 7;
    kq_gguf_writer_set(w, "general.architecture.n", KQ_GGUF_U32, &u);
    kq_gguf_writer_set_string(w, "general.name", "tiny", 4);
    const char *toks[] = {"a", "", "ccc"};
    kq_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", toks, NULL, 3);
    float fl[3] = {1, 2, 3};
    kq_gguf_writer_set_array(w, "f", KQ_GGUF_F32, fl, 3);
    uint32_t al = 16;
    kq_gguf_writer_set(w, "general.alignment", KQ_GGUF_U32, &al);
    { /* nested arrays too, copied from a hand-built file */
        bb nb = {0};
        build_nested(&nb, 3);
        char *npath = dup_str(kt_tmp_path("small-nested.gguf"));
        write_bytes(npath, nb.p, nb.n);
        b_free(&nb);
        kq_gguf *ng = NULL;
        if (kq_gguf_open(npath, &ng) == KQ_OK) {
            for (int64_t i = 0; i < 2; i++)
                kq_gguf_writer_set_value(w, kq_gguf_kv_key(ng, i), kq_gguf_kv_value(ng, i));
            kq_gguf_close(ng);
        }
        unlink(npath);
        free(npath);
    }
    int64_t ne1[1] = {32}, ne2[2] = {256, 1};
    float d1[32];
    uint8_t d2[210];
    kt_fill_bytes(d1, sizeof d1);
    kt_fill_bytes(d2, sizeof d2);
    kq_gguf_writer_add_tensor(w, "t.f32", KQ_TYPE_F32, 1, ne1, d1, sizeof d1);
    kq_gguf_writer_add_tensor(w, "t.q6", KQ_TYPE_Q6_K, 2, ne2, d2, sizeof d2);
    char *path = dup_str(kt_tmp_path("small.gguf"));
    kq_status s = kq_gguf_writer_save(w, path);
    kq_gguf_writer_free(w);
    uint8_t *p = NULL;
    *data_end = 0;
    kq_gguf *g = NULL;
    if (s == KQ_OK && kq_gguf_open(path, &g) == KQ_OK) {
        for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
            kq_tensor_info ti;
            kq_gguf_tensor(g, i, &ti);
            uint64_t e = kq_gguf_data_offset(g) + ti.offset + ti.nbytes;
            if (e > *data_end) *data_end = e;
        }
        kq_gguf_close(g);
        p = read_all(path, n);
    }
    unlink(path);
    free(path);
    return p;
}

static void test_truncation_sweep(void)
{
    size_t n = 0;
    uint64_t data_end = 0;
    uint8_t *full = small_valid_file(&n, &data_end);
    if (!KT_CHECK(full != NULL && data_end > 0 && data_end <= n, "small valid file")) return;
    char *path = dup_str(kt_tmp_path("trunc.gguf"));
    int bad = 0;
    for (size_t len = 0; len <= n; len++) {
        if (write_bytes(path, full, len) != 0) {
            KT_CHECK(0, "cannot write %s", path);
            break;
        }
        kq_gguf *g = NULL;
        kq_status s = kq_gguf_open(path, &g);
        if (len < data_end) {
            /* Every cut is reported with the file and where (or that it is empty). */
            int ok = (s == KQ_ERR_FORMAT || s == KQ_ERR_IO) && g == NULL &&
                     has(kq_last_error(), path) &&
                     (has(kq_last_error(), "byte offset") || (len == 0 && has(kq_last_error(), "empty")));
            if (!ok && bad++ < 5)
                KT_CHECK(0, "prefix %zu of %zu: %s: %s", len, n, kq_status_name(s), kq_last_error());
        } else if (s != KQ_OK && bad++ < 5) {
            KT_CHECK(0, "prefix %zu of %zu (all tensor data present) failed: %s", len, n,
                     kq_last_error());
        }
        if (g) kq_gguf_close(g);
    }
    KT_CHECK(bad == 0, "truncation sweep: %d prefixes of %zu misbehaved", bad, n);
    unlink(path);
    free(path);
    free(full);
}

/* Random byte corruption: any status is fine, a crash or a leak is not (run
 * under the sanitizers); what opens must still answer its queries. */
static void test_fuzz(void)
{
    size_t n = 0;
    uint64_t data_end = 0;
    uint8_t *full = small_valid_file(&n, &data_end);
    if (!KT_CHECK(full != NULL, "small valid file")) return;
    uint8_t *buf = malloc(n);
    char *path = dup_str(kt_tmp_path("fuzz.gguf"));
    int opened = 0, iters = 1500;
    const char *env = getenv("KQ_GGUF_FUZZ_ITERS");
    if (env && atoi(env) > 0) iters = atoi(env);
    for (int it = 0; it < iters; it++) {
        memcpy(buf, full, n);
        int flips = (int)kt_range(1, 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = (size_t)kt_range(0, (int64_t)(data_end < n ? data_end : n) - 1);
            switch (kt_range(0, 3)) {
            case 0: buf[pos] = (uint8_t)kt_u64(); break;
            case 1: buf[pos] ^= (uint8_t)(1u << kt_range(0, 7)); break;
            case 2: buf[pos] = 0xFF; break;
            default: buf[pos] = 0; break;
            }
        }
        write_bytes(path, buf, n);
        kq_gguf *g = NULL;
        kq_status s = kq_gguf_open(path, &g);
        if (s == KQ_OK) {
            opened++;
            for (int64_t i = 0; i < kq_gguf_n_kv(g); i++) {
                const kq_gguf_value *v = kq_gguf_kv_value(g, i);
                int64_t x;
                kq_gguf_value_int(v, &x);
                kq_gguf_writer *w = NULL;
                kq_gguf_writer_new(3, &w);
                kq_gguf_writer_set_value(w, kq_gguf_kv_key(g, i), v);
                kq_gguf_writer_free(w);
            }
            for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
                kq_tensor_info ti;
                if (kq_gguf_tensor(g, i, &ti) == KQ_OK && ti.nbytes) {
                    volatile uint8_t sink = ((const uint8_t *)ti.data)[ti.nbytes - 1];
                    (void)sink;
                }
            }
            kq_gguf_close(g);
        } else {
            KT_CHECK(g == NULL && kq_last_error()[0] != '\0', "fuzz: failure without a message");
        }
    }
    KT_CHECK(1, "fuzz: %d of %d corrupted files opened", opened, iters);
    unlink(path);
    free(path);
    free(buf);
    free(full);
}

int main(void)
{
    kt_init("test_gguf");
    const char *pe = getenv("KQ_GGUF_PRINT_ERRORS");
    g_print_errors = pe && *pe && *pe != '0';
    test_round_trip();
    test_empty_writer();
    test_getters();
    test_mapping();
    test_malformed();
    test_truncation_sweep();
    test_fuzz();
    printf("test_gguf: %d malformed-file classes checked\n", g_classes);
    return kt_finish();
}
