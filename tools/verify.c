/* kq verify: every tensor of a GGUF file through every backend, against the
 * reference backend cpu-ref, on fresh random activations. It answers "does
 * this machine compute this model's weights right", with one table line per
 * tensor and a non-zero exit when anything is off. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compare.h"
#include "kquant.h"
#include "kq.h"
#include "print_escaped.h"
#include "verify_source.h"

/* The three call shapes the library dispatches differently: decode (a
 * GEMV), batched decode, prefill (a GEMM). 7 is odd on purpose, so a kernel
 * that handles rows in pairs or fours meets a remainder. */
static const int64_t g_ms[] = {1, 7, 64};
#define N_MS 3
#define MAX_M 64
#define MAX_BACKENDS 4

/* Experts are called twice per m: one activation row broadcast to every slot
 * (gate/up) and one row per slot (down). */
enum { FORM_NONE = -1, FORM_BROADCAST = 0, FORM_SLOT = 1 };
static const char *const g_form_name[] = {"bcast", "slot"};

typedef struct vbackend {
    char kind[16];
    kq_backend *b;
    double tol;
} vbackend;

typedef struct verifier {
    const char *path;
    kq_gguf *g;
    kq_backend *ref;
    vbackend bk[MAX_BACKENDS];
    int n_bk;
    uint64_t rng;
    int64_t top_k_meta; /* <arch>.expert_used_count, 0 if absent */
} verifier;

/* The outcome of one tensor over every backend, m and form. */
typedef struct outcome {
    double worst;       /* largest error seen */
    double worst_fail;  /* largest error beyond its tolerance, -1 if none */
    const char *where_bk;
    int64_t where_m;
    int where_form;
    const char *fail_bk;
    int64_t fail_m;
    int fail_form;
    int errors;         /* calls that failed */
} outcome;

/* ---------------------------------------------------------------- random */

/* splitmix64: tiny, seedable, and good enough for test activations. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1): never all zeros, so a kernel that skips work shows. */
static void fill_random(uint64_t *s, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)(next_u64(s) >> 11) * 0x1.0p-52 - 1.0);
}

/* Ids for m tokens: distinct per token, as a router's top-k are, when there
 * are enough experts for that; with replacement otherwise. */
static void fill_ids(uint64_t *s, int32_t *ids, int32_t *perm, int64_t m, int64_t top_k,
                     int64_t n_experts)
{
    for (int64_t i = 0; i < m; i++) {
        int32_t *row = ids + i * top_k;
        if (perm && top_k <= n_experts) {
            for (int64_t e = 0; e < n_experts; e++) perm[e] = (int32_t)e;
            for (int64_t k = 0; k < top_k; k++) { /* partial Fisher-Yates */
                int64_t j = k + (int64_t)(next_u64(s) % (uint64_t)(n_experts - k));
                int32_t t = perm[k];
                perm[k] = perm[j], perm[j] = t;
                row[k] = perm[k];
            }
        } else {
            for (int64_t k = 0; k < top_k; k++)
                row[k] = (int32_t)(next_u64(s) % (uint64_t)n_experts);
        }
    }
}

static void poison(float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = NAN;
}

/* ---------------------------------------------------------------- results */

static void outcome_init(outcome *o)
{
    memset(o, 0, sizeof *o);
    o->worst = -1.0;
    o->worst_fail = -1.0;
    o->where_form = o->fail_form = FORM_NONE;
}

/* A NaN error (NaN in the reference too) is made +inf: the worst there is,
 * and a failure at any tolerance. */
static void record(outcome *o, const vbackend *bk, int64_t m, int form, double err)
{
    if (isnan(err)) err = INFINITY;
    if (err > o->worst)
        o->worst = err, o->where_bk = bk->kind, o->where_m = m, o->where_form = form;
    if (!(err <= bk->tol) && err > o->worst_fail)
        o->worst_fail = err, o->fail_bk = bk->kind, o->fail_m = m, o->fail_form = form;
}

static void call_failed(outcome *o, const char *name, const char *bk, const char *what,
                        int64_t m, int form)
{
    o->errors++;
    char esc[KQ_ESC_CAP];
    name = kq_escape_str(esc, sizeof esc, name);
    if (m > 0)
        fprintf(stderr, "kq verify: %s: %s, m = %" PRId64 "%s%s: %s: %s\n", name, bk, m,
                form == FORM_NONE ? "" : ", ", form == FORM_NONE ? "" : g_form_name[form], what,
                kq_last_error());
    else
        fprintf(stderr, "kq verify: %s: %s: %s: %s\n", name, bk, what, kq_last_error());
}

/* n * a * b floats (or ints) in bytes, 0 on overflow. */
static size_t buf_bytes(size_t a, size_t b, size_t c, size_t elem)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r) || __builtin_mul_overflow(r, c, &r) ||
        __builtin_mul_overflow(r, elem, &r))
        return 0;
    return r;
}

/* ---------------------------------------------------------------- calls */

/* One forward call on a backend, with host arrays: x, ids and the poisoned
 * y go into the backend's own memory (kq_alloc: device memory on CUDA), and
 * y comes back. e selects experts, else l. */
typedef struct fwd {
    const kq_linear *l;
    const kq_experts *e;
    const float *x;
    const int32_t *ids;
    float *y;
    size_t xb, ib, yb;
    int64_t m, ts, ss, top_k;
} fwd;

static kq_status forward_on(kq_backend *b, const fwd *a)
{
    void *dx = NULL, *dy = NULL, *di = NULL;
    kq_status st = kq_alloc(b, a->xb, &dx);
    if (st == KQ_OK) st = kq_alloc(b, a->yb, &dy);
    if (st == KQ_OK && a->ib) st = kq_alloc(b, a->ib, &di);
    if (st == KQ_OK) st = kq_copy_to_device(b, dx, a->x, a->xb);
    if (st == KQ_OK) st = kq_copy_to_device(b, dy, a->y, a->yb);
    if (st == KQ_OK && di) st = kq_copy_to_device(b, di, a->ids, a->ib);
    if (st == KQ_OK)
        st = a->e ? kq_experts_forward(b, a->e, dx, a->ts, a->ss, di, a->m, a->top_k, dy)
                  : kq_linear_forward(b, a->l, dx, dy, a->m);
    if (st == KQ_OK) st = kq_backend_sync(b);
    if (st == KQ_OK) st = kq_copy_to_host(b, a->y, dy, a->yb);
    kq_free(b, dx);
    kq_free(b, dy);
    kq_free(b, di);
    return st;
}

/* ---------------------------------------------------------------- linear */

static void check_linear(verifier *v, const kq_tensor_info *t, outcome *o)
{
    const int64_t K = t->ne[0], N = t->ne[1];
    size_t xb = buf_bytes(MAX_M, (size_t)K, 1, sizeof(float));
    size_t yb = buf_bytes(MAX_M, (size_t)N, 1, sizeof(float));
    float *x = xb ? malloc(xb) : NULL, *y = yb ? malloc(yb) : NULL;
    float *yref = yb ? malloc(yb) : NULL;
    kq_linear *lref = NULL, *l[MAX_BACKENDS] = {0};
    if (!x || !y || !yref) {
        char esc[KQ_ESC_CAP];
        fprintf(stderr, "kq verify: %s: out of memory for m = %d activations\n", kq_escape_str(esc, sizeof esc, t->name), MAX_M);
        o->errors++;
        goto done;
    }
    if (kq_linear_from_gguf(v->ref, v->g, t->name, &lref) != KQ_OK) {
        call_failed(o, t->name, "cpu-ref", "load", 0, FORM_NONE);
        goto done;
    }
    for (int b = 0; b < v->n_bk; b++)
        if (kq_linear_from_gguf(v->bk[b].b, v->g, t->name, &l[b]) != KQ_OK)
            call_failed(o, t->name, v->bk[b].kind, "load", 0, FORM_NONE);
    for (int mi = 0; mi < N_MS; mi++) {
        const int64_t m = g_ms[mi];
        const size_t ny = (size_t)m * (size_t)N;
        fill_random(&v->rng, x, (size_t)m * (size_t)K);
        poison(yref, ny);
        if (kq_linear_forward(v->ref, lref, x, yref, m) != KQ_OK) {
            call_failed(o, t->name, "cpu-ref", "forward", m, FORM_NONE);
            continue;
        }
        for (int b = 0; b < v->n_bk; b++) {
            if (!l[b]) continue;
            poison(y, ny);
            fwd a = {.l = l[b], .x = x, .y = y, .m = m,
                     .xb = (size_t)m * (size_t)K * sizeof(float), .yb = ny * sizeof(float)};
            if (forward_on(v->bk[b].b, &a) != KQ_OK) {
                call_failed(o, t->name, v->bk[b].kind, "forward", m, FORM_NONE);
                continue;
            }
            record(o, &v->bk[b], m, FORM_NONE, kq_rel_error(y, yref, ny));
        }
    }
done:
    for (int b = 0; b < v->n_bk; b++) kq_linear_free(l[b]);
    kq_linear_free(lref);
    free(x), free(y), free(yref);
}

/* ---------------------------------------------------------------- experts */

/* top_k as the model routes: <arch>.expert_used_count when the file says
 * and it fits this tensor, else min(E, 8). */
static int64_t experts_top_k(const verifier *v, int64_t n_experts)
{
    if (v->top_k_meta >= 1 && v->top_k_meta <= n_experts) return v->top_k_meta;
    return n_experts < 8 ? n_experts : 8;
}

static void check_experts(verifier *v, const kq_tensor_info *t, outcome *o)
{
    const int64_t K = t->ne[0], N = t->ne[1], E = t->ne[2];
    const int64_t top_k = experts_top_k(v, E);
    size_t xb = buf_bytes(MAX_M, (size_t)top_k, (size_t)K, sizeof(float));
    size_t yb = buf_bytes(MAX_M, (size_t)top_k, (size_t)N, sizeof(float));
    size_t ib = buf_bytes(MAX_M, (size_t)top_k, 1, sizeof(int32_t));
    float *x = xb ? malloc(xb) : NULL, *y = yb ? malloc(yb) : NULL;
    float *yref = yb ? malloc(yb) : NULL;
    int32_t *ids = ib ? malloc(ib) : NULL;
    /* Distinct ids need a scratch permutation; past 2^20 experts (no real
     * model) ids are drawn with replacement instead. */
    int32_t *perm = E <= (1 << 20) ? malloc((size_t)E * sizeof *perm) : NULL;
    kq_experts *eref = NULL, *e[MAX_BACKENDS] = {0};
    if (E > INT32_MAX) {
        char esc[KQ_ESC_CAP];
        fprintf(stderr, "kq verify: %s: %" PRId64 " experts do not fit int32 ids\n", kq_escape_str(esc, sizeof esc, t->name), E);
        o->errors++;
        goto done;
    }
    if (!x || !y || !yref || !ids) {
        char esc[KQ_ESC_CAP];
        fprintf(stderr, "kq verify: %s: out of memory for m = %d activations\n", kq_escape_str(esc, sizeof esc, t->name), MAX_M);
        o->errors++;
        goto done;
    }
    if (kq_experts_from_gguf(v->ref, v->g, t->name, &eref) != KQ_OK) {
        call_failed(o, t->name, "cpu-ref", "load", 0, FORM_NONE);
        goto done;
    }
    for (int b = 0; b < v->n_bk; b++)
        if (kq_experts_from_gguf(v->bk[b].b, v->g, t->name, &e[b]) != KQ_OK)
            call_failed(o, t->name, v->bk[b].kind, "load", 0, FORM_NONE);
    for (int mi = 0; mi < N_MS; mi++) {
        const int64_t m = g_ms[mi];
        const size_t ny = (size_t)m * (size_t)top_k * (size_t)N;
        /* One x per m serves both forms: broadcast reads rows [m, K] at
         * token stride K; per-slot reads [m, top_k, K]. */
        fill_random(&v->rng, x, (size_t)m * (size_t)top_k * (size_t)K);
        fill_ids(&v->rng, ids, perm, m, top_k, E);
        for (int form = FORM_BROADCAST; form <= FORM_SLOT; form++) {
            int64_t ts = form == FORM_BROADCAST ? K : top_k * K;
            int64_t ss = form == FORM_BROADCAST ? 0 : K;
            poison(yref, ny);
            if (kq_experts_forward(v->ref, eref, x, ts, ss, ids, m, top_k, yref) != KQ_OK) {
                call_failed(o, t->name, "cpu-ref", "forward", m, form);
                continue;
            }
            for (int b = 0; b < v->n_bk; b++) {
                if (!e[b]) continue;
                poison(y, ny);
                fwd a = {.e = e[b], .x = x, .ids = ids, .y = y, .m = m, .ts = ts, .ss = ss,
                         .top_k = top_k, .yb = ny * sizeof(float),
                         .xb = (size_t)m * (size_t)top_k * (size_t)K * sizeof(float),
                         .ib = (size_t)m * (size_t)top_k * sizeof(int32_t)};
                if (forward_on(v->bk[b].b, &a) != KQ_OK) {
                    call_failed(o, t->name, v->bk[b].kind, "forward", m, form);
                    continue;
                }
                record(o, &v->bk[b], m, form, kq_rel_error(y, yref, ny));
            }
        }
    }
done:
    for (int b = 0; b < v->n_bk; b++) kq_experts_free(e[b]);
    kq_experts_free(eref);
    free(x), free(y), free(yref), free(ids), free(perm);
}

/* ---------------------------------------------------------------- table */

/* name 32, type 7, shape 20, error 10, where 16, status: 95 columns. */
#define NAME_W 32

static void print_name(const char *raw)
{
    char esc[KQ_ESC_CAP];
    const char *name = kq_escape_str(esc, sizeof esc, raw);
    size_t len = strlen(name);
    /* A long name keeps its end, where the layer and role are told apart
     * (cut where a UTF-8 character starts). */
    if (len > NAME_W) {
        const char *tail = name + len - (NAME_W - 3);
        while ((*tail & 0xC0) == 0x80) tail++;
        printf("...%-*s ", NAME_W - 3, tail);
    } else {
        printf("%-*s ", NAME_W, name);
    }
}

static void print_head(const char *name, const kq_tensor_info *t)
{
    char shape[64] = "";
    size_t used = 0;
    for (int d = 0; d < t->n_dims && used < sizeof shape; d++) {
        int n = snprintf(shape + used, sizeof shape - used, "%s%" PRId64, d ? " x " : "", t->ne[d]);
        if (n < 0) break;
        used += (size_t)n;
    }
    const char *tn = kq_type_name(t->type);
    print_name(name);
    printf("%-7s %-20s ", tn ? tn : "?", shape);
}

static void where_string(char *buf, size_t cap, const char *bk, int64_t m, int form)
{
    snprintf(buf, cap, "%s m=%" PRId64 "%s%s", bk ? bk : "?", m, form == FORM_NONE ? "" : " ",
             form == FORM_NONE ? "" : g_form_name[form]);
}

/* ---------------------------------------------------------------- backends */

static int is_cpu_kind(const char *kind)
{
    return !strncmp(kind, "cpu", 3);
}

static void backend_spec(char *spec, size_t cap, const char *kind, int threads)
{
    if (threads > 0 && is_cpu_kind(kind))
        snprintf(spec, cap, "%s:threads=%d", kind, threads);
    else
        snprintf(spec, cap, "%s", kind);
}

/* Opens the backends to check. One the user named must open; the default
 * set takes what opens and says why the rest did not. */
static int open_backends(verifier *v, const char *which, int threads, const double *tol)
{
    static const char *const defaults[] = {"cpu", "cuda"};
    static const char *const all[] = {"cpu", "cuda", "cpu-ref"};
    const char *const *kinds = defaults;
    int n = 2, named = 0;
    const char *one[1];
    if (which && !strcmp(which, "all")) {
        kinds = all, n = 3;
    } else if (which) {
        if (strcmp(which, "cpu") && strcmp(which, "cuda") && strcmp(which, "cpu-ref")) {
            fprintf(stderr, "kq verify: --backend %s: expected cpu, cuda, cpu-ref or all\n",
                    which);
            return 2;
        }
        one[0] = which, kinds = one, n = 1, named = 1;
    }
    for (int i = 0; i < n; i++) {
        char spec[64];
        backend_spec(spec, sizeof spec, kinds[i], threads);
        kq_backend *b = NULL;
        if (kq_backend_open(spec, &b) != KQ_OK) {
            if (named) {
                fprintf(stderr, "kq verify: backend %s does not open: %s\n", spec,
                        kq_last_error());
                return 1;
            }
            printf("backend    %-8s skipped: %s\n", kinds[i], kq_last_error());
            continue;
        }
        vbackend *vb = &v->bk[v->n_bk++];
        snprintf(vb->kind, sizeof vb->kind, "%s", kq_backend_name(b));
        vb->b = b;
        vb->tol = tol ? *tol : kq_rel_tolerance(vb->kind);
        printf("backend    %-8s tolerance %.1e; %s\n", vb->kind, vb->tol, kq_backend_device(b));
    }
    if (v->n_bk == 0) {
        fprintf(stderr, "kq verify: no backend to check opened\n");
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- command */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kq verify FILE.gguf [--backend cpu|cuda|cpu-ref|all] [--seed N]\n"
            "                 [--threads N] [--tolerance X] [--source F.gguf]\n"
            "  Every 2-D tensor (as a linear) and 3-D tensor (as experts, both slot\n"
            "  strides) of a supported type, through each backend, for m = 1, 7, 64,\n"
            "  against cpu-ref on random activations. Exits 1 if any is off.\n"
            "  --backend B    only B (it must open); default: cpu and cuda where they open\n"
            "  --seed N       repeat the activations of an earlier run\n"
            "  --threads N    threads of the CPU backends\n"
            "  --tolerance X  relative error allowed, for every backend\n"
            "  --source F     also compare each tensor with the float file F it was\n"
            "                 quantized from: non-finite values on either side and\n"
            "                 blocks quantized to garbage fail (kq verify --help)\n");
}

static uint64_t fresh_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)getpid() << 32);
    return next_u64(&s) >> 1; /* below 2^63, so it reads back with any parser */
}

typedef struct vargs {
    const char *path, *backend, *source;
    uint64_t seed;
    int have_seed, threads, have_tol;
    double tol;
} vargs;

static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t len = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, len) != 0) return NULL;
    if (a[len] == '=') return a + len + 1;
    if (a[len] == '\0') return *i + 1 < argc ? argv[++*i] : "";
    return NULL;
}

static int parse_args(int argc, char **argv, vargs *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *v;
        char *end;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return -1;
        } else if ((v = opt_value(argc, argv, &i, "--backend"))) {
            a->backend = v;
        } else if ((v = opt_value(argc, argv, &i, "--source"))) {
            if (!*v) {
                fprintf(stderr, "kq verify: --source needs the float GGUF file\n");
                return 2;
            }
            a->source = v;
        } else if ((v = opt_value(argc, argv, &i, "--seed"))) {
            errno = 0;
            a->seed = strtoull(v, &end, 0);
            if (!*v || *end || errno || *v == '-') {
                fprintf(stderr, "kq verify: --seed needs a non-negative integer\n");
                return 2;
            }
            a->have_seed = 1;
        } else if ((v = opt_value(argc, argv, &i, "--threads"))) {
            errno = 0;
            long n = strtol(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 256) {
                fprintf(stderr, "kq verify: --threads needs an integer in [1, 256]\n");
                return 2;
            }
            a->threads = (int)n;
        } else if ((v = opt_value(argc, argv, &i, "--tolerance"))) {
            errno = 0;
            a->tol = strtod(v, &end);
            if (!*v || *end || errno || isnan(a->tol)) {
                fprintf(stderr, "kq verify: --tolerance needs a number\n");
                return 2;
            }
            a->have_tol = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "kq verify: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!a->path) {
            a->path = argv[i];
        } else {
            fprintf(stderr, "kq verify: one file at a time ('%s' is extra)\n", argv[i]);
            return 2;
        }
    }
    if (!a->path) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* "<arch>.expert_used_count", 0 when the file lacks it. */
static int64_t top_k_from_metadata(const kq_gguf *g)
{
    const char *arch;
    size_t len;
    uint64_t k;
    char key[256];
    if (kq_gguf_get_string(g, "general.architecture", &arch, &len) != KQ_OK || len > 200) return 0;
    snprintf(key, sizeof key, "%.*s.expert_used_count", (int)len, arch);
    if (kq_gguf_get_uint(g, key, &k) != KQ_OK || k > INT32_MAX) return 0;
    return (int64_t)k;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Totals over the file, for the summary line. */
typedef struct totals {
    int64_t ok, failed, errors, skipped;
    double worst;
    char worst_at[NAME_W + 64];
} totals;

static void verify_tensor(verifier *v, const kq_tensor_info *t, totals *tot)
{
    print_head(t->name, t);
    const char *skip = NULL;
    if (!kq_type_is_supported(t->type))
        skip = "unsupported type";
    else if (t->n_dims != 2 && t->n_dims != 3)
        skip = t->n_dims == 1 ? "1-D" : "4-D";
    if (skip) {
        printf("%10s %-16s skip\n", "-", skip);
        tot->skipped++;
        return;
    }
    fflush(stdout); /* the name shows while a big tensor is being checked */
    outcome o;
    outcome_init(&o);
    if (t->n_dims == 2)
        check_linear(v, t, &o);
    else
        check_experts(v, t, &o);
    int failed = o.worst_fail >= 0;
    char where[48] = "-";
    if (failed)
        where_string(where, sizeof where, o.fail_bk, o.fail_m, o.fail_form);
    else if (o.worst >= 0)
        where_string(where, sizeof where, o.where_bk, o.where_m, o.where_form);
    if (o.worst >= 0)
        printf("%10.2e %-16s ", failed ? o.worst_fail : o.worst, where);
    else
        printf("%10s %-16s ", "-", where);
    puts(o.errors ? "ERROR" : failed ? "FAIL" : "ok");
    if (o.errors)
        tot->errors++;
    else if (failed)
        tot->failed++;
    else
        tot->ok++;
    if (o.worst > tot->worst) {
        char at[48];
        where_string(at, sizeof at, o.where_bk, o.where_m, o.where_form);
        tot->worst = o.worst;
        char esc[KQ_ESC_CAP];
        snprintf(tot->worst_at, sizeof tot->worst_at, "%.32s (%s)",
                 kq_escape_str(esc, sizeof esc, t->name), at);
    }
}

int kq_cmd_verify(int argc, char **argv)
{
    vargs a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    verifier v;
    memset(&v, 0, sizeof v);
    v.path = a.path;
    if (kq_gguf_open(a.path, &v.g) != KQ_OK) return kq_tool_error("verify", a.path);
    uint64_t seed = a.have_seed ? a.seed : fresh_seed();
    v.rng = seed;
    v.top_k_meta = top_k_from_metadata(v.g);
    double t0 = now_s();
    int64_t n = kq_gguf_n_tensors(v.g);
    char path_esc[KQ_ESC_CAP];
    printf("kq verify: %s: %" PRId64 " tensor%s; seed %" PRIu64 " (--seed %" PRIu64
           " repeats this run)\n",
           kq_escape_str(path_esc, sizeof path_esc, a.path), n, n == 1 ? "" : "s", seed, seed);
    char spec[64];
    backend_spec(spec, sizeof spec, "cpu-ref", a.threads);
    if (kq_backend_open(spec, &v.ref) != KQ_OK) {
        rc = kq_tool_error("verify", "the reference backend cpu-ref");
        goto done;
    }
    printf("reference  %-8s %s\n", "cpu-ref", kq_backend_device(v.ref));
    if ((rc = open_backends(&v, a.backend, a.threads, a.have_tol ? &a.tol : NULL)) != 0)
        goto done;
    printf("\n%-*s %-7s %-20s %10s %-16s %s\n", NAME_W, "tensor", "type", "shape (ne[0] first)",
           "worst err", "where", "status");
    totals tot;
    memset(&tot, 0, sizeof tot);
    tot.worst = -1.0;
    for (int64_t i = 0; i < n; i++) {
        kq_tensor_info t;
        if (kq_gguf_tensor(v.g, i, &t) != KQ_OK) {
            rc = kq_tool_error("verify", "tensor table");
            goto done;
        }
        verify_tensor(&v, &t, &tot);
    }
    printf("\nsummary: %" PRId64 " ok, %" PRId64 " FAIL, %" PRId64 " ERROR, %" PRId64
           " skipped",
           tot.ok, tot.failed, tot.errors, tot.skipped);
    if (tot.worst >= 0) printf("; worst %.2e at %s", tot.worst, tot.worst_at);
    printf("; %.1f s\n", now_s() - t0);
    rc = tot.failed || tot.errors ? 1 : 0;
    if (rc) printf("kq verify: failed; --seed %" PRIu64 " repeats this run\n", seed);
    if (a.source && kq_verify_against_source(v.g, a.source)) {
        printf("kq verify: the quantized file differs from its source beyond the bound\n");
        rc = 1;
    }
done:
    for (int b = 0; b < v.n_bk; b++) kq_backend_close(v.bk[b].b);
    kq_backend_close(v.ref);
    kq_gguf_close(v.g);
    return rc;
}
