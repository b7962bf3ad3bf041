/* The decode step as one CUDA graph: a small model's step is a few hundred
 * short kernels, and launching them one by one costs more than running
 * them (issue 14: Gemma 3 270M is launch-bound without it). forward.c hands
 * the device part of a pass (layers, final norm, output head) to
 * kq__model_graph_run; the host work around it (the embedding rows and
 * positions, staged and sent in one asynchronous copy before the replay,
 * and the logits copy after it, unless the head wrote them to the host
 * itself) runs every pass.
 *
 * A shape (rows, logit rows) runs uncaptured the first time, so whatever it
 * allocates on first use is in place, then is captured on its second pass
 * and replayed from then on. The kernels read positions, sequences and row
 * indices from fixed device buffers, so one graph serves every position.
 * A capture the runtime refuses leaves that shape uncaptured for good.
 * Growing the batch buffers or the logits buffer frees every graph (they
 * name the old addresses), as does a load that moves the backend's scratch
 * (the epoch check below). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/error.h"
#include "model.h"
#ifdef KQ_HAVE_CUDA
#include "ops_cuda.h"
#endif

void kq__model_graphs_init(kq_model *m)
{
    memset(&m->graphs, 0, sizeof m->graphs);
    const char *e = getenv("KQ_GRAPH");
    m->graphs.off = !m->dev || kq__profile_enabled() || (e && !strcmp(e, "0"));
#ifndef KQ_HAVE_CUDA
    m->graphs.off = 1;
#endif
}

void kq__model_graphs_free(kq_model *m)
{
#ifdef KQ_HAVE_CUDA
    for (int i = 0; i < KQ_MODEL_GRAPHS; i++) kq__cu_graph_free(m->graphs.g[i].exec);
#endif
    memset(m->graphs.g, 0, sizeof m->graphs.g);
}

#ifdef KQ_HAVE_CUDA
/* The entry of a shape, or a fresh one in place of the least recently used. */
static kq_model_graph *entry(kq_model_graphs *gs, int64_t n, int64_t n_out, const void *out,
                             int *fresh)
{
    kq_model_graph *old = &gs->g[0];
    for (int i = 0; i < KQ_MODEL_GRAPHS; i++) {
        kq_model_graph *g = &gs->g[i];
        if (g->used && g->n == n && g->n_out == n_out && g->out == out) {
            *fresh = 0;
            return g;
        }
        if (g->used < old->used) old = g;
    }
    kq__cu_graph_free(old->exec);
    memset(old, 0, sizeof *old);
    old->n = n;
    old->n_out = n_out;
    old->out = out;
    *fresh = 1;
    return old;
}

static kq_status capture(kq_model *m, kq_model_graph *g, kq_model_body body, void *ctx)
{
    void *stream = kq_backend_stream(m->b);
    if (kq__cu_graph_begin(stream) != 0) {
        g->failed = 1;
        return body(m, ctx);
    }
    kq_status st = body(m, ctx);
    void *exec = NULL;
    int e = kq__cu_graph_end(stream, &exec);
    if (st != KQ_OK || e != 0) {
        /* Nothing captured ran: the pass runs again, uncaptured, and this
         * shape stays uncaptured. */
        kq__cu_graph_free(exec);
        g->failed = 1;
        kq__clear_error();
        return body(m, ctx);
    }
    g->exec = exec;
    g->epoch = kq__cuda_backend_epoch(m->b);
    return KQ_OK;
}
#endif

kq_status kq__model_graph_run(kq_model *m, int64_t n, int64_t n_out, const void *out,
                              kq_model_body body, void *ctx)
{
#ifdef KQ_HAVE_CUDA
    kq_model_graphs *gs = &m->graphs;
    if (gs->off) return body(m, ctx);
    int fresh;
    kq_model_graph *g = entry(gs, n, n_out, out, &fresh);
    g->used = ++gs->clock;
    if (fresh || g->failed) return body(m, ctx);
    if (g->exec && g->epoch != kq__cuda_backend_epoch(m->b)) {
        /* weights loaded since moved the scratch the graph names */
        kq__cu_graph_free(g->exec);
        g->exec = NULL;
    }
    if (!g->exec) {
        kq_status st = capture(m, g, body, ctx);
        if (st != KQ_OK || !g->exec) return st;
    }
    int e = kq__cu_graph_launch(g->exec, kq_backend_stream(m->b));
    if (e != 0)
        return kq__fail(KQ_ERR_BACKEND, "model: replaying the forward's CUDA graph (%lld rows): %s",
                        (long long)n, kq__cu_error_string(e));
    gs->replays++;
    return KQ_OK;
#else
    (void)n, (void)n_out, (void)out;
    return body(m, ctx);
#endif
}
