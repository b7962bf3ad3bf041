/* kq_alloc, kq_free, kq_copy_to_device/host and the stream calls on the CPU
 * backends (host memory, memcpy; no streams). The CUDA versions are tested
 * by the CUDA tests on a GPU. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define KT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KT_ASAN 1
#endif
#endif
#ifndef KT_ASAN
#define KT_ASAN 0
#endif

static void round_trip(kq_backend *b, const char *spec)
{
    size_t n = (size_t)kt_range(1, 100000);
    float *src = malloc(n * sizeof *src), *back = malloc(n * sizeof *back);
    void *dev = NULL;
    kt_fill_normal(src, (int64_t)n, 3.0f);
    kt_poison(back, (int64_t)n);
    if (KT_OK(kq_alloc(b, n * sizeof(float), &dev))) {
        KT_CHECK((uintptr_t)dev % 64 == 0, "%s: kq_alloc gives 64-byte alignment (%p)", spec, dev);
        KT_OK(kq_copy_to_device(b, dev, src, n * sizeof(float)));
        KT_OK(kq_copy_to_host(b, back, dev, n * sizeof(float)));
        KT_CHECK(memcmp(src, back, n * sizeof(float)) == 0, "%s: %zu floats come back", spec, n);
        /* A forward on kq_alloc'd buffers, as a program written for CUDA would. */
        kt_weight w;
        kq_linear *l = NULL;
        float *x = NULL, *y = NULL;
        if (KT_CHECK(kt_weight_make(&w, KQ_TYPE_Q8_0, 5, 64) == 0, "weights") &&
            KT_OK(kq_linear_load(b, KQ_TYPE_Q8_0, w.bytes, w.nbytes, 5, 64, &l)) &&
            KT_OK(kq_alloc(b, 64 * sizeof(float), (void **)&x)) &&
            KT_OK(kq_alloc(b, 5 * sizeof(float), (void **)&y))) {
            float hx[64], hy[5];
            kt_fill_normal(hx, 64, 1.0f);
            kt_poison(hy, 5);
            KT_OK(kq_copy_to_device(b, x, hx, sizeof hx));
            KT_OK(kq_copy_to_device(b, y, hy, sizeof hy));
            KT_OK(kq_linear_forward(b, l, x, y, 1));
            KT_OK(kq_copy_to_host(b, hy, y, sizeof hy));
            for (int r = 0; r < 5; r++) {
                double want = 0, a = 0;
                for (int j = 0; j < 64; j++) {
                    want += (double)w.deq[r * 64 + j] * hx[j];
                    a += fabs((double)w.deq[r * 64 + j] * hx[j]);
                }
                /* cpu-ref is exact to float rounding; cpu quantizes x to int8
                 * (each element off by at most amax/254 of its block of 32),
                 * bounded here by 2 * sum|w| * amax / 254 over the row. */
                double wsum = 0, amax = 0;
                for (int j = 0; j < 64; j++) {
                    wsum += fabs(w.deq[r * 64 + j]);
                    if (fabs(hx[j]) > amax) amax = fabs(hx[j]);
                }
                double tol = 0x1p-22 * a + 2.0 * wsum * amax / 254.0 + 1e-30;
                KT_CHECK(hy[r] == hy[r] && fabs(hy[r] - want) <= tol,
                         "%s: forward on kq_alloc buffers: y[%d] = %g, want %g", spec, r, hy[r],
                         want);
            }
            kt_weight_free(&w);
        }
        kq_free(b, x);
        kq_free(b, y);
        kq_linear_free(l);
    }
    kq_free(b, dev);
    kq_free(b, NULL); /* a no-op */
    kq_free(NULL, NULL);
    free(src);
    free(back);
}

static void misuse(kq_backend *b)
{
    void *p = (void *)1;
    char buf[8];
    KT_EXPECT(kq_alloc(b, 0, &p), KQ_ERR_INVALID_ARG, "bytes = 0");
    KT_CHECK(p == NULL, "out cleared on failure");
    KT_EXPECT(kq_alloc(NULL, 8, &p), KQ_ERR_INVALID_ARG, "backend is NULL");
    KT_EXPECT(kq_alloc(b, 8, NULL), KQ_ERR_INVALID_ARG, "out is NULL");
    KT_EXPECT(kq_alloc(b, SIZE_MAX, &p), KQ_ERR_INVALID_ARG, "too large");
#if !KT_ASAN
    /* AddressSanitizer stops the process on an allocation this large
     * instead of returning NULL, so this case runs only without it. */
    KT_EXPECT(kq_alloc(b, SIZE_MAX / 2, &p), KQ_ERR_NO_MEMORY, "cannot allocate");
#endif
    KT_EXPECT(kq_copy_to_device(b, NULL, buf, 8), KQ_ERR_INVALID_ARG, "dst is NULL");
    KT_EXPECT(kq_copy_to_host(b, buf, NULL, 8), KQ_ERR_INVALID_ARG, "src is NULL");
    KT_EXPECT(kq_copy_to_host(NULL, buf, buf, 8), KQ_ERR_INVALID_ARG, "backend is NULL");
    KT_CHECK(kq_copy_to_device(b, NULL, NULL, 0) == KQ_OK, "0 bytes is a no-op");
    KT_EXPECT(kq_backend_set_stream(b, NULL), KQ_ERR_UNSUPPORTED, "CUDA only");
    KT_EXPECT(kq_backend_set_stream(NULL, NULL), KQ_ERR_INVALID_ARG, "backend is NULL");
    KT_CHECK(kq_backend_stream(b) == NULL && kq_backend_stream(NULL) == NULL,
             "CPU backends have no stream");
}

int main(void)
{
    kt_init("test_memory");
    const char *specs[] = {"cpu-ref", "cpu"};
    for (int i = 0; i < 2; i++) {
        kq_backend *b = NULL;
        if (!KT_OK(kq_backend_open(specs[i], &b))) continue;
        for (int rep = 0; rep < 4; rep++) round_trip(b, specs[i]);
        misuse(b);
        kq_backend_close(b);
    }
    return kt_finish();
}
