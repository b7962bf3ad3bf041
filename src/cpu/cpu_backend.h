/* Internals of the "cpu" backend shared by its drivers (cpu_backend.c opens
 * it; cpu_linear.c runs dense, fused and SwiGLU calls; cpu_experts.c the
 * expert calls; cpu_tiles.c computes a block of outputs of one weight part
 * with the part's micro-kernel or, for float weights, in double). */
#ifndef KQ_CPU_BACKEND_H
#define KQ_CPU_BACKEND_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "pool.h"
#include "ukernel.h"

#define KQ_CPU_MAX_TYPE 64 /* kernel tables are indexed by ggml type id */

/* The tiers (docs/design.md): m = 1 and 2..16 take variant 0, larger m variant 1,
 * or variant 2 (kq_act32x8 activations) in the dense drivers where the ISA
 * has one for the type. */
#define KQ_CPU_SMALL_M 16
#define KQ_CPU_VARIANTS 3
/* Variant 2's kernels sit in kern[KQ_CPU_X8]. A driver asks for them with
 * variant KQ_CPU_X8 (types without one take variant 1) or KQ_CPU_X8_SMALL
 * (m = 8..16: types without one take variant 0). */
#define KQ_CPU_X8 2
#define KQ_CPU_X8_SMALL 3

typedef struct cpu_state {
    kq_pool *pool;
    int threads;
    kq_isa isa;
    /* Resolved at open: kern[variant][type], NULL for float types. */
    const kq_ukernel *kern[KQ_CPU_VARIANTS][KQ_CPU_MAX_TYPE]; /* [2]: NULL where none */
    /* One call at a time owns the pool and the scratch. */
    pthread_mutex_t call_mu;
    void *scratch;
    size_t scratch_cap;
} cpu_state;

/* The activations of one call, as the tiles read them: quantized rows of
 * each kind the call's weights need (row c at q[kind] + c * q_stride[kind]),
 * and the float rows for float weights (x_rows[c] if set, else x + c * x_stride). */
typedef struct cpu_acts {
    const uint8_t *q[KQ_ACT_KINDS];
    size_t q_stride[KQ_ACT_KINDS];
    const float *x;
    int64_t x_stride;
    const float *const *x_rows;
} cpu_acts;

/* Sizes the blocks of a call: rows per work unit and activation rows per
 * m-block, each a multiple of every tile edge involved. */
typedef struct cpu_blocking {
    int variant;
    int64_t rb; /* weight rows per unit */
    int64_t mb; /* activation rows per block */
} cpu_blocking;

/* out[(c - c0) * ldo + (r - r0)] = row r of part p (part-relative) . act row c,
 * for r in [r0, r1), c in [c0, c1). fbuf holds n_cols floats (float weights). */
void kq__cpu_part_block(const cpu_state *s, const kq_weight_part *p, int variant, int64_t r0,
                        int64_t r1, const cpu_acts *a, int64_t c0, int64_t c1, int64_t n_cols,
                        float *out, int64_t ldo, float *fbuf);

/* Whether a part of this type runs variant 2 (and reads kq_act32x8 rows)
 * when a driver asks for variant `variant`. The driver then quantizes
 * KQ_ACT_32X8 rows, a multiple of 8 of them (the last tile zeroed first),
 * and its activation blocks start on multiples of 8 rows. */
int kq__cpu_part_x8(const cpu_state *s, int variant, int type);

/* The same over global rows [g0, g1) of a linear, crossing parts as needed. */
void kq__cpu_rows_block(const cpu_state *s, const kq_linear *l, int variant, int64_t g0,
                        int64_t g1, const cpu_acts *a, int64_t c0, int64_t c1, float *out,
                        int64_t ldo, float *fbuf);

/* Blocking for weights of at most max_row_bytes per row, activations of
 * act_row_bytes per row, m activation rows, over the given types (their
 * tile edges); long_runs: prefer long weight streams to fine balance. */
cpu_blocking kq__cpu_blocking(const cpu_state *s, const int *types, int n_types,
                              size_t max_row_bytes, size_t act_row_bytes, int64_t m,
                              int long_runs);

/* Quantizes n rows into the kinds `kinds` (bit mask of 1 << kind) needs:
 * row c comes from src_rows(c). Runs on the pool when big enough. */
typedef const float *(*cpu_row_fn)(const void *ctx, int64_t c);
void kq__cpu_quantize_rows(cpu_state *s, unsigned kinds, int64_t n, int64_t k, cpu_row_fn src,
                           const void *src_ctx, cpu_acts *a);

/* The backend's scratch, at least `bytes`, 64-byte aligned; NULL when it
 * cannot grow. Only under call_mu. */
void *kq__cpu_scratch(cpu_state *s, size_t bytes);

/* Bytes of one quantized activation row of kind a for k columns. */
static inline size_t kq__cpu_act_row_bytes(int kind, int64_t k)
{
    return (size_t)(k / kq__act_block_elems((kq_act_kind)kind)) *
           kq__act_block_bytes((kq_act_kind)kind);
}

static inline size_t kq__cpu_align64(size_t n) { return (n + 63) & ~(size_t)63; }

static inline float kq__cpu_silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

kq_status kq__cpu_linear_forward(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                 int64_t m);
kq_status kq__cpu_linear_glu(kq_backend *b, const kq_linear *l, const float *x, float *y,
                             int64_t m, kq_glu act);
/* glu.c: y = act(g) * u for n values; -1 for an act that is no kq_glu. */
int kq__cpu_glu_mul(kq_glu act, const float *g, const float *u, float *y, int64_t n);
kq_status kq__cpu_experts_forward(kq_backend *b, const kq_experts *e, const float *x,
                                  int64_t token_stride, int64_t slot_stride, const int32_t *ids,
                                  int64_t m, int64_t top_k, float *y);
kq_status kq__cpu_experts_swiglu(kq_backend *b, const kq_experts *gate, const kq_experts *up,
                                 const float *x, int64_t token_stride, int64_t slot_stride,
                                 const int32_t *ids, int64_t m, int64_t top_k, float *y);

#endif
