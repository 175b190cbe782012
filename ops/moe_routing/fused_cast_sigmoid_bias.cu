// fused_cast_sigmoid_bias: s = sigmoid(x), u = s + bias[col], both rounded once to OutT.
// Memory-bound elementwise pass over [T, E]: each thread moves N elements per step with
// 16-byte (or wider, split) accesses when rows and pointers allow, else one element.
#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/moe_routing/moe_routing.h"
#include "ops/moe_routing/routing.cuh"

namespace fdops::moe_routing {
// Named, not anonymous: nvcc mangles anonymous namespaces with a per-compilation hash, which
// would make objects differ between otherwise identical builds.
namespace fused_cast_sigmoid_bias_impl {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;  // beyond this, threads loop (grid-stride)

template <typename InT, typename OutT, int N>
__global__ void __launch_bounds__(kThreads)
    fused_cast_sigmoid_bias_kernel(const InT* __restrict__ input, const float* __restrict__ bias,
                                   OutT* __restrict__ scores, OutT* __restrict__ scores_with_bias,
                                   int64_t num_vecs, int vecs_per_row) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= num_vecs) return;
  wait_for_dependencies();
  allow_dependent_launch();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  // Track the column incrementally: one 64-bit division per thread instead of per step.
  int col = static_cast<int>(i % vecs_per_row);
  const int col_step = static_cast<int>(stride % vecs_per_row);
  for (; i < num_vecs; i += stride) {
    float x[N], b[N], s[N], u[N];
    load_vec_as_float<N>(input + i * N, x);
    load_vec_as_float<N>(bias + static_cast<int64_t>(col) * N, b);
    sigmoid_exp_n<N>(x, s);
#pragma unroll
    for (int k = 0; k < N; ++k) u[k] = s[k] + b[k];
    store_vec_from_float<N>(scores + i * N, s);
    store_vec_from_float<N>(scores_with_bias + i * N, u);
    col += col_step;
    if (col >= vecs_per_row) col -= vecs_per_row;
  }
}

template <typename InT, typename OutT, int N>
cudaError_t launch_n(const void* input, const float* bias, void* scores, void* scores_with_bias,
                     int64_t num_tokens, int num_experts, cudaStream_t stream) {
  const int vecs_per_row = num_experts / N;
  const int64_t num_vecs = num_tokens * vecs_per_row;
  int64_t blocks = (num_vecs + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  return launch_kernel(fused_cast_sigmoid_bias_kernel<InT, OutT, N>, static_cast<unsigned>(blocks),
                       kThreads, 0, stream, static_cast<const InT*>(input), bias,
                       static_cast<OutT*>(scores), static_cast<OutT*>(scores_with_bias), num_vecs,
                       vecs_per_row);
}

}  // namespace fused_cast_sigmoid_bias_impl

using namespace fused_cast_sigmoid_bias_impl;

cudaError_t launch_fused_cast_sigmoid_bias(const void* input, DType input_dtype, const float* bias,
                                           void* scores, void* scores_with_bias, DType out_dtype,
                                           int64_t num_tokens, int num_experts,
                                           cudaStream_t stream) {
  if (num_tokens < 0 || num_experts < 1) return cudaErrorInvalidValue;
  if (num_tokens == 0) return cudaSuccess;
  return dispatch_float_dtype(input_dtype, [&](auto in_tag) {
    using InT = typename decltype(in_tag)::type;
    return dispatch_float_dtype(out_dtype, [&](auto out_tag) {
      using OutT = typename decltype(out_tag)::type;
      // N elements per step: 16 bytes of the narrower of input/output (the wider side uses
      // one or two 16-byte accesses). Every pointer must be aligned to its N-element access.
      constexpr int N = 16 / (sizeof(InT) < sizeof(OutT) ? sizeof(InT) : sizeof(OutT));
      const bool vec = num_experts % N == 0 && is_aligned(input, N * sizeof(InT)) &&
                       is_aligned(bias, N * sizeof(float)) &&
                       is_aligned(scores, N * sizeof(OutT)) &&
                       is_aligned(scores_with_bias, N * sizeof(OutT));
      if (vec)
        return launch_n<InT, OutT, N>(input, bias, scores, scores_with_bias, num_tokens,
                                      num_experts, stream);
      return launch_n<InT, OutT, 1>(input, bias, scores, scores_with_bias, num_tokens,
                                    num_experts, stream);
    });
  });
}

}  // namespace fdops::moe_routing
