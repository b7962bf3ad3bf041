/* API misuse catalogue: the public calls that test_args.c (layers,
 * backends) and test_formats.c (types, conversions) do not already walk,
 * each with NULL handles, NULL buffers and out-pointers, negative or zero
 * sizes, indices out of range, mismatched byte counts, parts with
 * different K and unknown ids. Each case checks the status and that the
 * message names the call and the argument at fault; plain accessors
 * (which return a value, not a status) must answer 0 or NULL and leave the
 * message alone; every close or free of NULL is a no-op.
 *
 * KQ_MISUSE_PRINT=1 prints each case as a row of docs/api-misuse.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static int g_print, g_cases;

/* The status must be `want`, and the message must hold `needle` (and
 * `needle2` if given). Prints a table row in print mode. */
static void expect(const char *call, const char *misuse, kq_status got, kq_status want,
                   const char *needle, const char *needle2)
{
    const char *msg = kq_last_error();
    KT_CHECK(got == want && strstr(msg, needle) && (!needle2 || strstr(msg, needle2)),
             "%s, %s: got %s '%s', want %s with '%s'%s%s", call, misuse, kq_status_name(got), msg,
             kq_status_name(want), needle, needle2 ? " and " : "", needle2 ? needle2 : "");
    if (g_print) printf("| `%s` | %s | %s | %s |\n", call, misuse, kq_status_name(got), msg);
    g_cases++;
}
#define EXPECT(call, misuse, expr, want, needle) expect(call, misuse, (expr), want, needle, NULL)
#define EXPECT2(call, misuse, expr, want, n1, n2) expect(call, misuse, (expr), want, n1, n2)

/* A plain accessor or a close: `ok` says its answer was right, and the
 * message set just before must still be there. */
static void expect_plain(const char *call, const char *misuse, int ok, const char *answer)
{
    KT_CHECK(ok, "%s, %s: wrong answer (want %s)", call, misuse, answer);
    KT_CHECK(strstr(kq_last_error(), "marker") != NULL, "%s, %s: the message changed to '%s'",
             call, misuse, kq_last_error());
    if (g_print) printf("| `%s` | %s | (none) | %s; the message is left alone |\n", call, misuse,
                        answer);
    g_cases++;
}

/* Leaves a known message behind, for expect_plain. */
static void set_marker(void)
{
    kq_type t;
    kq_type_from_name("marker", &t);
}

/* ---------------------------------------------------------------- a file */

/* A small file with one key of each kind the getters tell apart and
 * tensors of each shape the loaders take or refuse. */
static char *make_file(void)
{
    kq_gguf_writer *w = NULL;
    if (!KT_OK(kq_gguf_writer_new(3, &w))) return NULL;
    uint32_t u = 7;
    uint32_t arr[3] = {1, 2, 3};
    const char *strs[2] = {"a", "bb"};
    KT_OK(kq_gguf_writer_set(w, "k.u32", KQ_GGUF_U32, &u));
    KT_OK(kq_gguf_writer_set_string(w, "k.str", "hello", 5));
    KT_OK(kq_gguf_writer_set_array(w, "k.arr", KQ_GGUF_U32, arr, 3));
    KT_OK(kq_gguf_writer_set_string_array(w, "k.strs", strs, NULL, 2));
    kt_weight a, b, e;
    if (kt_weight_make(&a, KQ_TYPE_Q4_K, 4, 256) || kt_weight_make(&b, KQ_TYPE_F32, 2, 64) ||
        kt_weight_make(&e, KQ_TYPE_Q8_0, 6, 64)) {
        KT_CHECK(0, "weights: %s", kq_last_error());
        kq_gguf_writer_free(w);
        return NULL;
    }
    int64_t ne_a[2] = {256, 4}, ne_b[2] = {64, 2}, ne_e[3] = {64, 2, 3}, ne_q2[2] = {256, 1};
    uint8_t q2[66] = {0}; /* one iq2_xxs block: a type no backend computes */
    KT_OK(kq_gguf_writer_add_tensor(w, "w.q4_K", a.type, 2, ne_a, a.bytes, a.nbytes));
    KT_OK(kq_gguf_writer_add_tensor(w, "w.f32", b.type, 2, ne_b, b.bytes, b.nbytes));
    KT_OK(kq_gguf_writer_add_tensor(w, "exps", e.type, 3, ne_e, e.bytes, e.nbytes));
    KT_OK(kq_gguf_writer_add_tensor(w, "w.iq2_xxs", KQ_TYPE_IQ2_XXS, 2, ne_q2, q2, sizeof q2));
    kt_weight_free(&a);
    kt_weight_free(&b);
    kt_weight_free(&e);
    size_t n = strlen(kt_tmp_path("misuse.gguf")) + 1;
    char *path = malloc(n);
    memcpy(path, kt_tmp_path("misuse.gguf"), n);
    KT_OK(kq_gguf_writer_save(w, path));
    kq_gguf_writer_free(w);
    return path;
}

/* ---------------------------------------------------------------- GGUF */

static void gguf_open_close(const char *path)
{
    kq_gguf *g = (kq_gguf *)&g;
    EXPECT("kq_gguf_open", "path NULL", kq_gguf_open(NULL, &g), KQ_ERR_INVALID_ARG,
           "kq_gguf_open: path is NULL");
    KT_CHECK(g == NULL, "kq_gguf_open: out not NULL after a failure");
    EXPECT("kq_gguf_open", "out NULL", kq_gguf_open(path, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_open: out is NULL");
    EXPECT("kq_gguf_open", "path \"\"", kq_gguf_open("", &g), KQ_ERR_IO, "cannot open ''");
    set_marker();
    kq_gguf_close(NULL);
    expect_plain("kq_gguf_close", "NULL", 1, "no-op");
    expect_plain("kq_gguf_version", "NULL handle", kq_gguf_version(NULL) == 0, "0");
    expect_plain("kq_gguf_file_size", "NULL handle", kq_gguf_file_size(NULL) == 0, "0");
    expect_plain("kq_gguf_alignment", "NULL handle", kq_gguf_alignment(NULL) == 0, "0");
    expect_plain("kq_gguf_data_offset", "NULL handle", kq_gguf_data_offset(NULL) == 0, "0");
    expect_plain("kq_gguf_n_kv", "NULL handle", kq_gguf_n_kv(NULL) == 0, "0");
    expect_plain("kq_gguf_n_tensors", "NULL handle", kq_gguf_n_tensors(NULL) == 0, "0");
    expect_plain("kq_gguf_kv_key", "NULL handle", kq_gguf_kv_key(NULL, 0) == NULL, "NULL");
    expect_plain("kq_gguf_kv_value", "NULL handle", kq_gguf_kv_value(NULL, 0) == NULL, "NULL");
    expect_plain("kq_gguf_value_type", "NULL value", (int)kq_gguf_value_type(NULL) == -1, "-1");
    expect_plain("kq_gguf_vtype_name", "unknown id 13 or -1",
                 kq_gguf_vtype_name(13) == NULL && kq_gguf_vtype_name(-1) == NULL, "NULL");
}

static void gguf_queries(const kq_gguf *g)
{
    const kq_gguf_value *v = NULL;
    int64_t n = kq_gguf_n_kv(g), nt = kq_gguf_n_tensors(g);
    set_marker();
    expect_plain("kq_gguf_kv_key", "index -1 or n_kv",
                 kq_gguf_kv_key(g, -1) == NULL && kq_gguf_kv_key(g, n) == NULL, "NULL");
    expect_plain("kq_gguf_kv_value", "index -1 or n_kv",
                 kq_gguf_kv_value(g, -1) == NULL && kq_gguf_kv_value(g, n) == NULL, "NULL");
    EXPECT("kq_gguf_find_kv", "handle NULL", kq_gguf_find_kv(NULL, "k.u32", &v),
           KQ_ERR_INVALID_ARG, "kq_gguf_find_kv: the GGUF handle is NULL");
    EXPECT("kq_gguf_find_kv", "key NULL", kq_gguf_find_kv(g, NULL, &v), KQ_ERR_INVALID_ARG,
           "kq_gguf_find_kv: key is NULL");
    EXPECT("kq_gguf_find_kv", "out NULL", kq_gguf_find_kv(g, "k.u32", NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_find_kv: out is NULL");
    EXPECT("kq_gguf_find_kv", "missing key", kq_gguf_find_kv(g, "no.such", &v), KQ_ERR_NOT_FOUND,
           "no key 'no.such'");

    kq_tensor_info ti;
    EXPECT("kq_gguf_tensor", "handle NULL", kq_gguf_tensor(NULL, 0, &ti), KQ_ERR_INVALID_ARG,
           "kq_gguf_tensor: the GGUF handle is NULL");
    EXPECT("kq_gguf_tensor", "out NULL", kq_gguf_tensor(g, 0, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_tensor: out is NULL");
    EXPECT("kq_gguf_tensor", "index -1", kq_gguf_tensor(g, -1, &ti), KQ_ERR_RANGE,
           "tensor index -1 is out of range");
    EXPECT("kq_gguf_tensor", "index n_tensors", kq_gguf_tensor(g, nt, &ti), KQ_ERR_RANGE,
           "tensor index 4 is out of range (4 tensors)");
    EXPECT("kq_gguf_find_tensor", "handle NULL", kq_gguf_find_tensor(NULL, "w.f32", &ti),
           KQ_ERR_INVALID_ARG, "kq_gguf_find_tensor: the GGUF handle is NULL");
    EXPECT("kq_gguf_find_tensor", "name NULL", kq_gguf_find_tensor(g, NULL, &ti),
           KQ_ERR_INVALID_ARG, "kq_gguf_find_tensor: name is NULL");
    EXPECT("kq_gguf_find_tensor", "out NULL", kq_gguf_find_tensor(g, "w.f32", NULL),
           KQ_ERR_INVALID_ARG, "kq_gguf_find_tensor: out is NULL");
    EXPECT("kq_gguf_find_tensor", "missing name", kq_gguf_find_tensor(g, "nope", &ti),
           KQ_ERR_NOT_FOUND, "no tensor named 'nope'");
}

/* The by-key getters: the same NULL and missing-key checks for each. */
static void gguf_get_by_key(const kq_gguf *g)
{
    int64_t i;
    uint64_t u;
    double f;
    int b;
    const char *s;
    size_t len;
    EXPECT("kq_gguf_get_int", "handle NULL", kq_gguf_get_int(NULL, "k.u32", &i),
           KQ_ERR_INVALID_ARG, "kq_gguf_get_int: the GGUF handle is NULL");
    EXPECT("kq_gguf_get_int", "key NULL", kq_gguf_get_int(g, NULL, &i), KQ_ERR_INVALID_ARG,
           "kq_gguf_get_int: key is NULL");
    EXPECT("kq_gguf_get_int", "out NULL", kq_gguf_get_int(g, "k.u32", NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_get_int: out is NULL");
    EXPECT("kq_gguf_get_int", "missing key", kq_gguf_get_int(g, "no.such", &i), KQ_ERR_NOT_FOUND,
           "no key 'no.such'");
    EXPECT("kq_gguf_get_int", "a string key", kq_gguf_get_int(g, "k.str", &i), KQ_ERR_TYPE,
           "key 'k.str': value type is string, not an integer");
    EXPECT("kq_gguf_get_uint", "handle NULL", kq_gguf_get_uint(NULL, "k.u32", &u),
           KQ_ERR_INVALID_ARG, "kq_gguf_get_uint: the GGUF handle is NULL");
    EXPECT("kq_gguf_get_uint", "out NULL", kq_gguf_get_uint(g, "k.u32", NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_get_uint: out is NULL");
    EXPECT("kq_gguf_get_uint", "missing key", kq_gguf_get_uint(g, "no.such", &u),
           KQ_ERR_NOT_FOUND, "no key 'no.such'");
    EXPECT("kq_gguf_get_float", "handle NULL", kq_gguf_get_float(NULL, "k.u32", &f),
           KQ_ERR_INVALID_ARG, "kq_gguf_get_float: the GGUF handle is NULL");
    EXPECT("kq_gguf_get_float", "key NULL", kq_gguf_get_float(g, NULL, &f), KQ_ERR_INVALID_ARG,
           "kq_gguf_get_float: key is NULL");
    EXPECT("kq_gguf_get_float", "an integer key", kq_gguf_get_float(g, "k.u32", &f), KQ_ERR_TYPE,
           "key 'k.u32': value type is u32, not f32 or f64");
    EXPECT("kq_gguf_get_bool", "handle NULL", kq_gguf_get_bool(NULL, "k.u32", &b),
           KQ_ERR_INVALID_ARG, "kq_gguf_get_bool: the GGUF handle is NULL");
    EXPECT("kq_gguf_get_bool", "out NULL", kq_gguf_get_bool(g, "k.u32", NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_get_bool: out is NULL");
    EXPECT("kq_gguf_get_bool", "an integer key", kq_gguf_get_bool(g, "k.u32", &b), KQ_ERR_TYPE,
           "key 'k.u32': value type is u32, not bool");
    EXPECT("kq_gguf_get_string", "handle NULL", kq_gguf_get_string(NULL, "k.str", &s, &len),
           KQ_ERR_INVALID_ARG, "kq_gguf_get_string: the GGUF handle is NULL");
    EXPECT("kq_gguf_get_string", "key NULL", kq_gguf_get_string(g, NULL, &s, &len),
           KQ_ERR_INVALID_ARG, "kq_gguf_get_string: key is NULL");
    EXPECT("kq_gguf_get_string", "s NULL", kq_gguf_get_string(g, "k.str", NULL, &len),
           KQ_ERR_INVALID_ARG, "kq_gguf_get_string: s is NULL");
    EXPECT("kq_gguf_get_string", "an array key", kq_gguf_get_string(g, "k.arr", &s, &len),
           KQ_ERR_TYPE, "key 'k.arr': value type is array, not string");
    KT_CHECK(kq_gguf_get_string(g, "k.str", &s, NULL) == KQ_OK, "len may be NULL: %s",
             kq_last_error());
}

/* The value getters, on a scalar, an array and NULL. */
static void gguf_values(const kq_gguf *g)
{
    const kq_gguf_value *sc = NULL, *arr = NULL, *strs = NULL, *item = NULL;
    if (!KT_OK(kq_gguf_find_kv(g, "k.u32", &sc)) || !KT_OK(kq_gguf_find_kv(g, "k.arr", &arr)) ||
        !KT_OK(kq_gguf_find_kv(g, "k.strs", &strs)))
        return;
    int64_t i, n;
    uint64_t u;
    double f;
    int b;
    const char *s;
    size_t len;
    kq_gguf_vtype et;
    EXPECT("kq_gguf_value_array", "value NULL", kq_gguf_value_array(NULL, &et, &n),
           KQ_ERR_INVALID_ARG, "kq_gguf_value_array: value is NULL");
    EXPECT("kq_gguf_value_array", "a scalar", kq_gguf_value_array(sc, &et, &n), KQ_ERR_TYPE,
           "key 'k.u32': value type is u32, not array");
    KT_CHECK(kq_gguf_value_array(arr, NULL, NULL) == KQ_OK, "both outs of value_array optional");
    EXPECT("kq_gguf_value_int", "value NULL", kq_gguf_value_int(NULL, &i), KQ_ERR_INVALID_ARG,
           "kq_gguf_value_int: value is NULL");
    EXPECT("kq_gguf_value_int", "out NULL", kq_gguf_value_int(sc, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_value_int: out is NULL");
    EXPECT("kq_gguf_value_int", "an array", kq_gguf_value_int(arr, &i), KQ_ERR_TYPE,
           "key 'k.arr': value type is array, not an integer");
    EXPECT("kq_gguf_value_uint", "value NULL", kq_gguf_value_uint(NULL, &u), KQ_ERR_INVALID_ARG,
           "kq_gguf_value_uint: value is NULL");
    EXPECT("kq_gguf_value_uint", "out NULL", kq_gguf_value_uint(sc, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_value_uint: out is NULL");
    EXPECT("kq_gguf_value_float", "value NULL", kq_gguf_value_float(NULL, &f), KQ_ERR_INVALID_ARG,
           "kq_gguf_value_float: value is NULL");
    EXPECT("kq_gguf_value_float", "out NULL", kq_gguf_value_float(sc, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_value_float: out is NULL");
    EXPECT("kq_gguf_value_bool", "value NULL", kq_gguf_value_bool(NULL, &b), KQ_ERR_INVALID_ARG,
           "kq_gguf_value_bool: value is NULL");
    EXPECT("kq_gguf_value_bool", "out NULL", kq_gguf_value_bool(sc, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_value_bool: out is NULL");
    EXPECT("kq_gguf_value_string", "value NULL", kq_gguf_value_string(NULL, &s, &len),
           KQ_ERR_INVALID_ARG, "kq_gguf_value_string: value is NULL");
    EXPECT("kq_gguf_value_string", "s NULL", kq_gguf_value_string(sc, NULL, &len),
           KQ_ERR_INVALID_ARG, "kq_gguf_value_string: s is NULL");
    EXPECT("kq_gguf_value_string", "a scalar", kq_gguf_value_string(sc, &s, &len), KQ_ERR_TYPE,
           "key 'k.u32': value type is u32, not string");

    /* Element getters: NULL value, NULL out, index -1 and count, wrong array kind. */
    EXPECT("kq_gguf_array_int", "value NULL", kq_gguf_array_int(NULL, 0, &i), KQ_ERR_INVALID_ARG,
           "kq_gguf_array_int: value is NULL");
    EXPECT("kq_gguf_array_int", "out NULL", kq_gguf_array_int(arr, 0, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_array_int: out is NULL");
    EXPECT("kq_gguf_array_int", "index -1", kq_gguf_array_int(arr, -1, &i), KQ_ERR_RANGE,
           "key 'k.arr': index -1 is out of range (the array has 3 elements)");
    EXPECT("kq_gguf_array_int", "index count", kq_gguf_array_int(arr, 3, &i), KQ_ERR_RANGE,
           "key 'k.arr': index 3 is out of range (the array has 3 elements)");
    EXPECT("kq_gguf_array_int", "a scalar", kq_gguf_array_int(sc, 0, &i), KQ_ERR_TYPE,
           "key 'k.u32': value type is u32, not array");
    EXPECT("kq_gguf_array_int", "a string array", kq_gguf_array_int(strs, 1, &i), KQ_ERR_TYPE,
           "key 'k.strs' element 1: value type is string, not an integer");
    EXPECT("kq_gguf_array_uint", "value NULL", kq_gguf_array_uint(NULL, 0, &u), KQ_ERR_INVALID_ARG,
           "kq_gguf_array_uint: value is NULL");
    EXPECT("kq_gguf_array_uint", "index count", kq_gguf_array_uint(arr, 3, &u), KQ_ERR_RANGE,
           "index 3 is out of range");
    EXPECT("kq_gguf_array_float", "value NULL", kq_gguf_array_float(NULL, 0, &f),
           KQ_ERR_INVALID_ARG, "kq_gguf_array_float: value is NULL");
    EXPECT("kq_gguf_array_float", "a u32 array", kq_gguf_array_float(arr, 0, &f), KQ_ERR_TYPE,
           "key 'k.arr' element 0: value type is u32, not f32 or f64");
    EXPECT("kq_gguf_array_bool", "value NULL", kq_gguf_array_bool(NULL, 0, &b), KQ_ERR_INVALID_ARG,
           "kq_gguf_array_bool: value is NULL");
    EXPECT("kq_gguf_array_bool", "out NULL", kq_gguf_array_bool(arr, 0, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_array_bool: out is NULL");
    EXPECT("kq_gguf_array_string", "value NULL", kq_gguf_array_string(NULL, 0, &s, &len),
           KQ_ERR_INVALID_ARG, "kq_gguf_array_string: value is NULL");
    EXPECT("kq_gguf_array_string", "s NULL", kq_gguf_array_string(strs, 0, NULL, &len),
           KQ_ERR_INVALID_ARG, "kq_gguf_array_string: s is NULL");
    EXPECT("kq_gguf_array_string", "index count", kq_gguf_array_string(strs, 2, &s, &len),
           KQ_ERR_RANGE, "key 'k.strs': index 2 is out of range (the array has 2 elements)");
    EXPECT("kq_gguf_array_string", "a u32 array", kq_gguf_array_string(arr, 0, &s, &len),
           KQ_ERR_TYPE, "key 'k.arr' element 0: value type is u32, not string");
    EXPECT("kq_gguf_array_item", "value NULL", kq_gguf_array_item(NULL, 0, &item),
           KQ_ERR_INVALID_ARG, "kq_gguf_array_item: value is NULL");
    EXPECT("kq_gguf_array_item", "out NULL", kq_gguf_array_item(arr, 0, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_array_item: out is NULL");
    EXPECT("kq_gguf_array_item", "a u32 array", kq_gguf_array_item(arr, 0, &item), KQ_ERR_TYPE,
           "key 'k.arr' element 0: value type is u32, not array");
}

/* ---------------------------------------------------------------- writer */

static void writer_calls(const kq_gguf *g)
{
    kq_gguf_writer *w = (kq_gguf_writer *)&w;
    EXPECT("kq_gguf_writer_new", "out NULL", kq_gguf_writer_new(3, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_writer_new: out is NULL");
    EXPECT("kq_gguf_writer_new", "version 1", kq_gguf_writer_new(1, &w), KQ_ERR_UNSUPPORTED,
           "version = 1, only GGUF versions 2 and 3 are written");
    KT_CHECK(w == NULL, "kq_gguf_writer_new: out not NULL after a failure");
    EXPECT("kq_gguf_writer_new", "version 4", kq_gguf_writer_new(4, &w), KQ_ERR_UNSUPPORTED,
           "version = 4");
    set_marker();
    kq_gguf_writer_free(NULL);
    expect_plain("kq_gguf_writer_free", "NULL", 1, "no-op");
    if (!KT_OK(kq_gguf_writer_new(3, &w))) return;
    uint32_t u = 1, a48 = 48;
    uint64_t a64 = 64;
    uint32_t arr[2] = {1, 2};
    const char *strs[2] = {"x", NULL};
    size_t lens[2] = {1, 4};
    KT_OK(kq_gguf_writer_set(w, "dup", KQ_GGUF_U32, &u));

    EXPECT("kq_gguf_writer_set", "writer NULL", kq_gguf_writer_set(NULL, "k", KQ_GGUF_U32, &u),
           KQ_ERR_INVALID_ARG, "kq_gguf_writer_set: the writer is NULL");
    EXPECT("kq_gguf_writer_set", "key NULL", kq_gguf_writer_set(w, NULL, KQ_GGUF_U32, &u),
           KQ_ERR_INVALID_ARG, "kq_gguf_writer_set: key is NULL");
    EXPECT("kq_gguf_writer_set", "value NULL", kq_gguf_writer_set(w, "k", KQ_GGUF_U32, NULL),
           KQ_ERR_INVALID_ARG, "key 'k': value is NULL");
    EXPECT("kq_gguf_writer_set", "vtype string", kq_gguf_writer_set(w, "k", KQ_GGUF_STRING, "x"),
           KQ_ERR_INVALID_ARG, "vtype 8 (string) is not a scalar type");
    EXPECT("kq_gguf_writer_set", "vtype 13 (unknown)",
           kq_gguf_writer_set(w, "k", (kq_gguf_vtype)13, &u), KQ_ERR_INVALID_ARG,
           "vtype 13 (unknown) is not a scalar type");
    EXPECT("kq_gguf_writer_set", "duplicate key", kq_gguf_writer_set(w, "dup", KQ_GGUF_U32, &u),
           KQ_ERR_INVALID_ARG, "key 'dup' is already set (duplicate key)");
    EXPECT("kq_gguf_writer_set", "general.alignment as u64",
           kq_gguf_writer_set(w, "general.alignment", KQ_GGUF_U64, &a64), KQ_ERR_INVALID_ARG,
           "general.alignment must be a u32, not u64");
    EXPECT("kq_gguf_writer_set", "general.alignment 48",
           kq_gguf_writer_set(w, "general.alignment", KQ_GGUF_U32, &a48), KQ_ERR_INVALID_ARG,
           "general.alignment = 48 must be a nonzero power of two");
    EXPECT("kq_gguf_writer_set_string", "writer NULL",
           kq_gguf_writer_set_string(NULL, "k", "x", 1), KQ_ERR_INVALID_ARG,
           "kq_gguf_writer_set_string: the writer is NULL");
    EXPECT("kq_gguf_writer_set_string", "key NULL", kq_gguf_writer_set_string(w, NULL, "x", 1),
           KQ_ERR_INVALID_ARG, "kq_gguf_writer_set_string: key is NULL");
    EXPECT("kq_gguf_writer_set_string", "s NULL, len 3", kq_gguf_writer_set_string(w, "k", NULL, 3),
           KQ_ERR_INVALID_ARG, "key 'k': s is NULL with len = 3");
    EXPECT("kq_gguf_writer_set_array", "writer NULL",
           kq_gguf_writer_set_array(NULL, "k", KQ_GGUF_U32, arr, 2), KQ_ERR_INVALID_ARG,
           "kq_gguf_writer_set_array: the writer is NULL");
    EXPECT("kq_gguf_writer_set_array", "n = -1",
           kq_gguf_writer_set_array(w, "k", KQ_GGUF_U32, arr, -1), KQ_ERR_INVALID_ARG,
           "key 'k': n = -1 must be >= 0");
    EXPECT("kq_gguf_writer_set_array", "elems NULL, n 2",
           kq_gguf_writer_set_array(w, "k", KQ_GGUF_U32, NULL, 2), KQ_ERR_INVALID_ARG,
           "key 'k': elems is NULL with n = 2");
    EXPECT("kq_gguf_writer_set_array", "elem_type string",
           kq_gguf_writer_set_array(w, "k", KQ_GGUF_STRING, arr, 2), KQ_ERR_INVALID_ARG,
           "elem_type 8 (string) is not a scalar type");
    EXPECT("kq_gguf_writer_set_array", "n overflows size_t",
           kq_gguf_writer_set_array(w, "k", KQ_GGUF_U64, arr, INT64_MAX), KQ_ERR_INVALID_ARG,
           "elements overflow size_t");
    EXPECT("kq_gguf_writer_set_string_array", "writer NULL",
           kq_gguf_writer_set_string_array(NULL, "k", strs, NULL, 1), KQ_ERR_INVALID_ARG,
           "kq_gguf_writer_set_string_array: the writer is NULL");
    EXPECT("kq_gguf_writer_set_string_array", "n = -2",
           kq_gguf_writer_set_string_array(w, "k", strs, NULL, -2), KQ_ERR_INVALID_ARG,
           "key 'k': n = -2 must be >= 0");
    EXPECT("kq_gguf_writer_set_string_array", "strs NULL, n 2",
           kq_gguf_writer_set_string_array(w, "k", NULL, NULL, 2), KQ_ERR_INVALID_ARG,
           "key 'k': strs is NULL with n = 2");
    EXPECT("kq_gguf_writer_set_string_array", "strs[1] NULL, lens[1] 4",
           kq_gguf_writer_set_string_array(w, "k", strs, lens, 2), KQ_ERR_INVALID_ARG,
           "key 'k': strs[1] is NULL with length 4");
    EXPECT("kq_gguf_writer_set_value", "writer NULL",
           kq_gguf_writer_set_value(NULL, "k", kq_gguf_kv_value(g, 0)), KQ_ERR_INVALID_ARG,
           "kq_gguf_writer_set_value: the writer is NULL");
    EXPECT("kq_gguf_writer_set_value", "key NULL",
           kq_gguf_writer_set_value(w, NULL, kq_gguf_kv_value(g, 0)), KQ_ERR_INVALID_ARG,
           "kq_gguf_writer_set_value: key is NULL");
    EXPECT("kq_gguf_writer_set_value", "value NULL", kq_gguf_writer_set_value(w, "k", NULL),
           KQ_ERR_INVALID_ARG, "key 'k': value is NULL");

    float d[64] = {0};
    int64_t ne[2] = {32, 2}, ne0[2] = {32, 0}, neneg[2] = {32, -2}, ne100[2] = {100, 1};
    int64_t nebig[3] = {INT64_C(1) << 40, INT64_C(1) << 40, 1 << 20};
    KT_OK(kq_gguf_writer_add_tensor(w, "t", KQ_TYPE_F32, 2, ne, d, sizeof d));
    EXPECT("kq_gguf_writer_add_tensor", "writer NULL",
           kq_gguf_writer_add_tensor(NULL, "t2", KQ_TYPE_F32, 2, ne, d, sizeof d),
           KQ_ERR_INVALID_ARG, "kq_gguf_writer_add_tensor: the writer is NULL");
    EXPECT("kq_gguf_writer_add_tensor", "name NULL",
           kq_gguf_writer_add_tensor(w, NULL, KQ_TYPE_F32, 2, ne, d, sizeof d), KQ_ERR_INVALID_ARG,
           "kq_gguf_writer_add_tensor: name is NULL");
    EXPECT("kq_gguf_writer_add_tensor", "duplicate name",
           kq_gguf_writer_add_tensor(w, "t", KQ_TYPE_F32, 2, ne, d, sizeof d), KQ_ERR_INVALID_ARG,
           "tensor 't' is already added (duplicate name)");
    EXPECT("kq_gguf_writer_add_tensor", "type 99",
           kq_gguf_writer_add_tensor(w, "t2", 99, 2, ne, d, sizeof d), KQ_ERR_INVALID_ARG,
           "tensor 't2': type = 99 is not a known ggml type id");
    EXPECT("kq_gguf_writer_add_tensor", "n_dims 0",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_F32, 0, ne, d, sizeof d), KQ_ERR_INVALID_ARG,
           "tensor 't2': n_dims = 0 must be 1 to 4");
    EXPECT("kq_gguf_writer_add_tensor", "n_dims 5",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_F32, 5, ne, d, sizeof d), KQ_ERR_INVALID_ARG,
           "n_dims = 5 must be 1 to 4");
    EXPECT("kq_gguf_writer_add_tensor", "ne NULL",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_F32, 2, NULL, d, sizeof d),
           KQ_ERR_INVALID_ARG, "tensor 't2': ne is NULL");
    EXPECT("kq_gguf_writer_add_tensor", "ne[1] = 0",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_F32, 2, ne0, d, 0), KQ_ERR_INVALID_ARG,
           "tensor 't2': ne[1] = 0 must be > 0");
    EXPECT("kq_gguf_writer_add_tensor", "ne[1] = -2",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_F32, 2, neneg, d, sizeof d),
           KQ_ERR_INVALID_ARG, "ne[1] = -2 must be > 0");
    EXPECT("kq_gguf_writer_add_tensor", "ne[0] not a block multiple",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_Q4_K, 2, ne100, d, 144), KQ_ERR_INVALID_ARG,
           "ne[0] = 100 is not a multiple of the q4_K block size 256");
    EXPECT("kq_gguf_writer_add_tensor", "element count overflows",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_F32, 3, nebig, d, sizeof d),
           KQ_ERR_INVALID_ARG, "tensor 't2': the element count overflows");
    EXPECT("kq_gguf_writer_add_tensor", "nbytes one short",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_F32, 2, ne, d, sizeof d - 1),
           KQ_ERR_INVALID_ARG, "nbytes = 255, but f32 [32, 2, 1, 1] takes 256 bytes");
    EXPECT("kq_gguf_writer_add_tensor", "data NULL",
           kq_gguf_writer_add_tensor(w, "t2", KQ_TYPE_F32, 2, ne, NULL, sizeof d),
           KQ_ERR_INVALID_ARG, "tensor 't2': data is NULL");
    EXPECT("kq_gguf_writer_save", "writer NULL", kq_gguf_writer_save(NULL, "x.gguf"),
           KQ_ERR_INVALID_ARG, "kq_gguf_writer_save: the writer is NULL");
    EXPECT("kq_gguf_writer_save", "path NULL", kq_gguf_writer_save(w, NULL), KQ_ERR_INVALID_ARG,
           "kq_gguf_writer_save: path is NULL or empty");
    EXPECT("kq_gguf_writer_save", "path \"\"", kq_gguf_writer_save(w, ""), KQ_ERR_INVALID_ARG,
           "path is NULL or empty");
    EXPECT2("kq_gguf_writer_save", "a folder that does not exist",
            kq_gguf_writer_save(w, "/nonexistent-kq/x.gguf"), KQ_ERR_IO,
            "'/nonexistent-kq/x.gguf'", "No such file or directory");
    kq_gguf_writer_free(w);
}

/* ---------------------------------------------------------------- layers */

/* Loads from a file: the argument errors test_args.c does not cover. */
static void layers_from_gguf(kq_backend *b, const kq_gguf *g)
{
    kq_linear *l = (kq_linear *)&l;
    kq_experts *e = (kq_experts *)&e;
    EXPECT("kq_linear_from_gguf", "backend NULL", kq_linear_from_gguf(NULL, g, "w.f32", &l),
           KQ_ERR_INVALID_ARG, "kq_linear_from_gguf: backend is NULL");
    KT_CHECK(l == NULL, "kq_linear_from_gguf: out not NULL after a failure");
    EXPECT("kq_linear_from_gguf", "out NULL", kq_linear_from_gguf(b, g, "w.f32", NULL),
           KQ_ERR_INVALID_ARG, "kq_linear_from_gguf: out is NULL");
    EXPECT("kq_linear_from_gguf", "name NULL", kq_linear_from_gguf(b, g, NULL, &l),
           KQ_ERR_INVALID_ARG, "kq_linear_from_gguf: name is NULL");
    EXPECT("kq_linear_from_gguf", "missing tensor", kq_linear_from_gguf(b, g, "nope", &l),
           KQ_ERR_NOT_FOUND, "kq_linear_from_gguf: GGUF '");
    EXPECT("kq_linear_from_gguf", "a 3-D tensor", kq_linear_from_gguf(b, g, "exps", &l),
           KQ_ERR_INVALID_ARG,
           "tensor 'exps' has 3 dims [64, 2, 3, 1]; a linear needs 2 (3-D expert stacks load "
           "with kq_experts_from_gguf)");
    EXPECT2("kq_linear_from_gguf", "an iq2_xxs tensor", kq_linear_from_gguf(b, g, "w.iq2_xxs", &l),
            KQ_ERR_UNSUPPORTED, "tensor 'w.iq2_xxs'", "type iq2_xxs is not supported for weights");

    const char *names[3] = {"w.q4_K", "w.f32", NULL};
    const char *same_k[2] = {"w.q4_K", "w.q4_K"};
    EXPECT2("kq_linear_from_gguf_fused", "parts with different K",
            kq_linear_from_gguf_fused(b, g, names, 2, &l), KQ_ERR_INVALID_ARG,
            "tensor 'w.f32' has rows of 64, but 'w.q4_K' has 256",
            "fused parts need the same K");
    EXPECT("kq_linear_from_gguf_fused", "names NULL", kq_linear_from_gguf_fused(b, g, NULL, 2, &l),
           KQ_ERR_INVALID_ARG, "kq_linear_from_gguf_fused: names is NULL");
    EXPECT("kq_linear_from_gguf_fused", "n_names 0", kq_linear_from_gguf_fused(b, g, names, 0, &l),
           KQ_ERR_INVALID_ARG, "n_names = 0 must be in [1, 64]");
    EXPECT("kq_linear_from_gguf_fused", "n_names -1",
           kq_linear_from_gguf_fused(b, g, names, -1, &l), KQ_ERR_INVALID_ARG,
           "n_names = -1 must be in [1, 64]");
    EXPECT("kq_linear_from_gguf_fused", "n_names 65",
           kq_linear_from_gguf_fused(b, g, names, 65, &l), KQ_ERR_INVALID_ARG,
           "n_names = 65 must be in [1, 64]");
    EXPECT("kq_linear_from_gguf_fused", "names[1] NULL",
           kq_linear_from_gguf_fused(b, g, names + 1, 2, &l), KQ_ERR_INVALID_ARG,
           "kq_linear_from_gguf_fused: names[1] is NULL");
    EXPECT("kq_linear_from_gguf_fused", "out NULL",
           kq_linear_from_gguf_fused(b, g, same_k, 2, NULL), KQ_ERR_INVALID_ARG,
           "kq_linear_from_gguf_fused: out is NULL");

    EXPECT("kq_experts_from_gguf", "backend NULL", kq_experts_from_gguf(NULL, g, "exps", &e),
           KQ_ERR_INVALID_ARG, "kq_experts_from_gguf: backend is NULL");
    KT_CHECK(e == NULL, "kq_experts_from_gguf: out not NULL after a failure");
    EXPECT("kq_experts_from_gguf", "out NULL", kq_experts_from_gguf(b, g, "exps", NULL),
           KQ_ERR_INVALID_ARG, "kq_experts_from_gguf: out is NULL");
    EXPECT("kq_experts_from_gguf", "name NULL", kq_experts_from_gguf(b, g, NULL, &e),
           KQ_ERR_INVALID_ARG, "kq_experts_from_gguf: name is NULL");
    EXPECT("kq_experts_from_gguf", "missing tensor", kq_experts_from_gguf(b, g, "nope", &e),
           KQ_ERR_NOT_FOUND, "no tensor named 'nope'");
    EXPECT("kq_experts_from_gguf", "a 2-D tensor", kq_experts_from_gguf(b, g, "w.f32", &e),
           KQ_ERR_INVALID_ARG, "tensor 'w.f32' has 2 dims; stacked experts need 3 ([K, N, E])");
}

/* Loads from memory and forwards: what test_args.c leaves out. */
static void layers_from_memory(kq_backend *b, kq_backend *other)
{
    kt_weight w;
    if (!KT_CHECK(kt_weight_make(&w, KQ_TYPE_Q8_0, 8, 64) == 0, "weight")) return;
    kq_linear *l = (kq_linear *)&l;
    kq_experts *e = (kq_experts *)&e;
    uint8_t q2[66] = {0}; /* one iq2_xxs block */
    kq_part parts[2] = {{w.type, w.bytes, w.nbytes, 8}, {KQ_TYPE_IQ2_XXS, q2, sizeof q2, 1}};
    EXPECT("kq_linear_load_fused", "backend NULL", kq_linear_load_fused(NULL, parts, 1, 64, &l),
           KQ_ERR_INVALID_ARG, "kq_linear_load_fused: backend is NULL");
    KT_CHECK(l == NULL, "kq_linear_load_fused: out not NULL after a failure");
    EXPECT("kq_linear_load_fused", "out NULL", kq_linear_load_fused(b, parts, 1, 64, NULL),
           KQ_ERR_INVALID_ARG, "kq_linear_load_fused: out is NULL");
    EXPECT("kq_linear_load_fused", "n_parts 65", kq_linear_load_fused(b, parts, 65, 64, &l),
           KQ_ERR_INVALID_ARG, "n_parts = 65 must be in [1, 64]");
    EXPECT2("kq_linear_load_fused", "part 1 of an unsupported type",
            kq_linear_load_fused(b, parts, 2, 64, &l), KQ_ERR_UNSUPPORTED,
            "kq_linear_load_fused: part 1", "type iq2_xxs is not supported for weights");
    /* Parts with different K: K is one argument, so a part written for
     * another K has the wrong byte count for this one. */
    parts[1] = parts[0];
    parts[1].nbytes = w.nbytes * 2;
    EXPECT2("kq_linear_load_fused", "part 1 with rows of another K",
            kq_linear_load_fused(b, parts, 2, 64, &l), KQ_ERR_INVALID_ARG,
            "part 1: nbytes = 1088", "expected 8 rows x 68 bytes (q8_0, 64 cols) = 544");
    parts[1].nbytes = w.nbytes;
    parts[1].n_rows = 0;
    EXPECT("kq_linear_load_fused", "part 1 with n_rows 0",
           kq_linear_load_fused(b, parts, 2, 64, &l), KQ_ERR_INVALID_ARG,
           "part 1: n_rows = 0 must be > 0");

    EXPECT("kq_experts_load", "bytes NULL", kq_experts_load(b, w.type, NULL, w.nbytes, 4, 2, 64, &e),
           KQ_ERR_INVALID_ARG, "kq_experts_load: bytes is NULL");
    KT_CHECK(e == NULL, "kq_experts_load: out not NULL after a failure");
    EXPECT("kq_experts_load", "type 99", kq_experts_load(b, 99, w.bytes, w.nbytes, 4, 2, 64, &e),
           KQ_ERR_INVALID_ARG, "kq_experts_load: type = 99 is not a known ggml type id");
    EXPECT("kq_experts_load", "type q8_K",
           kq_experts_load(b, KQ_TYPE_Q8_K, w.bytes, w.nbytes, 4, 2, 256, &e), KQ_ERR_UNSUPPORTED,
           "type q8_K is not supported for weights");
    EXPECT("kq_experts_load", "n_cols 48",
           kq_experts_load(b, w.type, w.bytes, w.nbytes, 4, 2, 48, &e), KQ_ERR_INVALID_ARG,
           "n_cols = 48 must be a positive multiple of the q8_0 block (32)");
    EXPECT("kq_experts_load", "n_experts -1",
           kq_experts_load(b, w.type, w.bytes, w.nbytes, -1, 2, 64, &e), KQ_ERR_INVALID_ARG,
           "n_experts = -1 must be > 0");
    EXPECT("kq_experts_load", "n_rows 0", kq_experts_load(b, w.type, w.bytes, w.nbytes, 4, 0, 64, &e),
           KQ_ERR_INVALID_ARG, "n_rows = 0 must be > 0");

    float x[8 * 64] = {0}, y[64] = {0};
    if (KT_OK(kq_experts_load(b, w.type, w.bytes, w.nbytes, 4, 2, 64, &e))) {
        int32_t ids[4] = {0, 1, -1, 3};
        EXPECT("kq_experts_forward", "an id of -1",
               kq_experts_forward(b, e, x, 64, 0, ids, 2, 2, y), KQ_ERR_RANGE,
               "ids[2] (token 1, slot 0) = -1 is outside [0, 4)");
        ids[2] = 4;
        EXPECT("kq_experts_forward", "an id equal to n_experts",
               kq_experts_forward(b, e, x, 64, 0, ids, 2, 2, y), KQ_ERR_RANGE,
               "ids[2] (token 1, slot 0) = 4 is outside [0, 4)");
        ids[2] = 2;
        EXPECT("kq_experts_forward", "experts of another backend",
               kq_experts_forward(other, e, x, 64, 0, ids, 2, 2, y), KQ_ERR_INVALID_ARG,
               "the experts were loaded on backend 'cpu-ref', not on this 'cpu' backend");
        EXPECT("kq_experts_forward", "y overlaps ids",
               kq_experts_forward(b, e, x, 64, 0, ids, 1, 2, (float *)ids), KQ_ERR_INVALID_ARG,
               "kq_experts_forward: y overlaps ids");
        KT_OK(kq_experts_forward(b, e, NULL, 64, 0, NULL, 0, 2, NULL)); /* m = 0: nothing read */
        set_marker();
        expect_plain("kq_experts_count/rows/cols", "NULL experts",
                     kq_experts_count(NULL) == 0 && kq_experts_rows(NULL) == 0 &&
                         kq_experts_cols(NULL) == 0 && kq_experts_is_zero_copy(NULL) == 0,
                     "0");
        kq_experts_free(e);
    }
    if (KT_OK(kq_linear_load(b, w.type, w.bytes, w.nbytes, 8, 64, &l))) {
        KT_OK(kq_linear_forward(b, l, NULL, NULL, 0)); /* m = 0: nothing read or written */
        EXPECT("kq_linear_forward", "y overlaps the end of x",
               kq_linear_forward(b, l, x, x + 63, 1), KQ_ERR_INVALID_ARG,
               "kq_linear_forward: y overlaps x");
        kq_linear_free(l);
    }
    set_marker();
    kq_linear_free(NULL);
    expect_plain("kq_linear_free", "NULL", 1, "no-op");
    kq_experts_free(NULL);
    expect_plain("kq_experts_free", "NULL", 1, "no-op");
    kq_backend_close(NULL);
    expect_plain("kq_backend_close", "NULL", 1, "no-op");
    expect_plain("kq_backend_name/device", "NULL backend",
                 kq_backend_name(NULL) == NULL && kq_backend_device(NULL) == NULL, "NULL");
    expect_plain("kq_linear_rows/cols/n_parts/is_zero_copy", "NULL linear",
                 kq_linear_rows(NULL) == 0 && kq_linear_cols(NULL) == 0 &&
                     kq_linear_n_parts(NULL) == 0 && kq_linear_is_zero_copy(NULL) == 0,
                 "0");
    kt_weight_free(&w);
}

/* Version, status and type queries that take any value. */
static void plain_queries(void)
{
    set_marker();
    expect_plain("kq_status_name", "status 99", strcmp(kq_status_name((kq_status)99),
                                                      "KQ_ERR_UNKNOWN") == 0,
                 "\"KQ_ERR_UNKNOWN\"");
    expect_plain("kq_type_name", "type -1, 4 (removed), 99",
                 !kq_type_name(-1) && !kq_type_name(4) && !kq_type_name(99), "NULL");
    expect_plain("kq_type_block_elems/bytes", "type -1, 99",
                 kq_type_block_elems(-1) == 0 && kq_type_block_bytes(99) == 0, "0");
    expect_plain("kq_type_is_supported", "type -1, iq2_xxs, q8_K",
                 !kq_type_is_supported(-1) && !kq_type_is_supported(KQ_TYPE_IQ2_XXS) &&
                     !kq_type_is_supported(KQ_TYPE_Q8_K),
                 "0");
    expect_plain("kq_version", "(none)", strcmp(kq_version(), KQ_VERSION_STRING) == 0,
                 "the version string");
    KT_CHECK(kq_backend_sync(NULL) == KQ_ERR_INVALID_ARG && kq_last_error()[0] != '\0',
             "a failing call sets the message");
    kq_type t;
    KT_OK(kq_type_from_name("f32", &t));
    KT_CHECK(kq_last_error()[0] == '\0', "a succeeding status call clears the message");
}

int main(void)
{
    kt_init("test_misuse");
    const char *pe = getenv("KQ_MISUSE_PRINT");
    g_print = pe && *pe && *pe != '0';
    if (g_print) printf("| call | misuse | status | message |\n|---|---|---|---|\n");
    plain_queries();
    char *path = make_file();
    kq_gguf *g = NULL;
    if (path && KT_OK(kq_gguf_open(path, &g))) {
        gguf_open_close(path);
        gguf_queries(g);
        gguf_get_by_key(g);
        gguf_values(g);
        writer_calls(g);
        kq_backend *b = NULL, *other = NULL;
        if (KT_OK(kq_backend_open("cpu-ref", &b)) && KT_OK(kq_backend_open("cpu", &other))) {
            layers_from_gguf(b, g);
            layers_from_memory(b, other);
        }
        kq_backend_close(b);
        kq_backend_close(other);
        kq_gguf_close(g);
    }
    if (path) unlink(path);
    free(path);
    printf("test_misuse: %d misuse cases checked\n", g_cases);
    return kt_finish();
}
