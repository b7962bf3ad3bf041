/* Thread-local error messages: every failing call names what was wrong. */
#ifndef KQ_CORE_ERROR_H
#define KQ_CORE_ERROR_H

#include "kquant.h"

#if defined(__GNUC__)
#define KQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KQ_PRINTF(a, b)
#endif

/* Sets this thread's message (printf-style) and returns `s`, so a check reads
 *   if (n < 0) return kq__fail(KQ_ERR_INVALID_ARG, "n_rows = %lld: must be > 0", n); */
kq_status kq__fail(kq_status s, const char *fmt, ...) KQ_PRINTF(2, 3);

/* Prefixes the current message with context ("loading 'blk.0.attn_q': "),
 * keeping what the inner call said. Returns `s`. */
kq_status kq__fail_context(kq_status s, const char *fmt, ...) KQ_PRINTF(2, 3);

/* Each public entry point starts by clearing the message. */
void kq__clear_error(void);

#endif
