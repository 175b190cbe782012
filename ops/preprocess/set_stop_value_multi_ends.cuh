// Device code of set_stop_value_multi_ends (ops/preprocess/README.md; 13-input form).
//
// One warp per row: the lanes split the end ids, the stop tokens and the stop sequences of the
// row and vote (__any_sync); lane 0 writes the row. Every decision before a vote depends on the
// row only, so whole warps take the same branches.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/warp.cuh"
#include "ops/preprocess/preprocess.h"

namespace fdops::preprocess {
namespace stop_impl {

inline constexpr int kWarpsPerBlock = 4;

// Stop sequence s of row b ends the history pre_ids[b, :step]: its last len tokens (len clamped
// to the row of stop_seqs) equal pre_ids[b, step - len : step]. A history index outside
// [0, pre_ids_len) fails the match.
__device__ __forceinline__ bool stop_sequence_matches(const StopValueArgs& p, int64_t b,
                                                      int64_t s, int64_t step) {
  int64_t len = p.stop_seqs_len[b * p.num_stop_seqs + s];
  if (len > p.stop_seq_max_len) len = p.stop_seq_max_len;
  if (len <= 0) return false;  // unused slot (or Mx = 0): never matches
  const int64_t* seq = p.stop_seqs + (b * p.num_stop_seqs + s) * p.stop_seq_max_len;
  const int64_t* history = p.pre_ids + b * p.pre_ids_len;
  for (int64_t j = 0; j < len; ++j) {
    const int64_t idx = step - 1 - j;
    if (idx < 0 || idx >= p.pre_ids_len || history[idx] != seq[len - 1 - j]) return false;
  }
  return true;
}

__global__ void __launch_bounds__(kWarpsPerBlock * 32) set_stop_value_multi_ends_kernel(
    const StopValueArgs p) {
  const int lane = threadIdx.x & 31;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (b >= p.batch) return;  // the whole warp
  const int64_t end0 = p.end_ids[0];
  const int64_t token = p.topk_ids[b];

  if (p.prefill_one_step_stop) {  // every row stops after its first step
    if (lane == 0) {
      const int64_t t = p.seq_lens[b] == 0 ? -1 : token;
      p.stop_flags[b] = 1;
      p.topk_ids[b] = t;
      p.next_tokens[b] = t;
    }
    return;
  }
  if (p.stop_flags[b] != 0) {  // stopped before this step
    if (lane == 0) {
      if (p.seq_lens[b] == 0) {
        p.topk_ids[b] = -1;
      } else {
        p.topk_ids[b] = end0;
        p.next_tokens[b] = end0;
      }
    }
    return;
  }

  const int64_t step = p.step_idx[b];
  bool stop;
  if (step >= p.max_tokens[b]) {
    stop = true;
  } else if (step < p.min_tokens[b]) {
    stop = false;  // below the minimum length nothing stops the row
  } else {
    bool hit = false;
    if (!p.beam_search) {
      for (int64_t j = lane; j < p.num_end_ids; j += 32) hit = hit || p.end_ids[j] == token;
    }
    stop = __any_sync(kFullMask, hit);
    if (!stop) {
      int64_t count = p.stop_token_ids_len[b];
      count = count < 0 ? 0 : (count > p.max_stop_tokens ? p.max_stop_tokens : count);
      const int64_t* stop_tokens = p.stop_token_ids + b * p.max_stop_tokens;
      for (int64_t j = lane; j < count; j += 32) hit = hit || stop_tokens[j] == token;
      stop = __any_sync(kFullMask, hit);
    }
    if (!stop) {
      for (int64_t s = lane; s < p.num_stop_seqs; s += 32)
        hit = hit || stop_sequence_matches(p, b, s, step);
      stop = __any_sync(kFullMask, hit);
    }
  }
  if (lane == 0) {
    if (stop) {
      p.stop_flags[b] = 1;
      p.topk_ids[b] = end0;
      p.next_tokens[b] = end0;
    } else {
      p.next_tokens[b] = token;
    }
  }
}

}  // namespace stop_impl
}  // namespace fdops::preprocess
