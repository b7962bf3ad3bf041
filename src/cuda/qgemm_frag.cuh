// Weights to fp16 tensor-core fragments, straight from the GGUF blocks in
// shared memory (FORMATS.md), for the prefill GEMMs (qgemm_sm90.cu,
// qgemm_sm80.cu).
//
// The weight rows are the MMA's A operand (M = weight rows, K, N = tokens).
// A thread of a warp owns, per 16-wide K step s and per 16-row group, the
// values (row g, K 2t..2t+1) and (row g, K 2t+8..2t+9) of rows g and g + 8
// (g = lane / 4, t = lane % 4): the register layout of mma.m16n8k16's and
// wgmma's A fragments. A "group" is 256 values of a row: one Q4_K/Q5_K/Q6_K
// block or eight Q4_0/Q8_0 blocks, TMA-copied into a shared row of
// kPitch bytes. Step s of a group decodes its 4 values from two 16-bit
// loads; scales are decoded once per 32-value sub-block (Sc) and carried
// through its two steps.
//
// Integers become fp16 without a conversion instruction: a byte b under the
// exponent 0x64 is the half 1024 + b, and subtracting 1024 (plus the type's
// offset) is exact. Then one fused multiply-add per pair applies scale and
// min. Folding the 1024 into the min instead would round the min at the
// magnitude of 1024 * scale and cost half a quantization step.
//
// Range: every scale is multiplied by the weights' power-of-two factor wf
// (qgemm.cu picks it at load from the largest block scale) so that the
// largest weight is near 2^14: no block can overflow fp16 and small ones
// stay normal.
#ifndef KQ_CUDA_QGEMM_FRAG_CUH
#define KQ_CUDA_QGEMM_FRAG_CUH

#include <cstdint>
#include <cuda_fp16.h>

#include "decode.cuh"

namespace kqc {

// Bytes of one group of 256 values, and its shared-memory row. A TMA box
// must start at a 16-byte boundary and span a multiple of 16 bytes: Q6_K
// groups (210 bytes) start 2 * g mod 16 bytes past one, so their box starts
// at the boundary below and covers 240 bytes; the group sits (g * 210) % 16
// bytes into its shared row.
template <int T> struct Group;
template <> struct Group<T_Q4_0> { static constexpr int kBytes = 144, kPitch = 144; };
template <> struct Group<T_Q8_0> { static constexpr int kBytes = 272, kPitch = 272; };
template <> struct Group<T_Q4_K> { static constexpr int kBytes = 144, kPitch = 144; };
template <> struct Group<T_Q5_K> { static constexpr int kBytes = 176, kPitch = 176; };
template <> struct Group<T_Q6_K> { static constexpr int kBytes = 210, kPitch = 240; };

__device__ __forceinline__ uint32_t lds16(const uint8_t *p)
{
    return *reinterpret_cast<const unsigned short *>(p);
}

__device__ __forceinline__ uint32_t h2u(__half2 h) { return *reinterpret_cast<uint32_t *>(&h); }
__device__ __forceinline__ __half2 u2h(uint32_t u) { return *reinterpret_cast<__half2 *>(&u); }

// Bytes b0 (bits 0-7) and b1 (bits 8-15) of w to the halves 1024 + b0 and
// 1024 + b1 (low and high half).
__device__ __forceinline__ uint32_t bytes_to_h2(uint32_t w)
{
    return __byte_perm(w, 0x64u, 0x4140);
}

// Low nibbles (hi = 0) or high nibbles (hi = 1) of the two bytes in w as
// 1024 + nibble.
__device__ __forceinline__ uint32_t nibbles_to_h2(uint32_t w, int hi)
{
    uint32_t b = hi ? (w >> 4) : w;
    return __byte_perm(b & 0x0F0Fu, 0x64u, 0x4140);
}

__device__ __forceinline__ __half2 h2const(float v) { return __float2half2_rn(v); }

// Per-sub-block scale state: w = (h - off) * mul + add for each half pair.
struct Sc {
    __half2 mul, add;
};

// Per-group state of a row: the k-quants' d (and dmin) times wf as halves,
// made once per group so that each sub-block's scale is two half
// operations on its integer codes (d wf is exact: wf is a power of two
// that keeps it well inside the fp16 range).
struct Gs {
    __half2 dd;
    float wf;
    uint32_t sc_lo, sc_hi, m_lo, m_hi;  // Q4_K/Q5_K: the 8 scales and mins, a byte each
};

template <int T> struct Frag;

// Q4_0: block j (32 values) at 18j: d, then 16 bytes whose low nibbles are
// values 0-15 and high nibbles 16-31. w = d (q - 8).
template <> struct Frag<T_Q4_0> {
    __device__ static Gs prep(const uint8_t *, float wf) { return {__half2{}, wf}; }
    __device__ static Sc scale(const uint8_t *g, int j, const Gs &gs, bool valid)
    {
        float d = valid ? h2f(lds16(g + 18 * j)) * gs.wf : 0.f;
        return {h2const(d), h2const(-8.f * d)};
    }
    __device__ static void step(const uint8_t *g, int s, int t, const Sc &c, uint32_t &lo,
                                uint32_t &hi)
    {
        const uint8_t *q = g + 18 * (s >> 1) + 2 + 2 * t;
        int h = s & 1;
        __half2 k = h2const(1024.f);
        lo = h2u(__hfma2(__hsub2(u2h(nibbles_to_h2(lds16(q), h)), k), c.mul, c.add));
        hi = h2u(__hfma2(__hsub2(u2h(nibbles_to_h2(lds16(q + 8), h)), k), c.mul, c.add));
    }
};

// Q8_0: block j at 34j: d, then 32 int8. w = d q.
template <> struct Frag<T_Q8_0> {
    __device__ static Gs prep(const uint8_t *, float wf) { return {__half2{}, wf}; }
    __device__ static Sc scale(const uint8_t *g, int j, const Gs &gs, bool valid)
    {
        float d = valid ? h2f(lds16(g + 34 * j)) * gs.wf : 0.f;
        return {h2const(d), h2const(0.f)};
    }
    __device__ static void step(const uint8_t *g, int s, int t, const Sc &c, uint32_t &lo,
                                uint32_t &hi)
    {
        const uint8_t *q = g + 34 * (s >> 1) + 2 + 16 * (s & 1) + 2 * t;
        // int8 + 128 is a byte: 1024 + 128 + q.
        __half2 k = h2const(1152.f);
        lo = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(lds16(q) ^ 0x8080u)), k), c.mul));
        hi = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(lds16(q + 8) ^ 0x8080u)), k), c.mul));
    }
};

// Q4_K (Q5_K with the fifth bit): sub-block j has scale d sc_j and min
// dmin m_j; its values are nibble j & 1 of qs[32 (j / 2) + l].
template <int T> struct FragK {
    static constexpr int kQs = T == T_Q5_K ? 48 : 16;
    // All eight 6-bit scales and mins unpacked once per group (FORMATS.md:
    // sub-blocks 0-3 in the low 6 bits of bytes 0-3 and 4-7, 4-7 split
    // between bytes 8-11 and the top 2 bits of bytes 0-7).
    __device__ static Gs prep(const uint8_t *g, float wf)
    {
        uint32_t dd = *reinterpret_cast<const uint32_t *>(g);
        const uint32_t *w = reinterpret_cast<const uint32_t *>(g + 4);
        uint32_t w0 = w[0], w1 = w[1], w2 = w[2];
        Gs s;
        s.dd = __floats2half2_rn(h2f(dd) * wf, -h2f(dd >> 16) * wf);
        s.wf = wf;
        s.sc_lo = w0 & 0x3F3F3F3Fu;
        s.m_lo = w1 & 0x3F3F3F3Fu;
        s.sc_hi = (w2 & 0x0F0F0F0Fu) | ((w0 >> 2) & 0x30303030u);
        s.m_hi = ((w2 >> 4) & 0x0F0F0F0Fu) | ((w1 >> 2) & 0x30303030u);
        return s;
    }
    __device__ static Sc scale(const uint8_t *, int j, const Gs &gs, bool valid)
    {
        // Byte j % 4 of the scales into byte 0, of the mins into byte 2,
        // under the exponent 0x64: (1024 + sc, 1024 + m).
        uint32_t b = j & 3, sel = b | ((b + 4) << 8);
        uint32_t h = j < 4 ? __byte_perm(gs.sc_lo, gs.m_lo, sel) : __byte_perm(gs.sc_hi, gs.m_hi, sel);
        h = (h & 0x00FF00FFu) | 0x64006400u;
        // (sc, m) as exact halves, times (d wf, -dmin wf).
        __half2 sm = __hsub2(u2h(h), h2const(1024.f));
        __half2 prod = __hmul2(sm, valid ? gs.dd : __half2{});
        return {__low2half2(prod), __high2half2(prod)};
    }
    __device__ static void step(const uint8_t *g, int s, int t, const Sc &c, uint32_t &lo,
                                uint32_t &hi)
    {
        int j = s >> 1, l = 16 * (s & 1) + 2 * t;
        const uint8_t *q = g + kQs + 32 * (j >> 1) + l;
        uint32_t a = lds16(q), b = lds16(q + 8);
        uint32_t qa = ((j & 1) ? (a >> 4) : a) & 0x0F0Fu;
        uint32_t qb = ((j & 1) ? (b >> 4) : b) & 0x0F0Fu;
        if (T == T_Q5_K) {  // bit j of qh[l] is bit 4 of the value
            qa |= ((lds16(g + 16 + l) >> j) & 0x0101u) << 4;
            qb |= ((lds16(g + 16 + l + 8) >> j) & 0x0101u) << 4;
        }
        __half2 k = h2const(1024.f);
        lo = h2u(__hfma2(__hsub2(u2h(bytes_to_h2(qa)), k), c.mul, c.add));
        hi = h2u(__hfma2(__hsub2(u2h(bytes_to_h2(qb)), k), c.mul, c.add));
    }
};
template <> struct Frag<T_Q4_K> : FragK<T_Q4_K> {};
template <> struct Frag<T_Q5_K> : FragK<T_Q5_K> {};

// Q6_K: step s (16 values) has scale d * scales[s]; scale() returns the
// pair for steps 2j (mul) and 2j + 1 (add, unused as an offset here).
template <> struct Frag<T_Q6_K> {
    __device__ static Gs prep(const uint8_t *g, float wf)
    {
        return {h2const(h2f(lds16(g + 208)) * wf), wf};
    }
    __device__ static Sc scale(const uint8_t *g, int j, const Gs &gs, bool valid)
    {
        // The two int8 scales as exact halves (+128 is a byte: 1152 + s - 128).
        uint32_t s2 = lds16(g + 192 + 2 * j) ^ 0x8080u;
        __half2 s = __hsub2(u2h(bytes_to_h2(s2)), h2const(1152.f));
        __half2 prod = __hmul2(s, valid ? gs.dd : __half2{});
        return {__low2half2(prod), __high2half2(prod)};
    }
    __device__ static void step(const uint8_t *g, int s, int t, const Sc &c, uint32_t &lo,
                                uint32_t &hi)
    {
        int j = s >> 1, h = j >> 2, q = j & 3, l = 16 * (s & 1) + 2 * t;
        const uint8_t *ql = g + 64 * h + 32 * (q & 1) + l;
        const uint8_t *qh = g + 128 + 32 * h + l;
        int nsh = (q >> 1) * 4, hsh = 2 * q;
        uint32_t a = ((lds16(ql) >> nsh) & 0x0F0Fu) | (((lds16(qh) >> hsh) & 0x0303u) << 4);
        uint32_t b = ((lds16(ql + 8) >> nsh) & 0x0F0Fu) | (((lds16(qh + 8) >> hsh) & 0x0303u) << 4);
        __half2 k = h2const(1056.f), m = (s & 1) ? c.add : c.mul;
        lo = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(a)), k), m));
        hi = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(b)), k), m));
    }
};

// The largest |w| a block of type T can decode to, from its scale fields
// (global memory): for the load-time range check.
template <int T> __device__ float block_bound(const uint8_t *b);
template <> __device__ inline float block_bound<T_Q4_0>(const uint8_t *b)
{
    return fabsf(h2f(ld_u16x2(b))) * 8.f;
}
template <> __device__ inline float block_bound<T_Q8_0>(const uint8_t *b)
{
    return fabsf(h2f(ld_u16x2(b))) * 128.f;
}
template <> __device__ inline float block_bound<T_Q4_K>(const uint8_t *b)
{
    uint32_t dd = ld_u16x2(b);
    return 63.f * (15.f * fabsf(h2f(dd)) + fabsf(h2f(dd >> 16)));
}
template <> __device__ inline float block_bound<T_Q5_K>(const uint8_t *b)
{
    uint32_t dd = ld_u16x2(b);
    return 63.f * (31.f * fabsf(h2f(dd)) + fabsf(h2f(dd >> 16)));
}
template <> __device__ inline float block_bound<T_Q6_K>(const uint8_t *b)
{
    // d is the block's last two bytes: a 32-bit read would pass its end.
    return fabsf(h2f(__ldg(reinterpret_cast<const unsigned short *>(b + 208)))) * 128.f * 32.f;
}

}  // namespace kqc

#endif
