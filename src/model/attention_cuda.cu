/* Attention on the device (ops_cuda.h: kq__cu_attention): softmax(q k^T *
 * scale) v over each query's keys (causal, and inside the sliding window on
 * Gemma 3's local layers), read from the float KV cache at (seq, layer,
 * position). Three kernels; kq__cu_attention picks one per call:
 *
 * - attention_tile_k, for batches of 16 tokens or more with head_dim 64, 128
 *   or 256 (prompts): a block owns 16 query rows, the query heads of one KV
 *   head for a few consecutive tokens, so each key and value row it stages
 *   in shared memory serves 16 rows, where the warp kernel read it from L2
 *   once per query row (1 GB a layer for a 512-token Gemma 3 270M prompt).
 *   Chunks of 32 keys come in by cp.async; in the score step a lane owns a
 *   key and its warp's 8 query rows (the key row is read as 16-byte units,
 *   swizzled by key so that 8 lanes hit 8 bank groups; the query values are
 *   broadcast), so no shuffles are needed there; the weights go through
 *   shared memory to the value step, where a lane owns head dimensions.
 *   Tiles run longest first (the last tokens of a causal prompt see the
 *   most keys). Rows of different sequences in one tile (batches of
 *   several prompts) are served in turn, a pass per sequence.
 *   Measured (H100, Gemma 3 270M stand-in, 512-token prompt, KQ_PROFILE,
 *   the q/k norm + RoPE kernel and a ~20 us synchronized floor included):
 *   197-200 us a layer, against 490 for the warp kernel; pp512 66,166
 *   tokens/s against 37,820 in the same run. Each warp still walks its
 *   rows' keys alone, so the last tile of a causal prompt (512 keys) bounds
 *   the layer; splitting long key ranges over warps is the next step.
 * - attention_split_k, for decode steps (fewer than 16 tokens) with those
 *   head sizes, where the caller passes scratch: a token's keys cut into
 *   splits over many blocks, merged by the last block (described below).
 * - attention_warp_k, for the other head sizes (and without scratch): a
 *   warp per (query, key range), described below.
 */
#include <cuda_runtime.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/pdl.cuh"
#include "cuda/persistent.cuh"
#include "ops_cuda.h"

/* The first key a query at position p sees: 0, or the start of its sliding
 * window on a local layer. Both kernels mask by it. */
__device__ static inline int64_t window_lo(const kq_cu_arch &a, int swa, int64_t p)
{
    return swa && a.n_swa > 0 && p - a.n_swa + 1 > 0 ? p - a.n_swa + 1 : 0;
}

/* Attention with a warp per (query, key range), head_dim up to AW_MAXD. A block is 8 warps over Q = 8 /
 * G consecutive query rows of one head; the G warps of a query take
 * alternate chunks of 32 keys and merge their softmax states at the end.
 * Decode (n <= 8) uses G = 8, so one token's keys spread over a whole
 * block; a prompt uses G = 2, and the 4 queries of a block, neighbours in
 * one sequence, read the same key and value rows, which the block's L1
 * then serves: the block-per-(token, head) kernel before it read every row
 * once per query from L2, and a 512-token prompt of Gemma 3 270M spent 570
 * us a layer there (H100).
 *
 * In a chunk each lane holds the partial dot products of its DPL head
 * dimensions with all 32 keys (coalesced loads: a key row is read across
 * the lanes), a transposing butterfly (31 shuffles) leaves key l's score in
 * lane l, the warp folds the chunk into its running max and sum, and each
 * lane adds the 32 weighted value rows into its DPL dimensions.
 *
 * Measured (H100, Gemma 3 270M stand-in, KQ_PROFILE, q/k norm + RoPE kernel
 * included): ~16 us of work a decode step; a 512-token prompt took 490 us a
 * layer here (L2-bound: the warps of a block drift apart, so each query
 * reads its key rows from L2 again), which is why prompts now take the tile
 * kernel. ptxas (sm_90a) gives DPL = 8 232 registers a thread, so one
 * 256-thread block fits an SM; DPL = 32 (heads over 512) spills 268 bytes. */
#define AW_WARPS 8
#define AW_MAXD 1024 /* DPL = 32 */

template <int DPL>
__global__ static void __launch_bounds__(AW_WARPS * 32)
attention_warp_k(kq_cu_arch a, int layer, int swa, const float *qkv, const int32_t *pos,
                 const int32_t *seq, const float *kc, const float *vc, float *out, int64_t n,
                 int G)
{
    kqc::pdl_start();
    __shared__ float part_acc[AW_WARPS][DPL * 32];
    __shared__ float part_m[AW_WARPS], part_l[AW_WARPS];
    const unsigned full = 0xffffffffu;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int Q = AW_WARPS / G, qslot = warp % Q, grp = warp / Q;
    const int64_t i = (int64_t)blockIdx.x * Q + qslot;
    const int h = blockIdx.y, hd = a.head_dim;
    const int64_t q_dim = (int64_t)a.n_head * hd, kv_dim = (int64_t)a.n_head_kv * hd;
    float run_max = -INFINITY, run_sum = 0.0f, acc[DPL];
#pragma unroll
    for (int e = 0; e < DPL; e++) acc[e] = 0.0f;
    if (i < n) {
        const int g = h / (a.n_head / a.n_head_kv);
        const int64_t p = pos[i], s = seq ? seq[i] : 0;
        const float *K = kc + (s * a.n_layer + layer) * a.n_ctx * kv_dim + (int64_t)g * hd;
        const float *V = vc + (s * a.n_layer + layer) * a.n_ctx * kv_dim + (int64_t)g * hd;
        float qd[DPL];
#pragma unroll
        for (int e = 0; e < DPL; e++) {
            const int d = lane + 32 * e;
            qd[e] = d < hd ? qkv[i * (q_dim + 2 * kv_dim) + (int64_t)h * hd + d] : 0.0f;
        }
        const int64_t lo = window_lo(a, swa, p);
        for (int64_t j0 = lo + 32 * (int64_t)grp; j0 <= p; j0 += 32 * (int64_t)G) {
            const int nk = p + 1 - j0 < 32 ? (int)(p + 1 - j0) : 32;
            float dot[32];
#pragma unroll
            for (int k = 0; k < 32; k++) {
                float v = 0.0f;
                if (k < nk) {
                    const float *kr = K + (j0 + k) * kv_dim + lane;
#pragma unroll
                    for (int e = 0; e < DPL; e++)
                        if (lane + 32 * e < hd) v += qd[e] * __ldg(kr + 32 * e);
                }
                dot[k] = v;
            }
            /* after the step of width w, a lane holds w sums: those of the
             * keys whose bits above w match its own lane bits */
#pragma unroll
            for (int w = 16; w >= 1; w >>= 1) {
                const bool upper = (lane & w) != 0;
#pragma unroll
                for (int k = 0; k < w; k++) {
                    float send = upper ? dot[k] : dot[k + w];
                    float keep = upper ? dot[k + w] : dot[k];
                    dot[k] = keep + __shfl_xor_sync(full, send, w);
                }
            }
            const float sc = lane < nk ? dot[0] * a.attn_scale : -INFINITY;
            float cmax = sc;
            for (int o = 16; o > 0; o >>= 1) cmax = fmaxf(cmax, __shfl_xor_sync(full, cmax, o));
            const float new_max = fmaxf(run_max, cmax); /* finite: key j0 is in range */
            const float r = expf(run_max - new_max);
            const float ex = lane < nk ? expf(sc - new_max) : 0.0f;
            float sum = ex;
            for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(full, sum, o);
            run_sum = run_sum * r + sum;
            run_max = new_max;
#pragma unroll
            for (int e = 0; e < DPL; e++) acc[e] *= r;
#pragma unroll
            for (int k = 0; k < 32; k++) {
                const float wk = __shfl_sync(full, ex, k);
                if (k < nk) {
                    const float *vr = V + (j0 + k) * kv_dim + lane;
#pragma unroll
                    for (int e = 0; e < DPL; e++)
                        if (lane + 32 * e < hd) acc[e] += wk * __ldg(vr + 32 * e);
                }
            }
        }
    }
    float *o = out + i * q_dim + (int64_t)h * hd;
    if (G == 1) {
        if (i < n)
#pragma unroll
            for (int e = 0; e < DPL; e++)
                if (lane + 32 * e < hd) o[lane + 32 * e] = acc[e] / run_sum;
        return;
    }
    if (lane == 0) part_m[warp] = run_max, part_l[warp] = run_sum;
#pragma unroll
    for (int e = 0; e < DPL; e++) part_acc[warp][lane + 32 * e] = acc[e];
    __syncthreads();
    if (grp != 0 || i >= n) return;
    float M = -INFINITY;
    for (int t = 0; t < G; t++) M = fmaxf(M, part_m[qslot + t * Q]);
    float L = 0.0f, f[AW_WARPS];
    for (int t = 0; t < G; t++) {
        /* a warp with no chunk has max -inf and sum 0: weight 0 */
        f[t] = part_l[qslot + t * Q] > 0.0f ? expf(part_m[qslot + t * Q] - M) : 0.0f;
        L += part_l[qslot + t * Q] * f[t];
    }
#pragma unroll
    for (int e = 0; e < DPL; e++) {
        const int d = lane + 32 * e;
        if (d >= hd) continue;
        float v = 0.0f;
        for (int t = 0; t < G; t++) v += part_acc[qslot + t * Q][d] * f[t];
        o[d] = v / L;
    }
}

template <int DPL>
static int attention_warp(cudaStream_t s, const kq_cu_arch *a, int layer, int swa, const float *qkv,
                          const int32_t *pos, const int32_t *seq, int64_t n, const float *kc,
                          const float *vc, float *out)
{
    const int G = n <= AW_WARPS ? AW_WARPS : 2, Q = AW_WARPS / G;
    dim3 grid((unsigned)((n + Q - 1) / Q), (unsigned)a->n_head);
    return (int)kqc::launch_pdl(attention_warp_k<DPL>, grid, AW_WARPS * 32, 0, s, *a, layer, swa,
                                qkv, pos, seq, kc, vc, out, n, G);
}


/* ------------------------------------------------------------ tile kernel */

#define AT_KEYS 32 /* keys a chunk: a lane each in the score step */
#define AT_RPW 8   /* query rows a warp owns */
#define AT_WARPS 2 /* 16 rows a block: 128 blocks for a 512-token Gemma prompt */
#define AT_ROWS (AT_WARPS * AT_RPW)

__device__ static inline void at_copy16(float *dst, const float *src, int bytes)
{
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(bytes)
                 : "memory");
}

__device__ static inline void at_copy_wait(void)
{
    asm volatile("cp.async.commit_group;\n\tcp.async.wait_group 0;" ::: "memory");
}

/* Shared memory of a block: K and V chunks, the block's query rows and each
 * warp's weights of the chunk. */
template <int HD> struct AtSmem {
    static constexpr size_t floats = 2 * AT_KEYS * HD + AT_ROWS * HD + AT_WARPS * AT_KEYS * AT_RPW;
    static constexpr size_t bytes = floats * sizeof(float);
};

/* grid: x = tiles of tpb tokens (longest first), y = KV head * nsub + head
 * subset; a row r of the block is token r / hpb of the tile and query head
 * (subset * hpb + r % hpb) of the KV head's group. */
template <int DPL>
__global__ static void __launch_bounds__(AT_WARPS * 32)
attention_tile_k(kq_cu_arch a, int layer, int swa, const float *qkv, const int32_t *pos,
                 const int32_t *seq, const float *kc, const float *vc, float *out, int64_t n,
                 int hpb, int tpb, int nsub)
{
    kqc::pdl_start();
    constexpr int HD = 32 * DPL, U = HD / 4; /* 16-byte units a row */
    extern __shared__ __align__(16) float at_sm[];
    float *Ks = at_sm, *Vs = Ks + AT_KEYS * HD, *Qs = Vs + AT_KEYS * HD;
    float *Ps = Qs + AT_ROWS * HD;
    __shared__ int64_t r_tok[AT_ROWS];
    __shared__ int r_head[AT_ROWS], r_seq[AT_ROWS], r_lo[AT_ROWS], r_hi[AT_ROWS], r_pass[AT_ROWS];
    __shared__ int pass_seq, pass_lo, pass_hi;
    const unsigned full = 0xffffffffu;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int G = a.n_head / a.n_head_kv, g = blockIdx.y / nsub, sub = blockIdx.y % nsub;
    const int64_t tile = (int64_t)gridDim.x - 1 - blockIdx.x;
    const int64_t q_dim = (int64_t)a.n_head * HD, kv_dim = (int64_t)a.n_head_kv * HD;
    const int64_t row_stride = q_dim + 2 * kv_dim;

    for (int r = tid; r < AT_ROWS; r += blockDim.x) {
        const int t = r / hpb, hj = sub * hpb + r % hpb;
        const int64_t i = tile * tpb + t;
        const bool ok = t < tpb && hj < G && i < n;
        r_tok[r] = ok ? i : -1;
        r_head[r] = g * G + hj;
        r_pass[r] = ok ? -1 : -2; /* -1: waiting for its pass; -2: no row */
        if (ok) {
            const int p = pos[i];
            r_seq[r] = seq ? seq[i] : 0;
            r_hi[r] = p;
            r_lo[r] = (int)window_lo(a, swa, p);
        }
    }
    __syncthreads();
    for (int x = tid; x < AT_ROWS * HD; x += blockDim.x) {
        const int r = x / HD, d = x % HD;
        Qs[x] = r_tok[r] >= 0 ? qkv[r_tok[r] * row_stride + (int64_t)r_head[r] * HD + d] : 0.0f;
    }

    float acc[AT_RPW][DPL], m[AT_RPW], l[AT_RPW];
#pragma unroll
    for (int rr = 0; rr < AT_RPW; rr++) {
        m[rr] = -INFINITY;
        l[rr] = 0.0f;
#pragma unroll
        for (int e = 0; e < DPL; e++) acc[rr][e] = 0.0f;
    }
    const float *qw = Qs + warp * AT_RPW * HD;
    float *pw = Ps + warp * AT_KEYS * AT_RPW;

    for (int pass = 0;; pass++) {
        __syncthreads();
        if (tid == 0) {
            int s = -1, lo = INT_MAX, hi = -1;
            for (int r = 0; r < AT_ROWS; r++) {
                if (r_pass[r] != -1) continue;
                if (s < 0) s = r_seq[r];
                if (r_seq[r] != s) continue;
                r_pass[r] = pass;
                lo = min(lo, r_lo[r]);
                hi = max(hi, r_hi[r]);
            }
            pass_seq = s, pass_lo = lo, pass_hi = hi;
        }
        __syncthreads();
        if (pass_seq < 0) break;
        const int blo = pass_lo, bhi = pass_hi;
        bool act[AT_RPW];
        int lo_r[AT_RPW], hi_r[AT_RPW];
        bool any = false;
#pragma unroll
        for (int rr = 0; rr < AT_RPW; rr++) {
            const int r = warp * AT_RPW + rr;
            act[rr] = r_pass[r] == pass;
            lo_r[rr] = act[rr] ? r_lo[r] : 0;
            hi_r[rr] = act[rr] ? r_hi[r] : -1;
            any |= act[rr];
        }
        const int64_t base = ((int64_t)pass_seq * a.n_layer + layer) * a.n_ctx * kv_dim + (int64_t)g * HD;
        const float *K = kc + base, *V = vc + base;
        for (int j0 = blo; j0 <= bhi; j0 += AT_KEYS) {
            const int nk = min(AT_KEYS, bhi + 1 - j0);
            /* rows past the range are zero-filled (no bytes read) */
            for (int x = tid; x < AT_KEYS * U; x += blockDim.x) {
                const int k = x / U, u = x % U, bytes = k < nk ? 16 : 0;
                const int64_t off = (int64_t)(j0 + (k < nk ? k : 0)) * kv_dim + 4 * u;
                at_copy16(Ks + k * HD + 4 * (u ^ (k & 7)), K + off, bytes);
                at_copy16(Vs + k * HD + 4 * u, V + off, bytes);
            }
            at_copy_wait();
            __syncthreads();
            if (any) {
                float sc[AT_RPW];
#pragma unroll
                for (int rr = 0; rr < AT_RPW; rr++) sc[rr] = 0.0f;
                const float *kr = Ks + lane * HD;
                const int sw = lane & 7;
#pragma unroll 4
                for (int u = 0; u < U; u++) {
                    const float4 k4 = *(const float4 *)(kr + 4 * (u ^ sw));
#pragma unroll
                    for (int rr = 0; rr < AT_RPW; rr++) {
                        const float4 q4 = *(const float4 *)(qw + rr * HD + 4 * u);
                        sc[rr] = fmaf(q4.x, k4.x, sc[rr]);
                        sc[rr] = fmaf(q4.y, k4.y, sc[rr]);
                        sc[rr] = fmaf(q4.z, k4.z, sc[rr]);
                        sc[rr] = fmaf(q4.w, k4.w, sc[rr]);
                    }
                }
                const int j = j0 + lane;
                float ex[AT_RPW];
#pragma unroll
                for (int rr = 0; rr < AT_RPW; rr++) {
                    const bool in = act[rr] && lane < nk && j >= lo_r[rr] && j <= hi_r[rr];
                    const float s = in ? sc[rr] * a.attn_scale : -INFINITY;
                    float cmax = s;
                    for (int o = 16; o > 0; o >>= 1) cmax = fmaxf(cmax, __shfl_xor_sync(full, cmax, o));
                    const float nm = fmaxf(m[rr], cmax);
                    float fac = 1.0f;
                    ex[rr] = 0.0f;
                    /* a row with no key yet in range keeps max -inf, sum 0 */
                    if (nm != -INFINITY) {
                        fac = expf(m[rr] - nm);
                        ex[rr] = expf(s - nm);
                    }
                    float sum = ex[rr];
                    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(full, sum, o);
                    l[rr] = l[rr] * fac + sum;
                    m[rr] = nm;
#pragma unroll
                    for (int e = 0; e < DPL; e++) acc[rr][e] *= fac;
                }
                *(float4 *)(pw + lane * AT_RPW) = make_float4(ex[0], ex[1], ex[2], ex[3]);
                *(float4 *)(pw + lane * AT_RPW + 4) = make_float4(ex[4], ex[5], ex[6], ex[7]);
                __syncwarp();
                for (int k = 0; k < nk; k++) {
                    const float4 pa = *(const float4 *)(pw + k * AT_RPW);
                    const float4 pb = *(const float4 *)(pw + k * AT_RPW + 4);
                    const float p[AT_RPW] = {pa.x, pa.y, pa.z, pa.w, pb.x, pb.y, pb.z, pb.w};
#pragma unroll
                    for (int e = 0; e < DPL; e++) {
                        const float v = Vs[k * HD + lane + 32 * e];
#pragma unroll
                        for (int rr = 0; rr < AT_RPW; rr++) acc[rr][e] = fmaf(p[rr], v, acc[rr][e]);
                    }
                }
            }
            __syncthreads(); /* the next chunk overwrites K, V and the weights */
        }
    }
#pragma unroll
    for (int rr = 0; rr < AT_RPW; rr++) {
        const int r = warp * AT_RPW + rr;
        if (r_tok[r] < 0) continue;
        float *o = out + r_tok[r] * q_dim + (int64_t)r_head[r] * HD;
        const float inv = 1.0f / l[rr];
#pragma unroll
        for (int e = 0; e < DPL; e++) o[lane + 32 * e] = acc[rr][e] * inv;
    }
}

template <int DPL>
static int attention_tile(cudaStream_t s, const kq_cu_arch *a, int layer, int swa, const float *qkv,
                          const int32_t *pos, const int32_t *seq, int64_t n, const float *kc,
                          const float *vc, float *out)
{
    constexpr size_t bytes = AtSmem<32 * DPL>::bytes;
    /* once per kernel (thread-safe static); not a stream operation, so a
     * graph capture in progress is not disturbed */
    static const cudaError_t attr = cudaFuncSetAttribute(
        attention_tile_k<DPL>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (attr != cudaSuccess) return (int)attr;
    const int G = a->n_head / a->n_head_kv;
    const int hpb = G < AT_ROWS ? G : AT_ROWS, tpb = AT_ROWS / hpb, nsub = (G + hpb - 1) / hpb;
    const int64_t tiles = (n + tpb - 1) / tpb, ys = (int64_t)a->n_head_kv * nsub;
    if (tiles > INT_MAX || ys > 65535) return (int)cudaErrorInvalidValue;
    dim3 grid((unsigned)tiles, (unsigned)ys);
    return (int)kqc::launch_pdl(attention_tile_k<DPL>, grid, AT_WARPS * 32, bytes, s, *a, layer,
                                swa, qkv, pos, seq, kc, vc, out, n, hpb, tpb, nsub);
}

/* ----------------------------------------------------------- split kernel */

/* attention_split_k, for decode steps (under AT_MIN_TOKENS tokens) with
 * head_dim 64, 128 or 256: a block per (token, KV head and up to AS_RB of
 * its query heads, key split). A decode query has few keys (a few hundred
 * rows of K and V), so the time is the latency of reading them; the warp
 * kernel gave one token's head a single block (grid 1 x 4 for Gemma 3 270M:
 * 27.8 us under ncu, the largest kernel of its layer). Here the key range
 * [window start, pos] is cut into up to S splits of whole 32-key chunks,
 * so S blocks on S SMs read it at once, and each block serves all the
 * query heads of its KV head from one copy of the chunk in shared memory.
 * A block stages a chunk's K and V rows by cp.async (16 loads in flight a
 * thread at head_dim 256), computes the R x 32 scores (a warp per query
 * head, a lane per key: rows padded by 4 floats, so the 8 lanes of a
 * 16-byte phase hit distinct banks), folds them into each head's running
 * max and sum, and adds the weighted value rows (a thread per dimension).
 * Splits write their unnormalised sums and (max, sum) to scratch; the last
 * block of a (token, head group) to finish, counted by a ticket, merges
 * them in split order (the same result every run) and resets the ticket.
 * S is fixed per call shape (graph replay keeps the grid), and the span of
 * a split is worked out on the device from the token's position, so a
 * block whose split lies past the present keys leaves at once.
 * Measured (H100, Gemma 3 270M stand-in, working tree of e7dc355): ncu
 * (clocks locked, caches flushed) 9.5-10.5 us a decode layer against 27.8
 * for the warp kernel; decode 1,010 tokens/s against 712 with the warp
 * kernel, both without PDL, in one run. */
#define AS_KEYS 32
#define AS_THREADS 256
#define AS_RB 8 /* query heads a block: a warp each in the score step */
#define AS_SPLITS 16 /* most splits of a key range: the merge reads this many partials */

template <int HD> struct AsSmem {
    static constexpr int pad = HD + 4;
    static constexpr size_t floats = 2 * AS_KEYS * pad + AS_RB * HD + AS_RB * AS_KEYS + 2 * AS_RB;
    static constexpr size_t bytes = floats * sizeof(float);
};

template <int HD>
__global__ static void __launch_bounds__(AS_THREADS)
attention_split_k(kq_cu_arch a, int layer, int swa, const float *qkv, const int32_t *pos,
                  const int32_t *seq, const float *kc, const float *vc, float *out, int nsub, int S,
                  float *part, int32_t *ticket)
{
    kqc::pdl_start();
    constexpr int P = AsSmem<HD>::pad, U = HD / 4;
    constexpr int TPD = AS_THREADS / HD; /* threads a dimension: they split the heads */
    constexpr int RPT = AS_RB / TPD;     /* heads a thread in the value step */
    static_assert(AS_THREADS % HD == 0 && AS_RB % TPD == 0, "block shape");
    extern __shared__ __align__(16) float as_sm[];
    float *Ks = as_sm, *Vs = Ks + AS_KEYS * P, *Qs = Vs + AS_KEYS * P, *Ws = Qs + AS_RB * HD;
    float *Fs = Ws + AS_RB * AS_KEYS, *Ls = Fs + AS_RB; /* chunk factors; then the final sums */
    __shared__ int s_last;
    const unsigned full = 0xffffffffu;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int64_t i = blockIdx.x;
    const int G = a.n_head / a.n_head_kv, g = blockIdx.y / nsub, h0 = (blockIdx.y % nsub) * AS_RB;
    const int R = G - h0 < AS_RB ? G - h0 : AS_RB, split = blockIdx.z;
    const int64_t q_dim = (int64_t)a.n_head * HD, kv_dim = (int64_t)a.n_head_kv * HD;
    const int64_t p = pos[i], lo = window_lo(a, swa, p);
    const int64_t chunks = (p - lo + AS_KEYS) / AS_KEYS; /* p >= lo: at least one key */
    const int64_t per = (chunks + S - 1) / S;            /* chunks a split */
    const int nact = (int)((chunks + per - 1) / per);
    if (split >= nact) return;
    const int64_t k_begin = lo + (int64_t)split * per * AS_KEYS;
    const int64_t k_end = k_begin + per * AS_KEYS < p + 1 ? k_begin + per * AS_KEYS : p + 1;
    const int64_t sq = seq ? seq[i] : 0;
    const int64_t base = (sq * a.n_layer + layer) * a.n_ctx * kv_dim + (int64_t)g * HD;
    const float *K = kc + base, *V = vc + base;
    const int64_t head0 = (int64_t)g * G + h0; /* the block's first query head */

    for (int x = tid; x < AS_RB * HD; x += AS_THREADS) {
        const int r = x / HD;
        Qs[x] = r < R ? qkv[i * (q_dim + 2 * kv_dim) + (head0 + r) * HD + x % HD] : 0.0f;
    }
    const int d = tid % HD, r0 = tid / HD; /* value step: dimension d of heads r0 + TPD t */
    float acc[RPT];
#pragma unroll
    for (int t = 0; t < RPT; t++) acc[t] = 0.0f;
    float run_m = -INFINITY, run_l = 0.0f; /* warp r's head r */

    for (int64_t j0 = k_begin; j0 < k_end; j0 += AS_KEYS) {
        const int nk = k_end - j0 < AS_KEYS ? (int)(k_end - j0) : AS_KEYS;
        for (int x = tid; x < AS_KEYS * U; x += AS_THREADS) {
            const int k = x / U, u = x % U, bytes = k < nk ? 16 : 0;
            const int64_t off = (j0 + (k < nk ? k : 0)) * kv_dim + 4 * u;
            at_copy16(Ks + k * P + 4 * u, K + off, bytes);
            at_copy16(Vs + k * P + 4 * u, V + off, bytes);
        }
        at_copy_wait();
        __syncthreads();
        if (warp < R) {
            const float *qr = Qs + warp * HD, *kr = Ks + lane * P;
            float sc = 0.0f;
#pragma unroll 8
            for (int u = 0; u < U; u++) {
                const float4 k4 = *(const float4 *)(kr + 4 * u), q4 = *(const float4 *)(qr + 4 * u);
                sc = fmaf(q4.x, k4.x, sc);
                sc = fmaf(q4.y, k4.y, sc);
                sc = fmaf(q4.z, k4.z, sc);
                sc = fmaf(q4.w, k4.w, sc);
            }
            const float s = lane < nk ? sc * a.attn_scale : -INFINITY;
            float cmax = s;
            for (int o = 16; o > 0; o >>= 1) cmax = fmaxf(cmax, __shfl_xor_sync(full, cmax, o));
            const float nm = fmaxf(run_m, cmax); /* finite: key j0 is in range */
            const float fac = expf(run_m - nm), ex = lane < nk ? expf(s - nm) : 0.0f;
            float sum = ex;
            for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(full, sum, o);
            run_l = run_l * fac + sum;
            run_m = nm;
            Ws[warp * AS_KEYS + lane] = ex;
            if (lane == 0) Fs[warp] = fac;
        }
        __syncthreads();
#pragma unroll
        for (int t = 0; t < RPT; t++) {
            const int r = r0 + TPD * t;
            if (r >= R) break;
            float v = acc[t] * Fs[r];
            const float *w = Ws + r * AS_KEYS;
            for (int k = 0; k < nk; k++) v = fmaf(w[k], Vs[k * P + d], v);
            acc[t] = v;
        }
        __syncthreads(); /* the next chunk overwrites K, V and the weights */
    }
    if (warp < R && lane == 0) Fs[warp] = run_m, Ls[warp] = run_l;
    __syncthreads();
    if (nact == 1) {
#pragma unroll
        for (int t = 0; t < RPT; t++) {
            const int r = r0 + TPD * t;
            if (r < R) out[i * q_dim + (head0 + r) * HD + d] = acc[t] / Ls[r];
        }
        return;
    }
    /* partial of (token i, head, split): HD sums, then max and sum */
    const int64_t stride = HD + 2;
#pragma unroll
    for (int t = 0; t < RPT; t++) {
        const int r = r0 + TPD * t;
        if (r >= R) continue;
        float *pr = part + ((i * a.n_head + head0 + r) * AS_SPLITS + split) * stride;
        pr[d] = acc[t];
        if (d == 0) pr[HD] = Fs[r], pr[HD + 1] = Ls[r];
    }
    __threadfence();
    __syncthreads();
    int32_t *tk = ticket + i * gridDim.y + blockIdx.y;
    if (tid == 0) s_last = atomicAdd(tk, 1) == nact - 1;
    __syncthreads();
    if (!s_last) return;
    __threadfence();
#pragma unroll
    for (int t = 0; t < RPT; t++) {
        const int r = r0 + TPD * t;
        if (r >= R) continue;
        const float *pr = part + (i * a.n_head + head0 + r) * AS_SPLITS * stride;
        float M = -INFINITY;
        for (int s2 = 0; s2 < nact; s2++) M = fmaxf(M, __ldcg(pr + s2 * stride + HD));
        float L = 0.0f, v = 0.0f;
        for (int s2 = 0; s2 < nact; s2++) {
            const float f = expf(__ldcg(pr + s2 * stride + HD) - M);
            L += __ldcg(pr + s2 * stride + HD + 1) * f;
            v += __ldcg(pr + s2 * stride + d) * f;
        }
        out[i * q_dim + (head0 + r) * HD + d] = v / L;
    }
    if (tid == 0) *tk = 0; /* ready for the next launch */
}

template <int HD>
static int attention_split(cudaStream_t s, const kq_cu_arch *a, int layer, int swa, const float *qkv,
                           const int32_t *pos, const int32_t *seq, int64_t n, const float *kc,
                           const float *vc, const kq_cu_att_scratch *sc, float *out)
{
    constexpr size_t bytes = AsSmem<HD>::bytes;
    /* as attention_tile: once per kernel, not a stream operation */
    static const cudaError_t attr = cudaFuncSetAttribute(
        attention_split_k<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (attr != cudaSuccess) return (int)attr;
    kqc::DeviceInfo di;
    const cudaError_t de = kqc::device_info(di);
    if (de != cudaSuccess) return (int)de;
    const int G = a->n_head / a->n_head_kv, nsub = (G + AS_RB - 1) / AS_RB;
    const int64_t groups = n * a->n_head_kv * nsub;
    /* about two blocks an SM over the whole call */
    int64_t S = (2 * (int64_t)di.sms + groups - 1) / groups;
    S = S < 1 ? 1 : S > AS_SPLITS ? AS_SPLITS : S;
    dim3 grid((unsigned)n, (unsigned)(a->n_head_kv * nsub), (unsigned)S);
    return (int)kqc::launch_pdl(attention_split_k<HD>, grid, AS_THREADS, bytes, s, *a, layer, swa,
                                qkv, pos, seq, kc, vc, out, nsub, (int)S, sc->part, sc->ticket);
}

extern "C" int64_t kq__cu_attention_part_floats(const kq_cu_arch *a, int64_t tokens)
{
    return tokens * a->n_head * AS_SPLITS * (int64_t)(a->head_dim + 2);
}

/* Below this many tokens a call is a decode step: the warp kernel spreads
 * one query's keys over a block, where a tile would hold idle rows. */
#define AT_MIN_TOKENS (KQ_CU_SPLIT_MAX_TOKENS + 1)

/* KQ_CUDA_ATTENTION=warp keeps every call on the warp kernel (for timing
 * one against the other); read once. */
static bool kq__cu_attention_forced_warp(void)
{
    static const bool forced = [] {
        const char *e = getenv("KQ_CUDA_ATTENTION");
        return e && !strcmp(e, "warp");
    }();
    return forced;
}

extern "C" int kq__cu_attention(void *stream, const kq_cu_arch *a, int layer, int swa,
                                const float *qkv, const int32_t *pos, const int32_t *seq, int64_t n,
                                const float *k_cache, const float *v_cache,
                                const kq_cu_att_scratch *sc, float *out)
{
    if (n <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    const int hd = a->head_dim;
    const bool split_ok = n < AT_MIN_TOKENS && sc && sc->part && sc->ticket && n <= sc->tokens;
    if (split_ok && !kq__cu_attention_forced_warp()) {
        if (hd == 64) return attention_split<64>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, sc, out);
        if (hd == 128) return attention_split<128>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, sc, out);
        if (hd == 256) return attention_split<256>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, sc, out);
    }
    if (n >= AT_MIN_TOKENS && !kq__cu_attention_forced_warp()) {
        if (hd == 64) return attention_tile<2>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
        if (hd == 128) return attention_tile<4>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
        if (hd == 256) return attention_tile<8>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    }
    if (hd <= 64) return attention_warp<2>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (hd <= 128) return attention_warp<4>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (hd <= 256) return attention_warp<8>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (hd <= 512) return attention_warp<16>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (hd <= AW_MAXD)
        return attention_warp<32>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    return (int)cudaErrorInvalidValue;
}
