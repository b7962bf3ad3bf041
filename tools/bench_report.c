/* kq bench: the table (100 columns), the model summary and the JSON records. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

const char *bench_shape_text(const bench_op *op, char *buf, size_t cap)
{
    if (op->experts)
        snprintf(buf, cap, "%lldx%lld e%lld/%lld", (long long)op->n, (long long)op->k,
                 (long long)op->experts, (long long)op->top_k);
    else
        snprintf(buf, cap, "%lldx%lld", (long long)op->n, (long long)op->k);
    return buf;
}

static const bench_cell *find_cell(const bench_results *r, int bi, const bench_op *op, int64_t m)
{
    for (int i = 0; i < r->n_cells; i++)
        if (r->cells[i].backend == bi && r->cells[i].op == op && r->cells[i].m == m)
            return &r->cells[i];
    return NULL;
}

void bench_print_backend(const bench_plan *p, const bench_results *r, int bi)
{
    const bench_backend_result *br = &r->backends[bi];
    const kq_ceilings *c = &br->ceil;
    int room = 100 - (int)strlen("backend : ") - (int)strlen(br->spec);
    printf("\nbackend %s: %.*s\n", br->spec, room > 10 ? room : 10, br->device);
    printf("  ceilings: read %.1f GB/s; %s %.3g T%s/s; last-level cache %.0f MiB\n", c->read_gbs,
           c->compute_what, c->compute_tops, strstr(c->compute_what, "int") ? "OP" : "FLOP",
           (double)c->llc_bytes / 1048576.0);
    if (br->zero_copy)
        printf("  load: %.0f MB of weights used in place from the file mapping (%.1f ms)\n",
               br->load_bytes * 1e-6, br->load_seconds * 1e3);
    else if (br->load_seconds > 0)
        printf("  load: %.0f MB of weights in %.3f s (%.1f GB/s)\n", br->load_bytes * 1e-6,
               br->load_seconds, br->load_bytes / br->load_seconds * 1e-9);
    printf("%-20s %-9s %-15s %5s %10s %7s %4s %7s %5s %s\n", "op", "type", "shape", "m",
           "median us", "GB/s", "%bw", "TFLOP/s", "%pk", "check");
    int notes = 0;
    for (int i = 0; i < p->n_ops; i++) {
        const bench_op *op = &p->ops[i];
        char shape[48];
        bench_shape_text(op, shape, sizeof shape);
        for (int j = 0; j < r->n_cells; j++) {
            const bench_cell *cell = &r->cells[j];
            if (cell->backend != bi || cell->op != op) continue;
            printf("%-20.20s %-9.9s %-15.15s %5lld ", op->name, op->type, shape, (long long)cell->m);
            if (cell->skipped) {
                printf("%10s %7s %4s %7s %5s %s\n", "-", "-", "-", "-", "-", "skipped");
                notes++;
            } else if (cell->failed || cell->median_us <= 0) {
                printf("%10s %7s %4s %7s %5s %s\n", "-", "-", "-", "-", "-", "FAILED");
                notes++;
            } else {
                printf("%10.1f %7.1f %3.0f%% %7.3f %4.1f%% %s\n", cell->median_us, cell->gbs,
                       100.0 * cell->gbs / c->read_gbs, cell->tflops,
                       100.0 * cell->tflops / c->compute_tops, cell->verified ? "ok" : "WRONG");
                notes += !cell->verified;
            }
        }
    }
    if (!notes) return;
    int skipped = 0;
    for (int j = 0; j < r->n_cells; j++) {
        const bench_cell *cell = &r->cells[j];
        if (cell->backend != bi || !cell->note[0]) continue;
        if (cell->skipped)
            skipped++;
        else
            printf("  note: %s m=%lld: %s\n", cell->op->name, (long long)cell->m, cell->note);
    }
    if (skipped)
        printf("  note: %d cell%s not timed: predicted from the previous m to overrun the time "
               "budget (--budget 0 times everything)\n",
               skipped, skipped == 1 ? "" : "s");
}

/* Seconds for one token through the model's (or file's) ops at m, or -1
 * when a needed cell has no time. `want` picks SUM_SEPARATE or SUM_FUSED. */
static double model_seconds(const bench_plan *p, const bench_results *r, int bi,
                            const char *model, int want, int64_t m)
{
    double total = 0;
    int any = 0;
    for (int i = 0; i < p->n_ops; i++) {
        const bench_op *op = &p->ops[i];
        if (strcmp(op->model, model) || !(op->sums & want)) continue;
        const bench_cell *c = find_cell(r, bi, op, m);
        if (!c || c->median_us <= 0) return -1;
        total += c->median_us * 1e-6 * (double)op->count;
        any = 1;
    }
    return any ? total : -1;
}

static double best_of(double a, double b)
{
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

void bench_print_summary(const bench_plan *p, const bench_results *r, const bench_options *o)
{
    int64_t prefill_m = 0;
    for (int i = 0; i < o->n_m; i++)
        if (o->m[i] == 512 || (prefill_m != 512 && o->m[i] > prefill_m && o->m[i] >= 64))
            prefill_m = o->m[i];
    int has_m1 = 0;
    for (int i = 0; i < o->n_m; i++) has_m1 |= o->m[i] == 1;
    if (p->n_models == 0) return;
    char prefill[48] = "no prefill (no m >= 64 timed)";
    if (prefill_m) snprintf(prefill, sizeof prefill, "prefill at m = %lld", (long long)prefill_m);
    printf("\nmodel summary: decode at m = 1, %s%s\n", prefill,
           p->from_file ? " (every quantized tensor of the file)" : " (one layer, times the model's layers)");
    for (int bi = 0; bi < r->n_backends; bi++) {
        if (!r->backends[bi].opened || r->backends[bi].why_not[0]) continue;
        for (int mi = 0; mi < p->n_models; mi++) {
            const bench_model *md = &p->models[mi];
            const char *key = p->from_file ? "" : md->name;
            double layers = p->from_file ? 1.0 : (double)md->layers;
            double sep1 = model_seconds(p, r, bi, key, SUM_SEPARATE, 1);
            double fus1 = p->from_file ? -1 : model_seconds(p, r, bi, key, SUM_FUSED, 1);
            double best1 = best_of(sep1, fus1);
            printf("  %-8s %-14.14s", r->backends[bi].name, md->name);
            if (!has_m1 || best1 < 0)
                printf(" decode n/a (m = 1 not timed)");
            else if (p->from_file)
                printf(" decode %.3f ms/token -> <= %.3g tokens/s", best1 * 1e3, 1.0 / best1);
            else
                printf(" decode %.3f ms/layer%s -> %lld layers <= %.3g tokens/s", best1 * 1e3,
                       fus1 >= 0 && fus1 < sep1 ? " fused" : "", (long long)md->layers,
                       1.0 / (best1 * layers));
            double sepP = prefill_m ? model_seconds(p, r, bi, key, SUM_SEPARATE, prefill_m) : -1;
            double fusP = prefill_m && !p->from_file ? model_seconds(p, r, bi, key, SUM_FUSED, prefill_m) : -1;
            double bestP = best_of(sepP, fusP);
            if (bestP > 0)
                printf("; prefill %.4g tokens/s\n", (double)prefill_m / (bestP * layers));
            else
                printf("; prefill n/a\n");
        }
    }
}

/* ---------------------------------------------------------------- JSON */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v, int valid)
{
    if (valid && isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

int bench_write_json(const bench_plan *p, const bench_results *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kq bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fputs("[\n", f);
    int first = 1;
    for (int i = 0; i < r->n_cells; i++) {
        const bench_cell *c = &r->cells[i];
        const bench_backend_result *br = &r->backends[c->backend];
        const bench_op *op = c->op;
        int timed = !c->skipped && !c->failed && c->median_us > 0;
        fputs(first ? "  {" : ",\n  {", f);
        first = 0;
        fputs("\"backend\": ", f), json_string(f, br->name);
        fputs(", \"device\": ", f), json_string(f, br->device);
        fputs(", \"model\": ", f), json_string(f, p->from_file ? p->models[0].name : op->model);
        fputs(", \"op\": ", f), json_string(f, op->name);
        fputs(", \"type\": ", f), json_string(f, op->type);
        fprintf(f, ", \"n\": %lld, \"k\": %lld, \"experts\": %lld, \"top_k\": %lld, \"m\": %lld",
                (long long)op->n, (long long)op->k, (long long)op->experts, (long long)op->top_k,
                (long long)c->m);
        fprintf(f, ", \"swiglu\": %s", op->swiglu ? "true" : "false");
        fputs(", \"median_us\": ", f), json_number(f, c->median_us, timed);
        fputs(", \"gbs\": ", f), json_number(f, c->gbs, timed);
        fputs(", \"tflops\": ", f), json_number(f, c->tflops, timed);
        fputs(", \"ceiling_gbs\": ", f), json_number(f, br->ceil.read_gbs, 1);
        fputs(", \"ceiling_tflops\": ", f), json_number(f, br->ceil.compute_tops, 1);
        fputs(", \"ceiling_what\": ", f), json_string(f, br->ceil.compute_what);
        fprintf(f, ", \"verified\": %s", c->verified ? "true" : "false");
        fputs(", \"rel_err\": ", f), json_number(f, c->rel_err, !c->skipped && !c->failed);
        fputs(", \"bytes\": ", f), json_number(f, c->bytes, timed);
        fprintf(f, ", \"calls\": %lld, \"copies\": %d, \"skipped\": %s", (long long)c->calls,
                op->n_copies, c->skipped ? "true" : "false");
        fputs(", \"note\": ", f), json_string(f, c->note);
        fputc('}', f);
    }
    fputs("\n]\n", f);
    if (fclose(f)) {
        fprintf(stderr, "kq bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}
