/* Weights loaded from an open GGUF are used in place from its mapping, and
 * the mapping outlives the file handle while any object uses it. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define E 5

static int write_file(const char *path, kt_weight *q, kt_weight *k, kt_weight *v, kt_weight *ex)
{
    kq_gguf_writer *w = NULL;
    if (kq_gguf_writer_new(3, &w) != KQ_OK) return -1;
    int64_t ne_q[2] = {q->n_cols, q->n_rows}, ne_k[2] = {k->n_cols, k->n_rows},
            ne_v[2] = {v->n_cols, v->n_rows}, ne_e[3] = {ex->n_cols, ex->n_rows / E, E};
    int rc = kq_gguf_writer_add_tensor(w, "attn_q.weight", q->type, 2, ne_q, q->bytes, q->nbytes) ||
             kq_gguf_writer_add_tensor(w, "attn_k.weight", k->type, 2, ne_k, k->bytes, k->nbytes) ||
             kq_gguf_writer_add_tensor(w, "attn_v.weight", v->type, 2, ne_v, v->bytes, v->nbytes) ||
             kq_gguf_writer_add_tensor(w, "ffn_up_exps.weight", ex->type, 3, ne_e, ex->bytes,
                                       ex->nbytes) ||
             kq_gguf_writer_save(w, path);
    kq_gguf_writer_free(w);
    return rc ? -1 : 0;
}

/* y of a linear equals the double product with the given weights. */
static void check_linear(kq_backend *b, const kq_linear *l, const kt_weight *const *parts,
                         int n_parts, const char *what)
{
    int64_t m = kt_range(1, 9), n = kq_linear_rows(l), k = kq_linear_cols(l);
    float *x = malloc((size_t)(m * k) * sizeof *x), *y = malloc((size_t)(m * n) * sizeof *y);
    kt_fill_normal(x, m * k, 1.0f);
    kt_poison(y, m * n);
    if (KT_OK(kq_linear_forward(b, l, x, y, m))) {
        int64_t col = 0, bad = 0;
        for (int p = 0; p < n_parts; p++) {
            const kt_weight *w = parts[p];
            double *ref = malloc((size_t)(m * w->n_rows) * sizeof *ref),
                   *abs = malloc((size_t)(m * w->n_rows) * sizeof *abs);
            kt_matmul_ref(w->deq, w->n_rows, k, x, m, ref, abs);
            for (int64_t i = 0; i < m; i++)
                for (int64_t r = 0; r < w->n_rows; r++)
                    bad += !kt_close_f32(y[i * n + col + r], ref[i * w->n_rows + r],
                                         abs[i * w->n_rows + r]);
            col += w->n_rows;
            free(ref);
            free(abs);
        }
        KT_CHECK(bad == 0, "%s: %lld wrong outputs", what, (long long)bad);
    }
    free(x);
    free(y);
}

int main(void)
{
    kt_init("test_zero_copy");
    const char *path = kt_tmp_path("layer.gguf");
    kt_weight q, k, v, ex;
    if (kt_weight_make(&q, KQ_TYPE_Q4_K, 37, 512) || kt_weight_make(&k, KQ_TYPE_Q6_K, 13, 512) ||
        kt_weight_make(&v, KQ_TYPE_Q8_0, 9, 512) || kt_weight_make(&ex, KQ_TYPE_Q5_K, 7 * E, 256)) {
        KT_CHECK(0, "weights: %s", kq_last_error());
        return kt_finish();
    }
    if (!KT_CHECK(write_file(path, &q, &k, &v, &ex) == 0, "write %s: %s", path, kq_last_error()))
        return kt_finish();
    kq_backend *b = NULL;
    kq_gguf *g = NULL;
    if (!KT_OK(kq_backend_open("cpu-ref", &b)) || !KT_OK(kq_gguf_open(path, &g))) return kt_finish();

    kq_linear *lq = NULL, *lqkv = NULL, *copy = NULL;
    kq_experts *le = NULL;
    const char *names[3] = {"attn_q.weight", "attn_k.weight", "attn_v.weight"};
    KT_OK(kq_linear_from_gguf(b, g, "attn_q.weight", &lq));
    KT_OK(kq_linear_from_gguf_fused(b, g, names, 3, &lqkv));
    KT_OK(kq_experts_from_gguf(b, g, "ffn_up_exps.weight", &le));
    KT_CHECK(lq && kq_linear_is_zero_copy(lq), "a tensor of an open GGUF is used in place");
    KT_CHECK(lqkv && kq_linear_is_zero_copy(lqkv) && kq_linear_n_parts(lqkv) == 3 &&
                 kq_linear_rows(lqkv) == 37 + 13 + 9,
             "fused q/k/v from the file, in place");
    KT_CHECK(le && kq_experts_is_zero_copy(le) && kq_experts_count(le) == E &&
                 kq_experts_rows(le) == 7 && kq_experts_cols(le) == 256,
             "experts from the file, in place");

    /* Bytes that merely equal the file's are copied. */
    kq_tensor_info ti;
    if (KT_OK(kq_gguf_find_tensor(g, "attn_q.weight", &ti))) {
        void *dup = malloc(ti.nbytes);
        memcpy(dup, ti.data, ti.nbytes);
        KT_OK(kq_linear_load(b, ti.type, dup, ti.nbytes, ti.ne[1], ti.ne[0], &copy));
        KT_CHECK(copy && !kq_linear_is_zero_copy(copy), "bytes outside a mapping are copied");
        free(dup);
    }
    /* Wrong uses of the file's tensors. */
    kq_linear *bad = NULL;
    kq_status st = kq_linear_from_gguf(b, g, "ffn_up_exps.weight", &bad);
    KT_CHECK(st == KQ_ERR_INVALID_ARG && strstr(kq_last_error(), "ffn_up_exps.weight"),
             "3-D tensor as a linear: %s", kq_last_error());
    st = kq_linear_from_gguf(b, g, "nope.weight", &bad);
    KT_CHECK(st == KQ_ERR_NOT_FOUND && strstr(kq_last_error(), "nope.weight"),
             "missing tensor: %s", kq_last_error());
    kq_experts *bad_e = NULL;
    st = kq_experts_from_gguf(b, g, "attn_q.weight", &bad_e);
    KT_CHECK(st == KQ_ERR_INVALID_ARG && strstr(kq_last_error(), "attn_q.weight"),
             "2-D tensor as experts: %s", kq_last_error());

    /* The file handle goes first; the objects keep the mapping alive. The
     * path is unlinked too, so only the mapping can still hold the bytes. */
    kq_gguf_close(g);
    unlink(path);
    if (lq) check_linear(b, lq, (const kt_weight *[]){&q}, 1, "attn_q after close");
    if (lqkv) check_linear(b, lqkv, (const kt_weight *[]){&q, &k, &v}, 3, "qkv after close");
    if (copy) check_linear(b, copy, (const kt_weight *[]){&q}, 1, "copy");
    if (le) {
        float x[256], y[2 * 7];
        int32_t ids[2] = {4, 1};
        kt_fill_normal(x, 256, 1.0f);
        kt_poison(y, 14);
        if (KT_OK(kq_experts_forward(b, le, x, 256, 0, ids, 1, 2, y))) {
            double ref[7], abs[7];
            for (int s = 0; s < 2; s++) {
                kt_matmul_ref(ex.deq + (int64_t)ids[s] * 7 * 256, 7, 256, x, 1, ref, abs);
                for (int r = 0; r < 7; r++)
                    KT_CHECK(kt_close_f32(y[s * 7 + r], ref[r], abs[r]), "expert %d row %d",
                             ids[s], r);
            }
        }
    }
    /* The backend handle may go before its objects too. */
    kq_backend_close(b);
    kq_linear_free(lq);
    kq_linear_free(lqkv);
    kq_linear_free(copy);
    kq_experts_free(le);
    kt_weight_free(&q);
    kt_weight_free(&k);
    kt_weight_free(&v);
    kt_weight_free(&ex);
    return kt_finish();
}
