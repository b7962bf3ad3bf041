/* Loading weights for the CUDA backend.
 *
 * Device mode (default): each object gets one device allocation, its part
 * table first (linears) and then every part at a 256-byte boundary. Bytes
 * go straight from the caller's memory or the GGUF mapping through a ring of
 * pinned chunks: the CPU copies chunk i + 1 into pinned memory while the
 * copy engine moves chunk i to the device, so the upload runs at about the
 * slower of the two instead of their sum.
 *
 * Host mode (cuda:host_weights=1): the bytes stay in host memory and the GPU
 * reads them over the bus. The page range holding them is registered with
 * the runtime (read-only where the device supports that, as a file mapping
 * is read-only); where registering fails (an overlap with a range already
 * registered, a read-only mapping on a device without read-only support) or
 * the bytes are not 16-byte aligned, they are copied once into pinned
 * mapped memory instead. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "cuda_state.h"

#define ALIGN_DEV 256

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Releasing has no caller to report to: a failure is cleared here, so the
 * next launch of this thread does not report it as its own. */
static void release_check(cudaError_t e)
{
    if (e != cudaSuccess) cudaGetLastError();
}

static kq_status ring_alloc(cuda_state *s)
{
    for (int k = 0; k < KQ_CUDA_RING; k++) {
        cudaError_t e = cudaHostAlloc(&s->ring[k], KQ_CUDA_RING_CHUNK, cudaHostAllocDefault);
        if (e != cudaSuccess) {
            cudaGetLastError(); /* reported below, not by the next launch */
            s->ring[k] = NULL;
            kq__cuda_ring_free(s);
            return kq__fail(KQ_ERR_NO_MEMORY, "loading weights: cannot pin a %zu MB staging chunk: %s",
                            KQ_CUDA_RING_CHUNK >> 20, cudaGetErrorString(e));
        }
    }
    return KQ_OK;
}

void kq__cuda_ring_free(cuda_state *s)
{
    for (int k = 0; k < KQ_CUDA_RING; k++) {
        if (s->ring[k]) release_check(cudaFreeHost(s->ring[k]));
        s->ring[k] = NULL;
    }
}

/* Host bytes to device memory through the ring; complete on return. */
static kq_status ring_upload(cuda_state *s, uint8_t *dst, const uint8_t *src, size_t n)
{
    pthread_mutex_lock(&s->load_lock);
    kq_status st = s->ring[0] ? KQ_OK : ring_alloc(s);
    cudaError_t e = cudaSuccess;
    for (size_t off = 0, i = 0; st == KQ_OK && e == cudaSuccess && off < n; i++) {
        int k = (int)(i % KQ_CUDA_RING);
        size_t c = n - off < KQ_CUDA_RING_CHUNK ? n - off : KQ_CUDA_RING_CHUNK;
        /* The chunk is free once its previous copy has left it. */
        e = cudaEventSynchronize(s->ring_done[k]);
        if (e != cudaSuccess) break;
        memcpy(s->ring[k], src + off, c);
        e = cudaMemcpyAsync(dst + off, s->ring[k], c, cudaMemcpyHostToDevice, s->load);
        if (e == cudaSuccess) e = cudaEventRecord(s->ring_done[k], s->load);
        off += c;
    }
    cudaError_t e2 = cudaStreamSynchronize(s->load);
    if (e == cudaSuccess) e = e2;
    pthread_mutex_unlock(&s->load_lock);
    if (st) return st;
    if (e != cudaSuccess) return kq__cuda_fail(e, "loading weights: copy to the device");
    return KQ_OK;
}

/* n bytes to dst, and dst's tail up to the next ALIGN_DEV boundary (inside
 * the allocation: every device part is rounded up so) zeroed. The kernels'
 * word loads read the aligned word that holds a part's last byte
 * (decode.cuh, ld_8_any: 17- and 18-byte blocks end anywhere), so the tail
 * must be memory that was written. On the load stream, ahead of the copies:
 * a plain cudaMemset goes to the legacy stream, which the non-blocking load
 * stream does not wait for; ring_upload's synchronize ends both. */
static kq_status upload_padded(cuda_state *s, uint8_t *dst, const uint8_t *src, size_t n)
{
    size_t pad = round_up(n, ALIGN_DEV) - n;
    cudaError_t e = pad ? cudaMemsetAsync(dst + n, 0, pad, s->load) : cudaSuccess;
    if (e != cudaSuccess) return kq__cuda_fail(e, "loading weights: zeroing a part's tail");
    return ring_upload(s, dst, src, n);
}

static int page_registered(uintptr_t p)
{
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, (const void *)p) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeHost;
}

/* Host mode: a device address for a part's bytes, by registering their
 * pages or, failing that, through a pinned copy. Only a file mapping's
 * pages are registered: registration covers whole pages, and pages the
 * part shares with other memory would be registered with it (read-only
 * where the card supports that), so a later copy from the device into a
 * neighbouring heap buffer failed with "invalid argument" (test_cuda_dispatch,
 * host_weights=1: the download of y into a malloc'd buffer next to the
 * library's own copy of the weights). A mapping's pages hold only its
 * file's bytes. */
static kq_status map_host(cuda_state *s, const kq_weight_part *part, const uint8_t **dptr,
                          void **registered, void **pinned)
{
    const uint8_t *p = part->data;
    const size_t n = part->nbytes;
    *registered = *pinned = NULL;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    if (part->mapping && ((uintptr_t)p & 15) == 0) {
        uintptr_t base = (uintptr_t)p & ~(uintptr_t)(page - 1);
        size_t len = round_up((uintptr_t)p + n - base, (size_t)page);
        int ro = 0;
        if (cudaDeviceGetAttribute(&ro, cudaDevAttrHostRegisterReadOnlySupported, s->device) !=
            cudaSuccess) {
            ro = 0; /* unknown: register read-write, or copy below */
            cudaGetLastError();
        }
        unsigned flags = cudaHostRegisterMapped | (ro ? cudaHostRegisterReadOnly : 0);
        /* Tensors do not overlap, so another object's registered pages can
         * only share our first or last page: look before registering. */
        if (!page_registered(base) && !page_registered(base + len - (size_t)page) &&
            cudaHostRegister((void *)base, len, flags) == cudaSuccess) {
            void *d = NULL;
            if (cudaHostGetDevicePointer(&d, (void *)base, 0) == cudaSuccess) {
                *registered = (void *)base;
                *dptr = (const uint8_t *)d + ((uintptr_t)p - base);
                return KQ_OK;
            }
            (void)cudaHostUnregister((void *)base); /* cleared just below */
        }
        cudaGetLastError(); /* the failure is handled: copy instead */
    }
    void *h = NULL, *d = NULL;
    cudaError_t e = cudaHostAlloc(&h, n, cudaHostAllocMapped);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* reported here, not by the next launch */
        return kq__fail(KQ_ERR_NO_MEMORY, "loading weights (host_weights=1): cannot pin %zu bytes: %s",
                        n, cudaGetErrorString(e));
    }
    memcpy(h, p, n);
    if ((e = cudaHostGetDevicePointer(&d, h, 0)) != cudaSuccess) {
        release_check(cudaFreeHost(h));
        return kq__cuda_fail(e, "loading weights (host_weights=1): device address of pinned memory");
    }
    *pinned = h;
    *dptr = d;
    return KQ_OK;
}

kq_status kq__cuda_scratch_reserve(cuda_state *s, int64_t n_cols)
{
    size_t need = kq__cuda_scratch_bytes(n_cols);
    pthread_mutex_lock(&s->launch_lock);
    kq_status st = KQ_OK;
    if (need > s->scratch_bytes) {
        void *p = NULL;
        cudaError_t e = cudaMalloc(&p, need);
        if (e != cudaSuccess) {
            cudaGetLastError();
            st = kq__fail(KQ_ERR_NO_MEMORY, "loading weights on cuda: cannot allocate %zu bytes "
                          "of scratch for x: %s", need, cudaGetErrorString(e));
        } else {
            if (s->scratch) release_check(cudaFree(s->scratch)); /* waits for calls using it */
            s->scratch = p;
            s->scratch_bytes = need;
            s->scratch_epoch++;
        }
    }
    pthread_mutex_unlock(&s->launch_lock);
    return st;
}

/* The GEMM's scratch, once per backend; without it (no memory, GEMM off,
 * no tensor cores) the batched-decode kernels take every call. */
static void gemm_scratch(cuda_state *s)
{
    if (s->gemm.scratch || s->gemm.kernel < 0 || s->gemm.sm < 80) return;
    void *p = NULL;
    if (cudaMalloc(&p, KQ_CUDA_GEMM_SCRATCH) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    s->gemm.scratch = p;
}

/* GEMM descriptors for n matrices; a failure of the range check is a load
 * error, an unsupported matrix only leaves its descriptor off. */
static kq_status gemm_describe(cuda_state *s, kq_cuda_gemm_w *g, const uint8_t *data, int type,
                               int64_t rows, int64_t row_size, int64_t n_exp, int64_t expert_bytes)
{
    /* Weights in host memory (host_weights=1) keep the batched-decode
     * kernels: prefill over the bus is bound by the bus, and the GEMM's
     * TMA copies were never tried on mapped host memory. */
    if (s->host_weights) {
        memset(g, 0, sizeof *g);
        return KQ_OK;
    }
    pthread_mutex_lock(&s->launch_lock);
    gemm_scratch(s);
    cudaError_t e = kq__cuda_gemm_describe(&s->gemm, data, type, rows, row_size, n_exp,
                                           expert_bytes, g);
    pthread_mutex_unlock(&s->launch_lock);
    return e == cudaSuccess ? KQ_OK : kq__cuda_fail(e, "loading weights on cuda: GEMM range check");
}

static int is_quant(int type)
{
    return type != KQ_TYPE_F32 && type != KQ_TYPE_F16 && type != KQ_TYPE_BF16;
}

/* The weight types this backend has kernels for (kq__cuda_type_supported:
 * the float types and formats/type_list.h). Anything else is refused at
 * load, so no kernel ever meets a type it cannot decode. */
static kq_status check_type(int type, const char *what)
{
    if (kq__cuda_type_supported(type)) return KQ_OK;
    const char *name = kq_type_name(type);
    return kq__fail(KQ_ERR_UNSUPPORTED, "loading %s on cuda: weight type %s (%d) has no CUDA kernels",
                    what, name ? name : "unknown", type);
}

static void weights_free(cuda_weights *w)
{
    if (!w) return;
    if (w->dev) release_check(cudaFree(w->dev));
    for (int i = 0; i < w->n_host; i++) {
        if (w->registered && w->registered[i]) release_check(cudaHostUnregister(w->registered[i]));
        if (w->pinned && w->pinned[i]) release_check(cudaFreeHost(w->pinned[i]));
    }
    free(w->registered);
    free(w->pinned);
    free(w->host_parts);
    free(w->gemm);
    free(w);
}

static cuda_weights *weights_new(int n_host)
{
    cuda_weights *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    if (n_host > 0) {
        w->registered = calloc((size_t)n_host, sizeof *w->registered);
        w->pinned = calloc((size_t)n_host, sizeof *w->pinned);
        if (!w->registered || !w->pinned) {
            weights_free(w);
            return NULL;
        }
        w->n_host = n_host;
    }
    return w;
}

kq_status kq__cuda_linear_prepare(kq_backend *b, kq_linear *l)
{
    cuda_state *s = b->impl;
    for (int i = 0; i < l->n_parts; i++) {
        kq_status ts = check_type(l->parts[i].type, "a linear");
        if (ts) return ts;
    }
    kq_status us = kq__cuda_use(s, "loading a linear on cuda");
    if (us) return us;
    int n = l->n_parts;
    cuda_weights *w = weights_new(s->host_weights ? n : 0);
    kq_cuda_part *table = calloc((size_t)n, sizeof *table);
    if (!w || !table) {
        weights_free(w);
        free(table);
        return kq__fail(KQ_ERR_NO_MEMORY, "loading a linear on cuda: out of memory");
    }
    w->n_parts = n;
    w->uniform_type = l->parts[0].type;
    w->rows16 = 1;
    size_t table_bytes = round_up((size_t)n * sizeof *table, ALIGN_DEV), total = table_bytes;
    int64_t blocks = 0;
    for (int i = 0; i < n; i++) {
        const kq_weight_part *p = &l->parts[i];
        if (p->type != w->uniform_type) w->uniform_type = -1;
        if (p->row_size % 16 != 0) w->rows16 = 0;
        table[i].row_size = (int64_t)p->row_size;
        table[i].row_begin = p->row_offset;
        table[i].row_end = p->row_offset + p->n_rows;
        table[i].type = p->type;
        table[i].first_block = (int32_t)blocks;
        blocks += (p->n_rows + KQ_CUDA_ROWS_PER_BLOCK - 1) / KQ_CUDA_ROWS_PER_BLOCK;
        if (blocks > INT32_MAX) {
            weights_free(w);
            free(table);
            return kq__fail(KQ_ERR_UNSUPPORTED, "loading a linear on cuda: %lld rows are too many "
                            "for one launch", (long long)l->n_rows);
        }
        if (!s->host_weights) total += round_up(p->nbytes, ALIGN_DEV);
    }
    w->n_blocks = (int)blocks;
    kq_status st = KQ_OK;
    if (w->uniform_type >= 0 && is_quant(w->uniform_type))
        st = kq__cuda_scratch_reserve(s, l->n_cols);
    if (st == KQ_OK) {
        cudaError_t ke = kq__cuda_stream_init();
        if (ke != cudaSuccess) st = kq__cuda_fail(ke, "loading a linear on cuda: kernel attributes");
    }
    if (st) {
        weights_free(w);
        free(table);
        return st;
    }
    cudaError_t e = cudaMalloc(&w->dev, total);
    if (e != cudaSuccess) {
        w->dev = NULL;
        st = kq__fail(KQ_ERR_NO_MEMORY, "loading a linear on cuda: cannot allocate %zu bytes of "
                      "device memory: %s (host_weights=1 keeps weights in host memory)",
                      total, cudaGetErrorString(e));
    }
    uint8_t *at = (uint8_t *)w->dev + table_bytes;
    for (int i = 0; st == KQ_OK && i < n; i++) {
        const kq_weight_part *p = &l->parts[i];
        if (s->host_weights) {
            st = map_host(s, p, &table[i].data, &w->registered[i], &w->pinned[i]);
        } else {
            table[i].data = at;
            st = upload_padded(s, at, p->data, p->nbytes);
            at += round_up(p->nbytes, ALIGN_DEV);
        }
    }
    if (st == KQ_OK) {
        w->table = (kq_cuda_part *)w->dev;
        e = cudaMemcpy(w->table, table, (size_t)n * sizeof *table, cudaMemcpyHostToDevice);
        if (e != cudaSuccess) st = kq__cuda_fail(e, "loading a linear on cuda: part table");
    }
    if (st == KQ_OK && (w->gemm = calloc((size_t)n, sizeof *w->gemm)) == NULL)
        st = kq__fail(KQ_ERR_NO_MEMORY, "loading a linear on cuda: out of memory");
    for (int i = 0; st == KQ_OK && i < n; i++)
        st = gemm_describe(s, &w->gemm[i], table[i].data, table[i].type,
                           table[i].row_end - table[i].row_begin, table[i].row_size, 1, 0);
    w->host_parts = table;
    if (st) {
        weights_free(w);
        return st;
    }
    l->impl = w;
    return KQ_OK;
}

void kq__cuda_linear_release(kq_backend *b, kq_linear *l)
{
    kq__cuda_use_quiet(b->impl);
    weights_free(l->impl);
    l->impl = NULL;
}

kq_status kq__cuda_experts_prepare(kq_backend *b, kq_experts *e)
{
    cuda_state *s = b->impl;
    kq_status ts = check_type(e->w.type, "experts");
    if (ts == KQ_OK) ts = kq__cuda_use(s, "loading experts on cuda");
    if (ts) return ts;
    cuda_weights *w = weights_new(s->host_weights ? 1 : 0);
    if (!w) return kq__fail(KQ_ERR_NO_MEMORY, "loading experts on cuda: out of memory");
    w->uniform_type = e->w.type;
    kq_status st = is_quant(e->w.type) ? kq__cuda_scratch_reserve(s, e->n_cols) : KQ_OK;
    if (st) {
        weights_free(w);
        return st;
    }
    if (s->host_weights) {
        st = map_host(s, &e->w, &w->data, &w->registered[0], &w->pinned[0]);
    } else {
        /* Rounded up like a linear's parts, for upload_padded's tail. */
        cudaError_t ce = cudaMalloc(&w->dev, round_up(e->w.nbytes, ALIGN_DEV));
        if (ce != cudaSuccess) {
            w->dev = NULL;
            st = kq__fail(KQ_ERR_NO_MEMORY, "loading experts on cuda: cannot allocate %zu bytes "
                          "of device memory: %s (host_weights=1 keeps weights in host memory)",
                          e->w.nbytes, cudaGetErrorString(ce));
        } else {
            w->data = w->dev;
            st = upload_padded(s, w->dev, e->w.data, e->w.nbytes);
        }
    }
    if (st == KQ_OK && (w->gemm = calloc(1, sizeof *w->gemm)) == NULL)
        st = kq__fail(KQ_ERR_NO_MEMORY, "loading experts on cuda: out of memory");
    if (st == KQ_OK)
        st = gemm_describe(s, w->gemm, w->data, e->w.type, e->n_rows, (int64_t)e->w.row_size,
                           e->n_experts, (int64_t)e->expert_bytes);
    if (st) {
        weights_free(w);
        return st;
    }
    e->impl = w;
    return KQ_OK;
}

void kq__cuda_experts_release(kq_backend *b, kq_experts *e)
{
    kq__cuda_use_quiet(b->impl);
    weights_free(e->impl);
    e->impl = NULL;
}
