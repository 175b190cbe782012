// launch_speculate_verify: one thread per processed row, 128 rows per block.
#include "ops/speculative/speculate_verify.cuh"
#include "ops/speculative/speculative.h"

namespace fdops::speculative {

cudaError_t launch_speculate_verify(const VerifyParams& p, cudaStream_t stream) {
  if (p.real_batch < 0 || p.real_batch > kMaxBatch || p.max_draft_tokens < 1 ||
      p.max_candidate_len < 1 || p.end_length < 1 || p.total_tokens < 0 || p.max_seq_len < 1 ||
      p.verify_window < 0) {
    return cudaErrorInvalidValue;
  }
  if (p.real_batch == 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>((p.real_batch + kVerifyThreads - 1) / kVerifyThreads);
  speculate_verify_kernel<<<blocks, kVerifyThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace fdops::speculative
