/* The tokenizer on the command line, for tests/python/test_tokenizer_oracle.py
 * (which compares it with llama.cpp). Texts travel as hex so that any bytes,
 * invalid UTF-8 and newlines included, pass through unchanged.
 *
 *   tok_cli VOCAB.gguf tokenize ADD_SPECIAL PARSE_SPECIAL
 *       stdin: one hex-encoded text per line; stdout: its ids, space
 *       separated, or "ERR <status> <message>"
 *   tok_cli VOCAB.gguf pieces SHOW_SPECIAL
 *       stdout: one line per id, the hex of its piece
 *   tok_cli VOCAB.gguf info
 *       stdout: "n_vocab N", "bos ID", "eos ID", "eog ID ID ..."
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kquant.h"
#include "model/tokenizer.h"

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int tokenize_lines(const kq_tokenizer *t, int add_special, int parse_special)
{
    size_t cap = 0;
    char *line = NULL;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t n = (size_t)got;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n % 2) {
            fprintf(stderr, "tok_cli: odd hex line\n");
            free(line);
            return 2;
        }
        size_t len = n / 2;
        for (size_t i = 0; i < len; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "tok_cli: bad hex\n");
                free(line);
                return 2;
            }
            line[i] = (char)(hi * 16 + lo);
        }
        int32_t *ids;
        size_t n_ids;
        kq_status st = kq__tokenize(t, line, len, add_special, parse_special, &ids, &n_ids);
        if (st != KQ_OK) {
            printf("ERR %s %s\n", kq_status_name(st), kq_last_error());
            continue;
        }
        for (size_t i = 0; i < n_ids; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
        free(ids);
    }
    free(line);
    return 0;
}

static int pieces(const kq_tokenizer *t, int show_special)
{
    char buf[256];
    for (int32_t id = 0; id < kq__tokenizer_n_vocab(t); id++) {
        size_t len;
        char *p = buf;
        kq_status st = kq__token_to_piece(t, id, show_special, buf, sizeof buf, &len);
        if (st == KQ_ERR_RANGE && len > sizeof buf) {
            p = malloc(len);
            if (!p) return 1;
            st = kq__token_to_piece(t, id, show_special, p, len, &len);
        }
        if (st != KQ_OK) {
            fprintf(stderr, "tok_cli: token %d: %s\n", id, kq_last_error());
            return 1;
        }
        for (size_t i = 0; i < len; i++) printf("%02x", (unsigned char)p[i]);
        putchar('\n');
        if (p != buf) free(p);
    }
    return 0;
}

static int info(const kq_tokenizer *t)
{
    printf("n_vocab %d\nbos %d\neos %d\neog", kq__tokenizer_n_vocab(t), kq__tokenizer_bos(t),
           kq__tokenizer_eos(t));
    for (int32_t id = 0; id < kq__tokenizer_n_vocab(t); id++)
        if (kq__tokenizer_is_eog(t, id)) printf(" %d", id);
    putchar('\n');
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tok_cli VOCAB.gguf tokenize|pieces|info [flags]\n");
        return 2;
    }
    kq_gguf *g;
    kq_tokenizer *t;
    if (kq_gguf_open(argv[1], &g) != KQ_OK) {
        fprintf(stderr, "tok_cli: %s\n", kq_last_error());
        return 1;
    }
    kq_status st = kq__tokenizer_from_gguf(g, &t);
    kq_gguf_close(g);
    if (st != KQ_OK) {
        printf("ERR %s %s\n", kq_status_name(st), kq_last_error());
        return 1;
    }
    int rc = 2;
    if (strcmp(argv[2], "tokenize") == 0 && argc == 5)
        rc = tokenize_lines(t, atoi(argv[3]), atoi(argv[4]));
    else if (strcmp(argv[2], "pieces") == 0 && argc == 4)
        rc = pieces(t, atoi(argv[3]));
    else if (strcmp(argv[2], "info") == 0)
        rc = info(t);
    else
        fprintf(stderr, "tok_cli: bad arguments\n");
    kq__tokenizer_free(t);
    return rc;
}
