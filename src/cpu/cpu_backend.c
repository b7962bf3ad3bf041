/* The "cpu" backend. Placeholder until the SIMD kernels land: it runs the
 * reference kernels. */
#include "core/core.h"

kq_status kq__cpu_open(kq_backend *b) { return kq__cpu_ref_open(b); }
