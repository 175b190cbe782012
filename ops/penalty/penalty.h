// Launch functions of the penalty family. Arguments are validated by the binding
// (penalty_binding.cc) before these are called: pointers are device pointers of contiguous
// row-major tensors with the documented shapes, and bs > 0. Values read from tensors (token ids,
// lengths) are not trusted: the kernels bounds-check them on the device.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/dtype.h"
#include "ops/common/kernel_table.h"
#include "ops/penalty/multi_scores_plan.h"

namespace fdops::penalty {

// Generated-token counts share an int32 with the "seen in the prompt" flag (bit 30), so rows of
// token_ids_all must be shorter than 2^30.
inline constexpr int64_t kMaxModelLen = (int64_t{1} << 30) - 1;

// In place on logits [bs, V] (fp32/fp16/bf16): min-length EOS ban, repetition / frequency /
// presence penalties over token_ids_all [bs, L] (prompt, then generated tokens), temperature,
// bad-token ban. penalty/frequency/presence/temperature: fp32 [bs]; bad_tokens [bs, N] with
// bad_tokens_lens [bs]; prompt_lens, cur_dec_lens, min_dec_lens [bs]; eos_token_id [num_eos];
// all integers int64. The scratch memory the plan needs (multi_scores_plan.h) comes from the
// stream-ordered workspace pool (ops/common/workspace.h).
cudaError_t launch_token_penalty_multi_scores(
    const int64_t* token_ids_all, void* logits, DType logits_dtype, const float* penalty_scores,
    const float* frequency_scores, const float* presence_scores, const float* temperatures,
    const int64_t* bad_tokens, const int64_t* bad_tokens_lens, const int64_t* prompt_lens,
    const int64_t* cur_dec_lens, const int64_t* min_dec_lens, const int64_t* eos_token_id,
    int64_t bs, int64_t vocab_size, int64_t max_model_len, int64_t max_bad_tokens,
    int64_t num_eos, cudaStream_t stream);

// out [bs, V] = logits [bs, V] (fp32/fp16/bf16), except that every distinct id of
// pre_ids[b, :first negative] (int64 [bs, L]) in [0, V) gets the repetition penalty once.
// penalty_scores [bs] is fp32 or of the logits' dtype (penalty_dtype). out must not overlap
// logits.
cudaError_t launch_token_penalty_once(const int64_t* pre_ids, const void* logits, void* out,
                                      DType logits_dtype, const void* penalty_scores,
                                      DType penalty_dtype, int64_t bs, int64_t vocab_size,
                                      int64_t num_ids, cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_PENALTY_KERNELS(X)                                   \
  X(token_penalty_multi_scores, launch_token_penalty_multi_scores) \
  X(token_penalty_once, launch_token_penalty_once)
FDOPS_KERNEL_TABLE(FDOPS_PENALTY_KERNELS)

}  // namespace fdops::penalty
