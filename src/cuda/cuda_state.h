/* The CUDA backend's state, shared by its C files (cuda_backend.c: the
 * backend, streams, memory and forward calls; cuda_weights.c: loading). */
#ifndef KQ_CUDA_STATE_H
#define KQ_CUDA_STATE_H

#include <pthread.h>

#include <cuda_runtime_api.h>

#include "core/core.h"
#include "kernels.h"

/* The pinned staging ring weights go through on their way to the device:
 * the CPU fills one chunk while the copy engine drains the others. */
#define KQ_CUDA_RING 4
#define KQ_CUDA_RING_CHUNK ((size_t)32 << 20)

typedef struct cuda_state {
    int device;
    int host_weights;
    cudaStream_t own;     /* the backend's own stream */
    cudaStream_t cur;     /* the stream calls go on: own, or the caller's */
    cudaStream_t load;    /* uploads, apart from the caller's work */
    kq_cuda_err *err;     /* device: the first bad expert id since the last sync */
    pthread_mutex_t load_lock; /* one upload at a time through the ring */
    /* int8 copies of x for the quant kernels (kq__cuda_scratch_bytes of the
     * widest K loaded); launches that use it hold launch_lock, so the
     * quantize and multiply kernels of one call queue back to back. */
    void *scratch;
    size_t scratch_bytes;
    /* Bumped (under launch_lock) whenever scratch moves: work captured into
     * a CUDA graph names the old address, so a graph is replayable only
     * while this is unchanged (kq__cuda_backend_epoch). */
    unsigned scratch_epoch;
    pthread_mutex_t launch_lock;
    kq_cuda_gemm_cfg gemm; /* scratch allocated with the first GEMM-able weights */
    void *ring[KQ_CUDA_RING];
    cudaEvent_t ring_done[KQ_CUDA_RING];
} cuda_state;

/* A loaded linear or experts object on the device. */
typedef struct cuda_weights {
    void *dev;             /* device mode: one allocation (part table + weights) */
    kq_cuda_part *table;   /* device address of the part table (linear) */
    const uint8_t *data;   /* experts: device address of the slabs */
    int n_parts, n_blocks;
    int uniform_type;      /* linear: the type if all parts share one, else -1 */
    int rows16;            /* linear: every part's row_size is a multiple of 16 */
    /* host_weights mode: per part, a registered range or a pinned copy */
    int n_host;
    void **registered;     /* cudaHostRegister'ed bases (NULL where a copy was made) */
    void **pinned;         /* cudaHostAlloc'ed copies (NULL where registered) */
    kq_cuda_part *host_parts;  /* linear: host copy of the part table */
    kq_cuda_gemm_w *gemm;      /* per part (linear) or one (experts); NULL: no GEMM */
} cuda_weights;

kq_status kq__cuda_linear_prepare(kq_backend *b, kq_linear *l);
void kq__cuda_linear_release(kq_backend *b, kq_linear *l);
kq_status kq__cuda_experts_prepare(kq_backend *b, kq_experts *e);
void kq__cuda_experts_release(kq_backend *b, kq_experts *e);
void kq__cuda_ring_free(cuda_state *s);
/* Grows the scratch for x rows of n_cols (at load time, never in a call). */
kq_status kq__cuda_scratch_reserve(cuda_state *s, int64_t n_cols);

/* A failed runtime call as a status and message: "<what>: <cuda error>". */
kq_status kq__cuda_fail(cudaError_t e, const char *what);
/* Makes the backend's device current for this thread: an error status
 * naming fn if that fails; the quiet form is for calls that cannot report. */
kq_status kq__cuda_use(const cuda_state *s, const char *fn);
void kq__cuda_use_quiet(const cuda_state *s);

#endif
