// Sizing a persistent grid (one full wave of a kernel's blocks, each looping
// over its share of the work), for stream_gemv.cu and the direct kernels: the
// SM count per device and the occupancy calculator's blocks per SM, both
// cached, since every decode call asks and the answers do not change.
#ifndef KQ_CUDA_PERSISTENT_CUH
#define KQ_CUDA_PERSISTENT_CUH

#include <atomic>
#include <cstdint>
#include <cuda_runtime.h>

namespace kqc {

struct DeviceInfo {
    int dev, sms;
};

// The current device and its SM count, read once per device: a host-side
// query (no stream work, so safe during graph capture); racing first calls
// agree.
inline cudaError_t device_info(DeviceInfo &di)
{
    static std::atomic<int> cache[64];
    cudaError_t e = cudaGetDevice(&di.dev);
    if (e != cudaSuccess) return e;
    bool cached = di.dev >= 0 && di.dev < 64;
    if (cached && (di.sms = cache[di.dev].load()) > 0) return cudaSuccess;
    e = cudaDeviceGetAttribute(&di.sms, cudaDevAttrMultiProcessorCount, di.dev);
    if (e == cudaSuccess && cached) cache[di.dev].store(di.sms);
    return e;
}

// Blocks of `kernel` (threads a block, smem bytes of shared memory) that fit
// on one SM, from the occupancy calculator; `last` (one per kernel) keeps
// its last answer as device << 40 | smem << 8 | n.
template <typename Kernel>
cudaError_t resident_cached(Kernel kernel, int threads, int smem, const DeviceInfo &di,
                            std::atomic<long long> &last, int &n)
{
    long long key = ((long long)di.dev << 40) | ((long long)smem << 8), v = last.load();
    if (v >= 0 && (v & ~0xffLL) == key) {
        n = (int)(v & 0xff);
        return cudaSuccess;
    }
    cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem);
    if (e == cudaSuccess) last.store(key | (n & 0xff));
    return e;
}

// A persistent grid for `kernel`: one full wave (the SMs times the blocks
// that fit on one, at least one), but no more blocks than `need`.
template <typename Kernel>
cudaError_t persistent_grid(Kernel kernel, int threads, int smem, std::atomic<long long> &last,
                            int64_t need, int64_t &grid)
{
    DeviceInfo di;
    int per_sm = 0;
    cudaError_t e = device_info(di);
    if (e == cudaSuccess) e = resident_cached(kernel, threads, smem, di, last, per_sm);
    if (e != cudaSuccess) return e;
    grid = (int64_t)di.sms * (per_sm < 1 ? 1 : per_sm);
    if (grid > need) grid = need;
    return cudaSuccess;
}

}  // namespace kqc

#endif
