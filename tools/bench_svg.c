/* kq bench --svg: one row per op, two panels (GB/s and TFLOP/s against m on
 * a log scale), one line per backend and its measured ceiling dashed in the
 * same colour. Plain SVG 1.1, readable in any browser. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define PANEL_W 420
#define PANEL_H 200
#define MARGIN_L 64
#define MARGIN_T 30
#define ROW_H (PANEL_H + 70)
#define HEADER_H 70

static const char *colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

static void text_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* A round axis maximum above v: 1, 2 or 5 times a power of ten. */
static double nice_max(double v)
{
    if (!(v > 0)) return 1;
    double p = pow(10, floor(log10(v)));
    for (double s = 1; s <= 10; s *= 2) {
        if (s * p >= v) return s * p;
        if (s == 2 && 5 * p >= v) return 5 * p;
    }
    return 10 * p;
}

typedef struct panel {
    double x0, y0; /* top-left of the plot area */
    double ymax;
    double lm0, lm1; /* log2 of the m range */
} panel;

static double px(const panel *pn, int64_t m)
{
    double span = pn->lm1 - pn->lm0;
    return pn->x0 + (span > 0 ? (log2((double)m) - pn->lm0) / span : 0.5) * PANEL_W;
}

static double py(const panel *pn, double v) { return pn->y0 + PANEL_H * (1.0 - v / pn->ymax); }

static void axes(FILE *f, const panel *pn, const bench_options *o, const char *label)
{
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%d' height='%d' fill='none' stroke='#999'/>\n",
            pn->x0, pn->y0, PANEL_W, PANEL_H);
    for (int i = 0; i <= 4; i++) {
        double v = pn->ymax * i / 4, y = py(pn, v);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", pn->x0, y,
                pn->x0 + PANEL_W, y);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='end'>%.4g</text>\n",
                pn->x0 - 4, y + 3, v);
    }
    for (int i = 0; i < o->n_m; i++)
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='middle'>%lld</text>\n",
                px(pn, o->m[i]), pn->y0 + PANEL_H + 12, (long long)o->m[i]);
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>m (tokens per call)</text>\n",
            pn->x0 + PANEL_W / 2.0, pn->y0 + PANEL_H + 26);
    fprintf(f,
            "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle' "
            "transform='rotate(-90 %.1f %.1f)'>%s</text>\n",
            pn->x0 - 46, pn->y0 + PANEL_H / 2.0, pn->x0 - 46, pn->y0 + PANEL_H / 2.0, label);
}

/* One panel: value(cell) per backend as a polyline, its ceiling dashed. */
static void series(FILE *f, const panel *pn, const bench_results *r, const bench_op *op, int gbs)
{
    for (int bi = 0; bi < r->n_backends; bi++) {
        const bench_backend_result *br = &r->backends[bi];
        if (!br->opened || br->why_not[0]) continue;
        const char *col = colours[bi % 6];
        double ceil = gbs ? br->ceil.read_gbs : br->ceil.compute_tops;
        if (ceil > 0 && ceil <= pn->ymax) {
            fprintf(f,
                    "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' "
                    "stroke-dasharray='6 4'/>\n",
                    pn->x0, py(pn, ceil), pn->x0 + PANEL_W, py(pn, ceil), col);
            fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' fill='%s' text-anchor='end'>",
                    pn->x0 + PANEL_W - 4, py(pn, ceil) - 3, col);
            fprintf(f, "%s ceiling %.4g</text>\n", br->name, ceil);
        }
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", col);
        for (int i = 0; i < r->n_cells; i++) {
            const bench_cell *c = &r->cells[i];
            if (c->backend != bi || c->op != op || c->median_us <= 0) continue;
            fprintf(f, "%.1f,%.1f ", px(pn, c->m), py(pn, gbs ? c->gbs : c->tflops));
        }
        fputs("'/>\n", f);
        for (int i = 0; i < r->n_cells; i++) {
            const bench_cell *c = &r->cells[i];
            if (c->backend != bi || c->op != op || c->median_us <= 0) continue;
            double v = gbs ? c->gbs : c->tflops;
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'><title>%s m=%lld: %.4g %s, %.1f us</title></circle>\n",
                    px(pn, c->m), py(pn, v), col, br->name, (long long)c->m, v,
                    gbs ? "GB/s" : "TFLOP/s", c->median_us);
        }
    }
}

static double panel_max(const bench_results *r, const bench_op *op, int gbs)
{
    double mx = 0;
    for (int bi = 0; bi < r->n_backends; bi++) {
        if (!r->backends[bi].opened || r->backends[bi].why_not[0]) continue;
        double c = gbs ? r->backends[bi].ceil.read_gbs : r->backends[bi].ceil.compute_tops;
        if (c > mx) mx = c;
    }
    for (int i = 0; i < r->n_cells; i++) {
        const bench_cell *c = &r->cells[i];
        if (c->op != op || c->median_us <= 0) continue;
        double v = gbs ? c->gbs : c->tflops;
        if (v > mx) mx = v;
    }
    return nice_max(mx * 1.05);
}

int bench_write_svg(const bench_plan *p, const bench_results *r, const bench_options *o,
                    const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kq bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    int width = 2 * (MARGIN_L + PANEL_W) + 40;
    int height = HEADER_H + p->n_ops * ROW_H;
    double lm0 = log2((double)o->m[0]), lm1 = lm0;
    for (int i = 0; i < o->n_m; i++) {
        double l = log2((double)o->m[i]);
        if (l < lm0) lm0 = l;
        if (l > lm1) lm1 = l;
    }
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n");
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' version='1.1' width='%d' height='%d' "
            "viewBox='0 0 %d %d' font-family='sans-serif'>\n",
            width, height, width, height);
    fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(f, "<text x='10' y='20' font-size='15' font-weight='bold'>kq bench %s: ", kq_version());
    text_escaped(f, p->source);
    fputs("</text>\n", f);
    int lx = 10;
    for (int bi = 0; bi < r->n_backends; bi++) {
        const bench_backend_result *br = &r->backends[bi];
        if (!br->opened || br->why_not[0]) continue;
        fprintf(f, "<rect x='%d' y='34' width='12' height='12' fill='%s'/>\n", lx, colours[bi % 6]);
        fprintf(f, "<text x='%d' y='45' font-size='11'>", lx + 16);
        text_escaped(f, br->name);
        fputs(": ", f);
        text_escaped(f, br->device);
        fputs("</text>\n", f);
        fprintf(f, "<text x='%d' y='60' font-size='10' fill='#555'>ceilings: read %.4g GB/s, ", lx + 16,
                br->ceil.read_gbs);
        text_escaped(f, br->ceil.compute_what);
        fprintf(f, " %.4g T/s (dashed)</text>\n", br->ceil.compute_tops);
        lx += width / 2;
    }
    for (int i = 0; i < p->n_ops; i++) {
        const bench_op *op = &p->ops[i];
        double top = HEADER_H + (double)i * ROW_H;
        char shape[48];
        fprintf(f, "<text x='10' y='%.1f' font-size='13' font-weight='bold'>", top + 16);
        text_escaped(f, op->name);
        fprintf(f, " (%s, %s)</text>\n", op->type, bench_shape_text(op, shape, sizeof shape));
        panel a = {MARGIN_L, top + MARGIN_T, panel_max(r, op, 1), lm0, lm1};
        panel b = {2 * MARGIN_L + PANEL_W + 20, top + MARGIN_T, panel_max(r, op, 0), lm0, lm1};
        axes(f, &a, o, "GB/s");
        axes(f, &b, o, "TFLOP/s (2NKm/t)");
        series(f, &a, r, op, 1);
        series(f, &b, r, op, 0);
    }
    fputs("</svg>\n", f);
    if (fclose(f)) {
        fprintf(stderr, "kq bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}
