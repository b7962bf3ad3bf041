/*
 * kquant_model: whole language models on kquant's layers.
 *
 * A thin inference engine over the public API of kquant.h: it reads the
 * architecture from a GGUF file's metadata (llama, qwen2, qwen3, qwen3moe,
 * gemma3), loads the weights as kq_linear / kq_experts objects on a backend,
 * keeps a KV cache per sequence and runs the forward pass. The linear and
 * experts library works without this header; programs that only multiply
 * weights need not link anything of it.
 *
 * Every call returns a kq_status and leaves a message in kq_last_error() on
 * failure. Metadata and tensor shapes are untrusted: a file whose dimensions,
 * head counts, layer count or vocabulary disagree with its tensors is refused
 * with KQ_ERR_FORMAT naming the key or tensor.
 */
#ifndef KQUANT_MODEL_H
#define KQUANT_MODEL_H

#include "kquant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kq_model kq_model;

typedef struct kq_model_params {
    int32_t n_ctx; /* positions per sequence in the KV cache; 0: min(context_length, 4096) */
    int32_t n_seq; /* independent sequences (kq run --parallel); 0: 1 */
} kq_model_params;

typedef struct kq_model_info {
    const char *arch; /* "llama", "qwen2", "qwen3", "qwen3moe", "gemma3" */
    const char *name; /* general.name, or "" */
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int32_t n_expert, n_expert_used; /* 0 for dense models */
    int32_t n_ctx, n_seq;            /* as opened */
    int32_t bos, eos;                /* -1 where the tokenizer has none */
    uint64_t weight_bytes;           /* bytes of all weights read per token (dense) */
} kq_model_info;

/* Opens the GGUF file at path and loads its weights on b (which must outlive
 * the model). params may be NULL for the defaults. */
KQ_API kq_status kq_model_open(kq_backend *b, const char *path, const kq_model_params *params,
                               kq_model **out);
KQ_API void kq_model_free(kq_model *m); /* NULL is a no-op */
KQ_API kq_status kq_model_get_info(const kq_model *m, kq_model_info *out);
/* Forward passes replayed from a captured CUDA graph so far (0 on host
 * backends, for MoE models, and with KQ_GRAPH=0 or KQ_PROFILE=1 set). A
 * function rather than a kq_model_info field, so that struct keeps its size. */
KQ_API uint64_t kq_model_graph_replays(const kq_model *m);

/* Text to token ids with the file's own tokenizer; *out is malloc'd, the
 * caller free()s it. add_special: BOS/EOS as the metadata says. */
KQ_API kq_status kq_model_tokenize(const kq_model *m, const char *text, size_t len,
                                   int add_special, int parse_special, int32_t **out,
                                   size_t *n_out);
/* The bytes of one token (*len is the full length; KQ_ERR_RANGE if > cap). */
KQ_API kq_status kq_model_token_to_piece(const kq_model *m, int32_t id, char *buf, size_t cap,
                                         size_t *len);
/* 1 if id ends generation (eos, end-of-turn...). */
KQ_API int kq_model_is_eog(const kq_model *m, int32_t id);

/* One forward pass over n tokens (host arrays). Token i has position pos[i]
 * in sequence seq[i] (seq may be NULL: all in sequence 0); the positions of
 * each sequence must continue it: the first token of a sequence in the batch
 * has the sequence's current length as position, the next one that plus one,
 * and so on, so prompts go in as one batch and --parallel decode as one token
 * of each sequence. want_logits (NULL: every token) marks the tokens whose
 * logits are wanted; logits (host memory) receives their rows in batch order,
 * n_vocab floats each, or, when logits is NULL, the model keeps them for
 * kq_model_logits. A failed call leaves the cache as it was. */
KQ_API kq_status kq_model_forward(kq_model *m, const int32_t *tokens, const int32_t *pos,
                                  const int32_t *seq, int64_t n, const uint8_t *want_logits,
                                  float *logits);
/* The logits of the last kq_model_forward called with logits NULL (*rows
 * of n_vocab floats, in batch order), in the model's own host memory, valid
 * until the next forward pass or kq_model_free; NULL (and *rows 0) if the
 * last pass wrote the caller's array or failed. On a device backend this
 * memory is page-locked, so the copy off the device runs at the bus's
 * speed: Gemma 3's 1 MB row took ~27 us where a caller's pageable array
 * took ~136 (H100 machine, bench/RESULTS.md). */
KQ_API const float *kq_model_logits(const kq_model *m, int64_t *rows);
/* Empties one sequence's cache (seq = -1: all of them). */
KQ_API kq_status kq_model_seq_reset(kq_model *m, int32_t seq);
/* The current length of a sequence (positions held in its cache), or -1. */
KQ_API int32_t kq_model_seq_len(const kq_model *m, int32_t seq);

/* ---------------------------------------------------------------- sampling */

typedef struct kq_sampler_params {
    float temp;   /* <= 0: greedy (argmax, lowest id on ties) */
    int32_t top_k; /* <= 0: all */
    float top_p;  /* >= 1 or <= 0: all */
    uint64_t seed;
} kq_sampler_params;

typedef struct kq_sampler kq_sampler;
KQ_API kq_status kq_sampler_new(const kq_sampler_params *p, int32_t n_vocab, kq_sampler **out);
KQ_API void kq_sampler_free(kq_sampler *s); /* NULL is a no-op */
/* Picks a token from n_vocab logits: top-k, then top-p over the softmax at
 * temperature temp, then a draw from the generator seeded by seed. */
KQ_API kq_status kq_sampler_sample(kq_sampler *s, const float *logits, int32_t *out);

#ifdef __cplusplus
}
#endif

#endif /* KQUANT_MODEL_H */
