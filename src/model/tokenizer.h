/* Tokenizers read from GGUF metadata (tokenizer.ggml.*), matching llama.cpp
 * token for token: SentencePiece-style ("llama": scores, byte fallback,
 * U+2581 for spaces) and byte-level BPE ("gpt2": merges, with the
 * pre-tokenizer that tokenizer.ggml.pre names). Internal to the model layer. */
#ifndef KQ_MODEL_TOKENIZER_H
#define KQ_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "kquant.h"

typedef struct kq_tokenizer kq_tokenizer;

/* Copies what it needs: g may be closed afterwards. A loaded tokenizer is
 * read-only: any number of threads may use it at once. */
kq_status kq__tokenizer_from_gguf(const kq_gguf *g, kq_tokenizer **out);
void kq__tokenizer_free(kq_tokenizer *t); /* NULL is a no-op */

/* UTF-8 text (len bytes) to ids. add_special: BOS/EOS as the metadata says
 * (tokenizer.ggml.add_bos_token / add_eos_token, with llama.cpp's defaults per
 * tokenizer kind). parse_special: control tokens' text such as
 * "<start_of_turn>" in the text becomes those tokens. *out is malloc'd (at
 * least one byte even when *n_out is 0); the caller free()s it. */
kq_status kq__tokenize(const kq_tokenizer *t, const char *text, size_t len, int add_special,
                       int parse_special, int32_t **out, size_t *n_out);

/* The bytes a token stands for when detokenizing (SPM: U+2581 -> space,
 * <0xNN> -> that byte; byte-level BPE mapped back to bytes; control tokens
 * give "" unless show_special). *len is the piece's full length; when it
 * exceeds cap, nothing is written past cap and KQ_ERR_RANGE is returned. */
kq_status kq__token_to_piece(const kq_tokenizer *t, int32_t id, int show_special, char *buf,
                             size_t cap, size_t *len);

int32_t kq__tokenizer_n_vocab(const kq_tokenizer *t);
int32_t kq__tokenizer_bos(const kq_tokenizer *t); /* -1 if none */
int32_t kq__tokenizer_eos(const kq_tokenizer *t); /* -1 if none */
/* End of generation: eos, eot, eom, <end_of_turn>, <|im_end|>, ... */
int kq__tokenizer_is_eog(const kq_tokenizer *t, int32_t id);

#endif
