/* kq bench: the pieces shared by its files.
 *
 *   bench.c         options, the order of work, the exit status
 *   bench_model.c   which ops: built-in model layers (written to a temporary
 *                   GGUF file with rotation copies) or the tensors of a file
 *   bench_run.c     one (backend, op, m) cell: check against cpu-ref, time
 *   bench_report.c  the table, the model summary, JSON
 *   bench_svg.c     the picture
 */
#ifndef KQ_TOOL_BENCH_H
#define KQ_TOOL_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "kquant.h"
#include "core/ceilings.h"

#define BENCH_MAX_M 16
#define BENCH_MAX_PARTS 4

/* Which per-layer sums an op belongs to in the model summary. */
enum { SUM_SEPARATE = 1, SUM_FUSED = 2 };

typedef struct bench_op {
    char name[64];  /* "attn_q", "ffn_gate_up (fused)", "q4_K:14336x4096" */
    char model[32]; /* built-in model it belongs to; "" for --shape or a file */
    char type[32];  /* "q4_K", or "q4_K+q6_K" for mixed fused parts */
    int64_t n, k;   /* output columns (rows of W) and row length */
    int64_t experts, top_k; /* 0 for a dense linear */
    int per_slot;   /* experts: each slot has its own activation row (down) */
    int swiglu;     /* silu(gate) * up in one call: dense, the parts are gate and
                     * up rows (n counts both, y is n / 2 wide); experts, the
                     * two parts are the gate and up stacks (n is one's rows) */
    int n_parts;
    int n_copies;   /* rotation copies (a model's layers) */
    char **names;   /* n_copies * n_parts tensor names in the GGUF file */
    size_t bytes;   /* weight bytes of one copy */
    int sums;       /* SUM_* bits */
    int64_t count;  /* in a file: tensors in this group; built-in: 1 per layer */
} bench_op;

typedef struct bench_model {
    char name[32];
    int64_t layers;
} bench_model;

typedef struct bench_plan {
    bench_op *ops;
    int n_ops;
    bench_model models[4];
    int n_models;
    int from_file;  /* ops are a real file's tensors, grouped by shape */
    char source[256];
    kq_gguf *gguf;  /* the file the ops load from (temporary or the user's) */
} bench_plan;

typedef struct bench_options {
    const char *file;
    char backends[8][32];
    int n_backends;
    int explicit_backend; /* a backend named on the command line must open */
    int64_t m[BENCH_MAX_M];
    int n_m;
    const char *shapes[64];
    int n_shapes;
    int threads;
    const char *json_path, *svg_path;
    double min_time;  /* seconds of timed calls per cell */
    double budget;    /* seconds per backend for all its cells; 0 = no limit */
    uint64_t seed;
    int progress;     /* draw a progress line (stderr is a TTY) */
} bench_options;

/* One (backend, op, m) result. */
typedef struct bench_cell {
    const bench_op *op;
    int backend; /* index into the run's backend results */
    int64_t m;
    int skipped; /* not run: over the time budget (reason in note) */
    int failed;  /* a call failed (note says why) */
    int verified;
    double rel_err;
    double median_us;
    double gbs, tflops;
    double bytes;  /* moved per call: weights read, activations, outputs */
    int64_t calls;
    char note[160];
} bench_cell;

typedef struct bench_backend_result {
    char spec[64];
    char name[32];
    char device[160];
    kq_ceilings ceil;
    double load_seconds, load_bytes;
    int zero_copy; /* the weights are used in place from the file mapping */
    int opened;
    char why_not[256];
} bench_backend_result;

typedef struct bench_results {
    bench_backend_result backends[8];
    int n_backends;
    bench_cell *cells;
    int n_cells, cap_cells;
} bench_results;

/* bench_model.c */
int bench_plan_builtin(bench_plan *p, const bench_options *o, unsigned long long rotate_bytes);
int bench_plan_shapes(bench_plan *p, const bench_options *o, unsigned long long rotate_bytes);
int bench_plan_file(bench_plan *p, const char *path);
void bench_plan_free(bench_plan *p);

/* bench_run.c: loads every op on b and times each m; appends cells. */
int bench_run_backend(const bench_plan *p, const bench_options *o, kq_backend *b,
                      kq_backend *ref, int backend_index, bench_results *r);

/* bench_report.c */
void bench_print_backend(const bench_plan *p, const bench_results *r, int backend_index);
void bench_print_summary(const bench_plan *p, const bench_results *r, const bench_options *o);
int bench_write_json(const bench_plan *p, const bench_results *r, const char *path);
const char *bench_shape_text(const bench_op *op, char *buf, size_t cap);

/* bench_svg.c */
int bench_write_svg(const bench_plan *p, const bench_results *r, const bench_options *o,
                    const char *path);

/* Width of the op's output rows (n, or n / 2 for a dense SwiGLU). */
int64_t bench_out_cols(const bench_op *op);

/* Helpers shared by the bench files. */
double bench_now(void);
uint64_t bench_rand(uint64_t *state);
float bench_normal(uint64_t *state);

#endif
