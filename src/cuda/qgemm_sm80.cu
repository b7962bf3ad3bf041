// Prefill GEMM with mma.sync (sm_80 to sm_89, and any card the wgmma kernel
// does not run on): quantized weights times fp16 x.
//
// Strategy. A block of 8 warps covers 128 weight rows (two halves of 64:
// plain rows, or gate and up rows for SwiGLU) x 64 tokens. x arrives 256
// values of 64 tokens at a time through cp.async into a double-buffered
// shared tile (rows padded by 16 bytes so ldmatrix is conflict-free). Each
// warp owns 16 weight rows: per 16-wide K step it decodes its A fragment
// from the weight blocks in global memory (L1-cached, the same decoders as
// the Hopper kernel, qgemm_frag.cuh) and issues one m16n8k16 per 8 tokens,
// accumulating 32 floats per thread.
//
// This is the path of cards before Hopper, of Hopper with gemm=mma, and of
// weights whose rows are not 16-byte multiples (no TMA map). Measured on the H200
// (kq bench, bench/RESULTS.md): q4_K 14336x4096 at m = 512 in 419 us (143
// TFLOP/s, 16% of the wgmma peak; the batched-decode kernel took 2918 us),
// m = 2048 153 TFLOP/s; q6_K 150 / 167; experts 128 x (768x2048) top-8 at
// m = 512 64 TFLOP/s. Bounds: mma.sync reaches only part of Hopper's
// tensor rate, the weight loads are 2-byte global loads issued at use
// (latency exposed), and with 64 tokens per block a K-long shape at small
// m has too few blocks (4096x14336 at m = 32: 32 blocks for 132 SMs).
#include <cstdint>
#include <cuda_fp16.h>

#include "qgemm.cuh"
#include "qgemm_frag.cuh"

namespace kqc {
namespace {

constexpr int kBN = 64, kXPitch = 256 + 8;  // halves per shared x row
constexpr int kXTile = kBN * kXPitch * 2;    // bytes
constexpr int kSmem80 = 2 * kXTile;

__device__ __forceinline__ uint32_t su32(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

// Group g of the block's tokens into shared buffer dst; rows past the
// scratch and K past the row are zero-filled.
__device__ __forceinline__ void load_x(const GemmParams &p, int64_t row0, int g, __half *dst)
{
    for (int i = threadIdx.x; i < kBN * 32; i += blockDim.x) {
        int r = i >> 5, c = i & 31;
        int64_t xr = row0 + r, k = 256 * (int64_t)g + 8 * c;
        bool in = xr < p.x_rows && k < p.K;
        const __half *src = p.xh + (in ? xr * p.K + k : 0);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(
                         su32(dst + r * kXPitch + 8 * c)),
                     "l"(src), "r"(in ? 16 : 0)
                     : "memory");
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
}

__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1)
{
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <int T>
__device__ __forceinline__ void group_body(float (&acc)[kBN / 8][4], const uint8_t *r0,
                                           const uint8_t *r1, int t, float wf, int64_t k0,
                                           int64_t K, const __half *xs, int lane)
{
    const Gs g0 = Frag<T>::prep(r0, wf), g1 = Frag<T>::prep(r1, wf);
#pragma unroll
    for (int j = 0; j < 8; j++) {
        if (k0 + 32 * j >= K) break;
        Sc s0 = Frag<T>::scale(r0, j, g0, true), s1 = Frag<T>::scale(r1, j, g1, true);
#pragma unroll
        for (int ss = 0; ss < 2; ss++) {
            const int s = 2 * j + ss;
            uint32_t a[4];
            Frag<T>::step(r0, s, t, s0, a[0], a[2]);
            Frag<T>::step(r1, s, t, s1, a[1], a[3]);
#pragma unroll
            for (int q = 0; q < kBN / 16; q++) {
                int tok = 16 * q + (lane >> 4) * 8 + (lane & 7), kk = 16 * s + ((lane >> 3) & 1) * 8;
                uint32_t b[4];
                asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                             : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                             : "r"(su32(xs + tok * kXPitch + kk)));
                mma16816(acc[2 * q], a, b[0], b[1]);
                mma16816(acc[2 * q + 1], a, b[2], b[3]);
            }
        }
    }
}

__global__ void __launch_bounds__(256) qgemm_sm80(const GemmParams p)
{
    TokTile tok = tok_tile<kBN>(p);
    if (tok.count <= 0) return;
    extern __shared__ __align__(16) uint8_t smem80[];
    __half *xs = reinterpret_cast<__half *>(smem80);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, h = warp >> 2;
    const int g8 = lane >> 2, t = lane & 3;
    HalfTile ht = half_tile(p, h, kHalf80);
    const GemmSrc &S = p.src[ht.src];
    const int gb = S.gbytes;
    // Rows past the source decode its last row (valid memory, never stored).
    int64_t ra = ht.row0 + 16 * (warp & 3) + g8, rb = ra + 8;
    int64_t ca = ra < S.rows ? ra : S.rows - 1, cb = rb < S.rows ? rb : S.rows - 1;
    const uint8_t *wrow = S.data + (int64_t)tok.expert * S.expert_bytes;
    const uint8_t *pa = wrow + (S.row_off + ca) * S.row_size;
    const uint8_t *pb = wrow + (S.row_off + cb) * S.row_size;
    float acc[kBN / 8][4];
#pragma unroll
    for (int i = 0; i < kBN / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    load_x(p, tok.row0, 0, xs);
    for (int g = 0; g < p.groups; g++) {
        if (g + 1 < p.groups) {
            load_x(p, tok.row0, g + 1, xs + ((g + 1) & 1) * (kXTile / 2));
            asm volatile("cp.async.wait_group 1;" ::: "memory");
        } else {
            asm volatile("cp.async.wait_group 0;" ::: "memory");
        }
        __syncthreads();
        const __half *xg = xs + (g & 1) * (kXTile / 2);
        const uint8_t *ga = pa + (int64_t)g * gb, *gbp = pb + (int64_t)g * gb;
        int64_t k0 = 256 * (int64_t)g;
        switch (S.type) {
#define KQ_CUDA_SM80_CASE(ID, name, BLOCK, elems, act) \
    case ID: group_body<ID>(acc, ga, gbp, t, S.wf, k0, p.K, xg, lane); break;
            KQ_QUANT_TYPES(KQ_CUDA_SM80_CASE)
#undef KQ_CUDA_SM80_CASE
        default: __trap();  // the launcher describes no other type
        }
        __syncthreads();
    }
    if (!p.swiglu) {
        if (!ht.live) return;
#pragma unroll
        for (int j = 0; j < kBN / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int64_t r = (e >> 1) ? rb : ra;
                int n = 8 * j + 2 * t + (e & 1);
                if (r >= S.rows || n >= tok.count) continue;
                int64_t xr = tok.row0 + n;
                out_row(p, xr)[S.out_col + r] = acc[j][e] * p.x_inv[xr] * S.inv_wf;
            }
        return;
    }
    // SwiGLU: the up warps (h = 1) park their sums; the gate warps combine.
    float *park = reinterpret_cast<float *>(smem80);
    const int tw = threadIdx.x & 127;
    if (h == 1)
#pragma unroll
        for (int j = 0; j < kBN / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) park[(4 * j + e) * 128 + tw] = acc[j][e];
    __syncthreads();
    if (h == 1 || !ht.live) return;
    const GemmSrc &U = p.src[1];
#pragma unroll
    for (int j = 0; j < kBN / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int64_t r = (e >> 1) ? rb : ra;
            int n = 8 * j + 2 * t + (e & 1);
            if (r >= S.rows || n >= tok.count) continue;
            int64_t xr = tok.row0 + n;
            float xi = p.x_inv[xr];
            float gv = acc[j][e] * xi * S.inv_wf, uv = park[(4 * j + e) * 128 + tw] * xi * U.inv_wf;
            out_row(p, xr)[S.out_col + r] = glu_gate(p.act, gv) * uv;
        }
}

}  // namespace

cudaError_t gemm_sm80_init(void)
{
    return cudaFuncSetAttribute(qgemm_sm80, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem80);
}

cudaError_t gemm_sm80_launch(const GemmParams &p, int bn, dim3 grid, cudaStream_t s)
{
    (void)bn;  // always kBN: the launcher sizes grid.y for 64 tokens
    qgemm_sm80<<<grid, 256, kSmem80, s>>>(p);
    return cudaGetLastError();
}

}  // namespace kqc
