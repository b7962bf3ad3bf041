// The Hopper prefill GEMM kernel, a template over tile width and weight
// type; qgemm_sm90*.cu instantiate it (split so the instantiations compile
// in parallel). Strategy and measurements: qgemm_sm90.cu.
#ifndef KQ_CUDA_QGEMM_SM90_CUH
#define KQ_CUDA_QGEMM_SM90_CUH

#include <cstdint>
#include <cuda_fp16.h>

#include "qgemm.cuh"
#include "qgemm_frag.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define KQ_SM90 1
#endif

namespace kqc {
namespace sm90 {

constexpr int kWStages = 2, kMaxPitch = 272;
constexpr int kHalfBytes = kHalf90 * kMaxPitch;
// Every type's shared row fits a stage, and its TMA box (pitch / 2 16-bit
// elements) the 256 a box dimension may have.
#define KQ_SM90_PITCH_FITS(ID, name, BLOCK, elems, act) \
    static_assert(Group<ID>::kPitch <= kMaxPitch, #name ": shared row too wide");
KQ_QUANT_TYPES(KQ_SM90_PITCH_FITS)
#undef KQ_SM90_PITCH_FITS
constexpr int kWStageBytes = 2 * kHalfBytes;

// Consumer warpgroups per block (see qgemm_sm90). Four (one m64 tile each,
// 112 registers) compiled without spills but hung on the H200 on its first
// launch; not yet understood, so two it is.
constexpr int kNC = 2;

template <int BN> struct Cfg {
    static constexpr int kXStages = BN == 128 ? 4 : 6;
    static constexpr int kXBytes = BN * 128;
    static constexpr int kBarOff = kXStages * kXBytes + kWStages * kWStageBytes;
    static constexpr int kSmem = 1024 + kBarOff + 256;
};

#ifdef KQ_SM90
__device__ __forceinline__ uint32_t su32(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ void mbar_init(uint64_t *b, int n)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(su32(b)), "r"(n));
}
__device__ __forceinline__ void mbar_expect(uint64_t *b, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(su32(b)),
                 "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t *b)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(su32(b)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t *b, uint32_t parity)
{
    asm volatile(
        "{\n.reg .pred P1;\nLAB_WAIT:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
        "@!P1 bra LAB_WAIT;\n}\n" ::"r"(su32(b)),
        "r"(parity)
        : "memory");
}
// For the consumer warps: lanes leave the polling loop at different times,
// and the warp-wide (.aligned) wgmma instructions after a wait need them
// together.
__device__ __forceinline__ void mbar_wait_warp(uint64_t *b, uint32_t parity)
{
    mbar_wait(b, parity);
    __syncwarp();
}
__device__ __forceinline__ void tma_2d(void *dst, const CUtensorMap *m, uint64_t *bar, int c0,
                                       int c1)
{
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes "
        "[%0], [%1, {%2, %3}], [%4];" ::"r"(su32(dst)),
        "l"(m), "r"(c0), "r"(c1), "r"(su32(bar))
        : "memory");
}
__device__ __forceinline__ void tma_3d(void *dst, const CUtensorMap *m, uint64_t *bar, int c0,
                                       int c1, int c2)
{
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes "
        "[%0], [%1, {%2, %3, %4}], [%5];" ::"r"(su32(dst)),
        "l"(m), "r"(c0), "r"(c1), "r"(c2), "r"(su32(bar))
        : "memory");
}

// K-major B (x rows of 64 fp16 = 128 bytes) under the 128-byte swizzle:
// 8-row groups 1024 bytes apart; a 16-wide K step starts 32 bytes further.
__device__ __forceinline__ uint64_t xdesc(uint32_t addr)
{
    return (uint64_t)((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((uint64_t)(1024 >> 4) << 32) |
           (1ull << 62);
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit()
{
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
template <int N> __device__ __forceinline__ void wg_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}
// Keeps registers a wgmma still reads from being reused before its wait.
__device__ __forceinline__ void keep(uint32_t (&a)[4])
{
    asm volatile("" : "+r"(a[0]), "+r"(a[1]), "+r"(a[2]), "+r"(a[3]));
}
template <int N> __device__ __forceinline__ void keep_acc(float (&d)[N])
{
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i]));
}

#include "qgemm_wgmma.inc"

// One 256-value group of the warpgroup's NT m64 tiles (rows 2i, 2i + 1 of
// row[] are tile i's g8 and g8 + 8): 16 K steps.
template <int T, int BN, int NT>
__device__ __forceinline__ void group_body(float (&acc)[NT][BN / 2],
                                           const uint8_t *const (&row)[2 * NT], int t, float wf,
                                           int64_t k0, int64_t K, int xi0, uint8_t *xbase,
                                           uint64_t *xfull, uint64_t *xempty, int lane)
{
    constexpr int XS = Cfg<BN>::kXStages, R = 2 * NT;
    // kDepth steps' wgmmas stay in flight while the next step decodes, so
    // fragments rotate through kDepth + 1 register sets.
    constexpr int kDepth = 2, kSets = kDepth + 1;
    uint32_t a[kSets][NT][4];
    Gs gs[R];
#pragma unroll
    for (int r = 0; r < R; r++) gs[r] = Frag<T>::prep(row[r], wf);
#pragma unroll
    for (int j = 0; j < 8; j++) {
        bool valid = k0 + 32 * j < K;
        Sc sc[R];
#pragma unroll
        for (int r = 0; r < R; r++) sc[r] = Frag<T>::scale(row[r], j, gs[r], valid);
        if ((j & 1) == 0) {
            int xi = xi0 + j / 2;
            mbar_wait_warp(&xfull[xi % XS], (uint32_t)((xi / XS) & 1));
        }
#pragma unroll
        for (int ss = 0; ss < 2; ss++) {
            const int s = 2 * j + ss, b = s % kSets;
            uint32_t lo[R], hi[R];
            // Past K (a Q4_0/Q8_0 row's last group) the scales are 0, so
            // whatever bytes sit there decode to 0: no branch.
#pragma unroll
            for (int r = 0; r < R; r++) Frag<T>::step(row[r], s, t, sc[r], lo[r], hi[r]);
#pragma unroll
            for (int i = 0; i < NT; i++) {
                a[b][i][0] = lo[2 * i], a[b][i][1] = lo[2 * i + 1];
                a[b][i][2] = hi[2 * i], a[b][i][3] = hi[2 * i + 1];
            }
            int xi = xi0 + j / 2;
            uint32_t xa = su32(xbase + (xi % XS) * Cfg<BN>::kXBytes) + 32 * (s & 3);
            uint64_t db = xdesc(xa);
            wg_fence();
#pragma unroll
            for (int i = 0; i < NT; i++) wgmma_rs(acc[i], a[b][i], db);
            wg_commit();
            wg_wait<kDepth>();
#pragma unroll
            for (int q = 0; q < kSets; q++)
#pragma unroll
                for (int i = 0; i < NT; i++) keep(a[q][i]);
            // Steps up to s - kDepth are done: once that covers the previous
            // chunk's last step (4 xi - 1), the chunk is free.
            if ((s & 3) == kDepth - 1) {
                int prev = xi - 1;
                if (prev >= 0) {
                    __syncwarp();
                    if (lane == 0) mbar_arrive(&xempty[prev % XS]);
                    __syncwarp();  // converged again for the next wgmma.fence
                }
            }
        }
    }
    // The next group's fragments reuse these registers: drain first.
    wg_wait<0>();
#pragma unroll
    for (int q = 0; q < kSets; q++)
#pragma unroll
        for (int i = 0; i < NT; i++) keep(a[q][i]);
}
#endif

// TT: the launch's one weight type, or -1 when sources differ (a switch per
// group picks the decoder: five bodies in one kernel, which the instruction
// cache holds less well).
// NC: consumer warpgroups, 2 (each two m64 tiles) or 4 (one each: twice
// the warps to hide the decode's latency, half the registers each).
template <int BN, int TT, int NC>
__global__ void __launch_bounds__(128 * (NC + 1), 1)
    qgemm_sm90(const __grid_constant__ GemmParams p)
{
#ifdef KQ_SM90
    constexpr int XS = Cfg<BN>::kXStages, NT = 4 / NC, kWarps = 4 * NC;
    TokTile tok = tok_tile<BN>(p);
    if (tok.count <= 0) return;
    extern __shared__ uint8_t smem_raw[];
    // Pointer arithmetic (not an integer round trip) keeps the compiler
    // aware that these are shared addresses: 32-bit LDS, not generic loads.
    uint8_t *smem = smem_raw + ((1024u - (su32(smem_raw) & 1023u)) & 1023u);
    uint8_t *xbase = smem;
    uint8_t *wbase = smem + XS * Cfg<BN>::kXBytes;
    uint64_t *bars = reinterpret_cast<uint64_t *>(smem + Cfg<BN>::kBarOff);
    uint64_t *wfull = bars, *wempty = bars + 2, *xfull = bars + 4, *xempty = bars + 4 + XS;
    const int tid = threadIdx.x, wg = tid / 128, warp = tid / 32, lane = tid & 31;
    if (tid == 0) {
        for (int i = 0; i < 2; i++) mbar_init(&wfull[i], 1), mbar_init(&wempty[i], kWarps);
        for (int i = 0; i < XS; i++) mbar_init(&xfull[i], 1), mbar_init(&xempty[i], kWarps);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    const HalfTile ht0 = half_tile(p, 0, kHalf90), ht1 = half_tile(p, 1, kHalf90);
    // Split K: block z takes groups [g0, g1) and adds its partial sums.
    const int g0 = (int)((int64_t)blockIdx.z * p.groups / p.split);
    const int g1 = (int)((int64_t)(blockIdx.z + 1) * p.groups / p.split);

    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
        if (warp != 0) return;
        for (int g = g0; g < g1; g++) {
            const int gl = g - g0, ws = gl & 1;  // stages count this block's groups
            mbar_wait_warp(&wempty[ws], (uint32_t)(((gl >> 1) & 1) ^ 1));
            if (lane == 0) {
                uint32_t bytes = 0;
                bytes = kHalf90 * (p.src[ht0.src].pitch + p.src[ht1.src].pitch);
                mbar_expect(&wfull[ws], bytes);
            }
            __syncwarp();
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const HalfTile &hh = h ? ht1 : ht0;
                const GemmSrc &S = p.src[hh.src];
                uint8_t *dst = wbase + ws * kWStageBytes + h * kHalfBytes;
                int64_t row = S.row_off + hh.row0;
                const int gb = S.gbytes;
                // Boxes start on 16-byte boundaries (Group<T_Q6_K>).
                if (lane == 0)
                    tma_3d(dst, &p.w[hh.src], &wfull[ws], ((g * gb) & ~15) / 2, (int)row,
                           tok.expert);
            }
            if (lane == 0) {
                for (int c = 0; c < 4; c++) {
                    int xi = 4 * gl + c, xs = xi % XS;
                    mbar_wait(&xempty[xs], (uint32_t)(((xi / XS) & 1) ^ 1));
                    mbar_expect(&xfull[xs], Cfg<BN>::kXBytes);
                    tma_2d(xbase + xs * Cfg<BN>::kXBytes, &p.x, &xfull[xs], 256 * g + 64 * c,
                           (int)tok.row0);
                }
            }
            __syncwarp();
        }
        return;
    }

    if (NC == 2)
        asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");
    else
        asm volatile("setmaxnreg.inc.sync.aligned.u32 112;");
    // Consumer cw owns tiles NT * sub .. of half h (64 rows a tile).
    const int cw = wg - 1, h = cw / (NC / 2), sub = cw % (NC / 2);
    const int wl = warp & 3, g8 = lane >> 2, t = lane & 3;
    const HalfTile ht = h ? ht1 : ht0;
    const GemmSrc &S = p.src[ht.src];
    float acc[NT][BN / 2];
#pragma unroll
    for (int i = 0; i < NT; i++)
#pragma unroll
        for (int k = 0; k < BN / 2; k++) acc[i][k] = 0.f;
    const int ng = g1 - g0;
    for (int gl = 0; gl < ng; gl++) {
        const int g = g0 + gl, ws = gl & 1;
        mbar_wait_warp(&wfull[ws], (uint32_t)((gl >> 1) & 1));
        const uint8_t *base = wbase + ws * kWStageBytes + h * kHalfBytes + ((g * S.gbytes) & 15);
        const int r0 = 64 * NT * sub + 16 * wl + g8;
        const uint8_t *row[2 * NT];
#pragma unroll
        for (int i = 0; i < NT; i++) {
            row[2 * i] = base + (r0 + 64 * i) * S.pitch;
            row[2 * i + 1] = base + (r0 + 64 * i + 8) * S.pitch;
        }
        const uint8_t *const(&rows)[2 * NT] = row;
        int64_t k0 = 256 * (int64_t)g;
        if (TT >= 0) {
            group_body<TT < 0 ? T_Q4_K : TT, BN, NT>(acc, rows, t, S.wf, k0, p.K, 4 * gl, xbase,
                                                   xfull, xempty, lane);
        } else {
            switch (S.type) {
#define KQ_CUDA_SM90_CASE(ID, name, BLOCK, elems, act)                                            \
    case ID:                                                                                   \
        group_body<ID, BN, NT>(acc, rows, t, S.wf, k0, p.K, 4 * gl, xbase, xfull, xempty, lane); \
        break;
                KQ_QUANT_TYPES(KQ_CUDA_SM90_CASE)
#undef KQ_CUDA_SM90_CASE
            default: __trap();  // the launcher describes no other type
            }
        }
        __syncwarp();
        if (lane == 0) mbar_arrive(&wempty[ws]);
        __syncwarp();
    }
    wg_wait<0>();
#pragma unroll
    for (int i = 0; i < NT; i++) keep_acc(acc[i]);

    // Rows of this thread: tile i, r = 64 (NT sub + i) + 16 wl + g8 (+ 8);
    // tokens 8 j + 2 t (+ 1) for each n8 block j.
    if (!p.swiglu) {
        if (!ht.live) return;
#pragma unroll
        for (int i = 0; i < NT; i++) {
#pragma unroll
            for (int j = 0; j < BN / 8; j++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int64_t r = ht.row0 + 64 * (NT * sub + i) + 16 * wl + g8 + 8 * (e >> 1);
                    int n = 8 * j + 2 * t + (e & 1);
                    if (r >= S.rows || n >= tok.count) continue;
                    int64_t xr = tok.row0 + n;
                    float v = acc[i][4 * j + e] * p.x_inv[xr] * S.inv_wf;
                    float *o = out_row(p, xr) + S.out_col + r;
                    // Two halves of K add into a zeroed y: 0 + a + b is the
                    // same in either order, so results stay deterministic.
                    if (p.split > 1)
                        atomicAdd(o, v);
                    else
                        *o = v;
                }
            }
        }
        return;
    }
    // SwiGLU: the up warpgroup parks its sums in shared memory (the weight
    // stages, idle once both warpgroups are past their last group); the
    // gate warpgroup combines them.
    float *park = reinterpret_cast<float *>(wbase);
    const int tw = tid & 127;
    // Slot of (sub, tile i, register k) for this thread.
    auto slot = [&](int i, int k) { return ((NT * sub + i) * (BN / 2) + k) * 128 + tw; };
    asm volatile("bar.sync 1, %0;" ::"n"(128 * NC) : "memory");
    if (h == 1) {
#pragma unroll
        for (int i = 0; i < NT; i++)
#pragma unroll
            for (int k = 0; k < BN / 2; k++) park[slot(i, k)] = acc[i][k];
    }
    asm volatile("bar.sync 1, %0;" ::"n"(128 * NC) : "memory");
    if (h == 1 || !ht0.live) return;
    const GemmSrc &U = p.src[1];
#pragma unroll
    for (int i = 0; i < NT; i++) {
#pragma unroll
        for (int j = 0; j < BN / 8; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int64_t r = ht0.row0 + 64 * (NT * sub + i) + 16 * wl + g8 + 8 * (e >> 1);
                int n = 8 * j + 2 * t + (e & 1);
                if (r >= S.rows || n >= tok.count) continue;
                int64_t xr = tok.row0 + n;
                float xi = p.x_inv[xr];
                float gv = acc[i][4 * j + e] * xi * S.inv_wf;
                float uv = park[slot(i, 4 * j + e)] * xi * U.inv_wf;
                out_row(p, xr)[S.out_col + r] = glu_gate(p.act, gv) * uv;
            }
        }
    }
#elif defined(__CUDA_ARCH__)
    // Built for another architecture (the launcher selects this kernel only
    // where the binary holds its sm_90a code): never leave y unwritten.
    __trap();
#endif
}

// One instantiation's entry points: launch, and the shared-memory limit
// (at load).
#define KQ_SM90_INSTANCE(NAME, TT)                                                               \
    cudaError_t NAME(const GemmParams &p, int bn, dim3 grid, cudaStream_t s)                     \
    {                                                                                            \
        if (bn == 128)                                                                           \
            qgemm_sm90<128, TT, kNC><<<grid, 128 * (kNC + 1), Cfg<128>::kSmem, s>>>(p);          \
        else                                                                                     \
            qgemm_sm90<64, TT, kNC><<<grid, 128 * (kNC + 1), Cfg<64>::kSmem, s>>>(p);            \
        return cudaGetLastError();                                                               \
    }                                                                                            \
    cudaError_t NAME##_init(void)                                                                \
    {                                                                                            \
        cudaError_t e = cudaFuncSetAttribute(qgemm_sm90<128, TT, kNC>,                           \
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,        \
                                             Cfg<128>::kSmem);                                   \
        if (e == cudaSuccess)                                                                    \
            e = cudaFuncSetAttribute(qgemm_sm90<64, TT, kNC>,                                    \
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg<64>::kSmem); \
        return e;                                                                                \
    }

#define KQ_SM90_DECLARE(NAME)                                                                    \
    cudaError_t NAME(const GemmParams &p, int bn, dim3 grid, cudaStream_t s);                    \
    cudaError_t NAME##_init(void);

KQ_SM90_DECLARE(launch_mixed)
#define KQ_SM90_DECLARE_TYPE(ID, name, BLOCK, elems, act) KQ_SM90_DECLARE(launch_##name)
KQ_QUANT_TYPES(KQ_SM90_DECLARE_TYPE)
#undef KQ_SM90_DECLARE_TYPE

}  // namespace sm90
}  // namespace kqc

#endif
