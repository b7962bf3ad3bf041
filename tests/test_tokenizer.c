/* Tokenizers on small synthetic vocabularies written with the GGUF writer
 * (no network): SPM and byte-level BPE ids against naive reference mergers
 * written here (every step merges the best pair of the whole text, a
 * quadratic search independent of the library's queue), on seeded random
 * vocabularies and texts; special tokens, BOS/EOS, space prefix, pieces and
 * the round trip text -> ids -> pieces; then malformed metadata (missing or
 * mistyped arrays, short arrays, ids out of range, duplicate texts, unknown
 * kinds) that must fail with a status and a message, and hostile texts
 * (invalid UTF-8, long runs) that must not crash. The comparison with
 * llama.cpp itself is tests/python/test_tokenizer_oracle.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kquant.h"
#include "model/tokenizer.h"
#include "model/unicode.h"
#include "testutil.h"

#define MAXV 1200
#define MAXM 800

typedef struct vocab {
    int n;
    char text[MAXV][24];
    size_t len[MAXV];
    float score[MAXV];
    int32_t type[MAXV];
    int n_merges;
    char merge[MAXM][52];
} vocab;

static int vfind(const vocab *v, const char *s, size_t n)
{
    for (int i = 0; i < v->n; i++)
        if (v->len[i] == n && memcmp(v->text[i], s, n) == 0) return i;
    return -1;
}

static int vadd(vocab *v, const char *s, size_t n, float score, int32_t type)
{
    int id = vfind(v, s, n);
    if (id >= 0 || v->n == MAXV || n >= sizeof v->text[0]) return id;
    memcpy(v->text[v->n], s, n);
    v->len[v->n] = n;
    v->score[v->n] = score;
    v->type[v->n] = type;
    return v->n++;
}

/* What a test file leaves out or breaks. */
enum {
    NO_MODEL = 1, NO_TOKENS = 2, NO_SCORES = 4, NO_TYPES = 8, NO_MERGES = 16,
    SHORT_SCORES = 32, SHORT_TYPES = 64, TOKENS_U32 = 128, SCORES_STR = 256,
    TYPES_F32 = 512, MERGES_U8 = 1024, MODEL_U32 = 2048, EMPTY_TOKENS = 4096
};

typedef struct extra_kv {
    const char *key;
    int vtype; /* -1: string */
    int64_t ival;
    const char *sval;
} extra_kv;

/* The metadata sweep (test_mutants) leaves g_skip out of the standard keys
 * and writes g_mutant(w) in its place. */
static const char *g_skip;
static void (*g_mutant)(kq_gguf_writer *w, const char *key);
#define WANT(key) (!g_skip || strcmp(g_skip, (key)) != 0)

static kq_status load(const vocab *v, const char *model, const char *pre, unsigned flags,
                      const extra_kv *extra, int n_extra, kq_tokenizer **out)
{
    kq_gguf_writer *w;
    *out = NULL;
    if (kq_gguf_writer_new(3, &w) != KQ_OK) return KQ_ERR_NO_MEMORY;
    int n = v->n;
    const char *strs[MAXV];
    size_t lens[MAXV];
    for (int i = 0; i < n; i++) {
        strs[i] = v->text[i];
        lens[i] = v->len[i];
    }
    if (flags & MODEL_U32) {
        uint32_t x = 1;
        kq_gguf_writer_set(w, "tokenizer.ggml.model", KQ_GGUF_U32, &x);
    } else if (!(flags & NO_MODEL) && WANT("tokenizer.ggml.model")) {
        kq_gguf_writer_set_string(w, "tokenizer.ggml.model", model, strlen(model));
    }
    if (pre && WANT("tokenizer.ggml.pre")) kq_gguf_writer_set_string(w, "tokenizer.ggml.pre", pre, strlen(pre));
    if (flags & TOKENS_U32) {
        uint32_t ones[MAXV] = {0};
        kq_gguf_writer_set_array(w, "tokenizer.ggml.tokens", KQ_GGUF_U32, ones, n);
    } else if (flags & EMPTY_TOKENS) {
        kq_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", strs, lens, 0);
    } else if (!(flags & NO_TOKENS) && WANT("tokenizer.ggml.tokens")) {
        kq_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", strs, lens, n);
    }
    if (flags & SCORES_STR)
        kq_gguf_writer_set_string_array(w, "tokenizer.ggml.scores", strs, lens, n);
    else if (!(flags & NO_SCORES) && WANT("tokenizer.ggml.scores"))
        kq_gguf_writer_set_array(w, "tokenizer.ggml.scores", KQ_GGUF_F32, v->score,
                                 (flags & SHORT_SCORES) ? n - 1 : n);
    if (flags & TYPES_F32)
        kq_gguf_writer_set_array(w, "tokenizer.ggml.token_type", KQ_GGUF_F32, v->score, n);
    else if (!(flags & NO_TYPES) && WANT("tokenizer.ggml.token_type"))
        kq_gguf_writer_set_array(w, "tokenizer.ggml.token_type", KQ_GGUF_I32, v->type,
                                 (flags & SHORT_TYPES) ? n - 1 : n);
    if (flags & MERGES_U8) {
        uint8_t b[4] = {0};
        kq_gguf_writer_set_array(w, "tokenizer.ggml.merges", KQ_GGUF_U8, b, 4);
    } else if (v->n_merges && !(flags & NO_MERGES) && WANT("tokenizer.ggml.merges")) {
        const char *ms[MAXM];
        size_t ml[MAXM];
        for (int i = 0; i < v->n_merges; i++) {
            ms[i] = v->merge[i];
            ml[i] = strlen(v->merge[i]);
        }
        kq_gguf_writer_set_string_array(w, "tokenizer.ggml.merges", ms, ml, v->n_merges);
    }
    if (g_mutant) g_mutant(w, g_skip);
    for (int i = 0; i < n_extra; i++) {
        const extra_kv *e = &extra[i];
        if (!WANT(e->key)) continue;
        if (e->vtype < 0) {
            kq_gguf_writer_set_string(w, e->key, e->sval, strlen(e->sval));
        } else if (e->vtype == KQ_GGUF_BOOL) {
            uint8_t b = (uint8_t)e->ival;
            kq_gguf_writer_set(w, e->key, KQ_GGUF_BOOL, &b);
        } else if (e->vtype == KQ_GGUF_I32) {
            int32_t x = (int32_t)e->ival;
            kq_gguf_writer_set(w, e->key, KQ_GGUF_I32, &x);
        } else {
            uint32_t x = (uint32_t)e->ival;
            kq_gguf_writer_set(w, e->key, KQ_GGUF_U32, &x);
        }
    }
    const char *path = kt_tmp_path("vocab.gguf");
    kq_status st = kq_gguf_writer_save(w, path);
    kq_gguf_writer_free(w);
    if (st != KQ_OK) return st;
    kq_gguf *g;
    st = kq_gguf_open(path, &g);
    if (st != KQ_OK) {
        unlink(path);
        return st;
    }
    st = kq__tokenizer_from_gguf(g, out);
    kq_gguf_close(g);
    unlink(path);
    return st;
}

/* ---------------------------------------------------------------- SPM */

#define SP "\xe2\x96\x81" /* U+2581, SPM's space */

/* A vocabulary over {a, b, c, U+2581}: <unk>, <s>, </s>, 256 byte tokens, a
 * control "<ctl>" and a user-defined "<ud>", the four letters, and random
 * words of 2 to 4 letters with random scores. */
static void make_spm_vocab(vocab *v)
{
    static const char *letters[4] = {"a", "b", "c", SP};
    memset(v, 0, sizeof *v);
    vadd(v, "<unk>", 5, 0, 2);
    vadd(v, "<s>", 3, 0, 3);
    vadd(v, "</s>", 4, 0, 3);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        vadd(v, s, 6, 0, 6);
    }
    vadd(v, "<ctl>", 5, 0, 3);
    vadd(v, "<ud>", 4, 0, 4);
    for (int i = 0; i < 4; i++) vadd(v, letters[i], strlen(letters[i]), -10.0f - i, 1);
    while (v->n < 540) { /* of the 336 words possible */
        char s[24];
        size_t n = 0;
        int k = (int)kt_range(2, 4);
        for (int i = 0; i < k; i++) {
            const char *l = letters[kt_range(0, 3)];
            memcpy(s + n, l, strlen(l));
            n += strlen(l);
        }
        /* Coarse scores so that ties (broken leftmost) happen. */
        vadd(v, s, n, -(float)kt_range(0, 8), 1);
    }
}

/* Best-pair-of-the-whole-text merging, each step from scratch. */
static int naive_spm_fragment(const vocab *v, const char *raw, size_t len, int32_t *out)
{
    char text[1024];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == ' ') {
            memcpy(text + n, SP, 3);
            n += 3;
        } else {
            text[n++] = raw[i];
        }
    }
    size_t off[1024], sl[1024];
    int ns = 0;
    for (size_t i = 0; i < n;) {
        size_t k = kq__utf8_len((unsigned char)text[i]);
        if (k > n - i) k = n - i;
        off[ns] = i;
        sl[ns++] = k;
        i += k;
    }
    for (;;) {
        int best = -1;
        float bs = 0;
        for (int i = 0; i + 1 < ns; i++) {
            int id = vfind(v, text + off[i], sl[i] + sl[i + 1]);
            if (id >= 0 && (best < 0 || v->score[id] > bs)) {
                best = i;
                bs = v->score[id];
            }
        }
        if (best < 0) break;
        sl[best] += sl[best + 1];
        memmove(off + best + 1, off + best + 2, (size_t)(ns - best - 2) * sizeof off[0]);
        memmove(sl + best + 1, sl + best + 2, (size_t)(ns - best - 2) * sizeof sl[0]);
        ns--;
    }
    int m = 0;
    for (int i = 0; i < ns; i++) {
        int id = vfind(v, text + off[i], sl[i]);
        if (id >= 0) {
            out[m++] = id;
            continue;
        }
        for (size_t j = 0; j < sl[i]; j++) {
            char s[8];
            snprintf(s, sizeof s, "<0x%02X>", (unsigned char)text[off[i] + j]);
            out[m++] = vfind(v, s, 6);
        }
    }
    return m;
}

/* A random text of plain runs over {a, b, c, space, é} with special tokens
 * between them; pieces[] records where the specials are. */
typedef struct seg {
    int special; /* id, or -1 */
    size_t off, len;
} seg;

static size_t random_text(char *buf, seg *segs, int *n_segs, int ctl, int ud)
{
    static const char *chars[5] = {"a", "b", "c", " ", "\xc3\xa9"};
    size_t n = 0;
    int k = 0, parts = (int)kt_range(1, 4);
    for (int p = 0; p < parts; p++) {
        if (p > 0 || kt_range(0, 3) == 0) {
            int sp = kt_range(0, 1) ? ctl : ud;
            memcpy(buf + n, sp == ctl ? "<ctl>" : "<ud>", sp == ctl ? 5 : 4);
            segs[k++] = (seg){sp, n, sp == ctl ? 5u : 4u};
            n += sp == ctl ? 5 : 4;
        }
        size_t start = n;
        int len = (int)kt_range(0, 24);
        for (int i = 0; i < len; i++) {
            const char *c = chars[kt_range(0, 4)];
            memcpy(buf + n, c, strlen(c));
            n += strlen(c);
        }
        if (n > start) segs[k++] = (seg){-1, start, n - start};
    }
    *n_segs = k;
    return n;
}

static int ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* Concatenated pieces of ids. */
static size_t join_pieces(const kq_tokenizer *t, const int32_t *ids, size_t n, int show,
                          char *buf, size_t cap)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        if (kq__token_to_piece(t, ids[i], show, buf + at, cap - at, &len) != KQ_OK) return SIZE_MAX;
        at += len;
    }
    return at;
}

static void test_spm(int space_prefix)
{
    vocab *v = malloc(sizeof *v);
    make_spm_vocab(v);
    extra_kv extra[] = {{"tokenizer.ggml.add_space_prefix", KQ_GGUF_BOOL, space_prefix, NULL},
                        {"tokenizer.ggml.add_eos_token", KQ_GGUF_BOOL, 1, NULL}};
    kq_tokenizer *t;
    if (!KT_OK(load(v, "llama", NULL, 0, extra, 2, &t))) {
        free(v);
        return;
    }
    int ctl = vfind(v, "<ctl>", 5), ud = vfind(v, "<ud>", 4);
    KT_CHECK(kq__tokenizer_n_vocab(t) == v->n, "n_vocab %d", kq__tokenizer_n_vocab(t));
    KT_CHECK(kq__tokenizer_bos(t) == 1 && kq__tokenizer_eos(t) == 2, "SPM default BOS/EOS");
    KT_CHECK(kq__tokenizer_is_eog(t, 2) && !kq__tokenizer_is_eog(t, 1), "</s> ends generation");
    int bad = 0;
    for (int iter = 0; iter < 300; iter++) {
        char text[512];
        seg segs[16];
        int ns;
        size_t len = random_text(text, segs, &ns, ctl, ud);
        int parse = (int)kt_range(0, 1), add = (int)kt_range(0, 1);
        /* Reference: BOS, then each segment (a control token's text stays
         * text without parse_special), EOS. */
        int32_t want[1200];
        size_t nw = 0;
        if (add) want[nw++] = 1;
        int prev_special = 1;
        for (int s = 0; s < ns;) {
            if (segs[s].special == ud || (parse && segs[s].special == ctl)) {
                want[nw++] = segs[s].special;
                prev_special = 1;
                s++;
                continue;
            }
            /* Join this run of text and unparsed specials. */
            char run[512];
            size_t rn = 0;
            if (space_prefix && prev_special) run[rn++] = ' ';
            while (s < ns && !(segs[s].special == ud || (parse && segs[s].special == ctl))) {
                memcpy(run + rn, text + segs[s].off, segs[s].len);
                rn += segs[s].len;
                s++;
            }
            nw += (size_t)naive_spm_fragment(v, run, rn, want + nw);
            prev_special = 0;
        }
        if (add) want[nw++] = 2;
        int32_t *got = NULL;
        size_t ng = 0;
        kq_status st = kq__tokenize(t, text, len, add, parse, &got, &ng);
        if (st != KQ_OK || !ids_equal(got, ng, want, nw)) {
            if (bad++ < 3) {
                fprintf(stderr, "SPM text '%.*s' add %d parse %d: %s\n", (int)len, text, add,
                        parse, st == KQ_OK ? "ids differ" : kq_last_error());
                print_ids("want", want, nw);
                print_ids("got ", got, ng);
            }
        } else if (parse && !add && !space_prefix) {
            /* Pieces with specials shown give back the text. */
            char back[2048];
            size_t nb = join_pieces(t, got, ng, 1, back, sizeof back);
            if (nb != len || memcmp(back, text, len) != 0) {
                if (bad++ < 3) fprintf(stderr, "SPM round trip of '%.*s' gave '%.*s'\n", (int)len,
                                       text, (int)(nb == SIZE_MAX ? 0 : nb), back);
            }
        }
        free(got);
    }
    KT_CHECK(bad == 0, "SPM (space prefix %d): %d of 300 texts differ from the reference", space_prefix,
             bad);

    /* Pieces: control hidden unless shown, user-defined always, bytes. */
    char buf[16];
    size_t len;
    KT_OK(kq__token_to_piece(t, ctl, 0, buf, sizeof buf, &len));
    KT_CHECK(len == 0, "control token hidden: %zu bytes", len);
    KT_OK(kq__token_to_piece(t, ctl, 1, buf, sizeof buf, &len));
    KT_CHECK(len == 5 && memcmp(buf, "<ctl>", 5) == 0, "control token shown");
    KT_OK(kq__token_to_piece(t, ud, 0, buf, sizeof buf, &len));
    KT_CHECK(len == 4 && memcmp(buf, "<ud>", 4) == 0, "user-defined token shown");
    KT_OK(kq__token_to_piece(t, vfind(v, "<0xC3>", 6), 0, buf, sizeof buf, &len));
    KT_CHECK(len == 1 && (unsigned char)buf[0] == 0xC3, "byte token");
    KT_OK(kq__token_to_piece(t, vfind(v, SP, 3), 0, buf, sizeof buf, &len));
    KT_CHECK(len == 1 && buf[0] == ' ', "U+2581 is a space");
    KT_EXPECT(kq__token_to_piece(t, ud, 0, buf, 2, &len), KQ_ERR_RANGE, "room for 2");
    KT_CHECK(len == 4, "a short buffer still reports the length (%zu)", len);
    KT_EXPECT(kq__token_to_piece(t, v->n, 0, buf, sizeof buf, &len), KQ_ERR_RANGE, "outside");
    KT_EXPECT(kq__token_to_piece(t, -1, 0, buf, sizeof buf, &len), KQ_ERR_RANGE, "outside");

    /* The empty text: only what add_special adds. */
    int32_t *ids;
    size_t n;
    KT_OK(kq__tokenize(t, "", 0, 1, 1, &ids, &n));
    KT_CHECK(n == 2 && ids[0] == 1 && ids[1] == 2, "empty text with BOS and EOS: %zu ids", n);
    free(ids);
    KT_OK(kq__tokenize(t, NULL, 0, 0, 0, &ids, &n));
    KT_CHECK(n == 0 && ids != NULL, "empty text: no ids, a buffer to free");
    free(ids);
    kq__tokenizer_free(t);
    free(v);
}

/* ---------------------------------------------------------------- BPE */

/* GPT-2's character for a byte, as UTF-8 (the map written out here from its
 * definition, independently of the library's). */
static size_t byte_char(unsigned b, char *out)
{
    int self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    unsigned cp = b;
    if (!self) {
        unsigned k = 0;
        for (unsigned i = 0; i < b; i++)
            k += !((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE);
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* 256 byte characters, "<|endoftext|>", then merges of random pairs of
 * tokens over {a, b, c, Ġ}, each adding its result as a token. */
static void make_bpe_vocab(vocab *v)
{
    memset(v, 0, sizeof *v);
    for (unsigned b = 0; b < 256; b++) {
        char s[2];
        size_t n = byte_char(b, s);
        vadd(v, s, n, 0, 1);
    }
    vadd(v, "<|endoftext|>", 13, 0, 3);
    int base[4] = {'a', 'b', 'c', vfind(v, "\xc4\xa0", 2)};
    base[0] = vfind(v, "a", 1);
    base[1] = vfind(v, "b", 1);
    base[2] = vfind(v, "c", 1);
    int pool[MAXM + 4], np = 4;
    memcpy(pool, base, sizeof base);
    while (v->n_merges < 300) {
        int l = pool[kt_range(0, np - 1)], r = pool[kt_range(0, np - 1)];
        if (v->len[l] + v->len[r] >= sizeof v->text[0]) continue;
        char s[24];
        memcpy(s, v->text[l], v->len[l]);
        memcpy(s + v->len[l], v->text[r], v->len[r]);
        if (vfind(v, s, v->len[l] + v->len[r]) >= 0) continue;
        int id = vadd(v, s, v->len[l] + v->len[r], 0, 1);
        char *m = v->merge[v->n_merges++];
        memcpy(m, s, v->len[l]);
        m[v->len[l]] = ' ';
        memcpy(m + v->len[l] + 1, s + v->len[l], v->len[r]);
        m[v->len[l] + 1 + v->len[r]] = 0;
        pool[np++] = id;
    }
}

static int merge_rank(const vocab *v, const char *l, size_t nl, const char *r, size_t nr)
{
    for (int i = 0; i < v->n_merges; i++) {
        const char *m = v->merge[i];
        if (strlen(m) == nl + 1 + nr && memcmp(m, l, nl) == 0 && m[nl] == ' ' &&
            memcmp(m + nl + 1, r, nr) == 0)
            return i;
    }
    return -1;
}

/* One word (already in byte characters): lowest rank of the whole word first. */
static int naive_bpe_word(const vocab *v, const char *w, size_t n, int32_t *out)
{
    size_t off[256], sl[256];
    int ns = 0;
    for (size_t i = 0; i < n;) {
        size_t k = kq__utf8_len((unsigned char)w[i]);
        off[ns] = i;
        sl[ns++] = k;
        i += k;
    }
    for (;;) {
        int best = -1, br = 0;
        for (int i = 0; i + 1 < ns; i++) {
            int r = merge_rank(v, w + off[i], sl[i], w + off[i + 1], sl[i + 1]);
            if (r >= 0 && (best < 0 || r < br)) {
                best = i;
                br = r;
            }
        }
        if (best < 0) break;
        sl[best] += sl[best + 1];
        memmove(off + best + 1, off + best + 2, (size_t)(ns - best - 2) * sizeof off[0]);
        memmove(sl + best + 1, sl + best + 2, (size_t)(ns - best - 2) * sizeof sl[0]);
        ns--;
    }
    for (int i = 0; i < ns; i++) out[i] = vfind(v, w + off[i], sl[i]);
    return ns;
}

static void test_bpe(void)
{
    vocab *v = malloc(sizeof *v);
    make_bpe_vocab(v);
    kq_tokenizer *t;
    extra_kv extra[] = {{"tokenizer.ggml.bos_token_id", KQ_GGUF_U32, 256, NULL},
                        {"tokenizer.ggml.eos_token_id", KQ_GGUF_U32, 256, NULL}};
    if (!KT_OK(load(v, "gpt2", "gpt-2", NO_SCORES, extra, 2, &t))) {
        free(v);
        return;
    }
    KT_CHECK(kq__tokenizer_is_eog(t, 256), "<|endoftext|> ends generation");
    int bad = 0;
    for (int iter = 0; iter < 300; iter++) {
        /* Words of a, b, c joined by single spaces: GPT-2's pre-tokenizer
         * cuts before each space. */
        char text[256], enc[512];
        size_t len = 0;
        int32_t want[512];
        size_t nw = 0;
        int words = (int)kt_range(1, 6);
        for (int wd = 0; wd < words; wd++) {
            size_t en = 0;
            if (wd > 0) {
                text[len++] = ' ';
                en += byte_char(' ', enc + en);
            }
            int k = (int)kt_range(1, 10);
            for (int i = 0; i < k; i++) {
                char c = (char)('a' + kt_range(0, 2));
                text[len++] = c;
                enc[en++] = c;
            }
            nw += (size_t)naive_bpe_word(v, enc, en, want + nw);
        }
        int32_t *got = NULL;
        size_t ng = 0;
        kq_status st = kq__tokenize(t, text, len, 1, 0, &got, &ng);
        if (st != KQ_OK || !ids_equal(got, ng, want, nw)) {
            if (bad++ < 3) {
                fprintf(stderr, "BPE text '%.*s': %s\n", (int)len, text,
                        st == KQ_OK ? "ids differ" : kq_last_error());
                print_ids("want", want, nw);
                print_ids("got ", got, ng);
            }
        } else {
            char back[512];
            size_t nb = join_pieces(t, got, ng, 0, back, sizeof back);
            if (nb != len || memcmp(back, text, len) != 0) bad++;
        }
        free(got);
    }
    KT_CHECK(bad == 0, "BPE: %d of 300 texts differ from the reference", bad);

    /* Every byte string round-trips, invalid UTF-8 included: bytes that are
     * not UTF-8 become U+FFFD, the only change. */
    int rt_bad = 0;
    for (int iter = 0; iter < 200; iter++) {
        unsigned char text[64];
        size_t len = (size_t)kt_range(0, 63);
        kt_fill_bytes(text, len);
        int32_t *got;
        size_t ng;
        if (!KT_OK(kq__tokenize(t, (const char *)text, len, 0, 1, &got, &ng))) break;
        char back[1024], want[256];
        size_t nb = join_pieces(t, got, ng, 1, back, sizeof back), nwant = 0;
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            size_t k = kq__utf8_decode(text + i, len - i, &cp);
            unsigned char u[4];
            size_t m = kq__utf8_encode(cp, u);
            memcpy(want + nwant, u, m);
            nwant += m;
            i += k;
        }
        rt_bad += nb != nwant || memcmp(back, want, nwant) != 0;
        free(got);
    }
    KT_CHECK(rt_bad == 0, "BPE: %d of 200 random byte strings did not round-trip", rt_bad);
    kq__tokenizer_free(t);

    /* Without merges, an unknown pre-tokenizer, none at all. */
    KT_EXPECT(load(v, "gpt2", "gpt-2", NO_MERGES, NULL, 0, &t), KQ_ERR_NOT_FOUND, "merges");
    KT_EXPECT(load(v, "gpt2", "gpt-2", MERGES_U8, NULL, 0, &t), KQ_ERR_FORMAT, "merges");
    KT_EXPECT(load(v, "gpt2", "nonsense", 0, NULL, 0, &t), KQ_ERR_UNSUPPORTED, "nonsense");
    KT_EXPECT(load(v, "gpt2", NULL, 0, NULL, 0, &t), KQ_ERR_UNSUPPORTED, "default");
    free(v);
}

/* ---------------------------------------------------------------- errors */

static void test_malformed(void)
{
    vocab *v = malloc(sizeof *v);
    make_spm_vocab(v);
    kq_tokenizer *t = NULL;
    KT_EXPECT(load(v, "llama", NULL, NO_MODEL, NULL, 0, &t), KQ_ERR_NOT_FOUND, "tokenizer.ggml.model");
    KT_EXPECT(load(v, "llama", NULL, MODEL_U32, NULL, 0, &t), KQ_ERR_TYPE, "tokenizer.ggml.model");
    KT_EXPECT(load(v, "bert", NULL, 0, NULL, 0, &t), KQ_ERR_UNSUPPORTED, "bert");
    KT_EXPECT(load(v, "llama", NULL, NO_TOKENS, NULL, 0, &t), KQ_ERR_NOT_FOUND, "tokens");
    KT_EXPECT(load(v, "llama", NULL, TOKENS_U32, NULL, 0, &t), KQ_ERR_FORMAT, "tokens");
    KT_EXPECT(load(v, "llama", NULL, EMPTY_TOKENS, NULL, 0, &t), KQ_ERR_FORMAT, "0 tokens");
    KT_EXPECT(load(v, "llama", NULL, SHORT_SCORES, NULL, 0, &t), KQ_ERR_FORMAT, "scores");
    KT_EXPECT(load(v, "llama", NULL, SCORES_STR, NULL, 0, &t), KQ_ERR_FORMAT, "scores");
    KT_EXPECT(load(v, "llama", NULL, SHORT_TYPES, NULL, 0, &t), KQ_ERR_FORMAT, "token_type");
    KT_EXPECT(load(v, "llama", NULL, TYPES_F32, NULL, 0, &t), KQ_ERR_FORMAT, "token_type");
    extra_kv bos_far = {"tokenizer.ggml.bos_token_id", KQ_GGUF_U32, v->n, NULL};
    KT_EXPECT(load(v, "llama", NULL, 0, &bos_far, 1, &t), KQ_ERR_FORMAT, "bos_token_id");
    extra_kv eos_neg = {"tokenizer.ggml.eos_token_id", KQ_GGUF_I32, -3, NULL};
    KT_EXPECT(load(v, "llama", NULL, 0, &eos_neg, 1, &t), KQ_ERR_FORMAT, "eos_token_id");
    extra_kv bos_str = {"tokenizer.ggml.bos_token_id", -1, 0, "1"};
    KT_EXPECT(load(v, "llama", NULL, 0, &bos_str, 1, &t), KQ_ERR_TYPE, "bos_token_id");
    extra_kv add_str = {"tokenizer.ggml.add_bos_token", -1, 0, "yes"};
    KT_EXPECT(load(v, "llama", NULL, 0, &add_str, 1, &t), KQ_ERR_TYPE, "add_bos_token");
    KT_CHECK(t == NULL, "a failed load leaves *out NULL");

    /* Two tokens of one text. */
    vocab *d = malloc(sizeof *d);
    memcpy(d, v, sizeof *d);
    memcpy(d->text[d->n - 1], d->text[d->n - 2], sizeof d->text[0]);
    d->len[d->n - 1] = d->len[d->n - 2];
    KT_EXPECT(load(d, "llama", NULL, 0, NULL, 0, &t), KQ_ERR_FORMAT, "repeats");

    /* Missing scores and types are allowed (all 0, all normal). */
    if (KT_OK(load(v, "llama", NULL, NO_SCORES | NO_TYPES, NULL, 0, &t))) kq__tokenizer_free(t);

    /* A vocabulary too small for the default BOS (1) that still adds one:
     * tokenizing with add_special fails, without it works. */
    memset(d, 0, sizeof *d);
    vadd(d, "a", 1, 0, 1);
    extra_kv eos0[2] = {{"tokenizer.ggml.eos_token_id", KQ_GGUF_U32, 0, NULL},
                        {"tokenizer.ggml.add_space_prefix", KQ_GGUF_BOOL, 0, NULL}};
    if (KT_OK(load(d, "llama", NULL, 0, eos0, 2, &t))) {
        int32_t *ids;
        size_t n;
        KT_CHECK(kq__tokenizer_bos(t) == -1, "no BOS in a 1-token vocabulary: %d",
                 kq__tokenizer_bos(t));
        KT_EXPECT(kq__tokenize(t, "a", 1, 1, 0, &ids, &n), KQ_ERR_FORMAT, "BOS");
        if (KT_OK(kq__tokenize(t, "aa", 2, 0, 0, &ids, &n))) {
            KT_CHECK(n == 2 && ids[0] == 0 && ids[1] == 0, "'aa' without BOS");
            free(ids);
        }
        /* No byte tokens: a character that is no token cannot be written. */
        KT_EXPECT(kq__tokenize(t, "b", 1, 0, 0, &ids, &n), KQ_ERR_UNSUPPORTED, "byte 0x62");
        kq__tokenizer_free(t);
    }
    /* An empty token text is kept as "[EMPTY_<id>]". */
    d->n = 2; /* token 1: the empty text, a normal token */
    d->type[1] = 1;
    if (KT_OK(load(d, "llama", NULL, 0, eos0, 2, &t))) {
        char buf[16];
        size_t len;
        KT_OK(kq__token_to_piece(t, 1, 1, buf, sizeof buf, &len));
        KT_CHECK(len == 9 && memcmp(buf, "[EMPTY_1]", 9) == 0, "empty token text kept by name");
        kq__tokenizer_free(t);
    }
    KT_EXPECT(kq__tokenizer_from_gguf(NULL, &t), KQ_ERR_INVALID_ARG, "NULL");
    kq__tokenizer_free(NULL);
    free(d);
    free(v);
}

/* Long and hostile texts: runs of one character, of spaces, of invalid
 * bytes, thousands of special tokens. They must tokenize (or fail with a
 * status) without crashing; the sanitizer build checks the memory. */
static void test_hostile(void)
{
    vocab *v = malloc(sizeof *v);
    make_spm_vocab(v);
    kq_tokenizer *t;
    if (!KT_OK(load(v, "llama", NULL, 0, NULL, 0, &t))) {
        free(v);
        return;
    }
    size_t n = 20000;
    char *s = malloc(n * 5);
    const char *fills[] = {"a", " ", "\xff", "\xe2\x96", "<ctl>"};
    for (int f = 0; f < 5; f++) {
        size_t k = strlen(fills[f]), len = 0;
        while (len + k <= n) {
            memcpy(s + len, fills[f], k);
            len += k;
        }
        int32_t *ids;
        size_t ng;
        kq_status st = kq__tokenize(t, s, len, 1, 1, &ids, &ng);
        KT_CHECK(st == KQ_OK && ng > 0, "run of '%s': %s", fills[f], kq_last_error());
        if (st == KQ_OK) {
            int ok = 1;
            for (size_t i = 0; i < ng; i++) ok &= ids[i] >= 0 && ids[i] < v->n;
            KT_CHECK(ok, "run of '%s': ids in range", fills[f]);
            free(ids);
        }
    }
    free(s);
    kq__tokenizer_free(t);
    free(v);
}

/* Spot checks of the generated class table and the decoder. */
static void test_unicode(void)
{
    KT_CHECK(kq__ucat('A') == KQ_UCAT_LETTER && kq__ucat(0xE9) == KQ_UCAT_LETTER &&
                 kq__ucat(0x4E2D) == KQ_UCAT_LETTER && kq__ucat(0x31350) == KQ_UCAT_LETTER &&
                 kq__ucat(0x2EBF0) == KQ_UCAT_LETTER,
             "letters (the last two from Unicode 15.0 and 15.1, as llama.cpp's table)");
    KT_CHECK(kq__ucat('7') == KQ_UCAT_NUMBER && kq__ucat(0x663) == KQ_UCAT_NUMBER &&
                 kq__ucat(0x2163) == KQ_UCAT_NUMBER, "numbers (Nd, Nl)");
    KT_CHECK(kq__ucat(0x2581) == KQ_UCAT_SYMBOL && kq__ucat('!') == KQ_UCAT_PUNCT &&
                 kq__ucat(0x301) == KQ_UCAT_MARK && kq__ucat(0x10FFFF) == KQ_UCAT_UNASSIGNED &&
                 kq__ucat(0x110000) == KQ_UCAT_UNASSIGNED, "symbol, punctuation, mark, none");
    KT_CHECK(kq__uspace(' ') && kq__uspace('\n') && kq__uspace(0x3000) && kq__uspace(0x85) &&
                 !kq__uspace(0x200B) && !kq__uspace('a'), "white space");
    uint32_t cp;
    KT_CHECK(kq__utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp) == 2 && cp == 0xE9, "é");
    KT_CHECK(kq__utf8_decode((const unsigned char *)"\xc3", 1, &cp) == 1 && cp == 0xFFFD,
             "truncated");
    KT_CHECK(kq__utf8_decode((const unsigned char *)"\x80", 1, &cp) == 1 && cp == 0xFFFD,
             "stray continuation");
    KT_CHECK(kq__utf8_decode((const unsigned char *)"\xc0\x80", 2, &cp) == 2 && cp == 0,
             "overlong decodes by its bits, as llama.cpp");
    KT_CHECK(kq__utf8_decode((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp) == 1 &&
                 cp == 0xFFFD, "past U+10FFFF");
}

/* ---------------------------------------------------------------- sweep */

static int g_variant;

/* Variant g_variant of a value of the wrong type (or of odd contents). */
static void write_mutant(kq_gguf_writer *w, const char *key)
{
    static const char *strs[3] = {"x", "", "\xff\xfe"};
    static const size_t lens[3] = {1, 0, 2};
    uint8_t u8 = 7, b = 1, bytes[3] = {1, 2, 3};
    int32_t i32 = -1, big[3] = {INT32_MAX, -5, 3};
    uint64_t u64 = UINT64_MAX;
    float f = 1.5f;
    switch (g_variant) {
    case 0: kq_gguf_writer_set(w, key, KQ_GGUF_U8, &u8); break;
    case 1: kq_gguf_writer_set(w, key, KQ_GGUF_I32, &i32); break;
    case 2: kq_gguf_writer_set(w, key, KQ_GGUF_U64, &u64); break;
    case 3: kq_gguf_writer_set_string(w, key, "zz", 2); break;
    case 4: kq_gguf_writer_set(w, key, KQ_GGUF_F32, &f); break;
    case 5: kq_gguf_writer_set(w, key, KQ_GGUF_BOOL, &b); break;
    case 6: kq_gguf_writer_set_array(w, key, KQ_GGUF_U8, bytes, 3); break;
    case 7: kq_gguf_writer_set_array(w, key, KQ_GGUF_I32, big, 3); break;
    case 8: kq_gguf_writer_set_string_array(w, key, strs, lens, 3); break;
    case 9: break; /* absent */
    default: abort();
    }
}
#define N_VARIANTS 10

/* Every tokenizer key, in turn, of every wrong type (or absent): loading
 * fails with a message or succeeds, and what loads tokenizes and gives
 * pieces with ids in range. Nothing may crash (the sanitizer build checks
 * the memory). */
static void test_mutants(void)
{
    static const char *keys[] = {
        "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
        "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id", "tokenizer.ggml.fim_pad_token_id",
        "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
        "tokenizer.ggml.add_space_prefix"};
    vocab *spm = malloc(sizeof *spm), *bpe = malloc(sizeof *bpe);
    make_spm_vocab(spm);
    make_bpe_vocab(bpe);
    int loaded = 0, refused = 0, bad = 0;
    for (int kind = 0; kind < 2; kind++) {
        const vocab *v = kind ? bpe : spm;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            for (g_variant = 0; g_variant < N_VARIANTS; g_variant++) {
                g_skip = keys[k];
                g_mutant = write_mutant;
                kq_tokenizer *t = NULL;
                kq_status st = load(v, kind ? "gpt2" : "llama", kind ? "qwen2" : NULL, 0, NULL, 0,
                                    &t);
                g_skip = NULL;
                g_mutant = NULL;
                if (st != KQ_OK) {
                    refused++;
                    if (t != NULL || kq_last_error()[0] == 0) bad++;
                    continue;
                }
                loaded++;
                char text[512];
                seg segs[16];
                int ns;
                size_t len = random_text(text, segs, &ns, 0, 0);
                int32_t *ids;
                size_t n;
                st = kq__tokenize(t, text, len, 1, 1, &ids, &n);
                if (st == KQ_OK) {
                    for (size_t i = 0; i < n; i++) {
                        char buf[64];
                        size_t pl;
                        bad += ids[i] < 0 || ids[i] >= kq__tokenizer_n_vocab(t) ||
                               kq__token_to_piece(t, ids[i], 1, buf, sizeof buf, &pl) != KQ_OK;
                    }
                    free(ids);
                } else if (kq_last_error()[0] == 0) {
                    bad++;
                }
                kq__tokenizer_free(t);
            }
        }
    }
    printf("metadata sweep: %d files loaded, %d refused\n", loaded, refused);
    KT_CHECK(bad == 0 && loaded > 0 && refused > 0,
             "metadata sweep: %d bad outcomes (%d loaded, %d refused)", bad, loaded, refused);
    free(spm);
    free(bpe);
}

int main(void)
{
    kt_init("test_tokenizer");
    test_unicode();
    test_spm(0);
    test_spm(1);
    test_bpe();
    test_malformed();
    test_hostile();
    test_mutants();
    return kt_finish();
}
