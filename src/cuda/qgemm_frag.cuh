// Weights to fp16 tensor-core fragments, straight from the GGUF blocks in
// shared memory (docs/formats.md), for the prefill GEMMs (qgemm_sm90.cu,
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
// Every type's group follows from its block (TypeInfo). A group that is
// not a 16-byte multiple starts up to 16 - gcd(bytes, 16) bytes past a
// boundary, so its row must hold that much more. The row is then padded
// to 16 mod 32 bytes: a warp's 8 rows (g) x 4 lanes (t) read 16 bytes per
// row, and rows whose word offsets differ by 4 mod 8 banks fill all 32
// banks once (Q3_K's 128-byte rows had all eight rows on the same banks
// and ran at half of Q4_K's rate; this is also why Q6_K's row is 240).
constexpr int gcd16(int b) { return (b & 15) == 0 ? 16 : (b & 7) == 0 ? 8 : (b & 3) == 0 ? 4 : (b & 1) == 0 ? 2 : 1; }
constexpr int group_pitch(int bytes)
{
    int need = (bytes + ((bytes & 15) ? 16 - gcd16(bytes) : 0) + 15) / 16 * 16;
    return need % 32 == 0 ? need + 16 : need;
}
template <int T> struct Group {
    static constexpr int kBytes = TypeInfo<T>::kBytes * (256 / TypeInfo<T>::kElems);
    static constexpr int kPitch = group_pitch(kBytes);
};
static_assert(Group<T_Q4_0>::kPitch == 144 && Group<T_Q8_0>::kPitch == 272 &&
                  Group<T_Q4_K>::kPitch == 144 && Group<T_Q5_K>::kPitch == 176 &&
                  Group<T_Q6_K>::kPitch == 240 && Group<T_Q2_K>::kPitch == 112 &&
                  Group<T_Q3_K>::kPitch == 144 && Group<T_MXFP4>::kPitch == 144 &&
                  Group<T_Q5_1>::kPitch == 208,
              "group rows");

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
    // All eight 6-bit scales and mins unpacked once per group (docs/formats.md:
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

// The 32-value types beside Q4_0 and Q8_0 (Leg<T>, decode.cuh): block j
// at B j, step s = half s % 2 of block s / 2, in Q4_0's nibble order. Grid
// types look up int8 values (lut16) and go through Q8_0's byte trick.
// MXFP4's 17-byte blocks put fields at odd addresses: read bytewise.
template <int T> struct Frag32 {
    using L = Leg<T>;
    static constexpr int kB = TypeInfo<T>::kBytes;
    __device__ static uint32_t ld2(const uint8_t *p)
    {
        if constexpr (T == T_MXFP4)
            return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
        else
            return lds16(p);
    }
    __device__ static Gs prep(const uint8_t *, float wf) { return {__half2{}, wf}; }
    __device__ static Sc scale(const uint8_t *g, int j, const Gs &gs, bool valid)
    {
        const uint8_t *b = g + kB * j;
        float d = T == T_MXFP4 ? e8m0_half(b[0]) : h2f(lds16(b));
        d = valid ? d * gs.wf : 0.f;
        float add = L::kMin ? (valid ? h2f(lds16(b + 2)) * gs.wf : 0.f) : -(float)L::kOff * d;
        return {h2const(d), h2const(add)};
    }
    __device__ static void step(const uint8_t *g, int s, int t, const Sc &c, uint32_t &lo,
                                uint32_t &hi)
    {
        const uint8_t *b = g + kB * (s >> 1);
        const int h = s & 1;
        uint32_t a = ld2(b + L::kQs + 2 * t), bb = ld2(b + L::kQs + 2 * t + 8);
        a = (h ? (a >> 4) : a) & 0x0F0Fu;
        bb = (h ? (bb >> 4) : bb) & 0x0F0Fu;
        if constexpr (L::kQh != 0) {  // bits 16 h + 2 t, + 1 (a) and + 8, + 9 (bb) of qh
            uint32_t qh = lds16(b + L::kQh + 2 * h);
            uint32_t x = qh >> (2 * t), y = qh >> (2 * t + 8);
            a |= ((x & 1u) << 4) | ((x & 2u) << 11);
            bb |= ((y & 1u) << 4) | ((y & 2u) << 11);
        }
        if constexpr (L::kLut != 0) {
            uint32_t v = lut16(a | (bb << 16), L::kLut == 1 ? iq4nl_lut() : mxfp4_lut()) ^ 0x80808080u;
            __half2 k = h2const(1152.f);
            lo = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(v)), k), c.mul));
            hi = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(v >> 16)), k), c.mul));
        } else {
            __half2 k = h2const(1024.f);
            lo = h2u(__hfma2(__hsub2(u2h(bytes_to_h2(a)), k), c.mul, c.add));
            hi = h2u(__hfma2(__hsub2(u2h(bytes_to_h2(bb)), k), c.mul, c.add));
        }
    }
};
template <> struct Frag<T_Q4_1> : Frag32<T_Q4_1> {};
template <> struct Frag<T_Q5_0> : Frag32<T_Q5_0> {};
template <> struct Frag<T_Q5_1> : Frag32<T_Q5_1> {};
template <> struct Frag<T_IQ4_NL> : Frag32<T_IQ4_NL> {};
template <> struct Frag<T_MXFP4> : Frag32<T_MXFP4> {};

// Q2_K and Q3_K: sub-blocks of 16 values, one per K step; scale() returns
// the pair for steps 2j (low halves) and 2j + 1 (high halves). Step s's
// values sit in half n = s / 8, 2-bit field (s % 8) / 2, bytes
// 16 (s % 2) + 2t (, + 8) of that half's 32 qs bytes.
template <> struct Frag<T_Q2_K> {
    __device__ static Gs prep(const uint8_t *g, float wf)
    {
        Gs s{};
        s.dd = __floats2half2_rn(h2f(lds16(g + 80)) * wf, -h2f(lds16(g + 82)) * wf);
        s.wf = wf;
        return s;
    }
    __device__ static Sc scale(const uint8_t *g, int j, const Gs &gs, bool valid)
    {
        uint32_t b = lds16(g + 2 * j);  // scale in the low nibble, min in the high one
        __half2 sc = __hsub2(u2h(bytes_to_h2(b & 0x0F0Fu)), h2const(1024.f));
        __half2 mn = __hsub2(u2h(bytes_to_h2((b >> 4) & 0x0F0Fu)), h2const(1024.f));
        __half2 dd = valid ? gs.dd : __half2{};
        return {__hmul2(sc, __low2half2(dd)), __hmul2(mn, __high2half2(dd))};
    }
    __device__ static void step(const uint8_t *g, int s, int t, const Sc &c, uint32_t &lo,
                                uint32_t &hi)
    {
        const uint8_t *q = g + 16 + 32 * (s >> 3) + 16 * (s & 1) + 2 * t;
        int sh = 2 * ((s & 7) >> 1);
        uint32_t a = (lds16(q) >> sh) & 0x0303u, b = (lds16(q + 8) >> sh) & 0x0303u;
        __half2 m = (s & 1) ? __high2half2(c.mul) : __low2half2(c.mul);
        __half2 ad = (s & 1) ? __high2half2(c.add) : __low2half2(c.add);
        __half2 k = h2const(1024.f);
        lo = h2u(__hfma2(__hsub2(u2h(bytes_to_h2(a)), k), m, ad));
        hi = h2u(__hfma2(__hsub2(u2h(bytes_to_h2(b)), k), m, ad));
    }
};

// Q3_K: the 12 scale bytes kept per group (sc_lo, sc_hi, m_lo: bytes 0-3,
// 4-7, 8-11); value q - 4 with q = 2 low bits + 4 * high bit (hmask[l] bit
// s / 2, l = 16 (s % 2) + 2t ..).
template <> struct Frag<T_Q3_K> {
    __device__ static Gs prep(const uint8_t *g, float wf)
    {
        Gs s{};
        s.dd = h2const(h2f(lds16(g + 108)) * wf);
        s.wf = wf;
        s.sc_lo = lds16(g + 96) | (lds16(g + 98) << 16);
        s.sc_hi = lds16(g + 100) | (lds16(g + 102) << 16);
        s.m_lo = lds16(g + 104) | (lds16(g + 106) << 16);
        return s;
    }
    __device__ static Sc scale(const uint8_t *, int j, const Gs &gs, bool valid)
    {
        // Sub-blocks 2j, 2j + 1: low nibbles of bytes (2j) % 8, + 1 (j < 4)
        // or their high nibbles; high bits from bytes 8 + 2 (j % 2), + 1,
        // shifted by 2 (j / 2).
        uint32_t w = (j & 2) ? gs.sc_hi : gs.sc_lo;
        uint32_t lo = (w >> (16 * (j & 1))) & 0xFFFFu;
        lo = (j < 4 ? lo : (lo >> 4)) & 0x0F0Fu;
        uint32_t hb = ((gs.m_lo >> (16 * (j & 1) + 2 * (j >> 1))) & 0x0303u) << 4;
        __half2 sc = __hsub2(u2h(bytes_to_h2(lo | hb)), h2const(1056.f));  // code - 32
        return {__hmul2(sc, valid ? gs.dd : __half2{}), __half2{}};
    }
    __device__ static void step(const uint8_t *g, int s, int t, const Sc &c, uint32_t &lo,
                                uint32_t &hi)
    {
        int l = 16 * (s & 1) + 2 * t, sh = 2 * ((s & 7) >> 1), hb = s >> 1;
        const uint8_t *q = g + 32 + 32 * (s >> 3) + l;
        uint32_t a = ((lds16(q) >> sh) & 0x0303u) | (((lds16(g + l) >> hb) & 0x0101u) << 2);
        uint32_t b = ((lds16(q + 8) >> sh) & 0x0303u) | (((lds16(g + l + 8) >> hb) & 0x0101u) << 2);
        __half2 m = (s & 1) ? __high2half2(c.mul) : __low2half2(c.mul);
        __half2 k = h2const(1028.f);
        lo = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(a)), k), m));
        hi = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(b)), k), m));
    }
};

// IQ4_XS: sub-block j's 6-bit scale (ls - 32) d; its 32 values are IQ4_NL
// grid nibbles of qs[16 j ..] in Q4_0 order.
template <> struct Frag<T_IQ4_XS> {
    __device__ static Gs prep(const uint8_t *g, float wf)
    {
        Gs s{};
        s.wf = h2f(lds16(g)) * wf;  // d wf, kept in float: the scales multiply it
        s.sc_lo = lds16(g + 2);
        s.sc_hi = lds16(g + 4) | (lds16(g + 6) << 16);
        return s;
    }
    __device__ static Sc scale(const uint8_t *, int j, const Gs &gs, bool valid)
    {
        int ls = (int)((gs.sc_hi >> (4 * j)) & 0xF) | (int)(((gs.sc_lo >> (2 * j)) & 3) << 4);
        return {h2const(valid ? gs.wf * (float)(ls - 32) : 0.f), __half2{}};
    }
    __device__ static void step(const uint8_t *g, int s, int t, const Sc &c, uint32_t &lo,
                                uint32_t &hi)
    {
        const uint8_t *q = g + 8 + 16 * (s >> 1) + 2 * t;
        int h = s & 1;
        uint32_t a = lds16(q), b = lds16(q + 8);
        uint32_t idx = ((h ? (a >> 4) : a) & 0x0F0Fu) | (((h ? (b >> 4) : b) & 0x0F0Fu) << 16);
        uint32_t v = lut16(idx, iq4nl_lut()) ^ 0x80808080u;
        __half2 k = h2const(1152.f);
        lo = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(v)), k), c.mul));
        hi = h2u(__hmul2(__hsub2(u2h(bytes_to_h2(v >> 16)), k), c.mul));
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

template <> __device__ inline float block_bound<T_Q4_1>(const uint8_t *b)
{
    uint32_t dm = ld_u16x2(b);
    return 15.f * fabsf(h2f(dm)) + fabsf(h2f(dm >> 16));
}
template <> __device__ inline float block_bound<T_Q5_0>(const uint8_t *b)
{
    return fabsf(h2f(__ldg(reinterpret_cast<const unsigned short *>(b)))) * 16.f;
}
template <> __device__ inline float block_bound<T_Q5_1>(const uint8_t *b)
{
    uint32_t dm = ld_u16x2(b);
    return 31.f * fabsf(h2f(dm)) + fabsf(h2f(dm >> 16));
}
template <> __device__ inline float block_bound<T_IQ4_NL>(const uint8_t *b)
{
    return fabsf(h2f(__ldg(reinterpret_cast<const unsigned short *>(b)))) * 127.f;
}
template <> __device__ inline float block_bound<T_MXFP4>(const uint8_t *b)
{
    return e8m0_half(__ldg(b)) * 12.f;
}
template <> __device__ inline float block_bound<T_Q2_K>(const uint8_t *b)
{
    uint32_t dd = ld_u16x2(b + 80);
    return 15.f * (3.f * fabsf(h2f(dd)) + fabsf(h2f(dd >> 16)));
}
template <> __device__ inline float block_bound<T_Q3_K>(const uint8_t *b)
{
    // d is the block's last two bytes (as Q6_K's).
    return fabsf(h2f(__ldg(reinterpret_cast<const unsigned short *>(b + 108)))) * 32.f * 4.f;
}
template <> __device__ inline float block_bound<T_IQ4_XS>(const uint8_t *b)
{
    return fabsf(h2f(__ldg(reinterpret_cast<const unsigned short *>(b)))) * 32.f * 127.f;
}

}  // namespace kqc

#endif
