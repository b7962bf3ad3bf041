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
 * included): 490 us a layer for a 512-token prompt (570 before), ~16 us of
 * work a decode step. The prompt case is still bound by L2: the warps of a
 * block drift apart, so each query reads its key rows from L2 again. Next:
 * key and value chunks staged in shared memory for a tile of queries and
 * for all the query heads of a KV head. ptxas (sm_90a) gives DPL = 8 232
 * registers a thread, so one 256-thread block fits an SM: 8 warps, too few
 * to hide the loads; the dot[32] of a chunk is most of it. DPL = 32 (heads
 * over 512) spills 268 bytes. */
#define AW_WARPS 8
#define AW_MAXD 1024 /* DPL = 32 */

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
    cudaStream_t s = (cudaStream_t)stream;
    const int hd = a->head_dim;
    if (hd <= 64) return attention_warp<2>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (hd <= 128) return attention_warp<4>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (hd <= 256) return attention_warp<8>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (hd <= 512) return attention_warp<16>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    if (hd <= AW_MAXD)
        return attention_warp<32>(s, a, layer, swa, qkv, pos, seq, n, k_cache, v_cache, out);
    return (int)cudaErrorInvalidValue;
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
