/* The type table: per ggml type id, its block geometry and, for the types
 * kquant computes with, the row converters. Pure C, no SIMD: these are the
 * definitions every fast kernel is checked against. */
#ifndef KQ_FORMATS_H
#define KQ_FORMATS_H

#include <stddef.h>
#include <stdint.h>

/* n is a positive multiple of the type's block_elems; src/dst hold n / block_elems blocks. */
typedef void (*kq_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*kq_from_float_fn)(const float *src, void *dst, int64_t n);

typedef struct kq_type_traits {
    int type;
    const char *name;        /* as ggml names it: "q4_K", "bf16" */
    int64_t block_elems;
    size_t block_bytes;
    kq_to_float_fn to_float;     /* NULL where kquant cannot decode the type */
    kq_from_float_fn from_float; /* NULL where kquant cannot encode the type */
    int is_weight;           /* loadable for compute */
} kq_type_traits;

/* The byte size of a tensor, the one place its arithmetic lives: ne[0] is
 * the row length, ne[1..3] the further dims, all >= 1 (callers check). */
typedef enum kq_size_check {
    KQ_SIZE_OK = 0,
    KQ_SIZE_PARTIAL_BLOCK, /* ne[0] is not a multiple of block_elems */
    KQ_SIZE_OVERFLOW       /* the byte count does not fit in 64 bits */
} kq_size_check;
kq_size_check kq__tensor_bytes(const kq_type_traits *t, const int64_t ne[4], uint64_t *row_bytes,
                               uint64_t *total_bytes);

/* NULL for an id no GGUF writer uses. Every known id has its geometry even
 * when kquant cannot decode it, so a reader can size any tensor. */
const kq_type_traits *kq__type_traits(int type);

#endif
