/* Vector loops of the model layer (vec.c): AVX2+FMA where the CPU has it. */
#ifndef KQ_MODEL_VEC_H
#define KQ_MODEL_VEC_H

#include <stdint.h>

float kq__vdot(const float *a, const float *b, int64_t n);
void kq__vaxpy(float *y, float a, const float *x, int64_t n); /* y += a x */
/* y = gelu(g) * u, GELU in its tanh form. */
void kq__vgelu_mul(const float *g, const float *u, float *y, int64_t n);

#endif
