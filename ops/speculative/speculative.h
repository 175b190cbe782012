// Launch functions of the speculative family (draft-token verification and the bookkeeping
// after it). The binding (speculative_binding.cc) validates dtypes, shapes, devices and scalar
// ranges first; indices read from the tensors themselves (lengths, offsets, accept counts) are
// checked by the kernels, which never access memory outside the tensors described here.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/kernel_table.h"

namespace fdops::speculative {

// Largest batch (rows of the per-row tensors) either op accepts; upstream runs one 512-thread
// block.
inline constexpr int kMaxBatch = 512;

// How a draft token at position i is checked (upstream chooses this with environment variables).
enum class VerifyMode : int {
  kCandidates = 0,      // in verify_tokens[start+i, :L], else the top-2 window rule (default)
  kTop1 = 1,            // equal to verify_tokens[start+i, 0] (SPECULATE_VERIFY_USE_TOPK=1)
  kTargetSampling = 2,  // equal to sampled_token_ids[start+i]
                        // (SPECULATE_VERIFY_USE_TARGET_SAMPLING=1)
};

// Per-row vectors have `batch` elements; bool tensors are one byte per element (nonzero = true).
struct VerifyParams {
  const int64_t* sampled_token_ids;  // [total_tokens]
  int64_t* accept_tokens;            // [batch, max_draft_tokens], in place
  int32_t* accept_num;               // [batch], in place
  int64_t* step_idx;                 // [batch], in place
  uint8_t* stop_flags;               // [batch] bool, in place
  const int32_t* seq_lens_encoder;   // [batch]
  const int64_t* draft_tokens;       // [batch, max_draft_tokens]
  const int32_t* seq_lens_this_time;   // [real_batch]
  const int64_t* verify_tokens;        // [total_tokens, max_candidate_len]
  const float* verify_scores;          // [total_tokens, max_candidate_len]
  const int64_t* max_dec_len;          // [batch]
  const int64_t* end_tokens;           // [end_length], end_length >= 1
  const uint8_t* is_block_step;        // [batch] bool
  const int32_t* output_cum_offsets;   // [batch]
  const int32_t* actual_candidate_len;  // [total_tokens]
  const float* topp;                    // [batch]
  int real_batch;                       // rows processed: 0 <= real_batch <= batch <= kMaxBatch
  int max_draft_tokens;                 // D >= 1
  int end_length;
  int max_candidate_len;  // C >= 1
  int64_t total_tokens;
  int64_t max_seq_len;    // >= 1
  int verify_window;      // >= 0
  VerifyMode mode;
  bool enable_topp;
  bool benchmark_mode;
  bool accept_all_drafts;
  bool prefill_one_step_stop;
  uint64_t seed;  // of the top-p draws
};

cudaError_t launch_speculate_verify(const VerifyParams& p, cudaStream_t stream);

struct UpdateParams {
  int32_t* seq_lens_encoder;         // [batch], in place
  int32_t* seq_lens_decoder;         // [batch], in place
  uint8_t* not_need_stop;            // [1] bool on the device, in place
  int64_t* draft_tokens;             // [batch, max_draft_tokens], in place
  int32_t* actual_draft_token_nums;  // [batch], in place
  const int64_t* accept_tokens;      // [batch, max_draft_tokens]
  const int32_t* accept_num;         // [batch]
  const uint8_t* stop_flags;         // [batch] bool
  const int32_t* seq_lens_this_time;  // [real_batch]
  const uint8_t* is_block_step;       // [batch] bool
  const int64_t* stop_nums;           // [1]
  int real_batch;                     // 0 <= real_batch <= batch
  int batch;                          // 1 <= batch <= kMaxBatch
  int max_draft_tokens;               // D >= 1
};

cudaError_t launch_speculate_update(const UpdateParams& p, cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_SPECULATIVE_KERNELS(X)           \
  X(speculate_verify, launch_speculate_verify) \
  X(speculate_update, launch_speculate_update)
FDOPS_KERNEL_TABLE(FDOPS_SPECULATIVE_KERNELS)

}  // namespace fdops::speculative
