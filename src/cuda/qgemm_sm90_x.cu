// Instantiations of the Hopper GEMM for MXFP4 and Q2_K weights (qgemm_sm90.cuh;
// apart from qgemm_sm90.cu so they compile in parallel).
#include "qgemm_sm90.cuh"

namespace kqc {
namespace sm90 {
KQ_SM90_INSTANCE(launch_mxfp4, T_MXFP4)
KQ_SM90_INSTANCE(launch_q2_K, T_Q2_K)
}  // namespace sm90
}  // namespace kqc
