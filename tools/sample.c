/* kq sample: a small model layer written through kquant's own writer and
 * quantizers (Q4_K_M-style mix, an expert stack, norms, a token list), so
 * that a fresh machine has a GGUF file to read without downloading one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kquant.h"
#include "kq.h"

#define HIDDEN 512
#define FFN 1536
#define EXPERTS 8
#define EXPERT_FFN 256
#define VOCAB 64

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;

static float rand_normal(void)
{
    /* xorshift64* then Box-Muller: deterministic, so every sample file is the same. */
    double u[2];
    for (int i = 0; i < 2; i++) {
        g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
        u[i] = (double)((g_rng * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
    }
    if (u[0] < 1e-300) u[0] = 1e-300;
    return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static int add_weight(kq_gguf_writer *w, const char *name, int type, int64_t n_rows,
                      int64_t n_cols, int64_t n_stack)
{
    size_t row;
    if (kq_row_size(type, n_cols, &row) != KQ_OK) return kq_tool_error("sample", name);
    int64_t rows = n_rows * n_stack;
    size_t nbytes = row * (size_t)rows;
    float *src = malloc((size_t)(rows * n_cols) * sizeof *src);
    void *dst = malloc(nbytes);
    int rc = 0;
    if (!src || !dst) {
        fprintf(stderr, "kq sample: out of memory\n");
        rc = 1;
    } else {
        float scale = 1.0f / sqrtf((float)n_cols);
        for (int64_t i = 0; i < rows * n_cols; i++) src[i] = rand_normal() * scale;
        int64_t ne[3] = {n_cols, n_rows, n_stack};
        if (kq_quantize(type, src, rows, n_cols, dst, nbytes) != KQ_OK ||
            kq_gguf_writer_add_tensor(w, name, type, n_stack > 1 ? 3 : (n_rows > 1 ? 2 : 1), ne,
                                      dst, nbytes) != KQ_OK)
            rc = kq_tool_error("sample", name);
    }
    free(src);
    free(dst);
    return rc;
}

static int add_metadata(kq_gguf_writer *w)
{
    uint32_t u;
    float f = 1e-5f;
    const char *arch = "llama", *name = "kquant sample layer";
    int rc = kq_gguf_writer_set_string(w, "general.architecture", arch, strlen(arch)) ||
             kq_gguf_writer_set_string(w, "general.name", name, strlen(name));
    u = 1, rc = rc || kq_gguf_writer_set(w, "llama.block_count", KQ_GGUF_U32, &u);
    u = HIDDEN, rc = rc || kq_gguf_writer_set(w, "llama.embedding_length", KQ_GGUF_U32, &u);
    u = FFN, rc = rc || kq_gguf_writer_set(w, "llama.feed_forward_length", KQ_GGUF_U32, &u);
    u = EXPERTS, rc = rc || kq_gguf_writer_set(w, "llama.expert_count", KQ_GGUF_U32, &u);
    u = 2, rc = rc || kq_gguf_writer_set(w, "llama.expert_used_count", KQ_GGUF_U32, &u);
    rc = rc || kq_gguf_writer_set(w, "llama.attention.layer_norm_rms_epsilon", KQ_GGUF_F32, &f);
    u = 15, rc = rc || kq_gguf_writer_set(w, "general.file_type", KQ_GGUF_U32, &u);
    char words[VOCAB][8];
    const char *tokens[VOCAB];
    size_t lens[VOCAB];
    int32_t types[VOCAB];
    for (int i = 0; i < VOCAB; i++) {
        lens[i] = (size_t)snprintf(words[i], sizeof words[i], "tok%d", i);
        tokens[i] = words[i];
        types[i] = i < 3 ? 3 : 1;
    }
    rc = rc || kq_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", tokens, lens, VOCAB);
    rc = rc || kq_gguf_writer_set_array(w, "tokenizer.ggml.token_type", KQ_GGUF_I32, types, VOCAB);
    return rc ? kq_tool_error("sample", "metadata") : 0;
}

int kq_cmd_sample(int argc, char **argv)
{
    const char *out = NULL, *model = NULL;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end || !*argv[i]) out = NULL, argc = -1;
        } else if (argv[i][0] != '-' && !out) out = argv[i];
        else argc = -1;
    }
    if (argc < 0 || !out || (!model && argc != 2)) {
        fprintf(stderr, "usage: kq sample OUT.gguf              a small sample layer\n"
                        "       kq sample OUT.gguf --model NAME [--seed N]\n"
                        "                                       a whole model, random weights\n"
                        "                                       (gemma3-270m, llama3-8b)\n");
        return 2;
    }
    if (model) return kq_cmd_sample_model(out, model, seed);
    kq_gguf_writer *w = NULL;
    if (kq_gguf_writer_new(3, &w) != KQ_OK) return kq_tool_error("sample", "writer");
    int rc = add_metadata(w);
    rc = rc || add_weight(w, "token_embd.weight", KQ_TYPE_F16, VOCAB, HIDDEN, 1);
    rc = rc || add_weight(w, "blk.0.attn_norm.weight", KQ_TYPE_F32, 1, HIDDEN, 1);
    rc = rc || add_weight(w, "blk.0.attn_q.weight", KQ_TYPE_Q4_K, HIDDEN, HIDDEN, 1);
    rc = rc || add_weight(w, "blk.0.attn_k.weight", KQ_TYPE_Q4_K, HIDDEN / 4, HIDDEN, 1);
    rc = rc || add_weight(w, "blk.0.attn_v.weight", KQ_TYPE_Q6_K, HIDDEN / 4, HIDDEN, 1);
    rc = rc || add_weight(w, "blk.0.attn_output.weight", KQ_TYPE_Q4_K, HIDDEN, HIDDEN, 1);
    rc = rc || add_weight(w, "blk.0.ffn_gate.weight", KQ_TYPE_Q4_K, FFN, HIDDEN, 1);
    rc = rc || add_weight(w, "blk.0.ffn_up.weight", KQ_TYPE_Q5_K, FFN, HIDDEN, 1);
    rc = rc || add_weight(w, "blk.0.ffn_down.weight", KQ_TYPE_Q6_K, HIDDEN, FFN, 1);
    rc = rc || add_weight(w, "blk.0.ffn_up_exps.weight", KQ_TYPE_Q8_0, EXPERT_FFN, HIDDEN, EXPERTS);
    rc = rc || add_weight(w, "blk.0.ffn_down_exps.weight", KQ_TYPE_Q4_0, HIDDEN, EXPERT_FFN,
                          EXPERTS);
    rc = rc || add_weight(w, "output.weight", KQ_TYPE_BF16, VOCAB, HIDDEN, 1);
    if (!rc && kq_gguf_writer_save(w, out) != KQ_OK) rc = kq_tool_error("sample", out);
    kq_gguf_writer_free(w);
    if (!rc) printf("kq sample: wrote %s\n", out);
    return rc;
}
