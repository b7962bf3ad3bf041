/* Escaping of untrusted strings (escape.h). */
#include "escape.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Bytes of the UTF-8 sequence starting at s[0] (with `room` bytes
 * available) and its code point; 0 if it is not a well-formed sequence
 * (stray continuation, overlong form, surrogate, past U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *s, size_t room, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t n;
    uint32_t c;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b >= 0xC2 && b <= 0xDF) n = 2, c = b & 0x1Fu;
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3, c = b & 0x0Fu;
        if (b == 0xE0) lo = 0xA0;      /* overlong */
        if (b == 0xED) hi = 0x9F;      /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4, c = b & 0x07u;
        if (b == 0xF0) lo = 0x90;      /* overlong */
        if (b == 0xF4) hi = 0x8F;      /* past U+10FFFF */
    } else
        return 0;
    if (room < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    *cp = c;
    return n;
}

/* Code points that are valid text but act on the terminal or reorder what
 * follows: C1 controls, bidirectional marks and overrides, line separators. */
static int is_invisible_control(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9F) || c == 0x061C || c == 0x200E || c == 0x200F ||
           (c >= 0x2028 && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF;
}

typedef struct out {
    char *buf;
    size_t cap, used;
} out;

/* Appends n bytes if they fit (leaving room for the NUL); else nothing. */
static int put(out *o, const char *p, size_t n)
{
    if (o->used + n + 1 > o->cap) return -1;
    memcpy(o->buf + o->used, p, n);
    o->used += n;
    o->buf[o->used] = '\0';
    return 0;
}

const char *kq__escape(char *buf, size_t cap, const char *s, size_t len, size_t max_shown,
                       unsigned flags)
{
    if (!buf || cap == 0) return "";
    buf[0] = '\0';
    if (!s) return buf;
    /* The tail "... (N bytes)" is at most 4 + 2 + 20 + 7 bytes. */
    enum { TAIL = 40 };
    out o = {buf, cap > TAIL ? cap - TAIL : cap, 0};
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        char tmp[16];
        size_t n = 1, w;
        unsigned char b = u[i];
        uint32_t cp;
        if (b >= 0x20 && b < 0x7f) {
            if ((b == '\\' && (flags & KQ_ESC_BACKSLASH)) || (b == '"' && (flags & KQ_ESC_QUOTE)))
                tmp[0] = '\\', tmp[1] = (char)b, w = 2;
            else tmp[0] = (char)b, w = 1;
        } else if (b == '\n') {
            memcpy(tmp, "\\n", 2), w = 2;
        } else if (b == '\t') {
            memcpy(tmp, "\\t", 2), w = 2;
        } else if (b >= 0x80 && (n = utf8_seq(u + i, len - i, &cp)) != 0) {
            if (is_invisible_control(cp))
                w = (size_t)snprintf(tmp, sizeof tmp, "\\u{%04x}", (unsigned)cp);
            else
                memcpy(tmp, u + i, n), w = n;
        } else {
            n = 1;
            w = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", b);
        }
        if (i + n > max_shown || put(&o, tmp, w)) break;
        i += n;
    }
    if (i < len) {
        o.cap = cap;
        char tail[TAIL];
        int t = snprintf(tail, sizeof tail, "... (%zu bytes)", len);
        if (t > 0) put(&o, tail, (size_t)t);
    }
    return buf;
}

void kq__escape_in_place(char *s, size_t cap)
{
    char tmp[4096];
    size_t len = strlen(s);
    if (cap > sizeof tmp) cap = sizeof tmp;
    /* Nothing to do for plain printable ASCII, the common case. */
    size_t i = 0;
    while (i < len && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) i++;
    if (i == len) return;
    kq__escape(tmp, cap, s, len, len, 0);
    memcpy(s, tmp, strlen(tmp) + 1);
}
