/* A backend's ceilings: the fastest its device can stream weights and do the
 * arithmetic its kernels use, measured on the spot. `kq bench` prints every
 * timing as a fraction of these, measured in the same run. Internal: the kq
 * tool links the static library and reads it from here. */
#ifndef KQ_CORE_CEILINGS_H
#define KQ_CORE_CEILINGS_H

#include "kquant.h"

typedef struct kq_ceilings {
    double read_gbs;      /* streaming read bandwidth of the memory the weights sit in, 1e9 B/s */
    double compute_tops;  /* peak of the arithmetic the kernels use, 1e12 op/s (2 per multiply-add) */
    double int8_tops;     /* int8 dot-product peak; 0 where not measured */
    double fp16_tflops;   /* fp16 multiply-add peak (tensor cores on CUDA); 0 where not measured */
    char compute_what[64]; /* which of them compute_tops is, and by what instruction */
    unsigned long long llc_bytes; /* last-level cache: weights rotate beyond it */
} kq_ceilings;

/* Measures (about a second on a CPU, less on a GPU). */
kq_status kq__backend_ceilings(kq_backend *b, kq_ceilings *out);

/* The measurements themselves, for backends of each kind. */
kq_status kq__cpu_ceilings(int threads, kq_ceilings *out);
#ifdef KQ_HAVE_CUDA
kq_status kq__cuda_ceilings(int device, kq_ceilings *out);
#endif

#endif
