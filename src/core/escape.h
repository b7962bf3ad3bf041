/* Escaping of untrusted strings (names, keys, values, paths from files and
 * callers) before they reach a message or a terminal: control characters,
 * escape sequences, invalid UTF-8 and the Unicode bidirectional overrides
 * become \xNN / \u{NNNN}, and the length shown is bounded. One
 * implementation for the library's error messages (error.c) and the kq
 * tool's output (tools/print_escaped.c). */
#ifndef KQ_CORE_ESCAPE_H
#define KQ_CORE_ESCAPE_H

#include <stddef.h>

enum {
    KQ_ESC_BACKSLASH = 1, /* also write '\\' as "\\\\" (unambiguous output)        */
    KQ_ESC_QUOTE = 2      /* also write '"' as "\\\"" (for output inside quotes)     */
};

/* Writes the escaped form of the first max_shown bytes of s[0..len) into
 * buf (always NUL-terminated within cap); when the string is cut there (or
 * by cap), "... (LEN bytes)" follows. Returns buf. */
const char *kq__escape(char *buf, size_t cap, const char *s, size_t len, size_t max_shown,
                       unsigned flags);

/* Escapes a NUL-terminated string in place within cap bytes (cut with
 * "..." if the escapes make it longer); backslashes and quotes are left. */
void kq__escape_in_place(char *s, size_t cap);

#endif
