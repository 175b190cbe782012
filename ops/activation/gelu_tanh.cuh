// gelu_tanh device code: out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in fp32,
// rounded once to the element type.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"

namespace fdops::activation {

// SM75+ has a single-instruction tanh (MUFU.TANH, max relative error ~2^-11), which is what
// upstream uses. SM70 lacks it, so sm_70 code (its SASS and the compute_70 PTX that newer GPUs
// JIT-compile from it) uses libdevice's tanhf instead: slower, and accurate to 2 ulp.
__device__ __forceinline__ float tanh_approx(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return tanhf(x);
#endif
}

__device__ __forceinline__ float gelu_tanh_f32(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608f;
  constexpr float kCoeff = 0.044715f;
  const float inner = kSqrt2OverPi * (x + kCoeff * x * x * x);
  return 0.5f * x * (1.f + tanh_approx(inner));
}

// Three phases over one flat range, each grid-stride: a scalar head up to the first 16-byte
// boundary of the input, N-element vectors (input and output share that alignment; the host
// makes the head cover everything otherwise), and a scalar tail. int64 indexing throughout.
template <typename T>
__global__ void __launch_bounds__(256)
    gelu_tanh_kernel(const T* __restrict__ input, T* __restrict__ out, int64_t numel,
                     int64_t head, int64_t num_vecs) {
  constexpr int N = 16 / sizeof(T);
  wait_for_dependencies();
  allow_dependent_launch();
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < head; i += stride) out[i] = from_float<T>(gelu_tanh_f32(to_float(input[i])));
  const T* in_v = input + head;
  T* out_v = out + head;
  for (int64_t i = tid; i < num_vecs; i += stride) {
    float v[N];
    load_vec_as_float<N>(in_v + i * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = gelu_tanh_f32(v[k]);
    store_vec_from_float<N>(out_v + i * N, v);
  }
  for (int64_t i = head + num_vecs * N + tid; i < numel; i += stride)
    out[i] = from_float<T>(gelu_tanh_f32(to_float(input[i])));
}

}  // namespace fdops::activation
