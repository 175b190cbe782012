// launch_warp_sum of the test-only gated_demo family.
#include "tests/gating/gated_demo.cuh"
#include "tests/gating/gated_demo.h"

namespace fdops::gated_demo {

cudaError_t launch_warp_sum(const int32_t* input, int32_t* out, int64_t warps,
                            cudaStream_t stream) {
  if (warps < 0) return cudaErrorInvalidValue;
  if (warps == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t blocks = (warps * 32 + kThreads - 1) / kThreads;
  warp_sum_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(input, out, warps);
  return cudaGetLastError();
}

}  // namespace fdops::gated_demo
