/* The model layer (include/kquant_model.h) on small random-weight GGUF
 * models, one per architecture, written with kquant's GGUF writer: the logits
 * of a prompt prefilled in one batch, then of tokens decoded one at a time
 * (and of two sequences interleaved in one batch), against a naive reference
 * forward pass in double over the exactly dequantized weights, written here
 * from the architectures' definitions and sharing no code with src/model/.
 * Also: metadata and tensor shapes that disagree are refused with a message,
 * and misuse of the forward call changes nothing.
 *
 * Bounds on |got - ref| / rms(ref logits), for the worst logit and the rms
 * over all of them:
 *  - cpu-ref multiplies in double; the rest of the model runs in float, so the
 *    error is float rounding through the ops: each dot product of K <= 512
 *    terms is off by at most ~K u |w||x| (u = 2^-24, ~3e-5 relative) in the
 *    worst case, ~sqrt(K) u typically, and RMSNorm keeps it relative from one
 *    layer to the next. Over <= 3 layers of ~10 such steps the worst case stays
 *    below 1e-3; tol = 2e-3. A wrong rotation, norm, scale, window or routing
 *    changes logits by O(1) of their rms.
 *  - cpu quantizes every activation row to int8 blocks (max-scaled: an
 *    element is off by up to 1/254 of its block's maximum, ~3 sigma, so about
 *    sigma/150 rms). A dot product of Gaussian rows then errs by ~0.7% of its
 *    own size per linear; the ~11 linears a token passes through (5 per
 *    layer, 2 layers, the head) add independently into the residual stream,
 *    ~2.3% rms. Bound: rms 0.06 (2.5x that), and the worst of ~4000 logits,
 *    a 4-sigma tail, 0.3. MoE adds discrete routing: a token whose top-k
 *    experts sit within that error of each other may pick another expert, so
 *    MoE models are checked on cpu-ref only. The greedy token is checked
 *    wherever the reference's top two differ by more than twice the worst
 *    bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kquant_model.h"
#include "testutil.h"

typedef struct spec {
    const char *arch;
    int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab;
    int64_t n_expert, n_used;
    int wtype, etype; /* weights, embedding */
    int tied, bias, qk_norm, post_norms, gelu, neox;
    int64_t n_swa, swa_pattern;
    double rope_base, rope_base_swa, embd_scale, softcap;
} spec;

typedef struct ref_layer {
    float *attn_norm, *ffn_norm, *post_attn, *post_ffn, *q_norm, *k_norm;
    float *bq, *bk, *bv;
    kt_weight wq, wk, wv, wo, gate, up, down, router, gexp, uexp, dexp;
} ref_layer;

typedef struct ref_model {
    spec s;
    ref_layer *L;
    kt_weight embd, out;
    float *out_norm;
} ref_model;

static float *rand_vec(int64_t n, double base, double spread)
{
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(base + spread * kt_normal());
    return v;
}

static void add_f32(kq_gguf_writer *w, const char *name, const float *v, int64_t n)
{
    int64_t ne[1] = {n};
    KT_OK(kq_gguf_writer_add_tensor(w, name, KQ_TYPE_F32, 1, ne, v, (size_t)n * sizeof(float)));
}

static void add_w(kq_gguf_writer *w, const char *name, const kt_weight *t, int64_t experts)
{
    int64_t ne[3] = {t->n_cols, experts ? t->n_rows / experts : t->n_rows, experts};
    KT_OK(kq_gguf_writer_add_tensor(w, name, t->type, experts ? 3 : 2, ne, t->bytes, t->nbytes));
}

/* One key written with another value, for the malformed-file checks. */
static const char *bad_key;
static int64_t bad_val;

static void set_u32(kq_gguf_writer *w, const char *arch, const char *key, int64_t v)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    uint32_t u = (uint32_t)(bad_key && !strcmp(key, bad_key) ? bad_val : v);
    KT_OK(kq_gguf_writer_set(w, full, KQ_GGUF_U32, &u));
}

static void set_f32(kq_gguf_writer *w, const char *arch, const char *key, double v)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    float f = (float)v;
    KT_OK(kq_gguf_writer_set(w, full, KQ_GGUF_F32, &f));
}

/* Random weights for s, and the file; skip_tensor names a tensor left out
 * (NULL: none), for the checks of malformed files. */
static int build(const spec *s, ref_model *r, const char *path, const char *skip_tensor)
{
    memset(r, 0, sizeof *r);
    r->s = *s;
    kq_gguf_writer *w;
    if (kq_gguf_writer_new(3, &w) != KQ_OK) return -1;
    const char *a = s->arch;
    KT_OK(kq_gguf_writer_set_string(w, "general.architecture", a, strlen(a)));
    set_u32(w, a, "embedding_length", s->n_embd);
    set_u32(w, a, "block_count", s->n_layer);
    set_u32(w, a, "attention.head_count", s->n_head);
    set_u32(w, a, "attention.head_count_kv", s->n_head_kv);
    set_u32(w, a, "attention.key_length", s->head_dim);
    set_u32(w, a, "attention.value_length", s->head_dim);
    set_u32(w, a, "context_length", 256);
    set_u32(w, a, "rope.dimension_count", s->head_dim);
    set_u32(w, a, "feed_forward_length", s->n_ff);
    set_f32(w, a, "attention.layer_norm_rms_epsilon", 1e-6);
    set_f32(w, a, "rope.freq_base", s->rope_base);
    if (s->n_expert) {
        set_u32(w, a, "expert_count", s->n_expert);
        set_u32(w, a, "expert_used_count", s->n_used);
        set_u32(w, a, "expert_feed_forward_length", s->n_ff);
    }
    if (s->n_swa) {
        set_u32(w, a, "attention.sliding_window", s->n_swa);
        set_u32(w, a, "attention.sliding_window_pattern", s->swa_pattern);
        set_f32(w, a, "rope.freq_base_swa", s->rope_base_swa);
    }
    if (s->softcap) set_f32(w, a, "final_logit_softcapping", s->softcap);

    const int64_t d = s->n_embd, qd = s->n_head * s->head_dim, kvd = s->n_head_kv * s->head_dim;
    KT_CHECK(kt_weight_make(&r->embd, s->etype, s->n_vocab, d) == 0, "embedding");
    if (!skip_tensor || strcmp(skip_tensor, "token_embd.weight")) add_w(w, "token_embd.weight", &r->embd, 0);
    r->out_norm = rand_vec(d, 1.0, 0.1);
    if (!skip_tensor || strcmp(skip_tensor, "output_norm.weight"))
        add_f32(w, "output_norm.weight", r->out_norm, d);
    if (!s->tied) {
        KT_CHECK(kt_weight_make(&r->out, s->wtype, s->n_vocab, d) == 0, "output");
        add_w(w, "output.weight", &r->out, 0);
    }
    r->L = calloc((size_t)s->n_layer, sizeof *r->L);
    char name[96];
#define ADD(role, what) \
    snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, role); \
    if (!skip_tensor || strcmp(skip_tensor, name)) what
    for (int64_t l = 0; l < s->n_layer; l++) {
        ref_layer *L = &r->L[l];
        L->attn_norm = rand_vec(d, 1.0, 0.1);
        L->ffn_norm = rand_vec(d, 1.0, 0.1);
        ADD("attn_norm.weight", add_f32(w, name, L->attn_norm, d));
        ADD("ffn_norm.weight", add_f32(w, name, L->ffn_norm, d));
        if (s->post_norms) {
            L->post_attn = rand_vec(d, 1.0, 0.1);
            L->post_ffn = rand_vec(d, 1.0, 0.1);
            ADD("post_attention_norm.weight", add_f32(w, name, L->post_attn, d));
            ADD("post_ffw_norm.weight", add_f32(w, name, L->post_ffn, d));
        }
        if (s->qk_norm) {
            L->q_norm = rand_vec(s->head_dim, 1.0, 0.1);
            L->k_norm = rand_vec(s->head_dim, 1.0, 0.1);
            ADD("attn_q_norm.weight", add_f32(w, name, L->q_norm, s->head_dim));
            ADD("attn_k_norm.weight", add_f32(w, name, L->k_norm, s->head_dim));
        }
        KT_CHECK(kt_weight_make(&L->wq, s->wtype, qd, d) == 0, "wq");
        /* k in another type than q: the fused q/k/v has mixed parts */
        KT_CHECK(kt_weight_make(&L->wk, KQ_TYPE_Q8_0, kvd, d) == 0, "wk");
        KT_CHECK(kt_weight_make(&L->wv, s->wtype, kvd, d) == 0, "wv");
        KT_CHECK(kt_weight_make(&L->wo, KQ_TYPE_Q8_0, d, qd) == 0, "wo");
        ADD("attn_q.weight", add_w(w, name, &L->wq, 0));
        ADD("attn_k.weight", add_w(w, name, &L->wk, 0));
        ADD("attn_v.weight", add_w(w, name, &L->wv, 0));
        ADD("attn_output.weight", add_w(w, name, &L->wo, 0));
        if (s->bias) {
            L->bq = rand_vec(qd, 0, 0.1);
            L->bk = rand_vec(kvd, 0, 0.1);
            L->bv = rand_vec(kvd, 0, 0.1);
            ADD("attn_q.bias", add_f32(w, name, L->bq, qd));
            ADD("attn_k.bias", add_f32(w, name, L->bk, kvd));
            ADD("attn_v.bias", add_f32(w, name, L->bv, kvd));
        }
        if (s->n_expert) {
            KT_CHECK(kt_weight_make(&L->router, KQ_TYPE_F32, s->n_expert, d) == 0, "router");
            KT_CHECK(kt_weight_make(&L->gexp, s->wtype, s->n_expert * s->n_ff, d) == 0, "gexp");
            KT_CHECK(kt_weight_make(&L->uexp, s->wtype, s->n_expert * s->n_ff, d) == 0, "uexp");
            KT_CHECK(kt_weight_make(&L->dexp, KQ_TYPE_Q8_0, s->n_expert * d, s->n_ff) == 0, "dexp");
            /* router rows large enough that the choice is not a coin toss */
            for (int64_t i = 0; i < s->n_expert * d; i++) L->router.deq[i] *= 20;
            KT_OK(kq_quantize(KQ_TYPE_F32, L->router.deq, s->n_expert, d, L->router.bytes,
                              L->router.nbytes));
            ADD("ffn_gate_inp.weight", add_w(w, name, &L->router, 0));
            ADD("ffn_gate_exps.weight", add_w(w, name, &L->gexp, s->n_expert));
            ADD("ffn_up_exps.weight", add_w(w, name, &L->uexp, s->n_expert));
            ADD("ffn_down_exps.weight", add_w(w, name, &L->dexp, s->n_expert));
        } else {
            KT_CHECK(kt_weight_make(&L->gate, s->wtype, s->n_ff, d) == 0, "gate");
            KT_CHECK(kt_weight_make(&L->up, KQ_TYPE_Q8_0, s->n_ff, d) == 0, "up");
            KT_CHECK(kt_weight_make(&L->down, s->wtype == KQ_TYPE_Q4_K ? KQ_TYPE_Q6_K : s->wtype,
                                    d, s->n_ff) == 0, "down");
            ADD("ffn_gate.weight", add_w(w, name, &L->gate, 0));
            ADD("ffn_up.weight", add_w(w, name, &L->up, 0));
            ADD("ffn_down.weight", add_w(w, name, &L->down, 0));
        }
    }
#undef ADD
    kq_status st = kq_gguf_writer_save(w, path);
    kq_gguf_writer_free(w);
    return st == KQ_OK ? 0 : -1;
}

static void free_ref(ref_model *r)
{
    kt_weight_free(&r->embd);
    kt_weight_free(&r->out);
    free(r->out_norm);
    for (int64_t l = 0; r->L && l < r->s.n_layer; l++) {
        ref_layer *L = &r->L[l];
        float *v[] = {L->attn_norm, L->ffn_norm, L->post_attn, L->post_ffn, L->q_norm, L->k_norm,
                      L->bq, L->bk, L->bv};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) free(v[i]);
        kt_weight *t[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down,
                          &L->router, &L->gexp, &L->uexp, &L->dexp};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) kt_weight_free(t[i]);
    }
    free(r->L);
}

/* ---------------------------------------------------------------- reference */

static void r_matvec(const kt_weight *w, int64_t row0, int64_t rows, const double *x, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = w->deq + (row0 + r) * w->n_cols;
        double s = 0;
        for (int64_t k = 0; k < w->n_cols; k++) s += (double)wr[k] * x[k];
        y[r] = s;
    }
}

static void r_rms(double *x, const float *w, int64_t n, double *y)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double sc = 1.0 / sqrt(ss / (double)n + 1e-6);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * sc * w[i];
}

static void r_rope(const spec *s, double *v, int64_t p, double base)
{
    int64_t hd = s->head_dim, half = hd / 2;
    for (int64_t i = 0; i < half; i++) {
        double th = (double)p * pow(base, -2.0 * (double)i / (double)hd);
        int64_t a = s->neox ? i : 2 * i, b = s->neox ? i + half : 2 * i + 1;
        double x0 = v[a], x1 = v[b];
        v[a] = x0 * cos(th) - x1 * sin(th);
        v[b] = x0 * sin(th) + x1 * cos(th);
    }
}

static int r_is_swa(const spec *s, int64_t l)
{
    return s->n_swa > 0 && l % s->swa_pattern < s->swa_pattern - 1;
}

/* logits[t * V + v] for every position t of tokens[0..T). */
static void reference(const ref_model *r, const int32_t *tok, int64_t T, double *logits)
{
    const spec *s = &r->s;
    const int64_t d = s->n_embd, hd = s->head_dim, qd = s->n_head * hd, kvd = s->n_head_kv * hd;
    double *x = calloc((size_t)(T * d), sizeof(double));
    double *h = malloc((size_t)d * sizeof(double)), *y = malloc((size_t)d * sizeof(double));
    double *q = malloc((size_t)(T * qd) * sizeof(double));
    double *K = malloc((size_t)(T * kvd) * sizeof(double)), *Vv = malloc((size_t)(T * kvd) * sizeof(double));
    double *att = malloc((size_t)qd * sizeof(double)), *sc = malloc((size_t)T * sizeof(double));
    int64_t nf = s->n_ff;
    double *g = malloc((size_t)nf * sizeof(double)), *u = malloc((size_t)nf * sizeof(double));
    double *e = malloc((size_t)d * sizeof(double));
    double *rl = malloc((size_t)(s->n_expert + 1) * sizeof(double));
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < d; i++)
            x[t * d + i] = r->embd.deq[(int64_t)tok[t] * d + i] * s->embd_scale;
    for (int64_t l = 0; l < s->n_layer; l++) {
        const ref_layer *L = &r->L[l];
        int swa = r_is_swa(s, l);
        double base = swa ? s->rope_base_swa : s->rope_base;
        for (int64_t t = 0; t < T; t++) {
            r_rms(x + t * d, L->attn_norm, d, h);
            r_matvec(&L->wq, 0, qd, h, q + t * qd);
            r_matvec(&L->wk, 0, kvd, h, K + t * kvd);
            r_matvec(&L->wv, 0, kvd, h, Vv + t * kvd);
            for (int64_t i = 0; s->bias && i < qd; i++) q[t * qd + i] += L->bq[i];
            for (int64_t i = 0; s->bias && i < kvd; i++) {
                K[t * kvd + i] += L->bk[i];
                Vv[t * kvd + i] += L->bv[i];
            }
            for (int64_t hh = 0; hh < s->n_head; hh++) {
                if (s->qk_norm) r_rms(q + t * qd + hh * hd, L->q_norm, hd, q + t * qd + hh * hd);
                r_rope(s, q + t * qd + hh * hd, t, base);
            }
            for (int64_t hh = 0; hh < s->n_head_kv; hh++) {
                if (s->qk_norm) r_rms(K + t * kvd + hh * hd, L->k_norm, hd, K + t * kvd + hh * hd);
                r_rope(s, K + t * kvd + hh * hd, t, base);
            }
        }
        for (int64_t t = 0; t < T; t++) {
            for (int64_t hh = 0; hh < s->n_head; hh++) {
                int64_t kv = hh / (s->n_head / s->n_head_kv);
                int64_t lo = swa && t - s->n_swa + 1 > 0 ? t - s->n_swa + 1 : 0;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = lo; j <= t; j++) {
                    double dd = 0;
                    for (int64_t i = 0; i < hd; i++) dd += q[t * qd + hh * hd + i] * K[j * kvd + kv * hd + i];
                    sc[j] = dd / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int64_t j = lo; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int64_t i = 0; i < hd; i++) {
                    double a = 0;
                    for (int64_t j = lo; j <= t; j++) a += sc[j] * Vv[j * kvd + kv * hd + i];
                    att[hh * hd + i] = a / sum;
                }
            }
            r_matvec(&L->wo, 0, d, att, y);
            if (s->post_norms) r_rms(y, L->post_attn, d, y);
            for (int64_t i = 0; i < d; i++) x[t * d + i] += y[i];
        }
        for (int64_t t = 0; t < T; t++) {
            r_rms(x + t * d, L->ffn_norm, d, h);
            if (s->n_expert) {
                r_matvec(&L->router, 0, s->n_expert, h, rl);
                double mx = rl[0], sum = 0;
                for (int64_t i = 1; i < s->n_expert; i++) mx = rl[i] > mx ? rl[i] : mx;
                for (int64_t i = 0; i < s->n_expert; i++) sum += exp(rl[i] - mx);
                int used[64] = {0};
                double wsum = 0, wk[64];
                int64_t ids[64];
                for (int64_t k = 0; k < s->n_used; k++) {
                    int64_t best = -1;
                    for (int64_t i = 0; i < s->n_expert; i++)
                        if (!used[i] && (best < 0 || rl[i] > rl[best])) best = i;
                    used[best] = 1;
                    ids[k] = best;
                    wk[k] = exp(rl[best] - mx) / sum;
                    wsum += wk[k];
                }
                for (int64_t i = 0; i < d; i++) y[i] = 0;
                for (int64_t k = 0; k < s->n_used; k++) {
                    r_matvec(&L->gexp, ids[k] * nf, nf, h, g);
                    r_matvec(&L->uexp, ids[k] * nf, nf, h, u);
                    for (int64_t i = 0; i < nf; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
                    r_matvec(&L->dexp, ids[k] * d, d, g, e);
                    for (int64_t i = 0; i < d; i++) y[i] += wk[k] / wsum * e[i];
                }
            } else {
                r_matvec(&L->gate, 0, nf, h, g);
                r_matvec(&L->up, 0, nf, h, u);
                for (int64_t i = 0; i < nf; i++) {
                    double a = g[i];
                    double act = s->gelu ? 0.5 * a * (1 + tanh(sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)))
                                         : a / (1 + exp(-a));
                    g[i] = act * u[i];
                }
                r_matvec(&L->down, 0, d, g, y);
            }
            if (s->post_norms) r_rms(y, L->post_ffn, d, y);
            for (int64_t i = 0; i < d; i++) x[t * d + i] += y[i];
        }
    }
    const kt_weight *out = s->tied ? &r->embd : &r->out;
    for (int64_t t = 0; t < T; t++) {
        r_rms(x + t * d, r->out_norm, d, h);
        r_matvec(out, 0, s->n_vocab, h, logits + t * s->n_vocab);
        if (s->softcap)
            for (int64_t v = 0; v < s->n_vocab; v++)
                logits[t * s->n_vocab + v] = s->softcap * tanh(logits[t * s->n_vocab + v] / s->softcap);
    }
    free(x), free(h), free(y), free(q), free(K), free(Vv), free(att), free(sc);
    free(g), free(u), free(e), free(rl);
}

/* ---------------------------------------------------------------- checks */

static double rms_of(const double *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i] * v[i];
    return sqrt(s / (double)n);
}

/* |got - ref| over rms(ref): the worst element, and the rms of all. */
typedef struct err2 {
    double max, rms;
} err2;

static err2 rel_err(const float *got, const double *ref, int64_t n)
{
    err2 e = {0, 0};
    double r = rms_of(ref, n), ss = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]) / r;
        if (!(d <= e.max)) e.max = isnan(d) ? INFINITY : d;
        ss += d * d;
    }
    e.rms = isnan(ss) ? INFINITY : sqrt(ss / (double)n);
    if (getenv("KQ_TEST_VERBOSE")) printf("  max %.3g rms %.3g\n", e.max, e.rms);
    return e;
}

/* Within the bounds of a backend (see the top of the file). */
typedef struct bound {
    double max, rms;
} bound;

static int within(err2 e, bound b)
{
    return e.max <= b.max && e.rms <= b.rms;
}

static int64_t argmax_d(const double *v, int64_t n, double *gap)
{
    int64_t b = 0, b2 = -1;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[b]) b2 = b, b = i;
        else if (b2 < 0 || v[i] > v[b2]) b2 = i;
    *gap = v[b] - v[b2];
    return b;
}

static int64_t argmax_f(const float *v, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Prefill T0 tokens, then decode the rest one at a time in sequence 0, and in
 * sequence 1 the same tokens interleaved with sequence 0's in shared batches
 * (a second, independent copy). */
static void check_model(const spec *s, const char *backend, bound tol)
{
    ref_model r;
    const char *path = kt_tmp_path("model.gguf");
    if (build(s, &r, path, NULL)) {
        KT_CHECK(0, "%s: writing the model failed", s->arch);
        free_ref(&r);
        return;
    }
    const int64_t T0 = 9, T = 14, V = s->n_vocab;
    int32_t tok[14];
    for (int64_t i = 0; i < T; i++) tok[i] = (int32_t)kt_range(0, V - 1);
    double *ref = malloc((size_t)(T * V) * sizeof(double));
    reference(&r, tok, T, ref);

    kq_backend *b = NULL;
    kq_model *m = NULL;
    float *lg = malloc((size_t)(2 * T * V) * sizeof(float));
    kq_model_params mp = {.n_ctx = 32, .n_seq = 2};
    if (!KT_OK(kq_backend_open(backend, &b)) || !KT_OK(kq_model_open(b, path, &mp, &m))) goto out;
    kq_model_info info;
    KT_OK(kq_model_get_info(m, &info));
    KT_CHECK(info.n_vocab == V && info.n_layer == s->n_layer && info.head_dim == s->head_dim,
             "%s: info %d %d %d", s->arch, info.n_vocab, info.n_layer, info.head_dim);

    int32_t pos[32], seq[32];
    for (int64_t i = 0; i < T0; i++) pos[i] = (int32_t)i, seq[i] = 0;
    kt_poison(lg, T0 * V);
    if (!KT_OK(kq_model_forward(m, tok, pos, seq, T0, NULL, lg))) goto out;
    err2 e = rel_err(lg, ref, T0 * V);
    KT_CHECK(within(e, tol), "%s on %s: prefill logits off by %.3g (rms %.3g) of their rms", s->arch,
             backend, e.max, e.rms);
    /* sequence 1 prefills only its first token in the same kind of call */
    int32_t p1 = 0, s1 = 1;
    KT_OK(kq_model_forward(m, tok, &p1, &s1, 1, NULL, lg));
    int64_t n1 = 1;
    for (int64_t t = T0; t < T; t++) {
        /* one token of each sequence per call: seq 0 at t, seq 1 catching up */
        int32_t bt[2] = {tok[t], tok[n1]}, bp[2] = {(int32_t)t, (int32_t)n1}, bs[2] = {0, 1};
        kt_poison(lg, 2 * V);
        if (!KT_OK(kq_model_forward(m, bt, bp, bs, 2, NULL, lg))) goto out;
        e = rel_err(lg, ref + t * V, V);
        KT_CHECK(within(e, tol), "%s on %s: decode logits at %lld off by %.3g (rms %.3g)", s->arch,
                 backend, (long long)t, e.max, e.rms);
        e = rel_err(lg + V, ref + n1 * V, V);
        KT_CHECK(within(e, tol), "%s on %s: sequence 1 at %lld off by %.3g (rms %.3g)", s->arch,
                 backend, (long long)n1, e.max, e.rms);
        double gap;
        int64_t want = argmax_d(ref + t * V, V, &gap);
        if (gap > 2 * tol.max * rms_of(ref + t * V, V))
            KT_CHECK(argmax_f(lg, V) == want, "%s on %s: greedy token at %lld", s->arch, backend,
                     (long long)t);
        n1++;
    }
    KT_CHECK(kq_model_seq_len(m, 0) == T && kq_model_seq_len(m, 1) == n1, "%s: sequence lengths",
             s->arch);
    /* On cuda the decode passes above (one shape, T - T0 of them) run once
     * uncaptured, once captured, then replay the graph: the checks above
     * were on replayed logits. Host backends never replay. */
    const uint64_t replays = kq_model_graph_replays(m);
    const char *graph_env = getenv("KQ_GRAPH"), *prof_env = getenv("KQ_PROFILE");
    int graphs_on = !strcmp(backend, "cuda") && !(graph_env && !strcmp(graph_env, "0")) &&
                    !(prof_env && *prof_env && strcmp(prof_env, "0"));
    KT_CHECK(graphs_on ? replays >= (uint64_t)(T - T0 - 2) : replays == 0,
             "%s on %s: %llu passes replayed from a CUDA graph", s->arch, backend,
             (unsigned long long)replays);

    /* misuse: a position that does not continue, a token out of range, a
     * sequence out of range; each leaves the cache as it was */
    int32_t bad_pos = 3, tk = 1, sq = 0;
    KT_EXPECT(kq_model_forward(m, &tk, &bad_pos, &sq, 1, NULL, lg), KQ_ERR_INVALID_ARG, "continues at");
    int32_t p_ok = (int32_t)T, bad_tok = (int32_t)V;
    KT_EXPECT(kq_model_forward(m, &bad_tok, &p_ok, &sq, 1, NULL, lg), KQ_ERR_RANGE, "outside");
    int32_t bad_seq = 2;
    KT_EXPECT(kq_model_forward(m, &tk, &p_ok, &bad_seq, 1, NULL, lg), KQ_ERR_RANGE, "seq[0]");
    KT_CHECK(kq_model_seq_len(m, 0) == T, "%s: a refused call changed the cache", s->arch);
    /* after a reset, the prompt again gives the same logits as the first time */
    KT_OK(kq_model_seq_reset(m, 0));
    uint8_t want_last[14] = {0};
    want_last[T0 - 1] = 1;
    kt_poison(lg, V);
    KT_OK(kq_model_forward(m, tok, pos, seq, T0, want_last, lg));
    e = rel_err(lg, ref + (T0 - 1) * V, V);
    KT_CHECK(within(e, tol), "%s on %s: last-row logits after reset off by %.3g", s->arch, backend,
             e.max);
    /* The model's own logits (logits NULL; page-locked on cuda, where the
     * head writes them itself): none after a pass into the caller's array;
     * a first pass allocates them, they are poisoned through its pointer,
     * and the next passes (on cuda: captured, then replayed) must fill them. */
    KT_CHECK(kq_model_logits(m, NULL) == NULL, "%s on %s: own logits after a pass into the "
             "caller's array", s->arch, backend);
    KT_OK(kq_model_seq_reset(m, 0));
    KT_OK(kq_model_forward(m, tok, pos, seq, T0, want_last, NULL));
    int64_t own_rows = 0;
    float *own = (float *)kq_model_logits(m, &own_rows);
    if (KT_CHECK(own != NULL && own_rows == 1, "%s on %s: own logits: %lld rows", s->arch, backend,
                 (long long)own_rows)) {
        for (int pass = 2; pass <= 3; pass++) {
            kt_poison(own, V);
            KT_OK(kq_model_seq_reset(m, 0));
            KT_OK(kq_model_forward(m, tok, pos, seq, T0, want_last, NULL));
            const float *own2 = kq_model_logits(m, &own_rows);
            e = own2 ? rel_err(own2, ref + (T0 - 1) * V, V) : e;
            KT_CHECK(own2 == own && own_rows == 1 && within(e, tol),
                     "%s on %s: own logits of pass %d off by %.3g (%lld rows)", s->arch, backend,
                     pass, e.max, (long long)own_rows);
        }
    }
    /* A batch larger than any before reallocates the batch and logits
     * buffers; on cuda the graphs captured above name the old ones. The
     * two-row shape then runs fresh, is captured again and replays: every
     * pass still matches the reference. */
    KT_OK(kq_model_seq_reset(m, -1));
    for (int64_t i = 0; i < T; i++) pos[i] = (int32_t)i, seq[i] = 0;
    kt_poison(lg, T * V);
    if (!KT_OK(kq_model_forward(m, tok, pos, seq, T, NULL, lg))) goto out;
    e = rel_err(lg, ref, T * V);
    KT_CHECK(within(e, tol), "%s on %s: a %lld-token batch after growth off by %.3g", s->arch,
             backend, (long long)T, e.max);
    for (int64_t t = 0; t + 2 <= T0; t += 2) {
        int32_t bt[2] = {tok[t], tok[t + 1]}, bp[2] = {(int32_t)t, (int32_t)t + 1}, bs[2] = {1, 1};
        kt_poison(lg, 2 * V);
        if (!KT_OK(kq_model_forward(m, bt, bp, bs, 2, NULL, lg))) goto out;
        e = rel_err(lg, ref + t * V, 2 * V);
        KT_CHECK(within(e, tol), "%s on %s: sequence 1 rows %lld-%lld after growth off by %.3g",
                 s->arch, backend, (long long)t, (long long)t + 1, e.max);
    }
out:
    kq_model_free(m);
    kq_backend_close(b);
    free(lg);
    free(ref);
    free_ref(&r);
    remove(path);
}

static spec base_spec(const char *arch)
{
    spec s = {.arch = arch, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
              .head_dim = 64, .n_ff = 512, .n_vocab = 300, .wtype = KQ_TYPE_Q4_K,
              .etype = KQ_TYPE_Q8_0, .neox = 1, .rope_base = 10000, .embd_scale = 1};
    return s;
}

static spec arch_spec(int i)
{
    spec s;
    switch (i) {
    case 0: /* Llama: normal RoPE, own output head */
        s = base_spec("llama");
        s.neox = 0;
        s.rope_base = 500000;
        s.etype = KQ_TYPE_Q6_K;
        return s;
    case 1: /* Qwen2: q/k/v biases, tied head */
        s = base_spec("qwen2");
        s.bias = 1;
        s.tied = 1;
        s.wtype = KQ_TYPE_Q8_0;
        return s;
    case 2: /* Qwen3: q/k norms, head_dim != n_embd / n_head */
        s = base_spec("qwen3");
        s.qk_norm = 1;
        s.head_dim = 32;
        s.n_head = 8;
        s.n_head_kv = 2;
        return s;
    case 3: /* Qwen3 MoE: 8 experts, top 2 */
        s = base_spec("qwen3moe");
        s.qk_norm = 1;
        s.n_expert = 8;
        s.n_used = 2;
        s.n_ff = 256;
        return s;
    default: /* Gemma 3: scaled embedding, post norms, GELU, sliding window of 4
              * on two of every three layers with their own RoPE base, tied */
        s = base_spec("gemma3");
        s.n_layer = 3;
        s.qk_norm = s.post_norms = s.gelu = s.tied = 1;
        s.n_head_kv = 1;
        s.n_swa = 4;
        s.swa_pattern = 3;
        s.rope_base = 1e6;
        s.rope_base_swa = 10000;
        s.embd_scale = 16; /* sqrt(256) */
        s.softcap = 0;
        return s;
    }
}

static void check_malformed(void)
{
    spec s = base_spec("qwen3");
    s.qk_norm = 1;
    const char *path = kt_tmp_path("bad.gguf");
    kq_backend *b = NULL;
    if (!KT_OK(kq_backend_open("cpu-ref", &b))) return;
    struct {
        const char *skip, *key;
        int64_t val;
        kq_status want;
        const char *needle;
    } cases[] = {
        {NULL, "attention.head_count_kv", 3, KQ_ERR_FORMAT, "not a multiple"},
        {NULL, "block_count", 0, KQ_ERR_FORMAT, "block_count"},
        {NULL, "block_count", 3, KQ_ERR_NOT_FOUND, "blk.2"},
        {NULL, "embedding_length", 128, KQ_ERR_FORMAT, "token_embd.weight"},
        {NULL, "attention.key_length", 48, KQ_ERR_UNSUPPORTED, "differs from key_length"},
        {NULL, "rope.dimension_count", 80, KQ_ERR_FORMAT, "rope.dimension_count"},
        {NULL, "feed_forward_length", 1024, KQ_ERR_FORMAT, "ffn_gate"},
        {NULL, "attention.head_count", 1u << 31, KQ_ERR_FORMAT, "head_count"},
        {"blk.1.attn_v.weight", NULL, 0, KQ_ERR_NOT_FOUND, "blk.1.attn_v.weight"},
        {"output_norm.weight", NULL, 0, KQ_ERR_NOT_FOUND, "output_norm"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref_model r;
        bad_key = cases[i].key;
        bad_val = cases[i].val;
        if (build(&s, &r, path, cases[i].skip) == 0) {
            static int dummy;
            kq_model *m = (kq_model *)(void *)&dummy; /* must come back NULL */
            KT_EXPECT(kq_model_open(b, path, NULL, &m), cases[i].want, cases[i].needle);
            KT_CHECK(m == NULL, "case %zu: out not cleared", i);
        }
        bad_key = NULL;
        free_ref(&r);
    }
    kq_model *m;
    KT_EXPECT(kq_model_open(b, "/nonexistent/model.gguf", NULL, &m), KQ_ERR_IO, "nonexistent");
    KT_EXPECT(kq_model_open(NULL, path, NULL, &m), KQ_ERR_INVALID_ARG, "NULL");
    kq_model_params bad = {.n_ctx = -1};
    KT_EXPECT(kq_model_open(b, path, &bad, &m), KQ_ERR_INVALID_ARG, "n_ctx");
    kq_backend_close(b);
    remove(path);
}

static void check_sampler(void)
{
    float lg[50];
    kt_fill_normal(lg, 50, 1);
    kq_sampler *s;
    kq_sampler_params greedy = {0};
    KT_OK(kq_sampler_new(&greedy, 50, &s));
    int32_t id = -1, best = 0;
    for (int i = 1; i < 50; i++) best = lg[i] > lg[best] ? i : best;
    KT_OK(kq_sampler_sample(s, lg, &id));
    KT_CHECK(id == best, "greedy picked %d, want %d", id, best);
    kq_sampler_free(s);
    /* top-k 3: only the three largest come out; same seed, same draws */
    kq_sampler_params p = {.temp = 1.5f, .top_k = 3, .top_p = 1, .seed = kt_u64()};
    kq_sampler *a, *c;
    KT_OK(kq_sampler_new(&p, 50, &a));
    KT_OK(kq_sampler_new(&p, 50, &c));
    int bigger_ok = 1, same = 1;
    for (int it = 0; it < 200; it++) {
        int32_t x, y;
        kq_sampler_sample(a, lg, &x);
        kq_sampler_sample(c, lg, &y);
        int above = 0;
        for (int i = 0; i < 50; i++) above += lg[i] > lg[x];
        bigger_ok &= above < 3;
        same &= x == y;
    }
    KT_CHECK(bigger_ok, "top-k 3 gave a token outside the top three");
    KT_CHECK(same, "the same seed gave different draws");
    kq_sampler_free(a);
    kq_sampler_free(c);
    kq_sampler_params nan_temp = {.temp = NAN};
    KT_EXPECT(kq_sampler_new(&nan_temp, 50, &a), KQ_ERR_INVALID_ARG, "finite");
}

int main(int argc, char **argv)
{
    kt_init("test_model");
    const char *only = argc > 1 ? argv[1] : NULL;
    /* CUDA where a GPU is present: int8 x for decode, fp16 x for the GEMM of
     * a prompt, both within the cpu backend's bound */
    kq_backend *gpu = NULL;
    int have_cuda = kq_backend_open("cuda", &gpu) == KQ_OK;
    kq_backend_close(gpu);
    if (!have_cuda) printf("note: no CUDA backend here (%s); the model is checked on cpu-ref and cpu\n",
                           kq_last_error());
    for (int i = 0; i < 5; i++) {
        spec s = arch_spec(i);
        if (only && strcmp(only, s.arch)) continue;
        check_model(&s, "cpu-ref", (bound){2e-3, 2e-3});
        if (!s.n_expert) check_model(&s, "cpu", (bound){0.3, 0.06});
        if (!s.n_expert && have_cuda) check_model(&s, "cuda", (bound){0.3, 0.06});
    }
    if (!only || !strcmp(only, "misc")) {
        check_malformed();
        check_sampler();
    }
    return kt_finish();
}
