/* The rules of `kq quantize`: which type each tensor of a file becomes, for
 * a single target type or the q4_k_m mix, and the general.file_type value
 * that tells llama.cpp what the result is. Pure functions of the tensor's
 * name and shape, kept apart from the file and thread handling so that the
 * rules read in one place. */
#ifndef KQ_TOOL_QUANTIZE_MIX_H
#define KQ_TOOL_QUANTIZE_MIX_H

#include <stdint.h>

#include "kquant.h"

typedef struct kq_qplan {
    char label[16];    /* what the result is called: "q4_K", "q8_0", "q4_k_m" */
    int base_type;     /* the type most weights get */
    int mix_q4_k_m;    /* 1: attn_v / ffn_down / output.weight get more bits */
    uint32_t ftype;    /* llama.cpp's llama_ftype for general.file_type */
} kq_qplan;

/* Parses a target as the user wrote it: a type name (case-insensitive:
 * q4_0, q8_0, q4_K, q5_K, q6_K) or the mix "q4_k_m". Returns 0, or -1 with a
 * message in `err`. */
int kq_qplan_parse(const char *arg, kq_qplan *out, char *err, size_t err_cap);

/* What happens to one tensor. */
typedef enum kq_qaction {
    KQ_Q_CONVERT, /* quantized to *type */
    KQ_Q_KEEP,    /* float tensor kept as it is (1-D, norm, router, odd row length) */
    KQ_Q_COPY     /* not a float type (already quantized, integer): copied unchanged */
} kq_qaction;

/* The decision for one tensor. n_layers is the model's layer count (see
 * kq_qplan_layer_count); `why` receives a short reason for KEEP and COPY and
 * for a type other than the base one. */
kq_qaction kq_qplan_tensor(const kq_qplan *p, const kq_tensor_info *t, int64_t n_layers, int *type,
                           const char **why);

/* The layer count the mix's "more bits" rule divides: <arch>.block_count if
 * the file has it, else 1 + the largest blk.N index, else 0. */
int64_t kq_qplan_layer_count(const kq_gguf *g);

/* N of a "blk.N." name, or -1 if the name has no such prefix. *rest gets the
 * part after "blk.N." when non-NULL. */
int64_t kq_qplan_layer_of(const char *name, const char **rest);

#endif
