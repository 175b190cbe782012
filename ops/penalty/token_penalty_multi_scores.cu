// launch_token_penalty_multi_scores: the sliced or the fused form by batch size (see
// token_penalty_multi_scores.cuh and multi_scores_plan.h).
#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/common/workspace.h"
#include "ops/penalty/penalty.h"
#include "ops/penalty/token_penalty_multi_scores.cuh"

namespace fdops::penalty {
// Named, not anonymous: nvcc mangles anonymous namespaces with a per-compilation hash.
namespace token_penalty_multi_scores_impl {

// The current device's multiprocessor count and shared memory per multiprocessor (the kernels'
// opt-in limits are filled in per kernel), cached per device.
cudaError_t multiprocessor_limits(DeviceLimits* limits) {
  const int shared_per_sm = shared_memory_per_multiprocessor();
  *limits = DeviceLimits{multiprocessor_count(), shared_per_sm, 0, 0};
  return shared_per_sm > 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

// Plans the launch (multi_scores_plan.h) with this device's limits, takes the fused form's
// workspace, if any, from the stream-ordered pool and runs it.
template <typename T, int N>
cudaError_t launch_for_width(MultiScoresParams p, int64_t bs, const DeviceLimits& limits,
                             cudaStream_t stream) {
  constexpr auto fused_kernel = multi_scores_fused_kernel<T, N>;
  constexpr auto sliced_kernel = multi_scores_sliced_kernel<T, N>;
  DeviceLimits device = limits;
  device.sliced_optin = static_cast<int64_t>(max_dynamic_shared_bytes<sliced_kernel>());
  device.fused_optin = static_cast<int64_t>(max_dynamic_shared_bytes<fused_kernel>());
  const MultiScoresPlan plan = plan_multi_scores(bs, p.vocab, p.max_model_len, device);
  if (plan.blocks > INT32_MAX) return cudaErrorInvalidValue;
  const auto blocks = static_cast<unsigned>(plan.blocks);
  const auto shared_bytes = static_cast<size_t>(plan.shared_bytes);
  if (!plan.fused) {
    p.slice = plan.slice;
    p.slices = static_cast<int>(plan.slices);
    return launch_kernel(sliced_kernel, blocks, kSlicedThreads, shared_bytes, stream, p);
  }
  p.table_slots = plan.table_slots;
  WorkspaceAllocation workspace;
  if (plan.counts_per_row > 0) {
    const cudaError_t err = workspace.allocate(
        static_cast<size_t>(bs * plan.counts_per_row) * sizeof(int32_t), stream);
    if (err != cudaSuccess) return err;
    p.counts = static_cast<int32_t*>(workspace.data());
  }
  const cudaError_t err =
      launch_kernel(fused_kernel, blocks, kFusedThreads, shared_bytes, stream, p);
  const cudaError_t freed = workspace.release(stream);
  return err != cudaSuccess ? err : freed;
}

}  // namespace token_penalty_multi_scores_impl

using namespace token_penalty_multi_scores_impl;

cudaError_t launch_token_penalty_multi_scores(
    const int64_t* token_ids_all, void* logits, DType logits_dtype, const float* penalty_scores,
    const float* frequency_scores, const float* presence_scores, const float* temperatures,
    const int64_t* bad_tokens, const int64_t* bad_tokens_lens, const int64_t* prompt_lens,
    const int64_t* cur_dec_lens, const int64_t* min_dec_lens, const int64_t* eos_token_id,
    int64_t bs, int64_t vocab_size, int64_t max_model_len, int64_t max_bad_tokens,
    int64_t num_eos, cudaStream_t stream) {
  if (bs < 0 || bs > INT32_MAX || vocab_size < 1 || vocab_size > INT32_MAX ||
      max_model_len < 0 || max_model_len > kMaxModelLen || max_bad_tokens < 0 || num_eos < 0)
    return cudaErrorInvalidValue;
  if (bs == 0) return cudaSuccess;
  DeviceLimits limits{};
  cudaError_t status = multiprocessor_limits(&limits);
  if (status != cudaSuccess) return status;

  MultiScoresParams p{};
  p.token_ids_all = token_ids_all;
  p.logits = logits;
  p.penalty = penalty_scores;
  p.frequency = frequency_scores;
  p.presence = presence_scores;
  p.temperature = temperatures;
  p.bad_tokens = bad_tokens;
  p.bad_tokens_lens = bad_tokens_lens;
  p.prompt_lens = prompt_lens;
  p.cur_dec_lens = cur_dec_lens;
  p.min_dec_lens = min_dec_lens;
  p.eos_token_id = eos_token_id;
  p.vocab = vocab_size;
  p.words = bitmap_words(vocab_size);
  p.max_model_len = max_model_len;
  p.max_bad_tokens = max_bad_tokens;
  p.num_eos = num_eos;

  return dispatch_float_dtype(logits_dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    // 16-byte accesses when every row starts on a 16-byte boundary.
    constexpr int N = 16 / sizeof(T);
    if (vocab_size % N == 0 && is_aligned(logits, 16))
      return launch_for_width<T, N>(p, bs, limits, stream);
    return launch_for_width<T, 1>(p, bs, limits, stream);
  });
}

}  // namespace fdops::penalty
