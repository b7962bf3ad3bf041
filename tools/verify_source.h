/* kq verify --source F.gguf: a quantized file against the float file it was
 * made from, tensor by tensor, so damage the compute checks cannot see (they
 * compare backends on the same quantized bytes) shows: a block quantized to
 * garbage from a non-finite or huge weight, a non-finite weight in the
 * source, a tensor of another shape. */
#ifndef KQ_TOOL_VERIFY_SOURCE_H
#define KQ_TOOL_VERIFY_SOURCE_H

#include "kquant.h"

/* Prints the comparison table and a summary line; returns 0 if every
 * tensor present in both files is within its bound, 1 if any is damaged
 * (or the source cannot be read). */
int kq_verify_against_source(const kq_gguf *quant, const char *source_path);

#endif
