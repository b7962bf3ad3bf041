/* GGUF writer: metadata is serialized as it is set, tensor bytes are copied
 * as they are added; save writes a temporary file next to the target and
 * renames it over the target, so a failed save leaves no partial file. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "core/checked.h"
#include "core/error.h"
#include "formats/formats.h"
#include "tmp_cleanup.h"
#include "gguf_internal.h"

#define GGUF_DEFAULT_ALIGNMENT 32u

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
} wbuf;

typedef struct wkv {
    char *key;
    size_t key_len;
    wbuf val; /* u32 value type + the value, as in the file */
} wkv;

typedef struct wtensor {
    char *name;
    size_t name_len;
    int type;
    int n_dims;
    int64_t ne[4];
    void *data;
    size_t nbytes;
} wtensor;

struct kq_gguf_writer {
    uint32_t version;
    uint32_t alignment;
    wkv *kvs;
    int64_t n_kv, cap_kv;
    wtensor *ts;
    int64_t n_t, cap_t;
    kq__name_index kv_ix, t_ix;
};

/* ---------------------------------------------------------------- buffers */

static int wb_put(wbuf *b, const void *src, size_t n)
{
    if (n == 0) return 0;
    if (n > SIZE_MAX - b->n) return -1;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) {
            if (cap > SIZE_MAX / 2) {
                cap = b->n + n;
                break;
            }
            cap *= 2;
        }
        uint8_t *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
    return 0;
}

static int wb_u32(wbuf *b, uint32_t v) { return wb_put(b, &v, 4); }
static int wb_u64(wbuf *b, uint64_t v) { return wb_put(b, &v, 8); }
static int wb_str(wbuf *b, const void *s, uint64_t len)
{
    return wb_u64(b, len) || wb_put(b, s, (size_t)len);
}

/* n elements of fixed-size type t; bools are written as 0 or 1. */
static int wb_elems(wbuf *b, uint32_t t, const void *src, size_t n)
{
    size_t sz = kq__gguf_vtype_size(t);
    if (t != KQ_GGUF_BOOL) return wb_put(b, src, n * sz);
    const uint8_t *q = src;
    for (size_t i = 0; i < n; i++) {
        uint8_t x = q[i] != 0;
        if (wb_put(b, &x, 1)) return -1;
    }
    return 0;
}

static int is_scalar(uint32_t t) { return kq__gguf_vtype_size(t) != 0; }

/* ---------------------------------------------------------------- new, free */

kq_status kq_gguf_writer_new(uint32_t version, kq_gguf_writer **out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_gguf_writer_new: out is NULL");
    *out = NULL;
    if (version != 2 && version != 3)
        return kq__fail(KQ_ERR_UNSUPPORTED,
                        "kq_gguf_writer_new: version = %u, only GGUF versions 2 and 3 are written",
                        version);
    kq_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return kq__fail(KQ_ERR_NO_MEMORY, "kq_gguf_writer_new: out of memory");
    w->version = version;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    *out = w;
    return KQ_OK;
}

void kq_gguf_writer_free(kq_gguf_writer *w)
{
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val.p);
    }
    free(w->kvs);
    for (int64_t i = 0; i < w->n_t; i++) {
        free(w->ts[i].name);
        free(w->ts[i].data);
    }
    free(w->ts);
    kq__name_index_free(&w->kv_ix);
    kq__name_index_free(&w->t_ix);
    free(w);
}

/* ---------------------------------------------------------------- metadata */

static const char g_align_key[] = "general.alignment";

/* Checks the writer and key; a key already set is an error. */
static kq_status check_key(kq_gguf_writer *w, const char *key, const char *fn)
{
    if (!w) return kq__fail(KQ_ERR_INVALID_ARG, "%s: the writer is NULL", fn);
    if (!key) return kq__fail(KQ_ERR_INVALID_ARG, "%s: key is NULL", fn);
    if (kq__name_find(&w->kv_ix, key, strlen(key)) >= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s' is already set (duplicate key)", fn,
                        key);
    return KQ_OK;
}

/* Appends key with a serialized value (type + payload), taking the buffer. */
static kq_status add_kv(kq_gguf_writer *w, const char *key, wbuf *val, const char *fn)
{
    size_t len = strlen(key);
    uint32_t type, new_align = 0;
    memcpy(&type, val->p, 4);
    if (len == sizeof g_align_key - 1 && memcmp(key, g_align_key, len) == 0) {
        if (type != KQ_GGUF_U32) {
            free(val->p);
            return kq__fail(KQ_ERR_INVALID_ARG, "%s: general.alignment must be a u32, not %s", fn,
                            kq__gguf_vtype_str(type));
        }
        uint32_t a;
        memcpy(&a, val->p + 4, 4);
        if (a == 0 || (a & (a - 1)) != 0) {
            free(val->p);
            return kq__fail(KQ_ERR_INVALID_ARG,
                            "%s: general.alignment = %u must be a nonzero power of two", fn, a);
        }
        if (a > KQ_GGUF_MAX_ALIGNMENT) {
            free(val->p);
            return kq__fail(KQ_ERR_INVALID_ARG,
                            "%s: general.alignment = %u exceeds the largest supported (%u)", fn, a,
                            KQ_GGUF_MAX_ALIGNMENT);
        }
        new_align = a;
    }
    if (w->n_kv == w->cap_kv) {
        int64_t c = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *q = realloc(w->kvs, (size_t)c * sizeof *q);
        if (!q) {
            free(val->p);
            return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory adding key '%s'", fn, key);
        }
        w->kvs = q;
        w->cap_kv = c;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        free(val->p);
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory adding key '%s'", fn, key);
    }
    memcpy(copy, key, len + 1);
    if (kq__name_insert(&w->kv_ix, copy, len, w->n_kv) != -1) {
        free(copy);
        free(val->p);
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory adding key '%s'", fn, key);
    }
    wkv *kv = &w->kvs[w->n_kv++];
    kv->key = copy;
    kv->key_len = len;
    kv->val = *val;
    memset(val, 0, sizeof *val);
    if (new_align) w->alignment = new_align;
    return KQ_OK;
}

static kq_status oom(wbuf *b, const char *fn, const char *key)
{
    free(b->p);
    return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory serializing key '%s'", fn, key);
}

kq_status kq_gguf_writer_set(kq_gguf_writer *w, const char *key, kq_gguf_vtype vtype,
                             const void *value)
{
    static const char fn[] = "kq_gguf_writer_set";
    kq__clear_error();
    kq_status s = check_key(w, key, fn);
    if (s != KQ_OK) return s;
    if (!is_scalar((uint32_t)vtype))
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: key '%s': vtype %d (%s) is not a scalar type (use the string and "
                        "array setters)",
                        fn, key, (int)vtype, kq__gguf_vtype_str((uint32_t)vtype));
    if (!value) return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': value is NULL", fn, key);
    wbuf b = {0};
    if (wb_u32(&b, (uint32_t)vtype) || wb_elems(&b, (uint32_t)vtype, value, 1))
        return oom(&b, fn, key);
    return add_kv(w, key, &b, fn);
}

kq_status kq_gguf_writer_set_string(kq_gguf_writer *w, const char *key, const char *str,
                                    size_t len)
{
    static const char fn[] = "kq_gguf_writer_set_string";
    kq__clear_error();
    kq_status s = check_key(w, key, fn);
    if (s != KQ_OK) return s;
    if (!str && len)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': s is NULL with len = %zu", fn, key,
                        len);
    wbuf b = {0};
    if (wb_u32(&b, KQ_GGUF_STRING) || wb_str(&b, str, len)) return oom(&b, fn, key);
    return add_kv(w, key, &b, fn);
}

kq_status kq_gguf_writer_set_array(kq_gguf_writer *w, const char *key, kq_gguf_vtype elem_type,
                                   const void *elems, int64_t n)
{
    static const char fn[] = "kq_gguf_writer_set_array";
    kq__clear_error();
    kq_status s = check_key(w, key, fn);
    if (s != KQ_OK) return s;
    if (!is_scalar((uint32_t)elem_type))
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: key '%s': elem_type %d (%s) is not a scalar type (strings: "
                        "kq_gguf_writer_set_string_array; arrays: kq_gguf_writer_set_value)",
                        fn, key, (int)elem_type, kq__gguf_vtype_str((uint32_t)elem_type));
    if (n < 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': n = %lld must be >= 0", fn, key,
                        (long long)n);
    if (n > 0 && !elems)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': elems is NULL with n = %lld", fn, key,
                        (long long)n);
    size_t bytes;
    if ((uint64_t)n > SIZE_MAX || kq__mul_size((size_t)n, kq__gguf_vtype_size(elem_type), &bytes))
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': n = %lld elements overflow size_t",
                        fn, key, (long long)n);
    wbuf b = {0};
    if (wb_u32(&b, KQ_GGUF_ARRAY) || wb_u32(&b, (uint32_t)elem_type) || wb_u64(&b, (uint64_t)n) ||
        wb_elems(&b, (uint32_t)elem_type, elems, (size_t)n))
        return oom(&b, fn, key);
    return add_kv(w, key, &b, fn);
}

kq_status kq_gguf_writer_set_string_array(kq_gguf_writer *w, const char *key,
                                          const char *const *strs, const size_t *lens, int64_t n)
{
    static const char fn[] = "kq_gguf_writer_set_string_array";
    kq__clear_error();
    kq_status s = check_key(w, key, fn);
    if (s != KQ_OK) return s;
    if (n < 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': n = %lld must be >= 0", fn, key,
                        (long long)n);
    if (n > 0 && !strs)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': strs is NULL with n = %lld", fn, key,
                        (long long)n);
    wbuf b = {0};
    if (wb_u32(&b, KQ_GGUF_ARRAY) || wb_u32(&b, KQ_GGUF_STRING) || wb_u64(&b, (uint64_t)n))
        return oom(&b, fn, key);
    for (int64_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strs[i] ? strlen(strs[i]) : 0;
        if (!strs[i] && len) {
            free(b.p);
            return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': strs[%lld] is NULL with length %zu",
                            fn, key, (long long)i, len);
        }
        if (wb_str(&b, strs[i], len)) return oom(&b, fn, key);
    }
    return add_kv(w, key, &b, fn);
}

/* Serializes a reader value (without its type tag when it is an element). */
static kq_status ser_value(wbuf *b, const kq_gguf_value *v, int depth, const char *fn,
                           const char *key)
{
    if (v->type == KQ_GGUF_STRING)
        return wb_str(b, v->p, v->len) ? KQ_ERR_NO_MEMORY : KQ_OK;
    if (is_scalar(v->type)) return wb_elems(b, v->type, v->p, 1) ? KQ_ERR_NO_MEMORY : KQ_OK;
    if (v->type != KQ_GGUF_ARRAY)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': value has unknown type %u", fn, key,
                        v->type);
    if (depth >= KQ_GGUF_MAX_DEPTH)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': arrays nested deeper than %d levels",
                        fn, key, KQ_GGUF_MAX_DEPTH);
    if (wb_u32(b, v->elem_type) || wb_u64(b, (uint64_t)v->count)) return KQ_ERR_NO_MEMORY;
    if (is_scalar(v->elem_type))
        return wb_elems(b, v->elem_type, v->p, (size_t)v->count) ? KQ_ERR_NO_MEMORY : KQ_OK;
    for (int64_t i = 0; i < v->count; i++) {
        if (v->elem_type == KQ_GGUF_STRING) {
            if (wb_str(b, v->strs[i].p, v->strs[i].len)) return KQ_ERR_NO_MEMORY;
        } else if (v->elem_type == KQ_GGUF_ARRAY) {
            kq_status s = ser_value(b, &v->items[i], depth + 1, fn, key);
            if (s != KQ_OK) return s;
        } else {
            return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': array has unknown element type %u",
                            fn, key, v->elem_type);
        }
    }
    return KQ_OK;
}

kq_status kq_gguf_writer_set_value(kq_gguf_writer *w, const char *key, const kq_gguf_value *v)
{
    static const char fn[] = "kq_gguf_writer_set_value";
    kq__clear_error();
    kq_status s = check_key(w, key, fn);
    if (s != KQ_OK) return s;
    if (!v) return kq__fail(KQ_ERR_INVALID_ARG, "%s: key '%s': value is NULL", fn, key);
    wbuf b = {0};
    if (wb_u32(&b, v->type)) return oom(&b, fn, key);
    s = ser_value(&b, v, 0, fn, key);
    if (s == KQ_ERR_NO_MEMORY) return oom(&b, fn, key);
    if (s != KQ_OK) {
        free(b.p);
        return s;
    }
    return add_kv(w, key, &b, fn);
}

/* ---------------------------------------------------------------- tensors */

kq_status kq_gguf_writer_add_tensor(kq_gguf_writer *w, const char *name, int type, int n_dims,
                                    const int64_t *ne, const void *data, size_t nbytes)
{
    static const char fn[] = "kq_gguf_writer_add_tensor";
    kq__clear_error();
    if (!w) return kq__fail(KQ_ERR_INVALID_ARG, "%s: the writer is NULL", fn);
    if (!name) return kq__fail(KQ_ERR_INVALID_ARG, "%s: name is NULL", fn);
    size_t len = strlen(name);
    if (kq__name_find(&w->t_ix, name, len) >= 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: tensor '%s' is already added (duplicate name)",
                        fn, name);
    const kq_type_traits *tt = kq__type_traits(type);
    if (!tt || tt->block_elems <= 0 || tt->block_bytes == 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: tensor '%s': type = %d is not a known ggml type id",
                        fn, name, type);
    if (n_dims < 1 || n_dims > 4)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: tensor '%s': n_dims = %d must be 1 to 4", fn,
                        name, n_dims);
    if (!ne) return kq__fail(KQ_ERR_INVALID_ARG, "%s: tensor '%s': ne is NULL", fn, name);
    int64_t dims[4] = {1, 1, 1, 1}, elems = 1;
    for (int j = 0; j < n_dims; j++) {
        if (ne[j] <= 0)
            return kq__fail(KQ_ERR_INVALID_ARG, "%s: tensor '%s': ne[%d] = %lld must be > 0", fn,
                            name, j, (long long)ne[j]);
        dims[j] = ne[j];
        if (kq__mul_i64(elems, ne[j], &elems))
            return kq__fail(KQ_ERR_INVALID_ARG, "%s: tensor '%s': the element count overflows",
                            fn, name);
    }
    uint64_t row_bytes, want = 0;
    kq_size_check sc = kq__tensor_bytes(tt, dims, &row_bytes, &want);
    if (sc == KQ_SIZE_PARTIAL_BLOCK)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: tensor '%s': ne[0] = %lld is not a multiple of the %s block size %lld",
                        fn, name, (long long)dims[0], tt->name, (long long)tt->block_elems);
    if (sc == KQ_SIZE_OVERFLOW || want > SIZE_MAX)
        return kq__fail(KQ_ERR_INVALID_ARG, "%s: tensor '%s': the byte size overflows", fn, name);
    if ((uint64_t)nbytes != want)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "%s: tensor '%s': nbytes = %zu, but %s [%lld, %lld, %lld, %lld] takes "
                        "%llu bytes",
                        fn, name, nbytes, tt->name, (long long)dims[0], (long long)dims[1],
                        (long long)dims[2], (long long)dims[3], (unsigned long long)want);
    if (!data) return kq__fail(KQ_ERR_INVALID_ARG, "%s: tensor '%s': data is NULL", fn, name);
    if (w->n_t == w->cap_t) {
        int64_t c = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *q = realloc(w->ts, (size_t)c * sizeof *q);
        if (!q) return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory adding '%s'", fn, name);
        w->ts = q;
        w->cap_t = c;
    }
    char *copy = malloc(len + 1);
    void *bytes = malloc(nbytes);
    if (!copy || !bytes) {
        free(copy);
        free(bytes);
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes for tensor '%s'", fn,
                        nbytes, name);
    }
    memcpy(copy, name, len + 1);
    memcpy(bytes, data, nbytes);
    if (kq__name_insert(&w->t_ix, copy, len, w->n_t) != -1) {
        free(copy);
        free(bytes);
        return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory adding '%s'", fn, name);
    }
    wtensor *t = &w->ts[w->n_t++];
    t->name = copy;
    t->name_len = len;
    t->type = type;
    t->n_dims = n_dims;
    memcpy(t->ne, dims, sizeof dims);
    t->data = bytes;
    t->nbytes = nbytes;
    return KQ_OK;
}

/* ---------------------------------------------------------------- save */

typedef struct wfile {
    FILE *f;
    const char *path; /* the target, for messages */
    uint64_t pos;
    int err; /* errno of the first failure, or 0 */
} wfile;

static void wf_put(wfile *o, const void *p, size_t n)
{
    if (o->err || n == 0) return;
    errno = 0;
    if (fwrite(p, 1, n, o->f) != n) {
        o->err = errno ? errno : EIO;
        return;
    }
    o->pos += n;
}

static void wf_u32(wfile *o, uint32_t v) { wf_put(o, &v, 4); }
static void wf_u64(wfile *o, uint64_t v) { wf_put(o, &v, 8); }

static void wf_pad(wfile *o, uint64_t align)
{
    static const uint8_t zeros[4096];
    uint64_t pad = (align - o->pos % align) % align;
    while (pad > 0 && !o->err) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        wf_put(o, zeros, n);
        pad -= n;
    }
}

/* The output must be a regular file or nothing yet: the save writes a
 * temporary next to it and renames it over the path, which would silently
 * turn a symbolic link, FIFO or device node into a regular file (a link to
 * /dev/full would "succeed"). Such a path is refused, saying what it is. */
static kq_status check_target(const char *path, struct stat *st, int *exists)
{
    *exists = 0;
    if (lstat(path, st) != 0) {
        if (errno == ENOENT) return KQ_OK;
        return kq__fail(KQ_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    const char *what = S_ISLNK(st->st_mode)    ? "a symbolic link (the save would replace the "
                                                 "link itself; give the path it points to)"
                       : S_ISFIFO(st->st_mode) ? "a FIFO"
                       : S_ISCHR(st->st_mode)  ? "a character device"
                       : S_ISBLK(st->st_mode)  ? "a block device"
                       : S_ISDIR(st->st_mode)  ? "a directory"
                       : S_ISSOCK(st->st_mode) ? "a socket"
                       : S_ISREG(st->st_mode)  ? NULL
                                               : "not a regular file";
    if (what)
        return kq__fail(KQ_ERR_IO,
                        "refusing to write '%s': it is %s; a GGUF file is saved only as a "
                        "regular file (new or replaced)",
                        path, what);
    *exists = 1;
    return KQ_OK;
}

/* PATH.tmp-XXXXXX beside the target (same file system, so the rename is
 * atomic), created with O_EXCL and mode 0666 so that the umask applies as it
 * would to any new file (mkstemp's fixed 0600 would not honour it). */
static kq_status create_temp(const char *path, char **tmp_out, int *fd_out)
{
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    static _Atomic unsigned long long counter;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return kq__fail(KQ_ERR_NO_MEMORY, "kq_gguf_writer_save: out of memory");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long seed = ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)getpid() ^
                              (unsigned long long)(uintptr_t)tmp;
    for (int attempt = 0; attempt < 100; attempt++) {
        /* splitmix64 of the seed and a process-wide counter */
        unsigned long long z = seed + 0x9e3779b97f4a7c15ull * (counter++ + 1);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".tmp-", 5);
        for (int i = 0; i < 6; i++, z /= 36) tmp[plen + 5 + i] = digits[z % 36];
        tmp[plen + 11] = '\0';
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            *fd_out = fd;
            return KQ_OK;
        }
        if (errno != EEXIST) {
            int e = errno;
            free(tmp);
            return kq__fail(KQ_ERR_IO, "cannot create a temporary file to write '%s': %s", path,
                            strerror(e));
        }
    }
    free(tmp);
    return kq__fail(KQ_ERR_IO, "cannot create a temporary file to write '%s': 100 names taken",
                    path);
}

kq_status kq_gguf_writer_save(kq_gguf_writer *w, const char *path)
{
    static const char fn[] = "kq_gguf_writer_save";
    kq__clear_error();
    if (!w) return kq__fail(KQ_ERR_INVALID_ARG, "%s: the writer is NULL", fn);
    if (!path || !*path) return kq__fail(KQ_ERR_INVALID_ARG, "%s: path is NULL or empty", fn);
    const uint64_t align = w->alignment;

    /* Tensor offsets, each aligned, checked for overflow before writing. */
    uint64_t *offs = NULL;
    if (w->n_t) {
        offs = malloc((size_t)w->n_t * sizeof *offs);
        if (!offs) return kq__fail(KQ_ERR_NO_MEMORY, "%s: out of memory", fn);
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        offs[i] = off;
        if (kq__add_u64(off, w->ts[i].nbytes, &off) || kq__add_u64(off, align - 1, &off)) {
            free(offs);
            return kq__fail(KQ_ERR_INVALID_ARG, "%s: the tensor data size overflows 64 bits", fn);
        }
        off -= off % align;
    }

    struct stat target;
    int exists = 0;
    kq_status st = check_target(path, &target, &exists);
    if (st != KQ_OK) {
        free(offs);
        return st;
    }
    char *tmp = NULL;
    int fd = -1;
    /* SIGINT/SIGTERM wait while the temporary is created and registered, so
     * that no signal can end the process between the two and leave it. */
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    st = create_temp(path, &tmp, &fd);
    int slot = st == KQ_OK ? kq__tmp_register(tmp) : -1;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (st != KQ_OK) {
        free(offs);
        return st;
    }
    /* An existing file keeps its permission bits; a new one has 0666 less
     * the umask, which open() applied to the temporary already. */
    if (exists) (void)fchmod(fd, target.st_mode & 07777);
    wfile o = {fdopen(fd, "wb"), path, 0, 0};
    if (!o.f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        kq__tmp_forget(slot);
        free(tmp);
        free(offs);
        return kq__fail(KQ_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }

    wf_put(&o, "GGUF", 4);
    wf_u32(&o, w->version);
    wf_u64(&o, (uint64_t)w->n_t);
    wf_u64(&o, (uint64_t)w->n_kv);
    for (int64_t i = 0; i < w->n_kv; i++) {
        wf_u64(&o, w->kvs[i].key_len);
        wf_put(&o, w->kvs[i].key, w->kvs[i].key_len);
        wf_put(&o, w->kvs[i].val.p, w->kvs[i].val.n);
    }
    for (int64_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        wf_u64(&o, t->name_len);
        wf_put(&o, t->name, t->name_len);
        wf_u32(&o, (uint32_t)t->n_dims);
        for (int j = 0; j < t->n_dims; j++) wf_u64(&o, (uint64_t)t->ne[j]);
        wf_u32(&o, (uint32_t)t->type);
        wf_u64(&o, offs[i]);
    }
    wf_pad(&o, align);
    for (int64_t i = 0; i < w->n_t; i++) {
        wf_put(&o, w->ts[i].data, w->ts[i].nbytes);
        wf_pad(&o, align);
    }
    free(offs);
    if (!o.err && fflush(o.f) != 0) o.err = errno ? errno : EIO;
    if (!o.err && fsync(fileno(o.f)) != 0 && errno != EINVAL && errno != EROFS) o.err = errno;
    if (fclose(o.f) != 0 && !o.err) o.err = errno ? errno : EIO;
    if (o.err) {
        unlink(tmp);
        kq__tmp_forget(slot);
        free(tmp);
        return kq__fail(KQ_ERR_IO, "cannot write '%s': %s", path, strerror(o.err));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        kq__tmp_forget(slot);
        free(tmp);
        return kq__fail(KQ_ERR_IO, "cannot rename the temporary file to '%s': %s", path,
                        strerror(e));
    }
    kq__tmp_forget(slot);
    free(tmp);
    return KQ_OK;
}
