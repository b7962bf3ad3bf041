/* Linear and fused linear through the public API on the CPU backends,
 * against a double product of the exactly dequantized weights. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *g_backends[] = {"cpu-ref", "cpu", "cpu:threads=3"};

/* Checks y [m, n_total] columns [col0, col0 + w->n_rows) against x * deq^T. */
static void check_block(const char *what, const float *y, int64_t n_total, int64_t col0,
                        const kt_weight *w, const float *x, int64_t m)
{
    double *ref = malloc((size_t)(m * w->n_rows) * sizeof *ref);
    double *abs = malloc((size_t)(m * w->n_rows) * sizeof *abs);
    kt_matmul_ref(w->deq, w->n_rows, w->n_cols, x, m, ref, abs);
    int64_t bad = 0, first_i = -1, first_r = -1;
    for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < w->n_rows; r++)
            if (!kt_close_on(what, w->type, y[i * n_total + col0 + r], ref[i * w->n_rows + r],
                             abs[i * w->n_rows + r], w->deq + r * w->n_cols, x + i * w->n_cols,
                             w->n_cols) && bad++ == 0)
                first_i = i, first_r = r;
    KT_CHECK(bad == 0, "%s: %lld of %lld outputs wrong; first y[%lld, %lld] = %g, want %.9g", what,
             (long long)bad, (long long)(m * w->n_rows), (long long)first_i,
             (long long)(col0 + first_r),
             bad ? (double)y[first_i * n_total + col0 + first_r] : 0.0,
             bad ? ref[first_i * w->n_rows + first_r] : 0.0);
    free(ref);
    free(abs);
}

static int64_t random_k(int type)
{
    static const int64_t ks[] = {256, 512, 768, 1024, 2048, 4096, 14336};
    int64_t k = ks[kt_range(0, 6)];
    if (k == 14336 && kt_uniform() < 0.5) k = 256 * kt_range(2, 11);
    (void)type;
    return k;
}

/* N not a multiple of 4, kept small where K is large so the double reference
 * stays quick. */
static int64_t random_n(int64_t k)
{
    int64_t n = kt_range(1, k > 4096 ? 21 : 67);
    if (n % 4 == 0) n++;
    return n;
}

static void test_linear_one(kq_backend *b, const char *bname, int type)
{
    int64_t k = random_k(type), n = random_n(k);
    kt_weight w;
    if (!KT_CHECK(kt_weight_make(&w, type, n, k) == 0, "weight %s %lldx%lld: %s",
                  kq_type_name(type), (long long)n, (long long)k, kq_last_error()))
        return;
    kq_linear *l = NULL;
    if (!KT_OK(kq_linear_load(b, type, w.bytes, w.nbytes, n, k, &l))) {
        kt_weight_free(&w);
        return;
    }
    KT_CHECK(kq_linear_rows(l) == n && kq_linear_cols(l) == k && kq_linear_n_parts(l) == 1,
             "linear shape");
    KT_CHECK(!kq_linear_is_zero_copy(l), "malloc'd bytes must be copied, not used in place");
    /* The copy is the library's: scribbling on the caller's buffer changes nothing. */
    memset(w.bytes, 0xFF, w.nbytes);
    const int64_t ms[] = {1, 2, 3, 16, 17, kt_range(4, 70)};
    for (size_t t = 0; t < sizeof ms / sizeof ms[0]; t++) {
        int64_t m = ms[t];
        if (k >= 4096 && m > 17) m = 17; /* keep the double reference quick */
        float *x = malloc((size_t)(m * k) * sizeof *x), *y = malloc((size_t)(m * n) * sizeof *y);
        kt_fill_normal(x, m * k, 1.0f);
        kt_poison(y, m * n);
        char what[128];
        snprintf(what, sizeof what, "%s %s N=%lld K=%lld m=%lld", bname, kq_type_name(type),
                 (long long)n, (long long)k, (long long)m);
        if (KT_OK(kq_linear_forward(b, l, x, y, m))) check_block(what, y, n, 0, &w, x, m);
        free(x);
        free(y);
    }
    kq_linear_free(l);
    kt_weight_free(&w);
}

static void test_fused_one(kq_backend *b, const char *bname)
{
    int n_parts = (int)kt_range(2, 4);
    int64_t k = 256 * kt_range(1, 8);
    kt_weight w[4];
    kq_part parts[4];
    int64_t total = 0;
    char types[96] = "";
    for (int p = 0; p < n_parts; p++) {
        int type = kt_weight_types[kt_range(0, kt_n_weight_types - 1)];
        if (kt_weight_make(&w[p], type, random_n(k), k) != 0) {
            KT_CHECK(0, "fused weight: %s", kq_last_error());
            for (int q = 0; q < p; q++) kt_weight_free(&w[q]);
            return;
        }
        parts[p] = (kq_part){type, w[p].bytes, w[p].nbytes, w[p].n_rows};
        total += w[p].n_rows;
        snprintf(types + strlen(types), sizeof types - strlen(types), "%s%s", p ? "+" : "",
                 kq_type_name(type));
    }
    kq_linear *l = NULL;
    if (KT_OK(kq_linear_load_fused(b, parts, n_parts, k, &l))) {
        KT_CHECK(kq_linear_rows(l) == total && kq_linear_n_parts(l) == n_parts, "fused shape");
        int64_t m = kt_range(1, 40);
        float *x = malloc((size_t)(m * k) * sizeof *x),
              *y = malloc((size_t)(m * total) * sizeof *y);
        kt_fill_normal(x, m * k, 1.0f);
        kt_poison(y, m * total);
        if (KT_OK(kq_linear_forward(b, l, x, y, m))) {
            int64_t col = 0;
            for (int p = 0; p < n_parts; p++) {
                char what[192];
                snprintf(what, sizeof what, "%s fused %s part %d K=%lld m=%lld", bname, types, p,
                         (long long)k, (long long)m);
                check_block(what, y, total, col, &w[p], x, m);
                col += w[p].n_rows;
            }
        }
        free(x);
        free(y);
        kq_linear_free(l);
    }
    for (int p = 0; p < n_parts; p++) kt_weight_free(&w[p]);
}

/* With an argument, one slice of the test: a type name ("q4_K") runs the
 * linear cases of that type, "fused" the fused cases; none runs all. */
int main(int argc, char **argv)
{
    kt_init("test_linear");
    const char *only = argc > 1 ? argv[1] : NULL;
    kq_type only_type = KQ_TYPE_F32;
    int run_fused = !only || strcmp(only, "fused") == 0;
    if (only && !run_fused && kq_type_from_name(only, &only_type) != KQ_OK) {
        fprintf(stderr, "test_linear: unknown slice '%s'\n", only);
        return 2;
    }
    for (size_t bi = 0; bi < sizeof g_backends / sizeof g_backends[0]; bi++) {
        kq_backend *b = NULL;
        if (!KT_OK(kq_backend_open(g_backends[bi], &b))) continue;
        for (int t = 0; t < kt_n_weight_types; t++)
            if (!only || (!run_fused && kt_weight_types[t] == (int)only_type))
                for (int rep = 0; rep < 2; rep++)
                    test_linear_one(b, g_backends[bi], kt_weight_types[t]);
        if (run_fused)
            for (int rep = 0; rep < 6; rep++) test_fused_one(b, g_backends[bi]);
        kq_backend_close(b);
    }
    return kt_finish();
}
