/* The model layer's internals: the architecture read from metadata
 * (config.c), the loaded weights (load.c), the KV cache and scratch
 * activations (model.c), the forward pass (forward.c) and the operations it
 * runs between kquant's linears (ops.c dispatches them: ops_cpu.c,
 * attention.c and vec.c on host memory, ops_cuda.cu on a CUDA device). */
#ifndef KQ_MODEL_MODEL_H
#define KQ_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kquant.h"
#include "kquant_model.h"
#include "tokenizer.h"

typedef enum kq_arch {
    KQ_ARCH_LLAMA,
    KQ_ARCH_QWEN2,
    KQ_ARCH_QWEN3,
    KQ_ARCH_QWEN3MOE,
    KQ_ARCH_GEMMA3
} kq_arch;

/* Limits that keep every product below in range and refuse absurd files
 * before any allocation is sized from them. */
#define KQ_MODEL_MAX_LAYERS 1024
#define KQ_MODEL_MAX_DIM (1 << 20)
#define KQ_MODEL_MAX_HEADS 4096
#define KQ_MODEL_MAX_VOCAB (1 << 24)
#define KQ_MODEL_MAX_EXPERTS 4096
#define KQ_MODEL_MAX_CTX (1 << 22)
#define KQ_MODEL_MAX_SEQ 1024

typedef struct kq_model_config {
    kq_arch arch;
    const char *arch_name;
    int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot;
    int64_t n_expert, n_expert_used, n_ff_exp;
    int64_t n_ctx_train;
    double eps;
    /* RoPE: theta_i(p) = p * freq_scale * base^(-2i / n_rot) (/ rope_freqs[i]),
     * NeoX pairs (i, i + n_rot/2), the normal ordering pairs (2i, 2i + 1). */
    int rope_neox;
    double rope_base, rope_scale, rope_base_swa, rope_scale_swa;
    double *inv_freq; /* [2][n_rot / 2]: base^(-2i / n_rot) for global, then local layers */
    int64_t n_swa;    /* sliding window (keys with q_pos - k_pos < n_swa); 0: none */
    uint8_t *is_swa;  /* per layer */
    float attn_scale; /* on q k^T */
    float embd_scale; /* on the token embedding (Gemma: sqrt(n_embd)) */
    float softcap;    /* final logit softcapping; 0: none */
    int qk_norm;      /* RMSNorm over each head of q and k (Qwen3, Gemma 3) */
    int post_norms;   /* norms after attention and after the FFN (Gemma 3) */
    int gelu;         /* GELU-gated FFN (Gemma) rather than SwiGLU */
} kq_model_config;

typedef struct kq_model_layer {
    /* norm weights, n_embd floats (head_dim for q/k norms), backend memory */
    float *attn_norm, *ffn_norm, *post_attn_norm, *post_ffn_norm, *q_norm, *k_norm;
    float *qkv_bias;    /* q|k|v rows, zeros where the file has none; NULL if none at all */
    float *rope_freqs;  /* n_rot/2 frequency divisors, or NULL */
    kq_linear *qkv, *wo;
    kq_linear *gate_up, *down; /* dense FFN */
    kq_linear *router;         /* MoE: ffn_gate_inp */
    kq_experts *gate_exps, *up_exps, *down_exps;
} kq_model_layer;

/* Scratch for one batch of up to cap tokens, in backend memory. */
typedef struct kq_model_bufs {
    int64_t cap;
    float *x, *h, *y;      /* [cap, n_embd]: residual stream, normed input, layer output */
    float *qkv, *att;      /* [cap, q + 2 kv], [cap, q] */
    float *ffa;            /* [cap, n_ff]: the gated feed-forward's output */
    float *router, *moe_w; /* [cap, n_expert], [cap, top_k] */
    int32_t *ids;          /* [cap, top_k] */
    float *moe_act, *moe_out; /* [cap * top_k, n_ff_exp], [cap * top_k, n_embd] */
    float *out_rows;       /* [cap, n_embd]: the rows whose logits are wanted */
    /* device backends only: the batch's positions, sequences and wanted rows
     * on the device, host staging for the embedding rows and the routing,
     * and the logits before they are copied to the caller */
    int32_t *d_idx; /* device: this pass's wanted rows, past its rows of x (ops.c) */
    float *att_part;     /* device: the split decode attention's partials ... */
    int32_t *att_ticket; /* ... and its tickets (zeroed at allocation) */
    int64_t att_tokens;  /* tokens they serve: min(cap, KQ_CU_SPLIT_MAX_TOKENS) */
    /* device backends: a pass's inputs (embedding rows, positions,
     * sequences, wanted rows) staged in page-locked memory laid out as x's
     * device allocation, and sent in one asynchronous copy (ops.c);
     * stage_ev marks when that copy has read them */
    float *stage;
    void *stage_ev;
    float *host_router, *host_w;
    int32_t *host_ids;
    float *d_logits;
    int64_t cap_logits;
    float *own_logits;      /* kq_model_logits: page-locked on a device backend */
    int own_mapped;         /* ... and the device can write it (ops.c: the head then does) */
    int logits_direct;      /* this pass's head writes the host logits itself */
    int64_t cap_own, own_rows; /* rows it holds room for; rows of the last pass (0: none) */
} kq_model_bufs;

/* Captured CUDA graphs of the forward's device work (graph.c), one per
 * batch shape (rows, logit rows). An entry without exec has run once
 * uncaptured; the next pass of that shape is captured. */
#define KQ_MODEL_GRAPHS 4
typedef struct kq_model_graph {
    int64_t n, n_out;
    const void *out; /* where the logits go: the device buffer or page-locked host rows */
    void *exec;     /* cudaGraphExec_t, or NULL */
    unsigned epoch; /* the backend's kq__cuda_backend_epoch at capture */
    int failed;     /* capture refused: this shape runs uncaptured */
    uint64_t used;  /* for replacing the least recently used */
} kq_model_graph;

typedef struct kq_model_graphs {
    kq_model_graph g[KQ_MODEL_GRAPHS];
    uint64_t clock, replays;
    int off; /* KQ_GRAPH=0, KQ_PROFILE, or not a device backend */
} kq_model_graphs;

struct kq_model {
    kq_backend *b;
    int dev; /* the backend's memory is a device's (CUDA): ops run there */
    kq_gguf *g; /* kept open: the embedding rows are read from it */
    kq_tokenizer *tok;
    kq_model_config c;
    char name[128];
    kq_model_layer *layers;
    float *out_norm;
    kq_linear *output;
    float *output_bias; /* Qwen2 may carry one; else NULL */
    kq_tensor_info embd;
    size_t embd_row_bytes;
    /* KV cache: k[((s * n_layer + l) * n_ctx + p) * kv_dim], the same for v. */
    int64_t n_ctx, n_seq, kv_dim;
    float *k_cache, *v_cache;
    double *d_inv_freq; /* device copy of c.inv_freq (NULL on the host) */
    int32_t *seq_len;
    kq_model_bufs buf;
    kq_model_graphs graphs;
    uint64_t weight_bytes;
};

/* config.c: reads and checks the architecture's metadata and tensor shapes. */
kq_status kq__model_config(const kq_gguf *g, kq_model_config *c);
void kq__model_config_free(kq_model_config *c);

/* load.c: weights onto the backend (fused q/k/v and gate/up). */
kq_status kq__model_load_weights(kq_model *m);
void kq__model_free_weights(kq_model *m);

/* forward.c */
kq_status kq__model_forward(kq_model *m, const int32_t *tokens, const int32_t *pos,
                            const int32_t *seq, int64_t n, const uint8_t *want, float *logits);

/* graph.c: runs body(m, ctx) — device work only, queued on the backend's
 * stream, the same for every call of one (n, n_out) — captured once as a CUDA
 * graph and replayed after, one graph per (n, n_out, out); directly where
 * graphs are off or refused. */
typedef kq_status (*kq_model_body)(kq_model *m, void *ctx);
void kq__model_graphs_init(kq_model *m);
kq_status kq__model_graph_run(kq_model *m, int64_t n, int64_t n_out, const void *out,
                              kq_model_body body, void *ctx);
void kq__model_graphs_free(kq_model *m);

/* ops_cpu.c: the operations between linears, on host memory, run on the
 * cpu backend's thread pool where it has one. */
typedef void (*kq_model_task)(void *ctx, int64_t begin, int64_t end);
void kq__model_parallel(kq_backend *b, int64_t n, int64_t grain, kq_model_task fn, void *ctx);
void kq__op_rmsnorm(kq_backend *b, const float *x, const float *w, float *y, int64_t rows,
                    int64_t n, int64_t stride_x, int64_t stride_y, double eps);
void kq__op_add(kq_backend *b, float *y, const float *x, int64_t n);
void kq__op_add_rows(float *y, const float *bias, int64_t rows, int64_t n);
void kq__op_rope(const kq_model_config *c, int64_t layer, const float *freqs, float *v,
                 int64_t n_heads, int64_t head_stride, int32_t pos);
void kq__op_softmax_topk(const float *logits, int64_t n, int64_t k, int norm, int32_t *ids,
                         float *w);

/* attention.c: q/k head norms, RoPE and the cache write of every token
 * (host memory), then causal (and sliding-window) attention of a batch against the
 * KV cache, which already holds the batch's keys and values. */
void kq__model_qk_prep(kq_model *m, int64_t layer, const int32_t *pos, const int32_t *seq,
                       int64_t n);
kq_status kq__model_attention(kq_model *m, int64_t layer, const int32_t *pos,
                              const int32_t *seq, int64_t n);

#endif
