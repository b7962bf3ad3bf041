// Device-side decoding of the weight blocks (docs/formats.md), three ways:
//
// - Wide pieces (Q4_K, Q5_K, Q6_K with int8 x): a lane owns a whole 32-value
//   sub-block of a 1024-value warp step (see Wide below).
// - Lane pieces (the other fast paths): a warp walks a row 256 elements at a
//   time and lane L owns elements [8L, 8L + 8) of each such span. Every type
//   loads its raw bytes for the piece first (load), so a warp can have
//   several spans in flight, and expands them to 8 floats later (expand).
//   The lanes of a warp read one block's bytes side by side, so each load
//   instruction is coalesced; per-block fields (d, scales) are the same
//   address across lanes and come as one broadcast.
// - One element at a time (deq1): for f32/f16/bf16 weights and the rare
//   calls whose x is not 16-byte aligned; simple, slow, obviously right.
//
// Q6_K, Q4_0 and Q8_0 blocks are only 2-byte aligned (210, 18 and 34
// bytes), so their pieces load as 16-bit words; Q4_K and Q5_K blocks (144,
// 176 bytes) keep 8-byte alignment and load 8 bytes at once.
#ifndef KQ_CUDA_DECODE_CUH
#define KQ_CUDA_DECODE_CUH

#include <cstdint>
#include <cuda_fp16.h>

#include "formats/type_list.h"
#include "kquant.h"

namespace kqc {

// Type ids are the ggml ids (kquant.h); the quantized ones come from the one
// type list (formats/type_list.h), whose X-macro generates every per-type
// switch of the CUDA code, so a type without a kernel body is a compile
// error rather than a silent default.
enum : int {
    T_F32 = KQ_TYPE_F32, T_F16 = KQ_TYPE_F16, T_BF16 = KQ_TYPE_BF16,
    T_Q4_0 = KQ_TYPE_Q4_0, T_Q4_1 = KQ_TYPE_Q4_1, T_Q5_0 = KQ_TYPE_Q5_0, T_Q5_1 = KQ_TYPE_Q5_1,
    T_Q8_0 = KQ_TYPE_Q8_0, T_IQ4_NL = KQ_TYPE_IQ4_NL, T_MXFP4 = KQ_TYPE_MXFP4,
    T_Q2_K = KQ_TYPE_Q2_K, T_Q3_K = KQ_TYPE_Q3_K, T_Q4_K = KQ_TYPE_Q4_K, T_Q5_K = KQ_TYPE_Q5_K,
    T_Q6_K = KQ_TYPE_Q6_K, T_IQ4_XS = KQ_TYPE_IQ4_XS
};

// Bytes and values of a type's block, from blocks.h.
template <int T> struct TypeInfo;
#define KQ_CUDA_TYPE_INFO(ID, name, BLOCK, elems, act)                                   \
    template <> struct TypeInfo<ID> {                                                    \
        static constexpr int kBytes = (int)sizeof(BLOCK), kElems = (int)(elems);         \
    };
KQ_QUANT_TYPES(KQ_CUDA_TYPE_INFO)
#undef KQ_CUDA_TYPE_INFO

// A 16-entry int8 table as four words (entry i in byte i % 4 of word i / 4),
// built at compile time from blocks.h's host arrays.
struct Lut16 {
    uint32_t w0, w1, w2, w3;
};
__host__ __device__ constexpr uint32_t lut_word(const int8_t *v, int i)
{
    return (uint32_t)(uint8_t)v[i] | ((uint32_t)(uint8_t)v[i + 1] << 8) |
           ((uint32_t)(uint8_t)v[i + 2] << 16) | ((uint32_t)(uint8_t)v[i + 3] << 24);
}

// Four table look-ups at once: idx holds four indices 0..15, one per byte;
// the result holds their int8 values in the same bytes. Two byte permutes
// fetch each index's entry from the low and the high eight, and bit 3 of
// the index picks between them.
__device__ __forceinline__ uint32_t lut16(uint32_t idx, const Lut16 &t)
{
    uint32_t lo3 = idx & 0x07070707u;
    uint32_t pk = lo3 | (lo3 >> 4);
    uint32_t sel = (pk & 0xFFu) | ((pk >> 8) & 0xFF00u);
    uint32_t a = __byte_perm(t.w0, t.w1, sel), b = __byte_perm(t.w2, t.w3, sel);
    uint32_t m = ((idx & 0x08080808u) >> 3) * 0xFFu;
    return (a & ~m) | (b & m);
}

__device__ __forceinline__ float h2f(uint32_t bits16)
{
    return __half2float(__ushort_as_half((unsigned short)(bits16 & 0xffffu)));
}

// SwiGLU's gate: one definition for every kernel that applies it (decode,
// direct, both GEMMs), so all paths round it alike.
__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

// A gated feed-forward's gate by kq_glu (uniform across a launch); GELU in
// the tanh form llama.cpp uses for Gemma, as g sigmoid(2t) = 0.5 g (1 + tanh
// t), since 1 + tanhf(t) cancels for t below about -5. The core checked act.
__device__ __forceinline__ float glu_gate(int act, float g)
{
    if (act == KQ_GLU_GELU) return g / (1.0f + expf(-2 * 0.7978845608028654f * (g + 0.044715f * g * g * g)));
    if (act != KQ_GLU_SILU) __trap();
    return silu(g);
}

// Small non-negative ints to float without the quarter-rate I2F unit:
// 0x4B000000 is 2^23, whose last mantissa bits then hold q exactly.
__device__ __forceinline__ float small_int(uint32_t q, float bias)
{
    return __int_as_float(0x4B000000 | q) - (8388608.0f + bias);
}

// Weights are read once per call: evict-first, so they do not push the
// activations (reused by every warp) out of L1/L2.
__device__ __forceinline__ uint32_t ld_u16x2(const uint8_t *p)  // 2-byte aligned p
{
    const unsigned short *q = reinterpret_cast<const unsigned short *>(p);
    return (uint32_t)__ldcs(q) | ((uint32_t)__ldcs(q + 1) << 16);
}

__device__ __forceinline__ uint2 ld_8_aligned2(const uint8_t *p)
{
    return make_uint2(ld_u16x2(p), ld_u16x2(p + 4));
}

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block.
__device__ __forceinline__ void kscale(const uint8_t *s, int j, float &sc, float &mn)
{
    if (j < 4) {
        sc = (float)(s[j] & 63);
        mn = (float)(s[j + 4] & 63);
    } else {
        sc = (float)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        mn = (float)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// ------------------------------------------------------------ lane pieces

// A lane's raw bytes for one span: the 8 quant bytes (or nibble bytes) of
// its piece, plus the block's scale words.
struct Raw {
    uint2 q;      // quant bytes of the piece
    uint2 h;      // Q5_K: qh bytes; Q6_K: qh bytes
    uint32_t d;   // d (low half) and dmin (high half), or d alone
    uint32_t s;   // Q4_K/Q5_K: scale and min packed as two bytes; Q6_K: int8 scale
};

// The same piece for int8 dot products with quantized x (dp4a): the 8
// quants as bytes (all < 128, so signed and unsigned agree), and
//   sum_i w_i x_i = mul * (sum_i q_i x_i - off * sum_i x_i) - mn * sum_i x_i.
struct Q8 {
    uint32_t q0, q1;
    float mul, mn;
    int off;
};

template <int T> struct Piece;

// Scale j and min of a Q4_K/Q5_K block from its 12 scale bytes as three
// words (same address in every lane: one broadcast); selects, not branches,
// since j differs across the warp.
__device__ __forceinline__ uint32_t kscale_words(uint32_t w0, uint32_t w1, uint32_t w2, int j)
{
    int sh = 8 * (j & 3);
    uint32_t a = w0 >> sh, m = w1 >> sh, c = w2 >> sh;
    uint32_t sc_lo = a & 63, mn_lo = m & 63;
    uint32_t sc_hi = (c & 0xF) | (((a >> 6) & 3) << 4);
    uint32_t mn_hi = ((c >> 4) & 0xF) | (((m >> 6) & 3) << 4);
    return j < 4 ? (sc_lo | (mn_lo << 8)) : (sc_hi | (mn_hi << 8));
}

__device__ __forceinline__ uint32_t kscale_packed(const uint8_t *b, int j)
{
    const uint32_t *w = reinterpret_cast<const uint32_t *>(b + 4);
    return kscale_words(__ldg(w), __ldg(w + 1), __ldg(w + 2), j);
}

template <> struct Piece<T_Q4_K> {
    static constexpr int kBlocksPerSpan = 1, kUnroll = 4;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t, Raw &r)
    {
        const uint8_t *b = row + span * 144;
        r.q = __ldcs(reinterpret_cast<const uint2 *>(b + 16 + 32 * (lane >> 3) + 8 * (lane & 3)));
        r.d = __ldcs(reinterpret_cast<const uint32_t *>(b));
        r.s = kscale_packed(b, lane >> 2);
        return true;
    }
    __device__ static void expand(const Raw &r, int lane, float w[8])
    {
        float ds = h2f(r.d) * small_int(r.s & 0xff, 0.0f);
        float dm = h2f(r.d >> 16) * small_int(r.s >> 8, 0.0f);
        int sh = ((lane >> 2) & 1) * 4;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t word = i < 4 ? r.q.x : r.q.y;
            w[i] = ds * small_int((word >> (8 * (i & 3) + sh)) & 0xF, 0.0f) - dm;
        }
    }
    __device__ static Q8 q8(const Raw &r, int lane)
    {
        int sh = ((lane >> 2) & 1) * 4;
        return {(r.q.x >> sh) & 0x0F0F0F0Fu, (r.q.y >> sh) & 0x0F0F0F0Fu,
                h2f(r.d) * small_int(r.s & 0xff, 0.0f), h2f(r.d >> 16) * small_int(r.s >> 8, 0.0f), 0};
    }
};

template <> struct Piece<T_Q5_K> {
    static constexpr int kBlocksPerSpan = 1, kUnroll = 2; /* qh: more registers per span */
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t, Raw &r)
    {
        const uint8_t *b = row + span * 176;
        r.q = __ldcs(reinterpret_cast<const uint2 *>(b + 48 + 32 * (lane >> 3) + 8 * (lane & 3)));
        r.h = __ldcs(reinterpret_cast<const uint2 *>(b + 16 + 8 * (lane & 3)));
        r.d = __ldcs(reinterpret_cast<const uint32_t *>(b));
        r.s = kscale_packed(b, lane >> 2);
        return true;
    }
    __device__ static void expand(const Raw &r, int lane, float w[8])
    {
        float ds = h2f(r.d) * small_int(r.s & 0xff, 0.0f);
        float dm = h2f(r.d >> 16) * small_int(r.s >> 8, 0.0f);
        int j = lane >> 2, sh = (j & 1) * 4;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t word = i < 4 ? r.q.x : r.q.y;
            uint32_t hw = i < 4 ? r.h.x : r.h.y;
            uint32_t q4 = (word >> (8 * (i & 3) + sh)) & 0xF;
            uint32_t hb = (hw >> (8 * (i & 3) + j)) & 1;
            w[i] = ds * small_int(q4 + 16 * hb, 0.0f) - dm;
        }
    }
    __device__ static Q8 q8(const Raw &r, int lane)
    {
        int j = lane >> 2, sh = (j & 1) * 4;
        uint32_t q0 = ((r.q.x >> sh) & 0x0F0F0F0Fu) | (((r.h.x >> j) & 0x01010101u) << 4);
        uint32_t q1 = ((r.q.y >> sh) & 0x0F0F0F0Fu) | (((r.h.y >> j) & 0x01010101u) << 4);
        return {q0, q1, h2f(r.d) * small_int(r.s & 0xff, 0.0f),
                h2f(r.d >> 16) * small_int(r.s >> 8, 0.0f), 0};
    }
};

template <> struct Piece<T_Q6_K> {
    static constexpr int kBlocksPerSpan = 1, kUnroll = 2;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t, Raw &r)
    {
        const uint8_t *b = row + span * 210;
        int n = lane >> 4, t = (lane >> 2) & 3, l0 = 8 * (lane & 3);
        r.q = ld_8_aligned2(b + 64 * n + 32 * (t & 1) + l0);
        r.h = ld_8_aligned2(b + 128 + 32 * n + l0);
        r.s = (uint32_t)(int32_t)(int8_t)__ldcs(reinterpret_cast<const signed char *>(b + 192 + (lane >> 1)));
        r.d = __ldcs(reinterpret_cast<const unsigned short *>(b + 208));
        return true;
    }
    __device__ static void expand(const Raw &r, int lane, float w[8])
    {
        int t = (lane >> 2) & 3;
        float ds = h2f(r.d) * (float)(int32_t)r.s; /* one I2F per 8 elements */
        int lsh = 4 * (t >> 1), hsh = 2 * t;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t lw = i < 4 ? r.q.x : r.q.y;
            uint32_t hw = i < 4 ? r.h.x : r.h.y;
            uint32_t q = ((lw >> (8 * (i & 3) + lsh)) & 0xF) | (((hw >> (8 * (i & 3) + hsh)) & 3) << 4);
            w[i] = ds * small_int(q, 32.0f);
        }
    }
    __device__ static Q8 q8(const Raw &r, int lane)
    {
        int t = (lane >> 2) & 3, lsh = 4 * (t >> 1), hsh = 2 * t;
        uint32_t q0 = ((r.q.x >> lsh) & 0x0F0F0F0Fu) | (((r.h.x >> hsh) & 0x03030303u) << 4);
        uint32_t q1 = ((r.q.y >> lsh) & 0x0F0F0F0Fu) | (((r.h.y >> hsh) & 0x03030303u) << 4);
        return {q0, q1, h2f(r.d) * (float)(int32_t)r.s, 0.0f, 32};
    }
};

// 32-element blocks: a span is 8 blocks, four lanes per block; a row whose
// K is not a multiple of 256 leaves the last span's upper lanes idle.
template <> struct Piece<T_Q4_0> {
    static constexpr int kBlocksPerSpan = 8, kUnroll = 2;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t nblocks, Raw &r)
    {
        int64_t blk = span * 8 + (lane >> 2);
        if (blk >= nblocks) return false;
        const uint8_t *b = row + blk * 18;
        r.q = ld_8_aligned2(b + 2 + 8 * (lane & 1));
        r.d = __ldcs(reinterpret_cast<const unsigned short *>(b));
        return true;
    }
    __device__ static void expand(const Raw &r, int lane, float w[8])
    {
        float d = h2f(r.d);
        int sh = ((lane >> 1) & 1) * 4;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t word = i < 4 ? r.q.x : r.q.y;
            w[i] = d * small_int((word >> (8 * (i & 3) + sh)) & 0xF, 8.0f);
        }
    }
    __device__ static Q8 q8(const Raw &r, int lane)
    {
        int sh = ((lane >> 1) & 1) * 4;
        return {(r.q.x >> sh) & 0x0F0F0F0Fu, (r.q.y >> sh) & 0x0F0F0F0Fu, h2f(r.d), 0.0f, 8};
    }
};

template <> struct Piece<T_Q8_0> {
    static constexpr int kBlocksPerSpan = 8, kUnroll = 2;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t nblocks, Raw &r)
    {
        int64_t blk = span * 8 + (lane >> 2);
        if (blk >= nblocks) return false;
        const uint8_t *b = row + blk * 34;
        r.q = ld_8_aligned2(b + 2 + 8 * (lane & 3));
        r.d = __ldcs(reinterpret_cast<const unsigned short *>(b));
        return true;
    }
    __device__ static void expand(const Raw &r, int, float w[8])
    {
        float d = h2f(r.d);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t word = i < 4 ? r.q.x : r.q.y;
            /* int8 b as (b ^ 0x80) - 128 */
            w[i] = d * small_int(((word >> (8 * (i & 3))) & 0xFF) ^ 0x80, 128.0f);
        }
    }
    __device__ static Q8 q8(const Raw &r, int) { return {r.q.x, r.q.y, h2f(r.d), 0.0f, 0}; }
};

// The value grids of IQ4_NL/IQ4_XS and MXFP4 (blocks.h), in registers.
__device__ __forceinline__ Lut16 iq4nl_lut()
{
    constexpr Lut16 t{lut_word(kq_iq4nl_values, 0), lut_word(kq_iq4nl_values, 4),
                      lut_word(kq_iq4nl_values, 8), lut_word(kq_iq4nl_values, 12)};
    return t;
}
__device__ __forceinline__ Lut16 mxfp4_lut()
{
    constexpr Lut16 t{lut_word(kq_mxfp4_values, 0), lut_word(kq_mxfp4_values, 4),
                      lut_word(kq_mxfp4_values, 8), lut_word(kq_mxfp4_values, 12)};
    return t;
}

// The MXFP4 block scale (E8M0, halved to match the doubled grid): blocks.h's
// kq_e8m0_half as register bit operations (its memcpy kept the wgmma
// kernel's fragments from staying in registers, ptxas C7513).
__device__ __forceinline__ float e8m0_half(uint32_t e)
{
    e &= 0xFFu;
    return __uint_as_float(e < 2 ? 0x00200000u << e : (e - 1) << 23);
}

// Bits 0-3 of b to bit 4 of bytes 0-3: the fifth bits of four Q5_0/Q5_1 values.
__device__ __forceinline__ uint32_t bits_to_b4(uint32_t b)
{
    return (((b & 0xFu) * 0x00204081u) & 0x01010101u) << 4;
}

// 8 bytes at any address, as aligned words and a funnel shift. The third
// word is read only when the run crosses into it, so no word past the last
// byte is touched (MXFP4's 17-byte blocks).
__device__ __forceinline__ uint2 ld_8_any(const uint8_t *p)
{
    const uint32_t *w = reinterpret_cast<const uint32_t *>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)3);
    uint32_t sh = (uint32_t)(reinterpret_cast<uintptr_t>(p) & 3) * 8;
    uint32_t a = __ldcs(w), b = __ldcs(w + 1), c = sh ? __ldcs(w + 2) : 0u;
    return make_uint2(__funnelshift_r(a, b, sh), __funnelshift_r(b, c, sh));
}

// Eight int8 values of a piece as float.
__device__ __forceinline__ void s8_to_float(uint32_t q0, uint32_t q1, float mul, float w[8])
{
#pragma unroll
    for (int i = 0; i < 8; i++) {
        uint32_t word = i < 4 ? q0 : q1;
        w[i] = mul * small_int(((word >> (8 * (i & 3))) & 0xFF) ^ 0x80, 128.0f);
    }
}

// The 32-value types beside Q4_0 and Q8_0. Their pieces are Q4_0's (four
// lanes per block, lane L taking values 8 (L % 4) .. + 7: nibbles of qs
// bytes 8 (L % 2) .., low or high by (L / 2) % 2); they differ in the block
// size, the scale (fp16 d, or MXFP4's E8M0), a min (Q4_1, Q5_1), a fifth
// bit (Q5_0, Q5_1) and a value grid (IQ4_NL, MXFP4). The Q8 form carries
// the values as int8 (grid values are signed; dp4a takes them as such).
template <int T> struct Leg;
template <> struct Leg<T_Q4_0> { static constexpr int kQs = 2, kQh = 0, kMin = 0, kOff = 8, kLut = 0; };
template <> struct Leg<T_Q4_1> { static constexpr int kQs = 4, kQh = 0, kMin = 2, kOff = 0, kLut = 0; };
template <> struct Leg<T_Q5_0> { static constexpr int kQs = 6, kQh = 2, kMin = 0, kOff = 16, kLut = 0; };
template <> struct Leg<T_Q5_1> { static constexpr int kQs = 8, kQh = 4, kMin = 2, kOff = 0, kLut = 0; };
template <> struct Leg<T_IQ4_NL> { static constexpr int kQs = 2, kQh = 0, kMin = 0, kOff = 0, kLut = 1; };
template <> struct Leg<T_MXFP4> { static constexpr int kQs = 1, kQh = 0, kMin = 0, kOff = 0, kLut = 2; };

template <int T> struct Piece32 {
    using L = Leg<T>;
    static constexpr int kB = TypeInfo<T>::kBytes;
    static constexpr int kBlocksPerSpan = 8, kUnroll = 2;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t nblocks, Raw &r)
    {
        int64_t blk = span * 8 + (lane >> 2);
        if (blk >= nblocks) return false;
        const uint8_t *b = row + blk * kB;
        if constexpr (T == T_MXFP4) {
            r.q = ld_8_any(b + 1 + 8 * (lane & 1));
            r.d = __ldcs(b);
        } else {
            r.q = ld_8_aligned2(b + L::kQs + 8 * (lane & 1));
            r.d = L::kMin ? ld_u16x2(b) : (uint32_t)__ldcs(reinterpret_cast<const unsigned short *>(b));
        }
        // Fifth bits of this lane's 8 values: byte L % 4 of qh.
        if constexpr (L::kQh != 0) r.s = ld_u16x2(b + L::kQh) >> (8 * (lane & 3));
        return true;
    }
    // The 8 values as bytes (unsigned 0..31, or the grid's int8) and the scale.
    __device__ static void codes(const Raw &r, int lane, uint32_t &q0, uint32_t &q1, float &d, float &mn)
    {
        int sh = ((lane >> 1) & 1) * 4;
        q0 = (r.q.x >> sh) & 0x0F0F0F0Fu;
        q1 = (r.q.y >> sh) & 0x0F0F0F0Fu;
        if constexpr (L::kQh != 0) {
            q0 |= bits_to_b4(r.s);
            q1 |= bits_to_b4(r.s >> 4);
        }
        if constexpr (L::kLut != 0) {
            Lut16 t = L::kLut == 1 ? iq4nl_lut() : mxfp4_lut();
            q0 = lut16(q0, t);
            q1 = lut16(q1, t);
        }
        d = T == T_MXFP4 ? e8m0_half(r.d) : h2f(r.d);
        mn = L::kMin ? -h2f(r.d >> 16) : 0.0f;  // w = d q + m: the min enters negated
    }
    __device__ static void expand(const Raw &r, int lane, float w[8])
    {
        uint32_t q0, q1;
        float d, mn;
        codes(r, lane, q0, q1, d, mn);
        if constexpr (L::kLut != 0) {
            s8_to_float(q0, q1, d, w);
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++) {
                uint32_t word = i < 4 ? q0 : q1;
                w[i] = d * small_int((word >> (8 * (i & 3))) & 0xFF, (float)L::kOff) - mn;
            }
        }
    }
    __device__ static Q8 q8(const Raw &r, int lane)
    {
        uint32_t q0, q1;
        float d, mn;
        codes(r, lane, q0, q1, d, mn);
        return {q0, q1, d, mn, L::kOff};
    }
};
template <> struct Piece<T_Q4_1> : Piece32<T_Q4_1> {};
template <> struct Piece<T_Q5_0> : Piece32<T_Q5_0> {};
template <> struct Piece<T_Q5_1> : Piece32<T_Q5_1> {};
template <> struct Piece<T_IQ4_NL> : Piece32<T_IQ4_NL> {};
template <> struct Piece<T_MXFP4> : Piece32<T_MXFP4> {};

// Q2_K, Q3_K: lane L owns values 8L .. 8L + 7 of a block, all in sub-block
// L / 2 (16 values). Half n = L / 16, 2-bit field f = (L % 16) / 4, bytes
// 8 (L % 4) .. + 7 of that half's 32 qs bytes (blocks.h).
template <> struct Piece<T_Q2_K> {
    static constexpr int kBlocksPerSpan = 1, kUnroll = 4;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t, Raw &r)
    {
        const uint8_t *b = row + span * 84;
        r.q = ld_8_aligned2(b + 16 + 32 * (lane >> 4) + 8 * (lane & 3));
        r.d = ld_u16x2(b + 80);
        r.s = __ldcs(b + (lane >> 1));
        return true;
    }
    __device__ static void codes(const Raw &r, int lane, uint32_t &q0, uint32_t &q1, float &mul, float &mn)
    {
        int sh = 2 * ((lane >> 2) & 3);
        q0 = (r.q.x >> sh) & 0x03030303u;
        q1 = (r.q.y >> sh) & 0x03030303u;
        mul = h2f(r.d) * small_int(r.s & 0xF, 0.0f);
        mn = h2f(r.d >> 16) * small_int((r.s >> 4) & 0xF, 0.0f);
    }
    __device__ static void expand(const Raw &r, int lane, float w[8])
    {
        uint32_t q0, q1;
        float mul, mn;
        codes(r, lane, q0, q1, mul, mn);
#pragma unroll
        for (int i = 0; i < 8; i++)
            w[i] = mul * small_int(((i < 4 ? q0 : q1) >> (8 * (i & 3))) & 0xFF, 0.0f) - mn;
    }
    __device__ static Q8 q8(const Raw &r, int lane)
    {
        uint32_t q0, q1;
        float mul, mn;
        codes(r, lane, q0, q1, mul, mn);
        return {q0, q1, mul, mn, 0};
    }
};

// Q3_K's 6-bit scale of sub-block j (0..15) from its 12 scale bytes.
__device__ __forceinline__ int q3k_scale(const uint8_t *s, int j)
{
    int lo = (__ldcs(s + (j & 7)) >> (4 * (j >> 3))) & 0xF;
    int hi = (__ldcs(s + 8 + (j & 3)) >> (2 * (j >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}

template <> struct Piece<T_Q3_K> {
    static constexpr int kBlocksPerSpan = 1, kUnroll = 2;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t, Raw &r)
    {
        const uint8_t *b = row + span * 110;
        r.q = ld_8_aligned2(b + 32 + 32 * (lane >> 4) + 8 * (lane & 3));
        r.h = ld_8_aligned2(b + 8 * (lane & 3));
        r.d = __ldcs(reinterpret_cast<const unsigned short *>(b + 108));
        r.s = (uint32_t)q3k_scale(b + 96, lane >> 1);
        return true;
    }
    // Values 0..7 (two low bits, the high bit adds 4); w = d sc (q - 4).
    __device__ static void codes(const Raw &r, int lane, uint32_t &q0, uint32_t &q1, float &mul)
    {
        int sh = 2 * ((lane >> 2) & 3), hb = lane >> 2;  // hmask bit: value / 32
        q0 = ((r.q.x >> sh) & 0x03030303u) | (((r.h.x >> hb) & 0x01010101u) << 2);
        q1 = ((r.q.y >> sh) & 0x03030303u) | (((r.h.y >> hb) & 0x01010101u) << 2);
        mul = h2f(r.d) * (float)(int32_t)r.s;
    }
    __device__ static void expand(const Raw &r, int lane, float w[8])
    {
        uint32_t q0, q1;
        float mul;
        codes(r, lane, q0, q1, mul);
#pragma unroll
        for (int i = 0; i < 8; i++)
            w[i] = mul * small_int(((i < 4 ? q0 : q1) >> (8 * (i & 3))) & 0xFF, 4.0f);
    }
    __device__ static Q8 q8(const Raw &r, int lane)
    {
        uint32_t q0, q1;
        float mul;
        codes(r, lane, q0, q1, mul);
        return {q0, q1, mul, 0.0f, 4};
    }
};

// IQ4_XS: lane L owns values 8 (L % 4) .. + 7 of sub-block j = L / 4
// (32 values): nibbles of qs[16 j + 8 (L % 2) ..], low or high by (L / 2) % 2.
template <> struct Piece<T_IQ4_XS> {
    static constexpr int kBlocksPerSpan = 1, kUnroll = 4;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t, Raw &r)
    {
        const uint8_t *b = row + span * 136;
        int j = lane >> 2;
        r.q = ld_8_aligned2(b + 8 + 16 * j + 8 * (lane & 1));
        r.d = ld_u16x2(b);  // d, scales_h
        r.s = __ldcs(b + 4 + (j >> 1));
        return true;
    }
    __device__ static void codes(const Raw &r, int lane, uint32_t &q0, uint32_t &q1, float &mul)
    {
        int sh = ((lane >> 1) & 1) * 4, j = lane >> 2;
        Lut16 t = iq4nl_lut();
        q0 = lut16((r.q.x >> sh) & 0x0F0F0F0Fu, t);
        q1 = lut16((r.q.y >> sh) & 0x0F0F0F0Fu, t);
        int ls = (int)((r.s >> (4 * (j & 1))) & 0xF) | (int)(((r.d >> (16 + 2 * j)) & 3) << 4);
        mul = h2f(r.d) * (float)(ls - 32);
    }
    __device__ static void expand(const Raw &r, int lane, float w[8])
    {
        uint32_t q0, q1;
        float mul;
        codes(r, lane, q0, q1, mul);
        s8_to_float(q0, q1, mul, w);
    }
    __device__ static Q8 q8(const Raw &r, int lane)
    {
        uint32_t q0, q1;
        float mul;
        codes(r, lane, q0, q1, mul);
        return {q0, q1, mul, 0.0f, 0};
    }
};

// ------------------------------------------------------------ wide pieces

// Q4_K, Q5_K and Q6_K for int8 x: lane L owns a whole 32-value sub-block,
// j = L % 8 of block L / 8 of a 4-block (1024-value) span, so the scale
// decode and address arithmetic serve 32 values instead of 8, and the quant
// bytes come as two 16-byte loads (both blocks are 16-byte aligned). The
// lane's x is 32 contiguous values at 32 L of the span.
struct RawW {
    uint4 q0, q1;  // the 32 qs bytes holding sub-block j (low or high nibbles)
    uint4 h0, h1;  // Q5_K: the block's 32 qh bytes
    uint32_t d, s;
};

// How a lane's 32 products combine: values 0-15 scale by lo, 16-31 by hi,
//   sum w x = lo (dot_lo - off sx_lo) + hi (dot_hi - off sx_hi) - mn sx
// (mn_hi: the min of values 16-31 where it differs, Q2_K; the streaming
// kernel's general form, stream_types.cuh, reads it).
struct WideScale {
    float lo, hi, mn;
    int off;
    float mn_hi;
};

template <int T> struct Wide;

template <> struct Wide<T_Q4_K> {
    static constexpr int kUnroll = 2;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t nblocks, RawW &r)
    {
        int64_t blk = span * 4 + (lane >> 3);
        if (blk >= nblocks) return false;
        const uint8_t *b = row + blk * 144;
        int j = lane & 7;
        const uint4 *q = reinterpret_cast<const uint4 *>(b + 16 + 32 * (j >> 1));
        r.q0 = __ldcs(q);
        r.q1 = __ldcs(q + 1);
        r.d = __ldcs(reinterpret_cast<const uint32_t *>(b));
        r.s = kscale_packed(b, j);
        return true;
    }
    __device__ static void q8(const RawW &r, int lane, uint32_t q[8], WideScale &sc)
    {
        int sh = (lane & 1) * 4;
        const uint32_t w[8] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w, r.q1.x, r.q1.y, r.q1.z, r.q1.w};
#pragma unroll
        for (int i = 0; i < 8; i++) q[i] = (w[i] >> sh) & 0x0F0F0F0Fu;
        sc.lo = sc.hi = h2f(r.d) * small_int(r.s & 0xff, 0.0f);
        sc.mn = h2f(r.d >> 16) * small_int(r.s >> 8, 0.0f);
        sc.off = 0;
    }
};

template <> struct Wide<T_Q5_K> {
    static constexpr int kUnroll = 1;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t nblocks, RawW &r)
    {
        int64_t blk = span * 4 + (lane >> 3);
        if (blk >= nblocks) return false;
        const uint8_t *b = row + blk * 176;
        int j = lane & 7;
        const uint4 *q = reinterpret_cast<const uint4 *>(b + 48 + 32 * (j >> 1));
        const uint4 *h = reinterpret_cast<const uint4 *>(b + 16);
        r.q0 = __ldcs(q);
        r.q1 = __ldcs(q + 1);
        r.h0 = __ldcs(h);
        r.h1 = __ldcs(h + 1);
        r.d = __ldcs(reinterpret_cast<const uint32_t *>(b));
        r.s = kscale_packed(b, j);
        return true;
    }
    __device__ static void q8(const RawW &r, int lane, uint32_t q[8], WideScale &sc)
    {
        int j = lane & 7, sh = (j & 1) * 4;
        const uint32_t w[8] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w, r.q1.x, r.q1.y, r.q1.z, r.q1.w};
        const uint32_t h[8] = {r.h0.x, r.h0.y, r.h0.z, r.h0.w, r.h1.x, r.h1.y, r.h1.z, r.h1.w};
#pragma unroll
        for (int i = 0; i < 8; i++)
            q[i] = ((w[i] >> sh) & 0x0F0F0F0Fu) | (((h[i] >> j) & 0x01010101u) << 4);
        sc.lo = sc.hi = h2f(r.d) * small_int(r.s & 0xff, 0.0f);
        sc.mn = h2f(r.d >> 16) * small_int(r.s >> 8, 0.0f);
        sc.off = 0;
    }
};

// Q6_K: lane L takes quarter t of half n of its block (u = L % 8 = 4n + t),
// values 32u .. 32u + 31, with two scales (16 values each). The block is
// only 2-byte aligned, so its 32-byte runs come as nine aligned words and a
// funnel shift (the ninth word stays inside the block: ql ends at 128, qh
// at 192, of 210 bytes).
__device__ __forceinline__ void ld32_aligned2(const uint8_t *p, uint4 &lo, uint4 &hi)
{
    const uint32_t *w = reinterpret_cast<const uint32_t *>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)3);
    uint32_t sh = (uint32_t)(reinterpret_cast<uintptr_t>(p) & 3) * 8;
    uint32_t v[9];
#pragma unroll
    for (int i = 0; i < 9; i++) v[i] = __ldcs(w + i);
    uint32_t o[8];
#pragma unroll
    for (int i = 0; i < 8; i++) o[i] = __funnelshift_r(v[i], v[i + 1], sh);
    lo = make_uint4(o[0], o[1], o[2], o[3]);
    hi = make_uint4(o[4], o[5], o[6], o[7]);
}

template <> struct Wide<T_Q6_K> {
    static constexpr int kUnroll = 1;
    __device__ static bool load(const uint8_t *row, int64_t span, int lane, int64_t nblocks, RawW &r)
    {
        int64_t blk = span * 4 + (lane >> 3);
        if (blk >= nblocks) return false;
        const uint8_t *b = row + blk * 210;
        int u = lane & 7, n = u >> 2, t = u & 3;
        ld32_aligned2(b + 64 * n + 32 * (t & 1), r.q0, r.q1);
        ld32_aligned2(b + 128 + 32 * n, r.h0, r.h1);
        r.s = __ldcs(reinterpret_cast<const unsigned short *>(b + 192 + 2 * u));
        r.d = __ldcs(reinterpret_cast<const unsigned short *>(b + 208));
        return true;
    }
    __device__ static void q8(const RawW &r, int lane, uint32_t q[8], WideScale &sc)
    {
        int t = lane & 3, lsh = 4 * (t >> 1), hsh = 2 * t;
        const uint32_t w[8] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w, r.q1.x, r.q1.y, r.q1.z, r.q1.w};
        const uint32_t h[8] = {r.h0.x, r.h0.y, r.h0.z, r.h0.w, r.h1.x, r.h1.y, r.h1.z, r.h1.w};
#pragma unroll
        for (int i = 0; i < 8; i++)
            q[i] = ((w[i] >> lsh) & 0x0F0F0F0Fu) | (((h[i] >> hsh) & 0x03030303u) << 4);
        float d = h2f(r.d);
        sc.lo = d * (float)(int8_t)(r.s & 0xff);
        sc.hi = d * (float)(int8_t)(r.s >> 8);
        sc.mn = 0.0f;
        sc.off = 32;
    }
};

// ------------------------------------------------------------ one element

// Element k of a row of type T, straight from blocks.h's fields (bytes
// read one at a time: any alignment).
__device__ __forceinline__ uint32_t b16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
__device__ __forceinline__ int nib32(const uint8_t *qs, int e)  // Q4_0 nibble order
{
    return e < 16 ? (qs[e] & 0xF) : (qs[e - 16] >> 4);
}

template <int T> __device__ __forceinline__ float deq1_t(const uint8_t *row, int64_t k);
template <> __device__ __forceinline__ float deq1_t<T_Q4_0>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 32) * 18;
    return h2f(b16(b)) * (float)(nib32(b + 2, (int)(k % 32)) - 8);
}
template <> __device__ __forceinline__ float deq1_t<T_Q4_1>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 32) * 20;
    return h2f(b16(b)) * (float)nib32(b + 4, (int)(k % 32)) + h2f(b16(b + 2));
}
template <> __device__ __forceinline__ float deq1_t<T_Q5_0>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 32) * 22;
    int e = (int)(k % 32);
    int q = nib32(b + 6, e) | (((b[2 + e / 8] >> (e % 8)) & 1) << 4);
    return h2f(b16(b)) * (float)(q - 16);
}
template <> __device__ __forceinline__ float deq1_t<T_Q5_1>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 32) * 24;
    int e = (int)(k % 32);
    int q = nib32(b + 8, e) | (((b[4 + e / 8] >> (e % 8)) & 1) << 4);
    return h2f(b16(b)) * (float)q + h2f(b16(b + 2));
}
template <> __device__ __forceinline__ float deq1_t<T_Q8_0>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 32) * 34;
    return h2f(b16(b)) * (float)(int8_t)b[2 + k % 32];
}
template <> __device__ __forceinline__ float deq1_t<T_IQ4_NL>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 32) * 18;
    int v = (int)(int8_t)(lut16((uint32_t)nib32(b + 2, (int)(k % 32)), iq4nl_lut()) & 0xFF);
    return h2f(b16(b)) * (float)v;
}
template <> __device__ __forceinline__ float deq1_t<T_MXFP4>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 32) * 17;
    int v = (int)(int8_t)(lut16((uint32_t)nib32(b + 1, (int)(k % 32)), mxfp4_lut()) & 0xFF);
    return e8m0_half(b[0]) * (float)v;
}
template <> __device__ __forceinline__ float deq1_t<T_Q2_K>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 256) * 84;
    int e = (int)(k % 256), n = e / 128, f = (e % 128) / 32, l = e % 32, sc = b[e / 16];
    int q = (b[16 + 32 * n + l] >> (2 * f)) & 3;
    return h2f(b16(b + 80)) * (float)(sc & 0xF) * (float)q - h2f(b16(b + 82)) * (float)(sc >> 4);
}
template <> __device__ __forceinline__ float deq1_t<T_Q3_K>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 256) * 110;
    int e = (int)(k % 256), n = e / 128, f = (e % 128) / 32, l = e % 32, j = e / 16;
    int q = ((b[32 + 32 * n + l] >> (2 * f)) & 3) - (((b[l] >> (e / 32)) & 1) ? 0 : 4);
    int lo = (b[96 + (j & 7)] >> (4 * (j >> 3))) & 0xF, hi = (b[104 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return h2f(b16(b + 108)) * (float)((lo | (hi << 4)) - 32) * (float)q;
}
template <> __device__ __forceinline__ float deq1_t<T_Q4_K>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 256) * 144;
    int e = (int)(k % 256), c = e / 64, j = e / 32, l = e % 32;
    int q = (b[16 + 32 * c + l] >> (4 * (j & 1))) & 0xF;
    float sc, mn;
    kscale(b + 4, j, sc, mn);
    return h2f(b16(b)) * sc * (float)q - h2f(b16(b + 2)) * mn;
}
template <> __device__ __forceinline__ float deq1_t<T_Q5_K>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 256) * 176;
    int e = (int)(k % 256), c = e / 64, j = e / 32, l = e % 32;
    int q = ((b[48 + 32 * c + l] >> (4 * (j & 1))) & 0xF) + 16 * ((b[16 + l] >> j) & 1);
    float sc, mn;
    kscale(b + 4, j, sc, mn);
    return h2f(b16(b)) * sc * (float)q - h2f(b16(b + 2)) * mn;
}
template <> __device__ __forceinline__ float deq1_t<T_Q6_K>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 256) * 210;
    int e = (int)(k % 256), n = e / 128, t = (e % 128) / 32, l = e % 32;
    int ql = b[64 * n + 32 * (t & 1) + l], qh = b[128 + 32 * n + l];
    int q = ((ql >> (4 * (t >> 1))) & 0xF) | (((qh >> (2 * t)) & 3) << 4);
    return h2f(b16(b + 208)) * (float)(int8_t)b[192 + e / 16] * (float)(q - 32);
}
template <> __device__ __forceinline__ float deq1_t<T_IQ4_XS>(const uint8_t *row, int64_t k)
{
    const uint8_t *b = row + (k / 256) * 136;
    int e = (int)(k % 256), j = e / 32;
    int ls = ((b[4 + j / 2] >> (4 * (j % 2))) & 0xF) | (((int)(b16(b + 2) >> (2 * j)) & 3) << 4);
    int v = (int)(int8_t)(lut16((uint32_t)nib32(b + 8 + 16 * j, e % 32), iq4nl_lut()) & 0xFF);
    return h2f(b16(b)) * (float)(ls - 32) * (float)v;
}

// Any loadable type; the backend refuses others at load, so the default
// traps rather than returning a plausible value.
__device__ __forceinline__ float deq1(int type, const uint8_t *row, int64_t k)
{
    switch (type) {
    case T_F32: return reinterpret_cast<const float *>(row)[k];
    case T_F16: return h2f(reinterpret_cast<const unsigned short *>(row)[k]);
    case T_BF16:
        return __uint_as_float((uint32_t)reinterpret_cast<const unsigned short *>(row)[k] << 16);
#define KQ_CUDA_DEQ1_CASE(ID, name, BLOCK, elems, act) \
    case ID: return deq1_t<ID>(row, k);
        KQ_QUANT_TYPES(KQ_CUDA_DEQ1_CASE)
#undef KQ_CUDA_DEQ1_CASE
    default: __trap(); return __int_as_float(0x7fc00000);
    }
}

}  // namespace kqc

#endif
