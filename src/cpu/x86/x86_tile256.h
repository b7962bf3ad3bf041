/* The tile loop every 256-element x86 kernel of x86_q2_k_q3_k.h and
 * x86_iq4_xs.h shares (the order and prefetch of avx2_q4_k_q5_k.c): with
 * nc <= KQ_X86_STREAM_NC each weight row streams through K alone, else
 * blocks go outer and the tile's rows inner. BLOCK(blk, ab, NC, acc) adds
 * one row's block against the NC activation blocks ab[] into acc[]. */
#ifndef KQ_CPU_X86_TILE256_H
#define KQ_CPU_X86_TILE256_H

#define KQ_X86_TILE256(fn, BLOCK, BB)                                                          \
    KQ_X86_INLINE void fn(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,          \
                          size_t a_stride, const int NC, int64_t n_blocks, float *out,          \
                          int64_t ldo)                                                          \
    {                                                                                           \
        const kq_act256 *ab[KQ_X86_NC];                                                         \
        if (NC <= KQ_X86_STREAM_NC) {                                                           \
            for (int r = 0; r < nr; r++) {                                                      \
                __m256 acc[KQ_X86_NC];                                                          \
                for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();                      \
                const uint8_t *blk = w + (size_t)r * w_stride;                                  \
                for (int64_t b = 0; b < n_blocks; b++, blk += (BB)) {                           \
                    kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, (BB));                         \
                    for (int c = 0; c < NC; c++)                                                \
                        ab[c] = (const kq_act256 *)(const void *)(a + (size_t)c * a_stride) + b; \
                    BLOCK(blk, ab, NC, acc);                                                    \
                }                                                                               \
                for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = kq_x86_hsum(acc[c]);  \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        __m256 acc[KQ_X86_MR][KQ_X86_NC];                                                       \
        for (int r = 0; r < nr; r++)                                                            \
            for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps();                       \
        for (int64_t b = 0; b < n_blocks; b++) {                                                \
            for (int c = 0; c < NC; c++)                                                        \
                ab[c] = (const kq_act256 *)(const void *)(a + (size_t)c * a_stride) + b;        \
            for (int r = 0; r < nr; r++) {                                                      \
                const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * (BB);               \
                kq_x86_prefetch_block(blk + KQ_X86_PF_BYTES, (BB));                             \
                BLOCK(blk, ab, NC, acc[r]);                                                     \
            }                                                                                   \
        }                                                                                       \
        for (int r = 0; r < nr; r++)                                                            \
            for (int c = 0; c < NC; c++) out[(int64_t)c * ldo + r] = kq_x86_hsum(acc[r][c]);    \
    }

/* The tile function (nc dispatched to a constant NC) and its table:
 * [0] 4x4 tiles (decode), [1] 4x8. */
#define KQ_X86_T256_N(tile_fn, N) tile_fn(w, w_stride, nr, a, a_stride, N, n_blocks, out, ldo)
#define KQ_X86_TILE256_TABLE(name, tile_fn, fn)                                                \
    static void fn(const uint8_t *w, size_t w_stride, int nr, const uint8_t *a,                 \
                   size_t a_stride, int nc, int64_t n_blocks, float *out, int64_t ldo)          \
    {                                                                                           \
        switch (nc) {                                                                           \
        case 1: KQ_X86_T256_N(tile_fn, 1); break;                                               \
        case 2: KQ_X86_T256_N(tile_fn, 2); break;                                               \
        case 3: KQ_X86_T256_N(tile_fn, 3); break;                                               \
        case 4: KQ_X86_T256_N(tile_fn, 4); break;                                               \
        case 5: KQ_X86_T256_N(tile_fn, 5); break;                                               \
        case 6: KQ_X86_T256_N(tile_fn, 6); break;                                               \
        case 7: KQ_X86_T256_N(tile_fn, 7); break;                                               \
        default: KQ_X86_T256_N(tile_fn, 8); break;                                              \
        }                                                                                       \
    }                                                                                           \
    const kq_ukernel KQ_X86_TABLE(name)[2] = {                                                  \
        {#name " " KQ_X86_LABEL " 4x4", 4, 4, fn},                                              \
        {#name " " KQ_X86_LABEL " 4x8", 4, 8, fn},                                              \
    };

#endif
