/* The rules of `kq quantize`: which type each tensor of a file becomes, for
 * a single target type or one of llama.cpp's mixes (q2_k, q3_k_m, q4_k_m,
 * q5_k_m, q6_k, iq4_xs), and the general.file_type value that tells
 * llama.cpp what the result is. Pure functions of the tensor's name and
 * shape and a few model facts, kept apart from the file and thread handling
 * so that the rules read in one place. */
#ifndef KQ_TOOL_QUANTIZE_MIX_H
#define KQ_TOOL_QUANTIZE_MIX_H

#include <stddef.h>
#include <stdint.h>

#include "kquant.h"

/* llama.cpp's mixes (its LLAMA_FTYPE_MOSTLY_* of the same names). */
typedef enum kq_qmix {
    KQ_MIX_NONE = 0, /* a single type, with llama.cpp's fallback for odd rows */
    KQ_MIX_Q2_K,
    KQ_MIX_Q3_K_M,
    KQ_MIX_Q4_K_M,
    KQ_MIX_Q5_K_M,
    KQ_MIX_Q6_K,
    KQ_MIX_IQ4_XS
} kq_qmix;

typedef struct kq_qplan {
    char label[16];    /* what the result is called: "q4_K", "q8_0", "q4_k_m" */
    int base_type;     /* the type most weights get */
    kq_qmix mix;
    uint32_t ftype;    /* llama.cpp's llama_ftype for general.file_type */
} kq_qplan;

/* What the mixes' rules read from the file (kq_qmodel_read). */
typedef struct kq_qmodel {
    int64_t n_layers;  /* <arch>.block_count, else 1 + the largest blk.N */
    int64_t n_attn_v;  /* tensors kq_qplan_is_attn_v counts */
    int64_t n_gqa;     /* attention heads per KV head (1 if unknown) */
    int64_t n_expert;  /* <arch>.expert_count (0 if none) */
    int falcon;        /* architecture "falcon" (rules of its own) */
    int tied;          /* no output.weight: token_embd doubles as the output */
} kq_qmodel;

/* Parses a target as the user wrote it (case-insensitive): a mix name, or a
 * type name (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, mxfp4, q3_K, q4_K,
 * q5_K). q2_k, q6_k and iq4_xs are both: they select llama.cpp's mix, as
 * its quantizer does. Returns 0, or -1 with a message in `err`. */
int kq_qplan_parse(const char *arg, kq_qplan *out, char *err, size_t err_cap);

/* What happens to one tensor. */
typedef enum kq_qaction {
    KQ_Q_CONVERT, /* quantized to *type */
    KQ_Q_KEEP,    /* float tensor kept as it is (1-D, norm, router, odd row length) */
    KQ_Q_COPY     /* not a float type (already quantized, integer): copied unchanged */
} kq_qaction;

/* The decision for one tensor. i_attn_v is the number of tensors before
 * this one for which kq_qplan_is_attn_v holds (llama.cpp counts them in
 * file order); `why` receives a short reason for KEEP and COPY and for a
 * type other than the base one. */
kq_qaction kq_qplan_tensor(const kq_qplan *p, const kq_qmodel *m, const kq_tensor_info *t,
                           int64_t i_attn_v, int *type, const char **why);

/* attn_v, attn_qkv or attn_kv_b: the tensors llama.cpp's mixes treat as
 * value projections. */
int kq_qplan_is_attn_v(const char *name);

/* Fills *m from the file's metadata and tensor names. */
void kq_qmodel_read(const kq_gguf *g, kq_qmodel *m);

/* N of a "blk.N." name, or -1 if the name has no such prefix. *rest gets the
 * part after "blk.N." when non-NULL. */
int64_t kq_qplan_layer_of(const char *name, const char **rest);

#endif
