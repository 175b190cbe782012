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

// Calls f(id) for ids[j], j in [begin, end), strided over the block. U loads are issued before
// any f runs, so a thread keeps U loads in flight; f must not assume anything about the order.
template <int U, typename F>
__device__ __forceinline__ void for_each_id(const int64_t* __restrict__ ids, int64_t begin,
                                            int64_t end, F&& f) {
  const int64_t step = blockDim.x;
  for (int64_t base = begin + threadIdx.x; base < end; base += U * step) {
    int64_t id[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = base + u * step;
      id[u] = j < end ? __ldg(ids + j) : -1;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) f(id[u]);
  }
}

// Like for_each_id, but hands f all U ids of a batch at once (-1 for positions past the end),
// so f can overlap the U dependent accesses it makes per id.
template <int U, typename F>
__device__ __forceinline__ void for_each_id_batch(const int64_t* __restrict__ ids, int64_t begin,
                                                  int64_t end, F&& f) {
  const int64_t step = blockDim.x;
  for (int64_t base = begin + threadIdx.x; base < end; base += U * step) {
    int64_t id[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = base + u * step;
      id[u] = j < end ? __ldg(ids + j) : -1;
    }
    f(id);
  }
}

}  // namespace fdops::penalty
