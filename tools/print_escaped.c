/* Bounded, escaped output of file strings (print_escaped.h says why); the
 * escaping itself is the library's (src/core/escape.c), shared with its
 * error messages. */
#include "print_escaped.h"

#include <string.h>

#include "core/escape.h"

const char *kq_escape(char *buf, size_t cap, const char *s, size_t len, size_t max_shown,
                      int quoted)
{
    return kq__escape(buf, cap, s, len, max_shown,
                      KQ_ESC_BACKSLASH | (quoted ? (unsigned)KQ_ESC_QUOTE : 0u));
}

const char *kq_escape_str(char *buf, size_t cap, const char *s)
{
    return kq_escape(buf, cap, s ? s : "(null)", s ? strlen(s) : 6, KQ_ESC_SHOW * 4, 0);
}

void kq_print_escaped(FILE *f, const char *s, size_t len, size_t max_shown, int quoted)
{
    char buf[KQ_ESC_CAP];
    if (max_shown > KQ_ESC_SHOW) max_shown = KQ_ESC_SHOW;
    fputs(kq_escape(buf, sizeof buf, s, len, max_shown, quoted), f);
}
