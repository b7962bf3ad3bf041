/* Writes the seed corpus: small valid files made with kquant's own writer
 * (every value type, every tensor type the reader sizes, each weight type
 * as a linear, fused sets, experts) and small invalid ones built byte by
 * byte (one per family of reader error). Deterministic: the same files on
 * every run. Usage: kq_make_corpus OUT_GGUF_DIR OUT_LOAD_DIR (the load
 * seeds are written to both). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kquant.h"

static const char *g_dir;
static uint64_t g_state = 42;

static uint64_t next(void)
{
    uint64_t z = (g_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void die(const char *what)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, kq_last_error());
    exit(1);
}

static const char *out_path(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

/* ---------------------------------------------------------------- valid files */

/* A weight of `type`, rows x cols (times stack), from normal-ish values. */
static void *weight_bytes(int type, int64_t rows, int64_t cols, size_t *nbytes)
{
    size_t row;
    if (kq_row_size(type, cols, &row) != KQ_OK) die("row size");
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = (float)((int64_t)(next() % 2001) - 1000) * 1e-4f;
    *nbytes = row * (size_t)rows;
    void *q = malloc(*nbytes);
    if (kq_quantize(type, w, rows, cols, q, *nbytes) != KQ_OK) die("quantize");
    free(w);
    return q;
}

static void add_weight(kq_gguf_writer *w, const char *name, int type, int n_dims, int64_t k,
                       int64_t n, int64_t e)
{
    size_t nbytes;
    void *q = weight_bytes(type, n * e, k, &nbytes);
    int64_t ne[3] = {k, n, e};
    if (kq_gguf_writer_add_tensor(w, name, type, n_dims, ne, q, nbytes) != KQ_OK) die(name);
    free(q);
}

static void save(kq_gguf_writer *w, const char *name)
{
    if (kq_gguf_writer_save(w, out_path(name)) != KQ_OK) die(name);
    kq_gguf_writer_free(w);
}

static kq_gguf_writer *writer(uint32_t version)
{
    kq_gguf_writer *w = NULL;
    if (kq_gguf_writer_new(version, &w) != KQ_OK) die("writer");
    return w;
}

static void set_u32(kq_gguf_writer *w, const char *key, uint32_t v)
{
    if (kq_gguf_writer_set(w, key, KQ_GGUF_U32, &v) != KQ_OK) die(key);
}

/* Every scalar type, strings, arrays of each type and of strings. */
static void add_all_metadata(kq_gguf_writer *w)
{
    static const int types[] = {KQ_GGUF_U8, KQ_GGUF_I8, KQ_GGUF_U16, KQ_GGUF_I16,
                                KQ_GGUF_U32, KQ_GGUF_I32, KQ_GGUF_F32, KQ_GGUF_BOOL,
                                KQ_GGUF_U64, KQ_GGUF_I64, KQ_GGUF_F64};
    uint8_t raw[8 * 5];
    char key[64];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        for (size_t j = 0; j < sizeof raw; j++) raw[j] = (uint8_t)next();
        if (types[i] == KQ_GGUF_F32) {
            float f[5] = {1.5f, -0.0f, INFINITY, NAN, 3e38f};
            memcpy(raw, f, sizeof f);
        }
        snprintf(key, sizeof key, "test.%s", kq_gguf_vtype_name(types[i]));
        if (kq_gguf_writer_set(w, key, (kq_gguf_vtype)types[i], raw) != KQ_OK) die(key);
        snprintf(key, sizeof key, "test.array.%s", kq_gguf_vtype_name(types[i]));
        if (kq_gguf_writer_set_array(w, key, (kq_gguf_vtype)types[i], raw, 5) != KQ_OK) die(key);
    }
    if (kq_gguf_writer_set_string(w, "general.name", "corpus", 6) != KQ_OK) die("name");
    if (kq_gguf_writer_set_string(w, "test.nul", "a\0b", 3) != KQ_OK) die("nul");
    const char *toks[] = {"<s>", "", "\xe2\x96\x81hello"};
    if (kq_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", toks, NULL, 3) != KQ_OK)
        die("tokens");
    if (kq_gguf_writer_set_array(w, "test.empty", KQ_GGUF_U32, NULL, 0) != KQ_OK) die("empty");
}

static void valid_gguf_files(void)
{
    /* Metadata only, both versions. */
    kq_gguf_writer *w = writer(3);
    add_all_metadata(w);
    save(w, "meta-v3.gguf");
    w = writer(2);
    add_all_metadata(w);
    save(w, "meta-v2.gguf");
    save(writer(3), "empty.gguf");

    /* One block-sized tensor of every type id the reader knows. */
    w = writer(3);
    set_u32(w, "general.alignment", 64);
    for (int id = 0; id < 64; id++) {
        int64_t be = kq_type_block_elems(id);
        size_t bb = kq_type_block_bytes(id);
        if (be <= 0 || bb == 0) continue;
        uint8_t *d = malloc(bb * 2);
        for (size_t j = 0; j < bb * 2; j++) d[j] = (uint8_t)next();
        int64_t ne[2] = {be, 2};
        char name[32];
        snprintf(name, sizeof name, "t.%s", kq_type_name(id));
        if (kq_gguf_writer_add_tensor(w, name, id, 2, ne, d, bb * 2) != KQ_OK) die(name);
        free(d);
    }
    save(w, "every-type.gguf");

    /* Shapes: 1-D, 4-D, alignment 1. */
    w = writer(3);
    set_u32(w, "general.alignment", 1);
    float v[32];
    for (int i = 0; i < 32; i++) v[i] = (float)i;
    int64_t ne1[1] = {32}, ne4[4] = {8, 2, 1, 2};
    if (kq_gguf_writer_add_tensor(w, "one.d", KQ_TYPE_F32, 1, ne1, v, sizeof v) != KQ_OK ||
        kq_gguf_writer_add_tensor(w, "four.d", KQ_TYPE_F32, 4, ne4, v, sizeof v) != KQ_OK)
        die("shapes");
    save(w, "shapes-align1.gguf");
}

static void valid_load_files(void)
{
    static const int types[] = {KQ_TYPE_F32,  KQ_TYPE_F16,  KQ_TYPE_BF16, KQ_TYPE_Q4_0,
                                KQ_TYPE_Q8_0, KQ_TYPE_Q4_K, KQ_TYPE_Q5_K, KQ_TYPE_Q6_K};
    char name[64];
    /* One small linear and one small expert stack per weight type. */
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int t = types[i];
        int64_t k = kq_type_block_elems(t) > 1 ? kq_type_block_elems(t) : 64;
        kq_gguf_writer *w = writer(3);
        add_weight(w, "blk.0.attn_q.weight", t, 2, k, 3, 1);
        add_weight(w, "blk.0.ffn_up_exps.weight", t, 3, k, 2, 3);
        snprintf(name, sizeof name, "layer-%s.gguf", kq_type_name(t));
        save(w, name);
    }
    /* A fused q/k/v set of mixed types, and an unsupported type beside it. */
    kq_gguf_writer *w = writer(3);
    set_u32(w, "general.alignment", 32);
    add_weight(w, "blk.0.attn_q.weight", KQ_TYPE_Q4_K, 2, 256, 4, 1);
    add_weight(w, "blk.0.attn_k.weight", KQ_TYPE_Q6_K, 2, 256, 2, 1);
    add_weight(w, "blk.0.attn_v.weight", KQ_TYPE_Q8_0, 2, 256, 2, 1);
    add_weight(w, "blk.0.attn_norm.weight", KQ_TYPE_F32, 1, 256, 1, 1);
    uint8_t q2[84 * 2];
    for (size_t j = 0; j < sizeof q2; j++) q2[j] = (uint8_t)next();
    int64_t ne[2] = {256, 2};
    if (kq_gguf_writer_add_tensor(w, "blk.0.q2.weight", KQ_TYPE_Q2_K, 2, ne, q2, sizeof q2))
        die("q2_K");
    save(w, "fused-qkv.gguf");
    /* Experts as a 4-D tensor with ne[3] = 1, and as a single expert. */
    w = writer(2);
    size_t nb;
    void *q = weight_bytes(KQ_TYPE_Q8_0, 4 * 5, 64, &nb);
    int64_t ne4[4] = {64, 5, 4, 1}, ne3[3] = {64, 20, 1};
    if (kq_gguf_writer_add_tensor(w, "exps.4d", KQ_TYPE_Q8_0, 4, ne4, q, nb) != KQ_OK ||
        kq_gguf_writer_add_tensor(w, "exps.one", KQ_TYPE_Q8_0, 3, ne3, q, nb) != KQ_OK)
        die("experts");
    free(q);
    save(w, "experts-shapes.gguf");
}

/* ---------------------------------------------------------------- invalid files */

typedef struct bytes {
    uint8_t p[4096];
    size_t n;
} bytes;

static void put(bytes *b, const void *s, size_t n)
{
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void str(bytes *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void hdr(bytes *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void tinfo(bytes *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                  uint64_t offset)
{
    str(b, name);
    u32(b, n_dims);
    for (uint32_t j = 0; j < n_dims; j++) u64(b, ne[j]);
    u32(b, type);
    u64(b, offset);
}
static void pad_zeros(bytes *b, size_t align, size_t extra)
{
    while (b->n % align) b->p[b->n++] = 0;
    memset(b->p + b->n, 0, extra);
    b->n += extra;
}
static void emit(const bytes *b, const char *name)
{
    FILE *f = fopen(out_path(name), "wb");
    if (!f || fwrite(b->p, 1, b->n, f) != b->n || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", out_path(name));
        exit(1);
    }
}

static void invalid_files(void)
{
    bytes b;
    uint64_t ne1[1] = {32}, ne2[2] = {32, 2};
    hdr(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    emit(&b, "bad-magic.gguf");
    hdr(&b, 1, 0, 0);
    emit(&b, "version-1.gguf");
    hdr(&b, 3, 0, 0);
    b.n = 20;
    emit(&b, "truncated-header.gguf");
    hdr(&b, 3, 1ull << 60, 1ull << 60);
    emit(&b, "huge-counts.gguf");
    hdr(&b, 3, 0, 1);
    str(&b, "deep");
    u32(&b, KQ_GGUF_ARRAY);
    for (int d = 0; d < 17; d++) {
        u32(&b, KQ_GGUF_ARRAY);
        u64(&b, 1);
    }
    u32(&b, KQ_GGUF_U8);
    u64(&b, 0);
    emit(&b, "nested-too-deep.gguf");
    /* Valid: an array of two arrays (of u32 and of strings), 3 levels deep. */
    hdr(&b, 3, 0, 1);
    str(&b, "nest");
    u32(&b, KQ_GGUF_ARRAY);
    u32(&b, KQ_GGUF_ARRAY);
    u64(&b, 2);
    u32(&b, KQ_GGUF_U32);
    u64(&b, 2);
    u32(&b, 1);
    u32(&b, 2);
    u32(&b, KQ_GGUF_STRING);
    u64(&b, 2);
    str(&b, "x");
    str(&b, "");
    emit(&b, "nested-valid.gguf");
    hdr(&b, 3, 0, 1);
    str(&b, "s");
    u32(&b, KQ_GGUF_STRING);
    u64(&b, 1ull << 62);
    emit(&b, "huge-string.gguf");
    hdr(&b, 3, 2, 0);
    tinfo(&b, "a", 2, ne2, KQ_TYPE_F32, 0);
    tinfo(&b, "b", 1, ne1, KQ_TYPE_F32, 128);
    pad_zeros(&b, 32, 512);
    emit(&b, "overlap.gguf");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "a", 1, ne1, KQ_TYPE_F32, 8);
    pad_zeros(&b, 32, 256);
    emit(&b, "misaligned.gguf");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "a", 1, ne1, 99, 0);
    pad_zeros(&b, 32, 256);
    emit(&b, "unknown-type.gguf");
    hdr(&b, 3, 1, 0);
    uint64_t big[3] = {1ull << 32, 1ull << 30, 4};
    tinfo(&b, "a", 3, big, KQ_TYPE_F32, 0);
    pad_zeros(&b, 32, 0);
    emit(&b, "dims-overflow.gguf");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUT_GGUF_DIR OUT_LOAD_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    valid_gguf_files();
    invalid_files();
    /* The load seeds go to both folders (the reader harness reads them
     * too), the same bytes in each. */
    uint64_t state = g_state;
    g_dir = argv[2];
    valid_load_files();
    g_state = state;
    g_dir = argv[1];
    valid_load_files();
    return 0;
}
