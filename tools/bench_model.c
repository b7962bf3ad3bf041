/* What `kq bench` runs: the built-in model layers, --shape ops, or the
 * tensors of a GGUF file grouped by shape.
 *
 * Built-in weights go through the real file path: random rows quantized by
 * our own quantizers, written with our GGUF writer to a temporary file, read
 * back and loaded zero-copy from its mapping. Each op gets enough copies (a
 * model's layers) that rotating through them reads more than the largest
 * last-level cache in the run, so no timed call finds its weights cached.
 * Rows are drawn at random from a pool of distinct quantized rows per (type,
 * row length): quantizing every row of every copy (a billion weights at a few
 * million a second) would dominate the run, and a wrong row, block or expert
 * still shows against cpu-ref, since neighbouring rows differ. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "kq.h"
#include "print_escaped.h"
#include "row_pool.h"

#define MAX_COPIES 256

typedef struct tensor_spec {
    const char *role; /* "attn_q"; the file name is <prefix>.blk.<copy>.<role>.weight */
    const char *type;
    int64_t n, k, experts, top_k;
    int per_slot, sums;
} tensor_spec;

typedef struct model_spec {
    const char *name, *prefix;
    int64_t layers;
    const tensor_spec *tensors;
    int n_tensors;
    /* fused groups: indices into tensors, -1 terminated; a SwiGLU group is
     * gate then up, computed as silu(gate x) * (up x) in one call */
    int fused[4][BENCH_MAX_PARTS + 1];
    const char *fused_role[4];
    int fused_swiglu[4];
    int fused_sums[4];
    int n_fused;
} model_spec;

/* Llama-3-8B in the Q4_K_M mix as llama.cpp writes its middle layers:
 * attn_v and ffn_down in Q6_K, the rest Q4_K. */
static const tensor_spec llama3_8b[] = {
    {"attn_q", "q4_K", 4096, 4096, 0, 0, 0, SUM_SEPARATE},
    {"attn_k", "q4_K", 1024, 4096, 0, 0, 0, SUM_SEPARATE},
    {"attn_v", "q6_K", 1024, 4096, 0, 0, 0, SUM_SEPARATE},
    {"attn_output", "q4_K", 4096, 4096, 0, 0, 0, SUM_SEPARATE | SUM_FUSED},
    {"ffn_gate", "q4_K", 14336, 4096, 0, 0, 0, SUM_SEPARATE},
    {"ffn_up", "q4_K", 14336, 4096, 0, 0, 0, SUM_SEPARATE},
    {"ffn_down", "q6_K", 4096, 14336, 0, 0, 0, SUM_SEPARATE | SUM_FUSED},
};

/* Qwen3-30B-A3B's MoE block: 128 experts, 8 per token. gate and up take the
 * token's one row for all its slots; down takes each slot's own row. */
static const tensor_spec qwen3_30b_a3b[] = {
    {"ffn_gate_exps", "q4_K", 768, 2048, 128, 8, 0, SUM_SEPARATE},
    {"ffn_up_exps", "q4_K", 768, 2048, 128, 8, 0, SUM_SEPARATE},
    {"ffn_down_exps", "q6_K", 2048, 768, 128, 8, 1, SUM_SEPARATE | SUM_FUSED},
};

/* The fused summary of a layer counts what an engine would call: q/k/v in
 * one call, gate/up/SiLU in one call (the plain fused gate/up is shown for
 * comparison), then o and down. */
static const model_spec builtin_models[] = {
    {"llama3-8b", "llama", 32, llama3_8b, 7,
     {{0, 1, 2, -1}, {4, 5, -1}, {4, 5, -1}},
     {"attn_qkv (fused)", "ffn_gate_up (fused)", "ffn_swiglu (fused)"},
     {0, 0, 1},
     {SUM_FUSED, 0, SUM_FUSED},
     3},
    {"qwen3-30b-a3b", "qwen3moe", 48, qwen3_30b_a3b, 3,
     {{0, 1, -1}},
     {"ffn_swiglu_exps"},
     {1},
     {SUM_FUSED},
     1},
};

/* ---------------------------------------------------------------- helpers */

double bench_now(void);

uint64_t bench_rand(uint64_t *s)
{
    /* xorshift64*: fast, and plenty for test data */
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

float bench_normal(uint64_t *s)
{
    double u = ((double)(bench_rand(s) >> 11) + 0.5) * 0x1.0p-53;
    double v = (double)(bench_rand(s) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static char *dup_printf(const char *fmt, const char *a, int copy, const char *b)
{
    char buf[160];
    snprintf(buf, sizeof buf, fmt, a, copy, b);
    return strdup(buf);
}

static int add_op(bench_plan *p, const bench_op *op)
{
    bench_op *ops = realloc(p->ops, (size_t)(p->n_ops + 1) * sizeof *ops);
    if (!ops) return -1;
    p->ops = ops;
    p->ops[p->n_ops++] = *op;
    return 0;
}

static int copies_for(size_t bytes, unsigned long long rotate_bytes)
{
    if (bytes == 0) return 1;
    unsigned long long c = (rotate_bytes + bytes - 1) / bytes;
    return c < 1 ? 1 : c > MAX_COPIES ? MAX_COPIES : (int)c;
}

/* Bytes of one copy of a tensor (all experts), 0 for a bad type or size. */
static size_t spec_bytes(const tensor_spec *s)
{
    kq_type type;
    size_t row;
    if (kq_type_from_name(s->type, &type) || kq_row_size(type, s->k, &row)) return 0;
    return row * (size_t)(s->n * (s->experts ? s->experts : 1));
}

/* ---------------------------------------------------------------- writing */

typedef struct wtensor {
    const char *prefix;
    tensor_spec spec;
    int copies;
} wtensor;

static int write_and_open(bench_plan *p, const wtensor *ts, int n, const bench_options *o)
{
    kq_gguf_writer *w = NULL;
    row_pools ps = {0};
    uint64_t rng = o->seed ^ 0x5DEECE66Dull;
    int rc = 1;
    char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/kq-bench-XXXXXX.gguf", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemps(path, 5);
    if (fd < 0) {
        fprintf(stderr, "kq bench: cannot create a temporary file %s\n", path);
        return 1;
    }
    close(fd);
    if (kq_gguf_writer_new(3, &w)) goto fail_lib;
    const char *arch = "kq-bench";
    if (kq_gguf_writer_set_string(w, "general.architecture", arch, strlen(arch)) ||
        kq_gguf_writer_set_string(w, "general.name", "kq bench built-in layers", 24))
        goto fail_lib;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const tensor_spec *s = &ts[i].spec;
        int type;
        if (kq_type_from_name(s->type, (kq_type *)&type)) goto fail_lib;
        row_pool *rp = row_pool_get(&ps, type, s->k, &rng);
        if (!rp) goto fail_mem;
        int64_t rows = s->n * (s->experts ? s->experts : 1);
        uint8_t *bytes = row_pool_tensor(rp, rows, &rng);
        if (!bytes) goto fail_mem;
        for (int c = 0; c < ts[i].copies; c++) {
            char name[160];
            snprintf(name, sizeof name, "%s.blk.%d.%s.weight", ts[i].prefix, c, s->role);
            int64_t ne[3] = {s->k, s->n, s->experts};
            if (kq_gguf_writer_add_tensor(w, name, type, s->experts ? 3 : 2, ne, bytes,
                                          (size_t)rows * rp->row_size)) {
                free(bytes);
                goto fail_lib;
            }
            total += (size_t)rows * rp->row_size;
        }
        free(bytes);
    }
    if (kq_gguf_writer_save(w, path) || kq_gguf_open(path, &p->gguf)) goto fail_lib;
    snprintf(p->source, sizeof p->source,
             "built-in weights, %.0f MB through a temporary GGUF file", (double)total * 1e-6);
    rc = 0;
    goto done;
fail_mem:
    fprintf(stderr, "kq bench: out of memory building the weights\n");
    goto done;
fail_lib:
    kq_tool_error("bench", "writing the built-in weights");
done:
    /* The mapping outlives the name: nothing is left behind, even on a crash. */
    unlink(path);
    kq_gguf_writer_free(w);
    row_pools_free(&ps);
    return rc;
}

/* ---------------------------------------------------------------- plans */

static int op_from_tensors(bench_op *op, const char *name, const char *model, const wtensor *parts,
                           int n_parts, int copies, int sums)
{
    memset(op, 0, sizeof *op);
    snprintf(op->name, sizeof op->name, "%s", name);
    snprintf(op->model, sizeof op->model, "%s", model);
    op->k = parts[0].spec.k;
    op->experts = parts[0].spec.experts;
    op->top_k = parts[0].spec.top_k;
    op->per_slot = parts[0].spec.per_slot;
    op->n_parts = n_parts;
    op->n_copies = copies;
    op->sums = sums;
    op->count = 1;
    op->names = calloc((size_t)copies * (size_t)n_parts, sizeof *op->names);
    if (!op->names) return -1;
    for (int i = 0; i < n_parts; i++) {
        const tensor_spec *s = &parts[i].spec;
        size_t bytes = spec_bytes(s);
        if (!bytes) return -1;
        op->n += s->n;
        op->bytes += bytes;
        if (i == 0 || !strstr(op->type, s->type)) {
            size_t len = strlen(op->type);
            snprintf(op->type + len, sizeof op->type - len, "%s%s", i ? "+" : "", s->type);
        }
        for (int c = 0; c < copies; c++)
            if (!(op->names[c * n_parts + i] =
                      dup_printf("%s.blk.%d.%s.weight", parts[i].prefix, c, s->role)))
                return -1;
    }
    return 0;
}

static int plan_from_specs(bench_plan *p, const bench_options *o, wtensor *ts, int n,
                           const model_spec *const *models, int n_models,
                           unsigned long long rotate_bytes)
{
    for (int i = 0; i < n; i++) {
        size_t bytes = spec_bytes(&ts[i].spec);
        if (!bytes) return kq_tool_error("bench", ts[i].spec.type);
        ts[i].copies = copies_for(bytes, rotate_bytes);
    }
    if (write_and_open(p, ts, n, o)) return 1;
    int t = 0;
    for (int mi = 0; mi < n_models; mi++) {
        const model_spec *ms = models[mi];
        const wtensor *mt = ts + t;
        for (int i = 0; i < ms->n_tensors; i++) {
            bench_op op;
            if (op_from_tensors(&op, mt[i].spec.role, ms->name, &mt[i], 1, mt[i].copies,
                                mt[i].spec.sums) ||
                add_op(p, &op))
                goto oom;
        }
        for (int f = 0; f < ms->n_fused; f++) {
            wtensor parts[BENCH_MAX_PARTS];
            int np = 0, copies = MAX_COPIES;
            size_t bytes = 0;
            for (; ms->fused[f][np] >= 0; np++) {
                parts[np] = mt[ms->fused[f][np]];
                if (parts[np].copies < copies) copies = parts[np].copies;
                bytes += spec_bytes(&parts[np].spec);
            }
            bench_op op;
            int want = copies_for(bytes, rotate_bytes);
            if (op_from_tensors(&op, ms->fused_role[f], ms->name, parts, np,
                                want < copies ? want : copies, ms->fused_sums[f]))
                goto oom;
            op.swiglu = ms->fused_swiglu[f];
            if (op.swiglu && op.experts) op.n = parts[0].spec.n; /* rows of each stack */
            if (add_op(p, &op)) goto oom;
        }
        snprintf(p->models[p->n_models].name, sizeof p->models[0].name, "%s", ms->name);
        p->models[p->n_models++].layers = ms->layers;
        t += ms->n_tensors;
    }
    return 0;
oom:
    fprintf(stderr, "kq bench: out of memory\n");
    return 1;
}

int bench_plan_builtin(bench_plan *p, const bench_options *o, unsigned long long rotate_bytes)
{
    memset(p, 0, sizeof *p);
    wtensor ts[16];
    int n = 0;
    const model_spec *models[2];
    for (int mi = 0; mi < 2; mi++) {
        models[mi] = &builtin_models[mi];
        for (int i = 0; i < builtin_models[mi].n_tensors; i++)
            ts[n++] = (wtensor){builtin_models[mi].prefix, builtin_models[mi].tensors[i], 0};
    }
    return plan_from_specs(p, o, ts, n, models, 2, rotate_bytes);
}

/* The weight types the library computes, as kq_type_is_supported says:
 * "q4_0, q4_1, ..." (no list to keep in step with the formats). */
static const char *supported_types(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int t = 0; t < 256 && used < cap; t++) {
        if (!kq_type_is_supported(t)) continue;
        int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", kq_type_name(t));
        if (n < 0) break;
        used += (size_t)n;
    }
    return buf;
}

/* "q4_K:14336x4096" or "q4_K:768x2048:128/8". */
static int parse_shape(const char *text, tensor_spec *s, char *type_buf, size_t cap)
{
    const char *colon = strchr(text, ':');
    if (!colon || (size_t)(colon - text) >= cap) return -1;
    memcpy(type_buf, text, (size_t)(colon - text));
    type_buf[colon - text] = '\0';
    kq_type type;
    if (kq_type_from_name(type_buf, &type) || !kq_type_is_supported(type)) return -1;
    snprintf(type_buf, cap, "%s", kq_type_name(type));
    long long n = 0, k = 0, e = 0, top = 0;
    int used = 0;
    if (sscanf(colon + 1, "%lldx%lld%n", &n, &k, &used) != 2) return -1;
    const char *rest = colon + 1 + used;
    if (*rest == ':') {
        int u2 = 0;
        if (sscanf(rest + 1, "%lld/%lld%n", &e, &top, &u2) != 2 || rest[1 + u2] != '\0') return -1;
        if (e < 1 || top < 1 || top > e) return -1;
    } else if (*rest != '\0') {
        return -1;
    }
    if (n < 1 || k < 1 || n > (1ll << 24) || k > (1ll << 24)) return -1;
    size_t row;
    if (kq_row_size(type, k, &row)) return -1;
    *s = (tensor_spec){"", type_buf, n, k, e, top, 0, SUM_SEPARATE};
    return 0;
}

int bench_plan_shapes(bench_plan *p, const bench_options *o, unsigned long long rotate_bytes)
{
    memset(p, 0, sizeof *p);
    static char types[64][16], roles[64][64];
    wtensor ts[64];
    for (int i = 0; i < o->n_shapes; i++) {
        if (parse_shape(o->shapes[i], &ts[i].spec, types[i], sizeof types[i])) {
            char esc[KQ_ESC_CAP], list[512];
            fprintf(stderr,
                    "kq bench: --shape '%s': expected TYPE:NxK or TYPE:NxK:E/TOPK with a "
                    "supported type (%s), K a multiple of its block and 1 <= TOPK <= E\n",
                    kq_escape_str(esc, sizeof esc, o->shapes[i]),
                    supported_types(list, sizeof list));
            return 2;
        }
        snprintf(roles[i], sizeof roles[i], "%s", o->shapes[i]);
        ts[i].spec.role = roles[i];
        ts[i].prefix = "shape";
    }
    /* Every shape is its own "model" of one tensor, with no summary. */
    for (int i = 0; i < o->n_shapes; i++) ts[i].copies = copies_for(spec_bytes(&ts[i].spec), rotate_bytes);
    if (write_and_open(p, ts, o->n_shapes, o)) return 1;
    for (int i = 0; i < o->n_shapes; i++) {
        bench_op op;
        if (op_from_tensors(&op, o->shapes[i], "", &ts[i], 1, ts[i].copies, 0) || add_op(p, &op)) {
            fprintf(stderr, "kq bench: out of memory\n");
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- a file */

/* "blk.12.attn_q.weight" -> "attn_q", escaped: it is printed, and comes
 * from the file. */
static void role_of(const char *name, char *out, size_t cap)
{
    const char *s = name;
    if (!strncmp(s, "blk.", 4)) {
        const char *dot = strchr(s + 4, '.');
        if (dot) s = dot + 1;
    }
    size_t len = strlen(s);
    if (len > 7 && !strcmp(s + len - 7, ".weight")) len -= 7;
    kq_escape(out, cap, s, len, KQ_ESC_SHOW, 0);
}

int bench_plan_file(bench_plan *p, const char *path)
{
    memset(p, 0, sizeof *p);
    p->from_file = 1;
    if (kq_gguf_open(path, &p->gguf)) return kq_tool_error("bench", path);
    kq_escape(p->source, sizeof p->source, path, strlen(path), KQ_ESC_SHOW * 2, 0);
    int64_t top_k = 0, layers = 0;
    const char *arch = NULL;
    size_t arch_len = 0;
    /* The arch names keys only if it is short (a longer one is no real
     * architecture, and "%.*s" takes an int). */
    if (kq_gguf_get_string(p->gguf, "general.architecture", &arch, &arch_len) == KQ_OK &&
        arch_len <= 64) {
        char key[160];
        snprintf(key, sizeof key, "%.*s.expert_used_count", (int)arch_len, arch);
        if (kq_gguf_get_int(p->gguf, key, &top_k)) top_k = 0;
        snprintf(key, sizeof key, "%.*s.block_count", (int)arch_len, arch);
        if (kq_gguf_get_int(p->gguf, key, &layers)) layers = 0;
    }
    int64_t nt = kq_gguf_n_tensors(p->gguf);
    for (int64_t i = 0; i < nt; i++) {
        kq_tensor_info ti;
        if (kq_gguf_tensor(p->gguf, i, &ti)) continue;
        if (ti.n_dims < 2 || ti.n_dims > 3 || !kq_type_is_supported(ti.type) ||
            ti.type == KQ_TYPE_F32 || ti.type == KQ_TYPE_F16 || ti.type == KQ_TYPE_BF16)
            continue;
        int64_t e = ti.n_dims == 3 ? ti.ne[2] : 0;
        char role[64];
        role_of(ti.name, role, sizeof role);
        int per_slot = e && strstr(role, "down") != NULL;
        bench_op *op = NULL;
        for (int j = 0; j < p->n_ops; j++) {
            bench_op *q = &p->ops[j];
            if (!strcmp(q->type, kq_type_name(ti.type)) && q->n == ti.ne[1] && q->k == ti.ne[0] &&
                q->experts == e && q->per_slot == per_slot)
                op = q;
        }
        if (!op) {
            bench_op fresh;
            memset(&fresh, 0, sizeof fresh);
            snprintf(fresh.name, sizeof fresh.name, "%s", role);
            snprintf(fresh.type, sizeof fresh.type, "%s", kq_type_name(ti.type));
            fresh.n = ti.ne[1], fresh.k = ti.ne[0], fresh.experts = e;
            fresh.top_k = e ? (top_k > 0 && top_k <= e ? top_k : (e < 8 ? e : 8)) : 0;
            fresh.per_slot = per_slot;
            fresh.n_parts = 1;
            fresh.bytes = (size_t)ti.nbytes;
            fresh.sums = SUM_SEPARATE;
            if (add_op(p, &fresh)) goto oom;
            op = &p->ops[p->n_ops - 1];
        } else if (!strstr(op->name, role) && strlen(op->name) + strlen(role) + 2 < sizeof op->name) {
            strcat(op->name, ",");
            strcat(op->name, role);
        }
        char **names = realloc(op->names, (size_t)(op->n_copies + 1) * sizeof *names);
        if (!names) goto oom;
        op->names = names;
        if (!(op->names[op->n_copies] = strdup(ti.name))) goto oom;
        op->n_copies++;
        op->count++;
    }
    if (p->n_ops == 0) {
        fprintf(stderr, "kq bench: %s has no 2-D or 3-D tensor of a supported quantized type\n",
                p->source);
        return 1;
    }
    if (arch)
        kq_escape(p->models[0].name, sizeof p->models[0].name, arch, arch_len, 8, 0);
    else
        snprintf(p->models[0].name, sizeof p->models[0].name, "model");
    p->models[0].layers = layers;
    p->n_models = 1;
    return 0;
oom:
    fprintf(stderr, "kq bench: out of memory\n");
    return 1;
}

void bench_plan_free(bench_plan *p)
{
    for (int i = 0; i < p->n_ops; i++) {
        for (int c = 0; c < p->ops[i].n_copies * p->ops[i].n_parts; c++) free(p->ops[i].names[c]);
        free(p->ops[i].names);
    }
    free(p->ops);
    kq_gguf_close(p->gguf);
    memset(p, 0, sizeof *p);
}
