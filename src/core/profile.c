/* KQ_PROFILE=1: each forward call is timed (the backend synchronized around
 * it) and a table by op, type and shape goes to stderr at exit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"

typedef struct prof_entry {
    char op[24], type[32], kernel[24];
    int64_t n, k, experts, top_k, m;
    long calls;
    double total, min, max;
} prof_entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static prof_entry *g_entries;
static size_t g_count, g_cap;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_enabled;
/* The kernel the backend ran for this thread's call being timed. */
static _Thread_local const char *g_kernel;

static void print_summary(void);

static void read_env(void)
{
    const char *v = getenv("KQ_PROFILE");
    g_enabled = v && *v && strcmp(v, "0") != 0;
    if (g_enabled) atexit(print_summary);
}

int kq__profile_enabled(void)
{
    pthread_once(&g_once, read_env);
    return g_enabled;
}

double kq__now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int same_key(const prof_entry *e, const char *op, const char *type, const char *kernel,
                    int64_t n, int64_t k, int64_t experts, int64_t top_k, int64_t m)
{
    return e->n == n && e->k == k && e->experts == experts && e->top_k == top_k && e->m == m &&
           strcmp(e->op, op) == 0 && strcmp(e->type, type) == 0 && strcmp(e->kernel, kernel) == 0;
}

void kq__profile_kernel(const char *name) { g_kernel = name; }

void kq__profile_record(const char *op, const char *type, int64_t n, int64_t k, int64_t experts,
                        int64_t top_k, int64_t m, double seconds)
{
    /* Keys are compared as stored: a name longer than its field is cut the
     * same way on every call, so its calls still share one row. */
    char opk[sizeof g_entries->op], typek[sizeof g_entries->type], kernk[sizeof g_entries->kernel];
    snprintf(opk, sizeof opk, "%s", op);
    snprintf(typek, sizeof typek, "%s", type);
    snprintf(kernk, sizeof kernk, "%s", g_kernel ? g_kernel : "-");
    op = opk, type = typek;
    const char *kernel = kernk;
    g_kernel = NULL;
    pthread_mutex_lock(&g_lock);
    prof_entry *e = NULL;
    for (size_t i = 0; i < g_count && !e; i++)
        if (same_key(&g_entries[i], op, type, kernel, n, k, experts, top_k, m)) e = &g_entries[i];
    if (!e) {
        if (g_count == g_cap) {
            size_t cap = g_cap ? 2 * g_cap : 32;
            prof_entry *grown = realloc(g_entries, cap * sizeof *grown);
            if (!grown) { /* profiling is best effort: drop the sample */
                pthread_mutex_unlock(&g_lock);
                return;
            }
            g_entries = grown;
            g_cap = cap;
        }
        e = &g_entries[g_count++];
        memset(e, 0, sizeof *e);
        snprintf(e->op, sizeof e->op, "%s", op);
        snprintf(e->type, sizeof e->type, "%s", type);
        snprintf(e->kernel, sizeof e->kernel, "%s", kernel);
        e->n = n, e->k = k, e->experts = experts, e->top_k = top_k, e->m = m;
        e->min = seconds;
    }
    e->calls++;
    e->total += seconds;
    if (seconds < e->min) e->min = seconds;
    if (seconds > e->max) e->max = seconds;
    pthread_mutex_unlock(&g_lock);
}

static void print_summary(void)
{
    pthread_mutex_lock(&g_lock);
    fprintf(stderr, "kquant profile (KQ_PROFILE=1): %zu op/shape groups\n", g_count);
    fprintf(stderr, "%-14s %-14s %7s %7s %9s %6s %8s %11s %11s %11s  %s\n", "op", "type", "N", "K",
            "E/top_k", "m", "calls", "total ms", "mean us", "min us", "kernel");
    for (size_t i = 0; i < g_count; i++) {
        const prof_entry *e = &g_entries[i];
        char ek[32] = "-";
        if (e->experts) snprintf(ek, sizeof ek, "%lld/%lld", (long long)e->experts,
                                 (long long)e->top_k);
        fprintf(stderr, "%-14s %-14s %7lld %7lld %9s %6lld %8ld %11.3f %11.2f %11.2f  %s\n", e->op,
                e->type, (long long)e->n, (long long)e->k, ek, (long long)e->m, e->calls,
                e->total * 1e3, e->total / (double)e->calls * 1e6, e->min * 1e6, e->kernel);
    }
    free(g_entries);
    g_entries = NULL;
    g_count = g_cap = 0;
    pthread_mutex_unlock(&g_lock);
}

kq_status kq__profile_start(kq_backend *b, double *t0)
{
    g_kernel = NULL;
    kq_status st = kq_backend_sync(b);
    *t0 = kq__now_seconds();
    return st;
}

kq_status kq__profile_stop(kq_backend *b, kq_status st, double t0, const char *op,
                           const char *type, int64_t n, int64_t k, int64_t experts,
                           int64_t top_k, int64_t m)
{
    if (st == KQ_OK) st = kq_backend_sync(b);
    if (st == KQ_OK) kq__profile_record(op, type, n, k, experts, top_k, m, kq__now_seconds() - t0);
    return st;
}
