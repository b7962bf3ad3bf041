/* Registry of read-only file mappings: a global list under a mutex, one
 * reference count per mapping, munmap at the last release. */
#include "mapping.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

struct kq_mapping {
    const uint8_t *data;
    uint64_t size;
    long refs; /* guarded by g_lock */
    struct kq_mapping *next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static kq_mapping *g_head;

kq_status kq__mapping_open(const char *path, kq_mapping **out)
{
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "mapping: out is NULL");
    *out = NULL;
    if (!path) return kq__fail(KQ_ERR_INVALID_ARG, "mapping: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kq__fail(KQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kq__fail(KQ_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kq__fail(KQ_ERR_IO, "cannot map '%s': not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return kq__fail(KQ_ERR_FORMAT, "'%s' is empty (0 bytes): not a GGUF file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return kq__fail(KQ_ERR_IO, "cannot map '%s': its size %lld does not fit in memory",
                        path, (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    /* ENOMEM: no address space for the file (a memory limit), not a bad file. */
    if (p == MAP_FAILED)
        return kq__fail(e == ENOMEM ? KQ_ERR_NO_MEMORY : KQ_ERR_IO,
                        "cannot map '%s' (%zu bytes): %s", path, size, strerror(e));
    kq_mapping *m = calloc(1, sizeof *m);
    if (!m) {
        munmap(p, size);
        return kq__fail(KQ_ERR_NO_MEMORY, "cannot allocate the mapping record for '%s'", path);
    }
    m->data = p;
    m->size = (uint64_t)size;
    m->refs = 1;
    pthread_mutex_lock(&g_lock);
    m->next = g_head;
    g_head = m;
    pthread_mutex_unlock(&g_lock);
    *out = m;
    return KQ_OK;
}

const uint8_t *kq__mapping_data(const kq_mapping *m) { return m ? m->data : NULL; }

uint64_t kq__mapping_size(const kq_mapping *m) { return m ? m->size : 0; }

kq_mapping *kq__mapping_find(const void *p, size_t n)
{
    if (!p) return NULL;
    uintptr_t a = (uintptr_t)p;
    kq_mapping *found = NULL;
    pthread_mutex_lock(&g_lock);
    for (kq_mapping *m = g_head; m; m = m->next) {
        uintptr_t base = (uintptr_t)m->data;
        if (a < base) continue;
        uint64_t off = (uint64_t)(a - base);
        if (off <= m->size && (uint64_t)n <= m->size - off) {
            m->refs++;
            found = m;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return found;
}

void kq__mapping_retain(kq_mapping *m)
{
    if (!m) return;
    pthread_mutex_lock(&g_lock);
    m->refs++;
    pthread_mutex_unlock(&g_lock);
}

void kq__mapping_release(kq_mapping *m)
{
    if (!m) return;
    int last = 0;
    pthread_mutex_lock(&g_lock);
    if (--m->refs == 0) {
        last = 1;
        for (kq_mapping **pp = &g_head; *pp; pp = &(*pp)->next)
            if (*pp == m) {
                *pp = m->next;
                break;
            }
    }
    pthread_mutex_unlock(&g_lock);
    if (last) {
        munmap((void *)(uintptr_t)m->data, (size_t)m->size);
        free(m);
    }
}

int64_t kq__mapping_live_count(void)
{
    int64_t n = 0;
    pthread_mutex_lock(&g_lock);
    for (kq_mapping *m = g_head; m; m = m->next) n++;
    pthread_mutex_unlock(&g_lock);
    return n;
}
