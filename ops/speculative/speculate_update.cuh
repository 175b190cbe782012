// speculate_update device code: one block, one thread per batch row, and a block-wide count of
// the stopped rows.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/speculative/speculative.h"

namespace fdops::speculative {

// int32 addition that wraps like the upstream kernel's in practice, without signed overflow.
__device__ __forceinline__ int32_t wrapping_add(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

// Next draft length: one that accepted every draft (accept_num - 1 == n) grows by 2, else by
// 1, capped at D - 1; otherwise it shrinks by 1, to no less than 1. int64, so no input overflows.
__device__ __forceinline__ int32_t next_draft_count(int32_t accepted, int32_t drafts,
                                                    int max_draft_tokens) {
  const int64_t n = drafts;
  const int64_t cap = static_cast<int64_t>(max_draft_tokens) - 1;
  if (static_cast<int64_t>(accepted) - 1 == n) {
    if (n + 2 <= cap) return static_cast<int32_t>(n + 2);
    if (n + 1 <= cap) return static_cast<int32_t>(n + 1);
    return static_cast<int32_t>(cap);
  }
  return static_cast<int32_t>(n - 1 >= 1 ? n - 1 : 1);
}

// blockDim.x is a multiple of 32 covering p.batch; every thread reaches the barrier.
__global__ void __launch_bounds__(kMaxBatch) speculate_update_kernel(const UpdateParams p) {
  const int b = static_cast<int>(threadIdx.x);
  int stopped = 0;
  if (b < p.real_batch) {
    if (!p.is_block_step[b]) {
      stopped = p.stop_flags[b] != 0;
      const int32_t accepted = p.accept_num[b];
      const int32_t encoder = p.seq_lens_encoder[b];
      int32_t decoder = p.seq_lens_decoder[b];
      if (encoder == 0) {
        decoder = wrapping_add(decoder, accepted);
        if (p.seq_lens_this_time[b] > 1) {
          p.actual_draft_token_nums[b] =
              next_draft_count(accepted, p.actual_draft_token_nums[b], p.max_draft_tokens);
        }
      } else {
        decoder = wrapping_add(decoder, encoder);
        p.seq_lens_encoder[b] = 0;
      }
      p.seq_lens_decoder[b] = decoder;
      // The next draft starts from the last accepted token. accept_num is read from a tensor:
      // outside [1, D] there is no such token in the row, and the write is skipped.
      if (accepted >= 1 && accepted <= p.max_draft_tokens) {
        const int64_t row = static_cast<int64_t>(b) * p.max_draft_tokens;
        p.draft_tokens[row] = p.accept_tokens[row + accepted - 1];
      }
    }
  } else if (b < p.batch) {
    stopped = 1;  // padding rows count as stopped; block-step rows do not
  }
  const int total = __syncthreads_count(stopped);
  if (threadIdx.x == 0) *p.not_need_stop = static_cast<int64_t>(total) < *p.stop_nums ? 1 : 0;
}

}  // namespace fdops::speculative
