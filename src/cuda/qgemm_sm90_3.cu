// Instantiations of the Hopper GEMM for Q3_K and IQ4_XS weights (qgemm_sm90.cuh;
// apart from qgemm_sm90.cu so they compile in parallel).
#include "qgemm_sm90.cuh"

namespace kqc {
namespace sm90 {
KQ_SM90_INSTANCE(launch_q3_K, T_Q3_K)
KQ_SM90_INSTANCE(launch_iq4_xs, T_IQ4_XS)
}  // namespace sm90
}  // namespace kqc
