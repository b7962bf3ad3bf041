// Programmatic dependent launch (Hopper and later): a kernel launched with
// launch_pdl may be scheduled while the kernel before it in the stream is
// still running, and waits inside (pdl_start) until that kernel has finished
// and its writes are visible. A decode step is ~160 small kernels, each
// bound by latency rather than bytes, and the gap between two dependent
// kernels (the first one draining, the next one's blocks being launched and
// reaching their first load) is paid ~160 times a token; with PDL the next
// kernel's launch overlaps the previous kernel's run.
//
// Rules that keep this correct:
// - every kernel launched by launch_pdl calls pdl_start() before it reads
//   or writes any memory that a kernel of the pass writes (so no read sees
//   an unfinished producer and no write races a consumer still reading).
//   Before it, a kernel may only read what no pass writes: the weights and
//   their part tables. The decode kernels use that to start their first
//   weight rows (prefetch_l2, or cp.async into their own shared memory)
//   while the kernel before them is still running: at m = 1 a linear is
//   bytes, and the bytes need not wait for x;
// - pdl_start() also lets the kernel after this one launch; that kernel
//   waits for this one in turn, so at most one kernel is ever waiting
//   ahead;
// - kernels launched the ordinary way (the GEMMs, memcpys) are full
//   barriers as before, and a pdl_start() in a kernel launched without the
//   attribute returns at once.
// KQ_PDL=0 launches everything without the attribute (for A/B timing);
// devices below compute capability 9.0 never get it.
//
// Measured (H100, working tree of e7dc355, one run): Gemma 3 270M stand-in
// decode 1,161 tokens/s with PDL against 1,010 without; in a stream of m = 1
// calls q8_0 4096x4096 9.7 us against 13.7, q4_0 7.4 against 10.4, q6_K
// 4096x14336 27.0 against 31.9. Llama 3 8B decode gained nothing (245 /
// 247 tokens/s): its step is the large linears.
#ifndef KQ_CUDA_PDL_CUH
#define KQ_CUDA_PDL_CUH

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>
#include <utility>

namespace kqc {

__device__ __forceinline__ void pdl_start()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The warp hints the L2 to fetch [p, p + bytes), a 128-byte line a lane,
// at most `cap` bytes. A hint returns no data, so it is safe anywhere, and
// before pdl_start it overlaps the fetch with the previous kernel.
__device__ __forceinline__ void prefetch_l2(const void *p, int64_t bytes, int64_t cap)
{
    const int lane = threadIdx.x & 31;
    const uintptr_t lo = reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)127;
    const uintptr_t end = reinterpret_cast<uintptr_t>(p) + (uintptr_t)(bytes < cap ? bytes : cap);
    for (uintptr_t a = lo + 128 * (uintptr_t)lane; a < end; a += 128 * 32)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(a));
}

// Whether launches on the current device carry the attribute: its compute
// capability (cached per device; a host query, safe during graph capture)
// and KQ_PDL, read once.
inline bool pdl_enabled()
{
    static const bool env_off = [] {
        const char *e = std::getenv("KQ_PDL");
        return e && !std::strcmp(e, "0");
    }();
    if (env_off) return false;
    static std::atomic<int> cache[64];  // 0 unknown, 1 off, 2 on
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    const bool cached = dev >= 0 && dev < 64;
    int v = cached ? cache[dev].load() : 0;
    if (v == 0) {
        int major = 0;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
            return false;
        v = major >= 9 ? 2 : 1;
        if (cached) cache[dev].store(v);
    }
    return v == 2;
}

// kernel<<<grid, block, smem, s>>>(args...) and the launch's error (the
// runtime's last error read and cleared), with the programmatic
// serialization attribute where pdl_enabled(); the kernel must begin with
// pdl_start().
template <typename... P, typename... A>
cudaError_t launch_pdl(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                       A &&...args)
{
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cfg.attrs = attr;
    cfg.numAttrs = pdl_enabled() ? 1 : 0;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...);
    const cudaError_t last = cudaGetLastError(); /* cleared, as after <<<>>> and a check */
    return e != cudaSuccess ? e : last;
}

}  // namespace kqc

#endif
