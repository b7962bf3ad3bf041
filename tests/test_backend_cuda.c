/* The "cuda" spec says plainly what it can do on this machine: not built
 * (no nvcc), no device (CI), or a device found, which then opens, names
 * itself and refuses an ordinal it does not have. Each case checks status
 * and message. */
#include <string.h>

#include "testutil.h"

int main(void)
{
    kt_init("test_backend_cuda");
    kq_backend *b = NULL;
    kq_status st = kq_backend_open("cuda", &b);
    const char *msg = kq_last_error();
#ifndef KQ_HAVE_CUDA
    printf("case: built without CUDA\n");
    KT_CHECK(st == KQ_ERR_UNSUPPORTED && strstr(msg, "not in this build"), "%s: %s",
             kq_status_name(st), msg);
#else
    if (st == KQ_ERR_BACKEND && strstr(msg, "no CUDA device")) {
        printf("case: CUDA built, no device here (%s)\n", msg);
        KT_CHECK(1, "no device");
    } else {
        KT_CHECK(st == KQ_OK && b, "open cuda: %s: %s", kq_status_name(st), msg);
        if (b) {
            printf("case: CUDA built, device found: %s\n", kq_backend_device(b));
            KT_CHECK(strcmp(kq_backend_name(b), "cuda") == 0 &&
                         strstr(kq_backend_device(b), "sm_"),
                     "name '%s', device '%s'", kq_backend_name(b), kq_backend_device(b));
            KT_CHECK(kq_backend_stream(b) != NULL, "a stream of its own");
            KT_OK(kq_backend_sync(b));
            kq_backend_close(b);
            b = NULL;
        }
        st = kq_backend_open("cuda:1023", &b);
        KT_CHECK(st == KQ_ERR_BACKEND && strstr(kq_last_error(), "cuda:1023 asked"), "%s: %s",
                 kq_status_name(st), kq_last_error());
    }
#endif
    KT_CHECK(b == NULL, "no handle on failure");
    /* "auto" always opens something. */
    if (KT_OK(kq_backend_open("auto", &b))) {
        printf("auto -> %s: %s\n", kq_backend_name(b), kq_backend_device(b));
        kq_backend_close(b);
    }
    return kt_finish();
}
