/* Thread-local error message storage. A fixed buffer per thread: setting a
 * message never allocates, so an out-of-memory failure can still be told.
 * Messages quote names, keys and paths that come from files and callers;
 * every message is escaped as it is set (escape.h), so none can carry a
 * control character or terminal escape sequence to whoever prints it. */
#include "error.h"
#include "escape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KQ_ERROR_CAP 1024

static _Thread_local char g_msg[KQ_ERROR_CAP];

const char *kq_last_error(void) { return g_msg; }

void kq__clear_error(void) { g_msg[0] = '\0'; }

kq_status kq__fail(kq_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    kq__escape_in_place(g_msg, sizeof g_msg);
    return s;
}

kq_status kq__fail_context(kq_status s, const char *fmt, ...)
{
    char inner[KQ_ERROR_CAP];
    memcpy(inner, g_msg, sizeof inner);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof g_msg)
        snprintf(g_msg + n, sizeof g_msg - (size_t)n, "%s", inner);
    kq__escape_in_place(g_msg, sizeof g_msg);
    return s;
}

const char *kq_status_name(kq_status s)
{
    switch (s) {
    case KQ_OK: return "KQ_OK";
    case KQ_ERR_INVALID_ARG: return "KQ_ERR_INVALID_ARG";
    case KQ_ERR_IO: return "KQ_ERR_IO";
    case KQ_ERR_FORMAT: return "KQ_ERR_FORMAT";
    case KQ_ERR_UNSUPPORTED: return "KQ_ERR_UNSUPPORTED";
    case KQ_ERR_NO_MEMORY: return "KQ_ERR_NO_MEMORY";
    case KQ_ERR_NOT_FOUND: return "KQ_ERR_NOT_FOUND";
    case KQ_ERR_TYPE: return "KQ_ERR_TYPE";
    case KQ_ERR_RANGE: return "KQ_ERR_RANGE";
    case KQ_ERR_BACKEND: return "KQ_ERR_BACKEND";
    }
    return "KQ_ERR_UNKNOWN";
}

const char *kq_version(void) { return KQ_VERSION_STRING; }
