/* Device kernels of the model layer (ops_cuda.h): the steps ops_cpu.c and
 * attention.c take on the host, one launch each, in float, on the backend's
 * stream. Sizes were checked by the model layer before any launch. */
#include <cuda_runtime.h>
#include <math.h>

#include "cuda/pdl.cuh"
#include "ops_cuda.h"

#define BLOCK 256

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
    kqc::pdl_start();
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
    return (int)kqc::launch_pdl(rmsnorm_k, (unsigned)rows, BLOCK, 0, (cudaStream_t)stream, x, w, y,
                                n, sx, sy, eps);
}

/* One block per row. The sums run in the same order as rmsnorm_k's, so the
 * fused step gives the numbers the three separate steps gave. */
__global__ static void residual_k(float *x, float *y, const float *post_w, const float *norm_w,
                                  float *h, int64_t n, float eps)
{
    kqc::pdl_start();
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
    return (int)kqc::launch_pdl(residual_k, (unsigned)rows, BLOCK, 0, (cudaStream_t)stream, x, y,
                                post_w, norm_w, h, n, eps);
}

static unsigned blocks_for(int64_t n)
{
    return (unsigned)((n + BLOCK - 1) / BLOCK);
}

__global__ static void add_rows_k(float *y, const float *b, int64_t total, int64_t n)
{
    kqc::pdl_start();
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) y[i] += b[i % n];
}

extern "C" int kq__cu_add_rows(void *stream, float *y, const float *bias, int64_t rows, int64_t n)
{
    if (rows * n <= 0) return 0;
    return (int)kqc::launch_pdl(add_rows_k, blocks_for(rows * n), BLOCK, 0, (cudaStream_t)stream, y,
                                bias, rows * n, n);
}

__global__ static void scale_k(float *x, float s, int64_t n)
{
    kqc::pdl_start();
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= s;
}

extern "C" int kq__cu_scale(void *stream, float *x, float s, int64_t n)
{
    if (n <= 0) return 0;
    return (int)kqc::launch_pdl(scale_k, blocks_for(n), BLOCK, 0, (cudaStream_t)stream, x, s, n);
}

__global__ static void softcap_k(float *x, float cap, int64_t n)
{
    kqc::pdl_start();
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = cap * tanhf(x[i] / cap);
}

extern "C" int kq__cu_softcap(void *stream, float *x, float cap, int64_t n)
{
    if (n <= 0) return 0;
    return (int)kqc::launch_pdl(softcap_k, blocks_for(n), BLOCK, 0, (cudaStream_t)stream, x, cap,
                                n);
}

/* One block per (token, head): q heads first, then k heads (which also
 * copy their v head into the cache). */
__global__ static void qk_prep_k(kq_cu_arch a, int layer, int swa, float *qkv, const float *q_norm,
                                 const float *k_norm, const float *freqs, const double *inv_freq,
                                 const int32_t *pos, const int32_t *seq, float *kc, float *vc)
{
    kqc::pdl_start();
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
    /* the host's table of base^(-2k / n_rot) (config.c), where a pow a
     * thread on the device was the longest step of this kernel */
    const double *inv = inv_freq + (swa ? half : 0);
    const double scale = swa ? a.rope_scale_swa : a.rope_scale;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) x[d] = hv[d];
    __syncthreads();
    for (int k = threadIdx.x; k < half; k += blockDim.x) {
        double th = scale * (double)pos[i] * inv[k]; /* ops_cpu.c's product, in its order */
        if (freqs) th /= freqs[k];
        double sd, cd;
        sincos(th, &sd, &cd);
        const float cs = (float)cd, sn = (float)sd;
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
                              const double *inv_freq, const int32_t *pos, const int32_t *seq,
                              int64_t n, float *k_cache, float *v_cache)
{
    if (n <= 0) return 0;
    if (a->head_dim > 1024) return (int)cudaErrorInvalidValue;
    dim3 grid((unsigned)n, (unsigned)(a->n_head + a->n_head_kv));
    return (int)kqc::launch_pdl(qk_prep_k, grid, 128, 0, (cudaStream_t)stream, *a, layer, swa, qkv,
                                q_norm, k_norm, rope_freqs, inv_freq, pos, seq, k_cache, v_cache);
}

__global__ static void moe_combine_k(const float *e, const float *w, float *y, int64_t total,
                                     int64_t k, int64_t n)
{
    kqc::pdl_start();
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
    return (int)kqc::launch_pdl(moe_combine_k, blocks_for(rows * n), BLOCK, 0, (cudaStream_t)stream,
                                e, w, y, rows * n, k, n);
}

__global__ static void gather_k(const float *src, const int32_t *idx, float *dst, int64_t total,
                                int64_t n)
{
    kqc::pdl_start();
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) dst[i] = src[(int64_t)idx[i / n] * n + i % n];
}

extern "C" int kq__cu_gather_rows(void *stream, const float *src, const int32_t *idx, float *dst,
                                  int64_t rows, int64_t n)
{
    if (rows * n <= 0) return 0;
    return (int)kqc::launch_pdl(gather_k, blocks_for(rows * n), BLOCK, 0, (cudaStream_t)stream, src,
                                idx, dst, rows * n, n);
}

extern "C" int kq__cu_host_alloc(size_t bytes, void **out)
{
    *out = NULL;
    const cudaError_t e = cudaHostAlloc(out, bytes, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        *out = NULL;
        cudaGetLastError();
    }
    return (int)e;
}

extern "C" int kq__cu_host_mapped(const void *p)
{
    cudaPointerAttributes at;
    if (cudaPointerGetAttributes(&at, p) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return at.type == cudaMemoryTypeHost && at.devicePointer == p;
}

extern "C" void kq__cu_host_free(void *p)
{
    if (p && cudaFreeHost(p) != cudaSuccess) cudaGetLastError();
}

extern "C" int kq__cu_copy_in_async(void *stream, void *dst, const void *src, size_t bytes)
{
    return (int)cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream);
}

extern "C" int kq__cu_event_new(void **ev)
{
    cudaEvent_t e = NULL;
    const cudaError_t r = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
    *ev = r == cudaSuccess ? (void *)e : NULL;
    if (r != cudaSuccess) cudaGetLastError();
    return (int)r;
}

extern "C" int kq__cu_event_record(void *ev, void *stream)
{
    return (int)cudaEventRecord((cudaEvent_t)ev, (cudaStream_t)stream);
}

extern "C" int kq__cu_event_sync(void *ev)
{
    return (int)cudaEventSynchronize((cudaEvent_t)ev);
}

extern "C" void kq__cu_event_free(void *ev)
{
    if (ev && cudaEventDestroy((cudaEvent_t)ev) != cudaSuccess) cudaGetLastError();
}

extern "C" const char *kq__cu_error_string(int err)
{
    return cudaGetErrorString((cudaError_t)err);
}
