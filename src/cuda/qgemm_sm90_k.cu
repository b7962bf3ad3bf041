// Instantiations of the Hopper GEMM for Q5_K and Q6_K weights (qgemm_sm90.cuh;
// apart from qgemm_sm90.cu so they compile in parallel).
#include "qgemm_sm90.cuh"

namespace kqc {
namespace sm90 {
KQ_SM90_INSTANCE(launch_q5_K, T_Q5_K)
KQ_SM90_INSTANCE(launch_q6_K, T_Q6_K)
}  // namespace sm90
}  // namespace kqc
