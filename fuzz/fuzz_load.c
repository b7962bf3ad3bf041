/* libFuzzer harness from a parsed file to compute: every tensor of a file
 * that opens is loaded as a linear (2-D) or as experts (3-D) on the
 * reference backend, from the mapping in place and, for small ones, from a
 * caller copy; 2-D tensors sharing K are also fused (in place and from
 * copies), and a pair of different K must be refused; the file is closed
 * (the objects keep its mapping alive) and each object runs a tiny forward,
 * m = 1 or 2, with activations and expert ids drawn from the input's hash.
 * Every output element must be written (the forward runs twice over
 * differently poisoned outputs and both must agree bit for bit), and a copy
 * must give exactly what the in-place object gives. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "kquant.h"

/* Multiply-adds one input may spend on forwards (each runs twice): enough
 * for every tensor of a small file, small enough that fuzzing stays at
 * thousands of inputs a second. */
#define WORK_BUDGET (1 << 20)
/* Tensors above this many bytes also load from a caller copy: a copy costs
 * an allocation and a memcpy per input. */
#define COPY_MAX_BYTES (64 << 10)
#define MAX_OBJECTS 64
#define MAX_FUSED 4

typedef struct object {
    kq_linear *l;
    kq_experts *e;
    char name[80];
    int copy;    /* index of the same weights loaded from a caller copy, or -1 */
    int is_copy; /* forwarded beside its original, not on its own */
} object;

typedef struct run {
    kq_backend *b;
    kf_rng rng;
    int64_t budget;
    object obj[MAX_OBJECTS];
    int n_obj;
} run;

static void expect_failure(kq_status s, const char *what)
{
    if (s == KQ_OK) kf_fail("%s succeeded but should not", what);
    if (kq_last_error()[0] == '\0') kf_fail("%s failed without a message", what);
}

static int spend(run *r, int64_t rows, int64_t cols, int64_t m)
{
    int64_t work;
    if (__builtin_mul_overflow(rows, cols, &work) || __builtin_mul_overflow(work, m, &work) ||
        work > r->budget)
        return 0;
    r->budget -= work;
    return 1;
}

/* Keeps a loaded object; returns its index, or -1 when full (then freed).
 * `original` >= 0 marks it as the copy of that object. */
static int keep(run *r, kq_linear *l, kq_experts *e, const char *name, int original)
{
    if (r->n_obj == MAX_OBJECTS) {
        kq_linear_free(l);
        kq_experts_free(e);
        return -1;
    }
    int i = r->n_obj++;
    object *o = &r->obj[i];
    o->l = l;
    o->e = e;
    o->copy = -1;
    o->is_copy = original >= 0;
    snprintf(o->name, sizeof o->name, "%s", name);
    if (original >= 0) r->obj[original].copy = i;
    return i;
}

static float *activations(run *r, int64_t n)
{
    float *x = malloc((size_t)n * sizeof *x);
    if (!x) kf_fail("cannot allocate %lld activations", (long long)n);
    for (int64_t i = 0; i < n; i++) x[i] = kf_unit(&r->rng);
    return x;
}

/* Runs the forward twice over outputs poisoned two ways: an element the
 * kernel did not write keeps its poison and the runs differ. */
static void linear_forward(run *r, const object *o)
{
    int64_t n = kq_linear_rows(o->l), k = kq_linear_cols(o->l);
    int64_t m = 1 + (int64_t)kf_below(&r->rng, 2);
    if (!spend(r, n, k, 3 * m)) return;
    float *x = activations(r, m * k);
    float *y0 = malloc((size_t)(m * n) * sizeof *y0), *y1 = malloc((size_t)(m * n) * sizeof *y1);
    if (!y0 || !y1) kf_fail("cannot allocate outputs");
    memset(y0, 0, (size_t)(m * n) * sizeof *y0);
    memset(y1, 0xff, (size_t)(m * n) * sizeof *y1);
    if (kq_linear_forward(r->b, o->l, x, y0, m) != KQ_OK ||
        kq_linear_forward(r->b, o->l, x, y1, m) != KQ_OK)
        kf_fail("linear '%s' forward failed: %s", o->name, kq_last_error());
    if (memcmp(y0, y1, (size_t)(m * n) * sizeof *y0) != 0)
        kf_fail("linear '%s' forward left outputs unwritten", o->name);
    if (o->copy >= 0) {
        const kq_linear *c = r->obj[o->copy].l;
        if (kq_linear_rows(c) != n || kq_linear_cols(c) != k || kq_linear_is_zero_copy(c))
            kf_fail("the copy of linear '%s' has another shape or is in place", o->name);
        memset(y1, 0xff, (size_t)(m * n) * sizeof *y1);
        if (kq_linear_forward(r->b, c, x, y1, m) != KQ_OK ||
            memcmp(y0, y1, (size_t)(m * n) * sizeof *y0) != 0)
            kf_fail("linear '%s' from a copy differs from in place: %s", o->name,
                    kq_last_error());
    }
    free(x);
    free(y0);
    free(y1);
}

static void experts_forward(run *r, const object *o)
{
    int64_t n_e = kq_experts_count(o->e), n = kq_experts_rows(o->e), k = kq_experts_cols(o->e);
    int64_t m = 1 + (int64_t)kf_below(&r->rng, 2);
    int64_t top_k = 1 + (int64_t)kf_below(&r->rng, (uint64_t)(n_e < 4 ? n_e : 4));
    int64_t slot_stride = kf_below(&r->rng, 2) ? k : 0; /* down, or broadcast gate/up */
    int64_t token_stride = slot_stride ? top_k * k : k;
    if (!spend(r, n, k, 3 * m * top_k)) return;
    int64_t nx = (m - 1) * token_stride + (top_k - 1) * slot_stride + k, ny = m * top_k * n;
    float *x = activations(r, nx);
    int32_t ids[8];
    for (int64_t p = 0; p < m * top_k; p++) ids[p] = (int32_t)kf_below(&r->rng, (uint64_t)n_e);
    float *y0 = malloc((size_t)ny * sizeof *y0), *y1 = malloc((size_t)ny * sizeof *y1);
    if (!y0 || !y1) kf_fail("cannot allocate outputs");
    memset(y0, 0, (size_t)ny * sizeof *y0);
    memset(y1, 0xff, (size_t)ny * sizeof *y1);
    if (kq_experts_forward(r->b, o->e, x, token_stride, slot_stride, ids, m, top_k, y0) !=
            KQ_OK ||
        kq_experts_forward(r->b, o->e, x, token_stride, slot_stride, ids, m, top_k, y1) != KQ_OK)
        kf_fail("experts '%s' forward failed: %s", o->name, kq_last_error());
    if (memcmp(y0, y1, (size_t)ny * sizeof *y0) != 0)
        kf_fail("experts '%s' forward left outputs unwritten", o->name);
    if (o->copy >= 0) {
        const kq_experts *c = r->obj[o->copy].e;
        if (kq_experts_count(c) != n_e || kq_experts_rows(c) != n || kq_experts_cols(c) != k ||
            kq_experts_is_zero_copy(c))
            kf_fail("the copy of experts '%s' has another shape or is in place", o->name);
        memset(y1, 0xff, (size_t)ny * sizeof *y1);
        if (kq_experts_forward(r->b, c, x, token_stride, slot_stride, ids, m, top_k, y1) !=
                KQ_OK ||
            memcmp(y0, y1, (size_t)ny * sizeof *y0) != 0)
            kf_fail("experts '%s' from a copy differ from in place: %s", o->name,
                    kq_last_error());
    }
    /* An id out of range is refused, naming the pair, and writes nothing. */
    int64_t bad = (int64_t)kf_below(&r->rng, (uint64_t)(m * top_k));
    ids[bad] = kf_below(&r->rng, 2) ? -1 : (int32_t)n_e;
    expect_failure(kq_experts_forward(r->b, o->e, x, token_stride, slot_stride, ids, m, top_k, y0),
                   "an expert id out of range");
    if (!strstr(kq_last_error(), "outside [0, ")) kf_fail("bad id message: %s", kq_last_error());
    free(x);
    free(y0);
    free(y1);
}

static void load_tensor(run *r, const kq_gguf *g, const kq_tensor_info *t)
{
    kq_linear *l = NULL;
    kq_experts *e = NULL;
    int il = -1, ie = -1;
    /* What each loader takes: a linear any tensor whose dims past the second
     * are 1; experts a 3-D tensor (or 4-D with ne[3] = 1), even of one expert. */
    int is_2d = t->ne[2] == 1 && t->ne[3] == 1;
    int is_3d = (t->n_dims == 3 || t->n_dims == 4) && t->ne[3] == 1;
    kq_status sl = kq_linear_from_gguf(r->b, g, t->name, &l);
    if (sl == KQ_OK) {
        if (!is_2d || !kq_type_is_supported(t->type)) kf_fail("'%s' loaded as a linear", t->name);
        if (!kq_linear_is_zero_copy(l)) kf_fail("'%s' was copied from the mapping", t->name);
        il = keep(r, l, NULL, t->name, -1);
    } else {
        expect_failure(sl, "kq_linear_from_gguf");
        if (is_2d && kq_type_is_supported(t->type))
            kf_fail("supported 2-D tensor '%s' refused: %s", t->name, kq_last_error());
    }
    kq_status se = kq_experts_from_gguf(r->b, g, t->name, &e);
    if (se == KQ_OK) {
        if (!is_3d || !kq_type_is_supported(t->type)) kf_fail("'%s' loaded as experts", t->name);
        if (!kq_experts_is_zero_copy(e)) kf_fail("'%s' was copied from the mapping", t->name);
        ie = keep(r, NULL, e, t->name, -1);
    } else {
        expect_failure(se, "kq_experts_from_gguf");
        if (is_3d && kq_type_is_supported(t->type))
            kf_fail("supported 3-D tensor '%s' refused: %s", t->name, kq_last_error());
    }
    /* The copy path: the same bytes from memory the library does not know. */
    if (t->nbytes > COPY_MAX_BYTES || (il < 0 && ie < 0)) return;
    void *copy = malloc((size_t)t->nbytes);
    if (!copy) kf_fail("cannot allocate a copy of %llu bytes", (unsigned long long)t->nbytes);
    memcpy(copy, t->data, (size_t)t->nbytes);
    kq_status s;
    if (il >= 0) {
        s = kq_linear_load(r->b, t->type, copy, (size_t)t->nbytes, t->ne[1], t->ne[0], &l);
        if (s == KQ_OK) keep(r, l, NULL, t->name, il);
    } else {
        s = kq_experts_load(r->b, t->type, copy, (size_t)t->nbytes, t->ne[2], t->ne[1], t->ne[0],
                            &e);
        if (s == KQ_OK) keep(r, NULL, e, t->name, ie);
    }
    free(copy); /* the loaded object holds its own copy */
    if (s != KQ_OK) kf_fail("loading a copy of '%s' failed: %s", t->name, kq_last_error());
}

static int linear_tensor(const kq_gguf *g, int64_t i, kq_tensor_info *t)
{
    return kq_gguf_tensor(g, i, t) == KQ_OK && t->ne[2] == 1 && t->ne[3] == 1 &&
           kq_type_is_supported(t->type);
}

/* Up to MAX_FUSED supported 2-D tensors with the K of the first one, fused
 * in place and from copies; a tensor of another K must be refused. */
static void load_fused(run *r, const kq_gguf *g)
{
    kq_tensor_info ts[MAX_FUSED], t;
    const char *names[MAX_FUSED];
    int n = 0;
    const char *other_k = NULL;
    for (int64_t i = 0; i < kq_gguf_n_tensors(g); i++) {
        if (!linear_tensor(g, i, &t)) continue;
        if (n && t.ne[0] != ts[0].ne[0]) {
            if (!other_k) other_k = t.name;
            continue;
        }
        if (n < MAX_FUSED) {
            ts[n] = t;
            names[n++] = t.name;
        }
    }
    kq_linear *l = NULL;
    if (n >= 1 && other_k) {
        const char *pair[2] = {names[0], other_k};
        kq_status s = kq_linear_from_gguf_fused(r->b, g, pair, 2, &l);
        expect_failure(s, "fusing parts of different K");
        if (!strstr(kq_last_error(), "need the same K"))
            kf_fail("different K message: %s", kq_last_error());
    }
    if (n < 2) return;
    if (kq_linear_from_gguf_fused(r->b, g, names, n, &l) != KQ_OK)
        kf_fail("fusing %d parts failed: %s", n, kq_last_error());
    if (kq_linear_n_parts(l) != n || !kq_linear_is_zero_copy(l))
        kf_fail("fused linear has %d parts, not %d, or is not in place", kq_linear_n_parts(l), n);
    int orig = keep(r, l, NULL, "(fused)", -1);
    if (orig < 0) return;
    kq_part parts[MAX_FUSED];
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)ts[i].nbytes;
    if (total > COPY_MAX_BYTES) return;
    for (int i = 0; i < n; i++) {
        void *c = malloc((size_t)ts[i].nbytes);
        if (!c) kf_fail("cannot allocate a copy");
        memcpy(c, ts[i].data, (size_t)ts[i].nbytes);
        parts[i] = (kq_part){ts[i].type, c, (size_t)ts[i].nbytes, ts[i].ne[1]};
    }
    kq_status s = kq_linear_load_fused(r->b, parts, n, ts[0].ne[0], &l);
    for (int i = 0; i < n; i++) free((void *)parts[i].bytes);
    if (s != KQ_OK) kf_fail("fusing copies of %d parts failed: %s", n, kq_last_error());
    keep(r, l, NULL, "(fused copy)", orig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kq_backend *b;
    if (!b && kq_backend_open("cpu-ref:threads=1", &b) != KQ_OK)
        kf_fail("cannot open cpu-ref: %s", kq_last_error());
    kq_gguf *g = NULL;
    if (kq_gguf_open(kf_input_path(data, size), &g) != KQ_OK) return 0;
    static run r; /* large; reset per input */
    memset(&r, 0, sizeof r);
    r.b = b;
    r.budget = WORK_BUDGET;
    kf_rng_seed(&r.rng, data, size);
    for (int64_t i = 0; i < kq_gguf_n_tensors(g) && r.n_obj < MAX_OBJECTS; i++) {
        kq_tensor_info t;
        if (kq_gguf_tensor(g, i, &t) != KQ_OK) kf_fail("tensor %lld: %s", (long long)i,
                                                       kq_last_error());
        load_tensor(&r, g, &t);
    }
    load_fused(&r, g);
    kq_gguf_close(g); /* the loaded objects keep the mapping */
    for (int i = 0; i < r.n_obj; i++) {
        if (r.obj[i].is_copy) continue; /* forwarded beside its original */
        if (r.obj[i].l) linear_forward(&r, &r.obj[i]);
        if (r.obj[i].e) experts_forward(&r, &r.obj[i]);
    }
    for (int i = 0; i < r.n_obj; i++) {
        kq_linear_free(r.obj[i].l);
        kq_experts_free(r.obj[i].e);
    }
    return 0;
}
