/* The CPU backend's micro-kernel interface (BLIS style).
 *
 * Drivers (the .c files of src/cpu/) own the loops over rows, tokens, experts and parts,
 * the cache blocking and the threads. A micro-kernel owns one thing: the dot
 * products of a small tile of weight rows with a small tile of activation
 * rows over the whole K, for one weight type on one instruction set.
 *
 * Activations are quantized to int8 blocks once per call (scalar code,
 * kq__act_quantize) and every ISA reads the same blocks, so the ISAs differ
 * from each other only by float summation order:
 *   - the 32-element types (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, mxfp4)
 *     pair with kq_act32 (32 values, K % 32 == 0)
 *   - the 256-element super-blocks (q2_K .. q6_K, iq4_xs) with kq_act256
 *     (256 values, K % 256 == 0)
 *   (the act column of formats/type_list.h)
 * Weight rows are the GGUF bytes as mapped: any byte alignment (a q6_K row
 * is 210 * K/256 bytes), so kernels use unaligned loads on weights.
 * Activation blocks sit in 64-byte-aligned scratch; kq_act256 is 64-byte
 * sized, kq_act32 is not (40 bytes): use unaligned loads there too.
 *
 * Every path must compute the same mathematical value: for weight row r and
 * activation row c,
 *   out = sum over blocks b of  dequant(w_r, b) . (a_c.d[b] * a_c.q[b])
 * where dequant is exactly formats/ (docs/formats.md). Only the float rounding of
 * the partial sums may differ between ISAs. */
#ifndef KQ_CPU_UKERNEL_H
#define KQ_CPU_UKERNEL_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- activations */

typedef enum kq_act_kind {
    KQ_ACT_32 = 0,   /* kq_act32: for the 32-element block types */
    KQ_ACT_256 = 1,  /* kq_act256: for the 256-element super-blocks */
    KQ_ACT_32X8 = 2, /* kq_act32x8: kq_act32 of 8 rows interleaved (variant 2) */
    KQ_ACT_KINDS = 3
} kq_act_kind;

/* 32 activations: x[j] ~= d * q[j], d = max|x| / 127, q = round-half-even(x / d). */
typedef struct kq_act32 {
    int8_t q[32];
    float d;
    int32_t sum; /* sum of q[0..31]: the min term of q4_1 / q5_1 (m * d * sum) */
} kq_act32;

/* 256 activations, one scale; bsum[g] = sum of q[16g .. 16g+15] (the k-quant
 * mins: q4_K/q5_K subtract dmin * m_j * (bsum[2j] + bsum[2j+1]), q2_K
 * dmin * m_g * bsum[g]; q6_K's -32 offset is 32 * scale * bsum[g], q3_K's
 * -4 likewise). */
typedef struct kq_act256 {
    int8_t q[256];
    int16_t bsum[16];
    float d;
    int32_t pad_[7]; /* to 320 bytes: each block starts on a 64-byte line */
} kq_act256;

/* The kq_act32 blocks of 8 consecutive activation rows (a tile; rows past
 * the last are zero), interleaved so that one 32-byte load holds 4 values
 * of each of the 8 rows: q[g][4 * r + t] is value 4 * g + t of row r's
 * block, d[r] and sum[r] its scale and sum. An int8 kernel then puts the 8
 * rows in the 8 lanes of its accumulators and broadcasts 4 weights at a
 * time (variant 2 below). A tile of n_blocks blocks is n_blocks of these:
 * 320 bytes a block, 40 a row, as kq_act32, so row c's tile starts at
 * c / 8 * 8 * (the kq_act32 row stride). */
typedef struct kq_act32x8 {
    int8_t q[8][32];
    float d[8];
    int32_t sum[8];
} kq_act32x8;

_Static_assert(sizeof(kq_act32) == 40, "kq_act32 is 40 bytes");
_Static_assert(sizeof(kq_act32x8) == 8 * sizeof(kq_act32), "kq_act32x8 is 8 rows of kq_act32");
_Static_assert(sizeof(kq_act256) == 320, "kq_act256 is 320 bytes");

/* Elements per block and bytes per block of an activation kind. */
static inline int kq__act_block_elems(kq_act_kind a) { return a == KQ_ACT_256 ? 256 : 32; }
/* Per row: kq_act32x8 holds 8 rows' blocks in 8 * 40 bytes. */
static inline size_t kq__act_block_bytes(kq_act_kind a)
{
    return a == KQ_ACT_256 ? sizeof(kq_act256) : sizeof(kq_act32);
}

/* The activation kind a weight type's int8 kernels read; -1 for weight types
 * computed in float (f32, f16, bf16). */
int kq__act_kind_of(int weight_type);

/* Quantizes one row of k floats (k a multiple of the block) into k / block
 * blocks at dst. Scalar and deterministic: the same bytes on every ISA.
 * A block of zeros has d = 0 and q = 0. Non-finite inputs give a
 * non-finite output through d (as the reference would give). */
void kq__act_quantize(kq_act_kind a, const float *x, void *dst, int64_t k);

/* The same blocks as kq__act_quantize(KQ_ACT_32, ...) of one row, written
 * as row `row` (0..7) of the kq_act32x8 tile at tile (k / 32 blocks). */
void kq__act_quantize_x8(const float *x, void *tile, int row, int64_t k);

/* ---------------------------------------------------------------- micro-kernels */

/* One tile: for r < nr and c < nc,
 *   out[c * ldo + r] = dot(weight row r, activation row c)
 * Weight row r starts at w + r * w_stride (bytes), activation row c at
 * a + c * a_stride (bytes), each n_blocks blocks long (n_blocks = K / 256 for
 * k-quants, K / 32 for q4_0 and q8_0). 1 <= nr <= kernel.mr and
 * 1 <= nc <= kernel.nc: drivers call with smaller edges at the ends. */
typedef void (*kq_tile_fn)(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,
                           size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo);

typedef struct kq_ukernel {
    const char *name; /* "q4_K avx2 4x4" for logs and test messages */
    int mr;           /* most weight rows per tile */
    int nc;           /* most activation rows per tile */
    kq_tile_fn tile;
} kq_ukernel;

typedef enum kq_isa {
    KQ_ISA_SCALAR = 0,
    KQ_ISA_AVX2 = 1,
    KQ_ISA_AVX512 = 2, /* AVX-512 F/BW/VL, VNNI used where present */
    KQ_ISA_NEON = 3,   /* dotprod (sdot) used where present */
    KQ_ISA_COUNT = 4
} kq_isa;

/* "scalar", "avx2", "avx512", "neon". */
const char *kq__isa_name(kq_isa isa);
/* 1 if this build has the ISA's code and this CPU can run it. */
int kq__isa_available(kq_isa isa);
/* The widest available ISA, or the one KQ_CPU_ISA names. Returns -1 and
 * fills err when KQ_CPU_ISA names an unknown or unavailable one. */
int kq__isa_select(char *err, size_t cap);

/* A tile kernel for (isa, weight type, variant). variant 0 is the kernel for
 * small tiles (decode, m <= 16); variant 1, where an ISA has one, is tuned
 * for large m (it may equal variant 0). Variant 2, where an ISA has one
 * (NULL elsewhere, with no fallback), is another large-m kernel that reads
 * kq_act32x8 tiles: `a` is a tile's start (nc <= 8 of its rows wanted) and
 * a_stride is unused; only drivers whose activation rows are consecutive
 * and tile-aligned (the dense ones, from m = 8) take it. NULL for float types and for an ISA
 * this CPU cannot run (the backend's open then fails). Each ISA folder
 * provides one lookup function of this shape (kq__ukernel_scalar,
 * kq__ukernel_avx2, ...), a switch that expands KQ_QUANT_TYPES
 * (formats/type_list.h), so a type without a kernel does not compile. */
const kq_ukernel *kq__ukernel(kq_isa isa, int weight_type, int variant);

const kq_ukernel *kq__ukernel_scalar(int weight_type, int variant);
#if defined(__x86_64__)
const kq_ukernel *kq__ukernel_avx2(int weight_type, int variant);
const kq_ukernel *kq__ukernel_avx512(int weight_type, int variant);
/* Variant 2 on AVX2: q4_0, q4_1, q5_0, q5_1 and mxfp4; NULL for the rest. */
const kq_ukernel *kq__ukernel_avx2_x8(int weight_type);
#endif
#if defined(__aarch64__)
const kq_ukernel *kq__ukernel_neon(int weight_type, int variant);
#endif

#endif
