/* kq bench-model: a whole model's prefill and decode rates, the tests of
 * llama.cpp's `llama-bench -p 512 -n 128`: a 512-token prompt in one batch
 * from an empty cache, and 128 tokens decoded one at a time from an empty
 * cache, each repeated and reported as the mean (and spread) in tokens/s.
 * Random token ids: the rate does not depend on which tokens they are.
 * Decode is put beside the device's measured read bandwidth: the bytes a
 * decoded token reads (every weight it touches, and its share of the KV
 * cache) over the measured time give the share of the bandwidth used.
 * --parallel B adds the decode of B sequences at once (B tokens a step, one
 * of each, as `kq run --parallel B` decodes), reported as the aggregate
 * rate and its ratio to the one-sequence rate; no sampling is timed, as in
 * llama-bench. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ceilings.h"
#include "kq.h"
#include "kquant.h"
#include "kquant_model.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct mb_opts {
    const char *model, *backend;
    int threads, n_prompt, n_gen, reps, parallel;
} mb_opts;

static void mb_usage(FILE *f)
{
    fprintf(f, "usage: kq bench-model MODEL.gguf [--backend SPEC] [--threads N] [-p 512] [-n 128]\n"
               "                      [-r REPS] [--parallel B]\n");
}

static int mb_args(int argc, char **argv, mb_opts *o)
{
    *o = (mb_opts){.backend = "cpu", .n_prompt = 512, .n_gen = 128, .reps = 3, .parallel = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            o->model = a;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            mb_usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) return -1;
        const char *v = argv[++i];
        long n = strtol(v, NULL, 10);
        if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) o->threads = (int)n;
        else if (!strcmp(a, "-p")) o->n_prompt = (int)n;
        else if (!strcmp(a, "-n")) o->n_gen = (int)n;
        else if (!strcmp(a, "-r")) o->reps = (int)n;
        else if (!strcmp(a, "--parallel")) o->parallel = (int)n;
        else return -1;
    }
    if (!o->model || o->n_prompt < 1 || o->n_prompt > 65536 || o->n_gen < 1 ||
        o->n_gen > 65536 || o->reps < 1 || o->reps > 100 || o->threads < 0 ||
        o->parallel < 1 || o->parallel > 256)
        return -1;
    return 0;
}

static void mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

/* One prefill of n tokens from an empty cache, logits of the last only. */
static kq_status prefill(kq_model *m, const int32_t *tok, int32_t *pos, uint8_t *want, int n,
                         double *secs)
{
    kq_model_seq_reset(m, 0);
    for (int i = 0; i < n; i++) {
        pos[i] = i;
        want[i] = i == n - 1;
    }
    double t0 = now_s();
    kq_status st = kq_model_forward(m, tok, pos, NULL, n, want, NULL);
    *secs = now_s() - t0;
    return st;
}

/* n decode steps of one token each from an empty cache. The logits land in
 * the model's own buffer (page-locked on a device backend, as llama.cpp's
 * output buffer is on CUDA), so the copy off the device is timed as a
 * serving engine would pay it. */
static kq_status decode(kq_model *m, const int32_t *tok, int n, double *secs)
{
    kq_model_seq_reset(m, 0);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        int32_t p = i;
        kq_status st = kq_model_forward(m, tok + i, &p, NULL, 1, NULL, NULL);
        if (st != KQ_OK) return st;
    }
    *secs = now_s() - t0;
    return KQ_OK;
}

/* n decode steps of B tokens, one of each of B sequences, from an empty
 * cache; tok has n + B - 1 ids, seq's step uses B of them. */
static kq_status decode_parallel(kq_model *m, const int32_t *tok, int n, int B, int32_t *pos,
                                 int32_t *seq, double *secs)
{
    kq_model_seq_reset(m, -1);
    for (int b = 0; b < B; b++) seq[b] = b;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        for (int b = 0; b < B; b++) pos[b] = i;
        kq_status st = kq_model_forward(m, tok + i, pos, seq, B, NULL, NULL);
        if (st != KQ_OK) return st;
    }
    *secs = now_s() - t0;
    return KQ_OK;
}

int kq_cmd_bench_model(int argc, char **argv)
{
    mb_opts o;
    if (mb_args(argc, argv, &o)) {
        mb_usage(stderr);
        return 2;
    }
    kq_backend *b = NULL;
    kq_model *m = NULL;
    int rc = 1;
    if (kq_tool_open_backend(o.backend, o.threads, &b) != KQ_OK)
        return kq_tool_error("bench-model", o.backend);
    kq_model_params mp = {.n_ctx = (o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen),
                          .n_seq = o.parallel};
    int32_t *tok = NULL, *pos = NULL, *seq = NULL;
    uint8_t *want = NULL;
    double *tp = NULL, *tg = NULL, *tb = NULL;
    if (kq_model_open(b, o.model, &mp, &m) != KQ_OK) {
        rc = kq_tool_error("bench-model", o.model);
        goto out;
    }
    kq_model_info info;
    kq_model_get_info(m, &info);
    int n_max = (o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen) + o.parallel;
    tok = malloc((size_t)n_max * sizeof *tok);
    pos = malloc((size_t)n_max * sizeof *pos);
    seq = malloc((size_t)o.parallel * sizeof *seq);
    want = malloc((size_t)n_max);
    tp = malloc((size_t)o.reps * sizeof *tp);
    tg = malloc((size_t)o.reps * sizeof *tg);
    tb = malloc((size_t)o.reps * sizeof *tb);
    if (!tok || !pos || !seq || !want || !tp || !tg || !tb) {
        fprintf(stderr, "kq bench-model: out of memory\n");
        goto out;
    }
    srand(1234);
    for (int i = 0; i < n_max; i++) tok[i] = rand() % info.n_vocab;

    kq_ceilings ceil;
    int have_ceil = kq__backend_ceilings(b, &ceil) == KQ_OK;
    double secs;
    /* warm-up: page the weights in and start the workers */
    if (prefill(m, tok, pos, want, o.n_prompt < 16 ? o.n_prompt : 16, &secs) ||
        decode(m, tok, 2, &secs)) {
        rc = kq_tool_error("bench-model", "warm-up");
        goto out;
    }
    for (int r = 0; r < o.reps; r++) {
        if (prefill(m, tok, pos, want, o.n_prompt, &secs)) {
            rc = kq_tool_error("bench-model", "prefill");
            goto out;
        }
        tp[r] = o.n_prompt / secs;
    }
    for (int r = 0; r < o.reps; r++) {
        if (decode(m, tok, o.n_gen, &secs)) {
            rc = kq_tool_error("bench-model", "decode");
            goto out;
        }
        tg[r] = o.n_gen / secs;
    }
    for (int r = 0; o.parallel > 1 && r < o.reps; r++) {
        if (decode_parallel(m, tok, o.n_gen, o.parallel, pos, seq, &secs)) {
            rc = kq_tool_error("bench-model", "parallel decode");
            goto out;
        }
        tb[r] = (double)o.n_gen * o.parallel / secs;
    }
    double pm, ps, gm, gs;
    mean_sd(tp, o.reps, &pm, &ps);
    mean_sd(tg, o.reps, &gm, &gs);
    /* KV bytes per decoded token: keys and values of every layer up to its
     * position, averaged over the n_gen positions (f32 cache). */
    double kv_bytes = 2.0 * info.n_layer * info.n_head_kv * info.head_dim * sizeof(float) *
                      (o.n_gen + 1) / 2.0;
    double bytes = (double)info.weight_bytes + kv_bytes;
    printf("model: %s (%s), %d layers, n_embd %d, vocab %d; backend %s (%s)\n", info.name,
           info.arch, info.n_layer, info.n_embd, info.n_vocab, o.backend, kq_backend_device(b));
    printf("| test | tokens/s | +- |\n|---|---|---|\n");
    printf("| pp%d | %.2f | %.2f |\n", o.n_prompt, pm, ps);
    printf("| tg%d | %.2f | %.2f |\n", o.n_gen, gm, gs);
    if (o.parallel > 1) {
        double bm, bs;
        mean_sd(tb, o.reps, &bm, &bs);
        printf("| tg%d x %d sequences (aggregate) | %.2f | %.2f |\n", o.n_gen, o.parallel, bm, bs);
        printf("%d sequences at once decode %.2fx the one-sequence rate\n", o.parallel, bm / gm);
    }
    printf("bytes read per decoded token: %.1f MB (weights %.1f MB, KV %.2f MB)", bytes / 1e6,
           info.weight_bytes / 1e6, kv_bytes / 1e6);
    if (have_ceil && ceil.read_gbs > 0)
        printf("; %.1f GB/s = %.0f%% of the measured read bandwidth %.1f GB/s\n", bytes * gm / 1e9,
               100.0 * bytes * gm / 1e9 / ceil.read_gbs, ceil.read_gbs);
    else
        printf("\n");
    uint64_t replays = kq_model_graph_replays(m);
    printf("passes replayed from a captured CUDA graph: %llu%s\n", (unsigned long long)replays,
           replays ? "" : " (host backend, MoE, KQ_GRAPH=0 or KQ_PROFILE)");
    rc = 0;
out:
    free(tok);
    free(pos);
    free(want);
    free(tp);
    free(tg);
    free(tb);
    free(seq);
    kq_model_free(m);
    kq_backend_close(b);
    return rc;
}
