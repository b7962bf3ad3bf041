/* UTF-8 decoding and Unicode classes for the tokenizers (docs/tokenizers.md). */
#include "model/unicode.h"

enum kq_ucat kq__ucat(uint32_t cp)
{
    if (cp >= 0x110000) return KQ_UCAT_UNASSIGNED;
    /* Last range whose first code point is <= cp. */
    size_t lo = 0, hi = kq__ucat_n_ranges;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((kq__ucat_ranges[mid] >> 4) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (enum kq_ucat)(kq__ucat_ranges[lo] & 15u);
}

int kq__uspace(uint32_t cp)
{
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return 0;
    if (cp >= 0x2000 && cp <= 0x200A) return 1;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return 0;
    }
}

static int is_cont(unsigned char b) { return (b & 0xC0) == 0x80; }

size_t kq__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len = (b & 0x40) == 0 ? 0 : (b & 0x20) == 0 ? 2 : (b & 0x10) == 0 ? 3
               : (b & 0x08) == 0 ? 4 : 0;
    if (len == 0 || len > n) goto bad;
    for (size_t i = 1; i < len; i++)
        if (!is_cont(s[i])) goto bad;
    uint32_t v;
    if (len == 2)
        v = ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3Fu);
    else if (len == 3)
        v = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3Fu);
    else
        v = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
            ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3Fu);
    if (v > 0x10FFFF) goto bad;
    *cp = v;
    return len;
bad:
    *cp = 0xFFFD;
    return 1;
}

size_t kq__utf8_encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | ((cp >> 18) & 0x07));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
