/* The per-row operations of the forward pass between kquant's linears
 * (RMSNorm, residual adds, biases, GELU gating, RoPE, MoE routing), on host
 * memory. Big ones run on the "cpu" backend's own thread pool, so the model
 * adds no threads of its own to compete with the linears' workers. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "model.h"
#include "vec.h"

typedef struct task_run {
    kq_model_task fn;
    void *ctx;
    int64_t n;
} task_run;

static void run_slice(void *ctx, int tid, int n_threads)
{
    const task_run *r = ctx;
    int64_t b = r->n * tid / n_threads, e = r->n * (tid + 1) / n_threads;
    if (b < e) r->fn(r->ctx, b, e);
}

void kq__model_parallel(kq_backend *b, int64_t n, int64_t grain, kq_model_task fn, void *ctx)
{
    if (n <= 0) return;
    if (n <= grain || strcmp(b->ops->kind, "cpu") != 0) {
        fn(ctx, 0, n);
        return;
    }
    cpu_state *s = b->impl;
    task_run r = {fn, ctx, n};
    pthread_mutex_lock(&s->call_mu);
    kq__pool_run(s->pool, run_slice, &r);
    pthread_mutex_unlock(&s->call_mu);
}

typedef struct norm_task {
    const float *x, *w;
    float *y;
    int64_t n, sx, sy;
    double eps;
} norm_task;

static void norm_rows(void *ctx, int64_t r0, int64_t r1)
{
    const norm_task *t = ctx;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = t->x + r * t->sx;
        float *y = t->y + r * t->sy;
        double ss = 0;
        for (int64_t i = 0; i < t->n; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / sqrt(ss / (double)t->n + t->eps));
        for (int64_t i = 0; i < t->n; i++) y[i] = x[i] * scale * t->w[i];
    }
}

/* y = x / rms(x) * w per row of n (in place allowed). */
void kq__op_rmsnorm(kq_backend *b, const float *x, const float *w, float *y, int64_t rows,
                    int64_t n, int64_t stride_x, int64_t stride_y, double eps)
{
    norm_task t = {x, w, y, n, stride_x, stride_y, eps};
    kq__model_parallel(b, rows, 65536 / (n + 1) + 1, norm_rows, &t);
}

void kq__op_add(kq_backend *b, float *y, const float *x, int64_t n)
{
    (void)b;
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void kq__op_add_rows(float *y, const float *bias, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) y[r * n + i] += bias[i];
}

/* Rotates the first n_rot dims of each head of v at position pos. The angle
 * is computed in double from the closed form, so it does not drift with the
 * position (ggml builds it by repeated float products; the difference stays
 * far inside the oracle bounds at these lengths). */
void kq__op_rope(const kq_model_config *c, int64_t layer, const float *freqs, float *v,
                 int64_t n_heads, int64_t head_stride, int32_t pos)
{
    int swa = c->n_swa > 0 && c->is_swa[layer];
    double scale = swa ? c->rope_scale_swa : c->rope_scale;
    int64_t half = c->n_rot / 2;
    const double *inv_freq = c->inv_freq + (swa ? half : 0);
    for (int64_t i = 0; i < half; i++) {
        double theta = scale * (double)pos * inv_freq[i];
        if (freqs) theta /= freqs[i];
        float cs = (float)cos(theta), sn = (float)sin(theta);
        for (int64_t h = 0; h < n_heads; h++) {
            float *x = v + h * head_stride;
            int64_t a = c->rope_neox ? i : 2 * i, b = c->rope_neox ? i + half : 2 * i + 1;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * cs - x1 * sn;
            x[b] = x0 * sn + x1 * cs;
        }
    }
}

/* MoE routing: softmax over n logits, the k largest (lowest index first on
 * ties), their probabilities renormalised to sum 1 when norm is set (the sum
 * clamped below as llama.cpp does, so it never divides by zero). */
void kq__op_softmax_topk(const float *logits, int64_t n, int64_t k, int norm, int32_t *ids,
                         float *w)
{
    float mx = logits[0];
    for (int64_t i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    for (int64_t s = 0; s < k; s++) {
        int64_t best = -1;
        for (int64_t i = 0; i < n; i++) {
            int taken = 0;
            for (int64_t j = 0; j < s; j++) taken |= ids[j] == i;
            if (!taken && (best < 0 || logits[i] > logits[best])) best = i;
        }
        ids[s] = (int32_t)best;
        w[s] = (float)(exp((double)logits[best] - mx) / sum);
    }
    if (norm) {
        double ws = 0;
        for (int64_t s = 0; s < k; s++) ws += w[s];
        if (ws < 6.103515625e-5) ws = 6.103515625e-5;
        for (int64_t s = 0; s < k; s++) w[s] = (float)(w[s] / ws);
    }
}
