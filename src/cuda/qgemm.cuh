// What the prefill GEMM kernels (qgemm_sm90.cu, qgemm_sm80.cu) share with
// their launcher (qgemm.cu): the launch's parameters and the mapping of
// thread blocks to weight rows and tokens.
//
// Output y[token, col] = sum_k x[token, k] w[col, k]: the weight rows are
// the MMA's M side, tokens its N side. x arrives as fp16 rows in the
// backend's GEMM scratch (qgemm.cu converts them, scaled per row by a power
// of two so that the largest is near 2^13; x_inv undoes it), one row per
// token (dense) or per expert pair in expert order (experts).
//
// A block covers two "halves" of H weight rows. Plain: halves 2b and 2b + 1
// of the list of all sources' halves (a source is one fused part, or the
// expert stack), so a half never straddles parts. SwiGLU: half b of source
// 0 (gate) and of source 1 (up), for the same output columns.
#ifndef KQ_CUDA_QGEMM_CUH
#define KQ_CUDA_QGEMM_CUH

#include <cstdint>
#include <cuda.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace kqc {

constexpr int kGemmSrcs = 4;

struct GemmSrc {
    int type;             // ggml type id
    int pitch;            // bytes of a group's shared row (Group<T>::kPitch)
    int gbytes;           // bytes of a group in memory (Group<T>::kBytes)
    float wf, inv_wf;     // weight factor (power of two) and its inverse
    int64_t row_off;      // first row within the map (a view of a part)
    int64_t rows;         // rows of this source
    int64_t row_size, expert_bytes;  // bytes (the mma.sync kernel's direct loads)
    const uint8_t *data;  // device address of row 0 of expert 0 (direct loads)
    int64_t out_col;      // output column of row 0
    int halves;           // ceil(rows / H)
    int first_half;       // halves of the sources before it (plain)
};

struct GemmParams {
    CUtensorMap x;                  // fp16 [rows][K], box {64, BN}, 128-byte swizzle
    CUtensorMap w[kGemmSrcs];       // per source (sm90)
    GemmSrc src[kGemmSrcs];
    int n_src, swiglu, experts, total_halves;
    int act;                        // swiglu: the gate's kq_glu
    int split;                      // sm90: blocks per tile along K (1 or 2, plain only)
    int64_t K;
    int groups;                     // ceil(K / 256)
    int64_t m;                      // dense: x rows of this launch
    const __half *xh;               // the fp16 rows (direct loads, sm80)
    int64_t x_rows;                 // rows the scratch holds
    const float *x_inv;             // per x row
    float *y;                       // dense: row 0 of this launch
    int64_t ldy;
    const int4 *tiles;              // experts: {expert, first row, rows, 0}
    const int *n_tiles;
    const int *pair_of;             // experts: x row -> pair
};

struct HalfTile {
    int src;
    int64_t row0;   // within the source
    bool live;
};

__device__ __forceinline__ HalfTile half_tile(const GemmParams &p, int which, int H)
{
    HalfTile h{0, 0, false};
    if (p.swiglu) {
        h.src = which;
        h.row0 = (int64_t)blockIdx.x * H;
        h.live = (int)blockIdx.x < p.src[which].halves;
        return h;
    }
    int idx = 2 * (int)blockIdx.x + which;
    h.live = idx < p.total_halves;
    if (!h.live) idx = 2 * (int)blockIdx.x;  // a dead half mirrors its twin's source
    int s = 0;
    while (s + 1 < p.n_src && idx >= p.src[s + 1].first_half) s++;
    h.src = s;
    h.row0 = (int64_t)(idx - p.src[s].first_half) * H;
    return h;
}

struct TokTile {
    int64_t row0;   // first x row
    int count;
    int expert;
};

// The block's tokens; count = 0 when an experts launch has fewer tiles.
template <int BN> __device__ __forceinline__ TokTile tok_tile(const GemmParams &p)
{
    if (p.experts) {
        if ((int)blockIdx.y >= *p.n_tiles) return {0, 0, 0};
        int4 t = p.tiles[blockIdx.y];
        return {t.y, t.z, t.x};
    }
    int64_t r0 = (int64_t)blockIdx.y * BN;
    int64_t c = p.m - r0 < BN ? p.m - r0 : BN;
    return {r0, (int)c, 0};
}

// Where token n of the tile writes (row of y).
__device__ __forceinline__ float *out_row(const GemmParams &p, int64_t xrow)
{
    int64_t r = p.experts ? (int64_t)p.pair_of[xrow] : xrow;
    return p.y + r * p.ldy;
}

// Launchers (one per kernel family); bn is 64 or 128.
// *name: the kernel that ran (KQ_PROFILE).
cudaError_t gemm_sm90_launch(const GemmParams &p, int bn, dim3 grid, cudaStream_t s,
                             const char **name);
cudaError_t gemm_sm90_init(void);
// The wgmma kernel runs on this card (sm: 10 * major + minor).
bool gemm_sm90_built(int sm);
cudaError_t gemm_sm80_launch(const GemmParams &p, int bn, dim3 grid, cudaStream_t s);
cudaError_t gemm_sm80_init(void);

// Rows of H per half for each family.
constexpr int kHalf90 = 128, kHalf80 = 64;

}  // namespace kqc

#endif
