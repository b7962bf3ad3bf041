// Device-side decoding of the weight blocks (FORMATS.md), three ways:
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

namespace kqc {

enum : int {
    T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q8_0 = 8, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14,
    T_BF16 = 30
};

__device__ __forceinline__ float h2f(uint32_t bits16)
{
    return __half2float(__ushort_as_half((unsigned short)(bits16 & 0xffffu)));
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
//   sum w x = lo (dot_lo - off sx_lo) + hi (dot_hi - off sx_hi) - mn sx.
struct WideScale {
    float lo, hi, mn;
    int off;
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

__device__ __forceinline__ float deq1(int type, const uint8_t *row, int64_t k)
{
    switch (type) {
    case T_F32: return reinterpret_cast<const float *>(row)[k];
    case T_F16: return h2f(reinterpret_cast<const unsigned short *>(row)[k]);
    case T_BF16:
        return __uint_as_float((uint32_t)reinterpret_cast<const unsigned short *>(row)[k] << 16);
    case T_Q4_0: {
        const uint8_t *b = row + (k / 32) * 18;
        int e = (int)(k % 32);
        int q = e < 16 ? (b[2 + e] & 0xF) : (b[2 + e - 16] >> 4);
        return h2f(*reinterpret_cast<const unsigned short *>(b)) * (float)(q - 8);
    }
    case T_Q8_0: {
        const uint8_t *b = row + (k / 32) * 34;
        return h2f(*reinterpret_cast<const unsigned short *>(b)) * (float)(int8_t)b[2 + k % 32];
    }
    case T_Q4_K:
    case T_Q5_K: {
        int bs = type == T_Q4_K ? 144 : 176, qo = type == T_Q4_K ? 16 : 48;
        const uint8_t *b = row + (k / 256) * bs;
        int e = (int)(k % 256), c = e / 64, j = e / 32, l = e % 32;
        int q = (b[qo + 32 * c + l] >> (4 * (j & 1))) & 0xF;
        if (type == T_Q5_K) q += 16 * ((b[16 + l] >> j) & 1);
        float sc, mn;
        kscale(b + 4, j, sc, mn);
        const unsigned short *dm = reinterpret_cast<const unsigned short *>(b);
        return h2f(dm[0]) * sc * (float)q - h2f(dm[1]) * mn;
    }
    case T_Q6_K: {
        const uint8_t *b = row + (k / 256) * 210;
        int e = (int)(k % 256), n = e / 128, t = (e % 128) / 32, l = e % 32;
        int ql = b[64 * n + 32 * (t & 1) + l], qh = b[128 + 32 * n + l];
        int q = ((ql >> (4 * (t >> 1))) & 0xF) | (((qh >> (2 * t)) & 3) << 4);
        float d = h2f(*reinterpret_cast<const unsigned short *>(b + 208));
        return d * (float)(int8_t)b[192 + e / 16] * (float)(q - 32);
    }
    default: return 0.0f;  // unreachable: the core admits only the types above
    }
}

}  // namespace kqc

#endif
