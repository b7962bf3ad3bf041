/* What the fuzz harnesses share: the input as a file the GGUF reader can
 * map (the reader only opens paths), and a small generator seeded from the
 * input, so activations and expert ids are random yet the same on every run
 * of one input (a crash reproduces from its file alone). */
#ifndef KQ_FUZZ_INPUT_H
#define KQ_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* Writes the input to this process's scratch file and returns its path. The
 * file lives in memory (memfd) where the kernel allows, else under $TMPDIR. */
const char *kf_input_path(const uint8_t *data, size_t size);

/* A scratch path for files a harness writes itself (round trips). */
const char *kf_scratch_path(const char *leaf);

typedef struct kf_rng {
    uint64_t state;
} kf_rng;

/* Seeds from a hash of the whole input. */
void kf_rng_seed(kf_rng *r, const uint8_t *data, size_t size);
uint64_t kf_next(kf_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t kf_below(kf_rng *r, uint64_t n);
/* Uniform in [-1, 1). */
float kf_unit(kf_rng *r);

/* Fails the run loudly: a broken invariant is a finding like a crash. */
void kf_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
