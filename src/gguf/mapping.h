/* Registry of read-only file mappings. A GGUF open maps its file and
 * registers the mapping; a load whose bytes lie inside one takes a reference
 * and uses them in place. The mapping is unmapped when the last reference
 * goes, whichever of the file handle or the loaded objects goes last. */
#ifndef KQ_GGUF_MAPPING_H
#define KQ_GGUF_MAPPING_H

#include "kquant.h"

typedef struct kq_mapping kq_mapping;

/* Maps `path` read-only and registers it, with one reference for the caller. */
kq_status kq__mapping_open(const char *path, kq_mapping **out);
const uint8_t *kq__mapping_data(const kq_mapping *m);
uint64_t kq__mapping_size(const kq_mapping *m);

/* The registered mapping that holds all of [p, p + n), with a new reference
 * taken for the caller; NULL if no mapping holds the whole range. */
kq_mapping *kq__mapping_find(const void *p, size_t n);

void kq__mapping_retain(kq_mapping *m);
void kq__mapping_release(kq_mapping *m); /* NULL is a no-op */

/* How many mappings are registered now (for tests and leak checks). */
int64_t kq__mapping_live_count(void);

#endif
