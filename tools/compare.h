/* How far a backend's output is from the reference's, and how far it may be.
 * Shared by `kq bench` (which checks each op before timing it) and
 * `kq verify`, so both judge a backend by the same rule. */
#ifndef KQ_TOOL_COMPARE_H
#define KQ_TOOL_COMPARE_H

#include <stddef.h>

/* Relative Frobenius error ||y - ref|| / ||ref|| over n floats, in double.
 * Any NaN or inf in y (where ref is finite) gives +inf, so an unwritten or
 * poisoned output never passes. A zero reference gives ||y||. */
double kq_rel_error(const float *y, const float *ref, size_t n);

/* The largest kq_rel_error a backend may show against cpu-ref on random
 * inputs. cpu-ref against itself must be exact up to the float rounding of
 * the result; the other backends may round activations to int8 or fp16. */
double kq_rel_tolerance(const char *backend_name);

#endif
