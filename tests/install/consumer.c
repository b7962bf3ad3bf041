/* A program outside the tree, built against an installed kquant: proves the
 * header, libraries, pkg-config file and CMake package work. */
#include <stdio.h>
#include <string.h>

#include <kquant.h>

int main(void)
{
    if (strcmp(kq_version(), KQ_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", KQ_VERSION_STRING, kq_version());
        return 1;
    }
    kq_backend *b = NULL;
    if (kq_backend_open("cpu", &b) != KQ_OK) {
        fprintf(stderr, "open: %s\n", kq_last_error());
        return 1;
    }
    /* One q8_0 row of small integers with largest magnitude 127, and x the
     * same: both block scales are exactly 1 (the cpu backend quantizes x to
     * int8 blocks too), so every step is exact and so is y. */
    float w[32], x[32], y[1];
    float want = 0;
    for (int i = 0; i < 32; i++) {
        w[i] = i == 0 ? 127.0f : (float)(i % 7 - 3);
        x[i] = i == 1 ? 127.0f : (float)(i - 10);
        want += w[i] * x[i];
    }
    unsigned char q[34];
    kq_linear *l = NULL;
    if (kq_quantize(KQ_TYPE_Q8_0, w, 1, 32, q, sizeof q) != KQ_OK ||
        kq_linear_load(b, KQ_TYPE_Q8_0, q, sizeof q, 1, 32, &l) != KQ_OK ||
        kq_linear_forward(b, l, x, y, 1) != KQ_OK) {
        fprintf(stderr, "linear: %s\n", kq_last_error());
        return 1;
    }
    kq_linear_free(l);
    kq_backend_close(b);
    if (y[0] != want) {
        fprintf(stderr, "y = %g, want %g\n", y[0], want);
        return 1;
    }
    printf("consumer ok: kquant %s, y = %g\n", kq_version(), y[0]);
    return 0;
}
