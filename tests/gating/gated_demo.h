// Launch function of the test-only gated_demo family (SM80+).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/kernel_table.h"

namespace fdops::gated_demo {

// out[w] = sum of input[32 w .. 32 w + 31] (int32, wrapping); input has 32 * warps elements.
cudaError_t launch_warp_sum(const int32_t* input, int32_t* out, int64_t warps,
                            cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_GATED_DEMO_KERNELS(X) \
  X(warp_sum, launch_warp_sum)
FDOPS_KERNEL_TABLE(FDOPS_GATED_DEMO_KERNELS)

}  // namespace fdops::gated_demo
