/* Backend specs ("cpu:threads=8", "cuda:1", "auto"), opening and lifetime.
 * A backend is reference counted: every loaded object holds it, so closing
 * the caller's handle first is safe. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "error.h"

/* The most threads a CPU backend takes (kquant.h documents it): past this a
 * spec is a mistake, not a request, and starting thousands of threads on a
 * small machine would only thrash it. */
#define KQ_MAX_THREADS 256

/* Options a spec may set, each at most once. */
enum { OPT_THREADS = 1, OPT_DEVICE = 2, OPT_HOST_WEIGHTS = 4, OPT_GEMM = 8, OPT_GEMM_MIN_M = 16 };

static kq_status once(const char *spec, const char *key, unsigned bit, unsigned *seen)
{
    if (*seen & bit)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "kq_backend_open: spec '%s': option '%s' is given twice", spec, key);
    *seen |= bit;
    return KQ_OK;
}

static kq_status parse_int_option(const char *spec, const char *key, const char *val, int lo,
                                  int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (*val == '\0' || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "kq_backend_open: spec '%s': %s = '%s' must be an integer in [%d, %d]",
                        spec, key, val, lo, hi);
    *out = (int)v;
    return KQ_OK;
}

/* One option of the spec: "threads=N" for CPU backends, a bare ordinal or
 * "device=N" for CUDA. */
static kq_status parse_option(const char *spec, kq_backend_spec *s, char *opt, unsigned *seen)
{
    char *eq = strchr(opt, '=');
    int is_cpu = strcmp(s->kind, "cpu") == 0 || strcmp(s->kind, "cpu-ref") == 0;
    int is_cuda = strcmp(s->kind, "cuda") == 0;
    kq_status st;
    if (!eq) {
        if (is_cuda) {
            if ((st = once(spec, "device", OPT_DEVICE, seen))) return st;
            return parse_int_option(spec, "device", opt, 0, 1023, &s->device);
        }
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "kq_backend_open: spec '%s': option '%s' is not key=value", spec, opt);
    }
    *eq = '\0';
    const char *key = opt, *val = eq + 1;
    unsigned bit = !strcmp(key, "threads")        ? OPT_THREADS
                   : !strcmp(key, "device")       ? OPT_DEVICE
                   : !strcmp(key, "host_weights") ? OPT_HOST_WEIGHTS
                   : !strcmp(key, "gemm")         ? OPT_GEMM
                   : !strcmp(key, "gemm_min_m")   ? OPT_GEMM_MIN_M
                                                  : 0;
    if (bit && (st = once(spec, key, bit, seen))) return st;
    if (is_cpu && strcmp(key, "threads") == 0)
        return parse_int_option(spec, key, val, 1, KQ_MAX_THREADS, &s->threads);
    if (is_cuda && strcmp(key, "host_weights") == 0)
        return parse_int_option(spec, key, val, 0, 1, &s->host_weights);
    if (is_cuda && strcmp(key, "gemm") == 0) {
        if (strcmp(val, "auto") == 0) s->gemm = 0;
        else if (strcmp(val, "mma") == 0) s->gemm = 1;
        else if (strcmp(val, "off") == 0) s->gemm = -1;
        else
            return kq__fail(KQ_ERR_INVALID_ARG,
                            "kq_backend_open: spec '%s': gemm = '%s' must be auto, mma or off",
                            spec, val);
        return KQ_OK;
    }
    if (is_cuda && strcmp(key, "gemm_min_m") == 0)
        return parse_int_option(spec, key, val, 1, 1 << 30, &s->gemm_min_m);
    if (is_cuda && strcmp(key, "device") == 0)
        return parse_int_option(spec, key, val, 0, 1023, &s->device);
    return kq__fail(KQ_ERR_INVALID_ARG,
                    "kq_backend_open: spec '%s': unknown option '%s' for backend '%s'", spec, key,
                    s->kind);
}

static kq_status parse_spec(const char *spec, kq_backend_spec *s)
{
    char buf[256];
    size_t len = strlen(spec);
    if (len == 0 || len >= sizeof buf)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_backend_open: spec '%.64s' is %s", spec,
                        len ? "too long" : "empty");
    memcpy(buf, spec, len + 1);
    memset(s, 0, sizeof *s);
    char *colon = strchr(buf, ':');
    if (colon) *colon = '\0';
    if (strlen(buf) >= sizeof s->kind || (strcmp(buf, "cpu") && strcmp(buf, "cpu-ref") &&
                                          strcmp(buf, "cuda") && strcmp(buf, "auto")))
        return kq__fail(KQ_ERR_INVALID_ARG,
                        "kq_backend_open: spec '%s': unknown backend '%s' "
                        "(known: cpu, cpu-ref, cuda, auto)",
                        spec, buf);
    strcpy(s->kind, buf);
    if (!colon) return KQ_OK;
    if (strcmp(s->kind, "auto") == 0)
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_backend_open: spec '%s': 'auto' takes no options",
                        spec);
    if (colon[1] == '\0')
        return kq__fail(KQ_ERR_INVALID_ARG, "kq_backend_open: spec '%s': empty option list", spec);
    /* Split by hand: strtok would pass over the empty options of "threads=2,"
     * or "a,,b", which are typing mistakes to report, not to guess past. */
    unsigned seen = 0;
    for (char *opt = colon + 1; opt;) {
        char *comma = strchr(opt, ',');
        if (comma) *comma = '\0';
        if (*opt == '\0')
            return kq__fail(KQ_ERR_INVALID_ARG,
                            "kq_backend_open: spec '%s': empty option (a leading, trailing or "
                            "doubled ',')",
                            spec);
        kq_status st = parse_option(spec, s, opt, &seen);
        if (st) return st;
        opt = comma ? comma + 1 : NULL;
    }
    return KQ_OK;
}

static kq_status open_kind(kq_backend *b)
{
    snprintf(b->name, sizeof b->name, "%s", b->spec.kind);
    if (strcmp(b->spec.kind, "cpu-ref") == 0) return kq__cpu_ref_open(b);
    if (strcmp(b->spec.kind, "cpu") == 0) return kq__cpu_open(b);
#ifdef KQ_HAVE_CUDA
    return kq__cuda_open(b);
#else
    return kq__fail(KQ_ERR_UNSUPPORTED,
                    "kq_backend_open: backend 'cuda' is not in this build "
                    "(configured without nvcc or with KQ_CUDA=OFF)");
#endif
}

kq_status kq_backend_open(const char *spec, kq_backend **out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_backend_open: out is NULL");
    *out = NULL;
    if (!spec) return kq__fail(KQ_ERR_INVALID_ARG, "kq_backend_open: spec is NULL");
    kq_backend *b = calloc(1, sizeof *b);
    if (!b) return kq__fail(KQ_ERR_NO_MEMORY, "kq_backend_open: out of memory");
    kq_status st = parse_spec(spec, &b->spec);
    if (st == KQ_OK && strcmp(b->spec.kind, "auto") == 0) {
        /* A usable GPU first; any reason it cannot open means the CPU. */
#ifdef KQ_HAVE_CUDA
        strcpy(b->spec.kind, "cuda");
        if (open_kind(b) == KQ_OK) goto opened;
        kq__clear_error();
        memset(b->name, 0, sizeof b->name);
        memset(b->device, 0, sizeof b->device);
        b->ops = NULL;
        b->impl = NULL;
#endif
        strcpy(b->spec.kind, "cpu");
    }
    if (st == KQ_OK) st = open_kind(b);
    if (st) {
        free(b);
        return st;
    }
#ifdef KQ_HAVE_CUDA
opened:
#endif
    atomic_init(&b->refs, 1);
    *out = b;
    return KQ_OK;
}

void kq__backend_retain(kq_backend *b) { atomic_fetch_add(&b->refs, 1); }

void kq__backend_release(kq_backend *b)
{
    if (atomic_fetch_sub(&b->refs, 1) == 1) {
        if (b->ops->close) b->ops->close(b);
        free(b);
    }
}

void kq_backend_close(kq_backend *b)
{
    if (b) kq__backend_release(b);
}

const char *kq_backend_name(const kq_backend *b) { return b ? b->name : NULL; }
const char *kq_backend_device(const kq_backend *b) { return b ? b->device : NULL; }

kq_status kq_backend_sync(kq_backend *b)
{
    kq__clear_error();
    if (!b) return kq__fail(KQ_ERR_INVALID_ARG, "kq_backend_sync: backend is NULL");
    return b->ops->sync ? b->ops->sync(b) : KQ_OK;
}

kq_status kq_backend_set_stream(kq_backend *b, void *cuda_stream)
{
    kq__clear_error();
    if (!b) return kq__fail(KQ_ERR_INVALID_ARG, "kq_backend_set_stream: backend is NULL");
    if (!b->ops->set_stream)
        return kq__fail(KQ_ERR_UNSUPPORTED,
                        "kq_backend_set_stream: backend '%s' has no streams (CUDA only)",
                        b->name);
    return b->ops->set_stream(b, cuda_stream);
}

void *kq_backend_stream(const kq_backend *b)
{
    return b && b->ops->stream ? b->ops->stream(b) : NULL;
}
