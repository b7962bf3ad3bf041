/* kq info: what a GGUF file holds, through the public reader API only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kquant.h"
#include "kq.h"
#include "print_escaped.h"

#define SHOW_ELEMS 8    /* array elements shown before "..." */
#define SHOW_CHARS 72   /* string characters shown before "..." */

static void print_string(const char *s, size_t len)
{
    putchar('"');
    kq_print_escaped(stdout, s, len, SHOW_CHARS, 1);
    putchar('"');
}

/* The shortest decimal that reads back as the same value: 1e-05, not
 * 9.99999975e-06, for an f32 stored from 1e-5. */
static void print_float(double f, int is_f32)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, f);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)f : back == f) break;
    }
    fputs(buf, stdout);
}

static void print_scalar(const kq_gguf_value *v, kq_gguf_vtype t)
{
    int64_t i;
    uint64_t u;
    double f;
    int b;
    const char *s;
    size_t len;
    switch (t) {
    case KQ_GGUF_U8: case KQ_GGUF_U16: case KQ_GGUF_U32: case KQ_GGUF_U64:
        if (kq_gguf_value_uint(v, &u) == KQ_OK) printf("%" PRIu64, u);
        break;
    case KQ_GGUF_I8: case KQ_GGUF_I16: case KQ_GGUF_I32: case KQ_GGUF_I64:
        if (kq_gguf_value_int(v, &i) == KQ_OK) printf("%" PRId64, i);
        break;
    case KQ_GGUF_F32: case KQ_GGUF_F64:
        if (kq_gguf_value_float(v, &f) == KQ_OK) print_float(f, t == KQ_GGUF_F32);
        break;
    case KQ_GGUF_BOOL:
        if (kq_gguf_value_bool(v, &b) == KQ_OK) fputs(b ? "true" : "false", stdout);
        break;
    case KQ_GGUF_STRING:
        if (kq_gguf_value_string(v, &s, &len) == KQ_OK) print_string(s, len);
        break;
    case KQ_GGUF_ARRAY:
        break;
    }
}

static void print_value(const kq_gguf_value *v, int depth);

static void print_element(const kq_gguf_value *v, kq_gguf_vtype et, int64_t i, int depth)
{
    int64_t iv;
    uint64_t u;
    double f;
    int b;
    const char *s;
    size_t len;
    const kq_gguf_value *item;
    switch (et) {
    case KQ_GGUF_U8: case KQ_GGUF_U16: case KQ_GGUF_U32: case KQ_GGUF_U64:
        if (kq_gguf_array_uint(v, i, &u) == KQ_OK) printf("%" PRIu64, u);
        break;
    case KQ_GGUF_I8: case KQ_GGUF_I16: case KQ_GGUF_I32: case KQ_GGUF_I64:
        if (kq_gguf_array_int(v, i, &iv) == KQ_OK) printf("%" PRId64, iv);
        break;
    case KQ_GGUF_F32: case KQ_GGUF_F64:
        if (kq_gguf_array_float(v, i, &f) == KQ_OK) print_float(f, et == KQ_GGUF_F32);
        break;
    case KQ_GGUF_BOOL:
        if (kq_gguf_array_bool(v, i, &b) == KQ_OK) fputs(b ? "true" : "false", stdout);
        break;
    case KQ_GGUF_STRING:
        if (kq_gguf_array_string(v, i, &s, &len) == KQ_OK) print_string(s, len);
        break;
    case KQ_GGUF_ARRAY:
        if (kq_gguf_array_item(v, i, &item) == KQ_OK) print_value(item, depth + 1);
        break;
    }
}

static void print_value(const kq_gguf_value *v, int depth)
{
    kq_gguf_vtype t = kq_gguf_value_type(v);
    if (t != KQ_GGUF_ARRAY) {
        print_scalar(v, t);
        return;
    }
    kq_gguf_vtype et;
    int64_t n;
    if (kq_gguf_value_array(v, &et, &n) != KQ_OK) return;
    const char *en = kq_gguf_vtype_name(et);
    printf("[%s x %" PRId64 "]", en ? en : "?", n);
    if (depth > 2) { /* deeper nests say only their size */
        if (n) fputs(" ...", stdout);
        return;
    }
    int64_t shown = n < SHOW_ELEMS ? n : SHOW_ELEMS;
    if (et == KQ_GGUF_STRING && shown > 4) shown = 4;
    fputs(n ? " " : "", stdout);
    for (int64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", stdout);
        print_element(v, et, i, depth);
    }
    if (shown < n) fputs(", ...", stdout);
}

static void shape_string(const kq_tensor_info *t, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < t->n_dims && used < cap; d++) {
        int n = snprintf(buf + used, cap - used, "%s%" PRId64, d ? " x " : "", t->ne[d]);
        if (n < 0) break;
        used += (size_t)n;
    }
}

typedef struct type_total {
    int type;
    int64_t tensors;
    uint64_t bytes, elems;
} type_total;

static void add_total(type_total *totals, int *n, const kq_tensor_info *t)
{
    int i = 0;
    while (i < *n && totals[i].type != t->type) i++;
    if (i == *n) {
        if (*n == 64) return;
        totals[(*n)++] = (type_total){t->type, 0, 0, 0};
    }
    uint64_t elems = 1;
    for (int d = 0; d < 4; d++) elems *= (uint64_t)t->ne[d];
    totals[i].tensors++;
    totals[i].bytes += t->nbytes;
    totals[i].elems += elems;
}

static void print_metadata(const kq_gguf *g)
{
    int64_t n = kq_gguf_n_kv(g);
    printf("\nmetadata: %" PRId64 " key%s\n", n, n == 1 ? "" : "s");
    for (int64_t i = 0; i < n; i++) {
        const kq_gguf_value *v = kq_gguf_kv_value(g, i);
        const char *tn = kq_gguf_vtype_name(kq_gguf_value_type(v));
        char key[KQ_ESC_CAP];
        printf("  %-40s %-6s ", kq_escape_str(key, sizeof key, kq_gguf_kv_key(g, i)), tn ? tn : "?");
        print_value(v, 0);
        putchar('\n');
    }
}

static int print_tensors(const kq_gguf *g)
{
    int64_t n = kq_gguf_n_tensors(g);
    type_total totals[64];
    int n_totals = 0;
    uint64_t all_bytes = 0, all_elems = 0;
    printf("\ntensors: %" PRId64 "\n", n);
    printf("  %-40s %-8s %-26s %14s %14s\n", "name", "type", "shape (ne[0] first)", "bytes",
           "offset");
    for (int64_t i = 0; i < n; i++) {
        kq_tensor_info t;
        if (kq_gguf_tensor(g, i, &t) != KQ_OK) return kq_tool_error("info", "tensor table");
        char shape[96];
        shape_string(&t, shape, sizeof shape);
        const char *tn = kq_type_name(t.type);
        char name[KQ_ESC_CAP];
        printf("  %-40s %-8s %-26s %14" PRIu64 " %14" PRIu64 "\n",
               kq_escape_str(name, sizeof name, t.name), tn ? tn : "?", shape, t.nbytes, t.offset);
        add_total(totals, &n_totals, &t);
    }
    printf("\ntotals by type:\n  %-8s %8s %16s %16s %12s\n", "type", "tensors", "elements",
           "bytes", "bits/weight");
    for (int i = 0; i < n_totals; i++) {
        const type_total *tt = &totals[i];
        const char *tn = kq_type_name(tt->type);
        printf("  %-8s %8" PRId64 " %16" PRIu64 " %16" PRIu64 " %12.3f\n", tn ? tn : "?",
               tt->tensors, tt->elems, tt->bytes,
               tt->elems ? 8.0 * (double)tt->bytes / (double)tt->elems : 0.0);
        all_bytes += tt->bytes;
        all_elems += tt->elems;
    }
    printf("  %-8s %8" PRId64 " %16" PRIu64 " %16" PRIu64 " %12.3f\n", "all", n, all_elems,
           all_bytes, all_elems ? 8.0 * (double)all_bytes / (double)all_elems : 0.0);
    return 0;
}

int kq_cmd_info(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kq info FILE.gguf\n");
        return 2;
    }
    kq_gguf *g = NULL;
    if (kq_gguf_open(argv[1], &g) != KQ_OK) return kq_tool_error("info", argv[1]);
    char path[KQ_ESC_CAP];
    printf("file:        %s\n", kq_escape_str(path, sizeof path, argv[1]));
    printf("gguf:        version %u, %" PRIu64 " bytes, alignment %" PRIu64
           ", tensor data at %" PRIu64 "\n",
           kq_gguf_version(g), kq_gguf_file_size(g), kq_gguf_alignment(g),
           kq_gguf_data_offset(g));
    const char *s;
    size_t len;
    /* Bounded and escaped: "%.*s" with (int)len went negative past INT_MAX
     * and printed to the first NUL, past the mapping if there was none. */
    if (kq_gguf_get_string(g, "general.architecture", &s, &len) == KQ_OK) {
        fputs("arch:        ", stdout);
        kq_print_escaped(stdout, s, len, SHOW_CHARS, 0);
        putchar('\n');
    }
    if (kq_gguf_get_string(g, "general.name", &s, &len) == KQ_OK) {
        fputs("name:        ", stdout);
        kq_print_escaped(stdout, s, len, SHOW_CHARS, 0);
        putchar('\n');
    }
    print_metadata(g);
    int rc = print_tensors(g);
    kq_gguf_close(g);
    return rc;
}
