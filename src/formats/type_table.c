/* Every ggml type id a GGUF file may hold, with its block geometry (as gguf's
 * GGML_QUANT_SIZES and ggml's type_traits give it) and, for the types kquant
 * converts, the reference row converters. Removed ids (4, 5, 31..33, 36..38)
 * have no entry. */
#include "core/checked.h"
#include "formats.h"

#include "kquant.h"
#include "rows.h"

#define QK_K 256

/* A type whose bytes kquant can size but not convert. */
#define GEOM(id, nm, elems, bytes) \
    [id] = {.type = (id), .name = (nm), .block_elems = (elems), .block_bytes = (bytes)}
/* A type kquant converts both ways; weight = 1 if loadable for compute. */
#define CONV(id, nm, elems, bytes, fn, weight)                                          \
    [id] = {.type = (id), .name = (nm), .block_elems = (elems), .block_bytes = (bytes), \
            .to_float = kq__##fn##_to_float, .from_float = kq__##fn##_from_float,       \
            .is_weight = (weight)}

/* A weight type kquant decodes but cannot encode yet. */
#define DEQ(id, nm, elems, bytes, fn)                                                   \
    [id] = {.type = (id), .name = (nm), .block_elems = (elems), .block_bytes = (bytes), \
            .to_float = kq__##fn##_to_float, .is_weight = 1}

static const kq_type_traits g_types[] = {
    CONV(0, "f32", 1, 4, f32, 1),
    CONV(1, "f16", 1, 2, f16, 1),
    CONV(2, "q4_0", 32, 2 + 16, q4_0, 1),
    DEQ(3, "q4_1", 32, 2 + 2 + 16, q4_1),
    DEQ(6, "q5_0", 32, 2 + 4 + 16, q5_0),
    DEQ(7, "q5_1", 32, 2 + 2 + 4 + 16, q5_1),
    CONV(8, "q8_0", 32, 2 + 32, q8_0, 1),
    GEOM(9, "q8_1", 32, 4 + 4 + 32),
    DEQ(10, "q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4, q2_K),
    DEQ(11, "q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12, q3_K),
    CONV(12, "q4_K", QK_K, 2 + 2 + QK_K / 2 + 12, q4_K, 1),
    CONV(13, "q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12, q5_K, 1),
    CONV(14, "q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16, q6_K, 1),
    CONV(15, "q8_K", QK_K, 4 + QK_K + QK_K / 8, q8_K, 0), /* activations only */
    GEOM(16, "iq2_xxs", QK_K, 2 + QK_K / 4),
    GEOM(17, "iq2_xs", QK_K, 2 + QK_K / 4 + QK_K / 32),
    GEOM(18, "iq3_xxs", QK_K, 2 + QK_K / 4 + QK_K / 8),
    GEOM(19, "iq1_s", QK_K, 2 + QK_K / 8 + QK_K / 16),
    DEQ(20, "iq4_nl", 32, 2 + 16, iq4_nl),
    GEOM(21, "iq3_s", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
    GEOM(22, "iq2_s", QK_K, 2 + QK_K / 4 + QK_K / 16),
    DEQ(23, "iq4_xs", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64, iq4_xs),
    GEOM(24, "i8", 1, 1),
    GEOM(25, "i16", 1, 2),
    GEOM(26, "i32", 1, 4),
    GEOM(27, "i64", 1, 8),
    GEOM(28, "f64", 1, 8),
    GEOM(29, "iq1_m", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
    CONV(30, "bf16", 1, 2, bf16, 1),
    GEOM(34, "tq1_0", QK_K, 2 + 4 * 13),
    GEOM(35, "tq2_0", QK_K, 2 + 64),
    DEQ(39, "mxfp4", 32, 1 + 16, mxfp4),
    GEOM(40, "nvfp4", 64, 4 + 32),
    GEOM(41, "q1_0", 128, 2 + 16),
};

const kq_type_traits *kq__type_traits(int type)
{
    if (type < 0 || type >= (int)(sizeof g_types / sizeof g_types[0])) return NULL;
    const kq_type_traits *t = &g_types[type];
    return t->name ? t : NULL;
}

kq_size_check kq__tensor_bytes(const kq_type_traits *t, const int64_t ne[4], uint64_t *row_bytes,
                               uint64_t *total_bytes)
{
    if (ne[0] % t->block_elems != 0) return KQ_SIZE_PARTIAL_BLOCK;
    uint64_t row, total;
    if (kq__mul_u64((uint64_t)(ne[0] / t->block_elems), (uint64_t)t->block_bytes, &row))
        return KQ_SIZE_OVERFLOW;
    total = row;
    for (int d = 1; d < 4; d++)
        if (kq__mul_u64(total, (uint64_t)ne[d], &total)) return KQ_SIZE_OVERFLOW;
    *row_bytes = row;
    *total_bytes = total;
    return KQ_SIZE_OK;
}
