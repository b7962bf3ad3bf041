/* kq bench: times every op of the built-in model layers (or of a file, or
 * of --shape ops) on each backend, for each m, beside the read-bandwidth and
 * compute ceilings measured on the same device at the start of the run. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "kq.h"
#include "print_escaped.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kq bench [FILE.gguf] [options]\n"
            "  Without FILE: every linear of a Llama-3-8B layer (Q4_K_M mix, also q/k/v and\n"
            "  gate/up fused) and a Qwen3-30B-A3B MoE layer (128 experts, top-8), random\n"
            "  weights written to a temporary GGUF file and loaded from it zero-copy.\n"
            "  With FILE: its 2-D quantized tensors as linears, 3-D ones as experts,\n"
            "  grouped by shape.\n"
            "options:\n"
            "  --backend cpu|cpu-ref|cuda|all  backends to time (repeatable; default: every\n"
            "                          one that opens here except cpu-ref, the reference);\n"
            "                          a spec with options times that backend as given, e.g.\n"
            "                          cuda:gemm=off beside cuda for both sides of the GEMM\n"
            "  --m 1,2,4,8,16,64,512   batch sizes (tokens per call)\n"
            "  --shape TYPE:NxK[:E/TOPK]  time this op alone (repeatable), e.g.\n"
            "                          q4_K:14336x4096 or q4_K:768x2048:128/8\n"
            "  --threads N             threads of the CPU backends\n"
            "  --json PATH             one record per op and m\n"
            "  --svg PATH              GB/s and TFLOP/s against m, with the ceilings\n"
            "  --min-time S            seconds timed per cell (default 0.3)\n"
            "  --budget S              seconds per backend for all cells (default 150; 0: no\n"
            "                          limit); cells predicted to overrun are skipped, and say so\n"
            "  --seed N                random inputs (default: from the clock, printed)\n"
            "The ceilings are measured before and after each backend's cells; the better\n"
            "of the two is printed and every %% is of it.\n");
}

static int parse_m_list(const char *s, bench_options *o)
{
    o->n_m = 0;
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || v < 1 || v > 65536 || o->n_m == BENCH_MAX_M) return -1;
        o->m[o->n_m++] = v;
        if (*end == ',') end++;
        else if (*end) return -1;
        s = end;
    }
    return o->n_m ? 0 : -1;
}

static int parse_double(const char *s, double lo, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= lo) || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int add_backend(bench_options *o, const char *name)
{
    if (!strcmp(name, "all")) {
        static const char *all[] = {"cpu", "cpu-ref", "cuda"};
        for (int i = 0; i < 3; i++)
            if (add_backend(o, all[i])) return -1;
        return 0;
    }
    /* A kind, or a kind with options (cuda:gemm=off): a spec of its own. */
    size_t kind = strcspn(name, ":");
    if (strncmp(name, "cpu", kind) && strncmp(name, "cpu-ref", kind) && strncmp(name, "cuda", kind))
        return -1;
    if (kind != 3 && kind != 4 && kind != 7) return -1;
    if (strlen(name) >= sizeof o->backends[0]) return -1;
    for (int i = 0; i < o->n_backends; i++)
        if (!strcmp(o->backends[i], name)) return 0;
    if (o->n_backends == 8) return -1;
    snprintf(o->backends[o->n_backends++], sizeof o->backends[0], "%s", name);
    return 0;
}

static int parse_args(int argc, char **argv, bench_options *o)
{
    memset(o, 0, sizeof *o);
    static const int64_t default_m[] = {1, 2, 4, 8, 16, 64, 512};
    memcpy(o->m, default_m, sizeof default_m);
    o->n_m = 7;
    o->min_time = 0.3;
    o->budget = 150.0;
    o->seed = (uint64_t)time(NULL);
    int named_all = 0;
    const char *bad_arg = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        bad_arg = a;
        if (a[0] != '-') {
            if (o->file) goto bad;
            o->file = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "kq bench: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--backend")) {
            named_all |= !strcmp(v, "all");
            if (add_backend(o, v)) {
                fprintf(stderr, "kq bench: --backend '%s': expected cpu, cpu-ref, cuda, all or a spec such as cuda:gemm=off\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--m")) {
            if (parse_m_list(v, o)) {
                fprintf(stderr, "kq bench: --m '%s': expected up to %d comma-separated integers "
                                "in [1, 65536]\n", v, BENCH_MAX_M);
                return -1;
            }
        } else if (!strcmp(a, "--shape")) {
            if (o->n_shapes == 64) goto bad;
            o->shapes[o->n_shapes++] = v;
        } else if (!strcmp(a, "--threads")) {
            double t;
            if (parse_double(v, 1, &t) || t != floor(t) || t > 256) {
                fprintf(stderr, "kq bench: --threads '%s': expected an integer in [1, 256]\n", v);
                return -1;
            }
            o->threads = (int)t;
        } else if (!strcmp(a, "--json")) {
            o->json_path = v;
        } else if (!strcmp(a, "--svg")) {
            o->svg_path = v;
        } else if (!strcmp(a, "--min-time")) {
            if (parse_double(v, 0, &o->min_time)) goto bad_value;
        } else if (!strcmp(a, "--budget")) {
            if (parse_double(v, 0, &o->budget)) goto bad_value;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 0);
            if (end == v || *end || errno) goto bad_value;
        } else {
            goto bad;
        }
        continue;
    bad_value:
        fprintf(stderr, "kq bench: %s '%s': not a valid value\n", a, v);
        return -1;
    }
    if (o->file && o->n_shapes) {
        fprintf(stderr, "kq bench: give a FILE or --shape ops, not both\n");
        return -1;
    }
    /* Named one by one, a backend must open; "all" means those that do. */
    o->explicit_backend = o->n_backends > 0 && !named_all;
    if (o->n_backends == 0) add_backend(o, "cuda"), add_backend(o, "cpu");
    o->progress = isatty(2);
    return 0;
bad:
    fprintf(stderr, "kq bench: unexpected argument '%s'\n", bad_arg);
    usage(stderr);
    return -1;
}

/* An output path is tried before the run, so that a typo costs a second and
 * not the whole benchmark: opened for append (nothing is truncated), and
 * removed again if this made it. */
static int check_writable(const char *opt, const char *path)
{
    struct stat st;
    int existed = stat(path, &st) == 0;
    char esc[KQ_ESC_CAP];
    kq_escape_str(esc, sizeof esc, path);
    if (existed && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "kq bench: %s: cannot write %s: it is a directory\n", opt, esc);
        return -1;
    }
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "kq bench: %s: cannot write %s: %s\n", opt, esc, strerror(errno));
        return -1;
    }
    fclose(f);
    if (!existed) remove(path);
    return 0;
}

/* The ceilings again after the backend's cells, keeping the better of the
 * two measurements: on a machine shared with other work a single
 * measurement can fall in a busy moment, and a ceiling that the cells then
 * beat says nothing. Ceilings are what the device can do, so the best seen
 * in the run is the honest one. A failure keeps the first measurement. */
static void remeasure_ceilings(kq_backend *b, kq_ceilings *c)
{
    kq_ceilings again;
    if (kq__backend_ceilings(b, &again) != KQ_OK) return;
    if (again.read_gbs > c->read_gbs) c->read_gbs = again.read_gbs;
    if (again.int8_tops > c->int8_tops) c->int8_tops = again.int8_tops;
    if (again.fp16_tflops > c->fp16_tflops) c->fp16_tflops = again.fp16_tflops;
    if (again.compute_tops > c->compute_tops && !strcmp(again.compute_what, c->compute_what))
        c->compute_tops = again.compute_tops;
}

static void backend_spec(const bench_options *o, const char *name, char *spec, size_t cap)
{
    if (o->threads && strncmp(name, "cuda", 4) && !strchr(name, ':'))
        snprintf(spec, cap, "%s:threads=%d", name, o->threads);
    else
        snprintf(spec, cap, "%s", name);
}

int kq_cmd_bench(int argc, char **argv)
{
    bench_options o;
    if (parse_args(argc, argv, &o)) return 2;
    if ((o.json_path && check_writable("--json", o.json_path)) ||
        (o.svg_path && check_writable("--svg", o.svg_path)))
        return 1;
    bench_results r;
    memset(&r, 0, sizeof r);
    kq_backend *bs[8] = {0}, *ref = NULL;
    bench_plan plan;
    memset(&plan, 0, sizeof plan);
    int rc = 0;

    /* Open every backend and measure its ceilings first: the cache sizes
     * decide how many weight copies the rotation needs. */
    unsigned long long llc = 0;
    for (int i = 0; i < o.n_backends; i++) {
        bench_backend_result *br = &r.backends[r.n_backends];
        backend_spec(&o, o.backends[i], br->spec, sizeof br->spec);
        snprintf(br->name, sizeof br->name, "%s", o.backends[i]);
        if (kq_backend_open(br->spec, &bs[r.n_backends])) {
            snprintf(br->why_not, sizeof br->why_not, "%s", kq_last_error());
            if (o.explicit_backend) {
                fprintf(stderr, "kq bench: backend %s: %s\n", br->spec, br->why_not);
                rc = 1;
                goto done;
            }
            r.n_backends++;
            continue;
        }
        kq_backend *b = bs[r.n_backends];
        snprintf(br->device, sizeof br->device, "%s", kq_backend_device(b));
        if (o.progress) fprintf(stderr, "  measuring the ceilings of %s ...", br->spec), fflush(stderr);
        if (kq__backend_ceilings(b, &br->ceil)) {
            if (o.progress) fprintf(stderr, "\r\033[K");
            fprintf(stderr, "kq bench: ceilings of %s: %s\n", br->spec, kq_last_error());
            rc = 1;
            goto done;
        }
        if (o.progress) fprintf(stderr, "\r\033[K");
        if (br->ceil.llc_bytes > llc) llc = br->ceil.llc_bytes;
        br->opened = 1;
        r.n_backends++;
    }
    char ref_spec[64];
    backend_spec(&o, "cpu-ref", ref_spec, sizeof ref_spec);
    if (kq_backend_open(ref_spec, &ref)) {
        rc = kq_tool_error("bench", "opening the reference backend");
        goto done;
    }

    /* Rotation over three times the largest last-level cache (so a copy's
     * lines are long gone by the time it comes round again), at least
     * 128 MB, and at most 512 MB per op, which hosts with huge reported L3s
     * would otherwise turn into a file of many gigabytes. */
    unsigned long long rotate = 3 * (llc ? llc : 32ull << 20);
    if (rotate < (128ull << 20)) rotate = 128ull << 20;
    if (rotate > (512ull << 20)) rotate = 512ull << 20;
    if (o.progress) fprintf(stderr, "  preparing the weights ..."), fflush(stderr);
    double prep0 = bench_now();
    if (o.file)
        rc = bench_plan_file(&plan, o.file);
    else if (o.n_shapes)
        rc = bench_plan_shapes(&plan, &o, rotate);
    else
        rc = bench_plan_builtin(&plan, &o, rotate);
    if (o.progress) fprintf(stderr, "\r\033[K");
    if (rc) goto done;

    printf("kq bench %s: %s (%.1f s)\n", kq_version(), plan.source, bench_now() - prep0);
    printf("seed %llu; median over >= %.3g s of calls per cell; weights rotate over >= %.0f MB\n",
           (unsigned long long)o.seed, o.min_time, plan.from_file ? 0.0 : (double)rotate * 1e-6);
    int ran = 0;
    for (int i = 0; i < r.n_backends; i++) {
        if (!r.backends[i].opened) {
            printf("\nbackend %s: not available: %s\n", r.backends[i].spec, r.backends[i].why_not);
            continue;
        }
        if (bench_run_backend(&plan, &o, bs[i], ref, i, &r)) {
            rc = 1;
            goto done;
        }
        remeasure_ceilings(bs[i], &r.backends[i].ceil);
        if (r.backends[i].why_not[0]) {
            printf("\nbackend %s: not benchmarked: %s\n", r.backends[i].spec, r.backends[i].why_not);
            continue;
        }
        bench_print_backend(&plan, &r, i);
        fflush(stdout);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "kq bench: no backend could be benchmarked\n");
        rc = 1;
        goto done;
    }
    bench_print_summary(&plan, &r, &o);
    /* A write error says so itself; the check message is for checks only. */
    if (o.json_path && bench_write_json(&plan, &r, o.json_path)) rc = 1;
    if (o.svg_path && bench_write_svg(&plan, &r, &o, o.svg_path)) rc = 1;
    int check_failed = 0;
    for (int i = 0; i < r.n_cells; i++)
        if (r.cells[i].failed || (!r.cells[i].skipped && !r.cells[i].verified)) check_failed = 1;
    if (check_failed) {
        rc = 1;
        fprintf(stderr, "kq bench: some ops failed their check against cpu-ref (see above)\n");
    }
done:
    for (int i = 0; i < 8; i++) kq_backend_close(bs[i]);
    kq_backend_close(ref);
    bench_plan_free(&plan);
    free(r.cells);
    return rc;
}
