// The streaming kernel's (stream_gemv.cu) decode of the types other than
// Q4_K, Q5_K and Q6_K: a lane's raw bytes from a 256-value group in shared
// memory (load_shared) and their int8 form (Wide<T>::q8, decode.cuh's
// layout: lane L owns values 32 (L % 8) .. + 31 of the group). A group is
// one block (Q2_K, Q3_K, IQ4_XS) or eight 32-value blocks, lane L taking
// block L % 8. Blocks of 17, 18, 22, 34, 84 or 110 bytes sit at any
// alignment in the ring, so runs come as aligned words and funnel shifts.
#ifndef KQ_CUDA_STREAM_TYPES_CUH
#define KQ_CUDA_STREAM_TYPES_CUH

#include "decode.cuh"

namespace kqc {

// n (<= 8) words of bytes at a shared address of any alignment. The word
// after the run is read only when the run is unaligned, and then it holds
// the run's last bytes: no word beyond them is touched. An aligned run's
// next word can be the next stage, which another cp.async may be filling
// (compute-sanitizer racecheck reported exactly that).
template <int N> __device__ __forceinline__ void ldw_shared(const uint8_t *p, uint32_t (&o)[N])
{
    const uint32_t *w = reinterpret_cast<const uint32_t *>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)3);
    uint32_t sh = (uint32_t)(reinterpret_cast<uintptr_t>(p) & 3) * 8;
    uint32_t v[N + 1];
#pragma unroll
    for (int i = 0; i < N; i++) v[i] = w[i];
    v[N] = sh ? w[N] : 0u;
#pragma unroll
    for (int i = 0; i < N; i++) o[i] = __funnelshift_r(v[i], v[i + 1], sh);
}

__device__ __forceinline__ uint32_t lds_u8(const uint8_t *p) { return *p; }
__device__ __forceinline__ uint32_t lds_u16_any(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

// ---------------------------------------------------------------- 32-value blocks

// Raw: q0 = the block's 16 qs bytes (Q8_0: q0, q1 = its 32 int8), h0.x =
// qh (Q5_0, Q5_1), d = d | m << 16 (or MXFP4's exponent byte).
template <int T> struct Wide32 {
    using L = Leg<T>;
    static constexpr int kB = TypeInfo<T>::kBytes;
    __device__ static void load_shared(const uint8_t *g, int lane, RawW &r)
    {
        const uint8_t *b = g + kB * (lane & 7);
        uint32_t q[4];
        ldw_shared<4>(b + L::kQs, q);
        r.q0 = make_uint4(q[0], q[1], q[2], q[3]);
        if constexpr (T == T_MXFP4) {
            r.d = lds_u8(b);
        } else {
            r.d = lds_u16_any(b);
            if constexpr (L::kMin != 0) r.d |= lds_u16_any(b + 2) << 16;
        }
        if constexpr (L::kQh != 0) r.h0.x = lds_u16_any(b + L::kQh) | (lds_u16_any(b + L::kQh + 2) << 16);
    }
    __device__ static void q8(const RawW &r, int, uint32_t q[8], WideScale &sc)
    {
        const uint32_t w[4] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            q[i] = w[i] & 0x0F0F0F0Fu;          // values 4i .. 4i + 3
            q[i + 4] = (w[i] >> 4) & 0x0F0F0F0Fu;  // values 16 + 4i ..
        }
        if constexpr (L::kQh != 0) {
#pragma unroll
            for (int i = 0; i < 8; i++) q[i] |= bits_to_b4(r.h0.x >> (4 * i));
        }
        if constexpr (L::kLut != 0) {
            const Lut16 t = L::kLut == 1 ? iq4nl_lut() : mxfp4_lut();
#pragma unroll
            for (int i = 0; i < 8; i++) q[i] = lut16(q[i], t);
        }
        float d = T == T_MXFP4 ? e8m0_half(r.d) : h2f(r.d);
        sc.lo = sc.hi = d;
        sc.mn = sc.mn_hi = L::kMin ? -h2f(r.d >> 16) : 0.0f;
        sc.off = L::kOff;
    }
};

template <> struct Wide<T_Q4_0> : Wide32<T_Q4_0> {};
template <> struct Wide<T_Q4_1> : Wide32<T_Q4_1> {};
template <> struct Wide<T_Q5_0> : Wide32<T_Q5_0> {};
template <> struct Wide<T_Q5_1> : Wide32<T_Q5_1> {};
template <> struct Wide<T_IQ4_NL> : Wide32<T_IQ4_NL> {};
template <> struct Wide<T_MXFP4> : Wide32<T_MXFP4> {};

template <> struct Wide<T_Q8_0> {
    __device__ static void load_shared(const uint8_t *g, int lane, RawW &r)
    {
        const uint8_t *b = g + 34 * (lane & 7);
        uint32_t q[8];
        ldw_shared<8>(b + 2, q);
        r.q0 = make_uint4(q[0], q[1], q[2], q[3]);
        r.q1 = make_uint4(q[4], q[5], q[6], q[7]);
        r.d = lds_u16_any(b);
    }
    __device__ static void q8(const RawW &r, int, uint32_t q[8], WideScale &sc)
    {
        q[0] = r.q0.x, q[1] = r.q0.y, q[2] = r.q0.z, q[3] = r.q0.w;
        q[4] = r.q1.x, q[5] = r.q1.y, q[6] = r.q1.z, q[7] = r.q1.w;
        sc.lo = sc.hi = h2f(r.d);
        sc.mn = sc.mn_hi = 0.0f;
        sc.off = 0;
    }
};

// ---------------------------------------------------------------- 256-value blocks

// Q2_K, Q3_K: values 32j .. 32j + 31 (j = L % 8) are 2-bit field j % 4 of
// the 32 qs bytes of half j / 4; they span sub-blocks 2j and 2j + 1.
template <> struct Wide<T_Q2_K> {
    __device__ static void load_shared(const uint8_t *b, int lane, RawW &r)
    {
        int j = lane & 7;
        uint32_t q[8];
        ldw_shared<8>(b + 16 + 32 * (j >> 2), q);
        r.q0 = make_uint4(q[0], q[1], q[2], q[3]);
        r.q1 = make_uint4(q[4], q[5], q[6], q[7]);
        r.d = *reinterpret_cast<const uint32_t *>(b + 80);  // 84-byte blocks: 4-aligned
        r.s = lds_u16_any(b + 2 * j);
    }
    __device__ static void q8(const RawW &r, int lane, uint32_t q[8], WideScale &sc)
    {
        int sh = 2 * (lane & 3);
        const uint32_t w[8] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w, r.q1.x, r.q1.y, r.q1.z, r.q1.w};
#pragma unroll
        for (int i = 0; i < 8; i++) q[i] = (w[i] >> sh) & 0x03030303u;
        float d = h2f(r.d), dm = h2f(r.d >> 16);
        sc.lo = d * small_int(r.s & 0xF, 0.0f);
        sc.hi = d * small_int((r.s >> 8) & 0xF, 0.0f);
        sc.mn = dm * small_int((r.s >> 4) & 0xF, 0.0f);
        sc.mn_hi = dm * small_int((r.s >> 12) & 0xF, 0.0f);
        sc.off = 0;
    }
};

template <> struct Wide<T_Q3_K> {
    __device__ static void load_shared(const uint8_t *b, int lane, RawW &r)
    {
        int j = lane & 7;
        uint32_t q[8], h[8];
        ldw_shared<8>(b + 32 + 32 * (j >> 2), q);
        ldw_shared<8>(b, h);
        r.q0 = make_uint4(q[0], q[1], q[2], q[3]);
        r.q1 = make_uint4(q[4], q[5], q[6], q[7]);
        r.h0 = make_uint4(h[0], h[1], h[2], h[3]);
        r.h1 = make_uint4(h[4], h[5], h[6], h[7]);
        r.d = lds_u16_any(b + 108);
        // The 6-bit codes of sub-blocks 2j and 2j + 1 (kq_q3k_scales' packing).
        uint32_t lo = lds_u16_any(b + 96 + 2 * (j & 3));
        lo = (j < 4 ? lo : lo >> 4) & 0x0F0Fu;
        uint32_t hi = (lds_u16_any(b + 104 + 2 * (j & 1)) >> (2 * (j >> 1))) & 0x0303u;
        r.s = lo | (hi << 4);
    }
    __device__ static void q8(const RawW &r, int lane, uint32_t q[8], WideScale &sc)
    {
        int j = lane & 7, sh = 2 * (j & 3);
        const uint32_t w[8] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w, r.q1.x, r.q1.y, r.q1.z, r.q1.w};
        const uint32_t h[8] = {r.h0.x, r.h0.y, r.h0.z, r.h0.w, r.h1.x, r.h1.y, r.h1.z, r.h1.w};
#pragma unroll
        for (int i = 0; i < 8; i++)
            q[i] = ((w[i] >> sh) & 0x03030303u) | (((h[i] >> j) & 0x01010101u) << 2);
        float d = h2f(r.d);
        sc.lo = d * (float)((int)(r.s & 0xFF) - 32);
        sc.hi = d * (float)((int)((r.s >> 8) & 0xFF) - 32);
        sc.mn = sc.mn_hi = 0.0f;
        sc.off = 4;
    }
};

// IQ4_XS: sub-block j's 16 qs bytes at 8 + 16j, in Q4_0's nibble order.
template <> struct Wide<T_IQ4_XS> {
    __device__ static void load_shared(const uint8_t *b, int lane, RawW &r)
    {
        int j = lane & 7;
        uint32_t q[4];
        ldw_shared<4>(b + 8 + 16 * j, q);
        r.q0 = make_uint4(q[0], q[1], q[2], q[3]);
        r.d = *reinterpret_cast<const uint32_t *>(b);  // 136-byte blocks: 8-aligned
        r.s = lds_u8(b + 4 + (j >> 1));
    }
    __device__ static void q8(const RawW &r, int lane, uint32_t q[8], WideScale &sc)
    {
        int j = lane & 7;
        const uint32_t w[4] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w};
        const Lut16 t = iq4nl_lut();
#pragma unroll
        for (int i = 0; i < 4; i++) {
            q[i] = lut16(w[i] & 0x0F0F0F0Fu, t);
            q[i + 4] = lut16((w[i] >> 4) & 0x0F0F0F0Fu, t);
        }
        int ls = (int)((r.s >> (4 * (j & 1))) & 0xF) | (int)(((r.d >> (16 + 2 * j)) & 3) << 4);
        sc.lo = sc.hi = h2f(r.d) * (float)(ls - 32);
        sc.mn = sc.mn_hi = 0.0f;
        sc.off = 0;
    }
};

}  // namespace kqc

#endif
