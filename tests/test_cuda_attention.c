/* The model layer's device attention (src/model/attention_cuda.cu, both
 * kernels: the shared-memory tile kernel of prompts, the split kernel of
 * decode steps, and the warp kernel of other head sizes and of calls
 * without scratch) against a double-precision softmax(q k^T * scale) v over
 * each query's keys, on random queries and a random KV cache.
 *
 * The whole cache is random, positions past a query's and before its window
 * included, so a key the kernel should not see shows up in the output. The
 * cases cover head sizes 64/128/256 (tile) and 96/512 (warp), query groups
 * of 1, 4, 7 and 32 heads on a KV head, a prompt continuing a cached prefix,
 * a sliding window, two sequences interleaved in one batch, and a later
 * layer of the cache.
 *
 * Tolerance. A score is a float dot product of hd terms: off by at most
 * delta = (hd + 2) u scale max_k sum_d |q_d k_d| (u = 2^-24; the rounding
 * of the scale included). The weights exp(s_k - max) / sum then carry a
 * relative error of at most 2 delta (the shift cancels in the ratio) plus
 * the float exps and the sum over n keys ((n + 4) u), and the output, a
 * convex combination of value rows, adds its own float sum ((n + 2) u of
 * sum p |v|). So |out - exact| <= max|v| (2 delta + (2 n + 8) u), with a
 * factor 2 for the slack of expf; a key wrongly in or out moves an output by
 * about its weight times |v|, orders of magnitude more for these sizes. */
#include "cuda_testutil.h"

#ifdef KQ_HAVE_CUDA
#include "model/ops_cuda.h"

typedef struct acase {
    const char *name;
    int hd, n_head, n_head_kv, n_layer, layer;
    int64_t n;    /* tokens in the batch */
    int64_t prefix; /* cached positions before the batch, per sequence */
    int n_seq;    /* 1, or 2 interleaved */
    int64_t swa;  /* window (0: none) */
} acase;

/* Positions of the batch: sequence i % n_seq, continuing that sequence. */
static void batch_positions(const acase *c, int32_t *pos, int32_t *seq)
{
    int64_t next[2] = {c->prefix, c->prefix};
    for (int64_t i = 0; i < c->n; i++) {
        int s = (int)(i % c->n_seq);
        seq[i] = s;
        pos[i] = (int32_t)next[s]++;
    }
}

/* split: pass the split kernel's scratch (decode calls then take it; with
 * none they take the warp kernel). */
static void check_case(kq_backend *b, const acase *c, int split)
{
    char name[160];
    snprintf(name, sizeof name, "%s%s", c->name, split ? " (split)" : "");
    const int hd = c->hd, G = c->n_head / c->n_head_kv;
    const int64_t q_dim = (int64_t)c->n_head * hd, kv_dim = (int64_t)c->n_head_kv * hd;
    const int64_t rs = q_dim + 2 * kv_dim;
    const int64_t n_ctx = c->prefix + c->n + 3; /* a few never-read slots past the end */
    const int64_t cache = 2 * c->n_layer * n_ctx * kv_dim;
    float *qkv = malloc((size_t)(c->n * rs) * sizeof(float));
    float *kc = malloc((size_t)cache * sizeof(float)), *vc = malloc((size_t)cache * sizeof(float));
    int32_t *pos = malloc((size_t)c->n * 2 * sizeof(int32_t)), *seq = pos + c->n;
    float *d_qkv = NULL, *d_kc = NULL, *d_vc = NULL, *d_out = NULL, *got = NULL;
    void *d_pos = NULL;
    kq_cu_att_scratch sc = {NULL, NULL, 0};
    if (!KT_CHECK(qkv && kc && vc && pos, "%s: host memory", name)) goto out;
    kt_fill_normal(qkv, c->n * rs, 1.0f);
    kt_fill_normal(kc, cache, 1.0f);
    kt_fill_normal(vc, cache, 1.0f);
    batch_positions(c, pos, seq);
    d_qkv = kc_upload(b, qkv, c->n * rs);
    d_kc = kc_upload(b, kc, cache);
    d_vc = kc_upload(b, vc, cache);
    d_out = kc_poisoned(b, c->n * q_dim);
    if (!KT_CHECK(d_qkv && d_kc && d_vc && d_out, "%s: device buffers", name) ||
        !KT_OK(kq_alloc(b, (size_t)c->n * 2 * sizeof(int32_t), &d_pos)) ||
        !KT_OK(kq_copy_to_device(b, d_pos, pos, (size_t)c->n * 2 * sizeof(int32_t))))
        goto out;
    kq_cu_arch a = {.n_head = c->n_head, .n_head_kv = c->n_head_kv, .head_dim = hd, .n_rot = hd,
                    .n_layer = c->n_layer, .n_ctx = n_ctx, .n_swa = c->swa,
                    .attn_scale = (float)(1.0 / sqrt((double)hd))};
    const int32_t *dp = d_pos, *ds = (const int32_t *)d_pos + c->n;
    sc.tokens = c->n;
    const int64_t n_tickets = c->n * c->n_head;
    if (split) {
        int32_t *zero = calloc((size_t)n_tickets, sizeof(int32_t));
        sc.part = kc_poisoned(b, kq__cu_attention_part_floats(&a, c->n));
        if (!KT_CHECK(zero && sc.part, "%s: scratch", name) ||
            !KT_OK(kq_alloc(b, (size_t)n_tickets * sizeof(int32_t), (void **)&sc.ticket)) ||
            !KT_OK(kq_copy_to_device(b, sc.ticket, zero, (size_t)n_tickets * sizeof(int32_t)))) {
            free(zero);
            goto out;
        }
        free(zero);
    }
    /* twice with the split kernel: the second call runs on the tickets the
     * first left behind, and must find them reset */
    for (int call = 0; call < (split ? 2 : 1); call++) {
        int err = kq__cu_attention(kq_backend_stream(b), &a, c->layer, c->swa > 0, d_qkv, dp, ds,
                                   c->n, d_kc, d_vc, split ? &sc : NULL, d_out);
        if (!KT_CHECK(err == 0, "%s: launch: %s", name, kq__cu_error_string(err))) goto out;
    }
    got = kc_download(b, d_out, c->n * q_dim);
    if (!got) goto out;
    if (split) {
        int32_t *tk = malloc((size_t)n_tickets * sizeof(int32_t));
        int64_t nz = 0;
        if (KT_CHECK(tk != NULL, "%s: host memory", name) &&
            KT_OK(kq_copy_to_host(b, tk, sc.ticket, (size_t)n_tickets * sizeof(int32_t))))
            for (int64_t t = 0; t < n_tickets; t++) nz += tk[t] != 0;
        KT_CHECK(nz == 0, "%s: %lld tickets left nonzero after the call", name, (long long)nz);
        free(tk);
    }

    /* the split kernel's merge: up to 16 partial sums, each rescaled by an
     * expf, added, and divided by their rescaled total */
    const double merge = split ? 2 * 16 + 4 : 0;
    int64_t bad = 0, checked = 0;
    double worst = 0;
    double *w = malloc((size_t)n_ctx * sizeof(double));
    if (!KT_CHECK(w != NULL, "%s: host memory", name)) goto out;
    for (int64_t i = 0; i < c->n; i++)
        for (int h = 0; h < c->n_head; h++) {
            const int g = h / G;
            const int64_t p = pos[i], lo = c->swa > 0 && p - c->swa + 1 > 0 ? p - c->swa + 1 : 0;
            const int64_t base = ((int64_t)seq[i] * c->n_layer + c->layer) * n_ctx * kv_dim + (int64_t)g * hd;
            const float *q = qkv + i * rs + (int64_t)h * hd;
            double mx = -INFINITY, sum = 0, abs_max = 0, vmax = 0;
            for (int64_t j = lo; j <= p; j++) {
                const float *k = kc + base + j * kv_dim;
                double s = 0, as = 0;
                for (int d = 0; d < hd; d++) {
                    s += (double)q[d] * k[d];
                    as += fabs((double)q[d] * k[d]);
                }
                w[j] = s * a.attn_scale;
                if (w[j] > mx) mx = w[j];
                if (as > abs_max) abs_max = as;
                for (int d = 0; d < hd; d++) vmax = fmax(vmax, fabs(vc[base + j * kv_dim + d]));
            }
            for (int64_t j = lo; j <= p; j++) sum += w[j] = exp(w[j] - mx);
            const double nk = (double)(p - lo + 1), u = 0x1p-24;
            const double delta = (hd + 2) * u * a.attn_scale * abs_max;
            const double tol = 2 * vmax * (2 * delta + (2 * nk + 8 + merge) * u);
            for (int d = 0; d < hd; d++) {
                double want = 0;
                for (int64_t j = lo; j <= p; j++) want += w[j] * vc[base + j * kv_dim + d];
                want /= sum;
                const float gv = got[i * q_dim + (int64_t)h * hd + d];
                const double e = fabs((double)gv - want);
                checked++;
                if (!(e <= tol)) {
                    if (bad++ == 0)
                        KT_CHECK(0, "%s: token %lld (seq %d, pos %lld) head %d dim %d: %.9g, want %.9g, tol %.3g",
                                 name, (long long)i, seq[i], (long long)p, h, d, gv, want, tol);
                } else if (tol > 0 && e / tol > worst) {
                    worst = e / tol;
                }
            }
        }
    free(w);
    KT_CHECK(bad == 0 && checked == c->n * q_dim, "%s: %lld of %lld outputs off (worst passing %.2f of tol)",
             name, (long long)bad, (long long)checked, worst);
out:
    kq_free(b, sc.part);
    kq_free(b, sc.ticket);
    free(got);
    kq_free(b, d_qkv);
    kq_free(b, d_kc);
    kq_free(b, d_vc);
    kq_free(b, d_out);
    kq_free(b, d_pos);
    free(qkv);
    free(kc);
    free(vc);
    free(pos);
}

int main(void)
{
    kt_init("test_cuda_attention");
    kq_backend *b = NULL;
    int rc = kc_open("cuda", &b);
    if (rc) return rc;
    const acase cases[] = {
        /* the tile kernel (16 tokens or more, head_dim 64/128/256) */
        {"gemma3 prompt, hd 256, 4 on 1", 256, 4, 1, 1, 0, 77, 0, 1, 0},
        {"gemma3 local layer, window 19", 256, 4, 1, 3, 2, 70, 0, 1, 19},
        {"llama3 prompt after a prefix, hd 128, 4 on 1 (x2)", 128, 8, 2, 2, 1, 45, 37, 1, 0},
        {"qwen2-like, hd 64, 7 on 1, two sequences", 64, 14, 2, 1, 0, 50, 5, 2, 0},
        {"mha, hd 64, 1 on 1, window 8, two sequences", 64, 3, 3, 2, 0, 33, 30, 2, 8},
        {"32 heads on 1, hd 128", 128, 32, 1, 1, 0, 16, 0, 1, 0},
        /* decode steps: the split kernel with scratch, the warp kernel
         * without; and the warp kernel's other head sizes */
        {"decode batch of 8, hd 256, two sequences", 256, 4, 1, 2, 1, 8, 40, 2, 0},
        {"decode, hd 128, window 5", 128, 8, 2, 1, 0, 1, 63, 1, 5},
        {"decode, first token, hd 256", 256, 4, 1, 1, 0, 1, 0, 1, 0},
        {"decode, hd 64, 7 on 1, 700 cached", 64, 14, 2, 1, 0, 1, 700, 1, 0},
        {"decode, hd 128, 32 on 1, 2 steps, 1500 cached", 128, 32, 1, 2, 1, 2, 1500, 1, 0},
        {"decode x15, hd 256, window 100, 300 cached", 256, 4, 1, 1, 0, 15, 300, 2, 100},
        {"decode x3, hd 128, mha, 33 cached", 128, 4, 4, 1, 0, 3, 33, 1, 0},
        {"prompt, hd 96 (warp)", 96, 4, 2, 1, 0, 20, 0, 1, 0},
        {"prompt, hd 512 (warp)", 512, 2, 1, 1, 0, 17, 3, 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case(b, &cases[i], 0);
        if (cases[i].n <= KQ_CU_SPLIT_MAX_TOKENS) check_case(b, &cases[i], 1);
    }
    kq_backend_close(b);
    return kt_finish();
}
#else
int main(void)
{
    printf("SKIP: built without CUDA\n");
    return KT_SKIP;
}
#endif
