/* The model layer's operations between linears on a CUDA device
 * (ops_cuda.cu): the same steps as ops_cpu.c and attention.c, on device
 * memory, queued on the backend's stream. Built only with the CUDA backend. */
#ifndef KQ_MODEL_OPS_CUDA_H
#define KQ_MODEL_OPS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the device kernels need of the architecture, by value. */
typedef struct kq_cu_arch {
    int n_head, n_head_kv, head_dim, n_rot, rope_neox, n_layer;
    int64_t n_ctx, n_swa;
    float eps, attn_scale;
    double rope_base, rope_scale, rope_base_swa, rope_scale_swa;
} kq_cu_arch;

/* Each returns 0, or a CUDA error code (launch failures). */
int kq__cu_rmsnorm(void *stream, const float *x, const float *w, float *y, int64_t rows, int64_t n,
                   int64_t sx, int64_t sy, float eps);
/* Per row of n: y = norm(y) * post_w (post_w NULL: y as is), x += y, then
 * h = norm(x) * norm_w (norm_w NULL: h untouched). */
int kq__cu_residual(void *stream, float *x, float *y, const float *post_w, const float *norm_w,
                    float *h, int64_t rows, int64_t n, float eps);
int kq__cu_add_rows(void *stream, float *y, const float *bias, int64_t rows, int64_t n);
int kq__cu_scale(void *stream, float *x, float s, int64_t n);
int kq__cu_softcap(void *stream, float *x, float cap, int64_t n);
/* q/k head norms (q_norm/k_norm may be NULL), RoPE, and k and v into the
 * cache at (seq, layer, pos) for every token. inv_freq: device copy of the
 * config's table (model.h: [2][n_rot / 2], global then local layers). */
int kq__cu_qk_prep(void *stream, const kq_cu_arch *a, int layer, int swa, float *qkv,
                   const float *q_norm, const float *k_norm, const float *rope_freqs,
                   const double *inv_freq, const int32_t *pos, const int32_t *seq, int64_t n,
                   float *k_cache, float *v_cache);
/* Scratch of the split decode kernel (attention_cuda.cu): part holds
 * kq__cu_attention_part_floats(a, tokens) floats, ticket tokens * n_head
 * int32 that must be zero before the first call (each call leaves them
 * zero). Calls of more than `tokens` tokens, or with no scratch, take the
 * other kernels. */
#define KQ_CU_SPLIT_MAX_TOKENS 15 /* larger calls (prompts) take the tile kernel */
typedef struct kq_cu_att_scratch {
    float *part;
    int32_t *ticket;
    int64_t tokens;
} kq_cu_att_scratch;
int64_t kq__cu_attention_part_floats(const kq_cu_arch *a, int64_t tokens);
int kq__cu_attention(void *stream, const kq_cu_arch *a, int layer, int swa, const float *qkv,
                     const int32_t *pos, const int32_t *seq, int64_t n, const float *k_cache,
                     const float *v_cache, const kq_cu_att_scratch *scratch, float *out);
/* y[i] = sum_s w[i, s] * e[i * k + s] over rows of n. */
int kq__cu_moe_combine(void *stream, const float *e, const float *w, float *y, int64_t rows,
                       int64_t k, int64_t n);
/* dst[i] = src[idx[i]] for rows of n. */
int kq__cu_gather_rows(void *stream, const float *src, const int32_t *idx, float *dst,
                       int64_t rows, int64_t n);
const char *kq__cu_error_string(int err);
/* Page-locked host memory (cudaHostAlloc), for the model's own logits and
 * the input staging. */
int kq__cu_host_alloc(size_t bytes, void **out);
void kq__cu_host_free(void *p);
/* 1 when kernels can write page-locked p at its host address (unified
 * addressing), else 0. */
int kq__cu_host_mapped(const void *p);
/* An asynchronous host-to-device copy on the stream (src page-locked, so
 * the call returns before the copy runs), and events to know when it has. */
int kq__cu_copy_in_async(void *stream, void *dst, const void *src, size_t bytes);
int kq__cu_event_new(void **ev);
int kq__cu_event_record(void *ev, void *stream);
int kq__cu_event_sync(void *ev);
void kq__cu_event_free(void *ev);

/* graph_cuda.cu: capture of the work queued on a stream, and its replay. */
int kq__cu_graph_begin(void *stream);
int kq__cu_graph_end(void *stream, void **exec);
int kq__cu_graph_launch(void *exec, void *stream);
void kq__cu_graph_free(void *exec);
/* cuda_backend.c: changes whenever memory that captured calls name moves. */
struct kq_backend;
unsigned kq__cuda_backend_epoch(struct kq_backend *b);

#ifdef __cplusplus
}
#endif

#endif
