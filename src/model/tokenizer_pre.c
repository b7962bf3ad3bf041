/* Pre-tokenizers of byte-level BPE: hand-written scanners equivalent to the
 * regexes tokenizer.ggml.pre names, with llama.cpp's reading of them where it
 * differs from a regex engine's (docs/tokenizers.md). Each step matches one
 * word at `pos` by the first alternative of the regex that matches there. */
#include "core/error.h"
#include "model/tokenizer_impl.h"
#include "model/unicode.h"

enum { F_IN = 1, F_LETTER = 2, F_NUMBER = 4, F_SPACE = 8 };

typedef struct scan {
    const uint32_t *cp;
    size_t n;
    size_t *lens;
    size_t n_words, start;
} scan;

/* Class flags of the code point at i; 0 past the end. */
static unsigned flags(const scan *s, size_t i)
{
    if (i >= s->n) return 0;
    uint32_t c = s->cp[i];
    unsigned f = F_IN;
    if (kq__uspace(c)) f |= F_SPACE;
    enum kq_ucat k = kq__ucat(c);
    if (k == KQ_UCAT_LETTER) f |= F_LETTER;
    if (k == KQ_UCAT_NUMBER) f |= F_NUMBER;
    return f;
}

static uint32_t at(const scan *s, size_t i) { return i < s->n ? s->cp[i] : 0xFFFFFFFFu; }

/* Ends the current word at `end` (nothing when it would be empty). */
static void cut(scan *s, size_t end)
{
    if (end > s->start) s->lens[s->n_words++] = end - s->start;
    s->start = end;
}

static uint32_t lower_ascii(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive: the length matched. */
static size_t contraction(const scan *s, size_t pos, int any_case)
{
    if (at(s, pos) != '\'' || pos + 1 >= s->n) return 0;
    uint32_t a = at(s, pos + 1);
    if (any_case) a = lower_ascii(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= s->n) return 0;
    uint32_t b = at(s, pos + 2);
    if (any_case) b = lower_ascii(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* The white-space tail shared by the regexes: \s+(?!\S) leaves the last
 * space of a run to the word after it; a run at the end is one word. */
static size_t spaces_word(const scan *s, size_t pos, size_t run)
{
    if (run > 1 && pos + run < s->n) return pos + run - 1;
    return pos + (run ? run : 1);
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
static void scan_gpt2(scan *s)
{
    size_t pos = 0;
    while (pos < s->n) {
        size_t c = contraction(s, pos, 0);
        if (c) {
            cut(s, pos += c);
            continue;
        }
        int sp = at(s, pos) == ' ';
        unsigned f = sp ? flags(s, pos + 1) : flags(s, pos);
        unsigned want = f & F_LETTER ? F_LETTER : f & F_NUMBER ? F_NUMBER : 0;
        if (want) {
            pos += sp;
            while (flags(s, pos) & want) pos++;
            cut(s, pos);
            continue;
        }
        if ((f & F_IN) && !(f & (F_SPACE | F_LETTER | F_NUMBER))) {
            pos += sp;
            for (;;) {
                unsigned g = flags(s, pos);
                if (!(g & F_IN) || (g & (F_SPACE | F_LETTER | F_NUMBER))) break;
                pos++;
            }
            cut(s, pos);
            continue;
        }
        size_t run = 0;
        while (flags(s, pos + run) & F_SPACE) run++;
        cut(s, pos = spaces_word(s, pos, run));
    }
}

/* Llama 3 (max_digits 3) and Qwen2 (1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void scan_llama3(scan *s, size_t max_digits)
{
    size_t pos = 0;
    while (pos < s->n) {
        size_t c = contraction(s, pos, 1);
        if (c) {
            cut(s, pos += c);
            continue;
        }
        uint32_t ch = at(s, pos);
        unsigned f = flags(s, pos);
        if (ch != '\r' && ch != '\n' && !(f & F_NUMBER) &&
            ((f & F_LETTER) || (flags(s, pos + 1) & F_LETTER))) {
            pos++;
            while (flags(s, pos) & F_LETTER) pos++;
            cut(s, pos);
            continue;
        }
        if (f & F_NUMBER) {
            size_t k = 0;
            while (k < max_digits && (flags(s, pos) & F_NUMBER)) {
                pos++;
                k++;
            }
            cut(s, pos);
            continue;
        }
        /* " ?[^\s\p{L}\p{N}]+[\r\n]*": llama.cpp enters it whenever the
         * character after an optional space is not a space, letter or number,
         * the end of the text included. */
        int sp = ch == ' ';
        unsigned f2 = sp ? flags(s, pos + 1) : f;
        if (!(f2 & (F_SPACE | F_LETTER | F_NUMBER)) && (f & F_IN)) {
            pos += sp;
            for (;;) {
                unsigned g = flags(s, pos);
                if (!(g & F_IN) || (g & (F_SPACE | F_LETTER | F_NUMBER))) break;
                pos++;
            }
            while (at(s, pos) == '\r' || at(s, pos) == '\n') pos++;
            cut(s, pos);
            continue;
        }
        size_t run = 0, nl_end = 0;
        while (flags(s, pos + run) & F_SPACE) {
            uint32_t w = at(s, pos + run);
            run++;
            if (w == '\r' || w == '\n') nl_end = pos + run;
        }
        if (nl_end) {
            cut(s, pos = nl_end); /* \s*[\r\n]+ */
            continue;
        }
        cut(s, pos = spaces_word(s, pos, run));
    }
}

kq_status kq__pretokenize(enum kq_tok_pre pre, const uint32_t *cp, size_t n, size_t *lens,
                          size_t *n_words)
{
    scan s = {cp, n, lens, 0, 0};
    switch (pre) {
    case KQ_PRE_GPT2: scan_gpt2(&s); break;
    case KQ_PRE_LLAMA3: scan_llama3(&s, 3); break;
    case KQ_PRE_QWEN2: scan_llama3(&s, 1); break;
    case KQ_PRE_NONE:
    default:
        return kq__fail(KQ_ERR_UNSUPPORTED, "tokenize: no pre-tokenizer %d (a loading bug)",
                        (int)pre);
    }
    *n_words = s.n_words;
    return KQ_OK;
}
