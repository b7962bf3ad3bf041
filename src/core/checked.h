/* Overflow-checked size arithmetic for untrusted counts. Each returns 1 on
 * overflow (and leaves *out unspecified), 0 when the result fits. */
#ifndef KQ_CORE_CHECKED_H
#define KQ_CORE_CHECKED_H

#include <stddef.h>
#include <stdint.h>

static inline int kq__mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline int kq__add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}
static inline int kq__mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline int kq__add_size(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out);
}
static inline int kq__mul_i64(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

#endif
