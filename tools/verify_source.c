/* kq verify --source (verify_source.h): each tensor of the quantized file
 * that the source also holds, as float rows, is dequantized and compared with
 * the source's values row by row.
 *
 * Two measures per tensor:
 *   - rel rmse: sqrt(sum (q - s)^2 / sum s^2) over the tensor, the usual
 *     quantization error (a few percent at 4 bits), printed for reference;
 *   - worst block: over the quantized type's blocks, max |q - s| divided by
 *     the block's max |s|. A quantizer of 2 or more bits keeps this at or
 *     below about a third (half a step of at least 3 steps across the block's
 *     range); one block turned to garbage (every weight about -1 from a +Inf,
 *     a block zeroed by an overflowing scale search) comes out at 1 or far
 *     beyond, however large the tensor around it. The bound is 0.75.
 * A non-finite value on either side is damage in itself and is reported with
 * its row and column. Tensors the source lacks, or holds with another shape,
 * are listed and counted, not failed (a mix may add tensors). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kq.h"
#include "print_escaped.h"
#include "verify_source.h"

#define BLOCK_BOUND 0.75

typedef struct tstat {
    double err2, ref2;      /* sums for the rel rmse */
    double worst;           /* worst block ratio */
    int64_t worst_row, worst_col;
    int64_t bad_src, bad_q; /* non-finite values in the source, in the dequantized */
    int64_t bad_row, bad_col;
} tstat;

static int is_float_type(int t)
{
    return t == KQ_TYPE_F32 || t == KQ_TYPE_F16 || t == KQ_TYPE_BF16;
}

/* Row by row: two float rows of K, never the whole tensor. */
static int compare_rows(const kq_tensor_info *q, const kq_tensor_info *s, tstat *st)
{
    const int64_t K = q->ne[0];
    int64_t rows = 1;
    for (int d = 1; d < 4; d++) rows *= q->ne[d];
    size_t qrow, srow;
    if (kq_row_size(q->type, K, &qrow) != KQ_OK || kq_row_size(s->type, K, &srow) != KQ_OK)
        return -1;
    float *a = malloc((size_t)K * sizeof *a), *b = malloc((size_t)K * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    int64_t blk = kq_type_block_elems(q->type);
    if (blk < 1) blk = K;
    memset(st, 0, sizeof *st);
    st->bad_row = st->bad_col = -1;
    int rc = 0;
    for (int64_t r = 0; r < rows && rc == 0; r++) {
        if (kq_dequantize(q->type, (const uint8_t *)q->data + (size_t)r * qrow, qrow, 1, K, a) !=
                KQ_OK ||
            kq_dequantize(s->type, (const uint8_t *)s->data + (size_t)r * srow, srow, 1, K, b) !=
                KQ_OK) {
            rc = -1;
            break;
        }
        for (int64_t c0 = 0; c0 < K; c0 += blk) {
            double amax = 0, emax = 0;
            int64_t end = c0 + blk < K ? c0 + blk : K;
            for (int64_t c = c0; c < end; c++) {
                int fs = isfinite(b[c]), fq = isfinite(a[c]);
                if (!fs || !fq) {
                    if (st->bad_row < 0) st->bad_row = r, st->bad_col = c;
                    st->bad_src += !fs;
                    st->bad_q += !fq;
                    continue;
                }
                double e = (double)a[c] - (double)b[c];
                st->err2 += e * e;
                st->ref2 += (double)b[c] * b[c];
                amax = fmax(amax, fabs(b[c]));
                emax = fmax(emax, fabs(e));
            }
            /* An all-zero source block must come back all zero. */
            double ratio = amax > 0 ? emax / amax : emax > 0 ? INFINITY : 0.0;
            if (ratio > st->worst) st->worst = ratio, st->worst_row = r, st->worst_col = c0;
        }
    }
    free(a);
    free(b);
    return rc;
}

int kq_verify_against_source(const kq_gguf *quant, const char *source_path)
{
    char esc[KQ_ESC_CAP];
    kq_gguf *src = NULL;
    if (kq_gguf_open(source_path, &src) != KQ_OK) return kq_tool_error("verify --source", source_path);
    printf("\nagainst the source %s (worst block: max |q - s| / max |s| over a block, bound %.2f)\n",
           kq_escape_str(esc, sizeof esc, source_path), BLOCK_BOUND);
    printf("%-40s %-7s %10s %12s  %s\n", "tensor", "type", "rel rmse", "worst block", "status");
    int64_t ok = 0, damaged = 0, missing = 0, n = kq_gguf_n_tensors(quant);
    for (int64_t i = 0; i < n; i++) {
        kq_tensor_info q, s;
        if (kq_gguf_tensor(quant, i, &q) != KQ_OK) continue;
        const char *tn = kq_type_name(q.type);
        printf("%-40s %-7s ", kq_escape_str(esc, sizeof esc, q.name), tn ? tn : "?");
        const char *why = NULL;
        if (kq_gguf_find_tensor(src, q.name, &s) != KQ_OK)
            why = "not in the source";
        else if (memcmp(s.ne, q.ne, sizeof q.ne) != 0)
            why = "another shape in the source";
        else if (!is_float_type(s.type))
            why = "source not f32/f16/bf16";
        else if (kq_row_size(q.type, q.ne[0], &(size_t){0}) != KQ_OK)
            why = "type not dequantized here";
        if (why) {
            printf("%10s %12s  - (%s)\n", "-", "-", why);
            missing++;
            continue;
        }
        tstat st;
        if (compare_rows(&q, &s, &st) != 0) {
            printf("%10s %12s  DAMAGED (cannot dequantize: %s)\n", "-", "-", kq_last_error());
            damaged++;
            continue;
        }
        double rmse = st.ref2 > 0 ? sqrt(st.err2 / st.ref2) : sqrt(st.err2);
        int bad = st.bad_src || st.bad_q || !(st.worst <= BLOCK_BOUND);
        printf("%10.4f %12.3g  %s", rmse, st.worst, bad ? "DAMAGED" : "ok");
        if (st.bad_src || st.bad_q)
            printf(" (%" PRId64 " non-finite in the source, %" PRId64
                   " in the quantized; first at row %" PRId64 ", column %" PRId64 ")",
                   st.bad_src, st.bad_q, st.bad_row, st.bad_col);
        else if (bad)
            printf(" (block at row %" PRId64 ", columns %" PRId64 "..)", st.worst_row,
                   st.worst_col);
        putchar('\n');
        if (bad) damaged++;
        else ok++;
    }
    printf("source summary: %" PRId64 " ok, %" PRId64 " DAMAGED, %" PRId64 " not compared\n", ok,
           damaged, missing);
    kq_gguf_close(src);
    return damaged ? 1 : 0;
}
