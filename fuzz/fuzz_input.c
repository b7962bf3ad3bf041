/* The input as a mappable file, a deterministic generator, and loud failure. */
#include "fuzz_input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int g_fd = -1;
static char g_path[512];

static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    if (t && *t) return t;
    return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

const char *kf_scratch_path(const char *leaf)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/kq-fuzz-%ld-%s", tmp_dir(), (long)getpid(), leaf);
    return buf;
}

static void open_scratch(void)
{
#ifdef MFD_CLOEXEC
    /* An in-memory file: no disk traffic per input, and nothing left behind. */
    g_fd = memfd_create("kq-fuzz-input", MFD_CLOEXEC);
    if (g_fd >= 0) {
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
        if (access(g_path, R_OK) == 0) return;
        close(g_fd);
        g_fd = -1;
    }
#endif
    snprintf(g_path, sizeof g_path, "%s", kf_scratch_path("input.gguf"));
    g_fd = open(g_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (g_fd < 0) kf_fail("cannot create the scratch file %s: %s", g_path, strerror(errno));
}

const char *kf_input_path(const uint8_t *data, size_t size)
{
    if (g_fd < 0) open_scratch();
    if (ftruncate(g_fd, 0) != 0) kf_fail("ftruncate %s: %s", g_path, strerror(errno));
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(g_fd, data + done, size - done, (off_t)done);
        if (w <= 0) kf_fail("write %s: %s", g_path, strerror(errno));
        done += (size_t)w;
    }
    return g_path;
}

void kf_rng_seed(kf_rng *r, const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the input */
    for (size_t i = 0; i < size; i++) {
        h ^= data[i];
        h *= 0x100000001b3ull;
    }
    r->state = h ^ size;
}

uint64_t kf_next(kf_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t kf_below(kf_rng *r, uint64_t n) { return kf_next(r) % n; }

float kf_unit(kf_rng *r) { return (float)((double)(kf_next(r) >> 11) * 0x1.0p-52 - 1.0); }

void kf_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kq fuzz invariant broken: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}
