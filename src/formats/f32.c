/* F32: rows are plain float32; both directions are a copy. */
#include <string.h>

#include "rows.h"

void kq__f32_to_float(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void kq__f32_from_float(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}
