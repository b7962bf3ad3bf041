/* kq quantize: a GGUF file of float weights rewritten with quantized ones.
 * Which tensor gets which type is in quantize_mix.c, the threads in
 * quantize_rows.c; this file reads, writes and reports. The output goes
 * through the library's writer, which saves to a temporary file and renames
 * it, so a failure never leaves a partial OUT. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kquant.h"
#include "kq.h"
#include "print_escaped.h"
#include "quantize_mix.h"
#include "quantize_rows.h"

/* llama.cpp's GGML_QNT_VERSION, which llama.cpp's quantizer records as
 * general.quantization_version in every file it writes. */
#define QNT_VERSION 2u

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kq quantize IN.gguf OUT.gguf TYPE [--threads N]\n"
            "  TYPE: a type (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, mxfp4, q3_K, q4_K, q5_K)\n"
            "        for every weight, or one of llama.cpp's mixes (q2_k, q3_k_m, q4_k_m,\n"
            "        q5_k_m, q6_k, iq4_xs): its base type, with more bits where llama.cpp\n"
            "        gives them (output.weight, value projections, ffn_down on some layers,\n"
            "        attn_output in q2_k and q3_k_m). Any case.\n"
            "  F32, F16 and BF16 tensors of two or more dimensions are quantized; 1-D\n"
            "  tensors, norms and the expert router stay as they are, tensors of other\n"
            "  types are copied. Rows that are not a multiple of 256 take llama.cpp's\n"
            "  fallback (q2_K/q3_K -> q4_0, q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0,\n"
            "  iq4_xs -> iq4_nl); rows not a multiple of 32 stay as they are. Inf or NaN\n"
            "  in a weight is an error. Metadata is copied and general.file_type set to\n"
            "  llama.cpp's value for the result. Each quantized tensor's RMSE against\n"
            "  its float weights is printed.\n"
            "  --threads N   threads quantizing each tensor's rows (default: all cores)\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- progress */

typedef struct progress {
    int on;               /* stderr is a terminal */
    uint64_t total;       /* weights to quantize in the whole file */
    uint64_t before;      /* weights of the tensors already finished */
    int64_t n_cols;       /* of the tensor in work, to turn rows into weights */
    const char *name;     /* of the tensor in work */
    double last;          /* when the bar was last drawn */
} progress;

static void progress_draw(progress *p, uint64_t done)
{
    enum { WIDTH = 30 };
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    if (frac > 1.0) frac = 1.0;
    int fill = (int)(frac * WIDTH + 0.5);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    /* The name is cut to what fits in 80 columns; \033[K clears the rest
     * of a longer previous line. */
    char esc[KQ_ESC_CAP];
    fprintf(stderr, "\r[%s] %5.1f%%  %.38s\033[K", bar, 100.0 * frac,
            p->name ? kq_escape_str(esc, sizeof esc, p->name) : "");
    fflush(stderr);
}

static void progress_rows(void *ctx, int64_t rows_done)
{
    progress *p = ctx;
    if (!p->on) return;
    double t = now_s();
    if (t - p->last < 0.1) return; /* ten redraws a second are plenty */
    p->last = t;
    progress_draw(p, p->before + (uint64_t)rows_done * (uint64_t)p->n_cols);
}

static void progress_end(progress *p)
{
    if (p->on) fputs("\r\033[K", stderr);
}

/* ---------------------------------------------------------------- plan */

/* One line of the summary: tensors and bytes per output type and action. */
typedef struct tally {
    int type;
    kq_qaction action;
    int64_t tensors;
    uint64_t bytes;
} tally;

typedef struct run_state {
    const char *in, *out;
    kq_qplan plan;
    int threads;
    kq_gguf *g;
    kq_gguf_writer *w;
    kq_qmodel model;
    tally tallies[64];
    int n_tallies;
    uint64_t bytes_in, bytes_out, weights_quantized;
    double worst_rel;         /* largest relative RMSE of a tensor */
    char worst_name[48];      /* its name, cut (the file is closed before the summary) */
    progress prog;
} run_state;

static void add_tally(run_state *s, int type, kq_qaction action, uint64_t bytes)
{
    int i = 0;
    while (i < s->n_tallies && !(s->tallies[i].type == type && s->tallies[i].action == action)) i++;
    if (i == s->n_tallies) {
        if (i == (int)(sizeof s->tallies / sizeof s->tallies[0])) return;
        s->tallies[s->n_tallies++] = (tally){type, action, 0, 0};
    }
    s->tallies[i].tensors++;
    s->tallies[i].bytes += bytes;
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "kq quantize: %s: %s\n", what, detail);
    return 1;
}

/* Rows of a tensor (every dimension but the first), checked for overflow
 * and against the size the file gives, though the reader checked it too:
 * every size that comes from a file is checked where it is used. */
static int tensor_rows(const kq_tensor_info *t, int64_t *rows, size_t *row_size)
{
    int64_t r = 1;
    for (int d = 1; d < 4; d++)
        if (t->ne[d] <= 0 || __builtin_mul_overflow(r, t->ne[d], &r)) return -1;
    size_t total;
    if (kq_row_size(t->type, t->ne[0], row_size) != KQ_OK ||
        __builtin_mul_overflow((size_t)r, *row_size, &total) || total != t->nbytes)
        return -1;
    *rows = r;
    return 0;
}

/* ---------------------------------------------------------------- metadata */

/* Copies every key in order. general.file_type and
 * general.quantization_version take their new values in place, or are
 * appended when the input lacks them; general.alignment is copied as is,
 * which makes the writer use it. */
static int copy_metadata(run_state *s)
{
    int have_ftype = 0, have_qv = 0;
    uint32_t qv = QNT_VERSION;
    for (int64_t i = 0; i < kq_gguf_n_kv(s->g); i++) {
        const char *key = kq_gguf_kv_key(s->g, i);
        kq_status st;
        if (!strcmp(key, "general.file_type")) {
            st = kq_gguf_writer_set(s->w, key, KQ_GGUF_U32, &s->plan.ftype);
            have_ftype = 1;
        } else if (!strcmp(key, "general.quantization_version")) {
            st = kq_gguf_writer_set(s->w, key, KQ_GGUF_U32, &qv);
            have_qv = 1;
        } else {
            st = kq_gguf_writer_set_value(s->w, key, kq_gguf_kv_value(s->g, i));
        }
        if (st != KQ_OK) return kq_tool_error("quantize", key);
    }
    if (!have_ftype &&
        kq_gguf_writer_set(s->w, "general.file_type", KQ_GGUF_U32, &s->plan.ftype) != KQ_OK)
        return kq_tool_error("quantize", "general.file_type");
    if (!have_qv && kq_gguf_writer_set(s->w, "general.quantization_version", KQ_GGUF_U32, &qv) !=
                        KQ_OK)
        return kq_tool_error("quantize", "general.quantization_version");
    return 0;
}

/* ---------------------------------------------------------------- tensors */

/* One line per quantized tensor: its RMSE against the float weights, and
 * relative to their RMS (a b-bit quantizer gives about 2^-b / 0.3). */
static void report_error(run_state *s, const kq_tensor_info *t, int type, const kq_qrows_error *e)
{
    const double rmse = e->n > 0 ? sqrt(e->sse / (double)e->n) : 0.0;
    const double rel = e->sum_x2 > 0 ? sqrt(e->sse / e->sum_x2) : 0.0;
    if (s->prog.on) fputs("\r\033[K", stderr); /* the progress bar's line */
    char esc[KQ_ESC_CAP]; /* tensor names come from the file (print_escaped.h) */
    kq_escape_str(esc, sizeof esc, t->name);
    printf("  %-40.40s %-7s RMSE %-10.4g %7.3f%% of RMS\n", esc, kq_type_name(type), rmse,
           100.0 * rel);
    if (!s->worst_name[0] || rel > s->worst_rel) {
        s->worst_rel = rel;
        snprintf(s->worst_name, sizeof s->worst_name, "%.47s", esc);
    }
}

static int convert_tensor(run_state *s, const kq_tensor_info *t, int type, int64_t rows)
{
    size_t row_out, nbytes;
    if (kq_row_size(type, t->ne[0], &row_out) != KQ_OK) return kq_tool_error("quantize", t->name);
    if (__builtin_mul_overflow((size_t)rows, row_out, &nbytes))
        return fail(t->name, "the quantized size overflows size_t");
    void *dst = malloc(nbytes);
    if (!dst) return fail(t->name, "out of memory for the quantized tensor");
    s->prog.name = t->name;
    s->prog.n_cols = t->ne[0];
    char err[512];
    kq_qrows_error e;
    int rc = kq_quantize_rows(t->type, t->data, (size_t)t->nbytes, type, dst, nbytes, rows,
                              t->ne[0], s->threads, progress_rows, &s->prog, &e, err, sizeof err);
    if (rc) {
        progress_end(&s->prog);
        free(dst);
        return fail(t->name, err);
    }
    /* The writer copies the bytes; this copy can go at once. */
    if (kq_gguf_writer_add_tensor(s->w, t->name, type, t->n_dims, t->ne, dst, nbytes) != KQ_OK) {
        progress_end(&s->prog);
        free(dst);
        return kq_tool_error("quantize", t->name);
    }
    free(dst);
    report_error(s, t, type, &e);
    uint64_t weights = (uint64_t)rows * (uint64_t)t->ne[0];
    s->prog.before += weights;
    s->weights_quantized += weights;
    s->bytes_out += nbytes;
    add_tally(s, type, KQ_Q_CONVERT, nbytes);
    return 0;
}

/* The weights to quantize, for the progress bar; also checks every tensor
 * before any work, so a bad tensor fails in a moment, not after an hour. */
static int plan_tensors(run_state *s, uint64_t *total)
{
    *total = 0;
    int64_t i_attn_v = 0;
    for (int64_t i = 0; i < kq_gguf_n_tensors(s->g); i++) {
        kq_tensor_info t;
        if (kq_gguf_tensor(s->g, i, &t) != KQ_OK) return kq_tool_error("quantize", "tensor table");
        int64_t rows;
        size_t row;
        if (tensor_rows(&t, &rows, &row))
            return fail(t.name, "its shape does not match its byte size");
        int type;
        const char *why;
        if (kq_qplan_tensor(&s->plan, &s->model, &t, i_attn_v, &type, &why) == KQ_Q_CONVERT)
            *total += (uint64_t)rows * (uint64_t)t.ne[0];
        i_attn_v += kq_qplan_is_attn_v(t.name);
    }
    return 0;
}

static int write_tensors(run_state *s)
{
    int64_t i_attn_v = 0;
    for (int64_t i = 0; i < kq_gguf_n_tensors(s->g); i++) {
        kq_tensor_info t;
        if (kq_gguf_tensor(s->g, i, &t) != KQ_OK) return kq_tool_error("quantize", "tensor table");
        int64_t rows;
        size_t row;
        if (tensor_rows(&t, &rows, &row))
            return fail(t.name, "its shape does not match its byte size");
        s->bytes_in += t.nbytes;
        int type;
        const char *why;
        kq_qaction a = kq_qplan_tensor(&s->plan, &s->model, &t, i_attn_v, &type, &why);
        i_attn_v += kq_qplan_is_attn_v(t.name);
        if (a == KQ_Q_CONVERT) {
            if (convert_tensor(s, &t, type, rows)) return 1;
            continue;
        }
        if (kq_gguf_writer_add_tensor(s->w, t.name, t.type, t.n_dims, t.ne, t.data,
                                      (size_t)t.nbytes) != KQ_OK)
            return kq_tool_error("quantize", t.name);
        s->bytes_out += t.nbytes;
        add_tally(s, t.type, a, t.nbytes);
    }
    return 0;
}

/* ---------------------------------------------------------------- summary */

static void print_summary(const run_state *s, double seconds, double quant_seconds)
{
    printf("kq quantize: wrote %s as %s (general.file_type = %u)\n", s->out, s->plan.label,
           s->plan.ftype);
    printf("  %-8s %-10s %8s %16s\n", "type", "", "tensors", "bytes");
    static const char *what[] = {"quantized", "kept", "copied"};
    for (int a = KQ_Q_CONVERT; a <= KQ_Q_COPY; a++)
        for (int i = 0; i < s->n_tallies; i++) {
            const tally *t = &s->tallies[i];
            if ((int)t->action != a) continue;
            const char *tn = kq_type_name(t->type);
            printf("  %-8s %-10s %8" PRId64 " %16" PRIu64 "\n", tn ? tn : "?", what[a], t->tensors,
                   t->bytes);
        }
    if (s->worst_name[0])
        printf("  largest relative RMSE: %.3f%% (%.40s)\n", 100.0 * s->worst_rel, s->worst_name);
    printf("  bytes: %" PRIu64 " in, %" PRIu64 " out (%.1f%%)\n", s->bytes_in, s->bytes_out,
           s->bytes_in ? 100.0 * (double)s->bytes_out / (double)s->bytes_in : 0.0);
    printf("  time: %.2f s in all; %.1f M weights quantized in %.2f s = %.1f M weights/s "
           "(%d thread%s)\n",
           seconds, 1e-6 * (double)s->weights_quantized, quant_seconds,
           quant_seconds > 0 ? 1e-6 * (double)s->weights_quantized / quant_seconds : 0.0,
           s->threads, s->threads == 1 ? "" : "s");
}

/* ---------------------------------------------------------------- command */

static int parse_args(int argc, char **argv, run_state *s)
{
    const char *pos[3];
    int n_pos = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->threads = cores > 0 ? (int)(cores < 256 ? cores : 256) : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return -1;
        }
        if (!strcmp(a, "--threads") || !strncmp(a, "--threads=", 10)) {
            const char *v = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
            char *end;
            errno = 0;
            long n = v ? strtol(v, &end, 10) : 0;
            if (!v || errno || *end || n < 1 || n > 256) {
                fprintf(stderr, "kq quantize: --threads needs a number from 1 to 256\n");
                return 2;
            }
            s->threads = (int)n;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "kq quantize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (n_pos == 3) {
            fprintf(stderr, "kq quantize: too many arguments ('%s')\n", a);
            usage(stderr);
            return 2;
        }
        pos[n_pos++] = a;
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    s->in = pos[0], s->out = pos[1];
    char err[200];
    if (kq_qplan_parse(pos[2], &s->plan, err, sizeof err)) {
        fprintf(stderr, "kq quantize: %s\n", err);
        return 2;
    }
    return 0;
}

int kq_cmd_quantize(int argc, char **argv)
{
    run_state s;
    memset(&s, 0, sizeof s);
    int rc = parse_args(argc, argv, &s);
    if (rc) return rc < 0 ? 0 : rc;
    double t0 = now_s();
    if (kq_gguf_open(s.in, &s.g) != KQ_OK) return kq_tool_error("quantize", s.in);
    uint32_t version = kq_gguf_version(s.g);
    if (kq_gguf_writer_new(version == 2 ? 2 : 3, &s.w) != KQ_OK) {
        kq_gguf_close(s.g);
        return kq_tool_error("quantize", "writer");
    }
    kq_qmodel_read(s.g, &s.model);
    s.prog.on = isatty(STDERR_FILENO);
    double tq0 = 0, tq1 = 0;
    rc = copy_metadata(&s);
    if (!rc) rc = plan_tensors(&s, &s.prog.total);
    if (!rc) {
        tq0 = now_s();
        rc = write_tensors(&s);
        tq1 = now_s();
        progress_end(&s.prog);
    }
    if (!rc && kq_gguf_writer_save(s.w, s.out) != KQ_OK) rc = kq_tool_error("quantize", s.out);
    kq_gguf_writer_free(s.w);
    kq_gguf_close(s.g);
    if (rc) {
        fprintf(stderr, "kq quantize: %s not written\n", s.out);
        return rc;
    }
    print_summary(&s, now_s() - t0, tq1 - tq0);
    return 0;
}
