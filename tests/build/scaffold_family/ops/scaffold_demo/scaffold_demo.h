// Launch function of the scaffold_demo family. The binding (scaffold_demo_binding.cc) validates
// the arguments before calling it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/kernel_table.h"

namespace fdops::scaffold_demo {

// out[i] = factor * input[i] for the n float32 elements of two contiguous device buffers.
cudaError_t launch_scaled_copy(const float* input, float* out, float factor, int64_t n,
                               cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_SCAFFOLD_DEMO_KERNELS(X) \
  X(scaled_copy, launch_scaled_copy)
FDOPS_KERNEL_TABLE(FDOPS_SCAFFOLD_DEMO_KERNELS)

}  // namespace fdops::scaffold_demo
