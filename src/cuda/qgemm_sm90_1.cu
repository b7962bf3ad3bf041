// Instantiations of the Hopper GEMM for Q4_1 and Q5_0 weights (qgemm_sm90.cuh;
// apart from qgemm_sm90.cu so they compile in parallel).
#include "qgemm_sm90.cuh"

namespace kqc {
namespace sm90 {
KQ_SM90_INSTANCE(launch_q4_1, T_Q4_1)
KQ_SM90_INSTANCE(launch_q5_0, T_Q5_0)
}  // namespace sm90
}  // namespace kqc
