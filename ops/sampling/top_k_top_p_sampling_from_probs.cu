// launch_top_k_top_p_sampling_from_probs: dual-pivot rejection sampling, one block per row
// (rejection_sampling.cuh).
#include <cstdint>

#include "ops/common/vec.cuh"
#include "ops/sampling/rejection_sampling.cuh"
#include "ops/sampling/sampling.h"

namespace fdops::sampling {

cudaError_t launch_top_k_top_p_sampling_from_probs(const float* probs, TopK top_k, TopP top_p,
                                                   uint64_t seed, uint64_t offset,
                                                   int64_t* samples, int64_t rows, int vocab,
                                                   cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || vocab < 1 || vocab > kMaxVocab)
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const SamplingParams p{probs, top_k, top_p, seed, offset, samples, vocab};
  const dim3 grid(static_cast<unsigned>(rows));
  if (vocab % 4 == 0 && is_aligned(probs, 16)) {
    top_k_top_p_sampling_kernel<kThreads, 4, kUnrollVec><<<grid, kThreads, 0, stream>>>(p);
  } else {
    top_k_top_p_sampling_kernel<kThreads, 1, kUnrollScalar><<<grid, kThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace fdops::sampling
