// launch_top_p_renorm_probs: radix-select top-p renormalisation, one block per row (renorm.cuh).
#include <cstdint>

#include "ops/common/vec.cuh"
#include "ops/sampling/renorm.cuh"
#include "ops/sampling/sampling.h"

namespace fdops::sampling {

cudaError_t launch_top_p_renorm_probs(const float* probs, TopP top_p, float* renorm, int64_t rows,
                                      int vocab, cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || vocab < 1 || vocab > kMaxVocab)
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(rows));
  if (vocab % 4 == 0 && is_aligned(probs, 16) && is_aligned(renorm, 16)) {
    renorm_probs_kernel<kThreads, 4, kUnrollVec, true>
        <<<grid, kThreads, 0, stream>>>(probs, TopK{}, top_p, renorm, vocab);
  } else {
    renorm_probs_kernel<kThreads, 1, kUnrollScalar, true>
        <<<grid, kThreads, 0, stream>>>(probs, TopK{}, top_p, renorm, vocab);
  }
  return cudaGetLastError();
}

}  // namespace fdops::sampling
