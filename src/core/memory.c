/* kq_alloc, kq_free and the host/backend copies. Host backends get aligned
 * host memory and memcpy, so a program written against these calls runs on
 * every backend; device backends supply their own. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error.h"

/* Wide enough for any SIMD load the CPU kernels make. */
#define KQ_HOST_ALIGN 64

kq_status kq_alloc(kq_backend *b, size_t bytes, void **out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_alloc: out is NULL");
    *out = NULL;
    if (!b) return kq__fail(KQ_ERR_INVALID_ARG, "kq_alloc: backend is NULL");
    if (bytes == 0) return kq__fail(KQ_ERR_INVALID_ARG, "kq_alloc: bytes = 0");
    if (b->ops->alloc) return b->ops->alloc(b, bytes, out);
    if (bytes > SIZE_MAX - KQ_HOST_ALIGN)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_alloc: bytes = %zu is too large", bytes);
    size_t rounded = (bytes + KQ_HOST_ALIGN - 1) / KQ_HOST_ALIGN * KQ_HOST_ALIGN;
    void *p = NULL;
    if (posix_memalign(&p, KQ_HOST_ALIGN, rounded) != 0)
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_alloc: cannot allocate %zu bytes on '%s'", bytes,
                        b->name);
    *out = p;
    return KQ_OK;
}

void kq_free(kq_backend *b, void *p)
{
    if (!b || !p) return;
    if (b->ops->free)
        b->ops->free(b, p);
    else
        free(p);
}

static kq_status copy_args(const char *fn, kq_backend *b, void *dst, const void *src,
                           size_t bytes)
{
    if (!b) return kq__fail(KQ_ERR_INVALID_ARG, "%s: backend is NULL", fn);
    if (bytes == 0) return KQ_OK;
    if (!dst) return kq__fail(KQ_ERR_INVALID_ARG, "%s: dst is NULL", fn);
    if (!src) return kq__fail(KQ_ERR_INVALID_ARG, "%s: src is NULL", fn);
    return KQ_OK;
}

kq_status kq_copy_to_device(kq_backend *b, void *dst, const void *src, size_t bytes)
{
    kq__clear_error();
    kq_status st = copy_args("kq_copy_to_device", b, dst, src, bytes);
    if (st || bytes == 0) return st;
    if (b->ops->copy_to_device) return b->ops->copy_to_device(b, dst, src, bytes);
    memmove(dst, src, bytes);
    return KQ_OK;
}

kq_status kq_copy_to_host(kq_backend *b, void *dst, const void *src, size_t bytes)
{
    kq__clear_error();
    kq_status st = copy_args("kq_copy_to_host", b, dst, src, bytes);
    if (st || bytes == 0) return st;
    if (b->ops->copy_to_host) return b->ops->copy_to_host(b, dst, src, bytes);
    memmove(dst, src, bytes);
    return KQ_OK;
}
