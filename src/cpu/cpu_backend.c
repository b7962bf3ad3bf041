/* The "cpu" backend: int8 micro-kernels of the widest instruction set the
 * CPU runs (or the one KQ_CPU_ISA names) under drivers that own the loops,
 * the cache blocking and a persistent thread pool (cpu_linear.c,
 * cpu_experts.c, cpu_tiles.c, pool.c). Weights are used zero-copy in their
 * GGUF layout. Calls on one backend from several threads are serialized:
 * each owns the pool and the scratch for its duration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ceilings.h"
#include "core/error.h"
#include "cpu_backend.h"
#include "cpu_features.h"
#include "formats/type_list.h"

void *kq__cpu_scratch(cpu_state *s, size_t bytes)
{
    if (bytes <= s->scratch_cap) return s->scratch;
    /* Grow by half again, so a slowly growing m settles after a few calls. */
    size_t cap = bytes + bytes / 2;
    cap = kq__cpu_align64(cap < bytes ? bytes : cap);
    void *p = NULL;
    if (posix_memalign(&p, 64, cap) != 0) return NULL;
    if (s->scratch) memcpy(p, s->scratch, s->scratch_cap);
    free(s->scratch);
    s->scratch = p;
    s->scratch_cap = cap;
    return p;
}

static void cpu_close(kq_backend *b)
{
    cpu_state *s = b->impl;
    if (!s) return;
    kq__pool_destroy(s->pool);
    pthread_mutex_destroy(&s->call_mu);
    free(s->scratch);
    free(s);
    b->impl = NULL;
}

static kq_status cpu_ceilings(kq_backend *b, kq_ceilings *out)
{
    return kq__cpu_ceilings(((cpu_state *)b->impl)->threads, out);
}

static const kq_backend_ops cpu_ops = {
    .kind = "cpu",
    .host_memory = 1,
    .close = cpu_close,
    .linear_forward = kq__cpu_linear_forward,
    .experts_forward = kq__cpu_experts_forward,
    .linear_glu = kq__cpu_linear_glu,
    .experts_swiglu = kq__cpu_experts_swiglu,
    .ceilings = cpu_ceilings,
};

/* Every quantized weight type runs through int8 micro-kernels. */
#define KQ_INT8_TYPE(id, name, block, elems, act) id,
static const int g_int8_types[] = {KQ_QUANT_TYPES(KQ_INT8_TYPE)};
#undef KQ_INT8_TYPE

kq_status kq__cpu_open(kq_backend *b)
{
    char err[160] = "";
    int isa = kq__isa_select(err, sizeof err);
    if (isa < 0) return kq__fail(KQ_ERR_UNSUPPORTED, "kq_backend_open('cpu'): %s", err);
    cpu_state *s = calloc(1, sizeof *s);
    if (!s) return kq__fail(KQ_ERR_NO_MEMORY, "kq_backend_open('cpu'): out of memory");
    s->isa = (kq_isa)isa;
    for (int v = 0; v < 2; v++)
        for (size_t t = 0; t < sizeof g_int8_types / sizeof g_int8_types[0]; t++) {
            const int type = g_int8_types[t];
            if (type >= KQ_CPU_MAX_TYPE || !(s->kern[v][type] = kq__ukernel(s->isa, type, v))) {
                free(s);
                return kq__fail(KQ_ERR_UNSUPPORTED,
                                "kq_backend_open('cpu'): no %s micro-kernel for %s (variant %d)",
                                kq__isa_name((kq_isa)isa), kq_type_name((kq_type)type), v);
            }
            s->kern[KQ_CPU_X8][type] = kq__ukernel(s->isa, type, KQ_CPU_X8);
        }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    int want = b->spec.threads > 0 ? b->spec.threads : (int)(cores < 256 ? cores : 256);
    s->pool = kq__pool_create(want);
    if (!s->pool) {
        free(s);
        return kq__fail(KQ_ERR_NO_MEMORY, "kq_backend_open('cpu'): cannot create a thread pool");
    }
    s->threads = kq__pool_threads(s->pool);
    pthread_mutex_init(&s->call_mu, NULL);
    b->ops = &cpu_ops;
    b->impl = s;
    /* The kernels actually used, so a log shows a fallback to scalar. */
    const kq_ukernel *k0 = s->kern[0][KQ_TYPE_Q4_K], *k1 = s->kern[1][KQ_TYPE_Q4_K];
    snprintf(b->device, sizeof b->device, "%s, %ld cores; %s kernels (%s, %s), %d thread%s%s",
             kq__cpu_model_name(), cores, kq__isa_name(s->isa), k0->name, k1->name, s->threads,
             s->threads == 1 ? "" : "s", s->threads < want ? " (fewer could start)" : "");
    return KQ_OK;
}
