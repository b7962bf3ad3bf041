/* A small test harness: seeded random inputs (seed printed on failure and
 * settable with KQ_TEST_SEED), checks that count and report, NaN poisoning. */
#ifndef KQ_TESTUTIL_H
#define KQ_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "kquant.h"

#define KT_SKIP 77

/* Seeds the generator from KQ_TEST_SEED or the clock, and names the test. */
void kt_init(const char *name);
uint64_t kt_seed(void);
/* Uniform 64-bit value; uniform in [0, 1); in [lo, hi]; standard normal. */
uint64_t kt_u64(void);
double kt_uniform(void);
int64_t kt_range(int64_t lo, int64_t hi);
double kt_normal(void);
void kt_fill_normal(float *x, int64_t n, float scale);
void kt_fill_bytes(void *p, size_t n);
/* Fills with quiet NaN, so an element a kernel forgot to write fails. */
void kt_poison(float *y, int64_t n);

/* Records a pass, or a failure with its message, location and the seed. */
int kt_check(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define KT_CHECK(cond, ...) kt_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
/* Checks a status is KQ_OK, printing kq_last_error() if not. */
#define KT_OK(call) KT_CHECK((call) == KQ_OK, "%s failed: %s", #call, kq_last_error())
/* Checks a call fails with `want` and a message containing `needle`. */
#define KT_EXPECT(call, want, needle)                                                       \
    do {                                                                                    \
        kq_status kt_st_ = (call);                                                          \
        KT_CHECK(kt_st_ == (want) && strstr(kq_last_error(), (needle)) != NULL,             \
                 "%s: got %s '%s', want %s with '%s'", #call, kq_status_name(kt_st_),       \
                 kq_last_error(), kq_status_name(want), (needle));                          \
    } while (0)

/* Prints "NAME: N passed, N failed" and returns the process exit status. */
int kt_finish(void);
int kt_failures(void);

/* A path under the build's test-tmp folder (or /tmp), unique to this process. */
const char *kt_tmp_path(const char *leaf);

/* Dense double reference of y = x * W^T from float weights, for checks. */
/* Dense double reference of y = x * W^T from float weights; abs (may be NULL)
 * gets sum |w x| per output, the scale of the summation error. */
void kt_matmul_ref(const float *w, int64_t n, int64_t k, const float *x, int64_t m, double *y,
                   double *abs);


/* A random weight of `type`: normal values quantized by kquant, plus its
 * exact dequantization (what every backend must multiply by). Caller frees
 * both. Returns 0 on success. */
typedef struct kt_weight {
    int type;
    int64_t n_rows, n_cols;
    void *bytes;
    size_t nbytes;
    float *deq; /* n_rows x n_cols */
} kt_weight;
int kt_weight_make(kt_weight *w, int type, int64_t n_rows, int64_t n_cols);
/* Where kquant has no quantizer for the type (kq_quantize says
 * KQ_ERR_UNSUPPORTED), kt_weight_make fills the blocks with random quant
 * bits under random scales of a layer's size instead (kt_random_blocks with
 * fp16 scales drawn from 1e-4..4e-3, E8M0 from 2^-10..2^-5). */
void kt_weight_free(kt_weight *w);

/* Where a quantized type's block keeps its scales and its quant bits, for
 * tests that write blocks byte by byte: fp16 fields at half[0], half[1]
 * (-1: none), an E8M0 exponent byte at e8m0 (-1: none), and the bytes
 * [qoff, qoff + qlen) that hold only quant bits (zeroing them leaves each
 * element's offset or min part). Returns -1 for a type not in
 * formats/type_list.h. */
typedef struct kt_block_layout {
    int elems, bytes;
    int half[2], e8m0;
    int qoff, qlen;
} kt_block_layout;
int kt_block_layout_of(int type, kt_block_layout *out);
/* Random bytes for nb blocks of `type` whose scales are finite: fp16 scales
 * with an all-ones exponent get it cleared, E8M0 exponents stay at most
 * 2^16 (so products stay far from float overflow, as fp16 scales do). */
void kt_random_blocks(int type, uint8_t *dst, int64_t nb);

/* The types weights may have. */
extern const int kt_weight_types[];
extern const int kt_n_weight_types;

/* |got - want| within float rounding of an exact double dot product: the
 * reference backend sums in double (error ~K * 2^-53 * sum|w x|, far below
 * float) and rounds once to float (2^-24 relative). abs_scale is sum |w x|. */
int kt_close_f32(float got, double want, double abs_scale);

/* Backends that quantize activations to int8 blocks (the "cpu" backend):
 * kt_act_block gives the block a weight type's kernels use (32 for q4_0 and
 * q8_0, 256 for k-quants, 0 for float weights, computed in float), and
 * kt_act8_tol the error bound of one output, w . x over k values, that
 * follows from that quantization (derived in testutil.c). kt_close_on picks
 * the check by the backend that `what` starts with ("cpu ...", "cpu:..."
 * quantize; others, "cpu-ref" included, must be exact to float rounding). */
int kt_act_block(int type);
double kt_act8_tol(const float *w, const float *x, int64_t k, int block);
int kt_close_on(const char *what, int type, float got, double want, double abs_scale,
                const float *w, const float *x, int64_t k);

#endif
