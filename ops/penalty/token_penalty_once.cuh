// Device code of get_token_penalty_once. The caller has already copied logits to out; one block
// per row then finds the first negative id of pre_ids[b] and, for every id before it that is in
// [0, V), writes out[b, id] = penalty(logits[b, id]). The value is computed from the unmodified
// input, so an id repeated in the row is penalised once: its writes all store the same value.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/penalty/penalty.cuh"

namespace fdops::penalty {

inline constexpr int kOnceThreads = 512;

template <typename T, typename PenaltyT>
__global__ void __launch_bounds__(kOnceThreads)
    penalty_once_kernel(const int64_t* __restrict__ pre_ids, const T* __restrict__ logits,
                        T* __restrict__ out, const PenaltyT* __restrict__ penalty_scores,
                        int64_t vocab, int64_t num_ids) {
  __shared__ unsigned long long first_negative;
  const int64_t b = blockIdx.x;
  const int64_t* ids = pre_ids + b * num_ids;
  if (threadIdx.x == 0) first_negative = static_cast<unsigned long long>(num_ids);
  __syncthreads();
  // The first negative id of each thread's positions; the block minimum is the row's.
  for (int64_t j = threadIdx.x; j < num_ids; j += blockDim.x) {
    if (__ldg(ids + j) < 0) {
      atomicMin(&first_negative, static_cast<unsigned long long>(j));
      break;
    }
  }
  __syncthreads();
  const int64_t end = static_cast<int64_t>(first_negative);
  const float alpha = to_float(penalty_scores[b]);
  const T* in_row = logits + b * vocab;
  T* out_row = out + b * vocab;
  for_each_id_batch<4>(ids, 0, end, [&](int64_t, const int64_t(&id)[4]) {
    float l[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) l[u] = id[u] >= 0 && id[u] < vocab ? to_float(in_row[id[u]]) : 0.f;
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      if (id[u] >= 0 && id[u] < vocab)
        out_row[id[u]] = from_float<T>(repetition_penalty(l[u], alpha));
    }
  });
}

}  // namespace fdops::penalty
