// Launch functions of the activation family. The binding validates arguments first.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/dtype.h"
#include "ops/common/kernel_table.h"

namespace fdops::activation {

// out[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), fp32 math, one rounding.
// input and out: numel elements of dtype (fp32/fp16/bf16), contiguous, may not overlap partially.
cudaError_t launch_gelu_tanh(const void* input, void* out, DType dtype, int64_t numel,
                             cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_ACTIVATION_KERNELS(X) \
  X(gelu_tanh, launch_gelu_tanh)
FDOPS_KERNEL_TABLE(FDOPS_ACTIVATION_KERNELS)

}  // namespace fdops::activation
