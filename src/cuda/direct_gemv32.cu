// Decode (m = 1) and batched decode (m <= 8) of the 32-value block types
// (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, mxfp4), a lane a whole block.
//
// Why: matvec.cu gives a 32-value block to four lanes, each loading its 8
// bytes as 2-byte pieces (the blocks are 17-34 bytes, so only 1- or
// 2-byte aligned), and walks two rows a warp. Rows of 640 values (Gemma 3's
// width) are 20 blocks, so most of a span idles; Gemma 3 270M's q8_0 output
// head (262144 x 640) ran at 1.25 TB/s on the H100 there, and the model's
// q5_0 layers share its shape.
//
// Strategy: a row's blocks follow the previous row's in memory, so a run of
// rows is one stream of blocks. A warp takes a group of rows (as many as
// make the stream a multiple of 32 blocks and of 16 bytes, where possible)
// and moves through it 32 blocks at a time: the 32 blocks (17 x 32 to 34 x
// 32 bytes, always a multiple of 16) come in as coalesced 16-byte loads,
// two chunks ahead, into the warp's slot of shared memory; then lane l
// decodes block l from there (aligned 4-byte reads and funnel shifts) against
// x, quantized to int8 in shared memory by the block first (xquant.cuh),
// with eight dp4a. The lanes' sums are added per row by a segmented suffix
// scan (five shuffles), the head lane of each row's segment holding its
// sum; a row that goes on into the next chunk hands its sum on as a carry.
// Every sum is formed in a fixed order, so results do not vary from run to
// run. Fused calls whose parts are of different 32-value types (Gemma 3's
// q/k/v in a Q4_K_M file: q5_0, q5_0, q8_0) take the same kernel with a
// switch on the part's type per group (a group never spans two parts), so
// they no longer fall to matvec.cu's float-x kernel.
//
// Batched decode: a launch takes up to 8 rows of x (more rows, more
// launches), all quantized into shared memory; a lane decodes its block
// once (block_decode) and dots it with each row, and the scan carries 8
// sums. At m = 8 matvec.cu re-read every block per pair of x rows and the
// GEMM paid for its 64-wide tile (Gemma 3's head: 217 and 200 us on the
// H100 at m = 8 against 71 at m = 1, RESULTS.md fifth session), so this
// kernel is tried before the GEMM for the calls it takes, unless a
// gemm_min_m option asks for the GEMM; KQ_CUDA_D32_MAX_M=1 keeps it to
// m = 1. Gated calls (two parts of one row size) walk a gate group and its
// up group and write act(gate) * up.
//
// Measured (H100 80GB HBM3, read ceiling 3.13 TB/s, kq bench --backend cuda
// --m 1, matvec.cu in brackets): q8_0 262144x640 (Gemma 3's head) 72.5 us,
// 79% of read (120.5, 48%); q5_0 4096x640 7.3 us (10.8); q5_0 1536x640 7.1
// us (10.4). On 4096x4096 it lost: q4_0 12.7 us against 10.6, q8_0 14.8
// against 14.0. There a group is one row of 4 chunks, a warp walks it with
// two chunks in flight after quantizing x, and 4096 groups over ~3,200
// warps leave a second, partial round; so the kernel takes rows of up to
// kD32MaxK values (1024) only, where it was measured ahead.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cuda_runtime.h>

#include "decode.cuh"
#include "kernels.h"
#include "pdl.cuh"
#include "persistent.cuh"
#include "xquant.cuh"

namespace kqc {
namespace {

constexpr int kD32Threads = 256;
constexpr int kD32Warps = kD32Threads / 32;
constexpr int64_t kD32MaxK = 1024;  // longer rows stay on matvec.cu (measured, above)
constexpr int kD32Depth = 2;         // chunks in flight a warp, beside the one decoded
constexpr int kD32MaxBytes = 34;     // q8_0, the largest block
constexpr int kD32Units = (32 * kD32MaxBytes + 15) / 16 / 32 + 1;  // 16-byte loads a lane, at most
constexpr int kD32Slot = 32 * kD32MaxBytes + 16;  // a warp's chunk, and slack for the last word
// The types this kernel decodes (block_dot below), listed once for the
// host's check and both dispatch switches.
#define KQ_D32_TYPES(X) X(T_Q4_0) X(T_Q4_1) X(T_Q5_0) X(T_Q5_1) X(T_Q8_0) X(T_IQ4_NL) X(T_MXFP4)
constexpr int kD32MaxParts = 8;  // q/k/v, gate/up: a fused call has few parts

// The N 4-byte words of bytes p .. p + 4N - 1 in shared memory (p any
// address): aligned reads and funnel shifts; reads at most 3 bytes past the
// end, which the slot's slack covers.
template <int N>
__device__ __forceinline__ void sm_words(const uint8_t *p, uint32_t w[N])
{
    const uint32_t *a = reinterpret_cast<const uint32_t *>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)3);
    const uint32_t sh = (uint32_t)(reinterpret_cast<uintptr_t>(p) & 3) * 8;
    uint32_t prev = a[0];
#pragma unroll
    for (int i = 0; i < N; i++) {
        const uint32_t next = a[i + 1];
        w[i] = __funnelshift_r(prev, next, sh);
        prev = next;
    }
}

__device__ __forceinline__ uint32_t sm_u16(const uint8_t *p)  // 2-byte aligned p
{
    return *reinterpret_cast<const unsigned short *>(p);
}

// A block (at b, in shared memory) decoded once for all the x rows of a
// call: its 32 values as int8 in eight words (values 4i .. 4i + 3 in w[i]
// for q8_0; low nibbles in w[0..3] and high in w[4..7] for the others, the
// fifth bits and lookup tables applied), its scale d and, for q4_1/q5_1,
// its min mn (w = d q + mn).
struct D32Dec {
    uint32_t w[8];
    float d, mn;
};

template <int T>
__device__ __forceinline__ D32Dec block_decode(const uint8_t *b)
{
    D32Dec k;
    k.mn = 0.0f;
    if constexpr (T == T_Q8_0) {
        sm_words<8>(b + 2, k.w);
        k.d = h2f(sm_u16(b));
    } else {
        using L = Leg<T>;
        uint32_t q[4];
        sm_words<4>(b + L::kQs, q);
        uint32_t qh = 0;
        if constexpr (L::kQh != 0) sm_words<1>(b + L::kQh, &qh);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t lo = q[i] & 0x0F0F0F0Fu, hi = (q[i] >> 4) & 0x0F0F0F0Fu;
            if constexpr (L::kQh != 0) {
                lo |= bits_to_b4(qh >> (4 * i));
                hi |= bits_to_b4(qh >> (16 + 4 * i));
            }
            if constexpr (L::kLut != 0) {
                const Lut16 t = L::kLut == 1 ? iq4nl_lut() : mxfp4_lut();
                lo = lut16(lo, t);
                hi = lut16(hi, t);
            }
            k.w[i] = lo;
            k.w[4 + i] = hi;
        }
        if constexpr (T == T_MXFP4) {
            k.d = e8m0_half(b[0]);
        } else {
            const uint32_t dm = L::kMin ? (sm_u16(b) | (sm_u16(b + 2) << 16)) : sm_u16(b);
            k.d = h2f(dm);
            if constexpr (L::kMin != 0) k.mn = h2f(dm >> 16);
        }
    }
    return k;
}

// A decoded block against x's block of int8 (xq: 32 values, 16-byte
// aligned), its scale dx and int8 sum xs; q4_0/q5_0 values are stored
// unsigned, their offset comes off through xs.
template <int T>
__device__ __forceinline__ float block_dot(const D32Dec &k, const int8_t *xq, float dx, int xs)
{
    const uint4 xa = *reinterpret_cast<const uint4 *>(xq);
    const uint4 xb = *reinterpret_cast<const uint4 *>(xq + 16);
    const uint32_t xw[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
    int s = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) s = __dp4a((int)k.w[i], (int)xw[i], s);
    if constexpr (T == T_Q8_0 || T == T_MXFP4) {
        return k.d * dx * (float)s;
    } else {
        using L = Leg<T>;
        float v = k.d * dx * (float)(s - L::kOff * xs);
        if constexpr (L::kMin != 0) v += k.mn * dx * (float)xs;
        return v;
    }
}

// Where the rows of a part are split into groups: RG rows a group, so that a
// group's bytes are a multiple of 16 (its loads stay aligned) and, where a
// group of at most 64 rows allows, its blocks a multiple of 32 (no lane
// idles in a chunk). A part of few rows (under kD32FewGroups such groups)
// takes the smallest aligned group instead: there the time is one warp's
// walk through its chunks, and more, shorter walks finish sooner (Gemma 3's
// q/k/v, 1536 rows of 640: 192 warps of 5 chunks on 24 SMs, 14.7 us under
// ncu, against 768 warps of 2).
constexpr int64_t kD32FewGroups = 1024;  // about one wave of warps on an H100

__host__ __device__ inline int64_t d32_group_rows(int64_t nb, int64_t row_size, int64_t rows)
{
    int64_t g16 = 1;
    while ((g16 * row_size) % 16 != 0) g16 *= 2;  // row_size > 0: ends by 16
    int64_t rg = 0;
    for (int64_t r = g16; r <= 64 && rg == 0; r += g16)
        if ((r * nb) % 32 == 0) rg = r;
    if (rg == 0) rg = g16 * ((64 + nb * g16 - 1) / (nb * g16));
    if (rg < g16) rg = g16;
    return rows / rg < kD32FewGroups ? g16 : rg;
}

struct D32Part {
    const uint8_t *data;
    int64_t row_begin, rows, groups, group_rows, row_size;
    int32_t type;
};

// The bytes of flat blocks [c * 32, c * 32 + 32) of a group into registers:
// lane l takes 16-byte units l, l + 32, ...; units past the group's end
// are not read, and the group's last unit, when its bytes end inside it,
// is read a byte at a time (no byte past the tensor's end).
template <int BS>
__device__ __forceinline__ void d32_fetch(const uint8_t *g, int64_t gbytes, int64_t c, uint4 r[kD32Units])
{
    constexpr int kU = (32 * BS) / 16;  // 32 * BS is a multiple of 16 for every type here
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int i = 0; i < kD32Units; i++) {
        const int u = lane + 32 * i;
        r[i] = make_uint4(0, 0, 0, 0);
        if (u >= kU) continue;
        const int64_t off = c * 32 * BS + 16 * (int64_t)u;
        if (off + 16 <= gbytes) {
            r[i] = __ldcs(reinterpret_cast<const uint4 *>(g + off));
        } else if (off < gbytes) {
            uint32_t w[4] = {0, 0, 0, 0};
#pragma unroll
            for (int k = 0; k < 16; k++)
                if (off + k < gbytes) w[k >> 2] |= (uint32_t)__ldcs(g + off + k) << (8 * (k & 3));
            r[i] = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}

template <int BS>
__device__ __forceinline__ void d32_store(uint8_t *slot, const uint4 r[kD32Units])
{
    constexpr int kU = (32 * BS) / 16;
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int i = 0; i < kD32Units; i++)
        if (lane + 32 * i < kU) reinterpret_cast<uint4 *>(slot)[lane + 32 * i] = r[i];
}

// x rows of a call, quantized to int8 in shared memory by the block, and
// how many of the kernel's M are live (the last launch of a call may hold
// fewer).
template <int M>
struct D32X {
    XqSmem r[M];
    int live;
};

// One group of rows of part P (group gi), by one warp: the flat block
// stream through the warp's slot, row r0 + i's sum for x row j into
// out[j * ld + i].
template <int T, int M>
__device__ __forceinline__ void d32_group(const D32Part &P, int64_t gi, int nb, float inv_nb,
                                          const D32X<M> &sx, uint8_t *slot, float *out, int64_t ld)
{
    constexpr int BS = TypeInfo<T>::kBytes;
    const unsigned full = 0xffffffffu;
    const int lane = threadIdx.x & 31;
    const int64_t r0 = gi * P.group_rows;
    const int rows = (int)min(P.group_rows, P.rows - r0);
    const uint8_t *g = P.data + r0 * (int64_t)nb * BS;
    const int64_t gblocks = (int64_t)rows * nb, gbytes = gblocks * BS;
    const int64_t chunks = (gblocks + 31) / 32;
    uint4 ahead[kD32Depth][kD32Units];
#pragma unroll
    for (int k = 0; k < kD32Depth; k++) d32_fetch<BS>(g, gbytes, k < chunks ? k : chunks, ahead[k]);
    float carry[M];
#pragma unroll
    for (int j = 0; j < M; j++) carry[j] = 0.0f;
    int carry_row = -1;
    for (int64_t c = 0; c < chunks; c++) {
        __syncwarp();
        d32_store<BS>(slot, ahead[0]);
#pragma unroll
        for (int k = 0; k + 1 < kD32Depth; k++)
#pragma unroll
            for (int i = 0; i < kD32Units; i++) ahead[k][i] = ahead[k + 1][i];
        d32_fetch<BS>(g, gbytes, c + kD32Depth < chunks ? c + kD32Depth : chunks, ahead[kD32Depth - 1]);
        __syncwarp();
        const int f = (int)(c * 32) + lane;  // flat block in the group
        const bool in = f < gblocks;
        // f / nb through the float reciprocal: exact here (f < 2^22), rounded toward zero
        int row = in ? __float2int_rz(((float)f + 0.5f) * inv_nb) : INT32_MAX;
        const int b = in ? f - row * nb : 0;
        float v[M];
        {
            const D32Dec k = block_decode<T>(slot + lane * BS);  // once for every x row
#pragma unroll
            for (int j = 0; j < M; j++) {
                const XqSmem &x = sx.r[j];
                v[j] = in && j < sx.live ? block_dot<T>(k, x.q + 32 * b, x.d[b], x.sum[2 * b] + x.sum[2 * b + 1])
                                         : 0.0f;
            }
        }
        // suffix sums within each row's run of lanes
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const int rt = __shfl_down_sync(full, row, o);
            const bool add = lane + o < 32 && rt == row;
#pragma unroll
            for (int j = 0; j < M; j++) {
                const float t = __shfl_down_sync(full, v[j], o);
                if (add) v[j] += t;
            }
        }
        const int prev_row = __shfl_up_sync(full, row, 1);
        const bool head = in && (lane == 0 || prev_row != row);
        if (head && row == carry_row)
#pragma unroll
            for (int j = 0; j < M; j++) v[j] += carry[j];
        // the row at lane 31 goes on into the next chunk unless its last block is there
        const int row31 = __shfl_sync(full, row, 31), b31 = __shfl_sync(full, b, 31);
        const int cont = row31 != INT32_MAX && b31 != nb - 1 ? row31 : -1;
        if (head && row != cont)
#pragma unroll
            for (int j = 0; j < M; j++)
                if (j < sx.live) out[j * ld + row] = v[j];
        const unsigned from = __ballot_sync(full, head && row == cont);
#pragma unroll
        for (int j = 0; j < M; j++) carry[j] = from ? __shfl_sync(full, v[j], __ffs(from) - 1) : 0.0f;
        carry_row = cont;
    }
}

// T: the parts' one type, or kD32Mixed: each part's own (q/k/v of q5_0
// and q8_0 in a Q4_K_M file), a switch per group.
constexpr int kD32Mixed = -1;
constexpr int kD32MaxGroupRows = 32;  // d32_group_rows: r = 32 always meets its test
// x rows a launch: 1, or kD32Rows for calls of 2 to kD32Rows rows (one
// decode of each block serves them all; fewer live rows skip their dots).
constexpr int kD32Rows = 8;

template <int T, int M>
__device__ __forceinline__ void d32_any(const D32Part &P, int64_t gi, int nb, float inv_nb,
                                        const D32X<M> &sx, uint8_t *slot, float *out, int64_t ld)
{
    if constexpr (T != kD32Mixed) {
        d32_group<T, M>(P, gi, nb, inv_nb, sx, slot, out, ld);
    } else {
        switch (P.type) {  // warp-uniform: a group is one part's
#define KQ_D32_GROUP(T_) \
    case T_: d32_group<T_, M>(P, gi, nb, inv_nb, sx, slot, out, ld); break;
        KQ_D32_TYPES(KQ_D32_GROUP)
#undef KQ_D32_GROUP
        default: __trap();  // the host admits these types only
        }
    }
}

__host__ __device__ inline int64_t d32_x_stride(int64_t K)  // a quantized x row in shared memory
{
    return (xq_smem_bytes(K) + 15) / 16 * 16;
}

// GLU: a gated call (kq_linear_forward_glu) of two parts, gate rows then as
// many up rows of the same row size. A warp takes group gi of both, parks
// the two groups' sums in shared memory and writes act(gate) * up: the
// gate/up pair needs no second kernel (Gemma 3's GELU gate was one, ~3.6
// us a layer under ncu). x holds `live` rows of K (M of them at most), y
// the same rows of ldy outputs.
template <int T, bool GLU, int M>
__global__ void __launch_bounds__(kD32Threads)
direct_b32(const kq_cuda_part *parts, int n_parts, int64_t K, const float *x, float *y,
           int64_t ldy, int live, int act)
{
    extern __shared__ __align__(16) uint8_t smem[];
    __shared__ D32Part parts_in[kD32MaxParts];
    __shared__ float glu_sums[GLU ? kD32Warps : 1][2][M][kD32MaxGroupRows];
    D32X<M> sx;
#pragma unroll
    for (int j = 0; j < M; j++) sx.r[j] = xq_smem_carve(smem + j * d32_x_stride(K), K);
    sx.live = live;
    uint8_t *slot = smem + M * d32_x_stride(K) + (threadIdx.x / 32) * kD32Slot;
    if (threadIdx.x < n_parts) {
        const kq_cuda_part hp = parts[threadIdx.x];
        const int64_t rows = hp.row_end - hp.row_begin, rg = d32_group_rows(K / 32, hp.row_size, rows);
        parts_in[threadIdx.x] = {hp.data, hp.row_begin, rows, (rows + rg - 1) / rg, rg, hp.row_size, hp.type};
    }
    __syncthreads();
    const int nb = (int)(K / 32);
    const float inv_nb = 1.0f / (float)nb;
    int64_t total = 0;
    for (int p = 0; p < n_parts; p++) total += parts_in[p].groups;
    if (GLU) total = parts_in[0].groups;  // a unit is a gate group and its up group
    const int64_t warps = (int64_t)gridDim.x * kD32Warps;
    auto find = [&](int64_t w, int64_t &gi) {  // the part of flat group w, and its group there
        int p = 0;
        gi = w;
        while (gi >= parts_in[p].groups) gi -= parts_in[p++].groups;
        return p;
    };
    const int64_t w0 = (int64_t)blockIdx.x * kD32Warps + threadIdx.x / 32;
    if (w0 < total) {  // the warp's first group heads for the L2 before the wait (pdl.cuh)
        int64_t gi;
        const D32Part &P = parts_in[find(w0, gi)];
        const int64_t r0 = gi * P.group_rows, rows = min(P.group_rows, P.rows - r0);
        prefetch_l2(P.data + r0 * P.row_size, rows * P.row_size, 8192);
        if (GLU) prefetch_l2(parts_in[1].data + r0 * P.row_size, rows * P.row_size, 8192);
    }
    pdl_start();
    for (int j = 0; j < live; j++) xq_quantize_shared<kD32Threads>(x + j * K, K, sx.r[j]);
    __syncthreads();
    for (int64_t w = w0; w < total; w += warps) {
        if constexpr (GLU) {
            float(*sums)[M][kD32MaxGroupRows] = glu_sums[threadIdx.x / 32];
            const D32Part G = parts_in[0], U = parts_in[1];
            d32_any<T, M>(G, w, nb, inv_nb, sx, slot, &sums[0][0][0], kD32MaxGroupRows);
            d32_any<T, M>(U, w, nb, inv_nb, sx, slot, &sums[1][0][0], kD32MaxGroupRows);
            __syncwarp();
            const int64_t r0 = w * G.group_rows;
            const int lane = threadIdx.x & 31, rows = (int)min(G.group_rows, G.rows - r0);
            for (int j = 0; j < live; j++)
                if (lane < rows) y[j * ldy + r0 + lane] = glu_gate(act, sums[0][j][lane]) * sums[1][j][lane];
            __syncwarp();  // the next unit's sums overwrite these
        } else {
            int64_t gi;
            const D32Part P = parts_in[find(w, gi)];
            d32_any<T, M>(P, gi, nb, inv_nb, sx, slot, y + P.row_begin + gi * P.group_rows, ldy);
        }
    }
}

template <int T, bool GLU, int M>
cudaError_t d32_launch(const kq_cuda_dense_args *a, int64_t work, cudaStream_t s)
{
    static std::atomic<long long> last(-1);
    const int smem = (int)(M * d32_x_stride(a->n_cols) + kD32Warps * kD32Slot);
    int64_t grid = 0;
    cudaError_t e = persistent_grid(direct_b32<T, GLU, M>, kD32Threads, smem, last,
                                    (work + kD32Warps - 1) / kD32Warps, grid);
    if (e != cudaSuccess) return e;
    const int64_t ldy = GLU ? a->n_rows / 2 : a->n_rows;
    for (int64_t m0 = 0; m0 < a->m && e == cudaSuccess; m0 += M) {
        const int live = (int)(a->m - m0 < M ? a->m - m0 : M);
        e = launch_pdl(direct_b32<T, GLU, M>, (unsigned)grid, kD32Threads, smem, s, a->parts,
                       a->n_parts, a->n_cols, a->x + m0 * a->n_cols, a->y + m0 * ldy, ldy, live,
                       a->act);
    }
    return e;
}

template <int T>
cudaError_t d32_launch(const kq_cuda_dense_args *a, int64_t work, cudaStream_t s)
{
    if (a->m == 1)
        return a->swiglu ? d32_launch<T, true, 1>(a, work, s) : d32_launch<T, false, 1>(a, work, s);
    return a->swiglu ? d32_launch<T, true, kD32Rows>(a, work, s)
                     : d32_launch<T, false, kD32Rows>(a, work, s);
}

// A gated call this kernel takes: two parts, gate rows [0, h) then up rows
// [h, 2h), of one row size (so that their groups line up).
bool d32_glu_ok(const kq_cuda_dense_args *a)
{
    if (a->n_parts != 2) return false;
    const kq_cuda_part &g = a->host_parts[0], &u = a->host_parts[1];
    const int64_t h = a->n_rows / 2;
    return g.row_begin == 0 && g.row_end == h && u.row_begin == h && u.row_end == 2 * h &&
           g.row_size == u.row_size;
}

bool d32_type(int t)
{
#define KQ_D32_IS(T_) t == T_ ||
    return KQ_D32_TYPES(KQ_D32_IS) false;
#undef KQ_D32_IS
}

}  // namespace
}  // namespace kqc

// The most x rows a call this kernel takes (KQ_CUDA_D32_MAX_M, 1 to
// kD32Rows; default kD32Rows): read once, racing first calls agree.
static int64_t d32_max_m()
{
    static std::atomic<int> v(0);
    int m = v.load(std::memory_order_relaxed);
    if (m == 0) {
        const char *e = getenv("KQ_CUDA_D32_MAX_M");
        m = e ? atoi(e) : kqc::kD32Rows;
        m = m < 1 ? 1 : m > kqc::kD32Rows ? kqc::kD32Rows : m;
        v.store(m, std::memory_order_relaxed);
    }
    return m;
}

extern "C" int kq__cuda_direct32_dense(kq_cuda_dense_args *a, cudaStream_t s, cudaError_t *err)
{
    using namespace kqc;
    const int t = a->uniform_type < 0 ? kD32Mixed : a->uniform_type;
    // An explicit gemm_min_m (a backend option) hands the GEMM its m: only
    // m = 1 here then.
    const int64_t max_m = a->gcfg && a->gcfg->min_m > 0 ? 1 : d32_max_m();
    if (!kq__cuda_direct_wanted() || a->m < 1 || a->m > max_m || !a->device_weights ||
        a->n_cols % 32 != 0 || a->n_cols > kD32MaxK || a->n_parts > kD32MaxParts || !a->host_parts ||
        (reinterpret_cast<uintptr_t>(a->x) & 15) != 0 || (a->swiglu && !d32_glu_ok(a)))
        return 0;
    const int64_t nb = a->n_cols / 32;
    int64_t work = 0;
    for (int p = 0; p < a->n_parts; p++) {
        const kq_cuda_part &hp = a->host_parts[p];
        if (!d32_type(hp.type) || (reinterpret_cast<uintptr_t>(hp.data) & 15) != 0) return 0;
        const int64_t rg = d32_group_rows(nb, hp.row_size, hp.row_end - hp.row_begin);
        work += (hp.row_end - hp.row_begin + rg - 1) / rg;
    }
    if (a->swiglu) work /= 2;  // d32_glu_ok: both parts have the same groups
    cudaError_t e;
    switch (t) {
#define KQ_D32_LAUNCH(T_) \
    case T_: e = d32_launch<T_>(a, work, s); break;
    KQ_D32_TYPES(KQ_D32_LAUNCH)
#undef KQ_D32_LAUNCH
    case kD32Mixed: e = d32_launch<kD32Mixed>(a, work, s); break;
    default: e = cudaErrorInvalidValue; break;  // the check above admits no other type
    }
    static const char *const names[2][2][2] = {  // [m > 1][gated][mixed]
        {{"direct 32-value blocks m=1", "direct 32-value blocks m=1, mixed types"},
         {"direct 32-value blocks gated m=1", "direct 32-value blocks gated m=1, mixed types"}},
        {{"direct 32-value blocks m<=8", "direct 32-value blocks m<=8, mixed types"},
         {"direct 32-value blocks gated m<=8", "direct 32-value blocks gated m<=8, mixed types"}}};
    a->kernel = names[a->m > 1][a->swiglu != 0][t == kD32Mixed];
    *err = e;
    return 1;
}
