// launch_token_penalty_once: a device-to-device copy of the logits, then a sparse kernel that
// penalises the ids of each row (see token_penalty_once.cuh).
#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/penalty/penalty.h"
#include "ops/penalty/token_penalty_once.cuh"

namespace fdops::penalty {

cudaError_t launch_token_penalty_once(const int64_t* pre_ids, const void* logits, void* out,
                                      DType logits_dtype, const void* penalty_scores,
                                      DType penalty_dtype, int64_t bs, int64_t vocab_size,
                                      int64_t num_ids, cudaStream_t stream) {
  if (bs < 0 || bs > INT32_MAX || vocab_size < 1 || num_ids < 0) return cudaErrorInvalidValue;
  if (bs == 0) return cudaSuccess;
  if (penalty_dtype != DType::kFloat32 && penalty_dtype != logits_dtype)
    return cudaErrorInvalidValue;
  return dispatch_float_dtype(logits_dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    cudaError_t err = cudaMemcpyAsync(out, logits, static_cast<size_t>(bs * vocab_size) * sizeof(T),
                                      cudaMemcpyDeviceToDevice, stream);
    if (err != cudaSuccess || num_ids == 0) return err;
    if (penalty_dtype == DType::kFloat32) {
      penalty_once_kernel<T, float><<<static_cast<unsigned>(bs), kOnceThreads, 0, stream>>>(
          pre_ids, static_cast<const T*>(logits), static_cast<T*>(out),
          static_cast<const float*>(penalty_scores), vocab_size, num_ids);
    } else {
      penalty_once_kernel<T, T><<<static_cast<unsigned>(bs), kOnceThreads, 0, stream>>>(
          pre_ids, static_cast<const T*>(logits), static_cast<T*>(out),
          static_cast<const T*>(penalty_scores), vocab_size, num_ids);
    }
    return cudaGetLastError();
  });
}

}  // namespace fdops::penalty
