/* The threaded part of `kq quantize`: one tensor's rows converted from a
 * float type (f32, f16, bf16) to a quantized type, in chunks of rows that
 * threads take in turn. kq_quantize is thread-safe on disjoint rows, so the
 * threads share nothing but two counters. */
#ifndef KQ_TOOL_QUANTIZE_ROWS_H
#define KQ_TOOL_QUANTIZE_ROWS_H

#include <stddef.h>
#include <stdint.h>

/* Called on the calling thread between its chunks with the rows done so
 * far over all threads (for a progress bar); may be NULL. */
typedef void (*kq_qrows_progress)(void *ctx, int64_t rows_done);

/* The error of what was written against the float source, summed over
 * every element in double: sqrt(sse / n) is the RMSE, sqrt(sse / sum_x2)
 * the relative one. */
typedef struct kq_qrows_error {
    double sse, sum_x2;
    int64_t n;
} kq_qrows_error;

/* src holds n_rows rows of src_type (src_bytes exactly), dst receives n_rows
 * rows of dst_type (dst_bytes exactly). Returns 0, or -1 with a message in
 * err (the first failing thread's kq_last_error, which is per thread; an
 * inf or NaN in src is reported by its row over the whole tensor and its
 * column). *error_out, if not NULL, gets the quantization error. */
int kq_quantize_rows(int src_type, const void *src, size_t src_bytes, int dst_type, void *dst,
                     size_t dst_bytes, int64_t n_rows, int64_t n_cols, int n_threads,
                     kq_qrows_progress progress, void *progress_ctx, kq_qrows_error *error_out,
                     char *err, size_t err_cap);

#endif
