// launch_top_k_renorm_probs: radix-select top-k renormalisation, one block per row (renorm.cuh).
#include <cstdint>

#include "ops/common/vec.cuh"
#include "ops/sampling/renorm.cuh"
#include "ops/sampling/sampling.h"

namespace fdops::sampling {

cudaError_t launch_top_k_renorm_probs(const float* probs, TopK top_k, float* renorm, int64_t rows,
                                      int vocab, cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || vocab < 1 || vocab > kMaxVocab)
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(rows));
  if (vocab % 4 == 0 && is_aligned(probs, 16) && is_aligned(renorm, 16)) {
    renorm_probs_kernel<kThreads, 4, kUnrollVec, false>
        <<<grid, kThreads, 0, stream>>>(probs, top_k, TopP{}, renorm, vocab);
  } else {
    renorm_probs_kernel<kThreads, 1, kUnrollScalar, false>
        <<<grid, kThreads, 0, stream>>>(probs, top_k, TopP{}, renorm, vocab);
  }
  return cudaGetLastError();
}

}  // namespace fdops::sampling
