/* The "cuda" backend: one device, one stream (its own, or the caller's),
 * device memory for activations, and the forward calls, which only queue
 * kernels (matvec.cu): no allocation, no host synchronization, no copy to
 * the host, so a sequence of them can be captured in a CUDA graph. Expert
 * ids live in device memory and are checked there; kq_backend_sync reads
 * the device's error word and reports the first bad pair. Loading is in
 * cuda_weights.c. */
#include <stdio.h>
#include <stdlib.h>

#include "core/ceilings.h"
#include "core/error.h"
#include "cuda_state.h"

int kq__cuda_probe(int device, char *err, unsigned long cap);

kq_status kq__cuda_fail(cudaError_t e, const char *what)
{
    /* A sticky error (a kernel fault) poisons the context: say so. */
    return kq__fail(KQ_ERR_BACKEND, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

static cuda_state *state(const kq_backend *b) { return b->impl; }

/* A failed launch, naming the kernel family it reached. */
static kq_status launch_fail(cudaError_t e, const char *fn, const char *kernel)
{
    char what[96];
    snprintf(what, sizeof what, "%s (%s)", fn, kernel ? kernel : "before its kernels");
    return kq__cuda_fail(e, what);
}

kq_status kq__cuda_use(const cuda_state *s, const char *fn)
{
    cudaError_t e = cudaSetDevice(s->device);
    if (e == cudaSuccess) return KQ_OK;
    char what[96];
    snprintf(what, sizeof what, "%s: selecting cuda:%d", fn, s->device);
    return kq__cuda_fail(e, what);
}

/* Calls that cannot report (close, free, release) still select the device;
 * when that fails they go on with the current one, as there is nothing
 * better to do, and clear the error so the next call does not inherit it. */
void kq__cuda_use_quiet(const cuda_state *s)
{
    if (cudaSetDevice(s->device) != cudaSuccess) cudaGetLastError();
}

static void close_step(cudaError_t e)
{
    if (e != cudaSuccess) cudaGetLastError();
}

static void cuda_close(kq_backend *b)
{
    cuda_state *s = state(b);
    if (!s) return;
    kq__cuda_use_quiet(s);
    /* Closing has no caller to report to: each step goes on whatever the
     * last returned (close_step clears a failure, so that the thread's next
     * launch, another backend's, does not report it as its own). */
    if (s->own) close_step(cudaStreamSynchronize(s->own));
    if (s->load) close_step(cudaStreamSynchronize(s->load));
    kq__cuda_ring_free(s);
    for (int k = 0; k < KQ_CUDA_RING; k++)
        if (s->ring_done[k]) close_step(cudaEventDestroy(s->ring_done[k]));
    if (s->err) close_step(cudaFree(s->err));
    if (s->scratch) close_step(cudaFree(s->scratch));
    if (s->gemm.scratch) close_step(cudaFree(s->gemm.scratch));
    if (s->own) close_step(cudaStreamDestroy(s->own));
    if (s->load) close_step(cudaStreamDestroy(s->load));
    pthread_mutex_destroy(&s->load_lock);
    pthread_mutex_destroy(&s->launch_lock);
    free(s);
    b->impl = NULL;
}

static kq_status cuda_sync(kq_backend *b)
{
    cuda_state *s = state(b);
    kq_status st = kq__cuda_use(s, "kq_backend_sync");
    if (st) return st;
    cudaError_t e = cudaStreamSynchronize(s->cur);
    if (e != cudaSuccess) return kq__cuda_fail(e, "kq_backend_sync");
    kq_cuda_err err;
    if ((e = cudaMemcpy(&err, s->err, sizeof err, cudaMemcpyDeviceToHost)) != cudaSuccess)
        return kq__cuda_fail(e, "kq_backend_sync: reading the error word");
    if (err.pair_plus_1 == 0) return KQ_OK;
    /* On the backend's stream, so later calls see the cleared word. */
    if ((e = cudaMemsetAsync(s->err, 0, sizeof err, s->cur)) != cudaSuccess ||
        (e = cudaStreamSynchronize(s->cur)) != cudaSuccess)
        return kq__cuda_fail(e, "kq_backend_sync: clearing the error word");
    long long pair = (long long)err.pair_plus_1 - 1, k = err.top_k > 0 ? err.top_k : 1;
    return kq__fail(KQ_ERR_RANGE,
                    "kq_backend_sync: an experts call since the last sync had ids[%lld] = %d "
                    "(token %lld, slot %lld) outside [0, %d); its output rows were set to NaN",
                    pair, err.id, pair / k, pair % k, err.n_experts);
}

static kq_status cuda_set_stream(kq_backend *b, void *stream)
{
    cuda_state *s = state(b);
    s->cur = stream ? (cudaStream_t)stream : s->own;
    return KQ_OK;
}

static void *cuda_stream(const kq_backend *b) { return (void *)state(b)->cur; }

/* For the model layer's CUDA graphs (src/model/graph.c); declared in
 * src/model/ops_cuda.h. 0 for a backend that is not this one. */
unsigned kq__cuda_backend_epoch(kq_backend *b)
{
    if (!b || b->ops->stream != cuda_stream) return 0;
    cuda_state *s = state(b);
    pthread_mutex_lock(&s->launch_lock);
    unsigned e = s->scratch_epoch;
    pthread_mutex_unlock(&s->launch_lock);
    return e;
}

static kq_status cuda_alloc(kq_backend *b, size_t bytes, void **out)
{
    kq_status st = kq__cuda_use(state(b), "kq_alloc");
    if (st) {
        *out = NULL;
        return st;
    }
    /* More than the card has cannot succeed: say so without asking (a
     * failed cudaMalloc also shows as an error under compute-sanitizer). */
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && bytes > total_b) {
        *out = NULL;
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_alloc: %zu bytes asked, but %s has %zu in all",
                        bytes, b->device, total_b);
    }
    cudaError_t e = cudaMalloc(out, bytes);
    if (e != cudaSuccess) {
        *out = NULL;
        cudaGetLastError();
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_alloc: cannot allocate %zu bytes on %s: %s", bytes,
                        b->device, cudaGetErrorString(e));
    }
    return KQ_OK;
}

static void cuda_free(kq_backend *b, void *p)
{
    kq__cuda_use_quiet(state(b));
    if (cudaFree(p) != cudaSuccess) cudaGetLastError(); /* nothing to report it to */
}

static kq_status copy(kq_backend *b, void *dst, const void *src, size_t bytes,
                      enum cudaMemcpyKind kind, const char *fn)
{
    cuda_state *s = state(b);
    kq_status st = kq__cuda_use(s, fn);
    if (st) return st;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, s->cur);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s->cur);
    return e == cudaSuccess ? KQ_OK : kq__cuda_fail(e, fn);
}

static kq_status cuda_copy_to_device(kq_backend *b, void *dst, const void *src, size_t bytes)
{
    return copy(b, dst, src, bytes, cudaMemcpyHostToDevice, "kq_copy_to_device");
}

static kq_status cuda_copy_to_host(kq_backend *b, void *dst, const void *src, size_t bytes)
{
    return copy(b, dst, src, bytes, cudaMemcpyDeviceToHost, "kq_copy_to_host");
}

/* ---------------------------------------------------------------- forward */

static kq_status dense(kq_backend *b, const kq_linear *l, const float *x, float *y, int64_t m,
                       int swiglu, kq_glu act, const char *fn)
{
    cuda_state *s = state(b);
    const cuda_weights *w = l->impl;
    kq_status st = kq__cuda_use(s, fn);
    if (st) return st;
    /* The launchers read cudaGetLastError: a failure left by an earlier
     * call of this thread (the application's own, say) is not this call's. */
    cudaGetLastError();
    kq_cuda_dense_args a = {0};
    a.parts = w->table;
    a.n_parts = w->n_parts;
    a.n_blocks = w->n_blocks;
    a.n_rows = l->n_rows;
    a.n_cols = l->n_cols;
    a.x = x;
    a.y = y;
    a.m = m;
    a.swiglu = swiglu;
    a.act = (int)act;
    a.uniform_type = w->uniform_type;
    pthread_mutex_lock(&s->launch_lock);
    a.scratch = s->scratch;
    a.stream_ok = !s->host_weights && w->rows16;
    a.device_weights = !s->host_weights;
    a.host_parts = w->host_parts;
    a.gemm = w->gemm;
    a.gcfg = &s->gemm;
    cudaError_t e = kq__cuda_dense(&a, s->cur);
    pthread_mutex_unlock(&s->launch_lock);
    if (e == cudaSuccess && a.kernel && kq__profile_enabled()) kq__profile_kernel(a.kernel);
    return e == cudaSuccess ? KQ_OK : launch_fail(e, fn, a.kernel);
}

static kq_status cuda_linear_forward(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                     int64_t m)
{
    return dense(b, l, x, y, m, 0, KQ_GLU_SILU, "kq_linear_forward");
}

static kq_status cuda_linear_glu(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                 int64_t m, kq_glu act)
{
    return dense(b, l, x, y, m, 1, act,
                 act == KQ_GLU_SILU ? "kq_linear_forward_swiglu" : "kq_linear_forward_glu");
}

static kq_cuda_expert_mat expert_mat(const kq_experts *e)
{
    const cuda_weights *w = e->impl;
    kq_cuda_expert_mat mat = {w->data, (int64_t)e->w.row_size, (int64_t)e->expert_bytes,
                              e->w.type};
    return mat;
}

static kq_status experts(kq_backend *b, const kq_experts *g, const kq_experts *up,
                         const float *x, int64_t token_stride, int64_t slot_stride,
                         const int32_t *ids, int64_t m, int64_t top_k, float *y, const char *fn)
{
    cuda_state *s = state(b);
    kq_status st = kq__cuda_use(s, fn);
    if (st) return st;
    cudaGetLastError(); /* as in dense(): only this call's launches count */
    kq_cuda_experts_args a = {0};
    a.w = expert_mat(g);
    if (up) a.up = expert_mat(up);
    a.swiglu = up != NULL;
    a.n_experts = g->n_experts;
    a.n_rows = g->n_rows;
    a.n_cols = g->n_cols;
    a.x = x;
    a.token_stride = token_stride;
    a.slot_stride = slot_stride;
    a.ids = ids;
    a.m = m;
    a.top_k = top_k;
    a.y = y;
    a.err = s->err;
    a.gw = ((const cuda_weights *)g->impl)->gemm;
    a.gup = up ? ((const cuda_weights *)up->impl)->gemm : NULL;
    a.gcfg = &s->gemm;
    pthread_mutex_lock(&s->launch_lock);
    a.scratch = s->scratch;
    cudaError_t e = kq__cuda_experts(&a, s->cur);
    pthread_mutex_unlock(&s->launch_lock);
    if (e == cudaSuccess && a.kernel && kq__profile_enabled()) kq__profile_kernel(a.kernel);
    return e == cudaSuccess ? KQ_OK : launch_fail(e, fn, a.kernel);
}

static kq_status cuda_experts_forward(kq_backend *b, const kq_experts *e, const float *x,
                                      int64_t token_stride, int64_t slot_stride,
                                      const int32_t *ids, int64_t m, int64_t top_k, float *y)
{
    return experts(b, e, NULL, x, token_stride, slot_stride, ids, m, top_k, y,
                   "kq_experts_forward");
}

static kq_status cuda_experts_swiglu(kq_backend *b, const kq_experts *gate, const kq_experts *up,
                                     const float *x, int64_t token_stride, int64_t slot_stride,
                                     const int32_t *ids, int64_t m, int64_t top_k, float *y)
{
    return experts(b, gate, up, x, token_stride, slot_stride, ids, m, top_k, y,
                   "kq_experts_forward_swiglu");
}

static kq_status cuda_ceilings(kq_backend *b, kq_ceilings *out)
{
    return kq__cuda_ceilings(state(b)->device, out);
}

static const kq_backend_ops cuda_ops = {
    .kind = "cuda",
    .host_memory = 0,
    .close = cuda_close,
    .sync = cuda_sync,
    .linear_prepare = kq__cuda_linear_prepare,
    .linear_release = kq__cuda_linear_release,
    .experts_prepare = kq__cuda_experts_prepare,
    .experts_release = kq__cuda_experts_release,
    .linear_forward = cuda_linear_forward,
    .experts_forward = cuda_experts_forward,
    .linear_glu = cuda_linear_glu,
    .experts_swiglu = cuda_experts_swiglu,
    .ceilings = cuda_ceilings,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy_to_device = cuda_copy_to_device,
    .copy_to_host = cuda_copy_to_host,
    .set_stream = cuda_set_stream,
    .stream = cuda_stream,
};

static kq_status state_init(cuda_state *s)
{
    cudaError_t e;
    if ((e = cudaStreamCreateWithFlags(&s->own, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&s->load, cudaStreamNonBlocking)) != cudaSuccess)
        return kq__cuda_fail(e, "kq_backend_open: creating streams");
    for (int k = 0; k < KQ_CUDA_RING; k++)
        if ((e = cudaEventCreateWithFlags(&s->ring_done[k], cudaEventDisableTiming)) != cudaSuccess)
            return kq__cuda_fail(e, "kq_backend_open: creating events");
    if ((e = cudaMalloc((void **)&s->err, sizeof *s->err)) != cudaSuccess ||
        (e = cudaMemset(s->err, 0, sizeof *s->err)) != cudaSuccess ||
        (e = cudaDeviceSynchronize()) != cudaSuccess)
        return kq__cuda_fail(e, "kq_backend_open: the error word");
    s->cur = s->own;
    return KQ_OK;
}

kq_status kq__cuda_open(kq_backend *b)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return kq__fail(KQ_ERR_BACKEND, "kq_backend_open: no CUDA device (%s)",
                        e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    }
    if (b->spec.device >= count)
        return kq__fail(KQ_ERR_BACKEND, "kq_backend_open: cuda:%d asked, but only %d device%s",
                        b->spec.device, count, count == 1 ? "" : "s");
    struct cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, b->spec.device)) != cudaSuccess)
        return kq__fail(KQ_ERR_BACKEND, "kq_backend_open: cuda:%d: %s", b->spec.device,
                        cudaGetErrorString(e));
    char err[160];
    if (kq__cuda_probe(b->spec.device, err, sizeof err) != 0)
        return kq__fail(KQ_ERR_BACKEND,
                        "kq_backend_open: cuda:%d (%.120s, sm_%d%d) cannot run this build's code: %s",
                        b->spec.device, prop.name, prop.major, prop.minor, err);
    cuda_state *s = calloc(1, sizeof *s);
    if (!s) return kq__fail(KQ_ERR_NO_MEMORY, "kq_backend_open: out of memory");
    s->device = b->spec.device;
    s->host_weights = b->spec.host_weights;
    s->gemm.kernel = b->spec.gemm;
    s->gemm.min_m = b->spec.gemm_min_m;
    s->gemm.sm = prop.major * 10 + prop.minor;
    s->gemm.n_sm = prop.multiProcessorCount;
    pthread_mutex_init(&s->load_lock, NULL);
    pthread_mutex_init(&s->launch_lock, NULL);
    b->impl = s;
    kq_status st = state_init(s);
    if (st) {
        cuda_close(b);
        return st;
    }
    b->ops = &cuda_ops;
    /* host_weights=1 never takes the GEMM (it reads device copies). */
    char rule[192] = "no GEMM";
    if (!s->host_weights) kq__cuda_gemm_rule(&s->gemm, rule, sizeof rule);
    snprintf(b->device, sizeof b->device, "%.60s (sm_%d%d, %.1f GiB)%s; %s", prop.name, prop.major,
             prop.minor, (double)prop.totalGlobalMem / (1 << 30),
             s->host_weights ? ", weights in host memory" : "", rule);
    return KQ_OK;
}
