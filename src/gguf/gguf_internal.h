/* Shared between the GGUF reader, the value getters and the writer. */
#ifndef KQ_GGUF_INTERNAL_H
#define KQ_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kquant.h"

/* Deepest nesting of arrays (an array of arrays is depth 2) the reader and
 * the writer accept. */
#define KQ_GGUF_MAX_DEPTH 16
/* The largest general.alignment read or written: 16 MiB, far above any real
 * file's (32 by default, a page at most), and small enough that the padding
 * it can demand of a writer stays small. Without it a 128-byte file with
 * alignment 2^31 opened, and rewriting it wrote 2 GiB of zeros. */
#define KQ_GGUF_MAX_ALIGNMENT (1u << 24)

/* One string of a string array: bytes in the mapping, not terminated. */
typedef struct kq__gstr {
    const char *p;
    uint64_t len;
} kq__gstr;

/* A parsed metadata value. Nothing is copied out of the mapping: scalars and
 * primitive arrays point at their little-endian bytes (read with memcpy),
 * string arrays keep an index, arrays of arrays one node per element. */
struct kq_gguf_value {
    uint32_t type;      /* kq_gguf_vtype */
    uint32_t elem_type; /* arrays: element type */
    int64_t count;      /* arrays: element count */
    const uint8_t *p;   /* scalar / string bytes / first element of a primitive array */
    uint64_t len;       /* strings: length in bytes */
    kq__gstr *strs;     /* arrays of strings: count entries */
    kq_gguf_value *items; /* arrays of arrays: count nodes */
    const char *key;    /* the key this value belongs to, for messages */
};

/* Bytes of one element of a fixed-size type; 0 for string, array, unknown. */
size_t kq__gguf_vtype_size(uint32_t vtype);
/* 1 for the 13 value types of the format. */
int kq__gguf_vtype_known(uint32_t vtype);
/* Name for messages: never NULL ("unknown" for an unknown id). */
const char *kq__gguf_vtype_str(uint32_t vtype);

/* A name -> index hash (open addressing). Names are not copied: they must
 * stay valid and unmoved while in the index. */
typedef struct kq__name_slot {
    uint64_t hash;
    const char *name;
    size_t len;
    int64_t idx; /* -1: empty */
} kq__name_slot;

typedef struct kq__name_index {
    kq__name_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} kq__name_index;

/* Inserts name -> idx. Returns the index of an existing equal name (and
 * inserts nothing), -1 when inserted, -2 when out of memory. */
int64_t kq__name_insert(kq__name_index *ix, const char *name, size_t len, int64_t idx);
/* The index of name, or -1. */
int64_t kq__name_find(const kq__name_index *ix, const char *name, size_t len);
void kq__name_index_free(kq__name_index *ix);

#endif
