/* UTF-8 and Unicode classes for the tokenizers. The decoding rules are the
 * ones llama.cpp's tokenizers use (docs/tokenizers.md), not a validating
 * decoder's: the ids must match theirs byte for byte. */
#ifndef KQ_MODEL_UNICODE_H
#define KQ_MODEL_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* General category classes (tools/gen_unicode_table.py writes the table). */
enum kq_ucat {
    KQ_UCAT_UNASSIGNED = 0,
    KQ_UCAT_LETTER = 1,
    KQ_UCAT_NUMBER = 2,
    KQ_UCAT_MARK = 3,
    KQ_UCAT_PUNCT = 4,
    KQ_UCAT_SYMBOL = 5,
    KQ_UCAT_SEPARATOR = 6,
    KQ_UCAT_OTHER = 7
};

extern const uint32_t kq__ucat_ranges[];
extern const size_t kq__ucat_n_ranges;
extern const char kq__ucat_unicode_version[];

/* Class of a code point; past U+10FFFF, KQ_UCAT_UNASSIGNED. */
enum kq_ucat kq__ucat(uint32_t cp);
/* The White_Space property (\s of the pre-tokenizer regexes). */
int kq__uspace(uint32_t cp);

/* Bytes of the character a lead byte starts, from its high four bits alone
 * (1 for 0x00-0xBF, 2 for 0xC0-0xDF, 3 for 0xE0-0xEF, 4 for 0xF0-0xFF), as the
 * SPM and BPE symbol splitters count them. */
static inline size_t kq__utf8_len(unsigned char lead)
{
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[lead >> 4];
}

/* Decodes one code point at s[0..n) (n > 0) and returns its byte count. A
 * malformed sequence (stray continuation byte, missing continuation, lead
 * byte 0xF8-0xFF) decodes as U+FFFD and consumes one byte. Overlong forms and
 * surrogates decode as what their bits say. Sequences past U+10FFFF, which
 * llama.cpp cannot encode back (it throws), are treated as malformed. */
size_t kq__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encodes cp (<= 0x10FFFF) into out[0..4) and returns its byte count. */
size_t kq__utf8_encode(uint32_t cp, unsigned char out[4]);

#endif
