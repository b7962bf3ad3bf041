// Activations to int8, one scale per 32 values: shared by quantize_x
// (matvec.cu) and the streaming kernel's quantizer in shared memory
// (stream_gemv.cu), so that both write the same bytes. A lane holds 8
// consecutive values and four lanes a 32-value block:
// d = max|x| / 127, q = round-to-nearest-even(x / d), clamped to +-127.
#ifndef KQ_CUDA_XQUANT_CUH
#define KQ_CUDA_XQUANT_CUH

#include <cstdint>

namespace kqc {

// The lane's 8 values at p (16-byte aligned), zeros when it is past K.
__device__ __forceinline__ void xq_load8(const float *p, bool in, float v[8])
{
    float4 lo = make_float4(0.f, 0.f, 0.f, 0.f), hi = lo;
    if (in) {
        lo = __ldg(reinterpret_cast<const float4 *>(p));
        hi = __ldg(reinterpret_cast<const float4 *>(p) + 1);
    }
    v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w;
    v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
}

// max(a, b) that is NaN when either side is not finite: fmaxf alone drops a
// NaN, and a block holding one would then quantize to finite codes, giving a
// finite y where kquant.h's activation contract promises a non-finite one.
__device__ __forceinline__ float xq_max_poisoned(float a, float b)
{
    return fmaxf(a, b) + (a - a) + (b - b);
}

// The max |x| of the lane's 32-value block, agreed by its four lanes through
// shuffles: every lane of the warp must call it. NaN when any value of the
// block is NaN or infinite, so that d = amax / 127 carries it into y.
__device__ __forceinline__ float xq_block_amax(const float v[8])
{
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) amax = xq_max_poisoned(amax, fabsf(v[i]));
    amax = xq_max_poisoned(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    return xq_max_poisoned(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
}

// The lane's 8 values as int8 against the block's max, packed little-endian
// into pk; returns their sum (the min and offset terms of the k-quants).
__device__ __forceinline__ int xq_pack8(const float v[8], float amax, uint32_t pk[2])
{
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int qsum = 0;
    pk[0] = pk[1] = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int qi = __float2int_rn(v[i] * id);
        qi = qi > 127 ? 127 : (qi < -127 ? -127 : qi);
        qsum += qi;
        pk[i >> 2] |= (uint32_t)(qi & 0xff) << (8 * (i & 3));
    }
    return qsum;
}

// One lane's 8 values at p (k0: the first one's index in the row; in:
// inside K, alike for the four lanes of a 32-value block) as int8 at q + k0,
// the block's scale at d[k0 / 32] and the int8 sums per 16 at sum[k0 / 16],
// written by the block's first lanes. Every lane of the warp must call it
// (the block's max is agreed through shuffles). quantize_x (matvec.cu) and
// xq_quantize_shared write x this way.
__device__ __forceinline__ void xq_quantize8(const float *p, bool in, int64_t k0, int8_t *q,
                                             float *d, int *sum)
{
    const int lane = threadIdx.x & 31;
    float v[8];
    xq_load8(p, in, v);
    float amax = xq_block_amax(v);
    if (!in) return;
    uint32_t pk[2];
    int qsum = xq_pack8(v, amax, pk);
    // Two lanes per 16 values, both in (the lanes of a 32-value block all are).
    qsum += __shfl_xor_sync(3u << (lane & ~1), qsum, 1);
    *reinterpret_cast<uint2 *>(q + k0) = make_uint2(pk[0], pk[1]);
    if ((lane & 1) == 0) sum[k0 >> 4] = qsum;
    if ((lane & 3) == 0) d[k0 >> 5] = amax / 127.0f;
}

// Shared memory for one row of x as xq_quantize_shared writes it: K int8
// (rounded up to 16 bytes), K / 32 scales, K / 16 sums.
__host__ __device__ constexpr int64_t xq_smem_bytes(int64_t K)
{
    return (K + 15) / 16 * 16 + K / 32 * 4 + K / 16 * 4;
}

// Where xq_quantize_shared's three arrays start in shared memory at base.
struct XqSmem {
    int8_t *q;
    float *d;
    int *sum;
};

__device__ __forceinline__ XqSmem xq_smem_carve(uint8_t *base, int64_t K)
{
    XqSmem x;
    x.q = reinterpret_cast<int8_t *>(base);
    x.d = reinterpret_cast<float *>(base + (K + 15) / 16 * 16);
    x.sum = reinterpret_cast<int *>(x.d + K / 32);
    return x;
}

// x (one row, float, 16-byte aligned, K a multiple of 256) to int8 in
// shared memory (xq_smem_carve's arrays), as quantize_x writes it: four
// lanes per 32 values, kThreads threads.
template <int kThreads>
__device__ __forceinline__ void xq_quantize_shared(const float *x, int64_t K, XqSmem s)
{
    const int lane = threadIdx.x & 31;
    // K is a multiple of 256: a warp is all in or all out
    for (int64_t k0 = 8 * (int64_t)threadIdx.x; k0 - 8 * lane < K; k0 += 8 * kThreads)
        xq_quantize8(x + k0, k0 < K, k0, s.q, s.d, s.sum);
}

}  // namespace kqc

#endif
