// Launch probe: runs one tiny kernel on the chosen device, so that a build
// whose architectures do not include the device ("no kernel image is
// available") fails when the backend opens, with a clear message, rather
// than at the first forward call.
#include <cuda_runtime.h>

namespace {
__global__ void kq_probe_kernel(int *out) { out[threadIdx.x] = static_cast<int>(threadIdx.x) * 3; }
}  // namespace

extern "C" int kq__cuda_probe(int device, char *err, unsigned long cap)
{
    auto fail = [&](cudaError_t e) {
        if (cap) {
            const char *s = cudaGetErrorString(e);
            unsigned long i = 0;
            for (; s[i] && i + 1 < cap; i++) err[i] = s[i];
            err[i] = '\0';
        }
        return -1;
    };
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) return fail(e);
    int *d = nullptr;
    if ((e = cudaMalloc(&d, 32 * sizeof(int))) != cudaSuccess) return fail(e);
    kq_probe_kernel<<<1, 32>>>(d);
    int h[32] = {0};
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (e != cudaSuccess) return fail(e);
    for (int i = 0; i < 32; i++)
        if (h[i] != i * 3) return fail(cudaErrorUnknown);
    return 0;
}
