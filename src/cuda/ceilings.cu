// CUDA ceilings: what the GPU can do at best, measured on the spot, so that
// `kq bench` reports every kernel as a fraction of the same run's numbers.
//
// Read bandwidth: a read-only kernel streams a 1 GiB buffer (20 times the
// H100's 50 MB L2) with 16-byte loads, four in flight per thread, and folds
// them into one word per thread.
//
// Tensor-core peak: warps issue matrix instructions back to back on operands
// held in registers (mma.sync) or shared memory (wgmma), with nothing else
// to wait for. On sm_90a the peak is wgmma's (m64n256k16 fp16 and m64n256k32
// int8, two warpgroups per SM, four instructions per commit); mma.sync runs
// everywhere and reaches only part of Hopper's peak. The inputs are small
// non-zero values (timing zeros flatters the power draw), and the results
// feed a store that never happens but that the compiler can't remove.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "core/ceilings.h"
#include "core/error.h"
}

namespace {

constexpr int kReps = 7;

// ------------------------------------------------------------------ reading

__global__ void fill_kernel(uint4 *p, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        unsigned x = (unsigned)i * 2654435761u;
        p[i] = make_uint4(x, x ^ 0x5bd1e995u, x + 0x9e3779b9u, ~x);
    }
}

__global__ void read_kernel(const uint4 *__restrict__ p, size_t n, unsigned *sink)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned acc = 0;
    for (; i + 3 * stride < n; i += 4 * stride) {
        uint4 a = __ldcs(p + i), b = __ldcs(p + i + stride);
        uint4 c = __ldcs(p + i + 2 * stride), d = __ldcs(p + i + 3 * stride);
        acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w;
        acc ^= c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
    }
    for (; i < n; i += stride) {
        uint4 a = __ldcs(p + i);
        acc ^= a.x ^ a.y ^ a.z ^ a.w;
    }
    if (acc == 0x9e3779b9u) sink[0] = acc;
}

// ------------------------------------------------------------------ mma.sync

constexpr int kMmaChains = 8;

__global__ void mma_f16_kernel(long iters, float *sink, int *ran)
{
    unsigned a[4], b[2];
    for (int j = 0; j < 4; j++) a[j] = 0x20002000u + threadIdx.x + j;  // small halves
    for (int j = 0; j < 2; j++) b[j] = 0x1c001c00u + threadIdx.x + j;
    float c[kMmaChains][4] = {};
    for (long i = 0; i < iters; i++) {
#pragma unroll
        for (int j = 0; j < kMmaChains; j++)
            asm volatile(
                "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                : "+f"(c[j][0]), "+f"(c[j][1]), "+f"(c[j][2]), "+f"(c[j][3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
    float s = 0;
    for (int j = 0; j < kMmaChains; j++) s += c[j][0] + c[j][1] + c[j][2] + c[j][3];
    if (s == 1234.5f) sink[0] = s;
    if (threadIdx.x == 0 && blockIdx.x == 0) *ran = 1;
}

__global__ void mma_s8_kernel(long iters, float *sink, int *ran)
{
    unsigned a[4], b[2];
    for (int j = 0; j < 4; j++) a[j] = 0x01020301u + threadIdx.x + j;
    for (int j = 0; j < 2; j++) b[j] = 0x03010201u + threadIdx.x + j;
    int c[kMmaChains][4] = {};
    for (long i = 0; i < iters; i++) {
#pragma unroll
        for (int j = 0; j < kMmaChains; j++)
            asm volatile(
                "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 "
                "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                : "+r"(c[j][0]), "+r"(c[j][1]), "+r"(c[j][2]), "+r"(c[j][3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
    int s = 0;
    for (int j = 0; j < kMmaChains; j++) s += c[j][0] + c[j][1] + c[j][2] + c[j][3];
    if (s == 12345) sink[0] = (float)s;
    if (threadIdx.x == 0 && blockIdx.x == 0) *ran = 1;
}

// ------------------------------------------------------------------ wgmma

// A is 64 x 32 bytes and B 256 x 32 bytes (16 fp16 or 32 int8 per row), both
// K-major without swizzle: 8-row x 16-byte core matrices, the two along K
// 128 bytes apart (leading offset), successive 8-row groups 256 bytes apart
// (stride offset).
constexpr int kWgmmaPerCommit = 4;

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define KQ_WGMMA 1
constexpr int kASmem = 64 * 32, kBSmem = 256 * 32;
__device__ uint64_t smem_desc(const void *p)
{
    uint64_t addr = (uint64_t)__cvta_generic_to_shared(p);
    return ((addr & 0x3FFFF) >> 4) | ((uint64_t)(128 >> 4) << 16) | ((uint64_t)(256 >> 4) << 32);
}

__device__ void fill_operands(unsigned char *smem)
{
    for (int i = threadIdx.x; i < (kASmem + kBSmem) / 4; i += blockDim.x)
        reinterpret_cast<unsigned *>(smem)[i] = 0x1c011c01u + (unsigned)(i & 7);
    __syncthreads();
    // Ordinary stores, read next by the tensor cores' async proxy.
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    __syncthreads();
}
#endif

#ifdef KQ_WGMMA
// One instruction each: fp16 into f32 accumulators, int8 into s32.
__device__ __forceinline__ void wgmma_issue(float (&d)[128], uint64_t da, uint64_t db)
{
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(da), "l"(db));
}

__device__ __forceinline__ void wgmma_issue(int (&d)[128], uint64_t da, uint64_t db)
{
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p;\n}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]), "+r"(d[64]), "+r"(d[65]), "+r"(d[66]), "+r"(d[67]), "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]), "+r"(d[72]), "+r"(d[73]), "+r"(d[74]), "+r"(d[75]), "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]), "+r"(d[80]), "+r"(d[81]), "+r"(d[82]), "+r"(d[83]), "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]), "+r"(d[88]), "+r"(d[89]), "+r"(d[90]), "+r"(d[91]), "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95]), "+r"(d[96]), "+r"(d[97]), "+r"(d[98]), "+r"(d[99]), "+r"(d[100]), "+r"(d[101]), "+r"(d[102]), "+r"(d[103]), "+r"(d[104]), "+r"(d[105]), "+r"(d[106]), "+r"(d[107]), "+r"(d[108]), "+r"(d[109]), "+r"(d[110]), "+r"(d[111]), "+r"(d[112]), "+r"(d[113]), "+r"(d[114]), "+r"(d[115]), "+r"(d[116]), "+r"(d[117]), "+r"(d[118]), "+r"(d[119]), "+r"(d[120]), "+r"(d[121]), "+r"(d[122]), "+r"(d[123]), "+r"(d[124]), "+r"(d[125]), "+r"(d[126]), "+r"(d[127])
        : "l"(da), "l"(db));
}
#endif

// T = float: fp16 peak; T = int: int8 peak.
template <typename T>
__global__ void __launch_bounds__(256, 1) wgmma_kernel(long iters, float *sink, int *ran)
{
#ifdef KQ_WGMMA
    __shared__ alignas(128) unsigned char smem[kASmem + kBSmem];
    fill_operands(smem);
    uint64_t da = smem_desc(smem), db = smem_desc(smem + kASmem);
    T d[128];
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0;
    for (long it = 0; it < iters; it++) {
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
        for (int j = 0; j < kWgmmaPerCommit; j++) wgmma_issue(d, da, db);
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    }
    T s = 0;
#pragma unroll
    for (int i = 0; i < 128; i++) s += d[i];
    if (s == T(12345)) sink[0] = (float)s;
    if (threadIdx.x == 0 && blockIdx.x == 0) *ran = 1;
#else
    (void)iters, (void)sink, (void)ran;
#endif
}

// ------------------------------------------------------------------ timing

struct Gpu {
    int device;
    cudaDeviceProp prop;
    cudaEvent_t start, stop;
    float *sink;
    int *ran;
};

kq_status cuda_fail(const Gpu &g, const char *what, cudaError_t e)
{
    return kq__fail(KQ_ERR_BACKEND, "ceilings: cuda:%d: %s: %s", g.device, what,
                    cudaGetErrorString(e));
}

#define CK(what, call)                                   \
    do {                                                 \
        cudaError_t e_ = (call);                         \
        if (e_ != cudaSuccess) return cuda_fail(g, what, e_); \
    } while (0)

double median(double *t, int n)
{
    std::sort(t, t + n);
    return t[n / 2];
}

// Times `launch` kReps times after one warm-up; median seconds.
template <typename F>
kq_status time_median(Gpu &g, const char *what, F launch, double *seconds)
{
    double t[kReps];
    launch();
    CK(what, cudaGetLastError());
    CK(what, cudaDeviceSynchronize());
    for (int r = 0; r < kReps; r++) {
        CK(what, cudaEventRecord(g.start));
        launch();
        CK(what, cudaEventRecord(g.stop));
        CK(what, cudaEventSynchronize(g.stop));
        CK(what, cudaGetLastError());
        float ms = 0;
        CK(what, cudaEventElapsedTime(&ms, g.start, g.stop));
        t[r] = ms * 1e-3;
    }
    *seconds = median(t, kReps);
    return KQ_OK;
}

kq_status measure_read(Gpu &g, double *gbs)
{
    size_t bytes = (size_t)1 << 30;
    size_t free_b = 0, total_b = 0;
    CK("memory info", cudaMemGetInfo(&free_b, &total_b));
    while (bytes > free_b / 2 && bytes > ((size_t)64 << 20)) bytes /= 2;
    uint4 *buf = nullptr;
    CK("allocating the read buffer", cudaMalloc(&buf, bytes));
    size_t n = bytes / sizeof(uint4);
    int blocks = g.prop.multiProcessorCount * 4;
    fill_kernel<<<blocks, 512>>>(buf, n);
    double s = 0;
    kq_status st = time_median(
        g, "read kernel", [&] { read_kernel<<<blocks, 512>>>(buf, n, (unsigned *)g.sink); }, &s);
    cudaFree(buf);
    if (st) return st;
    *gbs = (double)bytes / s * 1e-9;
    return KQ_OK;
}

using PeakKernel = void (*)(long, float *, int *);

// Runs a peak kernel long enough (~50 ms) to time. *ops is 0 when the kernel
// has no body for this device (wgmma outside sm_90a).
kq_status measure_peak(Gpu &g, const char *what, PeakKernel kernel, int blocks, int threads,
                       double ops_per_iter_per_block, double *ops)
{
    long iters = 64;
    double s = 0;
    *ops = 0;
    CK(what, cudaMemset(g.ran, 0, sizeof(int)));
    kq_status st = time_median(g, what, [&] { kernel<<<blocks, threads>>>(iters, g.sink, g.ran); }, &s);
    if (st) return st;
    int ran = 0;
    CK(what, cudaMemcpy(&ran, g.ran, sizeof(int), cudaMemcpyDeviceToHost));
    if (!ran) return KQ_OK;
    iters = std::max(64L, (long)((double)iters * 0.05 / std::max(s, 1e-6)));
    st = time_median(g, what, [&] { kernel<<<blocks, threads>>>(iters, g.sink, g.ran); }, &s);
    if (st) return st;
    *ops = ops_per_iter_per_block * (double)iters * blocks / s;
    return KQ_OK;
}

kq_status measure_all(Gpu &g, kq_ceilings *out)
{
    kq_status st = measure_read(g, &out->read_gbs);
    if (st) return st;
    int sms = g.prop.multiProcessorCount;
    // mma.sync: 4 blocks of 8 warps per SM; each warp issues kMmaChains
    // instructions an iteration, of 2*16*8*16 (fp16) or 2*16*8*32 (int8) ops.
    double f16_mma = 0, s8_mma = 0, f16_wg = 0, s8_wg = 0;
    double per_block = 8.0 * kMmaChains * 2 * 16 * 8 * 16;
    if ((st = measure_peak(g, "fp16 mma.sync", mma_f16_kernel, sms * 4, 256, per_block, &f16_mma)))
        return st;
    if ((st = measure_peak(g, "int8 mma.sync", mma_s8_kernel, sms * 4, 256, 2 * per_block, &s8_mma)))
        return st;
    // wgmma: one block of two warpgroups per SM; each warpgroup issues
    // kWgmmaPerCommit instructions an iteration of 2*64*256*16 (fp16) or
    // 2*64*256*32 (int8) ops.
    if (g.prop.major == 9) {
        double wg_block = 2.0 * kWgmmaPerCommit * 2 * 64 * 256 * 16;
        if ((st = measure_peak(g, "fp16 wgmma", wgmma_kernel<float>, sms, 256, wg_block, &f16_wg)))
            return st;
        if ((st = measure_peak(g, "int8 wgmma", wgmma_kernel<int>, sms, 256, 2 * wg_block, &s8_wg)))
            return st;
    }
    out->fp16_tflops = std::max(f16_mma, f16_wg) * 1e-12;
    out->int8_tops = std::max(s8_mma, s8_wg) * 1e-12;
    // The GEMM dequantizes weights to fp16 for the tensor cores, so fp16 is
    // the peak its TFLOP/s are measured against.
    out->compute_tops = out->fp16_tflops;
    snprintf(out->compute_what, sizeof out->compute_what, "fp16 tensor cores (%s)",
             f16_wg > f16_mma ? "wgmma" : "mma.sync");
    return KQ_OK;
}

}  // namespace

extern "C" kq_status kq__cuda_ceilings(int device, kq_ceilings *out)
{
    memset(out, 0, sizeof *out);
    Gpu g{};
    g.device = device;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return kq__fail(KQ_ERR_BACKEND, "ceilings: no CUDA device (%s)",
                        e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    if (device < 0 || device >= count)
        return kq__fail(KQ_ERR_BACKEND, "ceilings: cuda:%d: no such device (%d found)", device, count);
    CK("selecting the device", cudaSetDevice(device));
    CK("reading its properties", cudaGetDeviceProperties(&g.prop, device));
    out->llc_bytes = (unsigned long long)g.prop.l2CacheSize;
    kq_status st = KQ_OK;
    e = cudaEventCreate(&g.start);
    if (e == cudaSuccess) e = cudaEventCreate(&g.stop);
    if (e == cudaSuccess) e = cudaMalloc(&g.sink, 64);
    if (e == cudaSuccess) e = cudaMalloc(&g.ran, sizeof(int));
    st = e != cudaSuccess ? cuda_fail(g, "setting up", e) : measure_all(g, out);
    cudaFree(g.sink);
    cudaFree(g.ran);
    if (g.start) cudaEventDestroy(g.start);
    if (g.stop) cudaEventDestroy(g.stop);
    return st;
}
