/* The "cuda" backend's opening: finds the device and checks that this
 * build's code runs on it. Its kernels arrive with the CUDA backend issue;
 * until then opening reports that plainly instead of pretending. */
#include <stdio.h>

#include <cuda_runtime_api.h>

#include "core/core.h"
#include "core/error.h"

int kq__cuda_probe(int device, char *err, unsigned long cap);

kq_status kq__cuda_open(kq_backend *b)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return kq__fail(KQ_ERR_BACKEND, "kq_backend_open: no CUDA device (%s)",
                        e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    if (b->spec.device >= count)
        return kq__fail(KQ_ERR_BACKEND, "kq_backend_open: cuda:%d asked, but only %d device%s",
                        b->spec.device, count, count == 1 ? "" : "s");
    struct cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, b->spec.device)) != cudaSuccess)
        return kq__fail(KQ_ERR_BACKEND, "kq_backend_open: cuda:%d: %s", b->spec.device,
                        cudaGetErrorString(e));
    char err[160];
    if (kq__cuda_probe(b->spec.device, err, sizeof err) != 0)
        return kq__fail(KQ_ERR_BACKEND,
                        "kq_backend_open: cuda:%d (%.120s, sm_%d%d) cannot run this build's code: %s",
                        b->spec.device, prop.name, prop.major, prop.minor, err);
    snprintf(b->device, sizeof b->device, "%.120s (sm_%d%d)", prop.name, prop.major, prop.minor);
    return kq__fail(KQ_ERR_UNSUPPORTED,
                    "kq_backend_open: found %s, but the CUDA kernels are not in this version "
                    "of kquant yet; use 'cpu'",
                    b->device);
}
