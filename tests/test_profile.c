/* KQ_PROFILE=1 prints a per-op, per-shape timing table at exit; without it
 * the library prints nothing. The test runs itself as a child both ways. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "testutil.h"

/* An op name longer than the table's field: its calls must still share one
 * row (the fifth session's profile showed "model:logits_out" once per call). */
#define LONG_OP "model:an_op_name_longer_than_any_field"

static int child(void)
{
    kq_backend *b = NULL;
    kt_weight w;
    if (kq_backend_open("cpu-ref", &b) || kt_weight_make(&w, KQ_TYPE_Q6_K, 24, 512)) return 1;
    kq_linear *l = NULL;
    if (kq_linear_load(b, w.type, w.bytes, w.nbytes, 24, 512, &l)) return 1;
    float x[3 * 512], y[3 * 24];
    kt_fill_normal(x, 3 * 512, 1.0f);
    for (int i = 0; i < 5; i++)
        if (kq_linear_forward(b, l, x, y, 3)) return 1;
    if (kq__profile_enabled())
        for (int i = 0; i < 7; i++) kq__profile_record(LONG_OP, "f32", 640, 0, 0, 0, 1, 1e-6);
    kq_linear_free(l);
    kq_backend_close(b);
    kt_weight_free(&w);
    return 0;
}

static char *run_child(const char *profile)
{
    char cmd[4200], self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return NULL;
    self[n] = '\0';
    snprintf(cmd, sizeof cmd, "KQ_PROFILE=%s '%s' child 2>&1", profile, self);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(cap, 1);
    while (out && len + 1 < cap) {
        size_t got = fread(out + len, 1, cap - 1 - len, p);
        if (got == 0) break;
        len += got;
    }
    int rc = pclose(p);
    KT_CHECK(rc == 0, "child with KQ_PROFILE=%s exited %d", profile, rc);
    return out;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child();
    kt_init("test_profile");
    char *on = run_child("1"), *off = run_child("0");
    KT_CHECK(on && strstr(on, "kquant profile") && strstr(on, "linear") && strstr(on, "q6_K") &&
                 strstr(on, "24") && strstr(on, "512"),
             "profile table names op, type and shape: '%s'", on ? on : "(none)");
    /* 5 calls of one shape are one row with calls = 5. */
    KT_CHECK(on && strstr(on, "       5 "), "5 calls counted: '%s'", on ? on : "");
    const char *lp = on ? strstr(on, "model:an_op") : NULL;
    KT_CHECK(lp && !strstr(lp + 1, "model:an_op") && strstr(lp, "       7 "),
             "a long op name's 7 calls are one row: '%s'", on ? on : "");
    KT_CHECK(off && off[0] == '\0', "without KQ_PROFILE nothing is printed: '%s'", off ? off : "");
    free(on);
    free(off);
    return kt_finish();
}
