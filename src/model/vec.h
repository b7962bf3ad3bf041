/* Vector loops of the model layer (vec.c): AVX2+FMA where the CPU has it. */
#ifndef KQ_MODEL_VEC_H
#define KQ_MODEL_VEC_H

#include <stdint.h>

/* out[j * out_stride + h] = q_h . k_j for nq queries q_h = q + h q_stride
 * and nk keys k_j = k + j k_stride (each one dot product summed in 8 lanes, then across them). */
void kq__vdot_block(const float *q, int64_t q_stride, int nq, const float *k, int64_t k_stride,
                    int nk, int64_t n, float *out, int out_stride);
/* y_h += sum over j < nx of w[j * w_stride + h] x_j, for ny rows
 * y_h = y + h y_stride and nx rows x_j = x + j x_stride (keys' values). */
void kq__vaxpy_block(float *y, int64_t y_stride, int ny, const float *w, int w_stride,
                     const float *x, int64_t x_stride, int nx, int64_t n);

#endif
