/* The scale search over the non-linear IQ4 grid (kq_iq4nl_values) shared by
 * the IQ4_NL and IQ4_XS quantizers. */
#ifndef KQ_FORMATS_IQ4_SEARCH_H
#define KQ_FORMATS_IQ4_SEARCH_H

#include <stdint.h>

/* The grid index whose value is nearest to v (v in grid units, x / d); the
 * lower index on a tie, 0 for NaN. */
int kq__iq4_nearest(float v);

/* The float scale d (signed) minimising sum (x - d * grid[L])^2 over n
 * elements, found by trying the element of largest magnitude at every grid
 * position near either end, then least squares and re-assignment. L gets
 * the codes (0..15). An all-zero x gives 0 and the codes of 0. */
float kq__iq4_search(const float *x, int n, uint8_t *L);

/* Squared error of x against d * grid[L] as a decoder computes it (float
 * product), in double. */
double kq__iq4_sse(const float *x, int n, float d, const uint8_t *L);

/* Nearest codes of x under the stored scale d (all codes of 0 when d is 0). */
void kq__iq4_codes(const float *x, int n, float d, uint8_t *L);

/* The fp16 scale to store for the wanted scale d: its rounding (saturating)
 * and the halves near it and near the two max-based scales are each tried
 * with nearest codes, the least squared error kept (this matters where d
 * is an fp16 subnormal, with few bits left). L gets the codes under the
 * returned half. */
uint16_t kq__iq4_store_scale(const float *x, int n, float d, uint8_t *L);

#endif
