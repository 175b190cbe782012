// Test fixture of //tests/build:test_instantiations: the kernel every instantiation group
// instantiates once.
#pragma once

namespace fixture {

template <int kFactor>
__global__ void scale(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= kFactor;
}

}  // namespace fixture
