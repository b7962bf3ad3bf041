// Decode (m = 1) of Q4_K rows (and the SwiGLU of a fused gate/up pair, a
// warp taking gate row r and up row r) straight from global memory, no shared-memory
// staging of the weights: the default for Q4_K at m = 1 since it beat
// stream_gemv.cu on every shape measured (KQ_CUDA_DECODE=stream selects the
// streaming kernel again, for comparisons).
//
// Why: stream_gemv.cu copies each stage into shared memory with cp.async
// and decodes it from there; Nsight Compute put it at ~164 warp
// instructions per 1024 weights (issue-bound, DRAM 31-54%). Q4_K's GGUF
// block is already kernel-friendly: 144 bytes = nine 16-byte words, the
// header (d, dmin, twelve 6-bit scale bytes) one word, the nibbles eight.
// So a lane can load its 16 nibble bytes and the block's header word
// directly, each one 128-bit load, and the eight lanes of a block share the
// header load (one address).
//
// Strategy: a persistent grid (one wave of 8-warp blocks); each block first
// quantizes x into shared memory (int8, a scale per 32, sums per 16:
// xquant.cuh), then warp w takes rows w, w + warps, ... Lane l works on
// block 4i + l / 8 of the row, nibble word l % 8: bytes 16s..16s+15 of the
// nibbles hold 16 values of sub-block 2j (low nibbles) and the same 16 of
// sub-block 2j + 1 (high nibbles), j = s / 2. Per lane and block: two
// 128-bit global loads, two 128-bit shared loads of x, eight dp4a, the two
// sub-blocks' 6-bit scales and mins, and four FMAs: about 50 instructions
// per 32 weights, so ~50 warp instructions per 1024 weights.
//
// Measured (H100 80GB HBM3, read ceiling 3079 GB/s in the same run, kq
// bench --backend cuda --m 1, two rounds each, streaming kernel in
// brackets): q4_K 14336x4096 16.6 us, 65% of read (19.4, 55%); 4096x14336
// 20.0 us, 54% (21.1, 51%); 4096x4096 8.1 us, 38% (10.0, 31%); 256x4096
// 5.0 us (5.2). The long-K shape is held back by one warp walking a whole
// row (56 blocks, 14 steps); short rows by the per-call floor.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#include "decode.cuh"
#include "kernels.h"
#include "pdl.cuh"
#include "persistent.cuh"
#include "xquant.cuh"

namespace kqc {
namespace {

constexpr int kDirThreads = 256;
constexpr int64_t kDirMaxK = 16384;  // x in shared memory: 22 KB at this K
constexpr int64_t kPrefetchBytes = 8192;  // of a row, before the wait (pdl.cuh)

__device__ __forceinline__ const uint8_t *dir_row(const kq_cuda_part *parts, int n_parts, int64_t r)
{
    int p = 0;
    while (p + 1 < n_parts && r >= __ldg(&parts[p + 1].row_begin)) p++;
    return parts[p].data + (r - __ldg(&parts[p].row_begin)) * __ldg(&parts[p].row_size);
}

// One lane's share of one Q4_K block: its 32 weights against x.
__device__ __forceinline__ float q4k_lane(const uint8_t *blk, int s, int kb, const int8_t *sq,
                                          const float *sd, const int *ss)
{
    const uint4 h = __ldcs(reinterpret_cast<const uint4 *>(blk));
    const uint4 q = __ldcs(reinterpret_cast<const uint4 *>(blk + 16 + 16 * s));
    const int j = s >> 1;
    const int k0 = kb + 64 * j + 16 * (s & 1);
    const uint4 xa = *reinterpret_cast<const uint4 *>(sq + k0);
    const uint4 xb = *reinterpret_cast<const uint4 *>(sq + k0 + 32);
    const uint32_t m4 = 0x0F0F0F0Fu;
    int s0 = __dp4a((int)(q.x & m4), (int)xa.x, 0);
    s0 = __dp4a((int)(q.y & m4), (int)xa.y, s0);
    s0 = __dp4a((int)(q.z & m4), (int)xa.z, s0);
    s0 = __dp4a((int)(q.w & m4), (int)xa.w, s0);
    int s1 = __dp4a((int)((q.x >> 4) & m4), (int)xb.x, 0);
    s1 = __dp4a((int)((q.y >> 4) & m4), (int)xb.y, s1);
    s1 = __dp4a((int)((q.z >> 4) & m4), (int)xb.z, s1);
    s1 = __dp4a((int)((q.w >> 4) & m4), (int)xb.w, s1);
    const uint32_t c0 = kscale_words(h.y, h.z, h.w, 2 * j);
    const uint32_t c1 = kscale_words(h.y, h.z, h.w, 2 * j + 1);
    const float d = h2f(h.x), dm = h2f(h.x >> 16);
    const float dx0 = sd[k0 >> 5], dx1 = sd[(k0 >> 5) + 1];
    const int xs0 = ss[k0 >> 4], xs1 = ss[(k0 >> 4) + 2];
    return dx0 * (d * (float)(c0 & 0xff) * (float)s0 - dm * (float)(c0 >> 8) * (float)xs0) +
           dx1 * (d * (float)(c1 & 0xff) * (float)s1 - dm * (float)(c1 >> 8) * (float)xs1);
}

__device__ __forceinline__ float dir_dot(const uint8_t *row, int nb, int s, int sub, const XqSmem &sx)
{
    float acc = 0.0f;
#pragma unroll 2
    for (int b = sub; b < nb; b += 4) acc += q4k_lane(row + (size_t)b * 144, s, b * 256, sx.q, sx.d, sx.sum);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return acc;
}

// SWIGLU: N is the gate rows' count, the up rows follow them (the fused
// gate/up linear), and y[r] = act(gate r) * up r (glu_gate: SiLU or GELU).
template <bool SWIGLU>
__global__ void __launch_bounds__(kDirThreads)
direct_q4k(const kq_cuda_part *parts, int n_parts, int64_t K, int64_t N, const float *x, float *y,
           int act)
{
    const int lane = threadIdx.x & 31, s = lane & 7, sub = lane >> 3;
    const int nb = (int)(K / 256);
    const int64_t warps = (int64_t)gridDim.x * (kDirThreads / 32);
    {  // the warp's first rows, on their way while the previous kernel runs
        const int64_t r = (int64_t)blockIdx.x * (kDirThreads / 32) + (threadIdx.x >> 5);
        if (r < N) {
            prefetch_l2(dir_row(parts, n_parts, r), (int64_t)nb * 144, kPrefetchBytes);
            if (SWIGLU) prefetch_l2(dir_row(parts, n_parts, N + r), (int64_t)nb * 144, kPrefetchBytes);
        }
    }
    pdl_start();
    extern __shared__ __align__(16) uint8_t smem[];
    const XqSmem sx = xq_smem_carve(smem, K);
    xq_quantize_shared<kDirThreads>(x, K, sx);
    __syncthreads();
    for (int64_t r = (int64_t)blockIdx.x * (kDirThreads / 32) + (threadIdx.x >> 5); r < N; r += warps) {
        const float g = dir_dot(dir_row(parts, n_parts, r), nb, s, sub, sx);
        if (SWIGLU) {
            const float u = dir_dot(dir_row(parts, n_parts, N + r), nb, s, sub, sx);
            if (lane == 0) y[r] = glu_gate(act, g) * u;
        } else if (lane == 0) {
            y[r] = g;
        }
    }
}

template <bool SWIGLU>
cudaError_t dir_launch(const kq_cuda_dense_args *a, cudaStream_t s)
{
    static std::atomic<long long> last(-1);
    const int smem = (int)xq_smem_bytes(a->n_cols);
    const int64_t outs = SWIGLU ? a->n_rows / 2 : a->n_rows;
    int64_t grid = 0;
    cudaError_t e = persistent_grid(direct_q4k<SWIGLU>, kDirThreads, smem, last,
                                    (outs + kDirThreads / 32 - 1) / (kDirThreads / 32), grid);
    if (e != cudaSuccess) return e;
    return launch_pdl(direct_q4k<SWIGLU>, (unsigned)grid, kDirThreads, smem, s, a->parts, a->n_parts,
                      a->n_cols, outs, a->x, a->y, a->act);
}

}  // namespace
}  // namespace kqc

extern "C" int kq__cuda_direct_wanted(void)
{
    static std::atomic<int> wanted(-1);  // read once; racing first calls agree
    int w = wanted.load(std::memory_order_relaxed);
    if (w < 0) {
        const char *e = getenv("KQ_CUDA_DECODE");
        w = !(e && !strcmp(e, "stream"));
        wanted.store(w, std::memory_order_relaxed);
    }
    return w;
}

extern "C" int kq__cuda_direct_dense(kq_cuda_dense_args *a, cudaStream_t s, cudaError_t *err)
{
    using namespace kqc;
    if (!kq__cuda_direct_wanted() || a->m != 1 || !a->stream_ok ||
        a->uniform_type != T_Q4_K || a->n_cols % 256 != 0 || a->n_cols > kDirMaxK ||
        (reinterpret_cast<uintptr_t>(a->x) & 15) != 0)
        return 0;
    cudaError_t e = a->swiglu ? dir_launch<true>(a, s) : dir_launch<false>(a, s);
    a->kernel = !a->swiglu ? "direct q4_K m=1"
                : a->act == KQ_GLU_GELU ? "direct q4_K geglu m=1" : "direct q4_K swiglu m=1";
    *err = e;
    return 1;
}
