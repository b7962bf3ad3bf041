/* Experts forward by ids: broadcast and per-slot activation rows, repeated
 * ids, every weight type, against a double product per pair. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct layout {
    const char *name;
    int64_t token_stride, slot_stride;
    int64_t x_floats;
} layout;

/* Broadcast (gate/up: one row per token), per-slot (down: top_k rows per
 * token), and per-slot with padding between tokens. */
static layout make_layout(int kind, int64_t m, int64_t top_k, int64_t k)
{
    layout L;
    if (kind == 0) {
        L = (layout){"broadcast", k, 0, 0};
    } else if (kind == 1) {
        L = (layout){"per-slot", top_k * k, k, 0};
    } else {
        L = (layout){"per-slot padded", top_k * k + 32, k, 0};
    }
    L.x_floats = (m - 1) * L.token_stride + (top_k - 1) * L.slot_stride + k;
    return L;
}

static void run_case(kq_backend *b, const char *bname, int type, int layout_kind)
{
    int64_t n_exp = kt_range(2, 16), k = 256 * kt_range(1, 6), n = kt_range(1, 45);
    if (n % 4 == 0) n++;
    int64_t top_k = kt_range(1, n_exp < 8 ? n_exp : 8), m = kt_range(1, 70);
    kt_weight w;
    if (!KT_CHECK(kt_weight_make(&w, type, n * n_exp, k) == 0, "weights: %s", kq_last_error()))
        return;
    kq_experts *e = NULL;
    if (!KT_OK(kq_experts_load(b, type, w.bytes, w.nbytes, n_exp, n, k, &e))) {
        kt_weight_free(&w);
        return;
    }
    KT_CHECK(kq_experts_count(e) == n_exp && kq_experts_rows(e) == n && kq_experts_cols(e) == k,
             "experts shape");
    layout L = make_layout(layout_kind, m, top_k, k);
    float *x = malloc((size_t)L.x_floats * sizeof *x);
    float *y = malloc((size_t)(m * top_k * n) * sizeof *y);
    int32_t *ids = malloc((size_t)(m * top_k) * sizeof *ids);
    kt_fill_normal(x, L.x_floats, 1.0f);
    kt_poison(y, m * top_k * n);
    /* Skewed routing with repeats: a third of the pairs go to expert 0. */
    for (int64_t p = 0; p < m * top_k; p++)
        ids[p] = kt_uniform() < 0.33 ? 0 : (int32_t)kt_range(0, n_exp - 1);
    if (KT_OK(kq_experts_forward(b, e, x, L.token_stride, L.slot_stride, ids, m, top_k, y))) {
        int64_t bad = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t s = 0; s < top_k; s++) {
                int64_t pair = i * top_k + s;
                const float *xr = x + i * L.token_stride + s * L.slot_stride;
                const float *we = w.deq + (int64_t)ids[pair] * n * k;
                for (int64_t r = 0; r < n; r++) {
                    double acc = 0, a = 0;
                    for (int64_t j = 0; j < k; j++) {
                        double p = (double)we[r * k + j] * xr[j];
                        acc += p;
                        a += fabs(p);
                    }
                    if (!kt_close_on(bname, type, y[pair * n + r], acc, a, we + r * k, xr, k) &&
                        bad++ == 0)
                        KT_CHECK(0, "%s %s %s E=%lld N=%lld K=%lld m=%lld top_k=%lld: "
                                 "y[pair %lld, %lld] = %g, want %.9g (expert %d)",
                                 bname, kq_type_name(type), L.name, (long long)n_exp,
                                 (long long)n, (long long)k, (long long)m, (long long)top_k,
                                 (long long)pair, (long long)r, y[pair * n + r], acc, ids[pair]);
                }
            }
        KT_CHECK(bad == 0, "%lld experts outputs wrong", (long long)bad);
    }
    free(x);
    free(y);
    free(ids);
    kq_experts_free(e);
    kt_weight_free(&w);
}

static void test_bad_id(kq_backend *b)
{
    kt_weight w;
    if (kt_weight_make(&w, KQ_TYPE_Q8_0, 4 * 3, 64) != 0) return;
    kq_experts *e = NULL;
    if (KT_OK(kq_experts_load(b, KQ_TYPE_Q8_0, w.bytes, w.nbytes, 4, 3, 64, &e))) {
        float x[2 * 64], y[2 * 2 * 3];
        kt_fill_normal(x, 128, 1.0f);
        int32_t ids[4] = {0, 3, 2, 4};
        kq_status st = kq_experts_forward(b, e, x, 64, 0, ids, 2, 2, y);
        KT_CHECK(st == KQ_ERR_RANGE && strstr(kq_last_error(), "token 1, slot 1") &&
                     strstr(kq_last_error(), "= 4"),
                 "id 4 of 4 experts: status %s, message '%s'", kq_status_name(st),
                 kq_last_error());
        ids[3] = -1;
        st = kq_experts_forward(b, e, x, 64, 0, ids, 2, 2, y);
        KT_CHECK(st == KQ_ERR_RANGE && strstr(kq_last_error(), "= -1"), "id -1: '%s'",
                 kq_last_error());
    }
    kq_experts_free(e);
    kt_weight_free(&w);
}

/* With a type name as argument only that type's cases run. */
int main(int argc, char **argv)
{
    kt_init("test_experts");
    kq_type only = KQ_TYPE_F32;
    if (argc > 1 && kq_type_from_name(argv[1], &only) != KQ_OK) {
        fprintf(stderr, "test_experts: unknown type '%s'\n", argv[1]);
        return 2;
    }
    const char *backends[] = {"cpu-ref", "cpu:threads=2"};
    for (int bi = 0; bi < 2; bi++) {
        kq_backend *b = NULL;
        if (!KT_OK(kq_backend_open(backends[bi], &b))) continue;
        for (int t = 0; t < kt_n_weight_types; t++)
            if (argc <= 1 || kt_weight_types[t] == (int)only)
                for (int kind = 0; kind < 3; kind++)
                    run_case(b, backends[bi], kt_weight_types[t], kind);
        if (argc <= 1 || only == KQ_TYPE_Q8_0) test_bad_id(b);
        kq_backend_close(b);
    }
    return kt_finish();
}
