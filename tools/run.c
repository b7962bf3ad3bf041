/* kq run: a prompt through a whole model. The prompt is prefilled in one
 * batched forward pass, then tokens are decoded one step at a time (one token
 * of every live sequence per step with --parallel) and streamed as they come;
 * the run ends with the prompt and decode rates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kq.h"
#include "kquant.h"
#include "kquant_model.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: kq run MODEL.gguf -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P]\n"
            "              [--seed S] [--backend cpu|cuda|SPEC] [--parallel B] [--threads N]\n"
            "              [--ctx N]\n"
            "  -n N          tokens to generate (default 64)\n"
            "  --temp T      0 (default): greedy; else sample at temperature T after\n"
            "                top-k (default 40) and top-p (default 0.95)\n"
            "  --seed S      generator seed (sequence b of --parallel uses S + b)\n"
            "  --parallel B  decode B independent sequences of the prompt at once\n"
            "  --threads N   cpu threads (cpu backend only)\n"
            "  --ctx N       KV cache positions per sequence (default: prompt + N)\n");
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

typedef struct run_opts {
    const char *model, *prompt, *backend;
    int n_gen, parallel, threads, ctx;
    kq_sampler_params sp;
} run_opts;

static int parse_args(int argc, char **argv, run_opts *o)
{
    *o = (run_opts){.backend = "cpu", .n_gen = 64, .parallel = 1,
                    .sp = {.temp = 0, .top_k = 40, .top_p = 0.95f, .seed = 42}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            exit(0);
        }
        if (a[0] != '-') {
            if (o->model) {
                fprintf(stderr, "kq run: a second model '%s'\n", a);
                return -1;
            }
            o->model = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "kq run: %s needs a value\n", a);
            return -1;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            o->prompt = val;
        } else if (!strcmp(a, "--backend")) {
            o->backend = val;
        } else if ((!strcmp(a, "-n") || !strcmp(a, "--n-predict")) && !parse_num(val, 0, 1 << 22, &v)) {
            o->n_gen = (int)v;
        } else if (!strcmp(a, "--temp") && !parse_num(val, 0, 1e6, &v)) {
            o->sp.temp = (float)v;
        } else if (!strcmp(a, "--top-k") && !parse_num(val, 0, 1 << 30, &v)) {
            o->sp.top_k = (int32_t)v;
        } else if (!strcmp(a, "--top-p") && !parse_num(val, 0, 1, &v)) {
            o->sp.top_p = (float)v;
        } else if (!strcmp(a, "--seed") && !parse_num(val, 0, 1.8e19, &v)) {
            o->sp.seed = (uint64_t)v;
        } else if (!strcmp(a, "--parallel") && !parse_num(val, 1, 1024, &v)) {
            o->parallel = (int)v;
        } else if ((!strcmp(a, "--threads") || !strcmp(a, "-t")) && !parse_num(val, 1, 4096, &v)) {
            o->threads = (int)v;
        } else if (!strcmp(a, "--ctx") && !parse_num(val, 1, 1 << 22, &v)) {
            o->ctx = (int)v;
        } else {
            fprintf(stderr, "kq run: bad option or value: %s %s\n", a, val);
            return -1;
        }
    }
    if (!o->model || !o->prompt) {
        fprintf(stderr, "kq run: a model and -p PROMPT are needed\n");
        return -1;
    }
    return 0;
}

/* "cpu" plus --threads becomes "cpu:threads=N"; a spec with options keeps them. */
kq_status kq_tool_open_backend(const char *spec, int threads, kq_backend **out)
{
    char buf[256];
    if (threads > 0 && (!strcmp(spec, "cpu") || !strcmp(spec, "cpu-ref"))) {
        snprintf(buf, sizeof buf, "%s:threads=%d", spec, threads);
        spec = buf;
    }
    return kq_backend_open(spec, out);
}

static void emit(const kq_model *m, int32_t id, FILE *f)
{
    char piece[256];
    size_t len;
    if (kq_model_token_to_piece(m, id, piece, sizeof piece, &len) == KQ_OK) fwrite(piece, 1, len, f);
}

typedef struct run_state {
    kq_model *m;
    kq_sampler **samplers;
    int32_t *tokens, *pos, *seq, *last, *n_done, *out_tokens;
    uint8_t *want, *live;
    const float *logits; /* the model's own (kq_model_logits): page-locked on a device */
} run_state;

static void free_state(run_state *s, int b)
{
    if (s->samplers)
        for (int i = 0; i < b; i++) kq_sampler_free(s->samplers[i]);
    free(s->samplers);
    free(s->tokens);
    free(s->pos);
    free(s->seq);
    free(s->last);
    free(s->n_done);
    free(s->out_tokens);
    free(s->want);
    free(s->live);
}

static int generate(const run_opts *o, kq_model *m, const int32_t *prompt, int64_t n_prompt)
{
    kq_model_info info;
    kq_model_get_info(m, &info);
    const int b = o->parallel, V = info.n_vocab;
    run_state s = {.m = m};
    int64_t batch = n_prompt * b > b ? n_prompt * b : b;
    s.samplers = calloc((size_t)b, sizeof *s.samplers);
    s.tokens = malloc((size_t)batch * sizeof(int32_t));
    s.pos = malloc((size_t)batch * sizeof(int32_t));
    s.seq = malloc((size_t)batch * sizeof(int32_t));
    s.want = malloc((size_t)batch);
    s.last = malloc((size_t)b * sizeof(int32_t));
    s.n_done = calloc((size_t)b, sizeof(int32_t));
    s.live = malloc((size_t)b);
    s.out_tokens = malloc(((size_t)b * (size_t)o->n_gen + 1) * sizeof(int32_t));
    int rc = 1;
    if (!s.samplers || !s.tokens || !s.pos || !s.seq || !s.want || !s.last || !s.n_done ||
        !s.live || !s.out_tokens) {
        fprintf(stderr, "kq run: out of memory\n");
        goto done;
    }
    for (int i = 0; i < b; i++) {
        kq_sampler_params sp = o->sp;
        sp.seed += (uint64_t)i;
        if (kq_sampler_new(&sp, V, &s.samplers[i]) != KQ_OK) {
            rc = kq_tool_error("run", "sampler");
            goto done;
        }
        s.live[i] = 1;
    }
    /* prefill: every sequence's copy of the prompt in one batch */
    for (int i = 0; i < b; i++)
        for (int64_t t = 0; t < n_prompt; t++) {
            int64_t k = i * n_prompt + t;
            s.tokens[k] = prompt[t];
            s.pos[k] = (int32_t)t;
            s.seq[k] = i;
            s.want[k] = t == n_prompt - 1;
        }
    double t0 = now_s();
    if (kq_model_forward(m, s.tokens, s.pos, s.seq, n_prompt * b, s.want, NULL) != KQ_OK ||
        !(s.logits = kq_model_logits(m, NULL))) {
        rc = kq_tool_error("run", "prefill");
        goto done;
    }
    double t_prefill = now_s() - t0;
    int64_t n_decoded = 0;
    double t1 = now_s();
    for (int step = 0; step < o->n_gen; step++) {
        int n_live = 0;
        for (int i = 0; i < b; i++) {
            if (!s.live[i]) continue;
            int32_t id;
            kq_sampler_sample(s.samplers[i], s.logits + (size_t)n_live * V, &id);
            n_live++;
            if (kq_model_is_eog(m, id)) {
                s.live[i] = 0;
                continue;
            }
            s.out_tokens[(size_t)i * o->n_gen + s.n_done[i]++] = id;
            s.last[i] = id;
            if (i == 0) {
                emit(m, id, stdout);
                fflush(stdout);
            }
        }
        int64_t k = 0;
        for (int i = 0; i < b; i++)
            if (s.live[i] && step + 1 < o->n_gen) {
                s.tokens[k] = s.last[i];
                s.pos[k] = kq_model_seq_len(m, i);
                s.seq[k] = i;
                s.want[k] = 1;
                k++;
            }
        if (k == 0) break;
        if (kq_model_forward(m, s.tokens, s.pos, s.seq, k, s.want, NULL) != KQ_OK ||
            !(s.logits = kq_model_logits(m, NULL))) {
            rc = kq_tool_error("run", "decode");
            goto done;
        }
        n_decoded += k;
    }
    double t_decode = now_s() - t1;
    printf("\n");
    for (int i = 1; i < b; i++) {
        printf("--- sequence %d:\n", i);
        for (int j = 0; j < s.n_done[i]; j++) emit(m, s.out_tokens[(size_t)i * o->n_gen + j], stdout);
        printf("\n");
    }
    fflush(stdout);
    int64_t generated = 0;
    for (int i = 0; i < b; i++) generated += s.n_done[i];
    fprintf(stderr,
            "\nkq run: %s on %s: prompt %lld tokens x %d in %.3f s (%.1f tokens/s), "
            "decode %lld forward tokens in %.3f s (%.1f tokens/s), %lld generated\n",
            info.arch, o->backend, (long long)n_prompt, b, t_prefill,
            (double)(n_prompt * b) / t_prefill, (long long)n_decoded, t_decode,
            t_decode > 0 ? (double)n_decoded / t_decode : 0.0, (long long)generated);
    const uint64_t replays = kq_model_graph_replays(m);
    if (replays)
        fprintf(stderr, "kq run: %llu passes replayed from a captured CUDA graph (KQ_GRAPH=0: none)\n",
                (unsigned long long)replays);
    rc = 0;
done:
    free_state(&s, b);
    return rc;
}

int kq_cmd_run(int argc, char **argv)
{
    run_opts o;
    if (parse_args(argc, argv, &o)) {
        run_usage(stderr);
        return 2;
    }
    kq_backend *be = NULL;
    kq_model *m = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int rc = 1;
    if (kq_tool_open_backend(o.backend, o.threads, &be) != KQ_OK)
        return kq_tool_error("run", o.backend);
    /* The cache holds the prompt and what follows: a token stands for at
     * least one byte of text, besides the few special ones added around it. */
    kq_model_params mp = {.n_ctx = o.ctx, .n_seq = o.parallel};
    if (!mp.n_ctx) {
        size_t want = strlen(o.prompt) + 8 + (size_t)o.n_gen;
        mp.n_ctx = want > (1 << 22) ? 1 << 22 : (int32_t)want;
    }
    if (kq_model_open(be, o.model, &mp, &m) != KQ_OK) {
        rc = kq_tool_error("run", o.model);
        goto out;
    }
    if (kq_model_tokenize(m, o.prompt, strlen(o.prompt), 1, 1, &prompt, &n_prompt) != KQ_OK) {
        rc = kq_tool_error("run", "tokenize");
        goto out;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "kq run: the prompt gave no tokens\n");
        goto out;
    }
    if ((int64_t)n_prompt + o.n_gen > mp.n_ctx) {
        fprintf(stderr, "kq run: prompt (%zu tokens) + %d do not fit the context of %d (--ctx)\n",
                n_prompt, o.n_gen, mp.n_ctx);
        goto out;
    }
    fputs(o.prompt, stdout);
    fflush(stdout);
    rc = generate(&o, m, prompt, (int64_t)n_prompt);
out:
    free(prompt);
    kq_model_free(m);
    kq_backend_close(be);
    return rc;
}
