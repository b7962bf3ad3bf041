/*
 * kquant: activations times GGUF-quantized weights, on CPUs and NVIDIA GPUs.
 *
 * The one public header. Every object is an opaque handle; every call returns
 * a kq_status and, on failure, leaves a message in kq_last_error() that names
 * the argument or file position at fault. Nothing aborts, nothing prints
 * (except the KQ_PROFILE=1 summary at exit, which the caller asked for).
 *
 * Shapes: a weight has n_rows = out_features (N) and n_cols = in_features (K),
 * stored exactly as in a GGUF file (ne = [K, N]): row r is row_size(type, K)
 * bytes at r * row_size. Activations x are row-major [m, K] float, outputs y
 * row-major [m, N] float, y[i, r] = sum_k W[r, k] * x[i, k].
 */
#ifndef KQUANT_H
#define KQUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(KQ_BUILD_SHARED)
#define KQ_API __declspec(dllexport)
#elif defined(__GNUC__)
#define KQ_API __attribute__((visibility("default")))
#else
#define KQ_API
#endif

#define KQ_VERSION_MAJOR 0
#define KQ_VERSION_MINOR 1
#define KQ_VERSION_PATCH 0
#define KQ_VERSION_STRING "0.1.0"
/* One number that grows with every release: major * 10000 + minor * 100 + patch. */
#define KQ_VERSION (KQ_VERSION_MAJOR * 10000 + KQ_VERSION_MINOR * 100 + KQ_VERSION_PATCH)

/* The version of the library actually linked, "MAJOR.MINOR.PATCH". */
KQ_API const char *kq_version(void);

/* ---------------------------------------------------------------- status */

typedef enum kq_status {
    KQ_OK = 0,
    KQ_ERR_INVALID_ARG = 1, /* a NULL, negative, zero or inconsistent argument  */
    KQ_ERR_IO = 2,          /* a file could not be opened, read, mapped, written */
    KQ_ERR_FORMAT = 3,      /* a file is malformed: bad magic, truncated, ...    */
    KQ_ERR_UNSUPPORTED = 4, /* valid, but not something this build can do       */
    KQ_ERR_NO_MEMORY = 5,   /* an allocation failed                              */
    KQ_ERR_NOT_FOUND = 6,   /* no tensor or key of that name                     */
    KQ_ERR_TYPE = 7,        /* a metadata value of another type was asked for    */
    KQ_ERR_RANGE = 8,       /* an index or value out of range (e.g. expert id)   */
    KQ_ERR_BACKEND = 9      /* the device or its runtime failed                  */
} kq_status;

/* A short constant name for a status, e.g. "KQ_ERR_FORMAT". */
KQ_API const char *kq_status_name(kq_status s);

/* The message of the last failed call on this thread ("" if none). Every
 * call that returns a kq_status clears it first; calls that cannot fail
 * (names, sizes, conversions, getters returning plain values) leave it, so
 * it can be printed beside them. The pointer is this thread's buffer. */
KQ_API const char *kq_last_error(void);

/* ---------------------------------------------------------------- types */

/* The ggml type ids used in GGUF files. The reader knows every id below (for
 * sizes); the compute calls accept the ones kq_type_is_supported() says. */
typedef enum kq_type {
    KQ_TYPE_F32 = 0,
    KQ_TYPE_F16 = 1,
    KQ_TYPE_Q4_0 = 2,
    KQ_TYPE_Q4_1 = 3,
    KQ_TYPE_Q5_0 = 6,
    KQ_TYPE_Q5_1 = 7,
    KQ_TYPE_Q8_0 = 8,
    KQ_TYPE_Q8_1 = 9,
    KQ_TYPE_Q2_K = 10,
    KQ_TYPE_Q3_K = 11,
    KQ_TYPE_Q4_K = 12,
    KQ_TYPE_Q5_K = 13,
    KQ_TYPE_Q6_K = 14,
    KQ_TYPE_Q8_K = 15,
    KQ_TYPE_IQ2_XXS = 16,
    KQ_TYPE_IQ2_XS = 17,
    KQ_TYPE_IQ3_XXS = 18,
    KQ_TYPE_IQ1_S = 19,
    KQ_TYPE_IQ4_NL = 20,
    KQ_TYPE_IQ3_S = 21,
    KQ_TYPE_IQ2_S = 22,
    KQ_TYPE_IQ4_XS = 23,
    KQ_TYPE_I8 = 24,
    KQ_TYPE_I16 = 25,
    KQ_TYPE_I32 = 26,
    KQ_TYPE_I64 = 27,
    KQ_TYPE_F64 = 28,
    KQ_TYPE_IQ1_M = 29,
    KQ_TYPE_BF16 = 30,
    KQ_TYPE_TQ1_0 = 34,
    KQ_TYPE_TQ2_0 = 35,
    KQ_TYPE_MXFP4 = 39,
    KQ_TYPE_NVFP4 = 40,
    KQ_TYPE_Q1_0 = 41
} kq_type;

/* "q4_K", "f32", ... for any id a GGUF file may hold; NULL for an unknown id. */
KQ_API const char *kq_type_name(int type);
/* Parses a name as kq_type_name prints it (case-insensitive). */
KQ_API kq_status kq_type_from_name(const char *name, kq_type *out);
/* Elements and bytes per block; 0 for an unknown id. */
KQ_API int64_t kq_type_block_elems(int type);
KQ_API size_t kq_type_block_bytes(int type);
/* 1 if weights of this type can be loaded for compute (F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
 * IQ4_XS). Q8_K is an activation format: it converts, but is not a weight
 * type. */
KQ_API int kq_type_is_supported(int type);
/* Bytes of one row of n_cols elements; fails if n_cols is not a positive
 * multiple of the block or the size overflows. */
KQ_API kq_status kq_row_size(int type, int64_t n_cols, size_t *out);

/* Converts n_rows x n_cols floats to `type` with the library's reference
 * quantizer (F32/F16/BF16 convert, the block types of kq_type_is_supported
 * and Q8_K quantize). dst_bytes must be exactly n_rows * row_size. A block
 * type has no code for inf or NaN: any in src fails the call with
 * KQ_ERR_INVALID_ARG naming the first one's row and column, and dst is not
 * written (F16/BF16 carry them through). Finite values beyond a type's
 * range saturate. */
KQ_API kq_status kq_quantize(int type, const float *src, int64_t n_rows, int64_t n_cols,
                             void *dst, size_t dst_bytes);
/* Expands n_rows x n_cols elements of `type` (src_bytes exactly n_rows *
 * row_size) to floats, bit-exact with the GGUF definition. */
KQ_API kq_status kq_dequantize(int type, const void *src, size_t src_bytes, int64_t n_rows,
                               int64_t n_cols, float *dst);

/* IEEE half and bfloat16 conversions (round to nearest even, NaN kept NaN). */
KQ_API float kq_fp16_to_f32(uint16_t h);
KQ_API uint16_t kq_f32_to_fp16(float f);
KQ_API float kq_bf16_to_f32(uint16_t h);
KQ_API uint16_t kq_f32_to_bf16(float f);

/* ---------------------------------------------------------------- backends */

typedef struct kq_backend kq_backend;

/* spec: "cpu", "cpu:threads=8", "cpu-ref", "cuda", "cuda:1", "auto".
 * Options follow a ':' as comma-separated key=value pairs, each key at most
 * once; an empty option (a leading, trailing or doubled ',') is refused:
 *   cpu, cpu-ref: threads=N, 1 <= N <= 256 (default: one per core, at most
 *                 256; more threads than cores are allowed, up to that bound)
 *   cuda:         N or device=N (the ordinal), host_weights=0|1 (1: weights
 *                 stay in host memory mapped for the GPU, for those that do not
 *                 fit; default 0, uploaded to device memory), gemm=auto|mma|off
 *                 (the tensor-core GEMM for many rows of x: auto runs wgmma on
 *                 Hopper and mma.sync elsewhere, mma forces mma.sync, off keeps
 *                 the batched-decode kernels), gemm_min_m=N (the smallest m
 *                 that takes the GEMM; default: the crossover measured per type)
 * "auto" is cuda where a usable GPU is present, else cpu.
 * KQ_CPU_ISA=scalar|avx2|avx512|neon in the environment forces the cpu
 * backend's instruction set (one the CPU lacks is refused at open). */
KQ_API kq_status kq_backend_open(const char *spec, kq_backend **out);
KQ_API void kq_backend_close(kq_backend *b); /* NULL is a no-op */
/* The backend's kind as opened ("cpu", "cpu-ref", "cuda") and a longer
 * description of the device it runs on. */
KQ_API const char *kq_backend_name(const kq_backend *b);
KQ_API const char *kq_backend_device(const kq_backend *b);
/* Waits for queued work; reports errors found on the device since the last
 * sync. A no-op on CPU backends, which work synchronously. */
KQ_API kq_status kq_backend_sync(kq_backend *b);

/* CUDA: the stream (a cudaStream_t) the backend queues its work on. A backend
 * opens with its own stream; a caller may hand it another (NULL means the
 * backend's own again), and later calls are ordered on that one. The stream
 * must outlive its use. CPU backends: KQ_ERR_UNSUPPORTED, and stream() gives
 * NULL. */
KQ_API kq_status kq_backend_set_stream(kq_backend *b, void *cuda_stream);
KQ_API void *kq_backend_stream(const kq_backend *b);

/* Memory for activations, outputs and ids in the backend's own memory: device
 * memory on CUDA (256-byte aligned), host memory on CPU backends (64-byte
 * aligned), so one program runs on either. kq_free(b, NULL) is a no-op.
 * Forward calls also take pointers the caller allocated itself (cudaMalloc,
 * malloc). */
KQ_API kq_status kq_alloc(kq_backend *b, size_t bytes, void **out);
KQ_API void kq_free(kq_backend *b, void *p);
/* Copies between the host and the backend's memory. Each is ordered after the
 * work already queued on the backend's stream and is complete when the call
 * returns (so copy_to_host of a forward's output waits for that forward). */
KQ_API kq_status kq_copy_to_device(kq_backend *b, void *dst, const void *src, size_t bytes);
KQ_API kq_status kq_copy_to_host(kq_backend *b, void *dst, const void *src, size_t bytes);

/* ---------------------------------------------------------------- GGUF */

typedef struct kq_gguf kq_gguf;
typedef struct kq_gguf_value kq_gguf_value;

/* Metadata value types, numbered as in the file. */
typedef enum kq_gguf_vtype {
    KQ_GGUF_U8 = 0,
    KQ_GGUF_I8 = 1,
    KQ_GGUF_U16 = 2,
    KQ_GGUF_I16 = 3,
    KQ_GGUF_U32 = 4,
    KQ_GGUF_I32 = 5,
    KQ_GGUF_F32 = 6,
    KQ_GGUF_BOOL = 7,
    KQ_GGUF_STRING = 8,
    KQ_GGUF_ARRAY = 9,
    KQ_GGUF_U64 = 10,
    KQ_GGUF_I64 = 11,
    KQ_GGUF_F64 = 12
} kq_gguf_vtype;

KQ_API const char *kq_gguf_vtype_name(int vtype); /* "u32", ...; NULL if unknown */

/* Maps the file read-only, parses and validates it. The mapping is
 * registered: weights loaded from its bytes are used in place, and it stays
 * mapped while any object uses it, even after kq_gguf_close.
 * general.alignment, if present, must be a u32 power of two no larger than
 * 2^24 (16 MiB), whether or not the file holds tensors (KQ_ERR_FORMAT). */
KQ_API kq_status kq_gguf_open(const char *path, kq_gguf **out);
KQ_API void kq_gguf_close(kq_gguf *g); /* NULL is a no-op */

KQ_API uint32_t kq_gguf_version(const kq_gguf *g);
KQ_API uint64_t kq_gguf_file_size(const kq_gguf *g);
KQ_API uint64_t kq_gguf_alignment(const kq_gguf *g);
KQ_API uint64_t kq_gguf_data_offset(const kq_gguf *g); /* file offset of tensor data */

/* Metadata, in file order. Keys are NUL-terminated copies. */
KQ_API int64_t kq_gguf_n_kv(const kq_gguf *g);
KQ_API const char *kq_gguf_kv_key(const kq_gguf *g, int64_t i);            /* NULL if out of range */
KQ_API const kq_gguf_value *kq_gguf_kv_value(const kq_gguf *g, int64_t i); /* NULL if out of range */
KQ_API kq_status kq_gguf_find_kv(const kq_gguf *g, const char *key, const kq_gguf_value **out);

/* A value's type; for arrays also the element type and count. */
KQ_API kq_gguf_vtype kq_gguf_value_type(const kq_gguf_value *v);
KQ_API kq_status kq_gguf_value_array(const kq_gguf_value *v, kq_gguf_vtype *elem_type,
                                     int64_t *count);
/* Scalars. Integers convert between widths when the value fits (else
 * KQ_ERR_RANGE); floats accept f32 and f64; a mismatch is KQ_ERR_TYPE. */
KQ_API kq_status kq_gguf_value_int(const kq_gguf_value *v, int64_t *out);
KQ_API kq_status kq_gguf_value_uint(const kq_gguf_value *v, uint64_t *out);
KQ_API kq_status kq_gguf_value_float(const kq_gguf_value *v, double *out);
KQ_API kq_status kq_gguf_value_bool(const kq_gguf_value *v, int *out);
/* Strings point into the mapping: not NUL-terminated, valid until close. */
KQ_API kq_status kq_gguf_value_string(const kq_gguf_value *v, const char **s, size_t *len);
/* Array elements, same conversions as the scalar getters. */
KQ_API kq_status kq_gguf_array_int(const kq_gguf_value *v, int64_t i, int64_t *out);
KQ_API kq_status kq_gguf_array_uint(const kq_gguf_value *v, int64_t i, uint64_t *out);
KQ_API kq_status kq_gguf_array_float(const kq_gguf_value *v, int64_t i, double *out);
KQ_API kq_status kq_gguf_array_bool(const kq_gguf_value *v, int64_t i, int *out);
KQ_API kq_status kq_gguf_array_string(const kq_gguf_value *v, int64_t i, const char **s,
                                      size_t *len);
/* An element of an array of arrays. */
KQ_API kq_status kq_gguf_array_item(const kq_gguf_value *v, int64_t i,
                                    const kq_gguf_value **out);

/* By key, for the common case. */
KQ_API kq_status kq_gguf_get_int(const kq_gguf *g, const char *key, int64_t *out);
KQ_API kq_status kq_gguf_get_uint(const kq_gguf *g, const char *key, uint64_t *out);
KQ_API kq_status kq_gguf_get_float(const kq_gguf *g, const char *key, double *out);
KQ_API kq_status kq_gguf_get_bool(const kq_gguf *g, const char *key, int *out);
KQ_API kq_status kq_gguf_get_string(const kq_gguf *g, const char *key, const char **s,
                                    size_t *len);

typedef struct kq_tensor_info {
    const char *name;  /* NUL-terminated, valid until close */
    int type;          /* ggml type id (kq_type_name gives its name) */
    int n_dims;        /* 1..4 */
    int64_t ne[4];     /* ne[0] = row length; unused dims are 1 */
    uint64_t offset;   /* relative to kq_gguf_data_offset */
    uint64_t nbytes;   /* bytes of tensor data */
    const void *data;  /* in the read-only mapping */
} kq_tensor_info;

KQ_API int64_t kq_gguf_n_tensors(const kq_gguf *g);
KQ_API kq_status kq_gguf_tensor(const kq_gguf *g, int64_t i, kq_tensor_info *out);
KQ_API kq_status kq_gguf_find_tensor(const kq_gguf *g, const char *name, kq_tensor_info *out);

/* Writing. Keys and tensors are written in the order they are added; the
 * tensor bytes are copied at add time. Alignment is general.alignment if set
 * as a u32 before kq_gguf_writer_save, else 32. */
typedef struct kq_gguf_writer kq_gguf_writer;
KQ_API kq_status kq_gguf_writer_new(uint32_t version, kq_gguf_writer **out); /* 2 or 3 */
KQ_API void kq_gguf_writer_free(kq_gguf_writer *w);                          /* NULL is a no-op */
/* Scalars: vtype one of the integer, float or bool types; `value` points at
 * one element of that type (uint32_t for KQ_GGUF_U32, uint8_t for BOOL...). */
KQ_API kq_status kq_gguf_writer_set(kq_gguf_writer *w, const char *key, kq_gguf_vtype vtype,
                                    const void *value);
KQ_API kq_status kq_gguf_writer_set_string(kq_gguf_writer *w, const char *key, const char *s,
                                           size_t len);
/* Arrays of scalars: n elements of elem_type, packed. */
KQ_API kq_status kq_gguf_writer_set_array(kq_gguf_writer *w, const char *key,
                                          kq_gguf_vtype elem_type, const void *elems, int64_t n);
KQ_API kq_status kq_gguf_writer_set_string_array(kq_gguf_writer *w, const char *key,
                                                 const char *const *strs, const size_t *lens,
                                                 int64_t n);
/* Any value, nested arrays included, copied from an open file's value. */
KQ_API kq_status kq_gguf_writer_set_value(kq_gguf_writer *w, const char *key,
                                          const kq_gguf_value *v);
/* A tensor of ne[0..n_dims-1]; nbytes must equal the size implied by type and ne. */
KQ_API kq_status kq_gguf_writer_add_tensor(kq_gguf_writer *w, const char *name, int type,
                                           int n_dims, const int64_t *ne, const void *data,
                                           size_t nbytes);
/* Writes the file: to a temporary file beside `path`, renamed over it once
 * complete, so a failed save leaves `path` as it was. `path` must be a regular
 * file or not exist yet: a symbolic link, FIFO, device, directory or socket
 * is refused with KQ_ERR_IO (the rename would replace it rather than write
 * through it). An existing file keeps its permission bits; a new one gets
 * 0666 less the umask. If SIGINT or SIGTERM ends the process during the save
 * while that signal has its default disposition, the temporary file is
 * removed first (a program with its own handler cleans up its own way).
 * general.alignment is at most 2^24, as for reading. */
KQ_API kq_status kq_gguf_writer_save(kq_gguf_writer *w, const char *path);

/* ---------------------------------------------------------------- layers */

typedef struct kq_linear kq_linear;
typedef struct kq_experts kq_experts;

/* One part of a fused linear: n_rows rows of `type`, nbytes exactly n_rows *
 * row_size(type, n_cols). Parts are stacked by rows in order. */
typedef struct kq_part {
    int type;
    const void *bytes;
    size_t nbytes;
    int64_t n_rows;
} kq_part;

/* Weights inside a registered GGUF mapping are used in place (the linear holds
 * a reference on the mapping); other bytes are copied, so the caller's buffer
 * may be freed after the call. */
KQ_API kq_status kq_linear_load(kq_backend *b, int type, const void *bytes, size_t nbytes,
                                int64_t n_rows, int64_t n_cols, kq_linear **out);
KQ_API kq_status kq_linear_load_fused(kq_backend *b, const kq_part *parts, int n_parts,
                                      int64_t n_cols, kq_linear **out);
/* A 2-D tensor of the file by name. */
KQ_API kq_status kq_linear_from_gguf(kq_backend *b, const kq_gguf *g, const char *name,
                                     kq_linear **out);
/* Several 2-D tensors with the same row length, fused in the given order. */
KQ_API kq_status kq_linear_from_gguf_fused(kq_backend *b, const kq_gguf *g,
                                           const char *const *names, int n_names,
                                           kq_linear **out);
KQ_API void kq_linear_free(kq_linear *l); /* NULL is a no-op */
KQ_API int64_t kq_linear_rows(const kq_linear *l);
KQ_API int64_t kq_linear_cols(const kq_linear *l);
KQ_API int kq_linear_n_parts(const kq_linear *l);
/* 1 if the weights are used in place from a file mapping (on CUDA: only with
 * host_weights=1; uploaded weights are copies). */
KQ_API int kq_linear_is_zero_copy(const kq_linear *l);

/* Activations outside the ordinary range, on every backend:
 *  - A NaN or an infinity anywhere in row i of x makes every element of
 *    y[i, :] non-finite (NaN or +-Inf: which one is not specified; backends
 *    that quantize x, cpu and cuda, give NaN, cpu-ref may give +-Inf). The
 *    other rows of the call are unaffected. The same holds per (token, slot)
 *    row for experts and for SwiGLU outputs.
 *  - Finite x with |x| <= 2^64 gives finite y that agrees with the exact
 *    product within the backend's usual accuracy, as long as the exact
 *    result is itself within float range.
 *  - Finite x beyond 2^64 (up to FLT_MAX) may overflow a float intermediate
 *    (a block scale times an integer dot product) and give +-Inf or NaN
 *    where the exact result would fit in a float: scale such activations
 *    down first. cpu-ref, which sums in double, is exact there too.
 * No call fails because of the values in x. */

/* y[m, N] = x[m, K] * W^T. On CUDA, x and y are device pointers. */
KQ_API kq_status kq_linear_forward(kq_backend *b, const kq_linear *l, const float *x, float *y,
                                   int64_t m);

/* SwiGLU in one call, for feed-forward layers: the linear's rows are gate
 * rows then up rows (n_rows even: typically a fused gate/up of two parts of
 * equal rows, or one tensor holding both), and with h = n_rows / 2
 *   y[i, r] = silu(g) * u,  g = (x W^T)[i, r],  u = (x W^T)[i, h + r],
 * silu(g) = g / (1 + exp(-g)). y is [m, h]. */
KQ_API kq_status kq_linear_forward_swiglu(kq_backend *b, const kq_linear *gate_up,
                                          const float *x, float *y, int64_t m);

/* The gate of a gated feed-forward (kq_linear_forward_glu). */
typedef enum kq_glu {
    KQ_GLU_SILU = 0, /* SwiGLU (Llama, Qwen, Mistral): g / (1 + exp(-g)) */
    KQ_GLU_GELU = 1  /* GeGLU (Gemma), GELU in its tanh form as llama.cpp computes it:
                      * 0.5 g (1 + tanh(sqrt(2 / pi) (g + 0.044715 g^3))) */
} kq_glu;

/* kq_linear_forward_swiglu with the gate function `act`:
 *   y[i, r] = act(g) * u, y is [m, h]. */
KQ_API kq_status kq_linear_forward_glu(kq_backend *b, const kq_linear *gate_up, const float *x,
                                       float *y, int64_t m, kq_glu act);

/* bytes hold n_experts contiguous slabs of [n_rows, n_cols]. */
KQ_API kq_status kq_experts_load(kq_backend *b, int type, const void *bytes, size_t nbytes,
                                 int64_t n_experts, int64_t n_rows, int64_t n_cols,
                                 kq_experts **out);
/* A 3-D tensor (ne = [K, N, E]) of the file by name. */
KQ_API kq_status kq_experts_from_gguf(kq_backend *b, const kq_gguf *g, const char *name,
                                      kq_experts **out);
KQ_API void kq_experts_free(kq_experts *e); /* NULL is a no-op */
KQ_API int64_t kq_experts_count(const kq_experts *e);
KQ_API int64_t kq_experts_rows(const kq_experts *e);
KQ_API int64_t kq_experts_cols(const kq_experts *e);
KQ_API int kq_experts_is_zero_copy(const kq_experts *e);

/* For each token i < m and slot s < top_k, e = ids[i * top_k + s]:
 *   y[(i * top_k + s), :] = W_e * x[i * token_stride + s * slot_stride .. + K]
 * Strides are in floats: slot_stride 0 broadcasts one row to all slots (gate/
 * up), slot_stride K gives each slot its own row (down). y is [m * top_k, N].
 * An id outside [0, E) fails with KQ_ERR_RANGE and names the pair; on CUDA it
 * is caught on the device and reported by the next kq_backend_sync. */
KQ_API kq_status kq_experts_forward(kq_backend *b, const kq_experts *e, const float *x,
                                    int64_t token_stride, int64_t slot_stride,
                                    const int32_t *ids, int64_t m, int64_t top_k, float *y);

/* SwiGLU over experts: gate and up hold the same number of experts of the
 * same shape (their types may differ). For each pair, with W_g and W_u the
 * experts its id names, y[(i * top_k + s), r] = silu(W_g x)[r] * (W_u x)[r].
 * Arguments as kq_experts_forward; y is [m * top_k, N]. */
KQ_API kq_status kq_experts_forward_swiglu(kq_backend *b, const kq_experts *gate,
                                           const kq_experts *up, const float *x,
                                           int64_t token_stride, int64_t slot_stride,
                                           const int32_t *ids, int64_t m, int64_t top_k,
                                           float *y);

/* ---------------------------------------------------------------- introspection */

/* Where a loaded layer's weight bytes lie in host memory, as a kq_part
 * (type, bytes, nbytes, n_rows): inside the file mapping when used in place,
 * else the library's own copy. For tests and bindings that check zero-copy
 * by address; the bytes are read-only and valid while the layer lives.
 * part is in [0, kq_linear_n_parts); experts give all slabs as one part of
 * n_experts * n_rows rows. */
KQ_API kq_status kq_linear_part(const kq_linear *l, int part, kq_part *out);
KQ_API kq_status kq_experts_weights(const kq_experts *e, kq_part *out);

#ifdef __cplusplus
}
#endif

#endif /* KQUANT_H */
