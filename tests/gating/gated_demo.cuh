// gated_demo device code: one warp per 32 inputs, summed by the SM80 REDUX instruction.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fdops::gated_demo {

__global__ void warp_sum_kernel(const int32_t* __restrict__ input, int32_t* __restrict__ out,
                                int64_t warps) {
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t warp = thread / 32;
  if (warp >= warps) return;  // whole warps: blockDim.x is a multiple of 32
  // __reduce_add_sync exists from SM80 on: compiling this for sm_70 fails, so the family's
  // min_sm is what keeps the sm70 build working.
  const unsigned sum = __reduce_add_sync(0xffffffffu, static_cast<unsigned>(input[thread]));
  if (threadIdx.x % 32 == 0) out[warp] = static_cast<int32_t>(sum);
}

}  // namespace fdops::gated_demo
