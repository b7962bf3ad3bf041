/* Extreme activations on every backend present (issue 17, defect 8), against
 * the contract in kquant.h ("Activations outside the ordinary range"):
 *   - a NaN or an infinity in row i of x makes every element of y[i, :]
 *     non-finite, and leaves the other rows as they would be without it;
 *   - finite x up to 2^64 in magnitude gives finite y that matches the
 *     double reference within the backend's usual tolerance;
 *   - finite x beyond that (a FLT_MAX element) is outside the promise: only
 *     that the call succeeds and leaves the other rows right is checked.
 * Linear, SwiGLU and experts forwards, every weight type, outputs poisoned
 * before each call; on cuda through device buffers (where a GPU opens). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define K 512
#define N 24
#define M 6

/* Row roles: 0 normal, 1 +Inf, 2 NaN, 3 -Inf, 4 scaled by 2^64, 5 FLT_MAX. */
enum { R_NORMAL, R_PINF, R_NAN, R_NINF, R_BIG, R_MAX };
static const char *const g_row_name[M] = {"normal", "+Inf", "NaN", "-Inf", "2^64", "FLT_MAX"};

static void make_x(float *x)
{
    kt_fill_normal(x, (int64_t)M * K, 1.0f);
    int64_t at = kt_range(0, K - 1);
    x[R_PINF * K + at] = INFINITY;
    x[R_NAN * K + kt_range(0, K - 1)] = NAN;
    x[R_NINF * K + kt_range(0, K - 1)] = -INFINITY;
    for (int64_t j = 0; j < K; j++) x[R_BIG * K + j] *= 0x1p64f / 4.0f; /* |x| ~ up to 2^64 */
    x[R_BIG * K + kt_range(0, K - 1)] = 0x1p64f;
    x[R_MAX * K + kt_range(0, K - 1)] = FLT_MAX;
}

/* Copies through the backend's memory (device memory on cuda). */
typedef struct bufs {
    kq_backend *b;
    float *x, *y;
    int32_t *ids;
} bufs;

static int bufs_alloc(bufs *d, kq_backend *b, size_t y_elems)
{
    memset(d, 0, sizeof *d);
    d->b = b;
    return kq_alloc(b, (size_t)M * K * sizeof(float), (void **)&d->x) != KQ_OK ||
           kq_alloc(b, y_elems * sizeof(float), (void **)&d->y) != KQ_OK ||
           kq_alloc(b, (size_t)M * 2 * sizeof(int32_t), (void **)&d->ids) != KQ_OK;
}

static void bufs_free(bufs *d)
{
    kq_free(d->b, d->x);
    kq_free(d->b, d->y);
    kq_free(d->b, d->ids);
}

/* Checks one output row against the contract; want/abs from the reference
 * (ignored for non-finite rows). */
static void check_row(const char *what, int type, int row, const float *y, const double *want,
                      const double *abs, const float *w, const float *x, int64_t n_out)
{
    int bad = 0;
    for (int64_t r = 0; r < n_out && bad < 3; r++) {
        float got = y[r];
        int ok;
        if (row == R_PINF || row == R_NAN || row == R_NINF)
            ok = !isfinite(got);
        else if (row == R_MAX || !(fabs(want[r]) <= 0.5 * FLT_MAX))
            ok = 1; /* beyond the promised range (a FLT_MAX input, or an exact
                     * result near or past float's), only the call's success */
        else if (!strncmp(what, "cuda", 4))
            /* cuda's own tests hold its tolerances; here only that a finite
             * x gives a finite y of the right size: 2% of sum |w x|. */
            ok = isfinite(got) && fabs((double)got - want[r]) <= 0.02 * abs[r] + 1e-30;
        else
            ok = w ? kt_close_on(what, type, got, want[r], abs[r], w + r * K, x, K)
                   : isfinite(got) && fabs((double)got - want[r]) <= 0.02 * abs[r] + 1e-30;
        if (!ok) bad++;
        KT_CHECK(ok, "%s %s: x row %d (%s) y[%lld] = %g, reference %g", what, kq_type_name(type),
                 row, g_row_name[row], (long long)r, got, want[r]);
    }
}

static void test_linear(kq_backend *b, const char *bname, const kt_weight *wt, const float *x)
{
    kq_linear *l = NULL;
    if (!KT_OK(kq_linear_load(b, wt->type, wt->bytes, wt->nbytes, N, K, &l))) return;
    bufs d;
    float *y = malloc((size_t)M * N * sizeof *y);
    double *want = malloc((size_t)M * N * sizeof *want), *abs_ = malloc((size_t)M * N * sizeof *abs_);
    if (!y || !want || !abs_ || bufs_alloc(&d, b, (size_t)M * N)) {
        KT_CHECK(0, "out of memory");
        goto done;
    }
    kt_matmul_ref(wt->deq, N, K, x, M, want, abs_);
    kt_poison(y, (int64_t)M * N);
    KT_OK(kq_copy_to_device(b, d.y, y, (size_t)M * N * sizeof *y));
    KT_OK(kq_copy_to_device(b, d.x, x, (size_t)M * K * sizeof *x));
    char what[64];
    snprintf(what, sizeof what, "%s linear", bname);
    if (KT_OK(kq_linear_forward(b, l, d.x, d.y, M)) && KT_OK(kq_backend_sync(b)) &&
        KT_OK(kq_copy_to_host(b, y, d.y, (size_t)M * N * sizeof *y)))
        for (int i = 0; i < M; i++)
            check_row(what, wt->type, i, y + i * N, want + i * N, abs_ + i * N, wt->deq, x + i * K,
                      N);

    /* SwiGLU over the same rows as gate (first half) and up (second half). */
    kt_poison(y, (int64_t)M * N);
    KT_OK(kq_copy_to_device(b, d.y, y, (size_t)M * N / 2 * sizeof *y));
    snprintf(what, sizeof what, "%s swiglu", bname);
    if (KT_OK(kq_linear_forward_swiglu(b, l, d.x, d.y, M)) && KT_OK(kq_backend_sync(b)) &&
        KT_OK(kq_copy_to_host(b, y, d.y, (size_t)M * N / 2 * sizeof *y))) {
        for (int i = 0; i < M; i++) {
            double sw[N / 2], sabs[N / 2];
            for (int r = 0; r < N / 2; r++) {
                double g = want[i * N + r], u = want[i * N + N / 2 + r];
                sw[r] = g / (1.0 + exp(-g)) * u;
                /* error of silu(g) u from errors in g and u of their abs scales */
                sabs[r] = abs_[i * N + r] * fabs(u) + abs_[i * N + N / 2 + r] * fabs(g) + 1e-30;
            }
            check_row(what, wt->type, i, y + i * (N / 2), sw, sabs, NULL, x + i * K, N / 2);
        }
    }
    bufs_free(&d);
done:
    free(y);
    free(want);
    free(abs_);
    kq_linear_free(l);
}

/* Experts: 3 copies of the weight as 3 experts; token i takes ids (i % 3,
 * (i + 1) % 3), both slots reading row i (slot stride 0). */
static void test_experts(kq_backend *b, const char *bname, const kt_weight *wt, const float *x)
{
    size_t one = wt->nbytes;
    uint8_t *stack = malloc(3 * one);
    float *y = malloc((size_t)M * 2 * N * sizeof *y);
    double *want = malloc((size_t)M * N * sizeof *want), *abs_ = malloc((size_t)M * N * sizeof *abs_);
    kq_experts *e = NULL;
    bufs d = {0};
    if (!stack || !y || !want || !abs_) {
        KT_CHECK(0, "out of memory");
        goto done;
    }
    for (int c = 0; c < 3; c++) memcpy(stack + c * one, wt->bytes, one);
    if (!KT_OK(kq_experts_load(b, wt->type, stack, 3 * one, 3, N, K, &e))) goto done;
    if (bufs_alloc(&d, b, (size_t)M * 2 * N)) {
        KT_CHECK(0, "out of memory");
        goto done;
    }
    int32_t ids[M * 2];
    for (int i = 0; i < M; i++) ids[2 * i] = i % 3, ids[2 * i + 1] = (i + 1) % 3;
    kt_matmul_ref(wt->deq, N, K, x, M, want, abs_);
    kt_poison(y, (int64_t)M * 2 * N);
    KT_OK(kq_copy_to_device(b, d.y, y, (size_t)M * 2 * N * sizeof *y));
    KT_OK(kq_copy_to_device(b, d.x, x, (size_t)M * K * sizeof *x));
    KT_OK(kq_copy_to_device(b, d.ids, ids, sizeof ids));
    char what[64];
    snprintf(what, sizeof what, "%s experts", bname);
    if (KT_OK(kq_experts_forward(b, e, d.x, K, 0, d.ids, M, 2, d.y)) && KT_OK(kq_backend_sync(b)) &&
        KT_OK(kq_copy_to_host(b, y, d.y, (size_t)M * 2 * N * sizeof *y)))
        for (int i = 0; i < M; i++)
            for (int s = 0; s < 2; s++)
                check_row(what, wt->type, i, y + (i * 2 + s) * N, want + i * N, abs_ + i * N,
                          wt->deq, x + i * K, N);
done:
    if (e) bufs_free(&d);
    kq_experts_free(e);
    free(stack);
    free(y);
    free(want);
    free(abs_);
}

int main(void)
{
    kt_init("test_extreme_x");
    static const char *const specs[] = {"cpu-ref", "cpu", "cuda"};
    float *x = malloc((size_t)M * K * sizeof *x);
    if (!x) return 1;
    int ran = 0;
    for (int s = 0; s < 3; s++) {
        kq_backend *b = NULL;
        if (kq_backend_open(specs[s], &b) != KQ_OK) {
            printf("note: %s does not open here (%s); not checked\n", specs[s], kq_last_error());
            continue;
        }
        ran++;
        for (int t = 0; t < kt_n_weight_types; t++) {
            kt_weight wt;
            if (kt_weight_make(&wt, kt_weight_types[t], N, K)) {
                KT_CHECK(0, "kt_weight_make %s", kq_type_name(kt_weight_types[t]));
                continue;
            }
            make_x(x);
            test_linear(b, specs[s], &wt, x);
            test_experts(b, specs[s], &wt, x);
            kt_weight_free(&wt);
        }
        kq_backend_close(b);
    }
    free(x);
    if (!ran) {
        printf("SKIP: no backend opened\n");
        return KT_SKIP;
    }
    return kt_finish();
}
