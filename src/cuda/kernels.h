/* The CUDA kernels' C interface: what the backend (C) hands the launchers
 * (matvec.cu). Everything here is plain data, so a launch needs no
 * allocation and no host synchronization and can be captured in a graph. */
#ifndef KQ_CUDA_KERNELS_H
#define KQ_CUDA_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One part of a (possibly fused) linear, as the device sees it: rows
 * [row_begin, row_end) of the output, each row_size bytes at data. The
 * table of parts sits in device memory; first_block is the index of the
 * first thread block of the plain kernel that works on this part (blocks
 * never straddle parts, so a block decodes one type). */
typedef struct kq_cuda_part {
    const uint8_t *data;
    int64_t row_size;
    int64_t row_begin, row_end;
    int32_t type;
    int32_t first_block;
} kq_cuda_part;

/* Rows one thread block of the plain kernels covers (4 warps x 2 rows), and
 * outputs one block of the SwiGLU kernels covers (4 warps x one gate/up pair). */
#define KQ_CUDA_ROWS_PER_BLOCK 8
#define KQ_CUDA_SWIGLU_PER_BLOCK 4

/* The device's error word for expert ids: pair + 1 of the first bad pair
 * (0: none), the bad id, the expert count and top_k, for the message. */
typedef struct kq_cuda_err {
    unsigned long long pair_plus_1;
    int32_t id, n_experts;
    int64_t top_k;
} kq_cuda_err;

typedef struct kq_cuda_dense_args {
    const kq_cuda_part *parts; /* device table */
    int n_parts;
    int n_blocks;              /* plain: first_block of an imaginary part after the last */
    int64_t n_rows, n_cols;    /* N (all parts), K */
    const float *x;
    float *y;
    int64_t m;
    int swiglu;                /* gated: y[m, N/2] = act(gate) * up (SwiGLU, GeGLU) */
    int act;                   /* kq_glu of a gated call */
    int uniform_type;          /* the parts' one type, or -1 if they differ */
    void *scratch;             /* kq__cuda_scratch_bytes(K) of device memory, or NULL */
    int stream_ok;             /* device weights, every row a multiple of 16 bytes */
    int device_weights;        /* the weights are in device memory (not host_weights=1) */
    /* The tensor-core GEMM (qgemm.cu): per part, host copies of the part
     * table and the GEMM's weight descriptors (NULL: no GEMM), its scratch
     * and the smallest m it takes. */
    const struct kq_cuda_part *host_parts;
    const struct kq_cuda_gemm_w *gemm;
    struct kq_cuda_gemm_cfg *gcfg;
    const char *kernel;        /* out: the kernel family that ran (KQ_PROFILE) */
} kq_cuda_dense_args;

typedef struct kq_cuda_expert_mat {
    const uint8_t *data;       /* expert e at data + e * expert_bytes */
    int64_t row_size, expert_bytes;
    int32_t type;
} kq_cuda_expert_mat;

typedef struct kq_cuda_experts_args {
    kq_cuda_expert_mat w, up;  /* up used when swiglu */
    int swiglu;
    int64_t n_experts, n_rows, n_cols;
    const float *x;
    int64_t token_stride, slot_stride;
    const int32_t *ids;
    int64_t m, top_k;
    float *y;
    kq_cuda_err *err;          /* device */
    void *scratch;             /* as for dense */
    const struct kq_cuda_gemm_w *gw, *gup; /* GEMM descriptors of w and up, or NULL */
    struct kq_cuda_gemm_cfg *gcfg;
    const char *kernel;        /* out: the kernel family that ran (KQ_PROFILE) */
} kq_cuda_experts_args;

/* ---- tensor-core GEMM for m > 16 (qgemm.cu, qgemm_sm90.cu, qgemm_sm80.cu) */

/* What the GEMM needs of one weight matrix (a part, or a stack of experts),
 * made at load: a TMA descriptor over its bytes and the power-of-two factor
 * that brings its largest weight near 2^14 (fp16 range). ok = 0: the GEMM
 * does not take it (type, non-finite scales, no tensor cores). */
typedef struct kq_cuda_gemm_w {
    unsigned long long map[16]; /* CUtensorMap (128 bytes) */
    int ok;
    int no_map;                 /* 1: no TMA map can hold these rows (not 16-byte multiples,
                                   or an unaligned base): the mma.sync kernel takes them */
    float wf;
} kq_cuda_gemm_w;

/* The backend's GEMM settings and scratch (one per backend; calls hold the
 * launch lock). kernel: 0 auto, 1 mma.sync everywhere, -1 never. */
typedef struct kq_cuda_gemm_cfg {
    int kernel;
    int min_m;                  /* 0: the measured crossover per type */
    int sm;                     /* compute capability, 10 * major + minor */
    int n_sm;
    void *scratch;              /* KQ_CUDA_GEMM_SCRATCH bytes of device memory */
} kq_cuda_gemm_cfg;

#define KQ_CUDA_GEMM_SCRATCH ((size_t)80 << 20)

/* Fills *out for `rows` rows (of row_size bytes, n_experts stacks
 * expert_bytes apart) of `type` at device address data; synchronizes (load
 * time only). A failure of the range kernel is returned; an unsupported
 * matrix is ok = 0 with cudaSuccess. */
cudaError_t kq__cuda_gemm_describe(const kq_cuda_gemm_cfg *cfg, const uint8_t *data, int type,
                                   int64_t rows, int64_t row_size, int64_t n_experts,
                                   int64_t expert_bytes, kq_cuda_gemm_w *out);

/* Take the call (return 1, *err set) or leave it to the other kernels (0). */
int kq__cuda_gemm_dense(kq_cuda_dense_args *a, cudaStream_t s, cudaError_t *err);
/* Where the GEMM takes over (crossover() in qgemm.cu), in words. */
void kq__cuda_gemm_rule(const kq_cuda_gemm_cfg *cfg, char *buf, size_t n);
int kq__cuda_gemm_experts(kq_cuda_experts_args *a, cudaStream_t s, cudaError_t *err);

/* Quant-type weights multiply x quantized to int8 (one scale per 32 values)
 * in a scratch buffer of the backend, KQ_CUDA_XQ_ROWS rows at a time. */
#define KQ_CUDA_XQ_ROWS 256
size_t kq__cuda_scratch_bytes(int64_t n_cols);

/* The scratch for x rows of K: int8 rows [XQ_ROWS, K] at 0, their scales
 * [XQ_ROWS, K / 32] (float) at *d_off, the sums of the int8 values per 16
 * [XQ_ROWS, K / 16] (int) at *s_off, each at a 256-byte boundary. */
static inline void kq__cuda_xq_layout(int64_t K, size_t *d_off, size_t *s_off)
{
    size_t rows = KQ_CUDA_XQ_ROWS, k = (size_t)K;
    *d_off = (rows * k + 255) / 256 * 256;
    *s_off = *d_off + (rows * (k / 32) * 4 + 255) / 256 * 256;
}

/* Queue the kernels on `s`; return the launch's error (cudaSuccess if none). */
cudaError_t kq__cuda_dense(kq_cuda_dense_args *a, cudaStream_t s);
cudaError_t kq__cuda_experts(kq_cuda_experts_args *a, cudaStream_t s);

/* Rows [0, rows) of x (row stride K) to int8 in the scratch's layout. */
cudaError_t kq__cuda_quantize_rows(const float *x, int64_t rows, int64_t K, void *scratch,
                                   cudaStream_t s);

/* The shared-memory streaming kernels (stream_gemv.cu): init lets them use
 * more than 48 KB of shared memory (call on the device, at load time);
 * stream_dense returns 0 when the call is not theirs (types, alignment, m),
 * else queues it and sets *err. */
cudaError_t kq__cuda_stream_init(void);
int kq__cuda_stream_dense(kq_cuda_dense_args *a, cudaStream_t s, cudaError_t *err);
/* direct_gemv.cu: Q4_K at m = 1 straight from global memory (unless
 * KQ_CUDA_DECODE=stream); 0 when it does not take the call. */
int kq__cuda_direct_dense(kq_cuda_dense_args *a, cudaStream_t s, cudaError_t *err);
/* direct_gemv32.cu: m = 1 of the 32-value block types, a lane a block. */
int kq__cuda_direct32_dense(kq_cuda_dense_args *a, cudaStream_t s, cudaError_t *err);
int kq__cuda_direct_wanted(void);

/* 1 when the CUDA kernels decode weights of `type` (the float types and
 * every type of formats/type_list.h); the backend refuses others at load. */
int kq__cuda_type_supported(int type);

#ifdef __cplusplus
}
#endif

#endif
