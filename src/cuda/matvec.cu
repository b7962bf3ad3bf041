// Decode (m = 1) and batched-decode (m <= 16) matrix-vector kernels, dense,
// fused, SwiGLU and experts by ids. Calls the tensor-core GEMM takes (from
// m = 17, or 8 to 16 for wide and mixed calls: qgemm.cu's crossover) go
// there first; the rest of larger m (gemm=off, float
// weights, non-finite scales) runs the m = 16 kernel once per 16 rows of x,
// re-reading the weights m / 16 times. Dense Q4_K/Q5_K/Q6_K calls with m <= 4 and rows of
// 16-byte multiples go to stream_gemv.cu instead (kq__cuda_stream_dense).
//
// Strategy: one warp owns two weight rows (or one gate row and its up row)
// and walks them a step at a time, each lane decoding its piece of the step
// (decode.cuh) so a warp's weight loads are coalesced; the raw bytes of the
// next steps are requested before the current ones are decoded. Sums reduce
// across the warp with shuffles; lane r*M + i writes (row r, x row i). A
// block of 4 warps never straddles fused parts, so it decodes one type.
// - Launches whose parts share one quant type (and aligned x) run a kernel
//   of that type: x is first quantized to int8 (quantize_x, one scale per
//   32 values) and products are dp4a. Q4_K/Q5_K/Q6_K lanes own a whole
//   32-value sub-block (1024 values per warp step): one scale decode and
//   eight dp4a per row and x row. Chosen by measurement: float x with the
//   same loads ran q4_K 14336x4096 m = 1 in 44 us on the H200, this 26 us,
//   and float x costs 8 FMAs per weight at m = 8 against two dp4a.
// - Mixed types, f32/f16/bf16 and unaligned x keep x in float
//   (8 values per lane, or one element at a time through deq1).
// Expert ids are device memory: every block checks its pair's id; a bad id
// makes the pair's blocks write NaN to its output rows and read nothing,
// and block 0 of the pair records the first bad pair in the error word
// that kq_backend_sync reads.
//
// Measured (H200, 4.4 TB/s read ceiling, kq bench --backend cuda): m = 1
// q4_K 14336x4096 26.4 us (29% of the ceiling), 4096x14336 23.1 us (33%),
// q6_K 31.0 / 28.3 us (35% / 39%); latency-bound (ncu: 16 warps/SM, half the
// stalls waiting on global loads). bench/RESULTS.md has the rest.
#include <cstdint>
#include <cuda_runtime.h>

#include "decode.cuh"
#include "kernels.h"
#include "pdl.cuh"
#include "xquant.cuh"

namespace kqc {
namespace {

constexpr int kWarps = 4;

template <int M> struct Acc {
    float v[2][M];
};

__device__ __forceinline__ float dot8(const float w[8], float4 a, float4 b)
{
    return w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
           w[6] * b.z + w[7] * b.w;
}

// Two rows of one quant type times mh (<= M) rows of x (row stride xs
// floats, 16-byte aligned), accumulated per lane. The raw bytes of the next
// kUnroll spans are requested before the current ones are decoded, so each
// warp keeps loads in flight while it computes.
template <int T, int M>
__device__ __forceinline__ void rows_fast(const uint8_t *r0, const uint8_t *r1, int64_t K,
                                          const float *x, int64_t xs, int mh, Acc<M> &acc)
{
    constexpr int kUnroll = Piece<T>::kUnroll;
    const int lane = threadIdx.x & 31;
    const int64_t nblocks = K / (256 / Piece<T>::kBlocksPerSpan);
    const int64_t spans = (K + 255) / 256;
    Raw a[kUnroll], b[kUnroll];
    bool ok[kUnroll];
    auto fetch = [&](int64_t s0) {
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            ok[u] = s0 + u < spans && Piece<T>::load(r0, s0 + u, lane, nblocks, a[u]);
            if (ok[u]) Piece<T>::load(r1, s0 + u, lane, nblocks, b[u]);
        }
    };
    fetch(0);
    for (int64_t s0 = 0; s0 < spans; s0 += kUnroll) {
        Raw ca[kUnroll], cb[kUnroll];
        bool cok[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            ca[u] = a[u];
            cb[u] = b[u];
            cok[u] = ok[u];
        }
        if (s0 + kUnroll < spans) fetch(s0 + kUnroll);
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            if (!cok[u]) continue;
            float w0[8], w1[8];
            Piece<T>::expand(ca[u], lane, w0);
            Piece<T>::expand(cb[u], lane, w1);
            const float *xk = x + (s0 + u) * 256 + 8 * lane;
#pragma unroll
            for (int i = 0; i < M; i++) {
                if (i >= mh) break;
                const float4 *p = reinterpret_cast<const float4 *>(xk + i * xs);
                float4 lo = __ldg(p), hi = __ldg(p + 1);
                acc.v[0][i] += dot8(w0, lo, hi);
                acc.v[1][i] += dot8(w1, lo, hi);
            }
        }
    }
}

// x quantized to int8 (quantize_x): row i of the tile at xq + i * K, its
// 32-element scales at xd + i * K / 32.
struct XQ {
    const int8_t *q;
    const float *d;
    const int *s;  // sums of the int8 values per 16 (stream_gemv.cu reads them)
};

// Two rows of quant type T times mh rows of int8 x: four products per dp4a,
// and x costs 8 bytes per lane per row of x instead of 32.
template <int T, int M>
__device__ __forceinline__ void rows_q8(const uint8_t *r0, const uint8_t *r1, int64_t K, XQ xq,
                                        int mh, Acc<M> &acc)
{
    constexpr int kUnroll = Piece<T>::kUnroll;
    const int lane = threadIdx.x & 31;
    const int64_t nblocks = K / (256 / Piece<T>::kBlocksPerSpan);
    const int64_t spans = (K + 255) / 256, kd = K / 32;
    Raw a[kUnroll], b[kUnroll];
    bool ok[kUnroll];
    auto fetch = [&](int64_t s0) {
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            ok[u] = s0 + u < spans && Piece<T>::load(r0, s0 + u, lane, nblocks, a[u]);
            if (ok[u]) Piece<T>::load(r1, s0 + u, lane, nblocks, b[u]);
        }
    };
    fetch(0);
    for (int64_t s0 = 0; s0 < spans; s0 += kUnroll) {
        Raw ca[kUnroll], cb[kUnroll];
        bool cok[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            ca[u] = a[u];
            cb[u] = b[u];
            cok[u] = ok[u];
        }
        if (s0 + kUnroll < spans) fetch(s0 + kUnroll);
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            if (!cok[u]) continue;
            Q8 w0 = Piece<T>::q8(ca[u], lane), w1 = Piece<T>::q8(cb[u], lane);
            int64_t k0 = (s0 + u) * 256 + 8 * lane;
#pragma unroll
            for (int i = 0; i < M; i++) {
                if (i >= mh) break;
                uint2 xv = __ldg(reinterpret_cast<const uint2 *>(xq.q + i * K + k0));
                float dx = __ldg(xq.d + i * kd + (k0 >> 5));
                int sx = __dp4a((int)xv.x, 0x01010101, __dp4a((int)xv.y, 0x01010101, 0));
                int d0 = __dp4a((int)w0.q0, (int)xv.x, __dp4a((int)w0.q1, (int)xv.y, 0));
                int d1 = __dp4a((int)w1.q0, (int)xv.x, __dp4a((int)w1.q1, (int)xv.y, 0));
                acc.v[0][i] += dx * (w0.mul * (float)(d0 - w0.off * sx) - w0.mn * (float)sx);
                acc.v[1][i] += dx * (w1.mul * (float)(d1 - w1.off * sx) - w1.mn * (float)sx);
            }
        }
    }
}

// Q4_K, Q5_K and Q6_K with int8 x, a whole sub-block per lane (Wide, decode.cuh):
// per row and 32 values, 8 dp4a and one scale decode.
template <int T, int M>
__device__ __forceinline__ void rows_q8_wide(const uint8_t *r0, const uint8_t *r1, int64_t K,
                                             XQ xq, int mh, Acc<M> &acc)
{
    // (Fetching x a step ahead with the weights, for m = 1, measured 4-6%
    // slower on the H200: more registers, and x mostly hits L1 anyway.)
    constexpr int kUnroll = Wide<T>::kUnroll;
    const int lane = threadIdx.x & 31;
    const int64_t nblocks = K / 256, spans = (nblocks + 3) / 4, kd = K / 32;
    RawW a[kUnroll], b[kUnroll];
    bool ok[kUnroll];
    auto fetch = [&](int64_t s0) {
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            ok[u] = s0 + u < spans && Wide<T>::load(r0, s0 + u, lane, nblocks, a[u]);
            if (ok[u]) Wide<T>::load(r1, s0 + u, lane, nblocks, b[u]);
        }
    };
    fetch(0);
    for (int64_t s0 = 0; s0 < spans; s0 += kUnroll) {
        RawW ca[kUnroll], cb[kUnroll];
        bool cok[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            ca[u] = a[u];
            cb[u] = b[u];
            cok[u] = ok[u];
        }
        if (s0 + kUnroll < spans) fetch(s0 + kUnroll);
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            if (!cok[u]) continue;
            uint32_t q0[8], q1[8];
            WideScale c0, c1;
            Wide<T>::q8(ca[u], lane, q0, c0);
            Wide<T>::q8(cb[u], lane, q1, c1);
            int64_t k0 = (s0 + u) * 1024 + 32 * lane;
#pragma unroll
            for (int i = 0; i < M; i++) {
                if (i >= mh) break;
                const uint4 *xp = reinterpret_cast<const uint4 *>(xq.q + i * K + k0);
                uint4 va = __ldg(xp), vb = __ldg(xp + 1);
                float dx = __ldg(xq.d + i * kd + (k0 >> 5));
                const int xw[8] = {(int)va.x, (int)va.y, (int)va.z, (int)va.w,
                                   (int)vb.x, (int)vb.y, (int)vb.z, (int)vb.w};
                int sx[2] = {0, 0}, d0[2] = {0, 0}, d1[2] = {0, 0};
#pragma unroll
                for (int w = 0; w < 8; w++) {
                    sx[w >> 2] = __dp4a(xw[w], 0x01010101, sx[w >> 2]);
                    d0[w >> 2] = __dp4a((int)q0[w], xw[w], d0[w >> 2]);
                    d1[w >> 2] = __dp4a((int)q1[w], xw[w], d1[w >> 2]);
                }
                float s_all = (float)(sx[0] + sx[1]);
                acc.v[0][i] += dx * (c0.lo * (float)(d0[0] - c0.off * sx[0]) +
                                     c0.hi * (float)(d0[1] - c0.off * sx[1]) - c0.mn * s_all);
                acc.v[1][i] += dx * (c1.lo * (float)(d1[0] - c1.off * sx[0]) +
                                     c1.hi * (float)(d1[1] - c1.off * sx[1]) - c1.mn * s_all);
            }
        }
    }
}

// Any types, any alignment of x: one element per lane per step.
template <int M>
__device__ __forceinline__ void rows_simple(int t0, const uint8_t *r0, int t1, const uint8_t *r1,
                                            int64_t K, const float *x, int64_t xs, int mh,
                                            Acc<M> &acc)
{
    for (int64_t k = threadIdx.x & 31; k < K; k += 32) {
        float w0 = deq1(t0, r0, k), w1 = deq1(t1, r1, k);
#pragma unroll
        for (int i = 0; i < M; i++) {
            if (i >= mh) break;
            float xv = __ldg(x + i * xs + k);
            acc.v[0][i] += w0 * xv;
            acc.v[1][i] += w1 * xv;
        }
    }
}

// T >= 0: every row of the launch is of quant type T, x is aligned and was
// quantized to int8 (a kernel of its own, so its registers fit that type
// alone); T = kAny: float x, the types read at run time.
constexpr int kAny = -1;

template <int T, int M>
__device__ __forceinline__ void rows(int t0, const uint8_t *r0, int t1, const uint8_t *r1,
                                     int64_t K, const float *x, int64_t xs, int mh, bool vec,
                                     XQ xq, Acc<M> &acc)
{
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int i = 0; i < M; i++) acc.v[r][i] = 0.0f;
    if constexpr (T == T_Q4_K || T == T_Q5_K || T == T_Q6_K) {
        rows_q8_wide<T, M>(r0, r1, K, xq, mh, acc);
    } else if constexpr (T != kAny) {
        rows_q8<T, M>(r0, r1, K, xq, mh, acc);
    } else {
        if (vec && t0 == t1) {
            switch (t0) {
#define KQ_CUDA_FAST_CASE(ID, name, BLOCK, elems, act) \
    case ID: rows_fast<ID, M>(r0, r1, K, x, xs, mh, acc); return;
                KQ_QUANT_TYPES(KQ_CUDA_FAST_CASE)
#undef KQ_CUDA_FAST_CASE
            case T_F32: case T_F16: case T_BF16: break;  // one element at a time
            default: __trap();  // the backend loads no other type
            }
        }
        rows_simple<M>(t0, r0, t1, r1, K, x, xs, mh, acc);
    }
}

// Butterfly sums: afterwards every lane holds every total.
template <int M> __device__ __forceinline__ void warp_sum(Acc<M> &acc)
{
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int i = 0; i < M; i++)
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) acc.v[r][i] += __shfl_xor_sync(0xffffffffu, acc.v[r][i], o);
}

// Lane r*M + i writes (row r, x row i) of a plain pair of rows; row 1 is
// skipped when it duplicates row 0 (a part's odd last row).
template <int M>
__device__ __forceinline__ void store_plain(const Acc<M> &acc, float *y, int64_t ldy, int64_t row,
                                            bool two, int mh)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int i = 0; i < M; i++)
            if (lane == r * M + i && i < mh && (r == 0 || two)) y[i * ldy + row + r] = acc.v[r][i];
}

template <int M>
__device__ __forceinline__ void store_swiglu(const Acc<M> &acc, float *y, int64_t ldy, int64_t row,
                                             int mh, int act)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int i = 0; i < M; i++)
        if (lane == i && i < mh) y[i * ldy + row] = glu_gate(act, acc.v[0][i]) * acc.v[1][i];
}

__device__ __forceinline__ int find_part_by_row(const kq_cuda_part *parts, int n, int64_t row)
{
    int p = 0;
    while (p + 1 < n && row >= parts[p + 1].row_begin) p++;
    return p;
}

// ------------------------------------------------------------ dense

// M = 1 kernels of one type get a register cap that lets 4 blocks (16
// warps) share an SM: decode streams the weights and wants warps in flight.
#define KQ_BOUNDS __launch_bounds__(kWarps * 32, (M == 1 && T != kAny) ? 4 : 1)

template <int M, int T>
__global__ void KQ_BOUNDS
dense_plain(const kq_cuda_part *parts, int n_parts, int64_t K, int64_t N, const float *x,
            float *y, int64_t m, int64_t m_off, bool vec, XQ xq, int /* act: dense_swiglu's */)
{
    int p = 0;
    while (p + 1 < n_parts && (int)blockIdx.x >= parts[p + 1].first_block) p++;
    const kq_cuda_part pt = parts[p];
    int64_t row = pt.row_begin +
                  ((int64_t)blockIdx.x - pt.first_block) * KQ_CUDA_ROWS_PER_BLOCK +
                  2 * (threadIdx.x >> 5);
    if (row >= pt.row_end) return;
    bool two = row + 1 < pt.row_end;
    const uint8_t *r0 = pt.data + (row - pt.row_begin) * pt.row_size;
    const uint8_t *r1 = two ? r0 + pt.row_size : r0;
    // the warp's two rows (weights, host or device) start toward the L2
    // while the kernel before runs (pdl.cuh)
    prefetch_l2(r0, (two ? 2 : 1) * pt.row_size, 16384);
    pdl_start();
    int64_t m0 = m_off + (int64_t)blockIdx.y * M;
    int mh = (int)(m - m0 < M ? m - m0 : M);
    Acc<M> acc;
    rows<T, M>(pt.type, r0, pt.type, r1, K, x + m0 * K, K, mh, vec, xq, acc);
    warp_sum<M>(acc);
    store_plain<M>(acc, y + m0 * N, N, row, two, mh);
}

template <int M, int T>
__global__ void KQ_BOUNDS
dense_swiglu(const kq_cuda_part *parts, int n_parts, int64_t K, int64_t N, const float *x,
             float *y, int64_t m, int64_t m_off, bool vec, XQ xq, int act)
{
    pdl_start();
    int64_t h = N / 2;
    int64_t r = (int64_t)blockIdx.x * KQ_CUDA_SWIGLU_PER_BLOCK + (threadIdx.x >> 5);
    if (r >= h) return;
    const kq_cuda_part *pg = &parts[find_part_by_row(parts, n_parts, r)];
    const kq_cuda_part *pu = &parts[find_part_by_row(parts, n_parts, h + r)];
    const uint8_t *rg = pg->data + (r - pg->row_begin) * pg->row_size;
    const uint8_t *ru = pu->data + (h + r - pu->row_begin) * pu->row_size;
    int64_t m0 = m_off + (int64_t)blockIdx.y * M;
    int mh = (int)(m - m0 < M ? m - m0 : M);
    Acc<M> acc;
    rows<T, M>(pg->type, rg, pu->type, ru, K, x + m0 * K, K, mh, vec, xq, acc);
    warp_sum<M>(acc);
    store_swiglu<M>(acc, y + m0 * h, h, r, mh, act);
}

// ------------------------------------------------------------ experts

// Returns the pair's expert, or -1 after recording a bad id (block 0 of the
// pair records it) and poisoning the rows this warp would have written.
__device__ __forceinline__ int64_t checked_id(const kq_cuda_experts_args &a, int64_t pair)
{
    int32_t id = __ldg(a.ids + pair);
    if (id >= 0 && id < a.n_experts) return id;
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        if (atomicCAS(&a.err->pair_plus_1, 0ull, (unsigned long long)pair + 1) == 0ull) {
            a.err->id = id;
            a.err->n_experts = (int32_t)a.n_experts;
            a.err->top_k = a.top_k;
        }
    }
    return -1;
}

template <int T, int M = 1>
__global__ void KQ_BOUNDS
experts_plain(kq_cuda_experts_args a, int64_t pair_off, bool vec, XQ xq, int64_t xr_div, int64_t xr_base)
{
    pdl_start();
    int64_t pair = pair_off + blockIdx.y;
    int64_t row = (int64_t)blockIdx.x * KQ_CUDA_ROWS_PER_BLOCK + 2 * (threadIdx.x >> 5);
    if (row >= a.n_rows) return;
    bool two = row + 1 < a.n_rows;
    float *y = a.y + pair * a.n_rows;
    int64_t e = checked_id(a, pair);
    if (e < 0) {
        int lane = threadIdx.x & 31;
        if (lane < 2 && (lane == 0 || two)) y[row + lane] = __int_as_float(0x7fc00000);
        return;
    }
    const uint8_t *r0 = a.w.data + e * a.w.expert_bytes + row * a.w.row_size;
    const uint8_t *r1 = two ? r0 + a.w.row_size : r0;
    const float *x = a.x + (pair / a.top_k) * a.token_stride + (pair % a.top_k) * a.slot_stride;
    int64_t xr = pair / xr_div - xr_base, kq = a.n_cols;
    XQ xp = {xq.q + xr * kq, xq.d + xr * (kq / 32), xq.s + xr * (kq / 16)};
    Acc<1> acc;
    rows<T, 1>(a.w.type, r0, a.w.type, r1, a.n_cols, x, 0, 1, vec, xp, acc);
    warp_sum<1>(acc);
    store_plain<1>(acc, y, 0, row, two, 1);
}

template <int T, int M = 1>
__global__ void KQ_BOUNDS
experts_swiglu(kq_cuda_experts_args a, int64_t pair_off, bool vec, XQ xq, int64_t xr_div, int64_t xr_base)
{
    pdl_start();
    int64_t pair = pair_off + blockIdx.y;
    int64_t r = (int64_t)blockIdx.x * KQ_CUDA_SWIGLU_PER_BLOCK + (threadIdx.x >> 5);
    if (r >= a.n_rows) return;
    float *y = a.y + pair * a.n_rows;
    int64_t e = checked_id(a, pair);
    if (e < 0) {
        if ((threadIdx.x & 31) == 0) y[r] = __int_as_float(0x7fc00000);
        return;
    }
    const uint8_t *rg = a.w.data + e * a.w.expert_bytes + r * a.w.row_size;
    const uint8_t *ru = a.up.data + e * a.up.expert_bytes + r * a.up.row_size;
    const float *x = a.x + (pair / a.top_k) * a.token_stride + (pair % a.top_k) * a.slot_stride;
    int64_t xr = pair / xr_div - xr_base, kq = a.n_cols;
    XQ xp = {xq.q + xr * kq, xq.d + xr * (kq / 32), xq.s + xr * (kq / 16)};
    Acc<1> acc;
    rows<T, 1>(a.w.type, rg, a.up.type, ru, a.n_cols, x, 0, 1, vec, xp, acc);
    warp_sum<1>(acc);
    store_swiglu<1>(acc, y, 0, r, 1, KQ_GLU_SILU);
}

// ------------------------------------------------------------ quantize x

// Rows [row0, row0 + rows) of x (row r at x + (r / per) * ts + (r % per) * ss)
// to int8 with one scale per 32 values (d = max|x| / 127, q = round(x / d)),
// into q [rows, K], d [rows, K / 32] and the sums of q per 16, sum [rows,
// K / 16]. One warp per 256 values; four lanes share a 32-value block and
// agree on its max by shuffles.
__global__ void __launch_bounds__(kWarps * 32)
quantize_x(const float *x, int64_t ts, int64_t ss, int64_t per, int64_t row0, int64_t rows,
           int64_t K, int8_t *q, float *d, int *sum)
{
    pdl_start();
    const int lane = threadIdx.x & 31;
    int64_t spans = (K + 255) / 256;
    int64_t w = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5);
    if (w >= rows * spans) return;
    int64_t r = w / spans, k0 = (w % spans) * 256 + 8 * lane;
    int64_t src = row0 + r;
    const float *xr = x + (src / per) * ts + (src % per) * ss;
    // K is a multiple of 32: a block is all in or all out
    xq_quantize8(xr + k0, k0 < K, k0, q + r * K, d + r * (K / 32), sum + r * (K / 16));
}

cudaError_t quantize(const float *x, int64_t ts, int64_t ss, int64_t per, int64_t row0,
                     int64_t rows, int64_t K, XQ xq, cudaStream_t s)
{
    int64_t warps = rows * ((K + 255) / 256);
    unsigned blocks = (unsigned)((warps + kWarps - 1) / kWarps);
    return launch_pdl(quantize_x, blocks, kWarps * 32, 0, s, x, ts, ss, per, row0, rows, K,
                      const_cast<int8_t *>(xq.q), const_cast<float *>(xq.d), const_cast<int *>(xq.s));
}

// The scratch for quantized x: KQ_CUDA_XQ_ROWS rows of K int8, then their
// scales at a 256-byte boundary.
XQ scratch_xq(void *scratch, int64_t K)
{
    int8_t *q = static_cast<int8_t *>(scratch);
    size_t d_off = 0, s_off = 0;
    kq__cuda_xq_layout(K, &d_off, &s_off);
    return {q, reinterpret_cast<const float *>(q + d_off), reinterpret_cast<const int *>(q + s_off)};
}

// ------------------------------------------------------------ launching

constexpr int64_t kMaxGridY = 65535;

// Float x (T = kAny): all m rows in one launch, M rows per grid row.
template <int M>
cudaError_t launch_dense_any(const kq_cuda_dense_args *a, bool vec, unsigned gx, cudaStream_t s)
{
    int64_t tiles = (a->m + M - 1) / M;
    XQ none = {nullptr, nullptr, nullptr};
    for (int64_t t0 = 0; t0 < tiles; t0 += kMaxGridY) {
        int64_t nt = tiles - t0 < kMaxGridY ? tiles - t0 : kMaxGridY;
        dim3 grid(gx, (unsigned)nt);
        cudaError_t e = launch_pdl(a->swiglu ? dense_swiglu<M, kAny> : dense_plain<M, kAny>, grid,
                                   kWarps * 32, 0, s, a->parts, a->n_parts, a->n_cols, a->n_rows,
                                   a->x, a->y, a->m, t0 * M, vec, none, a->act);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

// One type, int8 x: each tile of up to M rows is quantized, then multiplied.
template <int M, int T>
cudaError_t launch_dense_q8(const kq_cuda_dense_args *a, unsigned gx, cudaStream_t s)
{
    XQ xq = scratch_xq(a->scratch, a->n_cols);
    for (int64_t m0 = 0; m0 < a->m; m0 += M) {
        int64_t mt = a->m - m0 < M ? a->m - m0 : M;
        cudaError_t e = quantize(a->x, a->n_cols, 0, 1, m0, mt, a->n_cols, xq, s);
        if (e != cudaSuccess) return e;
        e = launch_pdl(a->swiglu ? dense_swiglu<M, T> : dense_plain<M, T>, gx, kWarps * 32, 0, s,
                       a->parts, a->n_parts, a->n_cols, a->n_rows, a->x, a->y, a->m, m0, true, xq,
                       a->act);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

// A quantized type of the type list (int8-x kernels), as opposed to the
// float types and -1 (parts of several types).
bool is_quant_type(int type)
{
    switch (type) {
#define KQ_CUDA_QUANT_CASE(ID, name, BLOCK, elems, act) case ID:
        KQ_QUANT_TYPES(KQ_CUDA_QUANT_CASE)
#undef KQ_CUDA_QUANT_CASE
        return true;
    default: return false;
    }
}

template <int M>
cudaError_t launch_dense(const kq_cuda_dense_args *a, int type, bool vec, unsigned gx,
                         cudaStream_t s)
{
    if (vec && a->scratch) switch (type) {
#define KQ_CUDA_DENSE_CASE(ID, name, BLOCK, elems, act) \
    case ID: return launch_dense_q8<M, ID>(a, gx, s);
            KQ_QUANT_TYPES(KQ_CUDA_DENSE_CASE)
#undef KQ_CUDA_DENSE_CASE
        case -1: case T_F32: case T_F16: case T_BF16: break;  // float x
        default: return cudaErrorNotSupported;  // refused at load: cannot happen
        }
    return launch_dense_any<M>(a, vec, gx, s);
}

template <int T>
cudaError_t launch_experts(const kq_cuda_experts_args &a, bool vec, cudaStream_t s)
{
    int64_t pairs = a.m * a.top_k;
    int per = a.swiglu ? KQ_CUDA_SWIGLU_PER_BLOCK : KQ_CUDA_ROWS_PER_BLOCK;
    unsigned gx = (unsigned)((a.n_rows + per - 1) / per);
    // Quantized x: broadcast (slot stride 0) quantizes one row per token,
    // per-slot rows one per pair; a tile is as many rows as the scratch holds.
    bool bcast = a.slot_stride == 0;
    int64_t div = T == kAny ? 1 : (bcast ? a.top_k : 1);
    int64_t tile_rows = T == kAny ? kMaxGridY : KQ_CUDA_XQ_ROWS;
    int64_t tile_pairs = bcast && T != kAny ? tile_rows * a.top_k : tile_rows;
    if (tile_pairs > kMaxGridY) tile_pairs = kMaxGridY / div * div;
    XQ xq = T == kAny ? XQ{nullptr, nullptr, nullptr} : scratch_xq(a.scratch, a.n_cols);
    for (int64_t p0 = 0; p0 < pairs; p0 += tile_pairs) {
        int64_t np = pairs - p0 < tile_pairs ? pairs - p0 : tile_pairs;
        cudaError_t e;
        if (T != kAny) {
            int64_t r0 = p0 / div, nr = (np + div - 1) / div;
            e = quantize(a.x, a.token_stride, a.slot_stride, bcast ? 1 : a.top_k, r0, nr,
                         a.n_cols, xq, s);
            if (e != cudaSuccess) return e;
        }
        dim3 grid(gx, (unsigned)np);
        e = launch_pdl(a.swiglu ? experts_swiglu<T> : experts_plain<T>, grid, kWarps * 32, 0, s, a,
                       p0, vec, xq, div, p0 / div);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace
}  // namespace kqc

extern "C" size_t kq__cuda_scratch_bytes(int64_t K)
{
    size_t d_off = 0, s_off = 0;
    kq__cuda_xq_layout(K, &d_off, &s_off);
    return s_off + (size_t)KQ_CUDA_XQ_ROWS * (size_t)(K / 16) * sizeof(int);
}

extern "C" cudaError_t kq__cuda_quantize_rows(const float *x, int64_t rows, int64_t K,
                                              void *scratch, cudaStream_t s)
{
    using namespace kqc;
    return quantize(x, K, 0, 1, 0, rows, K, scratch_xq(scratch, K), s);
}

extern "C" int kq__cuda_type_supported(int type)
{
    using namespace kqc;
    return type == T_F32 || type == T_F16 || type == T_BF16 || is_quant_type(type);
}

extern "C" cudaError_t kq__cuda_dense(kq_cuda_dense_args *a, cudaStream_t s)
{
    using namespace kqc;
    // The fast paths load x 16 bytes at a time: base and row stride must
    // keep that alignment (true for kq_alloc'd x and K a multiple of 4).
    bool vec = aligned16(a->x) && a->n_cols % 4 == 0;
    cudaError_t se;
    // The direct 32-value kernel first: it takes up to 8 rows of x, where
    // the GEMM's tile costs about its m = 32 time (direct_gemv32.cu).
    if (kq__cuda_direct32_dense(a, s, &se)) return se;
    if (kq__cuda_gemm_dense(a, s, &se)) return se;
    if (kq__cuda_direct_dense(a, s, &se)) return se;
    if (kq__cuda_stream_dense(a, s, &se)) return se;
    int t = a->uniform_type;
    unsigned gx = a->swiglu ? (unsigned)((a->n_rows / 2 + KQ_CUDA_SWIGLU_PER_BLOCK - 1) /
                                         KQ_CUDA_SWIGLU_PER_BLOCK)
                            : (unsigned)a->n_blocks;
    bool q8 = vec && a->scratch && is_quant_type(t);
    a->kernel = a->m == 1 ? (q8 ? "matvec int8 m=1" : "matvec float m=1")
                : a->m <= 8 ? (q8 ? "matvec int8 m<=8" : "matvec float m<=8")
                            : (q8 ? "matvec int8 m=16" : "matvec float m=16");
    if (a->m == 1) return launch_dense<1>(a, t, vec, gx, s);
    if (a->m <= 4) {
        // One quant type and aligned x (SwiGLU, q4_0, q8_0, q6_K rows the
        // streaming kernel does not take): int8 x through the m <= 8 kernel,
        // rather than float x, which cost 8 FMAs per weight per row (SwiGLU
        // q4_K 28672x4096 at m = 4 took 131 us on float x, more than m = 8's
        // 94 us on int8 x).
        if (q8) return launch_dense<8>(a, t, vec, gx, s);
        return a->m == 2 ? launch_dense_any<2>(a, vec, gx, s) : launch_dense_any<4>(a, vec, gx, s);
    }
    if (a->m <= 8) return launch_dense<8>(a, t, vec, gx, s);
    return launch_dense<16>(a, t, vec, gx, s);
}

extern "C" cudaError_t kq__cuda_experts(kq_cuda_experts_args *a, cudaStream_t s)
{
    using namespace kqc;
    cudaError_t ge;
    if (kq__cuda_gemm_experts(a, s, &ge)) return ge;
    bool vec = aligned16(a->x) && a->n_cols % 4 == 0 && a->token_stride % 4 == 0 &&
               a->slot_stride % 4 == 0;
    int t = (!a->swiglu || a->up.type == a->w.type) && vec && a->scratch &&
                    a->top_k <= KQ_CUDA_XQ_ROWS
                ? a->w.type
                : kAny;
    a->kernel = t == kAny ? "matvec float experts" : "matvec int8 experts";
    switch (t) {
#define KQ_CUDA_EXPERTS_CASE(ID, name, BLOCK, elems, act) \
    case ID: return launch_experts<ID>(*a, vec, s);
        KQ_QUANT_TYPES(KQ_CUDA_EXPERTS_CASE)
#undef KQ_CUDA_EXPERTS_CASE
    case kAny: case T_F32: case T_F16: case T_BF16: return launch_experts<kAny>(*a, vec, s);
    default: return cudaErrorNotSupported;  // refused at load: cannot happen
    }
}
