/* Error measure and tolerances shared by `kq bench` and `kq verify`. */
#include "compare.h"

#include <math.h>
#include <string.h>

double kq_rel_error(const float *y, const float *ref, size_t n)
{
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]) && isfinite(ref[i])) return INFINITY;
        double d = (double)y[i] - (double)ref[i];
        diff += d * d;
        norm += (double)ref[i] * (double)ref[i];
    }
    if (norm == 0.0) return sqrt(diff);
    return sqrt(diff / norm);
}

double kq_rel_tolerance(const char *backend_name)
{
    /* cpu-ref rounds each double dot product once to float: relative error
     * at most 2^-24 per element, so the Frobenius ratio stays below 1e-6. */
    if (!strcmp(backend_name, "cpu-ref")) return 1e-6;
    /* Fast kernels may quantize activations to int8 with one scale per block
     * of 32 to 256 values. For Gaussian-like data the block absmax is about
     * 3 sigma, so the rounding error has rms 3/127/sqrt(12) = 0.7% of sigma,
     * and a dot product over independent terms inherits about that relative
     * error. fp16 activations (2^-11) sit far below it. 3e-2 leaves a 4x
     * margin over that and still catches any wrong row, block or expert,
     * which gives errors near 100%. */
    return 3e-2;
}
