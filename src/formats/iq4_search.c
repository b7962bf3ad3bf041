/* IQ4 grid search (iq4_search.h). Sums are in double: a float sum of x * g
 * over 32 elements would overflow for |x| past ~1e36, and the grid's
 * uneven spacing leaves no closed form to scale by. */
#include "iq4_search.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "kquant.h"
#include "kquant_search.h"

int kq__iq4_nearest(float v)
{
    const int8_t *g = kq_iq4nl_values;
    if (!(v > g[0])) return 0; /* below the grid, or NaN */
    if (v >= g[15]) return 15;
    int lo = 0, hi = 15; /* g[lo] < v <= g[hi] */
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (g[mid] < v) lo = mid;
        else hi = mid;
    }
    return (v - g[lo] <= g[hi] - v) ? lo : hi;
}

void kq__iq4_codes(const float *x, int n, float d, uint8_t *L)
{
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)kq__iq4_nearest(x[i] * id);
}

double kq__iq4_sse(const float *x, int n, float d, const uint8_t *L)
{
    double sse = 0;
    for (int i = 0; i < n; i++) {
        const double diff = (double)(d * (float)kq_iq4nl_values[L[i]]) - x[i];
        sse += diff * diff;
    }
    return sse;
}

/* Least-squares scale for fixed codes: sum(x g) / sum(g^2); *gain gets
 * sum(x g)^2 / sum(g^2), the reduction of the squared error it achieves. */
static double ls_scale(const float *x, int n, const uint8_t *L, double *gain)
{
    double sxg = 0, sgg = 0;
    for (int i = 0; i < n; i++) {
        const double g = kq_iq4nl_values[L[i]];
        sxg += x[i] * g;
        sgg += g * g;
    }
    *gain = sxg * sxg / sgg; /* sgg > 0: no grid value is 0 */
    return sxg / sgg;
}

float kq__iq4_search(const float *x, int n, uint8_t *L)
{
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (!(amax > 0)) {
        for (int i = 0; i < n; i++) L[i] = (uint8_t)kq__iq4_nearest(0.0f);
        return 0.0f;
    }

    uint8_t cand[256];
    if (n > 256) n = 256; /* callers pass 32; never more than a super-block */
    double best_gain = -1, best_d = 0;
    /* the largest element at grid position end + t, for both ends */
    static const float ends[2] = {-127.0f, 113.0f};
    for (int e = 0; e < 2; e++) {
        for (int t = -10; t <= 10; t++) {
            const float id = (ends[e] + (float)t * (e == 0 ? 1.0f : -1.0f)) / max;
            for (int i = 0; i < n; i++) cand[i] = (uint8_t)kq__iq4_nearest(x[i] * id);
            double gain;
            const double d = ls_scale(x, n, cand, &gain);
            if (gain > best_gain) {
                best_gain = gain;
                best_d = d;
                for (int i = 0; i < n; i++) L[i] = cand[i];
            }
        }
    }
    /* a few rounds of re-assignment under the least-squares scale */
    for (int round = 0; round < 3; round++) {
        kq__iq4_codes(x, n, (float)best_d, cand);
        double gain;
        const double d = ls_scale(x, n, cand, &gain);
        if (!(gain > best_gain)) break;
        best_gain = gain;
        best_d = d;
        for (int i = 0; i < n; i++) L[i] = cand[i];
    }
    /* |best_d| <= amax in exact arithmetic (|grid| >= 1); keep the
     * double -> float conversion defined whatever rounding did */
    if (best_d > FLT_MAX) best_d = FLT_MAX;
    if (best_d < -FLT_MAX) best_d = -FLT_MAX;
    return (float)best_d;
}

uint16_t kq__iq4_store_scale(const float *x, int n, float d, uint8_t *L)
{
    const uint16_t h0 = kq__fp16_scale(d);
    kq__iq4_codes(x, n, kq_fp16_to_f32(h0), L);
    if (!(d == d) || n > 256) return h0;
    double best = kq__iq4_sse(x, n, kq_fp16_to_f32(h0), L);
    uint16_t best_h = h0;

    /* Where d is an fp16 subnormal a step is a large part of it, and the
     * grid's asymmetry can make the other sign better: the candidates are
     * the halves within two steps of d and of the two max-based scales
     * (the largest element on either end of the grid). */
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    const float wanted[3] = {d, max / kq_iq4nl_values[0], max / kq_iq4nl_values[15]};
    uint8_t cand[256];
    for (int w = 0; w < 3; w++) {
        const uint16_t hw = kq__fp16_scale(wanted[w]);
        const unsigned sign = hw & 0x8000u, mag = hw & 0x7fffu;
        for (int step = -2; step <= 2; step++) {
            const int m = (int)mag + step;
            if (m < 1 || m > 0x7bff) continue; /* neither zero nor past the largest finite */
            const uint16_t h = (uint16_t)(sign | (unsigned)m);
            const float dh = kq_fp16_to_f32(h);
            kq__iq4_codes(x, n, dh, cand);
            const double e = kq__iq4_sse(x, n, dh, cand);
            if (e < best) {
                best = e;
                best_h = h;
                memcpy(L, cand, (size_t)n);
            }
        }
    }
    return best_h;
}
