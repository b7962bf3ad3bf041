// Decode (m = 1) and small batches (m = 2..4) for one quantized type whose
// rows are 16-byte multiples in device memory and K a multiple of 256: the
// weights stream through shared memory, 256-value groups at a time (one
// k-quant block or eight 32-value blocks; stream_types.cuh decodes the
// types other than Q4_K, Q5_K and Q6_K). Other calls stay with matvec.cu.
//
// Strategy: a persistent grid (one full wave: the occupancy calculator's
// blocks per SM) of 8-warp blocks walks tiles of 8 rows (the part table's
// blocks, so a tile never straddles fused parts), block b taking tiles b,
// b + grid, ... Warp w owns row w of each tile and runs its own 4-slot
// cp.async pipeline along it: a stage is a chunk of 16 (Q4_K) or 8 (Q5_K,
// Q6_K) weight blocks, 1.1-2.3 KB copied 16 bytes per lane, three stages in
// flight per warp whatever the register budget; no block barrier after the
// prologue. The warp decodes a stage from shared memory with the 32-value
// sub-block-per-lane layout of decode.cuh (Wide) and dp4a against int8 x.
// m = 1 (K <= 16384): each block quantizes x into shared memory itself,
// with the sums of the int8 values per 16 (the min/offset terms), while its
// first stages are in flight: one launch per call. m = 2..4: quantize_x
// writes the same into the scratch and the kernel reads it through L1.
//
// Measured (H200, read ceiling 4432 GB/s in the same run, kq bench
// --backend cuda, m = 1; matvec.cu's kernel before in brackets): q4_K
// 14336x4096 18.0 us (41%; 26.4), 4096x14336 19.0 us (39%; 23.1), 4096x4096
// 9.1 us (23%; 10.5); q6_K 14336x4096 26.8 us (41%; 31.0), 4096x14336
// 29.8 us (37%; 28.3). Issue-bound, not memory-bound (ncu, q4_K
// 14336x4096: ~164 warp instructions per 1024 weights, 0.60 issued per
// scheduler per cycle, DRAM 31%; its SASS had 539 IMAD to 32 dp4a, before
// the 32-bit job counters): the next gain is fewer instructions per weight,
// not more bytes in flight. bench/RESULTS.md has the history.
#include <atomic>
#include <cstdint>
#include <cuda_runtime.h>

#include "decode.cuh"
#include "kernels.h"
#include "pdl.cuh"
#include "persistent.cuh"
#include "stream_types.cuh"
#include "xquant.cuh"

namespace kqc {
namespace {

constexpr int kThreads = 256;  // 8 warps: one per row of a tile
constexpr int kTileRows = KQ_CUDA_ROWS_PER_BLOCK;
#ifndef KQ_STREAM_CHUNK
#define KQ_STREAM_CHUNK 8
#endif
#ifndef KQ_STREAM_STAGES
#define KQ_STREAM_STAGES 4
#endif
constexpr int kStages = KQ_STREAM_STAGES;
constexpr int64_t kFusedMaxK = 16384;  // m = 1 quantizes x in shared memory up to this K

static_assert(kThreads / 32 == kTileRows, "one warp per row of a tile");

// Bytes of a 256-value group (one k-quant block, or eight 32-value blocks),
// and groups per row per stage: 16 up to Q4_K's 144 bytes (measured 5-7%
// faster than 8 on the H200 for Q4_K), 8 for larger groups, so that the
// rings and x (kFusedMaxK) stay under the 99 KB a block may have on
// sm_86/sm_89. Stages of 8 groups are 16-byte multiples for every type
// (group sizes are even), so each chunk's copy starts aligned.
template <int T> struct Blk {
    static constexpr int kBytes = TypeInfo<T>::kBytes * (256 / TypeInfo<T>::kElems);
    static constexpr int kChunk = kBytes <= 144 ? 2 * KQ_STREAM_CHUNK : KQ_STREAM_CHUNK;
    static_assert(kBytes * KQ_STREAM_CHUNK % 16 == 0, "chunks start 16-byte aligned");
};
// Shared memory past the last stage that a lane's funnel-shifted loads may
// touch (stream_types.cuh: one word past a run).
constexpr int kSlack = 16;

template <int T> __host__ __device__ constexpr int stage_bytes()
{
    return kTileRows * Blk<T>::kChunk * Blk<T>::kBytes;
}

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// A 32-byte run at a 2-byte aligned shared address, as aligned words and
// funnel shifts (Q6_K blocks are 210 bytes; the ninth word stays inside the
// block, as in ld32_aligned2).
__device__ __forceinline__ void ld32_shared(const uint8_t *p, uint4 &lo, uint4 &hi)
{
    const uint32_t *w = reinterpret_cast<const uint32_t *>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)3);
    uint32_t sh = (uint32_t)(reinterpret_cast<uintptr_t>(p) & 3) * 8;
    uint32_t v[9];
#pragma unroll
    for (int i = 0; i < 9; i++) v[i] = w[i];
    uint32_t o[8];
#pragma unroll
    for (int i = 0; i < 8; i++) o[i] = __funnelshift_r(v[i], v[i + 1], sh);
    lo = make_uint4(o[0], o[1], o[2], o[3]);
    hi = make_uint4(o[4], o[5], o[6], o[7]);
}

// A lane's raw sub-block from a weight block b in shared memory (same
// fields as Wide<T>::load reads from global memory); types other than
// Q4_K, Q5_K and Q6_K: stream_types.cuh.
template <int T> __device__ __forceinline__ void load_shared(const uint8_t *b, int lane, RawW &r)
{
    Wide<T>::load_shared(b, lane, r);
}

template <> __device__ __forceinline__ void load_shared<T_Q4_K>(const uint8_t *b, int lane, RawW &r)
{
    int j = lane & 7;
    const uint4 *q = reinterpret_cast<const uint4 *>(b + 16 + 32 * (j >> 1));
    const uint32_t *w = reinterpret_cast<const uint32_t *>(b);
    r.q0 = q[0];
    r.q1 = q[1];
    r.d = w[0];
    r.s = kscale_words(w[1], w[2], w[3], j);
}

template <> __device__ __forceinline__ void load_shared<T_Q5_K>(const uint8_t *b, int lane, RawW &r)
{
    int j = lane & 7;
    const uint4 *q = reinterpret_cast<const uint4 *>(b + 48 + 32 * (j >> 1));
    const uint4 *h = reinterpret_cast<const uint4 *>(b + 16);
    const uint32_t *w = reinterpret_cast<const uint32_t *>(b);
    r.q0 = q[0];
    r.q1 = q[1];
    r.h0 = h[0];
    r.h1 = h[1];
    r.d = w[0];
    r.s = kscale_words(w[1], w[2], w[3], j);
}

template <> __device__ __forceinline__ void load_shared<T_Q6_K>(const uint8_t *b, int lane, RawW &r)
{
    int u = lane & 7, n = u >> 2, t = u & 3;
    ld32_shared(b + 64 * n + 32 * (t & 1), r.q0, r.q1);
    ld32_shared(b + 128 + 32 * n, r.h0, r.h1);
    r.s = *reinterpret_cast<const unsigned short *>(b + 192 + 2 * u);
    r.d = *reinterpret_cast<const unsigned short *>(b + 208);
}

// The row a warp works on in one tile: where it starts, its index in the
// output, or no row (a part's last tile has fewer than 8).
struct RowRef {
    const uint8_t *src;
    int64_t row;
    bool valid;
};

__device__ __forceinline__ RowRef locate_row(const kq_cuda_part *parts, int n_parts, int64_t tile,
                                             int warp)
{
    int p = 0;
    while (p + 1 < n_parts && tile >= __ldg(&parts[p + 1].first_block)) p++;
    const kq_cuda_part *pt = &parts[p];
    int64_t begin = __ldg(&pt->row_begin);
    RowRef r;
    r.row = begin + (tile - __ldg(&pt->first_block)) * kTileRows + warp;
    r.valid = r.row < __ldg(&pt->row_end);
    r.src = pt->data + (r.row - begin) * __ldg(&pt->row_size);
    return r;
}

// One warp copies chunk c of its row (nb blocks, rounded up to 16 bytes:
// rows are 16-byte multiples, so the rounding stays inside the row).
template <int T> __device__ __forceinline__ void issue(const uint8_t *src, int nb, uint8_t *slot)
{
    const int lane = threadIdx.x & 31;
    int units = (nb * Blk<T>::kBytes + 15) >> 4;
    for (int u = lane; u < units; u += 32) cp_async16(slot + 16 * u, src + 16 * u);
}

// Rows [0, mh) of x, int8: row i at q + i * qs, its 32-value scales at
// d + i * ds (shared memory for the fused m = 1 path, else the scratch).
struct XRows {
    const int8_t *q;
    const float *d;
    const int *sum;  // sums of the int8 values per 16
    int64_t qs, ds, ss;
};

// One warp, one row of a stage: up to 8 blocks, 4 per step, a 32-value
// sub-block per lane, applied to all mh rows of x.
template <int T, int M, bool FUSED>
__device__ __forceinline__ void consume(const uint8_t *row, int nb, int kbase, XRows x, int mh,
                                        float acc[M])
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int step = 0; step < Blk<T>::kChunk / 4; step++) {
        int blk = 4 * step + (lane >> 3);
        if (blk >= nb) break;
        RawW r;
        load_shared<T>(row + blk * Blk<T>::kBytes, lane, r);
        uint32_t q[8];
        WideScale c;
        Wide<T>::q8(r, lane, q, c);
        int k0 = kbase + blk * 256 + 32 * (lane & 7);
#pragma unroll
        for (int i = 0; i < M; i++) {
            if (i >= mh) break;
            const uint4 *xp = reinterpret_cast<const uint4 *>(x.q + i * x.qs + k0);
            uint4 va = xp[0], vb = xp[1];
            float dx = x.d[i * x.ds + (k0 >> 5)];
            const int xw[8] = {(int)va.x, (int)va.y, (int)va.z, (int)va.w,
                               (int)vb.x, (int)vb.y, (int)vb.z, (int)vb.w};
            int2 sx = *reinterpret_cast<const int2 *>(x.sum + i * x.ss + (k0 >> 4));
            int dt[2] = {0, 0};
#pragma unroll
            for (int w = 0; w < 8; w++) dt[w >> 2] = __dp4a((int)q[w], xw[w], dt[w >> 2]);
            if constexpr (T == T_Q6_K)  // two scales, offset 32, no min
                acc[i] += dx * (c.lo * (float)(dt[0] - 32 * sx.x) + c.hi * (float)(dt[1] - 32 * sx.y));
            else if constexpr (T == T_Q4_K || T == T_Q5_K)  // one scale, a min, no offset
                acc[i] += dx * (c.lo * (float)(dt[0] + dt[1]) - c.mn * (float)(sx.x + sx.y));
            else  // the general form (WideScale)
                acc[i] += dx * (c.lo * (float)(dt[0] - c.off * sx.x) + c.hi * (float)(dt[1] - c.off * sx.y) -
                                c.mn * (float)sx.x - c.mn_hi * (float)sx.y);
        }
    }
}

// FUSED: m = 1, x quantized here (xq unused); else rows [m0, m0 + M) of x
// were quantized into xq (rows of K) by quantize_x. Each warp runs its own
// pipeline over its row of each of the block's tiles (no block barriers
// after the prologue): stage q is chunk q % nch of tile q / nch.
template <int T, int M, bool FUSED>
__global__ void __launch_bounds__(kThreads, FUSED ? 3 : 2)
stream_rows(const kq_cuda_part *parts, int n_parts, int n_tiles, int64_t K, int64_t N,
            const float *x, float *y, int64_t m, int64_t m0, const int8_t *xq, const float *xd,
            const int *xs)
{
    extern __shared__ __align__(16) uint8_t smem[];
    constexpr int kChunk = Blk<T>::kChunk, kRowBytes = kChunk * Blk<T>::kBytes;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    // 32-bit job arithmetic (the host admits K < 2^30 and jobs < 2^31):
    // 64-bit counters add instructions to a loop that is issue-bound.
    const int nblocks = (int)(K / 256), nch = (nblocks + kChunk - 1) / kChunk;
    const int my_tiles =
        n_tiles > (int)blockIdx.x ? (n_tiles - 1 - (int)blockIdx.x) / (int)gridDim.x + 1 : 0;
    const int jobs = my_tiles * nch;
    uint8_t *ring = smem + warp * kStages * kRowBytes;
    auto tile_of = [&](int q) { return (int64_t)blockIdx.x + (int64_t)(q / nch) * gridDim.x; };
    auto chunk_blocks = [&](int c) {
        int nb = nblocks - c * kChunk;
        return nb < kChunk ? nb : kChunk;
    };
    auto slot = [&](int q) { return ring + ((unsigned)q % kStages) * kRowBytes; };

    // The producer's place: the row being copied and the next stage.
    int pq = 0, pc = 0;
    RowRef prow = jobs > 0 ? locate_row(parts, n_parts, tile_of(0), warp) : RowRef{nullptr, 0, false};
    auto produce = [&]() {
        if (pq < jobs && prow.valid)
            issue<T>(prow.src + pc * kRowBytes, chunk_blocks(pc), slot(pq));
        cp_commit();
        pq++;
        if (++pc == nch && pq < jobs) {
            pc = 0;
            prow = locate_row(parts, n_parts, tile_of(pq), warp);
        }
    };
#pragma unroll
    for (int q = 0; q < kStages - 1; q++) produce();
    // the first stages (weights only) were issued before the wait: they
    // arrive while the previous kernel finishes (pdl.cuh)
    pdl_start();

    XRows xr;
    int mh = (int)(m - m0 < M ? m - m0 : M);
    if constexpr (FUSED) {
        XqSmem sx = xq_smem_carve(smem + kThreads / 32 * kStages * kRowBytes, K);
        xq_quantize_shared<kThreads>(x, K, sx);  // the first stages are in flight meanwhile
        __syncthreads();
        xr = {sx.q, sx.d, sx.sum, 0, 0, 0};
    } else {
        xr = {xq, xd, xs, K, K / 32, K / 16};
    }

    float acc[M];
#pragma unroll
    for (int i = 0; i < M; i++) acc[i] = 0.0f;
    // The consumer's place: the row being summed and its chunk.
    RowRef crow = jobs > 0 ? locate_row(parts, n_parts, tile_of(0), warp) : prow;
    int c = 0;
    for (int q = 0; q < jobs; q++) {
        cp_wait<kStages - 2>();
        __syncwarp();  // stage q landed for every lane; slot q - 1 is read
        produce();
        if (crow.valid) consume<T, M, FUSED>(slot(q), chunk_blocks(c), c * kChunk * 256, xr, mh, acc);
        if (++c == nch) {
#pragma unroll
            for (int i = 0; i < M; i++) {
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], o);
                if (lane == i && i < mh && crow.valid) y[(m0 + i) * N + crow.row] = acc[i];
                acc[i] = 0.0f;
            }
            c = 0;
            if (q + 1 < jobs) crow = locate_row(parts, n_parts, tile_of(q + 1), warp);
        }
    }
    cp_wait<0>();
}

template <int T, int M, bool FUSED> constexpr int smem_bytes_max()
{
    return kStages * stage_bytes<T>() + (FUSED ? (int)xq_smem_bytes(kFusedMaxK) : 0) + kSlack;
}

// The grid is one full wave, since every block loops over tiles.
template <int T, int M, bool FUSED>
cudaError_t launch(const kq_cuda_dense_args *a, int64_t m0, cudaStream_t s)
{
    static std::atomic<long long> last(-1);
    int smem = kStages * stage_bytes<T>() + (FUSED ? (int)xq_smem_bytes(a->n_cols) : 0) + kSlack;
    int64_t grid = 0;
    cudaError_t e = persistent_grid(stream_rows<T, M, FUSED>, kThreads, smem, last, a->n_blocks, grid);
    if (e != cudaSuccess) return e;
    const int8_t *xq = static_cast<const int8_t *>(a->scratch);
    size_t d_off = 0, s_off = 0;
    kq__cuda_xq_layout(a->n_cols, &d_off, &s_off);
    return launch_pdl(stream_rows<T, M, FUSED>, (unsigned)grid, kThreads, smem, s, a->parts,
                      a->n_parts, a->n_blocks, a->n_cols, a->n_rows, a->x, a->y, a->m, m0, xq,
                      reinterpret_cast<const float *>(xq + d_off),
                      reinterpret_cast<const int *>(xq + s_off));
}

template <int T, int M>
cudaError_t launch_tiles(const kq_cuda_dense_args *a, cudaStream_t s)
{
    for (int64_t m0 = 0; m0 < a->m; m0 += M) {
        int64_t mt = a->m - m0 < M ? a->m - m0 : M;
        cudaError_t e = kq__cuda_quantize_rows(a->x + m0 * a->n_cols, mt, a->n_cols, a->scratch, s);
        if (e == cudaSuccess) e = launch<T, M, false>(a, m0, s);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

template <int T> cudaError_t run(const kq_cuda_dense_args *a, cudaStream_t s)
{
    if (a->m == 1 && a->n_cols <= kFusedMaxK) return launch<T, 1, true>(a, 0, s);
    return launch_tiles<T, 4>(a, s);
}

template <int T> cudaError_t allow_smem()
{
    cudaError_t e = cudaFuncSetAttribute(stream_rows<T, 1, true>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         smem_bytes_max<T, 1, true>());
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(stream_rows<T, 4, false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 smem_bytes_max<T, 4, false>());
    return e;
}

}  // namespace
}  // namespace kqc

extern "C" cudaError_t kq__cuda_stream_init(void)
{
    using namespace kqc;
    cudaError_t e = cudaSuccess;
#define KQ_STREAM_ALLOW(ID, name, BLOCK, elems, act) \
    if (e == cudaSuccess) e = allow_smem<ID>();
    KQ_QUANT_TYPES(KQ_STREAM_ALLOW)
#undef KQ_STREAM_ALLOW
    return e;
}

extern "C" int kq__cuda_stream_dense(kq_cuda_dense_args *a, cudaStream_t s, cudaError_t *err)
{
    using namespace kqc;
    int t = a->uniform_type;
    // m >= 5 stays with matvec.cu's kernels: two rows per warp share each
    // x load there (q4_K 14336x4096 at m = 8 / 16 on the H200: 49.5 / 90.3
    // us there, 59.5 / 112.3 here).
    if (!a->stream_ok || a->swiglu || !a->scratch || a->m > 4 || a->n_cols % 256 != 0 ||
        a->n_cols >= ((int64_t)1 << 30) || (int64_t)a->n_blocks * (a->n_cols / 256) >= INT32_MAX ||
        (reinterpret_cast<uintptr_t>(a->x) & 15) != 0)
        return 0;
    cudaError_t (*fn)(const kq_cuda_dense_args *, cudaStream_t);
    switch (t) {
#define KQ_STREAM_CASE(ID, name, BLOCK, elems, act) \
    case ID: fn = run<ID>; break;
        KQ_QUANT_TYPES(KQ_STREAM_CASE)
#undef KQ_STREAM_CASE
    default: return 0;  // float weights, parts of several types: matvec.cu
    }
    cudaError_t e = fn(a, s);
    a->kernel = a->m == 1 ? "stream m=1" : "stream m<=4";
    *err = e;
    return 1;
}
