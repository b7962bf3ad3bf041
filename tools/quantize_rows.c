/* Rows of one tensor quantized on several threads; see quantize_rows.h. */
#include "quantize_rows.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kquant.h"

/* Elements per chunk: big enough that taking a chunk (one atomic add) costs
 * nothing next to quantizing it, small enough that threads finish together
 * and the progress bar moves on tensors of a few chunks. */
#define CHUNK_ELEMS 65536
#define MAX_THREADS 256

typedef struct qrows_job {
    int src_type, dst_type;
    const unsigned char *src;
    unsigned char *dst;
    size_t src_row, dst_row;
    int64_t n_rows, n_cols, chunk_rows;
    atomic_llong next; /* first row of the next chunk to take */
    atomic_llong done; /* rows finished, for progress */
    atomic_int failed;
    pthread_mutex_t err_lock; /* guards err and error */
    char err[512];
    kq_qrows_error error;
    kq_qrows_progress progress; /* only the calling thread reports */
    void *progress_ctx;
} qrows_job;

static void fail(qrows_job *j, const char *what)
{
    pthread_mutex_lock(&j->err_lock);
    if (!atomic_load(&j->failed)) snprintf(j->err, sizeof j->err, "%s", what);
    atomic_store(&j->failed, 1);
    pthread_mutex_unlock(&j->err_lock);
}

/* A block type cannot encode inf or NaN (kq_quantize refuses them); this
 * names the first one by its row in the whole tensor, which the chunk's
 * call cannot. Returns 0 if every value is finite. */
static int check_finite(qrows_job *j, const float *buf, int64_t r0, int64_t n)
{
    if (kq_type_block_elems(j->dst_type) <= 1) return 0; /* f16/bf16/f32 carry them */
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < j->n_cols; c++) {
            const float v = buf[r * j->n_cols + c];
            if (isfinite(v)) continue;
            char what[200];
            snprintf(what, sizeof what,
                     "row %lld, column %lld is %s: %s cannot encode a non-finite weight",
                     (long long)(r0 + r), (long long)c, isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf",
                     kq_type_name(j->dst_type));
            fail(j, what);
            return -1;
        }
    return 0;
}

/* Adds the chunk's error (decoded against source) to a thread's sums. */
static int add_error(qrows_job *j, const float *x, float *y, const unsigned char *d, int64_t n,
                     kq_qrows_error *e)
{
    if (kq_dequantize(j->dst_type, d, (size_t)n * j->dst_row, n, j->n_cols, y) != KQ_OK) return -1;
    const int64_t count = n * j->n_cols;
    for (int64_t i = 0; i < count; i++) {
        const double diff = (double)y[i] - x[i];
        e->sse += diff * diff;
        e->sum_x2 += (double)x[i] * x[i];
    }
    e->n += count;
    return 0;
}

/* Takes chunks until none is left or some thread failed. */
static void run(qrows_job *j, int reports)
{
    size_t floats = (size_t)j->chunk_rows * (size_t)j->n_cols; /* checked by the caller */
    float *buf = malloc(floats * sizeof *buf);
    float *back = malloc(floats * sizeof *back);
    kq_qrows_error e = {0, 0, 0};
    if (!buf || !back) {
        fail(j, "out of memory for a chunk of rows");
        free(buf);
        free(back);
        return;
    }
    for (;;) {
        if (atomic_load(&j->failed)) break;
        long long r0 = atomic_fetch_add(&j->next, j->chunk_rows);
        if (r0 >= j->n_rows) break;
        int64_t n = j->n_rows - r0 < j->chunk_rows ? j->n_rows - r0 : j->chunk_rows;
        const unsigned char *s = j->src + (size_t)r0 * j->src_row;
        unsigned char *d = j->dst + (size_t)r0 * j->dst_row;
        /* kq_dequantize widens f16/bf16 and copies f32 (through memcpy, so
         * an f32 tensor at an unaligned file offset is read safely). */
        if (kq_dequantize(j->src_type, s, (size_t)n * j->src_row, n, j->n_cols, buf) != KQ_OK) {
            fail(j, kq_last_error());
            break;
        }
        if (check_finite(j, buf, r0, n)) break;
        if (kq_quantize(j->dst_type, buf, n, j->n_cols, d, (size_t)n * j->dst_row) != KQ_OK ||
            add_error(j, buf, back, d, n, &e)) {
            fail(j, kq_last_error());
            break;
        }
        long long done = atomic_fetch_add(&j->done, n) + n;
        if (reports && j->progress) j->progress(j->progress_ctx, done);
    }
    pthread_mutex_lock(&j->err_lock);
    j->error.sse += e.sse;
    j->error.sum_x2 += e.sum_x2;
    j->error.n += e.n;
    pthread_mutex_unlock(&j->err_lock);
    free(buf);
    free(back);
}

static void *thread_main(void *arg)
{
    run(arg, 0);
    return NULL;
}

int kq_quantize_rows(int src_type, const void *src, size_t src_bytes, int dst_type, void *dst,
                     size_t dst_bytes, int64_t n_rows, int64_t n_cols, int n_threads,
                     kq_qrows_progress progress, void *progress_ctx, kq_qrows_error *error_out,
                     char *err, size_t err_cap)
{
    size_t src_row, dst_row, total;
    if (kq_row_size(src_type, n_cols, &src_row) != KQ_OK ||
        kq_row_size(dst_type, n_cols, &dst_row) != KQ_OK) {
        snprintf(err, err_cap, "%s", kq_last_error());
        return -1;
    }
    if (n_rows <= 0 || __builtin_mul_overflow((size_t)n_rows, src_row, &total) ||
        total != src_bytes || __builtin_mul_overflow((size_t)n_rows, dst_row, &total) ||
        total != dst_bytes) {
        snprintf(err, err_cap, "%lld rows of %lld do not match %zu bytes in, %zu bytes out",
                 (long long)n_rows, (long long)n_cols, src_bytes, dst_bytes);
        return -1;
    }
    qrows_job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    j->src_type = src_type, j->dst_type = dst_type;
    j->src = src, j->dst = dst;
    j->src_row = src_row, j->dst_row = dst_row;
    j->n_rows = n_rows, j->n_cols = n_cols;
    j->chunk_rows = n_cols >= CHUNK_ELEMS ? 1 : CHUNK_ELEMS / n_cols;
    if (j->chunk_rows > n_rows) j->chunk_rows = n_rows;
    size_t chunk_floats;
    if (__builtin_mul_overflow((size_t)j->chunk_rows, (size_t)n_cols, &chunk_floats) ||
        chunk_floats > SIZE_MAX / sizeof(float)) {
        snprintf(err, err_cap, "a row of %lld elements does not fit in memory", (long long)n_cols);
        free(j);
        return -1;
    }
    atomic_init(&j->next, 0);
    atomic_init(&j->done, 0);
    atomic_init(&j->failed, 0);
    pthread_mutex_init(&j->err_lock, NULL);
    j->progress = progress, j->progress_ctx = progress_ctx;

    int64_t chunks = (n_rows + j->chunk_rows - 1) / j->chunk_rows;
    int want = n_threads < 1 ? 1 : (n_threads > MAX_THREADS ? MAX_THREADS : n_threads);
    if (want > chunks) want = (int)chunks;
    pthread_t tids[MAX_THREADS];
    int started = 0;
    /* The calling thread works too; a thread that cannot start only means
     * fewer hands, never a wrong result, as chunks are taken, not assigned. */
    while (started + 1 < want && pthread_create(&tids[started], NULL, thread_main, j) == 0)
        started++;
    run(j, 1);
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);

    int rc = atomic_load(&j->failed) ? -1 : 0;
    if (rc) snprintf(err, err_cap, "%s", j->err);
    if (error_out) *error_out = j->error;
    pthread_mutex_destroy(&j->err_lock);
    free(j);
    return rc;
}
