/* Strings from a file reach the terminal only through here: a bounded prefix,
 * with control characters, escape sequences, invalid UTF-8 and the Unicode
 * bidirectional overrides written as \xNN / \u{NNNN}, so a crafted key, name
 * or value can neither run past its length nor drive the terminal. */
#ifndef KQ_TOOL_PRINT_ESCAPED_H
#define KQ_TOOL_PRINT_ESCAPED_H

#include <stddef.h>
#include <stdio.h>

/* Room for an escaped string of up to KQ_ESC_SHOW source bytes (each may
 * grow to 10 output bytes: "\u{202e}") with its "... (N bytes)" tail. */
#define KQ_ESC_SHOW 72
#define KQ_ESC_CAP (KQ_ESC_SHOW * 10 + 48)

/* Writes the escaped form of the first `max_shown` bytes of s[0..len) into
 * buf (always NUL-terminated, never more than cap bytes); when the string is
 * cut, "... (LEN bytes)" follows. quoted: also escape '"' (for output that
 * wraps the string in quotes). Returns buf. */
const char *kq_escape(char *buf, size_t cap, const char *s, size_t len, size_t max_shown,
                      int quoted);

/* The same for a NUL-terminated string (a tensor name, a key, a path). */
const char *kq_escape_str(char *buf, size_t cap, const char *s);

/* Prints kq_escape's output of s to f. */
void kq_print_escaped(FILE *f, const char *s, size_t len, size_t max_shown, int quoted);

#endif
