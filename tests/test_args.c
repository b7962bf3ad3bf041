/* Argument errors: every public layer call with NULL, negative, zero or
 * inconsistent arguments returns its status and a message that names the
 * argument and its value. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* KQ_MISUSE_PRINT=1: each case as a row of docs/api-misuse.md. */
static int g_print;

/* The status must be `want` and the message must contain `needle`. */
#define EXPECT(call, want, needle)                                                              \
    do {                                                                                        \
        kq_status st_ = (call);                                                                 \
        KT_CHECK(st_ == (want) && strstr(kq_last_error(), (needle)) != NULL,                    \
                 "%s: got %s '%s', want %s with '%s'", #call, kq_status_name(st_),              \
                 kq_last_error(), kq_status_name(want), (needle));                              \
        if (g_print) printf("| `%s` | %s | %s |\n", #call, kq_status_name(st_), kq_last_error()); \
    } while (0)

static void backend_specs(void)
{
    kq_backend *b = (kq_backend *)&b; /* must be reset to NULL on failure */
    EXPECT(kq_backend_open(NULL, &b), KQ_ERR_INVALID_ARG, "spec is NULL");
    KT_CHECK(b == NULL, "out must be NULL after a failure");
    EXPECT(kq_backend_open("cpu", NULL), KQ_ERR_INVALID_ARG, "out is NULL");
    EXPECT(kq_backend_open("", &b), KQ_ERR_INVALID_ARG, "empty");
    EXPECT(kq_backend_open("tpu", &b), KQ_ERR_INVALID_ARG, "unknown backend 'tpu'");
    EXPECT(kq_backend_open("cpu:threads=0", &b), KQ_ERR_INVALID_ARG, "threads = '0'");
    EXPECT(kq_backend_open("cpu:threads=-3", &b), KQ_ERR_INVALID_ARG, "threads = '-3'");
    EXPECT(kq_backend_open("cpu:threads=2x", &b), KQ_ERR_INVALID_ARG, "threads = '2x'");
    EXPECT(kq_backend_open("cpu:threads=99999999999", &b), KQ_ERR_INVALID_ARG, "threads");
    EXPECT(kq_backend_open("cpu:fast=1", &b), KQ_ERR_INVALID_ARG, "unknown option 'fast'");
    EXPECT(kq_backend_open("cpu:", &b), KQ_ERR_INVALID_ARG, "empty option list");
    EXPECT(kq_backend_open("cpu:threads", &b), KQ_ERR_INVALID_ARG, "not key=value");
    EXPECT(kq_backend_open("auto:threads=2", &b), KQ_ERR_INVALID_ARG, "takes no options");
    EXPECT(kq_backend_open("cuda:x", &b), KQ_ERR_INVALID_ARG, "device = 'x'");
    EXPECT(kq_backend_open("cuda:gemm=fast", &b), KQ_ERR_INVALID_ARG, "gemm = 'fast'");
    EXPECT(kq_backend_open("cuda:gemm_min_m=0", &b), KQ_ERR_INVALID_ARG, "gemm_min_m = '0'");
    EXPECT(kq_backend_open("cpu:gemm=off", &b), KQ_ERR_INVALID_ARG, "unknown option 'gemm'");
    /* Issue 17, defect 7: no trailing, leading or doubled separators, no
     * option given twice, and threads within the documented bound. */
    EXPECT(kq_backend_open("cpu:threads=2,", &b), KQ_ERR_INVALID_ARG, "empty option");
    EXPECT(kq_backend_open("cpu:,threads=2", &b), KQ_ERR_INVALID_ARG, "empty option");
    EXPECT(kq_backend_open("cpu:threads=2,,threads=3", &b), KQ_ERR_INVALID_ARG, "empty option");
    EXPECT(kq_backend_open("cpu:threads=2,threads=3", &b), KQ_ERR_INVALID_ARG,
           "'threads' is given twice");
    EXPECT(kq_backend_open("cpu-ref:threads=1,threads=1", &b), KQ_ERR_INVALID_ARG,
           "'threads' is given twice");
    EXPECT(kq_backend_open("cuda:0,device=1", &b), KQ_ERR_INVALID_ARG, "'device' is given twice");
    EXPECT(kq_backend_open("cuda:gemm=off,gemm=mma", &b), KQ_ERR_INVALID_ARG,
           "'gemm' is given twice");
    EXPECT(kq_backend_open("cpu:threads=4096", &b), KQ_ERR_INVALID_ARG, "[1, 256]");
    EXPECT(kq_backend_open("cpu:threads=257", &b), KQ_ERR_INVALID_ARG, "[1, 256]");
    EXPECT(kq_backend_open("cpu-ref:threads=4096", &b), KQ_ERR_INVALID_ARG, "[1, 256]");
    KT_CHECK(b == NULL, "out stays NULL after a refused spec");
    if (KT_OK(kq_backend_open("cpu:threads=3", &b))) kq_backend_close(b);
    EXPECT(kq_backend_sync(NULL), KQ_ERR_INVALID_ARG, "backend is NULL");
    kq_backend_close(NULL); /* a no-op */
    KT_CHECK(kq_backend_name(NULL) == NULL && kq_backend_device(NULL) == NULL, "NULL names");
    if (KT_OK(kq_backend_open("auto", &b))) {
        KT_CHECK(kq_backend_name(b) && kq_backend_device(b)[0], "auto opens a named backend");
        KT_OK(kq_backend_sync(b));
        kq_backend_close(b);
    }
}

static void linear_args(kq_backend *b, kq_backend *other, const kt_weight *w)
{
    kq_linear *l = (kq_linear *)&l;
    int t = w->type;
    int64_t n = w->n_rows, k = w->n_cols;
    EXPECT(kq_linear_load(NULL, t, w->bytes, w->nbytes, n, k, &l), KQ_ERR_INVALID_ARG,
           "backend is NULL");
    KT_CHECK(l == NULL, "out must be NULL after a failure");
    EXPECT(kq_linear_load(b, t, w->bytes, w->nbytes, n, k, NULL), KQ_ERR_INVALID_ARG, "out is NULL");
    EXPECT(kq_linear_load(b, t, NULL, w->nbytes, n, k, &l), KQ_ERR_INVALID_ARG, "bytes is NULL");
    EXPECT(kq_linear_load(b, t, w->bytes, w->nbytes, 0, k, &l), KQ_ERR_INVALID_ARG, "n_rows = 0");
    EXPECT(kq_linear_load(b, t, w->bytes, w->nbytes, -5, k, &l), KQ_ERR_INVALID_ARG,
           "n_rows = -5");
    EXPECT(kq_linear_load(b, t, w->bytes, w->nbytes, n, -256, &l), KQ_ERR_INVALID_ARG,
           "n_cols = -256");
    EXPECT(kq_linear_load(b, t, w->bytes, w->nbytes, n, 100, &l), KQ_ERR_INVALID_ARG,
           "n_cols = 100 must be a positive multiple of the q4_K block (256)");
    EXPECT(kq_linear_load(b, t, w->bytes, w->nbytes - 1, n, k, &l), KQ_ERR_INVALID_ARG,
           "expected");
    EXPECT(kq_linear_load(b, t, w->bytes, w->nbytes, n + 1, k, &l), KQ_ERR_INVALID_ARG,
           "nbytes =");
    EXPECT(kq_linear_load(b, 99, w->bytes, w->nbytes, n, k, &l), KQ_ERR_INVALID_ARG,
           "type = 99");
    EXPECT(kq_linear_load(b, KQ_TYPE_Q8_K, w->bytes, w->nbytes, n, k, &l), KQ_ERR_UNSUPPORTED,
           "q8_K is not supported for weights");
    EXPECT(kq_linear_load(b, KQ_TYPE_IQ2_XXS, w->bytes, w->nbytes, n, k, &l), KQ_ERR_UNSUPPORTED,
           "iq2_xxs");
    EXPECT(kq_linear_load(b, t, w->bytes, w->nbytes, INT64_MAX / 2, k, &l), KQ_ERR_INVALID_ARG,
           "overflow");

    kq_part parts[2] = {{t, w->bytes, w->nbytes, n}, {t, w->bytes, w->nbytes, n}};
    EXPECT(kq_linear_load_fused(b, NULL, 2, k, &l), KQ_ERR_INVALID_ARG, "parts is NULL");
    EXPECT(kq_linear_load_fused(b, parts, 0, k, &l), KQ_ERR_INVALID_ARG, "n_parts = 0");
    EXPECT(kq_linear_load_fused(b, parts, -1, k, &l), KQ_ERR_INVALID_ARG, "n_parts = -1");
    parts[1].nbytes--;
    EXPECT(kq_linear_load_fused(b, parts, 2, k, &l), KQ_ERR_INVALID_ARG, "part 1: nbytes");
    parts[1].nbytes++;
    parts[1].bytes = NULL;
    EXPECT(kq_linear_load_fused(b, parts, 2, k, &l), KQ_ERR_INVALID_ARG, "part 1: bytes is NULL");

    if (!KT_OK(kq_linear_load(b, t, w->bytes, w->nbytes, n, k, &l))) return;
    float *x = calloc((size_t)(4 * k), sizeof *x), *y = calloc((size_t)(4 * n), sizeof *y);
    EXPECT(kq_linear_forward(NULL, l, x, y, 1), KQ_ERR_INVALID_ARG, "backend is NULL");
    EXPECT(kq_linear_forward(b, NULL, x, y, 1), KQ_ERR_INVALID_ARG, "linear is NULL");
    EXPECT(kq_linear_forward(b, l, NULL, y, 1), KQ_ERR_INVALID_ARG, "x is NULL");
    EXPECT(kq_linear_forward(b, l, x, NULL, 1), KQ_ERR_INVALID_ARG, "y is NULL");
    EXPECT(kq_linear_forward(b, l, x, y, -1), KQ_ERR_INVALID_ARG, "m = -1");
    EXPECT(kq_linear_forward(b, l, x, y, INT64_MAX / 4), KQ_ERR_INVALID_ARG, "overflow");
    EXPECT(kq_linear_forward(other, l, x, y, 1), KQ_ERR_INVALID_ARG, "loaded on backend");
    EXPECT(kq_linear_forward(b, l, x, x + 1, 1), KQ_ERR_INVALID_ARG, "y overlaps x");
    KT_OK(kq_linear_forward(b, l, x, y, 0)); /* zero tokens: nothing to do */
    free(x);
    free(y);
    kq_linear_free(l);
    kq_linear_free(NULL);
    KT_CHECK(kq_linear_rows(NULL) == 0 && kq_linear_cols(NULL) == 0 &&
                 kq_linear_n_parts(NULL) == 0 && !kq_linear_is_zero_copy(NULL),
             "NULL linear getters");
}

static void experts_args(kq_backend *b, const kt_weight *w)
{
    /* w holds 4 experts of n/4 rows. */
    int t = w->type;
    int64_t e_n = 4, n = w->n_rows / 4, k = w->n_cols;
    kq_experts *e = (kq_experts *)&e;
    EXPECT(kq_experts_load(NULL, t, w->bytes, w->nbytes, e_n, n, k, &e), KQ_ERR_INVALID_ARG,
           "backend is NULL");
    KT_CHECK(e == NULL, "out must be NULL after a failure");
    EXPECT(kq_experts_load(b, t, w->bytes, w->nbytes, 0, n, k, &e), KQ_ERR_INVALID_ARG,
           "n_experts = 0");
    EXPECT(kq_experts_load(b, t, w->bytes, w->nbytes, e_n, -1, k, &e), KQ_ERR_INVALID_ARG,
           "n_rows = -1");
    EXPECT(kq_experts_load(b, t, w->bytes, w->nbytes, 3, n, k, &e), KQ_ERR_INVALID_ARG,
           "nbytes =");
    EXPECT(kq_experts_load(b, t, w->bytes, w->nbytes, INT64_MAX / 2, n, k, &e),
           KQ_ERR_INVALID_ARG, "overflow");
    EXPECT(kq_experts_load(b, t, w->bytes, w->nbytes, e_n, n, k, NULL), KQ_ERR_INVALID_ARG,
           "out is NULL");
    if (!KT_OK(kq_experts_load(b, t, w->bytes, w->nbytes, e_n, n, k, &e))) return;
    float *x = calloc((size_t)(8 * k), sizeof *x), *y = calloc((size_t)(8 * n), sizeof *y);
    int32_t ids[8] = {0, 1, 2, 3, 3, 2, 1, 0};
    EXPECT(kq_experts_forward(b, NULL, x, k, 0, ids, 2, 2, y), KQ_ERR_INVALID_ARG,
           "experts is NULL");
    EXPECT(kq_experts_forward(NULL, e, x, k, 0, ids, 2, 2, y), KQ_ERR_INVALID_ARG,
           "backend is NULL");
    EXPECT(kq_experts_forward(b, e, NULL, k, 0, ids, 2, 2, y), KQ_ERR_INVALID_ARG, "x is NULL");
    EXPECT(kq_experts_forward(b, e, x, k, 0, NULL, 2, 2, y), KQ_ERR_INVALID_ARG, "ids is NULL");
    EXPECT(kq_experts_forward(b, e, x, k, 0, ids, 2, 2, NULL), KQ_ERR_INVALID_ARG, "y is NULL");
    EXPECT(kq_experts_forward(b, e, x, k, 0, ids, -2, 2, y), KQ_ERR_INVALID_ARG, "m = -2");
    EXPECT(kq_experts_forward(b, e, x, k, 0, ids, 2, 0, y), KQ_ERR_INVALID_ARG, "top_k = 0");
    EXPECT(kq_experts_forward(b, e, x, k, 0, ids, 1, 5, y), KQ_ERR_INVALID_ARG, "top_k = 5");
    EXPECT(kq_experts_forward(b, e, x, -k, 0, ids, 2, 2, y), KQ_ERR_INVALID_ARG,
           "token_stride = -");
    EXPECT(kq_experts_forward(b, e, x, k, -1, ids, 2, 2, y), KQ_ERR_INVALID_ARG,
           "slot_stride = -1");
    EXPECT(kq_experts_forward(b, e, x, INT64_MAX / 2, 0, ids, 4, 2, y), KQ_ERR_INVALID_ARG,
           "overflow");
    EXPECT(kq_experts_forward(b, e, x, k, 0, ids, 2, 2, x), KQ_ERR_INVALID_ARG, "y overlaps x");
    ids[5] = 7;
    EXPECT(kq_experts_forward(b, e, x, k, 0, ids, 4, 2, y), KQ_ERR_RANGE,
           "ids[5] (token 2, slot 1) = 7 is outside [0, 4)");
    free(x);
    free(y);
    kq_experts_free(e);
    kq_experts_free(NULL);
    KT_CHECK(kq_experts_count(NULL) == 0 && !kq_experts_is_zero_copy(NULL), "NULL experts getters");
}

static void gguf_loads(kq_backend *b)
{
    kq_linear *l = NULL;
    kq_experts *e = NULL;
    EXPECT(kq_linear_from_gguf(b, NULL, "x", &l), KQ_ERR_INVALID_ARG, "gguf is NULL");
    EXPECT(kq_experts_from_gguf(b, NULL, "x", &e), KQ_ERR_INVALID_ARG, "gguf is NULL");
    EXPECT(kq_linear_from_gguf_fused(b, NULL, NULL, 2, &l), KQ_ERR_INVALID_ARG, "gguf is NULL");
}

int main(void)
{
    kt_init("test_args");
    const char *pe = getenv("KQ_MISUSE_PRINT");
    g_print = pe && *pe && *pe != '0';
    backend_specs();
    kq_backend *b = NULL, *other = NULL;
    if (KT_OK(kq_backend_open("cpu-ref", &b)) && KT_OK(kq_backend_open("cpu", &other))) {
        kt_weight w;
        if (KT_CHECK(kt_weight_make(&w, KQ_TYPE_Q4_K, 12, 512) == 0, "weight")) {
            linear_args(b, other, &w);
            experts_args(b, &w);
            kt_weight_free(&w);
        }
        gguf_loads(b);
    }
    kq_backend_close(b);
    kq_backend_close(other);
    return kt_finish();
}
