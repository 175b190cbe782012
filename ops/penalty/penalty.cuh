// Device code shared by the penalty kernels: the penalty formulas (fp32, every operation
// rounded on its own, so results are reproducible bit for bit and match the numpy reference)
// and a block-strided walk over a row of token ids with several loads in flight per thread.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "ops/common/dispatch.cuh"

namespace fdops::penalty {

// Value written for banned tokens (bad words). EOS tokens below the minimum length get
// kBanValue too, except in fp16, where FastDeploy writes -1e4 (so that a later division by a
// temperature above 1e-4 stays finite).
inline constexpr float kBanValue = -1e10f;
inline constexpr float kEosBanValueFp16 = -1e4f;

template <typename T>
__device__ __forceinline__ float eos_ban_value() {
  return std::is_same_v<T, __half> ? kEosBanValueFp16 : kBanValue;
}

// Repetition penalty: negative logits are multiplied by alpha, the others divided by it.
__device__ __forceinline__ float repetition_penalty(float logit, float alpha) {
  return logit < 0.f ? __fmul_rn(logit, alpha) : __fdiv_rn(logit, alpha);
}

// True when the row has no repetition, frequency or presence penalty.
__device__ __forceinline__ bool penalties_off(float alpha, float beta, float gamma) {
  return alpha == 1.f && beta == 0.f && gamma == 0.f;
}

// Walks ids[begin, end) strided over the block, U ids per thread and step: calls
// f(first, id) with id[u] = ids[first + u * blockDim.x], or -1 past the end. The U loads are
// issued before f runs, so f can overlap the dependent accesses it makes per id; f must not
// assume anything about the order of calls.
template <int U, typename F>
__device__ __forceinline__ void for_each_id_batch(const int64_t* __restrict__ ids, int64_t begin,
                                                  int64_t end, F&& f) {
  const int64_t step = blockDim.x;
  for (int64_t first = begin + threadIdx.x; first < end; first += U * step) {
    int64_t id[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = first + u * step;
      id[u] = j < end ? __ldg(ids + j) : -1;
    }
    f(first, id);
  }
}

// for_each_id_batch one id at a time: f(j, id), id == -1 for positions past the end.
template <int U, typename F>
__device__ __forceinline__ void for_each_position(const int64_t* __restrict__ ids, int64_t begin,
                                                  int64_t end, F&& f) {
  for_each_id_batch<U>(ids, begin, end, [&](int64_t first, const int64_t(&id)[U]) {
#pragma unroll
    for (int u = 0; u < U; ++u) f(first + u * static_cast<int64_t>(blockDim.x), id[u]);
  });
}

// for_each_position without the position: f(id).
template <int U, typename F>
__device__ __forceinline__ void for_each_id(const int64_t* __restrict__ ids, int64_t begin,
                                            int64_t end, F&& f) {
  for_each_position<U>(ids, begin, end, [&](int64_t, int64_t id) { f(id); });
}

}  // namespace fdops::penalty
