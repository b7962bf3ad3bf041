/* Device kernels of the model layer (ops_cuda.h): the steps ops_cpu.c and
 * attention.c take on the host, one launch each, in float, on the backend's
 * stream. Sizes were checked by the model layer before any launch. */
#include <cuda_runtime.h>
#include <math.h>

#include "ops_cuda.h"

#define BLOCK 256

static int launched(void)
{
    return (int)cudaGetLastError();
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024). */
__device__ static float block_sum(float v, float *red)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    int nw = blockDim.x / 32;
    v = lane < nw ? red[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ static void rmsnorm_k(const float *x, const float *w, float *y, int64_t n, int64_t sx,
                                 int64_t sy, float eps)
{
    __shared__ float red[32];
    const float *xr = x + blockIdx.x * sx;
    float *yr = y + blockIdx.x * sy;
    float ss = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss, red);
    float sc = rsqrtf(ss / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * sc * w[i];
}

extern "C" int kq__cu_rmsnorm(void *stream, const float *x, const float *w, float *y, int64_t rows,
                              int64_t n, int64_t sx, int64_t sy, float eps)
{
    if (rows <= 0) return 0;
    rmsnorm_k<<<(unsigned)rows, BLOCK, 0, (cudaStream_t)stream>>>(x, w, y, n, sx, sy, eps);
    return launched();
}

/* One block per row. The sums run in the same order as rmsnorm_k's, so the
 * fused step gives the numbers the three separate steps gave. */
__global__ static void residual_k(float *x, float *y, const float *post_w, const float *norm_w,
                                  float *h, int64_t n, float eps)
{
    __shared__ float red[32];
    float *xr = x + blockIdx.x * n, *yr = y + blockIdx.x * n;
    float sc = 1.0f;
    if (post_w) {
        float ss = 0;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += yr[i] * yr[i];
        sc = rsqrtf(block_sum(ss, red) / (float)n + eps);
    }
    float ss = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = post_w ? yr[i] * sc * post_w[i] : yr[i];
        float s = xr[i] + v;
        xr[i] = s;
        ss += s * s;
    }
    if (!norm_w) return;
    float sx = rsqrtf(block_sum(ss, red) / (float)n + eps);
    float *hr = h + blockIdx.x * n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) hr[i] = xr[i] * sx * norm_w[i];
}

extern "C" int kq__cu_residual(void *stream, float *x, float *y, const float *post_w,
                               const float *norm_w, float *h, int64_t rows, int64_t n, float eps)
{
    if (rows <= 0) return 0;
    residual_k<<<(unsigned)rows, BLOCK, 0, (cudaStream_t)stream>>>(x, y, post_w, norm_w, h, n, eps);
    return launched();
}

static unsigned blocks_for(int64_t n)
{
    return (unsigned)((n + BLOCK - 1) / BLOCK);
}

__global__ static void add_rows_k(float *y, const float *b, int64_t total, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) y[i] += b[i % n];
}

extern "C" int kq__cu_add_rows(void *stream, float *y, const float *bias, int64_t rows, int64_t n)
{
    if (rows * n <= 0) return 0;
    add_rows_k<<<blocks_for(rows * n), BLOCK, 0, (cudaStream_t)stream>>>(y, bias, rows * n, n);
    return launched();
}

__global__ static void gelu_mul_k(const float *gu, float *y, int64_t total, int64_t n_ff)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int64_t r = i / n_ff, c = i % n_ff;
    float x = gu[r * 2 * n_ff + c], u = gu[r * 2 * n_ff + n_ff + c];
    y[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) * u;
}

extern "C" int kq__cu_gelu_mul(void *stream, const float *gu, float *y, int64_t rows, int64_t n_ff)
{
    if (rows * n_ff <= 0) return 0;
    gelu_mul_k<<<blocks_for(rows * n_ff), BLOCK, 0, (cudaStream_t)stream>>>(gu, y, rows * n_ff, n_ff);
    return launched();
}

__global__ static void scale_k(float *x, float s, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= s;
}

extern "C" int kq__cu_scale(void *stream, float *x, float s, int64_t n)
{
    if (n <= 0) return 0;
    scale_k<<<blocks_for(n), BLOCK, 0, (cudaStream_t)stream>>>(x, s, n);
    return launched();
}

__global__ static void softcap_k(float *x, float cap, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = cap * tanhf(x[i] / cap);
}

extern "C" int kq__cu_softcap(void *stream, float *x, float cap, int64_t n)
{
    if (n <= 0) return 0;
    softcap_k<<<blocks_for(n), BLOCK, 0, (cudaStream_t)stream>>>(x, cap, n);
    return launched();
}

/* One block per (token, head): q heads first, then k heads (which also
 * copy their v head into the cache). */
__global__ static void qk_prep_k(kq_cu_arch a, int layer, int swa, float *qkv, const float *q_norm,
                                 const float *k_norm, const float *freqs, const int32_t *pos,
                                 const int32_t *seq, float *kc, float *vc)
{
    __shared__ float red[32];
    __shared__ float hv[1024];
    const int64_t i = blockIdx.x;
    const int h = blockIdx.y, hd = a.head_dim;
    const int64_t q_dim = (int64_t)a.n_head * hd, kv_dim = (int64_t)a.n_head_kv * hd;
    float *row = qkv + i * (q_dim + 2 * kv_dim);
    const int is_k = h >= a.n_head;
    float *x = is_k ? row + q_dim + (int64_t)(h - a.n_head) * hd : row + (int64_t)h * hd;
    const float *nw = is_k ? k_norm : q_norm;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) hv[d] = x[d];
    __syncthreads();
    if (nw) {
        float ss = 0;
        for (int d = threadIdx.x; d < hd; d += blockDim.x) ss += hv[d] * hv[d];
        ss = block_sum(ss, red);
        float sc = rsqrtf(ss / (float)hd + a.eps);
        __syncthreads();
        for (int d = threadIdx.x; d < hd; d += blockDim.x) hv[d] = hv[d] * sc * nw[d];
        __syncthreads();
    }
    const int half = a.n_rot / 2;
    const double base = swa ? a.rope_base_swa : a.rope_base;
    const double scale = swa ? a.rope_scale_swa : a.rope_scale;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) x[d] = hv[d];
    __syncthreads();
    for (int k = threadIdx.x; k < half; k += blockDim.x) {
        double th = scale * (double)pos[i] * pow(base, -2.0 * (double)k / (double)a.n_rot);
        if (freqs) th /= freqs[k];
        float cs = (float)cos(th), sn = (float)sin(th);
        int p0 = a.rope_neox ? k : 2 * k, p1 = a.rope_neox ? k + half : 2 * k + 1;
        float x0 = hv[p0], x1 = hv[p1];
        x[p0] = x0 * cs - x1 * sn;
        x[p1] = x0 * sn + x1 * cs;
    }
    if (!is_k) return;
    __syncthreads();
    const int64_t s = seq ? seq[i] : 0;
    const int64_t slot = ((s * a.n_layer + layer) * a.n_ctx + pos[i]) * kv_dim + (int64_t)(h - a.n_head) * hd;
    const float *v = row + q_dim + kv_dim + (int64_t)(h - a.n_head) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        kc[slot + d] = x[d];
        vc[slot + d] = v[d];
    }
}

extern "C" int kq__cu_qk_prep(void *stream, const kq_cu_arch *a, int layer, int swa, float *qkv,
                              const float *q_norm, const float *k_norm, const float *rope_freqs,
                              const int32_t *pos, const int32_t *seq, int64_t n, float *k_cache,
                              float *v_cache)
{
    if (n <= 0) return 0;
    if (a->head_dim > 1024) return (int)cudaErrorInvalidValue;
    dim3 grid((unsigned)n, (unsigned)(a->n_head + a->n_head_kv));
    qk_prep_k<<<grid, 128, 0, (cudaStream_t)stream>>>(*a, layer, swa, qkv, q_norm, k_norm,
                                                       rope_freqs, pos, seq, k_cache, v_cache);
    return launched();
}

/* Attention, one block per (token, head), over the token's keys in tiles
 * of ATT_TILE: each warp scores ATT_TILE / ATT_WARPS keys at once (lanes
 * across the head dimension, so a key's row is one coalesced read, and the
 * warp's keys are independent loads in flight together), warp 0 folds the
 * tile into the running max and sum (online softmax), then the threads add
 * the tile's weighted values, a head dimension each: with head_dim <= 128,
 * several groups of head_dim threads take alternate keys, summed at the
 * end. The first version gave each thread one key and walked the head
 * dimension with a stride of a cache row between neighbouring threads:
 * uncoalesced, and serial in the head dimension. */
#define ATT_THREADS 256
#define ATT_WARPS (ATT_THREADS / 32)
#define ATT_TILE 64
#define ATT_KPW (ATT_TILE / ATT_WARPS) /* keys per warp per tile */
#define ATT_MAXD 1024
#define ATT_DPT (ATT_MAXD / ATT_THREADS) /* head dims per thread, at most */
/* warp 0 folds a tile as two scores a lane */
static_assert(ATT_TILE == 64 && ATT_KPW <= 32, "attention_k's softmax step takes 64 keys");

__global__ static void __launch_bounds__(ATT_THREADS)
attention_k(kq_cu_arch a, int layer, int swa, const float *qkv, const int32_t *pos,
            const int32_t *seq, const float *kc, const float *vc, float *out)
{
    __shared__ float q[ATT_MAXD];
    __shared__ float part[ATT_THREADS]; /* the groups' sums, combined at the end */
    __shared__ float w[ATT_TILE];
    __shared__ float tile_scale, total;
    const int64_t i = blockIdx.x;
    const int h = blockIdx.y, hd = a.head_dim;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t q_dim = (int64_t)a.n_head * hd, kv_dim = (int64_t)a.n_head_kv * hd;
    const int g = h / (a.n_head / a.n_head_kv);
    const int64_t p = pos[i], s = seq ? seq[i] : 0;
    const float *K = kc + (s * a.n_layer + layer) * a.n_ctx * kv_dim + (int64_t)g * hd;
    const float *V = vc + (s * a.n_layer + layer) * a.n_ctx * kv_dim + (int64_t)g * hd;
    for (int d = threadIdx.x; d < hd; d += ATT_THREADS) q[d] = qkv[i * (q_dim + 2 * kv_dim) + (int64_t)h * hd + d];
    /* value threads: groups of hd threads (hd <= ATT_THREADS), else one
     * group with ATT_DPT dims a thread */
    const int groups = hd <= ATT_THREADS ? ATT_THREADS / hd : 1;
    const int grp = threadIdx.x / (hd <= ATT_THREADS ? hd : ATT_THREADS);
    const int d0 = hd <= ATT_THREADS ? threadIdx.x % hd : threadIdx.x;
    float acc[ATT_DPT];
#pragma unroll
    for (int e = 0; e < ATT_DPT; e++) acc[e] = 0.0f;
    __syncthreads();
    int64_t lo = 0;
    if (swa && a.n_swa > 0 && p - a.n_swa + 1 > 0) lo = p - a.n_swa + 1;
    float run_max = -INFINITY, run_sum = 0; /* warp 0's */
    for (int64_t j0 = lo; j0 <= p; j0 += ATT_TILE) {
        /* scores of this warp's keys */
        float dot[ATT_KPW];
#pragma unroll
        for (int k = 0; k < ATT_KPW; k++) dot[k] = 0.0f;
        const int64_t jw = j0 + warp * ATT_KPW;
#pragma unroll 4
        for (int d = lane; d < hd; d += 32) {
            float qd = q[d];
#pragma unroll
            for (int k = 0; k < ATT_KPW; k++)
                if (jw + k <= p) dot[k] += qd * __ldg(K + (jw + k) * kv_dim + d);
        }
#pragma unroll
        for (int k = 0; k < ATT_KPW; k++)
            for (int o = 16; o > 0; o >>= 1) dot[k] += __shfl_xor_sync(0xffffffffu, dot[k], o);
        if (lane < ATT_KPW) {
            float v = dot[0];
#pragma unroll
            for (int k = 1; k < ATT_KPW; k++)
                if (lane == k) v = dot[k];
            w[warp * ATT_KPW + lane] = jw + lane <= p ? v * a.attn_scale : -INFINITY;
        }
        __syncthreads();
        if (warp == 0) {
            float s0 = w[lane], s1 = w[lane + 32];
            float m = fmaxf(s0, s1);
            for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
            float new_max = fmaxf(run_max, m); /* finite: key j0 <= p is in the tile */
            float e0 = expf(s0 - new_max), e1 = expf(s1 - new_max);
            w[lane] = e0;
            w[lane + 32] = e1;
            float sum = e0 + e1;
            for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
            float r = expf(run_max - new_max);
            run_sum = run_sum * r + sum;
            run_max = new_max;
            if (lane == 0) tile_scale = r;
        }
        __syncthreads();
        const float r = tile_scale;
        const int nb = p + 1 - j0 < ATT_TILE ? (int)(p + 1 - j0) : ATT_TILE;
#pragma unroll
        for (int e = 0; e < ATT_DPT; e++) {
            const int d = d0 + e * ATT_THREADS;
            if (e > 0 && (hd <= ATT_THREADS || d >= hd)) break;
            if (d >= hd || grp >= groups) break;
            float v = acc[e] * r;
#pragma unroll 8
            for (int t = grp; t < nb; t += groups) v += w[t] * __ldg(V + (j0 + t) * kv_dim + d);
            acc[e] = v;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) total = run_sum;
    if (groups > 1 && grp < groups) part[threadIdx.x] = acc[0];
    __syncthreads();
    float *o = out + i * q_dim + (int64_t)h * hd;
    if (groups > 1) {
        if (grp == 0) {
            float v = 0;
            for (int t = 0; t < groups; t++) v += part[t * hd + d0];
            o[d0] = v / total;
        }
        return;
    }
#pragma unroll
    for (int e = 0; e < ATT_DPT; e++) {
        const int d = d0 + e * ATT_THREADS;
        if (d < hd) o[d] = acc[e] / total;
    }
}

/* Attention with a warp per (query, key range): the kernel for head_dim <=
 * 256, which covers the architectures here. A block is 8 warps over Q = 8 /
 * G consecutive query rows of one head; the G warps of a query take
 * alternate chunks of 32 keys and merge their softmax states at the end.
 * Decode (n <= 8) uses G = 8, so one token's keys spread over a whole
 * block; a prompt uses G = 2, and the 4 queries of a block, neighbours in
 * one sequence, read the same key and value rows, which the block's L1
 * then serves: attention_k read every row once per query from L2, and a
 * 512-token prompt of Gemma 3 270M spent 570 us a layer there (H100).
 *
 * In a chunk each lane holds the partial dot products of its DPL head
 * dimensions with all 32 keys (coalesced loads: a key row is read across
 * the lanes), a transposing butterfly (31 shuffles) leaves key l's score in
 * lane l, the warp folds the chunk into its running max and sum, and each
 * lane adds the 32 weighted value rows into its DPL dimensions.
 *
 * Measured (H100, Gemma 3 270M stand-in, KQ_PROFILE, q/k norm + RoPE kernel
 * included): 490 us a layer for a 512-token prompt (570 before), ~16 us of
 * work a decode step. The prompt case is still bound by L2: the warps of a
 * block drift apart, so each query reads its key rows from L2 again. Next:
 * key and value chunks staged in shared memory for a tile of queries and
 * for all the query heads of a KV head. */
#define AW_WARPS 8

template <int DPL>
__global__ static void __launch_bounds__(AW_WARPS * 32)
attention_warp_k(kq_cu_arch a, int layer, int swa, const float *qkv, const int32_t *pos,
                 const int32_t *seq, const float *kc, const float *vc, float *out, int64_t n,
                 int G)
{
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
        int64_t lo = 0;
        if (swa && a.n_swa > 0 && p - a.n_swa + 1 > 0) lo = p - a.n_swa + 1;
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
    attention_warp_k<DPL><<<grid, AW_WARPS * 32, 0, s>>>(*a, layer, swa, qkv, pos, seq, kc, vc, out,
                                                         n, G);
    return launched();
}

extern "C" int kq__cu_attention(void *stream, const kq_cu_arch *a, int layer, int swa,
                                const float *qkv, const int32_t *pos, const int32_t *seq, int64_t n,
                                const float *k_cache, const float *v_cache, float *out)
{
    if (n <= 0) return 0;
    if (a->head_dim > ATT_MAXD) return (int)cudaErrorInvalidValue;
    cudaStream_t s = (cudaStream_t)stream;
    if (a->head_dim <= 64)
        return attention_warp<2>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (a->head_dim <= 128)
        return attention_warp<4>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (a->head_dim <= 256)
        return attention_warp<8>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    /* longer heads: the tiled block kernel above */
    dim3 grid((unsigned)n, (unsigned)a->n_head);
    attention_k<<<grid, ATT_THREADS, 0, s>>>(*a, layer, swa, qkv, pos, seq, k_cache, v_cache, out);
    return launched();
}

__global__ static void moe_combine_k(const float *e, const float *w, float *y, int64_t total,
                                     int64_t k, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int64_t r = i / n, c = i % n;
    float s = 0;
    for (int64_t t = 0; t < k; t++) s += w[r * k + t] * e[(r * k + t) * n + c];
    y[i] = s;
}

extern "C" int kq__cu_moe_combine(void *stream, const float *e, const float *w, float *y,
                                  int64_t rows, int64_t k, int64_t n)
{
    if (rows * n <= 0) return 0;
    moe_combine_k<<<blocks_for(rows * n), BLOCK, 0, (cudaStream_t)stream>>>(e, w, y, rows * n, k, n);
    return launched();
}

__global__ static void gather_k(const float *src, const int32_t *idx, float *dst, int64_t total,
                                int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) dst[i] = src[(int64_t)idx[i / n] * n + i % n];
}

extern "C" int kq__cu_gather_rows(void *stream, const float *src, const int32_t *idx, float *dst,
                                  int64_t rows, int64_t n)
{
    if (rows * n <= 0) return 0;
    gather_k<<<blocks_for(rows * n), BLOCK, 0, (cudaStream_t)stream>>>(src, idx, dst, rows * n, n);
    return launched();
}

extern "C" const char *kq__cu_error_string(int err)
{
    return cudaGetErrorString((cudaError_t)err);
}
