/* libFuzzer harness for the GGUF reader: any bytes go to kq_gguf_open. A
 * file that opens is then walked through every query and getter (each
 * value asked for as every kind, so the type and range errors run too), and
 * copied through the writer and read back, which must give the same keys,
 * values and tensors. Failures must come with a message. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "kquant.h"

static void expect_message(kq_status s, const char *call)
{
    if (s != KQ_OK && kq_last_error()[0] == '\0') kf_fail("%s failed (%s) without a message", call,
                                                          kq_status_name(s));
}

/* Every getter on one value (or on element i of an array); returns nothing,
 * checks only that each call answers with OK or a reported error. */
static void ask_everything(const kq_gguf_value *v, int64_t i)
{
    int64_t si;
    uint64_t ui;
    double f;
    int b;
    const char *s;
    size_t len;
    const kq_gguf_value *item;
    if (i < 0) {
        expect_message(kq_gguf_value_int(v, &si), "kq_gguf_value_int");
        expect_message(kq_gguf_value_uint(v, &ui), "kq_gguf_value_uint");
        expect_message(kq_gguf_value_float(v, &f), "kq_gguf_value_float");
        expect_message(kq_gguf_value_bool(v, &b), "kq_gguf_value_bool");
        if (kq_gguf_value_string(v, &s, &len) == KQ_OK && len) {
            volatile char last = s[len - 1]; /* the whole string is readable */
            (void)last;
        }
        return;
    }
    expect_message(kq_gguf_array_int(v, i, &si), "kq_gguf_array_int");
    expect_message(kq_gguf_array_uint(v, i, &ui), "kq_gguf_array_uint");
    expect_message(kq_gguf_array_float(v, i, &f), "kq_gguf_array_float");
    expect_message(kq_gguf_array_bool(v, i, &b), "kq_gguf_array_bool");
    if (kq_gguf_array_string(v, i, &s, &len) == KQ_OK && len) {
        volatile char last = s[len - 1];
        (void)last;
    }
    expect_message(kq_gguf_array_item(v, i, &item), "kq_gguf_array_item");
}

static void walk(const kq_gguf_value *v, int depth)
{
    if (depth > 64) kf_fail("values nest deeper than the reader allows");
    ask_everything(v, -1);
    kq_gguf_vtype et;
    int64_t n;
    if (kq_gguf_value_array(v, &et, &n) != KQ_OK) return;
    if (n < 0) kf_fail("negative array count %lld", (long long)n);
    /* Both ends and a few in between: long arrays stay cheap. */
    int64_t step = n > 64 ? n / 32 : 1;
    for (int64_t i = 0; i < n; i += step) ask_everything(v, i);
    if (n > 0) ask_everything(v, n - 1);
    expect_message(kq_gguf_array_int(v, n, &(int64_t){0}), "index past the end");
    expect_message(kq_gguf_array_int(v, -1, &(int64_t){0}), "index -1");
    if (et == KQ_GGUF_ARRAY)
        for (int64_t i = 0; i < n; i += step) {
            const kq_gguf_value *item = NULL;
            if (kq_gguf_array_item(v, i, &item) != KQ_OK || !item)
                kf_fail("array item %lld of an array of arrays: %s", (long long)i,
                        kq_last_error());
            walk(item, depth + 1);
        }
}

/* Deep equality through the public getters. */
static int same_value(const kq_gguf_value *a, const kq_gguf_value *b, int depth)
{
    kq_gguf_vtype ta = kq_gguf_value_type(a);
    if (depth > 64 || ta != kq_gguf_value_type(b)) return 0;
    if (ta == KQ_GGUF_STRING) {
        const char *sa, *sb;
        size_t la, lb;
        if (kq_gguf_value_string(a, &sa, &la) || kq_gguf_value_string(b, &sb, &lb)) return 0;
        return la == lb && (la == 0 || memcmp(sa, sb, la) == 0);
    }
    if (ta != KQ_GGUF_ARRAY) {
        int64_t ia, ib;
        uint64_t ua, ub;
        double fa, fb;
        int ba, bb;
        if (kq_gguf_value_uint(a, &ua) == KQ_OK) return !kq_gguf_value_uint(b, &ub) && ua == ub;
        if (kq_gguf_value_int(a, &ia) == KQ_OK) return !kq_gguf_value_int(b, &ib) && ia == ib;
        if (kq_gguf_value_float(a, &fa) == KQ_OK)
            return !kq_gguf_value_float(b, &fb) && memcmp(&fa, &fb, sizeof fa) == 0;
        if (kq_gguf_value_bool(a, &ba) == KQ_OK) return !kq_gguf_value_bool(b, &bb) && ba == bb;
        return 0;
    }
    kq_gguf_vtype ea, eb;
    int64_t na, nb;
    if (kq_gguf_value_array(a, &ea, &na) || kq_gguf_value_array(b, &eb, &nb)) return 0;
    if (ea != eb || na != nb) return 0;
    for (int64_t i = 0; i < na; i++) {
        int64_t ia, ib;
        uint64_t ua, ub;
        double fa, fb;
        int ba, bb;
        const char *sa, *sb;
        size_t la, lb;
        const kq_gguf_value *xa, *xb;
        switch (ea) {
        case KQ_GGUF_STRING:
            if (kq_gguf_array_string(a, i, &sa, &la) || kq_gguf_array_string(b, i, &sb, &lb) ||
                la != lb || (la && memcmp(sa, sb, la) != 0))
                return 0;
            break;
        case KQ_GGUF_ARRAY:
            if (kq_gguf_array_item(a, i, &xa) || kq_gguf_array_item(b, i, &xb) ||
                !same_value(xa, xb, depth + 1))
                return 0;
            break;
        case KQ_GGUF_F32: case KQ_GGUF_F64:
            if (kq_gguf_array_float(a, i, &fa) || kq_gguf_array_float(b, i, &fb) ||
                memcmp(&fa, &fb, sizeof fa) != 0)
                return 0;
            break;
        case KQ_GGUF_BOOL:
            if (kq_gguf_array_bool(a, i, &ba) || kq_gguf_array_bool(b, i, &bb) || ba != bb)
                return 0;
            break;
        case KQ_GGUF_I8: case KQ_GGUF_I16: case KQ_GGUF_I32: case KQ_GGUF_I64:
            if (kq_gguf_array_int(a, i, &ia) || kq_gguf_array_int(b, i, &ib) || ia != ib)
                return 0;
            break;
        default:
            if (kq_gguf_array_uint(a, i, &ua) || kq_gguf_array_uint(b, i, &ub) || ua != ub)
                return 0;
        }
    }
    return 1;
}

/* Writes everything the file holds with the writer and reads it back. */
static void round_trip(const kq_gguf *g)
{
    kq_gguf_writer *w = NULL;
    if (kq_gguf_writer_new(kq_gguf_version(g), &w) != KQ_OK)
        kf_fail("writer for version %u: %s", kq_gguf_version(g), kq_last_error());
    for (int64_t i = 0; i < kq_gguf_n_kv(g); i++)
        if (kq_gguf_writer_set_value(w, kq_gguf_kv_key(g, i), kq_gguf_kv_value(g, i)) != KQ_OK)
            kf_fail("copying kv %lld '%s': %s", (long long)i, kq_gguf_kv_key(g, i),
                    kq_last_error());
    for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
        kq_tensor_info t;
        if (kq_gguf_tensor(g, i, &t) != KQ_OK ||
            kq_gguf_writer_add_tensor(w, t.name, t.type, t.n_dims, t.ne, t.data,
                                      (size_t)t.nbytes) != KQ_OK)
            kf_fail("copying tensor %lld: %s", (long long)i, kq_last_error());
    }
    const char *path = kf_scratch_path("round-trip.gguf");
    kq_status s = kq_gguf_writer_save(w, path);
    kq_gguf_writer_free(w);
    if (s != KQ_OK) kf_fail("saving the copy: %s", kq_last_error());
    kq_gguf *h = NULL;
    if (kq_gguf_open(path, &h) != KQ_OK) kf_fail("reading the copy back: %s", kq_last_error());
    unlink(path);
    if (kq_gguf_n_kv(h) != kq_gguf_n_kv(g) || kq_gguf_n_tensors(h) != kq_gguf_n_tensors(g) ||
        kq_gguf_alignment(h) != kq_gguf_alignment(g))
        kf_fail("the copy has other counts or alignment");
    for (int64_t i = 0; i < kq_gguf_n_kv(g); i++)
        if (strcmp(kq_gguf_kv_key(g, i), kq_gguf_kv_key(h, i)) != 0 ||
            !same_value(kq_gguf_kv_value(g, i), kq_gguf_kv_value(h, i), 0))
            kf_fail("kv %lld '%s' differs in the copy", (long long)i, kq_gguf_kv_key(g, i));
    for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
        kq_tensor_info a, b;
        kq_gguf_tensor(g, i, &a);
        kq_gguf_tensor(h, i, &b);
        if (strcmp(a.name, b.name) != 0 || a.type != b.type || a.n_dims != b.n_dims ||
            memcmp(a.ne, b.ne, sizeof a.ne) != 0 || a.nbytes != b.nbytes ||
            memcmp(a.data, b.data, (size_t)a.nbytes) != 0)
            kf_fail("tensor %lld '%s' differs in the copy", (long long)i, a.name);
    }
    kq_gguf_close(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = kf_input_path(data, size);
    kq_gguf *g = (kq_gguf *)&g;
    kq_status s = kq_gguf_open(path, &g);
    if (s != KQ_OK) {
        if (g != NULL) kf_fail("handle not NULL after a failed open");
        if (!strstr(kq_last_error(), path)) kf_fail("message does not name the file: %s",
                                                    kq_last_error());
        return 0;
    }
    for (int64_t i = 0; i < kq_gguf_n_kv(g); i++) {
        const char *key = kq_gguf_kv_key(g, i);
        const kq_gguf_value *v = kq_gguf_kv_value(g, i), *found = NULL;
        if (!key || !v) kf_fail("kv %lld has no key or value", (long long)i);
        if (kq_gguf_find_kv(g, key, &found) != KQ_OK || found != v)
            kf_fail("kv %lld '%s' is not found by its key", (long long)i, key);
        walk(v, 0);
        /* The by-key getters, each as every kind. */
        int64_t si;
        uint64_t ui;
        double f;
        int b;
        const char *str;
        size_t len;
        expect_message(kq_gguf_get_int(g, key, &si), "kq_gguf_get_int");
        expect_message(kq_gguf_get_uint(g, key, &ui), "kq_gguf_get_uint");
        expect_message(kq_gguf_get_float(g, key, &f), "kq_gguf_get_float");
        expect_message(kq_gguf_get_bool(g, key, &b), "kq_gguf_get_bool");
        expect_message(kq_gguf_get_string(g, key, &str, &len), "kq_gguf_get_string");
        if (!kq_gguf_vtype_name((int)kq_gguf_value_type(v)))
            kf_fail("kv %lld '%s' has an unnamed type", (long long)i, key);
    }
    /* A name the file most likely lacks: found (if the input holds it) or
     * not found with a message naming it, nothing else. */
    static const char absent[] = "kq.fuzz.absent";
    const kq_gguf_value *none = NULL;
    kq_tensor_info no_t;
    kq_status fs = kq_gguf_find_kv(g, absent, &none);
    if (fs != KQ_OK && (fs != KQ_ERR_NOT_FOUND || !strstr(kq_last_error(), absent)))
        kf_fail("looking up an absent key: %s %s", kq_status_name(fs), kq_last_error());
    fs = kq_gguf_find_tensor(g, absent, &no_t);
    if (fs != KQ_OK && (fs != KQ_ERR_NOT_FOUND || !strstr(kq_last_error(), absent)))
        kf_fail("looking up an absent tensor: %s %s", kq_status_name(fs), kq_last_error());
    if (kq_gguf_kv_key(g, kq_gguf_n_kv(g)) || kq_gguf_kv_value(g, -1))
        kf_fail("kv index out of range answered");
    uint64_t end = kq_gguf_file_size(g);
    for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
        kq_tensor_info t, u;
        if (kq_gguf_tensor(g, i, &t) != KQ_OK) kf_fail("tensor %lld: %s", (long long)i,
                                                       kq_last_error());
        if (kq_gguf_find_tensor(g, t.name, &u) != KQ_OK || u.data != t.data)
            kf_fail("tensor '%s' is not found by its name", t.name);
        if (t.n_dims < 1 || t.n_dims > 4 || t.nbytes == 0 ||
            kq_gguf_data_offset(g) + t.offset + t.nbytes > end)
            kf_fail("tensor '%s' has impossible geometry", t.name);
        const volatile uint8_t *d = t.data; /* first and last byte lie in the file */
        (void)d[0];
        (void)d[t.nbytes - 1];
    }
    if (kq_gguf_tensor(g, kq_gguf_n_tensors(g), &(kq_tensor_info){0}) != KQ_ERR_RANGE)
        kf_fail("tensor index out of range accepted");
    round_trip(g);
    kq_gguf_close(g);
    return 0;
}
