/* Resource limits. Each case runs in a forked child under an address-space
 * limit (RLIMIT_AS) a little above what the child already uses, so any
 * allocation the library makes beyond that fails:
 * - files whose counts and lengths claim more than the file could hold are
 *   refused as malformed (KQ_ERR_FORMAT), before anything is allocated for
 *   them: a reader that trusted the count would fail with KQ_ERR_NO_MEMORY;
 * - a valid file too big to map, or whose metadata needs more memory than
 *   the limit leaves, fails with KQ_ERR_NO_MEMORY and a message;
 * - loading weights from a caller buffer (the copy path: the backend must
 *   allocate), alone, fused or as experts, fails with KQ_ERR_NO_MEMORY and a
 *   message naming what could not be allocated;
 * - a forward whose scratch row cannot be allocated fails the same way, and
 *   one whose worker threads cannot be started still gives the right result;
 * after each failure the soft limit is lifted and the same call succeeds.
 *
 * RLIMIT_AS cannot work under AddressSanitizer, ThreadSanitizer or valgrind
 * (they reserve terabytes of address space up front): there the test skips. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KQ_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define KQ_UNDER_SANITIZER 1
#endif
#endif

#define MB ((size_t)1 << 20)

static int has(const char *sub) { return strstr(kq_last_error(), sub) != NULL; }

/* ---------------------------------------------------------------- limits */

/* The address space this process has mapped now. */
static size_t vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static struct rlimit g_saved;

/* Lets the process map at most `headroom` bytes more than it has now. */
static int limit_headroom(size_t headroom)
{
    struct rlimit r = g_saved;
    r.rlim_cur = (rlim_t)(vm_bytes() + headroom);
    if (g_saved.rlim_max != RLIM_INFINITY && r.rlim_cur > g_saved.rlim_max)
        r.rlim_cur = g_saved.rlim_max;
    return setrlimit(RLIMIT_AS, &r);
}

static void unlimit(void) { setrlimit(RLIMIT_AS, &g_saved); }

/* Runs fn in a child; the child's checks print their own failures, and a
 * crash or a failed check fails the parent's check named `what`. */
static void in_child(const char *what, void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        unlimit();
        fflush(stdout);
        _exit(kt_failures() ? 1 : 0);
    }
    int st = 0;
    KT_CHECK(pid > 0 && waitpid(pid, &st, 0) == pid, "%s: fork/wait: %s", what, strerror(errno));
    KT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child %s %d", what,
             WIFSIGNALED(st) ? "died of signal" : "exited with",
             WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* ---------------------------------------------------------------- files */

static int write_file(const char *path, const void *p, size_t n, size_t total)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int ok = write(fd, p, n) == (ssize_t)n && ftruncate(fd, (off_t)total) == 0;
    return close(fd) == 0 && ok ? 0 : -1;
}

typedef struct buf {
    uint8_t p[512];
    size_t n;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void put32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put64(buf *b, uint64_t v) { put(b, &v, 8); }
static void header(buf *b, uint64_t n_tensors, uint64_t n_kv)
{
    b->n = 0;
    put(b, "GGUF", 4);
    put32(b, 3);
    put64(b, n_tensors);
    put64(b, n_kv);
}
static void key(buf *b, const char *k, uint32_t vtype)
{
    put64(b, strlen(k));
    put(b, k, strlen(k));
    put32(b, vtype);
}

/* Counts that a trusting reader would allocate for: ten million records of
 * ~100 bytes is a gigabyte, far above the limit, yet each file is tiny. */
#define CLAIM 10000000ull

typedef struct claim {
    const char *what;
    buf b;
    size_t file_size; /* padded with zeros to this size */
    const char *needle;
} claim;

static void claims(void)
{
    static claim c[6];
    header(&c[0].b, 0, CLAIM);
    c[0].what = "n_kv = 10^7";
    c[0].needle = "key/value pairs cannot fit";
    header(&c[1].b, CLAIM, 0);
    c[1].what = "n_tensors = 10^7";
    c[1].needle = "tensor infos cannot fit";
    header(&c[2].b, 0, 1);
    key(&c[2].b, "s", KQ_GGUF_STRING);
    put64(&c[2].b, 1000000000ull);
    c[2].what = "a string of 10^9 bytes";
    c[2].needle = "string value length 1000000000 exceeds";
    header(&c[3].b, 0, 1);
    key(&c[3].b, "a", KQ_GGUF_ARRAY);
    put32(&c[3].b, KQ_GGUF_U32);
    put64(&c[3].b, CLAIM * 10);
    c[3].what = "an array of 10^8 u32";
    c[3].needle = "array length 100000000 of u32 elements cannot fit";
    header(&c[4].b, 0, 1);
    key(&c[4].b, "toks", KQ_GGUF_ARRAY);
    put32(&c[4].b, KQ_GGUF_STRING);
    put64(&c[4].b, CLAIM);
    c[4].what = "an array of 10^7 strings";
    c[4].needle = "array length 10000000 of string elements cannot fit";
    header(&c[5].b, 0, 1);
    key(&c[5].b, "aa", KQ_GGUF_ARRAY);
    put32(&c[5].b, KQ_GGUF_ARRAY);
    put64(&c[5].b, CLAIM);
    c[5].what = "an array of 10^7 arrays";
    c[5].needle = "array length 10000000 of array elements cannot fit";
    const char *path = kt_tmp_path("claims.gguf");
    for (int i = 0; i < 6; i++) {
        /* A 64 KiB file: room for some records, not for ten million. */
        if (!KT_CHECK(write_file(path, c[i].b.p, c[i].b.n, 64 << 10) == 0, "write %s", path))
            return;
        KT_CHECK(limit_headroom(16 * MB) == 0, "setrlimit: %s", strerror(errno));
        kq_gguf *g = NULL;
        kq_status s = kq_gguf_open(path, &g);
        unlimit();
        KT_CHECK(s == KQ_ERR_FORMAT && g == NULL && has(c[i].needle) && has("byte offset"),
                 "%s under a 16 MB limit: %s %s", c[i].what, kq_status_name(s), kq_last_error());
        kq_gguf_close(g);
    }
    unlink(path);
}

/* A valid file too large to map under the limit (sparse: no disk used). */
static void file_too_big_to_map(void)
{
    buf b;
    header(&b, 0, 0);
    const char *path = kt_tmp_path("big.gguf");
    if (!KT_CHECK(write_file(path, b.p, b.n, 256 * MB) == 0, "write %s", path)) return;
    KT_CHECK(limit_headroom(32 * MB) == 0, "setrlimit: %s", strerror(errno));
    kq_gguf *g = NULL;
    kq_status s = kq_gguf_open(path, &g);
    unlimit();
    KT_CHECK(s == KQ_ERR_NO_MEMORY && g == NULL && has("cannot map") && has(path),
             "mapping 256 MB under a 32 MB limit: %s %s", kq_status_name(s), kq_last_error());
    s = kq_gguf_open(path, &g);
    KT_CHECK(s == KQ_OK, "without the limit it opens: %s", kq_last_error());
    kq_gguf_close(g);
    unlink(path);
}

/* A valid file whose 200000 keys need more memory than the limit leaves:
 * the reader's own records and index fail to grow, with a message. */
static void metadata_too_big(void)
{
    kq_gguf_writer *w = NULL;
    if (!KT_OK(kq_gguf_writer_new(3, &w))) return;
    for (int i = 0; i < 200000; i++) {
        char k[32];
        uint8_t v = (uint8_t)i;
        snprintf(k, sizeof k, "k.%d", i);
        if (kq_gguf_writer_set(w, k, KQ_GGUF_U8, &v) != KQ_OK) break;
    }
    const char *path = kt_tmp_path("many-keys.gguf");
    KT_OK(kq_gguf_writer_save(w, path));
    kq_gguf_writer_free(w);
    KT_CHECK(limit_headroom(8 * MB) == 0, "setrlimit: %s", strerror(errno));
    kq_gguf *g = NULL;
    kq_status s = kq_gguf_open(path, &g);
    unlimit();
    KT_CHECK(s == KQ_ERR_NO_MEMORY && g == NULL && has(path) && has("byte offset") &&
                 (has("cannot allocate") || has("cannot grow")),
             "200000 keys under an 8 MB limit: %s %s", kq_status_name(s), kq_last_error());
    s = kq_gguf_open(path, &g);
    KT_CHECK(s == KQ_OK && kq_gguf_n_kv(g) == 200000, "without the limit it opens: %s",
             kq_last_error());
    kq_gguf_close(g);
    unlink(path);
}

/* ---------------------------------------------------------------- weights */

/* Caller weights of `bytes` bytes, mapped before the limit is set. They are
 * never touched (the load fails before copying), so they cost no memory. */
static void *caller_buffer(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void weights_copy(const char *spec)
{
    kq_backend *b = NULL;
    if (!KT_OK(kq_backend_open(spec, &b))) return;
    const int64_t k = 65536, n = 1024; /* f32: 256 MB */
    const size_t big = (size_t)(k * n) * 4;
    float *w = caller_buffer(big);
    if (!KT_CHECK(w != NULL, "mmap %zu bytes", big)) return;
    kq_linear *l = (kq_linear *)&l;
    kq_experts *e = (kq_experts *)&e;
    float small[64 * 4] = {0};
    /* Fused: a small first part that fits, then the big buffer seen as rows
     * of K = 64; the first part's copy must be freed when the second fails. */
    kq_part parts[2] = {{KQ_TYPE_F32, small, sizeof small, 4},
                        {KQ_TYPE_F32, w, big, (int64_t)(big / (64 * 4))}};

    KT_CHECK(limit_headroom(32 * MB) == 0, "setrlimit: %s", strerror(errno));
    kq_status s1 = kq_linear_load(b, KQ_TYPE_F32, w, big, n, k, &l);
    char m1[1024];
    snprintf(m1, sizeof m1, "%s", kq_last_error());
    kq_linear *lf = (kq_linear *)&lf;
    kq_status s2 = kq_linear_load_fused(b, parts, 2, 64, &lf);
    char m2[1024];
    snprintf(m2, sizeof m2, "%s", kq_last_error());
    kq_status s3 = kq_experts_load(b, KQ_TYPE_F32, w, big, 8, n / 8, k, &e);
    char m3[1024];
    snprintf(m3, sizeof m3, "%s", kq_last_error());
    unlimit();

    KT_CHECK(s1 == KQ_ERR_NO_MEMORY && l == NULL &&
                 strstr(m1, "kq_linear_load: cannot allocate 268435456 bytes for a copy of the "
                            "weights"),
             "%s: linear copy of 256 MB under a 32 MB limit: %s %s", spec, kq_status_name(s1), m1);
    KT_CHECK(s2 == KQ_ERR_NO_MEMORY && lf == NULL &&
                 strstr(m2, "kq_linear_load_fused: part 1: cannot allocate 268435456 bytes"),
             "%s: fused copy, part 1 too big: %s %s", spec, kq_status_name(s2), m2);
    KT_CHECK(s3 == KQ_ERR_NO_MEMORY && e == NULL &&
                 strstr(m3, "kq_experts_load: cannot allocate 268435456 bytes"),
             "%s: experts copy under a 32 MB limit: %s %s", spec, kq_status_name(s3), m3);

    /* Without the limit the same load works: the failure left nothing broken. */
    kq_linear *ok = NULL;
    KT_OK(kq_linear_load(b, KQ_TYPE_F32, w, big, n, k, &ok));
    kq_linear_free(ok);
    munmap(w, big);
    kq_backend_close(b);
}

static void weights_copy_cpu_ref(void) { weights_copy("cpu-ref"); }
static void weights_copy_cpu(void) { weights_copy("cpu"); }

/* A forward needs a K-float scratch row per thread in the reference
 * backend: with K = 2^24 (64 MB) and 16 MB of headroom it cannot have it. */
static void forward_scratch(void)
{
    kq_backend *b = NULL;
    if (!KT_OK(kq_backend_open("cpu-ref:threads=1", &b))) return;
    const int64_t k = INT64_C(1) << 24;
    size_t row = 0;
    KT_OK(kq_row_size(KQ_TYPE_Q4_0, k, &row)); /* 9 MB */
    uint8_t *w = calloc(1, row * 2);
    float *x = calloc((size_t)k * 2, sizeof *x); /* [2, K]: 128 MB, zero pages */
    float y[4] = {1, 1, 1, 1};
    kq_linear *l = NULL;
    kq_experts *e = NULL;
    if (!KT_CHECK(w && x, "buffers") || !KT_OK(kq_linear_load(b, KQ_TYPE_Q4_0, w, row, 1, k, &l)) ||
        !KT_OK(kq_experts_load(b, KQ_TYPE_Q4_0, w, row * 2, 2, 1, k, &e)))
        goto done;
    KT_CHECK(limit_headroom(16 * MB) == 0, "setrlimit: %s", strerror(errno));
    kq_status s1 = kq_linear_forward(b, l, x, y, 1);
    char m1[1024];
    snprintf(m1, sizeof m1, "%s", kq_last_error());
    int32_t ids[2] = {1, 0};
    kq_status s2 = kq_experts_forward(b, e, x, k, 0, ids, 1, 2, y);
    char m2[1024];
    snprintf(m2, sizeof m2, "%s", kq_last_error());
    unlimit();
    KT_CHECK(s1 == KQ_ERR_NO_MEMORY && strstr(m1, "kq_linear_forward: cannot allocate a "
                                                  "16777216-float row"),
             "linear forward, K = 2^24 under a 16 MB limit: %s %s", kq_status_name(s1), m1);
    KT_CHECK(s2 == KQ_ERR_NO_MEMORY && strstr(m2, "kq_experts_forward: cannot allocate"),
             "experts forward, K = 2^24 under a 16 MB limit: %s %s", kq_status_name(s2), m2);
    KT_OK(kq_linear_forward(b, l, x, y, 1));
    KT_CHECK(y[0] == 0.0f, "zero weights give 0, not %g", y[0]);
done:
    kq_linear_free(l);
    kq_experts_free(e);
    kq_backend_close(b);
    free(w);
    free(x);
}

/* Worker threads need stacks (8 MB each by default): with 4 MB of
 * headroom none can start, and the calling thread does all the rows. The
 * expected result comes from one thread (results do not depend on the
 * thread count), so no stack of an earlier thread is cached for reuse. */
static void forward_without_threads(void)
{
    kq_backend *b = NULL, *one = NULL;
    if (!KT_OK(kq_backend_open("cpu-ref:threads=8", &b)) ||
        !KT_OK(kq_backend_open("cpu-ref:threads=1", &one)))
        return;
    kt_weight w;
    if (!KT_CHECK(kt_weight_make(&w, KQ_TYPE_Q6_K, 64, 512) == 0, "weight")) return;
    kq_linear *l = NULL, *l1 = NULL;
    float x[2 * 512], want[2 * 64], got[2 * 64];
    kt_fill_normal(x, 2 * 512, 1.0f);
    if (KT_OK(kq_linear_load(b, w.type, w.bytes, w.nbytes, 64, 512, &l)) &&
        KT_OK(kq_linear_load(one, w.type, w.bytes, w.nbytes, 64, 512, &l1)) &&
        KT_OK(kq_linear_forward(one, l1, x, want, 2))) {
        kt_poison(got, 2 * 64);
        KT_CHECK(limit_headroom(4 * MB) == 0, "setrlimit: %s", strerror(errno));
        kq_status s = kq_linear_forward(b, l, x, got, 2);
        unlimit();
        KT_CHECK(s == KQ_OK && memcmp(got, want, sizeof got) == 0,
                 "8 threads that cannot start: %s, results %s", kq_last_error(),
                 memcmp(got, want, sizeof got) ? "differ" : "equal");
    }
    kq_linear_free(l);
    kq_linear_free(l1);
    kt_weight_free(&w);
    kq_backend_close(b);
    kq_backend_close(one);
}

int main(void)
{
    kt_init("test_limits");
#ifdef KQ_UNDER_SANITIZER
    printf("SKIP: a sanitizer reserves terabytes of address space, so RLIMIT_AS cannot limit "
           "this build; the plain build runs this test\n");
    return KT_SKIP;
#endif
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) {
        printf("SKIP: under valgrind, which manages the address space itself\n");
        return KT_SKIP;
    }
    if (getrlimit(RLIMIT_AS, &g_saved) != 0) {
        printf("SKIP: getrlimit(RLIMIT_AS): %s\n", strerror(errno));
        return KT_SKIP;
    }
    in_child("counts that cannot fit", claims);
    in_child("a file too big to map", file_too_big_to_map);
    in_child("metadata too big for memory", metadata_too_big);
    in_child("weight copies on cpu-ref", weights_copy_cpu_ref);
    in_child("weight copies on cpu", weights_copy_cpu);
    in_child("a forward without scratch memory", forward_scratch);
    in_child("a forward whose threads cannot start", forward_without_threads);
    return kt_finish();
}
