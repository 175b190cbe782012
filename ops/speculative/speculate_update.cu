// launch_speculate_update: a single block of ceil(batch / 32) warps.
#include "ops/speculative/speculate_update.cuh"
#include "ops/speculative/speculative.h"

namespace fdops::speculative {

cudaError_t launch_speculate_update(const UpdateParams& p, cudaStream_t stream) {
  if (p.batch < 1 || p.batch > kMaxBatch || p.real_batch < 0 || p.real_batch > p.batch ||
      p.max_draft_tokens < 1) {
    return cudaErrorInvalidValue;
  }
  const unsigned threads = static_cast<unsigned>((p.batch + 31) / 32 * 32);
  speculate_update_kernel<<<1, threads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace fdops::speculative
