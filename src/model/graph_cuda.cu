/* CUDA graph capture and replay for the model layer (graph.c decides when).
 * Capture is thread-local: another thread's unrelated CUDA calls go on
 * normally, and a call of this thread that cannot be captured (a
 * synchronous copy, an allocation) fails the capture instead of running,
 * which graph.c answers by running the step uncaptured. */
#include <cuda_runtime.h>

#include "ops_cuda.h"

extern "C" int kq__cu_graph_begin(void *stream)
{
    return (int)cudaStreamBeginCapture((cudaStream_t)stream, cudaStreamCaptureModeThreadLocal);
}

/* Ends the capture; on success *exec is an instantiated graph. Whatever
 * failed, the stream leaves capture mode and the thread's error is cleared,
 * so the caller can run the same work uncaptured. */
extern "C" int kq__cu_graph_end(void *stream, void **exec)
{
    *exec = NULL;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture((cudaStream_t)stream, &g);
    if (e == cudaSuccess) {
        cudaGraphExec_t x = NULL;
        e = cudaGraphInstantiate(&x, g, 0);
        if (e == cudaSuccess) *exec = (void *)x;
    }
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    return (int)e;
}

extern "C" int kq__cu_graph_launch(void *exec, void *stream)
{
    return (int)cudaGraphLaunch((cudaGraphExec_t)exec, (cudaStream_t)stream);
}

extern "C" void kq__cu_graph_free(void *exec)
{
    if (exec && cudaGraphExecDestroy((cudaGraphExec_t)exec) != cudaSuccess) cudaGetLastError();
}
