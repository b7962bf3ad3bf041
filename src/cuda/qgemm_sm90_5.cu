// Instantiations of the Hopper GEMM for Q5_1 and IQ4_NL weights (qgemm_sm90.cuh;
// apart from qgemm_sm90.cu so they compile in parallel).
#include "qgemm_sm90.cuh"

namespace kqc {
namespace sm90 {
KQ_SM90_INSTANCE(launch_q5_1, T_Q5_1)
KQ_SM90_INSTANCE(launch_iq4_nl, T_IQ4_NL)
}  // namespace sm90
}  // namespace kqc
