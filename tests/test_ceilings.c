/* The ceilings kq bench divides by: each backend measures a read bandwidth
 * and a compute peak that are finite and positive, names the instruction the
 * peak is of, and knows its last-level cache. The numbers are printed for the
 * log; no timing is asserted beyond "a real measurement happened". On a
 * machine without a GPU the CUDA part says why it is skipped. */
#include <math.h>
#include <string.h>

#include "core/ceilings.h"
#include "testutil.h"

static void check_ceilings(const char *who, const kq_ceilings *c)
{
    printf("%-14s read %8.1f GB/s  compute %8.3f T/s (%s)  int8 %.3f  fp16 %.3f  LLC %llu MiB\n",
           who, c->read_gbs, c->compute_tops, c->compute_what, c->int8_tops, c->fp16_tflops,
           c->llc_bytes >> 20);
    KT_CHECK(isfinite(c->read_gbs) && c->read_gbs > 0, "%s: read %g GB/s", who, c->read_gbs);
    KT_CHECK(isfinite(c->compute_tops) && c->compute_tops > 0, "%s: compute %g", who,
             c->compute_tops);
    KT_CHECK(c->compute_what[0] != '\0', "%s: compute peak names its instruction", who);
    KT_CHECK(c->llc_bytes >= (64u << 10), "%s: last-level cache %llu bytes", who, c->llc_bytes);
}

int main(void)
{
    kt_init("test_ceilings");
    static const char *specs[] = {"cpu:threads=1", "cpu-ref:threads=2"};
    for (int i = 0; i < 2; i++) {
        kq_backend *b = NULL;
        kq_ceilings c;
        if (!KT_OK(kq_backend_open(specs[i], &b))) continue;
        if (KT_OK(kq__backend_ceilings(b, &c))) check_ceilings(specs[i], &c);
        kq_backend_close(b);
    }
    kq_ceilings c;
    kq_status st = kq__backend_ceilings(NULL, &c);
    KT_CHECK(st == KQ_ERR_INVALID_ARG && strstr(kq_last_error(), "NULL"), "NULL backend: %s",
             kq_last_error());
#ifdef KQ_HAVE_CUDA
    st = kq__cuda_ceilings(0, &c);
    if (st == KQ_ERR_BACKEND && strstr(kq_last_error(), "no CUDA device")) {
        printf("SKIP cuda part: %s\n", kq_last_error());
    } else if (KT_CHECK(st == KQ_OK, "cuda ceilings: %s", kq_last_error())) {
        check_ceilings("cuda:0", &c);
        KT_CHECK(c.int8_tops > 0 && c.fp16_tflops > 0, "cuda: both tensor-core peaks measured");
    }
#else
    printf("SKIP cuda part: this build has no CUDA backend\n");
#endif
    return kt_finish();
}
