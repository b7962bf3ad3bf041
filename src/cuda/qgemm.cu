// The prefill GEMM's host side and its small kernels: weight descriptors and
// range check at load, x to scaled fp16, experts bucketed by id on the
// device, and the dispatch between the GEMM and the batched-decode kernels.
//
// x rows are converted once per call into the backend's GEMM scratch as
// fp16, each scaled by a power of two 2^(13 - floor(log2 max|x|)) so that
// activations beyond the fp16 range (or far below it) keep their precision
// instead of overflowing to inf; the output is multiplied back exactly.
//
// Experts: ids are counted per expert (atomics), a one-block scan turns the
// counts into each expert's first x row and its tiles of BN rows, and a
// scatter places every pair in its expert's range; the x rows are then
// gathered in that order, so a tile's tokens are contiguous rows for the
// GEMM's TMA. The tile list stays on the device: the GEMM grid is sized for
// the most tiles the pairs could need and blocks past the real count exit.
// No call synchronizes with the host (only loading does, for the range
// check).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "decode.cuh"
#include "kernels.h"
#include "qgemm.cuh"
#include "qgemm_frag.cuh"

namespace kqc {
namespace {

// ------------------------------------------------------------ range check

template <int T>
__global__ void range_kernel(const uint8_t *data, int64_t rows, int64_t row_size, int64_t n_exp,
                             int64_t expert_bytes, int64_t bpr, int bsize, unsigned *out)
{
    int64_t n = n_exp * rows * bpr;
    float m = 0.f;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = i % bpr, r = (i / bpr) % rows, e = i / (bpr * rows);
        float v = block_bound<T>(data + e * expert_bytes + r * row_size + b * bsize);
        m = (v != v || v > m) ? v : m;  // NaN sticks
    }
    // Non-negative floats order like their bits; NaN's bits exceed inf's.
    unsigned bits = __float_as_uint(m);
    if (m != m) bits = 0x7fffffffu;
    for (int o = 16; o; o >>= 1) bits = max(bits, __shfl_xor_sync(~0u, bits, o));
    if ((threadIdx.x & 31) == 0) atomicMax(out, bits);
}

// ------------------------------------------------------------ x to fp16

// One warp per x row: max |x|, then the scaled fp16 copy. Row r of x is at
// x + r0 * ts (dense: r0 = row0 + r, ss unused) or, for experts, pair
// pair_of[r]'s token and slot.
__global__ void convert_x(const float *x, int64_t ts, int64_t ss, int64_t top_k, int64_t row0,
                          const int *pair_of, const int *total, int64_t rows, int64_t K,
                          __half *xh, float *x_inv)
{
    int64_t r = (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (total) rows = *total;
    if (r >= rows) return;
    const float *src;
    if (pair_of) {
        int64_t pair = pair_of[r];
        src = x + (pair / top_k) * ts + (pair % top_k) * ss;
    } else {
        src = x + (row0 + r) * ts;
    }
    const float4 *s4 = reinterpret_cast<const float4 *>(src);
    int64_t n4 = K / 4;
    float amax = 0.f;
    for (int64_t i = lane; i < n4; i += 32) {
        float4 v = __ldg(s4 + i);
        amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
        if (v.x != v.x || v.y != v.y || v.z != v.z || v.w != v.w) amax = INFINITY;
    }
    for (int o = 16; o; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(~0u, amax, o));
    int e = 0;
    if (amax > 0.f && amax < INFINITY) {
        e = 13 - ilogbf(amax);
        e = e > 126 ? 126 : (e < -126 ? -126 : e);
    }
    float sc = ldexpf(1.f, e);
    __half2 *d2 = reinterpret_cast<__half2 *>(xh + r * K);
    for (int64_t i = lane; i < n4; i += 32) {
        float4 v = __ldg(s4 + i);
        d2[2 * i] = __floats2half2_rn(v.x * sc, v.y * sc);
        d2[2 * i + 1] = __floats2half2_rn(v.z * sc, v.w * sc);
    }
    if (lane == 0) x_inv[r] = ldexpf(1.f, -e);
}

// ------------------------------------------------------------ experts buckets

struct Buckets {
    int *counts, *offs, *cursor, *n_tiles, *pair_of;
    int4 *tiles;
};

__global__ void count_ids(const int32_t *ids, int64_t p0, int64_t np, int64_t n_exp,
                          int64_t top_k, int64_t ldy, float *y, kq_cuda_err *err, int *counts)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= np) return;
    int64_t pair = p0 + i;
    int32_t id = ids[pair];
    if (id >= 0 && id < n_exp) {
        atomicAdd(&counts[id], 1);
        return;
    }
    for (int64_t c = 0; c < ldy; c++) y[pair * ldy + c] = __int_as_float(0x7fc00000);
    if (atomicCAS(&err->pair_plus_1, 0ull, (unsigned long long)pair + 1) == 0ull) {
        err->id = id;
        err->n_experts = (int32_t)n_exp;
        err->top_k = top_k;
    }
}

// One block: exclusive scans of the counts (first x row of each expert) and
// of their tile counts, then each expert's tiles.
__global__ void __launch_bounds__(1024) scan_tiles(int n_exp, int bn, Buckets b)
{
    __shared__ int wsum[2][32];
    __shared__ int carry[2];
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    if (tid == 0) carry[0] = carry[1] = 0;
    __syncthreads();
    for (int base = 0; base < n_exp; base += 1024) {
        int e = base + tid;
        int c = e < n_exp ? b.counts[e] : 0, nt = (c + bn - 1) / bn;
        int v0 = c, v1 = nt;
        for (int o = 1; o < 32; o <<= 1) {
            int a0 = __shfl_up_sync(~0u, v0, o), a1 = __shfl_up_sync(~0u, v1, o);
            if (lane >= o) v0 += a0, v1 += a1;
        }
        if (lane == 31) wsum[0][w] = v0, wsum[1][w] = v1;
        __syncthreads();
        if (w == 0) {
            int s0 = wsum[0][lane], s1 = wsum[1][lane];
            for (int o = 1; o < 32; o <<= 1) {
                int a0 = __shfl_up_sync(~0u, s0, o), a1 = __shfl_up_sync(~0u, s1, o);
                if (lane >= o) s0 += a0, s1 += a1;
            }
            wsum[0][lane] = s0, wsum[1][lane] = s1;
        }
        __syncthreads();
        int pre0 = carry[0] + (w ? wsum[0][w - 1] : 0) + v0 - c;
        int pre1 = carry[1] + (w ? wsum[1][w - 1] : 0) + v1 - nt;
        if (e < n_exp) {
            b.offs[e] = pre0;
            b.cursor[e] = pre0;
            for (int k = 0; k < nt; k++) {
                int left = c - k * bn;
                b.tiles[pre1 + k] = make_int4(e, pre0 + k * bn, left < bn ? left : bn, 0);
            }
        }
        __syncthreads();
        if (tid == 0) carry[0] += wsum[0][31], carry[1] += wsum[1][31];
        __syncthreads();
    }
    if (tid == 0) {
        b.offs[n_exp] = carry[0];
        *b.n_tiles = carry[1];
    }
}

__global__ void scatter_pairs(const int32_t *ids, int64_t p0, int64_t np, int64_t n_exp,
                              int *cursor, int *pair_of)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= np) return;
    int32_t id = ids[p0 + i];
    if (id < 0 || id >= n_exp) return;
    pair_of[atomicAdd(&cursor[id], 1)] = (int)(p0 + i);
}

// ------------------------------------------------------------ host side

typedef CUresult (*EncodeTiled)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                                const cuuint64_t *, const cuuint64_t *, const cuuint32_t *,
                                const cuuint32_t *, CUtensorMapInterleave, CUtensorMapSwizzle,
                                CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encoder()
{
    static EncodeTiled fn = nullptr;
    static bool tried = false;
    if (!tried) {
        void *p = nullptr;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault,
                                             &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = reinterpret_cast<EncodeTiled>(p);
        cudaGetLastError();
        tried = true;
    }
    return fn;
}

// A type's group bytes in memory and shared-memory row (Group<T>); 0 for
// types the GEMM does not take.
struct GroupSize {
    int bytes, pitch;
};

GroupSize group_size(int type)
{
    switch (type) {
#define KQ_CUDA_GROUP_CASE(ID, name, BLOCK, elems, act) \
    case ID: return {Group<ID>::kBytes, Group<ID>::kPitch};
        KQ_QUANT_TYPES(KQ_CUDA_GROUP_CASE)
#undef KQ_CUDA_GROUP_CASE
    default: return {0, 0};  // float weights: no GEMM
    }
}

// The range check of one type (bsize: its block bytes).
using RangeFn = void (*)(const uint8_t *, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                         unsigned *);
RangeFn range_fn(int type, int &bsize)
{
    switch (type) {
#define KQ_CUDA_RANGE_CASE(ID, name, BLOCK, elems, act) \
    case ID: bsize = TypeInfo<ID>::kBytes; return range_kernel<ID>;
        KQ_QUANT_TYPES(KQ_CUDA_RANGE_CASE)
#undef KQ_CUDA_RANGE_CASE
    default: bsize = 0; return nullptr;
    }
}

// Hopper takes the wgmma kernel unless gemm=mma; its weights also need a
// TMA map (rows of 16-byte multiples), else they run on mma.sync.
bool use_sm90(const kq_cuda_gemm_cfg *cfg)
{
    return cfg->kernel == 0 && gemm_sm90_built(cfg->sm);
}

// The scratch of one call: x_inv, pair_of, bucket arrays, then the fp16 rows
// at a 1 KB boundary; rows is how many x rows fit.
struct Scratch {
    float *x_inv;
    Buckets b;
    __half *xh;
    int64_t rows;
};

bool scratch_layout(void *base, int64_t K, int64_t n_exp, Scratch &s)
{
    const int64_t total = (int64_t)KQ_CUDA_GEMM_SCRATCH;
    if (n_exp > (1 << 20)) return false;
    int64_t fixed = (3 * n_exp + 2) * 4 + 4096;
    int64_t per_row = 2 * K + 4 + 4 + 1;  // fp16 row, x_inv, pair_of, a tile's share
    int64_t rows = (total - fixed - (1 << 20)) / (per_row + 1) / 128 * 128;
    if (rows < 128) return false;
    int64_t max_tiles = rows / 32 + n_exp + 1;
    uint8_t *p = static_cast<uint8_t *>(base);
    auto take = [&](int64_t bytes) {
        uint8_t *q = p;
        p += (bytes + 255) / 256 * 256;
        return q;
    };
    s.x_inv = reinterpret_cast<float *>(take(rows * 4));
    s.b.pair_of = reinterpret_cast<int *>(take(rows * 4));
    s.b.counts = reinterpret_cast<int *>(take(n_exp * 4 + 4));
    s.b.offs = reinterpret_cast<int *>(take(n_exp * 4 + 8));
    s.b.cursor = reinterpret_cast<int *>(take(n_exp * 4 + 4));
    s.b.n_tiles = reinterpret_cast<int *>(take(16));
    s.b.tiles = reinterpret_cast<int4 *>(take(max_tiles * 16));
    uintptr_t a = (reinterpret_cast<uintptr_t>(p) + 1023) & ~(uintptr_t)1023;
    s.xh = reinterpret_cast<__half *>(a);
    if ((int64_t)(a - reinterpret_cast<uintptr_t>(base)) + rows * 2 * K > total) return false;
    s.rows = rows;
    return true;
}

bool encode_x(const Scratch &s, int64_t K, int bn, CUtensorMap *m)
{
    EncodeTiled enc = encoder();
    if (!enc) return false;
    cuuint64_t dims[2] = {(cuuint64_t)K, (cuuint64_t)s.rows};
    cuuint64_t strides[1] = {(cuuint64_t)(2 * K)};
    cuuint32_t box[2] = {64, (cuuint32_t)bn}, es[2] = {1, 1};
    return enc(m, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, s.xh, dims, strides, box, es,
               CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The x side of a launch: the call's fp16 rows in the scratch (and their
// TMA map for the wgmma kernel).
bool attach_x(GemmParams &p, const Scratch &sc, int64_t K, int bn, bool sm90)
{
    if (sm90 && !encode_x(sc, K, bn, &p.x)) return false;
    p.K = K;
    p.groups = (int)((K + 255) / 256);
    p.xh = sc.xh;
    p.x_rows = sc.rows;
    p.x_inv = sc.x_inv;
    return true;
}

// Blocks along the weight rows: two halves each (plain), or one gate/up
// pair of halves (SwiGLU).
unsigned row_blocks(const GemmParams &p)
{
    return p.swiglu ? (unsigned)p.src[0].halves : (unsigned)((p.total_halves + 1) / 2);
}

GemmSrc make_src(const kq_cuda_gemm_w &g, const uint8_t *data, int type, int64_t row_off,
                 int64_t rows, int64_t row_size, int64_t expert_bytes, int64_t out_col, int H)
{
    GemmSrc s{};
    s.type = type;
    s.pitch = group_size(type).pitch;
    s.gbytes = group_size(type).bytes;
    s.wf = g.wf;
    s.inv_wf = 1.0f / g.wf;
    s.row_off = row_off;
    s.rows = rows;
    s.row_size = row_size;
    s.expert_bytes = expert_bytes;
    s.data = data;
    s.out_col = out_col;
    s.halves = (int)((rows + H - 1) / H);
    return s;
}

// The smallest m the GEMM takes, from crossovers measured with
// `kq bench --backend cuda --backend cuda:gemm=off` on the H200
// (bench/RESULTS.md, issue 6).
// - wgmma, dense: from m = 17, where the batched-decode kernels' last tier
//   ends. At m = 17 it took q4_K 14336x4096 in 43 us against 141,
//   4096x4096 in 40 against 53, q8_0 4096x4096 in 39 against 86.
// - wgmma, experts: 32. At m = 17, 128 x (768x2048) top-8 took 111 us
//   against the decode kernel's 86; at m = 32, 112 against 155.
// - mma.sync: at m = 32 the batched-decode kernels still won q4_K
//   4096x4096 (71 against 86 us), 4096x14336 (268 against 287) and the
//   experts (152 against 191); at m = 64 the GEMM won every shape; q8_0
//   took it already at m = 32 (109 against 131 us).
// - wgmma, dense, wide or mixed (H100, bench/RESULTS.md, 2026-12-07 fourth
//   session, `--backend cuda --backend cuda:gemm_min_m=8`): below m = 17
//   the GEMM costs about its m = 32 time, while the batched-decode kernels
//   grow with m. From m = 8 it won every call with 8192 rows or more (q4_K
//   14336x4096: 43 against 52 us at m = 8, 44 against 92 at m = 16; fused
//   gate/up 28672x4096: 72 against 90 and 74 against 169) and every fused
//   call of mixed types, which the decode kernels take with float x
//   (q4_K+q6_K 6144x4096: 48 against 68 and 49 against 178). From m = 16 it
//   won 2^25 weights or more (q6_K 4096x14336: 134 against 144), and lost
//   4096x4096 (40 against 37) and 1024x4096 (38 against 25). The small
//   types' decode kernels are slower still at m = 8 (q2_K, q3_K, iq4_xs,
//   mxfp4 14336x4096: 94-115 us), so the rule holds for them too.
// - mma.sync, output heads (rows >= 2^17, H100, 2026-12-07 fifth session):
//   Gemma 3's q8_0 262144x640 head (K = 640 is no multiple of 256, so no
//   wgmma) took 217 / 348 / 388 / 699 us at m = 8 / 12 / 16 / 24 on the
//   decode kernels and 200 us at m = 32 on the GEMM, whose cost at small m
//   is its 64-wide tile's: the GEMM from m = 8 for such calls. Since
//   0d6801d the direct 32-value kernel (direct_gemv32.cu) is asked first
//   and takes 32-value calls with K <= 1024 up to m = 8, this head among
//   them; that choice awaits its GPU measurement (bench/cuda_check.sh ab).
// Types not measured follow q4_K. kq__cuda_gemm_rule prints the same.
constexpr int kDenseMinM = 17, kExpertsMinM = 32, kWideMinM = 8, kLargeMinM = 16;
constexpr int kMmaMinM = 48, kMmaQ8MinM = 32;
constexpr int64_t kWideRows = 8192, kLargeWeights = (int64_t)1 << 25, kHeadRows = (int64_t)1 << 17;

// y in page-locked host memory (the model layer writes its own logits
// straight through the bus): no split, whose memset and atomic adds would
// cross it too. A pointer the runtime cannot place counts as host memory.
bool host_memory(const void *p)
{
    cudaPointerAttributes at;
    if (cudaPointerGetAttributes(&at, p) != cudaSuccess) {
        cudaGetLastError();
        return true;
    }
    return at.type == cudaMemoryTypeHost;
}

int crossover(int type, bool sm90, bool experts, int64_t rows, int64_t cols, bool mixed)
{
    if (sm90 && experts) return kExpertsMinM;
    if (sm90) {
        if (rows >= kWideRows || mixed) return kWideMinM;
        if (rows * cols >= kLargeWeights) return kLargeMinM;
        return kDenseMinM;
    }
    if (rows >= kHeadRows) return kWideMinM;
    return type == T_Q8_0 ? kMmaQ8MinM : kMmaMinM;
}

cudaError_t launch(const GemmParams &p, bool sm90, int bn, dim3 grid, cudaStream_t s,
                   const char **name)
{
    if (sm90) return gemm_sm90_launch(p, bn, grid, s, name);
    *name = "mma.sync";
    return gemm_sm80_launch(p, bn, grid, s);
}

}  // namespace
}  // namespace kqc

using namespace kqc;

extern "C" cudaError_t kq__cuda_gemm_describe(const kq_cuda_gemm_cfg *cfg, const uint8_t *data,
                                              int type, int64_t rows, int64_t row_size,
                                              int64_t n_exp, int64_t expert_bytes,
                                              kq_cuda_gemm_w *out)
{
    memset(out, 0, sizeof *out);
    int gb = group_size(type).bytes;
    if (!gb || cfg->kernel < 0 || cfg->sm < 80 || !cfg->scratch || rows <= 0 || n_exp <= 0 ||
        rows > INT32_MAX || n_exp > INT32_MAX)
        return cudaSuccess;
    // Both families: weights the wgmma kernel cannot take run on mma.sync.
    cudaError_t e = gemm_sm80_init();
    if (e == cudaSuccess && use_sm90(cfg)) e = gemm_sm90_init();
    if (e != cudaSuccess) return e;
    // Largest weight any block can decode to.
    // The scratch's last KB: no call's layout reaches it (scratch_layout
    // leaves 1 MB), so a GEMM still running cannot be disturbed.
    unsigned *dmax = reinterpret_cast<unsigned *>(static_cast<uint8_t *>(cfg->scratch) +
                                                  KQ_CUDA_GEMM_SCRATCH - 1024);
    if ((e = cudaMemset(dmax, 0, 4)) != cudaSuccess) return e;
    int bsize = 0;
    RangeFn range = range_fn(type, bsize);
    if (!range) return cudaErrorNotSupported;  // group_size took it: cannot happen
    int64_t bpr = row_size / bsize;
    int64_t blocks = n_exp * rows * bpr;
    unsigned grid = (unsigned)((blocks + 255) / 256 < 4096 ? (blocks + 255) / 256 : 4096);
    if (grid == 0) grid = 1;
    range<<<grid, 256>>>(data, rows, row_size, n_exp, expert_bytes, bpr, bsize, dmax);
    unsigned bits = 0;
    if ((e = cudaGetLastError()) != cudaSuccess ||
        (e = cudaMemcpy(&bits, dmax, 4, cudaMemcpyDeviceToHost)) != cudaSuccess)
        return e;
    float wmax;
    memcpy(&wmax, &bits, 4);
    if (!std::isfinite(wmax)) return cudaSuccess;  // the decode kernels take it
    int ex = wmax > 0.f ? 14 - std::ilogb(wmax) : 0;
    ex = ex > 100 ? 100 : (ex < -100 ? -100 : ex);
    out->wf = std::ldexp(1.0f, ex);
    // TMA: a 3-D map (rows, experts). Rows that are not 16-byte multiples
    // cannot be a TMA tensor's rows: such weights go to the mma.sync
    // kernel, which reads them directly.
    uintptr_t addr = reinterpret_cast<uintptr_t>(data);
    out->no_map = row_size % 16 != 0 || (n_exp > 1 && expert_bytes % 16 != 0) || (addr & 15);
    if (use_sm90(cfg) && !out->no_map) {
        EncodeTiled enc = encoder();
        if (!enc) return cudaSuccess;
        CUtensorMap m;
        cuuint32_t es[3] = {1, 1, 1};
        cuuint64_t dims[3] = {(cuuint64_t)(row_size / 2), (cuuint64_t)rows, (cuuint64_t)n_exp};
        cuuint64_t strides[2] = {(cuuint64_t)row_size,
                                 (cuuint64_t)(n_exp > 1 ? expert_bytes : rows * row_size)};
        cuuint32_t box[3] = {(cuuint32_t)(group_size(type).pitch / 2), (cuuint32_t)kHalf90, 1};
        CUresult r = enc(&m, CU_TENSOR_MAP_DATA_TYPE_UINT16, 3, const_cast<uint8_t *>(data), dims,
                         strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                         CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
        if (r != CUDA_SUCCESS) return cudaSuccess;
        static_assert(sizeof m == sizeof out->map, "CUtensorMap is 128 bytes");
        memcpy(out->map, &m, sizeof m);
    }
    out->ok = 1;
    return cudaSuccess;
}

// The crossover in words, for the backend's device string (kq backends,
// kq bench): where the GEMM takes over from the decode kernels.
extern "C" void kq__cuda_gemm_rule(const kq_cuda_gemm_cfg *cfg, char *buf, size_t n)
{
    if (cfg->kernel < 0 || cfg->sm < 80) {
        snprintf(buf, n, "no GEMM");
    } else if (cfg->min_m > 0) {
        snprintf(buf, n, "GEMM (%s) from m = %d", use_sm90(cfg) ? "wgmma" : "mma.sync", cfg->min_m);
    } else if (use_sm90(cfg)) {
        snprintf(buf, n, "GEMM (wgmma) from m = %d, %d wide or mixed, %d large, experts %d; "
                 "K not a multiple of 256 on mma.sync from %d, q8_0 %d, heads %d",
                 kDenseMinM, kWideMinM, kLargeMinM, kExpertsMinM, kMmaMinM, kMmaQ8MinM, kWideMinM);
    } else {
        snprintf(buf, n, "GEMM (mma.sync) from m = %d, q8_0 %d, heads %d", kMmaMinM, kMmaQ8MinM,
                 kWideMinM);
    }
}

static bool gemm_wanted(const kq_cuda_gemm_cfg *cfg, int type, bool tma, bool experts, int64_t m,
                        int64_t rows, int64_t cols, bool mixed)
{
    if (!cfg || cfg->kernel < 0 || !cfg->scratch) return false;
    int min_m = cfg->min_m > 0 ? cfg->min_m
                               : crossover(type, use_sm90(cfg) && tma, experts, rows, cols, mixed);
    return m >= min_m;
}

extern "C" int kq__cuda_gemm_dense(kq_cuda_dense_args *a, cudaStream_t s, cudaError_t *err)
{
    const kq_cuda_gemm_cfg *cfg = a->gcfg;
    if (!a->gemm || !a->host_parts || a->n_parts > kGemmSrcs) return 0;
    if (a->m <= 0 || !cfg || cfg->kernel < 0) return 0;
    if ((reinterpret_cast<uintptr_t>(a->x) & 15) || a->n_cols % 32) return 0;
    bool tma = true, mixed = false;
    for (int i = 0; i < a->n_parts; i++) {
        if (!a->gemm[i].ok) return 0;
        tma = tma && !a->gemm[i].no_map;
        mixed = mixed || a->host_parts[i].type != a->host_parts[0].type;
    }
    if (!gemm_wanted(cfg, a->host_parts[0].type, tma, false, a->m, a->n_rows, a->n_cols, mixed))
        return 0;
    const bool sm90 = use_sm90(cfg) && tma;
    const int H = sm90 ? kHalf90 : kHalf80;
    GemmParams p;
    memset(&p, 0, sizeof p);
    const int64_t N = a->n_rows, K = a->n_cols;
    if (a->swiglu) {
        const kq_cuda_part &q0 = a->host_parts[0];
        if (a->n_parts == 1) {
            p.src[0] = make_src(a->gemm[0], q0.data, q0.type, 0, N / 2, q0.row_size, 0, 0, H);
            p.src[1] = make_src(a->gemm[0], q0.data, q0.type, N / 2, N / 2, q0.row_size, 0, 0, H);
            memcpy(&p.w[0], a->gemm[0].map, sizeof p.w[0]);
            memcpy(&p.w[1], a->gemm[0].map, sizeof p.w[1]);
        } else if (a->n_parts == 2 && q0.row_end - q0.row_begin == N / 2) {
            const kq_cuda_part &q1 = a->host_parts[1];
            p.src[0] = make_src(a->gemm[0], q0.data, q0.type, 0, N / 2, q0.row_size, 0, 0, H);
            p.src[1] = make_src(a->gemm[1], q1.data, q1.type, 0, N / 2, q1.row_size, 0, 0, H);
            memcpy(&p.w[0], a->gemm[0].map, sizeof p.w[0]);
            memcpy(&p.w[1], a->gemm[1].map, sizeof p.w[1]);
        } else {
            return 0;
        }
        p.n_src = 2;
        p.swiglu = 1;
        p.act = a->act;
        p.ldy = N / 2;
    } else {
        int first = 0;
        for (int i = 0; i < a->n_parts; i++) {
            const kq_cuda_part &q = a->host_parts[i];
            p.src[i] = make_src(a->gemm[i], q.data, q.type, 0, q.row_end - q.row_begin,
                                q.row_size, 0, q.row_begin, H);
            p.src[i].first_half = first;
            first += p.src[i].halves;
            memcpy(&p.w[i], a->gemm[i].map, sizeof p.w[i]);
        }
        p.n_src = a->n_parts;
        p.total_halves = first;
        p.ldy = N;
    }
    Scratch sc;
    if (!scratch_layout(cfg->scratch, K, 0, sc)) return 0;
    const int bn = sm90 && a->m >= 96 ? 128 : 64;
    if (!attach_x(p, sc, K, bn, sm90)) return 0;
    const unsigned gx = row_blocks(p);
    cudaError_t e = cudaSuccess;
    int64_t chunk = sc.rows / bn * bn;
    for (int64_t m0 = 0; m0 < a->m && e == cudaSuccess; m0 += chunk) {
        int64_t mc = a->m - m0 < chunk ? a->m - m0 : chunk;
        convert_x<<<(unsigned)((mc + 7) / 8), 256, 0, s>>>(a->x, K, 0, 1, m0, nullptr, nullptr, mc,
                                                           K, sc.xh, sc.x_inv);
        if ((e = cudaGetLastError()) != cudaSuccess) break;
        p.m = mc;
        p.y = a->y + m0 * p.ldy;
        unsigned gy = (unsigned)((mc + bn - 1) / bn);
        // Fewer blocks than SMs: two blocks per tile, each half of K,
        // adding into a zeroed y (Hopper kernel, plain outputs only).
        p.split = sm90 && !p.swiglu && (int64_t)gx * gy < cfg->n_sm && p.groups >= 8 &&
                          !host_memory(p.y) ? 2 : 1;
        if (p.split > 1 &&
            (e = cudaMemsetAsync(p.y, 0, (size_t)(mc * p.ldy) * sizeof(float), s)) != cudaSuccess)
            break;
        e = launch(p, sm90, bn, dim3(gx, gy, (unsigned)p.split), s, &a->kernel);
    }
    *err = e;
    return 1;
}

extern "C" int kq__cuda_gemm_experts(kq_cuda_experts_args *a, cudaStream_t s,
                                     cudaError_t *err)
{
    const kq_cuda_gemm_cfg *cfg = a->gcfg;
    if (!a->gw || !a->gw->ok || (a->swiglu && (!a->gup || !a->gup->ok))) return 0;
    int64_t pairs = a->m * a->top_k;
    bool tma = !a->gw->no_map && !(a->swiglu && a->gup->no_map);
    if (!gemm_wanted(cfg, a->w.type, tma, true, a->m, a->n_rows, a->n_cols, false)) return 0;
    if ((reinterpret_cast<uintptr_t>(a->x) & 15) || a->n_cols % 4 || a->token_stride % 4 ||
        a->slot_stride % 4)
        return 0;
    const bool sm90 = use_sm90(cfg) && tma;
    const int H = sm90 ? kHalf90 : kHalf80;
    Scratch sc;
    if (!scratch_layout(cfg->scratch, a->n_cols, a->n_experts, sc)) return 0;
    GemmParams p;
    memset(&p, 0, sizeof p);
    p.src[0] = make_src(*a->gw, a->w.data, a->w.type, 0, a->n_rows, a->w.row_size,
                        a->w.expert_bytes, 0, H);
    memcpy(&p.w[0], a->gw->map, sizeof p.w[0]);
    p.n_src = 1;
    if (a->swiglu) {
        p.src[1] = make_src(*a->gup, a->up.data, a->up.type, 0, a->n_rows, a->up.row_size,
                            a->up.expert_bytes, 0, H);
        memcpy(&p.w[1], a->gup->map, sizeof p.w[1]);
        p.n_src = 2;
        p.swiglu = 1;
        p.act = KQ_GLU_SILU; /* kq_experts_forward_swiglu */
    } else {
        p.total_halves = p.src[0].halves;
    }
    const int64_t K = a->n_cols;
    // Tokens per touched expert decide the tile width.
    int64_t touched = pairs < a->n_experts ? pairs : a->n_experts;
    const int bn = sm90 && pairs / (touched ? touched : 1) >= 96 ? 128 : 64;
    if (!attach_x(p, sc, K, bn, sm90)) return 0;
    p.split = 1;
    p.experts = 1;
    p.y = a->y;
    p.ldy = a->n_rows;
    p.tiles = sc.b.tiles;
    p.n_tiles = sc.b.n_tiles;
    p.pair_of = sc.b.pair_of;
    const unsigned gx = row_blocks(p);
    cudaError_t e = cudaSuccess;
    const int n_exp = (int)a->n_experts;
    for (int64_t p0 = 0; p0 < pairs && e == cudaSuccess; p0 += sc.rows) {
        int64_t np = pairs - p0 < sc.rows ? pairs - p0 : sc.rows;
        unsigned pb = (unsigned)((np + 255) / 256);
        if ((e = cudaMemsetAsync(sc.b.counts, 0, (size_t)n_exp * 4, s)) != cudaSuccess) break;
        count_ids<<<pb, 256, 0, s>>>(a->ids, p0, np, a->n_experts, a->top_k, a->n_rows, a->y,
                                     a->err, sc.b.counts);
        scan_tiles<<<1, 1024, 0, s>>>(n_exp, bn, sc.b);
        scatter_pairs<<<pb, 256, 0, s>>>(a->ids, p0, np, a->n_experts, sc.b.cursor, sc.b.pair_of);
        convert_x<<<(unsigned)((np + 7) / 8), 256, 0, s>>>(a->x, a->token_stride, a->slot_stride,
                                                           a->top_k, 0, sc.b.pair_of,
                                                           sc.b.offs + n_exp, np, K, sc.xh,
                                                           sc.x_inv);
        if ((e = cudaGetLastError()) != cudaSuccess) break;
        int64_t tiles = (np + bn - 1) / bn + (np < a->n_experts ? np : a->n_experts);
        e = launch(p, sm90, bn, dim3(gx, (unsigned)tiles), s, &a->kernel);
    }
    *err = e;
    return 1;
}
