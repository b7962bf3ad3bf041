// Prefill GEMM on Hopper (sm_90a): quantized weights times fp16 x on wgmma.
//
// Strategy. A block of 3 warpgroups covers 256 weight rows x BN tokens
// (BN = 128, or 64 for few tokens per tile). Warpgroup 0 is the producer:
// one warp issues TMA copies, weights a 256-value group of 256 rows at a
// time (2 stages, the GGUF bytes as they are, through a 3-D tensor map of
// rows x experts; weights whose rows are not 16-byte multiples go to the
// mma.sync kernel instead) and x 64 values of BN tokens
// at a time (fp16, 128-byte swizzle, 4-6 stages), each stage completing on
// an mbarrier. Warpgroups 1 and 2 own 128 rows each, as two m64 tiles:
// per 16-wide K step they decode their A fragments from the shared weight
// bytes straight into registers (qgemm_frag.cuh) and issue one
// m64nBNk16 wgmma per tile with A in registers and x from shared memory,
// accumulating in f32 registers (2 x BN / 2 per thread). Fragments rotate
// through three register sets: a step decodes while the two before it run
// (wait_group 2). setmaxnreg gives the consumers 232
// registers and the producer 40: at the launch's even 168, ptxas serializes
// the wgmmas for want of registers (its C7512 note).
//
// Why fp16 with dequantized weights and not int8 x: int8 wgmma runs at twice
// the rate, but every 32-value sub-block has its own weight scale, so int8
// products must leave the tensor core every K = 32 to be scaled into f32:
// for m64n128k32 that is 64 conversions and 64 FMAs per thread per 64-cycle
// instruction, which the warp schedulers cannot issue in time. Decoding to
// fp16 costs about 10 instructions per row per 16-wide K step (4 weights of
// it per thread) and is, as measured below, what bounds this kernel; the
// int8 path's fixups would cost several times more.
//
// Launches with fewer blocks than SMs split K in two (atomic adds of two
// partial sums into a zeroed y, deterministic); each weight type has its
// own kernel (qgemm_sm90.cuh instantiated here and in qgemm_sm90_*.cu),
// fused parts of several types a mixed one.
//
// Measured (H200, 880 TFLOP/s fp16 wgmma peak in the same run, kq bench;
// bench/RESULTS.md): q4_K 14336x4096 at m = 512 341 TFLOP/s and m = 2048 408;
// 4096x14336 357 / 459; q6_K 299 / 365; q4_K 4096x4096 265 / 365; experts
// 128 x (768x2048) top-8 103 / 212. Nsight Compute: tensor pipe 45% active,
// issue slots 38% busy, top stalls on dependent instructions and shared
// loads: the decode between wgmmas, with 8 consumer warps per SM to hide
// it, is the bound; memory is far from it (L2 2 TB/s, DRAM 0.3 TB/s).
#include "qgemm_sm90.cuh"

namespace kqc {
namespace sm90 {
KQ_SM90_INSTANCE(launch_mixed, -1)
KQ_SM90_INSTANCE(launch_q4_K, T_Q4_K)
}  // namespace sm90

// Only where this binary holds the kernel's sm_90a code and the card is
// compute capability 9.0 exactly: a newer card would run the build's PTX
// for an older architecture, in which the kernel body is a trap.
bool gemm_sm90_built(int sm)
{
    cudaFuncAttributes fa;
    if (sm != 90) return false;
    if (cudaFuncGetAttributes(&fa, sm90::qgemm_sm90<128, -1, sm90::kNC>) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return fa.binaryVersion == 90;
}

cudaError_t gemm_sm90_init(void)
{
    using namespace sm90;
    cudaError_t (*inits[])(void) = {
        launch_mixed_init,
#define KQ_SM90_INIT(ID, name, BLOCK, elems, act) launch_##name##_init,
        KQ_QUANT_TYPES(KQ_SM90_INIT)
#undef KQ_SM90_INIT
    };
    for (auto f : inits) {
        cudaError_t e = f();
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

// The kernel of the launch's one weight type (each decodes only its type),
// or the mixed one; *name says which ran (KQ_PROFILE).
cudaError_t gemm_sm90_launch(const GemmParams &p, int bn, dim3 grid, cudaStream_t s,
                             const char **name)
{
    using namespace sm90;
    int t = p.src[0].type;
    for (int i = 1; i < p.n_src; i++)
        if (p.src[i].type != t) t = -1;
    switch (t) {
#define KQ_SM90_LAUNCH(ID, name_, BLOCK, elems, act) \
    case ID: *name = "wgmma"; return launch_##name_(p, bn, grid, s);
        KQ_QUANT_TYPES(KQ_SM90_LAUNCH)
#undef KQ_SM90_LAUNCH
    case -1: *name = "wgmma mixed"; return launch_mixed(p, bn, grid, s);
    default: return cudaErrorNotSupported;  // the launcher describes no other type
    }
}

}  // namespace kqc
