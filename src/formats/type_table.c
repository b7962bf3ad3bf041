/* Every ggml type id a GGUF file may hold, with its block geometry (as gguf's
 * GGML_QUANT_SIZES and ggml's type_traits give it) and, for the types kquant
 * converts, the reference row converters. Removed ids (4, 5, 31..33, 36..38)
 * have no entry. The quantized weight types' rows are generated from
 * type_list.h, so a type listed there without converters fails to link. */
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

/* The quantized weight types, one row each from type_list.h. */
#define QUANT_ROW(ID, nm, BLOCK, elems, act)                                           \
    [ID] = {.type = (ID), .name = #nm, .block_elems = (elems), .block_bytes = sizeof(BLOCK), \
            .to_float = kq__##nm##_to_float, .from_float = kq__##nm##_from_float,      \
            .is_weight = 1},

static const kq_type_traits g_types[] = {
    CONV(0, "f32", 1, 4, f32, 1),
    CONV(1, "f16", 1, 2, f16, 1),
    CONV(30, "bf16", 1, 2, bf16, 1),
    KQ_QUANT_TYPES(QUANT_ROW)
    GEOM(9, "q8_1", 32, 4 + 4 + 32),
    CONV(15, "q8_K", QK_K, 4 + QK_K + QK_K / 8, q8_K, 0), /* activations only */
    GEOM(16, "iq2_xxs", QK_K, 2 + QK_K / 4),
    GEOM(17, "iq2_xs", QK_K, 2 + QK_K / 4 + QK_K / 32),
    GEOM(18, "iq3_xxs", QK_K, 2 + QK_K / 4 + QK_K / 8),
    GEOM(19, "iq1_s", QK_K, 2 + QK_K / 8 + QK_K / 16),
    GEOM(21, "iq3_s", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
    GEOM(22, "iq2_s", QK_K, 2 + QK_K / 4 + QK_K / 16),
    GEOM(24, "i8", 1, 1),
    GEOM(25, "i16", 1, 2),
    GEOM(26, "i32", 1, 4),
    GEOM(27, "i64", 1, 8),
    GEOM(28, "f64", 1, 8),
    GEOM(29, "iq1_m", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
    GEOM(34, "tq1_0", QK_K, 2 + 4 * 13),
    GEOM(35, "tq2_0", QK_K, 2 + 64),
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
