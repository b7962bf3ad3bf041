/* kq bench: loading a backend's ops and timing each (op, m) cell.
 *
 * Every cell first runs once with poisoned (NaN) outputs and is checked
 * against cpu-ref: the whole output must be written and finite, and up to 8
 * of its tokens (all of them when m <= 8; else the first, the last and six
 * at random) must match the reference within kq_rel_tolerance. Then it warms
 * up over every rotation copy (first touch of the mapped pages happens here,
 * not in a timed call) and times samples of back-to-back calls until at
 * least --min-time seconds have been timed; the reported time is the median
 * of the samples' per-call times. Calls rotate through the op's copies, and
 * expert ids come from a shuffled deck so consecutive calls touch different
 * experts, as consecutive layers of a model would. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "compare.h"
#include "core/core.h"
#include "kq.h"

#define ID_SETS 32
#define CHECK_TOKENS 8

/* An op's rotation copies on one backend: n linears, or n sets of `parts`
 * expert stacks (two for SwiGLU: gate, up). */
typedef struct loaded {
    kq_linear **lin;
    kq_experts **exp;
    int n, parts;
    int cap; /* copies allocated; a failed load leaves some of them NULL */
} loaded;

int64_t bench_out_cols(const bench_op *op)
{
    return op->swiglu && !op->experts ? op->n / 2 : op->n;
}

/* A cell's inputs and outputs: host copies (filled and checked here) and
 * the backend's own buffers (kq_alloc: device memory on CUDA) that the
 * timed calls read and write. For a reference call on host data, the dev_
 * pointers are the host ones. */
typedef struct cell_io {
    float *x, *y;
    int32_t *ids; /* ID_SETS sets of m * top_k */
    kq_backend *owner; /* of the dev_ buffers; NULL when they alias the host ones */
    float *dev_x, *dev_y;
    int32_t *dev_ids;
    int64_t x_rows, y_rows;
    double expert_reads; /* mean distinct experts a call reads */
} cell_io;

static void unload(loaded *l)
{
    for (int c = 0; c < l->cap; c++) {
        if (l->lin) kq_linear_free(l->lin[c]);
        if (l->exp)
            for (int i = 0; i < l->parts; i++) kq_experts_free(l->exp[c * l->parts + i]);
    }
    free(l->lin);
    free(l->exp);
    memset(l, 0, sizeof *l);
}

static int load(kq_backend *b, const bench_plan *p, const bench_op *op, int copies, loaded *l)
{
    memset(l, 0, sizeof *l);
    l->parts = op->experts ? op->n_parts : 1;
    l->cap = copies;
    if (op->experts)
        l->exp = calloc((size_t)copies * (size_t)op->n_parts, sizeof *l->exp);
    else
        l->lin = calloc((size_t)copies, sizeof *l->lin);
    if (!l->exp && !l->lin) return -1;
    for (int c = 0; c < copies; c++, l->n++) {
        char *const *names = op->names + (size_t)c * (size_t)op->n_parts;
        kq_status st = KQ_OK;
        if (op->experts)
            for (int i = 0; i < op->n_parts && st == KQ_OK; i++)
                st = kq_experts_from_gguf(b, p->gguf, names[i], &l->exp[c * op->n_parts + i]);
        else if (op->n_parts == 1)
            st = kq_linear_from_gguf(b, p->gguf, names[0], &l->lin[c]);
        else
            st = kq_linear_from_gguf_fused(b, p->gguf, (const char *const *)names, op->n_parts,
                                           &l->lin[c]);
        if (st) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- inputs */

/* Each token takes top_k distinct experts off a shuffled deck; a new deck is
 * shuffled when the old one runs short. Every expert is used equally often,
 * and a call touches as many distinct experts as m * top_k allows. */
typedef struct deck {
    int32_t *cards;
    int64_t n, pos;
} deck;

static void deck_shuffle(deck *d, uint64_t *rng)
{
    for (int64_t i = d->n - 1; i > 0; i--) {
        int64_t j = (int64_t)(bench_rand(rng) % (uint64_t)(i + 1));
        int32_t t = d->cards[i];
        d->cards[i] = d->cards[j], d->cards[j] = t;
    }
    d->pos = 0;
}

static double fill_ids(int32_t *ids, int64_t m, int64_t top_k, int64_t experts, uint64_t *rng)
{
    deck d = {malloc((size_t)experts * sizeof(int32_t)), experts, 0};
    unsigned char *seen = calloc((size_t)experts, 1);
    if (!d.cards || !seen) {
        free(d.cards);
        free(seen);
        return -1;
    }
    for (int64_t e = 0; e < experts; e++) d.cards[e] = (int32_t)e;
    deck_shuffle(&d, rng);
    double distinct = 0;
    for (int set = 0; set < ID_SETS; set++) {
        memset(seen, 0, (size_t)experts);
        for (int64_t i = 0; i < m; i++) {
            if (d.pos + top_k > d.n) deck_shuffle(&d, rng);
            for (int64_t s = 0; s < top_k; s++) {
                int32_t e = d.cards[d.pos++];
                ids[(set * m + i) * top_k + s] = e;
                distinct += !seen[e];
                seen[e] = 1;
            }
        }
    }
    free(d.cards);
    free(seen);
    return distinct / ID_SETS;
}

static void io_free(cell_io *io)
{
    if (io->owner) {
        kq_free(io->owner, io->dev_x);
        kq_free(io->owner, io->dev_y);
        kq_free(io->owner, io->dev_ids);
    }
    free(io->x);
    free(io->y);
    free(io->ids);
    memset(io, 0, sizeof *io);
}

static size_t x_bytes(const bench_op *op, const cell_io *io)
{
    return (size_t)(io->x_rows * op->k) * sizeof(float);
}
static size_t y_bytes(const bench_op *op, const cell_io *io)
{
    return (size_t)(io->y_rows * bench_out_cols(op)) * sizeof(float);
}

/* The backend's buffers, filled from the host copies. */
static int io_upload(cell_io *io, kq_backend *b, const bench_op *op, int64_t m)
{
    size_t ib = io->ids ? (size_t)(ID_SETS * m * op->top_k) * sizeof(int32_t) : 0;
    io->owner = b;
    if (kq_alloc(b, x_bytes(op, io), (void **)&io->dev_x) ||
        kq_alloc(b, y_bytes(op, io), (void **)&io->dev_y) ||
        (ib && kq_alloc(b, ib, (void **)&io->dev_ids)))
        return -1;
    if (kq_copy_to_device(b, io->dev_x, io->x, x_bytes(op, io)) ||
        (ib && kq_copy_to_device(b, io->dev_ids, io->ids, ib)))
        return -1;
    return 0;
}

static int io_make(cell_io *io, const bench_op *op, int64_t m, uint64_t *rng)
{
    memset(io, 0, sizeof *io);
    int64_t slots = op->experts ? op->top_k : 1;
    io->x_rows = op->per_slot ? m * slots : m;
    io->y_rows = m * slots;
    io->x = aligned_alloc(64, ((size_t)(io->x_rows * op->k) * sizeof(float) + 63) & ~(size_t)63);
    io->y = aligned_alloc(64, (y_bytes(op, io) + 63) & ~(size_t)63);
    if (!io->x || !io->y) return -1;
    for (int64_t i = 0; i < io->x_rows * op->k; i++) io->x[i] = bench_normal(rng);
    if (op->experts) {
        io->ids = malloc((size_t)(ID_SETS * m * op->top_k) * sizeof *io->ids);
        if (!io->ids) return -1;
        io->expert_reads = fill_ids(io->ids, m, op->top_k, op->experts, rng);
        if (io->expert_reads < 0) return -1;
    }
    return 0;
}

/* One call of the op: copy `c`, id set `set`. */
static kq_status call(kq_backend *b, const bench_op *op, const loaded *l, const cell_io *io,
                      int c, int set, int64_t m)
{
    if (!op->experts && op->swiglu)
        return kq_linear_forward_swiglu(b, l->lin[c], io->dev_x, io->dev_y, m);
    if (!op->experts) return kq_linear_forward(b, l->lin[c], io->dev_x, io->dev_y, m);
    int64_t token_stride = op->per_slot ? op->top_k * op->k : op->k;
    int64_t slot_stride = op->per_slot ? op->k : 0;
    const int32_t *ids = io->dev_ids + (size_t)set * (size_t)(m * op->top_k);
    if (op->swiglu)
        return kq_experts_forward_swiglu(b, l->exp[c * 2], l->exp[c * 2 + 1], io->dev_x,
                                         token_stride, slot_stride, ids, m, op->top_k, io->dev_y);
    return kq_experts_forward(b, l->exp[c], io->dev_x, token_stride, slot_stride, ids, m,
                              op->top_k, io->dev_y);
}

/* ---------------------------------------------------------------- checking */

static int all_finite(const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return 0;
    return 1;
}

/* The tokens whose outputs are compared with cpu-ref. */
static int64_t pick_tokens(int64_t *tok, int64_t m, uint64_t *rng)
{
    if (m <= CHECK_TOKENS) {
        for (int64_t i = 0; i < m; i++) tok[i] = i;
        return m;
    }
    int64_t n = 0;
    tok[n++] = 0;
    tok[n++] = m - 1;
    while (n < CHECK_TOKENS) {
        int64_t t = 1 + (int64_t)(bench_rand(rng) % (uint64_t)(m - 2)), dup = 0;
        for (int64_t i = 0; i < n; i++) dup |= tok[i] == t;
        if (!dup) tok[n++] = t;
    }
    return n;
}

static int check(kq_backend *b, kq_backend *ref, const bench_op *op, const loaded *l,
                 const loaded *rl, const cell_io *io, int64_t m, const char *backend_name,
                 uint64_t *rng, bench_cell *cell)
{
    const int64_t ycols = bench_out_cols(op);
    size_t y_floats = (size_t)(io->y_rows * ycols);
    for (size_t i = 0; i < y_floats; i++) io->y[i] = NAN;
    kq_status st = kq_copy_to_device(b, io->dev_y, io->y, y_bytes(op, io));
    if (st == KQ_OK) st = call(b, op, l, io, 0, 0, m);
    if (st == KQ_OK) st = kq_backend_sync(b);
    if (st == KQ_OK) st = kq_copy_to_host(b, io->y, io->dev_y, y_bytes(op, io));
    if (st) {
        cell->failed = 1;
        snprintf(cell->note, sizeof cell->note, "call failed: %.140s", kq_last_error());
        return -1;
    }
    /* A test hook: proves that a wrong output is caught and fails the run. */
    const char *inject = getenv("KQ_BENCH_INJECT_MISMATCH");
    if (inject && *inject == '1') io->y[y_floats / 2] += 1.0f + fabsf(io->y[y_floats / 2]);
    int finite = all_finite(io->y, y_floats);
    int64_t tok[CHECK_TOKENS];
    int64_t nt = pick_tokens(tok, m, rng);
    int64_t slots = op->experts ? op->top_k : 1;
    int64_t xs = op->per_slot ? slots : 1; /* x rows per token */
    cell_io sub = {0};
    sub.x = malloc((size_t)(nt * xs * op->k) * sizeof(float));
    sub.y = malloc((size_t)(nt * slots * ycols) * sizeof(float));
    float *mine = malloc((size_t)(nt * slots * ycols) * sizeof(float));
    if (op->experts) sub.ids = malloc((size_t)(nt * slots) * sizeof(int32_t));
    if (!sub.x || !sub.y || !mine || (op->experts && !sub.ids)) {
        io_free(&sub);
        free(mine);
        snprintf(cell->note, sizeof cell->note, "out of memory for the check");
        cell->failed = 1;
        return -1;
    }
    for (int64_t i = 0; i < nt; i++) {
        memcpy(sub.x + i * xs * op->k, io->x + tok[i] * xs * op->k, (size_t)(xs * op->k) * sizeof(float));
        memcpy(mine + i * slots * ycols, io->y + tok[i] * slots * ycols,
               (size_t)(slots * ycols) * sizeof(float));
        if (op->experts)
            memcpy(sub.ids + i * slots, io->ids + tok[i] * slots, (size_t)slots * sizeof(int32_t));
    }
    for (size_t i = 0; i < (size_t)(nt * slots * ycols); i++) sub.y[i] = NAN;
    sub.dev_x = sub.x, sub.dev_y = sub.y, sub.dev_ids = sub.ids;
    st = call(ref, op, rl, &sub, 0, 0, nt);
    if (st) {
        cell->failed = 1;
        snprintf(cell->note, sizeof cell->note, "cpu-ref failed: %.140s", kq_last_error());
    } else {
        cell->rel_err = finite ? kq_rel_error(mine, sub.y, (size_t)(nt * slots * ycols)) : INFINITY;
        cell->verified = cell->rel_err <= kq_rel_tolerance(backend_name);
        if (!cell->verified)
            snprintf(cell->note, sizeof cell->note, "MISMATCH: %s, relative error %.3g > %.3g",
                     finite ? "outputs differ from cpu-ref" : "output not finite (unwritten?)",
                     cell->rel_err, kq_rel_tolerance(backend_name));
    }
    io_free(&sub);
    free(mine);
    return st ? -1 : 0;
}

/* ---------------------------------------------------------------- timing */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct timer_state {
    int64_t calls;
} timer_state;

/* Runs `count` calls from the rotation position *pos; returns seconds. */
static double timed_calls(kq_backend *b, const bench_op *op, const loaded *l, const cell_io *io,
                          int64_t m, int64_t count, int64_t *pos, kq_status *st)
{
    double t0 = bench_now();
    for (int64_t i = 0; i < count && *st == KQ_OK; i++, (*pos)++)
        *st = call(b, op, l, io, (int)(*pos % l->n), (int)(*pos % ID_SETS), m);
    if (*st == KQ_OK) *st = kq_backend_sync(b);
    return bench_now() - t0;
}

static void time_cell(kq_backend *b, const bench_op *op, const loaded *l, const cell_io *io,
                      int64_t m, double min_time, int host, bench_cell *cell)
{
    kq_status st = KQ_OK;
    int64_t pos = 0;
    int64_t warm = l->n > 2 ? l->n : 2;
    double t = timed_calls(b, op, l, io, m, warm, &pos, &st);
    double per_call = t / (double)warm;
    /* Samples of B calls last about a millisecond on a CPU; on a device,
     * 5 ms, so that the one synchronization per sample is negligible. */
    double sample = host ? 1e-3 : 5e-3;
    int64_t batch = per_call > 0 ? (int64_t)ceil(sample / per_call) : 1;
    if (batch < 1) batch = 1;
    size_t cap = 1024, n = 0;
    double *s = malloc(cap * sizeof *s), total = 0;
    while (st == KQ_OK && s && (total < min_time || n < 3)) {
        double dt = timed_calls(b, op, l, io, m, batch, &pos, &st);
        if (n == cap) {
            double *grown = realloc(s, (cap *= 2) * sizeof *s);
            if (!grown) break;
            s = grown;
        }
        s[n++] = dt / (double)batch;
        total += dt;
    }
    if (st) {
        cell->failed = 1;
        snprintf(cell->note, sizeof cell->note, "call failed: %.140s", kq_last_error());
    } else if (n > 0) {
        qsort(s, n, sizeof *s, cmp_double);
        cell->median_us = s[n / 2] * 1e6;
        cell->calls = (int64_t)n * batch;
    }
    free(s);
}

/* Bytes a call moves: the weights it reads, its activations and outputs. */
static double cell_bytes(const bench_op *op, const cell_io *io, int64_t m)
{
    double w = (double)op->bytes;
    if (op->experts) w = w / (double)op->experts * io->expert_reads;
    double acts = (double)(io->x_rows * op->k + io->y_rows * bench_out_cols(op)) * sizeof(float);
    if (op->experts) acts += (double)(m * op->top_k) * sizeof(int32_t);
    return w + acts;
}

/* ---------------------------------------------------------------- a backend */

static bench_cell *new_cell(bench_results *r)
{
    if (r->n_cells == r->cap_cells) {
        int cap = r->cap_cells ? r->cap_cells * 2 : 64;
        bench_cell *c = realloc(r->cells, (size_t)cap * sizeof *c);
        if (!c) return NULL;
        r->cells = c, r->cap_cells = cap;
    }
    bench_cell *c = &r->cells[r->n_cells++];
    memset(c, 0, sizeof *c);
    return c;
}

static void progress(const bench_options *o, int done, int total, const char *backend,
                     const bench_op *op, int64_t m)
{
    if (!o->progress) return;
    fprintf(stderr, "\r\033[K  [%3d/%3d] %s  m=%-5lld %-28.28s", done, total, backend,
            (long long)m, op ? op->name : "");
    fflush(stderr);
}

int bench_run_backend(const bench_plan *p, const bench_options *o, kq_backend *b,
                      kq_backend *ref, int bi, bench_results *r)
{
    bench_backend_result *br = &r->backends[bi];
    int host = b->ops->host_memory;
    loaded *ls = calloc((size_t)p->n_ops, sizeof *ls), *refs = calloc((size_t)p->n_ops, sizeof *refs);
    if (!ls || !refs) {
        free(ls);
        free(refs);
        fprintf(stderr, "kq bench: out of memory\n");
        return 1;
    }
    int rc = 0;
    /* Load time covers the backend's loads only (uploads included, waited
     * for), not the reference's. */
    for (int i = 0; i < p->n_ops && rc == 0; i++) {
        double t0 = bench_now();
        int bad = load(b, p, &p->ops[i], p->ops[i].n_copies, &ls[i]) || kq_backend_sync(b);
        br->load_seconds += bench_now() - t0;
        if (bad || load(ref, p, &p->ops[i], 1, &refs[i])) {
            fprintf(stderr, "kq bench: loading %s on %s: %s\n", p->ops[i].name, br->name,
                    kq_last_error());
            rc = 1;
        }
        br->load_bytes += (double)p->ops[i].bytes * p->ops[i].n_copies;
    }
    br->zero_copy = rc == 0 && p->n_ops > 0 &&
                    (ls[0].lin ? kq_linear_is_zero_copy(ls[0].lin[0]) : kq_experts_is_zero_copy(ls[0].exp[0]));
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 1;
    double start = bench_now();
    int total = o->n_m * p->n_ops, done = 0;
    /* m outermost: if the time budget runs out, it is the largest m that go
     * untimed, for every op alike. */
    for (int mi = 0; mi < o->n_m && rc == 0; mi++) {
        int64_t m = o->m[mi];
        for (int i = 0; i < p->n_ops && rc == 0; i++, done++) {
            const bench_op *op = &p->ops[i];
            progress(o, done, total, br->name, op, m);
            bench_cell *cell = new_cell(r);
            if (!cell) {
                rc = 1;
                break;
            }
            cell->op = op, cell->backend = bi, cell->m = m;
            /* Predict this cell from the same op at the previous m (time grows
             * at most in proportion to m) and skip it if the budget can't
             * hold its check, warm-up and three samples. */
            double predicted = 0;
            for (int j = r->n_cells - 2; j >= 0; j--) {
                const bench_cell *prev = &r->cells[j];
                if (prev->op == op && prev->backend == bi && prev->median_us > 0) {
                    predicted = prev->median_us * 1e-6 * (double)m / (double)prev->m;
                    break;
                }
            }
            double left = o->budget > 0 ? o->budget - (bench_now() - start) : INFINITY;
            int warm = op->n_copies > 2 ? op->n_copies : 2;
            if (predicted * (warm + 4) > left) {
                cell->skipped = 1;
                snprintf(cell->note, sizeof cell->note,
                         "skipped: about %.3g s a call, over the time budget (--budget)", predicted);
                continue;
            }
            cell_io io;
            int bad_make = io_make(&io, op, m, &rng);
            if (bad_make || io_upload(&io, b, op, m)) {
                io_free(&io);
                fprintf(stderr, "kq bench: buffers for m = %lld on %s: %s\n", (long long)m,
                        br->name, bad_make ? "out of host memory" : kq_last_error());
                rc = 1;
                break;
            }
            if (check(b, ref, op, &ls[i], &refs[i], &io, m, br->name, &rng, cell) == 0)
                time_cell(b, op, &ls[i], &io, m, o->min_time, host, cell);
            if (cell->median_us > 0) {
                cell->bytes = cell_bytes(op, &io, m);
                double s = cell->median_us * 1e-6;
                cell->gbs = cell->bytes / s * 1e-9;
                double flops = 2.0 * (double)op->n * (double)op->k * (double)m *
                               (double)(op->experts ? op->top_k * op->n_parts : 1);
                cell->tflops = flops / s * 1e-12;
            }
            io_free(&io);
        }
    }
    progress(o, total, total, br->name, NULL, 0);
    if (o->progress) fprintf(stderr, "\r\033[K");
    for (int i = 0; i < p->n_ops; i++) {
        unload(&ls[i]);
        unload(&refs[i]);
    }
    free(ls);
    free(refs);
    return rc;
}
