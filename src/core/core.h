/* The objects behind the public handles, and the backend interface.
 *
 * The core validates every argument once; a backend's functions are called
 * only with valid input (shapes checked, ids checked where they are host
 * memory), so kernels carry no checks of their own. */
#ifndef KQ_CORE_H
#define KQ_CORE_H

#include <stdatomic.h>

#include "kquant.h"
#include "formats/formats.h"
#include "gguf/mapping.h"

/* A run of rows of one quant type, in host memory: in a file mapping
 * (mapping != NULL, used in place) or in memory the library owns. */
typedef struct kq_weight_part {
    int type;
    const kq_type_traits *traits;
    const uint8_t *data;
    size_t nbytes;
    size_t row_size;
    int64_t n_rows;
    int64_t row_offset; /* first output column this part writes */
    kq_mapping *mapping;
    void *owned;
} kq_weight_part;

struct kq_linear {
    kq_backend *backend;
    int64_t n_rows, n_cols;
    int n_parts;
    kq_weight_part *parts;
    void *impl; /* the backend's own state (device copies, repacked layout) */
};

struct kq_experts {
    kq_backend *backend;
    int64_t n_experts, n_rows, n_cols;
    size_t expert_bytes; /* n_rows * row_size: one slab */
    kq_weight_part w;    /* all E slabs, n_rows * n_experts rows */
    void *impl;
};

struct kq_ceilings;

typedef struct kq_backend_ops {
    const char *kind;
    /* 1 when x, y and ids are host memory: the core then checks expert ids
     * and buffer overlap before calling. */
    int host_memory;
    void (*close)(kq_backend *b);
    kq_status (*sync)(kq_backend *b);
    /* Optional: make a loaded object ready (upload, repack); undone by release. */
    kq_status (*linear_prepare)(kq_backend *b, kq_linear *l);
    void (*linear_release)(kq_backend *b, kq_linear *l);
    kq_status (*experts_prepare)(kq_backend *b, kq_experts *e);
    void (*experts_release)(kq_backend *b, kq_experts *e);
    kq_status (*linear_forward)(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                int64_t m);
    kq_status (*experts_forward)(kq_backend *b, const kq_experts *e, const float *x,
                                 int64_t token_stride, int64_t slot_stride, const int32_t *ids,
                                 int64_t m, int64_t top_k, float *y);
    /* y[m, h] = act(gate rows) * (up rows); the rows of l are gate then up
     * halves, h = n_rows / 2 (kq_linear_forward_glu; act checked). */
    kq_status (*linear_glu)(kq_backend *b, const kq_linear *l, const float *x, float *y,
                            int64_t m, kq_glu act);
    kq_status (*experts_swiglu)(kq_backend *b, const kq_experts *gate, const kq_experts *up,
                                const float *x, int64_t token_stride, int64_t slot_stride,
                                const int32_t *ids, int64_t m, int64_t top_k, float *y);
    /* Measures the device's read bandwidth and compute peak (core/ceilings.h). */
    kq_status (*ceilings)(kq_backend *b, struct kq_ceilings *out);
    /* Device memory and copies (kq_alloc...). NULL on host backends: the core
     * then uses aligned host memory and memcpy. */
    kq_status (*alloc)(kq_backend *b, size_t bytes, void **out);
    void (*free)(kq_backend *b, void *p);
    kq_status (*copy_to_device)(kq_backend *b, void *dst, const void *src, size_t bytes);
    kq_status (*copy_to_host)(kq_backend *b, void *dst, const void *src, size_t bytes);
    /* Optional: the stream calls are queued on (CUDA). */
    kq_status (*set_stream)(kq_backend *b, void *stream);
    void *(*stream)(const kq_backend *b);
} kq_backend_ops;

/* Parsed "name:opt=val,..." spec. */
typedef struct kq_backend_spec {
    char kind[16];
    int threads;      /* 0 = backend default */
    int device;       /* CUDA ordinal */
    int host_weights; /* cuda: keep weights in mapped host memory */
    int gemm;         /* cuda: prefill GEMM, 0 auto, 1 mma.sync only, -1 off */
    int gemm_min_m;   /* cuda: smallest m for the GEMM (0: measured per type) */
} kq_backend_spec;

struct kq_backend {
    const kq_backend_ops *ops;
    atomic_int refs; /* the caller's handle plus one per loaded object */
    char name[32];
    char device[256];
    kq_backend_spec spec;
    void *impl;
};

/* Backend constructors: fill b->ops, b->device, b->impl. */
kq_status kq__cpu_ref_open(kq_backend *b);
kq_status kq__cpu_open(kq_backend *b); /* the fast "cpu" backend (src/cpu/) */
#ifdef KQ_HAVE_CUDA
kq_status kq__cuda_open(kq_backend *b);
#endif

void kq__backend_retain(kq_backend *b);
void kq__backend_release(kq_backend *b);

/* Fills a part from caller bytes: checks type, sizes and byte count, then
 * uses the bytes in place if a registered mapping holds them, else copies. */
kq_status kq__part_init(kq_weight_part *p, int type, const void *bytes, size_t nbytes,
                        int64_t n_rows, int64_t n_cols, const char *what);
void kq__part_free(kq_weight_part *p);

/* KQ_PROFILE=1 support: per-call timing summary at exit. */
int kq__profile_enabled(void);
double kq__now_seconds(void);
void kq__profile_record(const char *op, const char *type, int64_t n, int64_t k,
                        int64_t experts, int64_t top_k, int64_t m, double seconds);
/* Around one timed call: start drains the backend so the time is the
 * call's own (returns the sync's status, sets *t0); stop drains it again
 * and, when the call and both syncs went well, records the time under the
 * op's key. stop returns the first failure, else KQ_OK. */
kq_status kq__profile_start(kq_backend *b, double *t0);
kq_status kq__profile_stop(kq_backend *b, kq_status st, double t0, const char *op,
                           const char *type, int64_t n, int64_t k, int64_t experts,
                           int64_t top_k, int64_t m);
/* A backend names the kernel that ran the call being timed (a static
 * string; this thread's next kq__profile_stop files it in the table). */
void kq__profile_kernel(const char *name);

#endif
