// speculate_verify device code: one thread per batch row walks the row's draft tokens in order
// (the acceptance of position i depends on every earlier position, so a row is sequential).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/speculative/speculative.h"

namespace fdops::speculative {

inline constexpr int kVerifyThreads = 128;

// A uniform draw in (0, 1] from a counter-based hash of (seed, row): splitmix64's finaliser over
// seed + (row + 1) * golden ratio, top 24 bits. Exact in fp32, so the numpy reference
// (fastdeploy_ops.reference.speculative.uniform) reproduces every draw bit for bit.
__device__ __forceinline__ float uniform_draw(uint64_t seed, int row) {
  uint64_t z = seed + (static_cast<uint64_t>(row) + 1ull) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>((z >> 40) + 1ull) * 0x1p-24f;
}

__device__ __forceinline__ bool holds(const int64_t* tokens, int count, int64_t token) {
  for (int k = 0; k < count; ++k) {
    if (tokens[k] == token) return true;
  }
  return false;
}

// Top-p draw over one position's candidates: target = min(sum of the first len scores, topp),
// r = u * target, the first candidate whose running score sum reaches r, else candidate 0.
// Sums run left to right in fp32 (the reference does the same).
__device__ __forceinline__ int64_t topp_draw(const int64_t* ids, const float* scores, int len,
                                             float topp, float u) {
  float total = 0.f;
  for (int k = 0; k < len; ++k) total += scores[k];
  const float target = total < topp ? total : topp;
  const float r = u * target;
  float running = 0.f;
  for (int k = 0; k < len; ++k) {
    running += scores[k];
    if (r <= running) return ids[k];
  }
  return ids[0];
}

// The bookkeeping of one row while tokens are accepted.
struct VerifyRow {
  int64_t* accept;  // the row of accept_tokens
  const int64_t* end_tokens;
  int end_length;
  int64_t max_dec_len;
  int64_t step;
  int accepted;
  bool stopped;

  __device__ __forceinline__ bool ends(int64_t token) const {
    return holds(end_tokens, end_length, token);
  }

  // Accepts a draft token at position i: step + 1, write it; a stop token or the length limit
  // stops the row (the limit writes end_tokens[0] instead), otherwise one more is accepted.
  // Returns whether the row stopped.
  __device__ __forceinline__ bool accept_draft(int i, int64_t token) {
    ++step;
    const bool at_limit = step >= max_dec_len;
    accept[i] = at_limit ? end_tokens[0] : token;
    if (at_limit || ends(token)) {
      stopped = true;
      return true;
    }
    ++accepted;
    return false;
  }
};

__global__ void __launch_bounds__(kVerifyThreads) speculate_verify_kernel(const VerifyParams p) {
  const int b = static_cast<int>(blockIdx.x) * kVerifyThreads + static_cast<int>(threadIdx.x);
  if (b >= p.real_batch || p.is_block_step[b] || p.stop_flags[b]) return;  // rows left as they are

  // Bounds of the indices read from tensors: the row's packed tokens are
  // [start, start + seq_lens_this_time); a row uses at most `room` of them, enough for every
  // position that has a draft token and an accept_tokens slot and lies inside the packed
  // tensors. Inside these bounds this is upstream's walk; where upstream would leave them it
  // stops at the edge instead. A start outside the packed tensors leaves the row untouched.
  const int64_t start = static_cast<int64_t>(b) * p.max_seq_len - p.output_cum_offsets[b];
  if (start < 0 || start >= p.total_tokens) return;
  const int64_t room = min(static_cast<int64_t>(p.max_draft_tokens), p.total_tokens - start);
  const int this_time =
      static_cast<int>(min(static_cast<int64_t>(p.seq_lens_this_time[b]), room));

  const int64_t C = p.max_candidate_len;
  const int64_t* draft = p.draft_tokens + static_cast<int64_t>(b) * p.max_draft_tokens;
  const int64_t* verify = p.verify_tokens + start * C;
  const int64_t* sampled = p.sampled_token_ids + start;
  const int32_t* candidates = p.actual_candidate_len + start;
  const bool encoding = p.seq_lens_encoder[b] != 0;

  VerifyRow row{p.accept_tokens + static_cast<int64_t>(b) * p.max_draft_tokens,
                p.end_tokens,
                p.end_length,
                p.max_dec_len[b],
                p.step_idx[b],
                1,
                false};

  int i = 0;
  for (; i < this_time - 1; ++i) {
    if (p.benchmark_mode || encoding) break;
    const int64_t d = draft[i + 1];
    if (p.accept_all_drafts) {
      if (row.accept_draft(i, d)) break;
      continue;
    }
    if (p.mode == VerifyMode::kTargetSampling) {
      if (sampled[i] != d || row.accept_draft(i, d)) break;
      continue;
    }
    if (p.mode == VerifyMode::kTop1) {
      if (verify[i * C] != d || row.accept_draft(i, d)) break;
      continue;
    }
    const int len = static_cast<int>(min(static_cast<int64_t>(candidates[i]), C));
    if (holds(verify + i * C, len, d)) {
      if (row.accept_draft(i, d)) break;
      continue;
    }
    // Top-2 window rule, ported literally: d is the second candidate and the next
    // verify_window drafts are all top-1 -> accept verify_window + 1 drafts at once. The
    // counters take the whole window up front; a stop inside it takes one back from each,
    // wherever in the window it happened.
    if (C >= 2 && verify[i * C + 1] == d) {
      int j = 0;
      int ii = i + 1;
      for (; j < p.verify_window && ii < this_time - 1; ++j, ++ii) {
        if (verify[ii * C] != draft[ii + 1]) break;
      }
      if (j >= p.verify_window) {
        row.accepted += p.verify_window + 1;
        row.step += p.verify_window + 1;
        for (; i < ii; ++i) {
          const int64_t token = draft[i + 1];
          const bool at_limit = row.step >= row.max_dec_len;
          row.accept[i] = at_limit ? p.end_tokens[0] : token;
          if (at_limit || row.ends(token)) {
            row.stopped = true;
            --row.accepted;
            --row.step;
            break;
          }
        }
      }
    }
    break;
  }

  bool stop = row.stopped;
  if (!stop) {
    // The token of the first rejected position (or of the last one): the target's own.
    ++row.step;
    int64_t token;
    if (p.mode == VerifyMode::kTargetSampling) {
      token = sampled[i];
    } else if (p.enable_topp) {
      const int len = static_cast<int>(min(static_cast<int64_t>(candidates[i]), C));
      token = topp_draw(verify + i * C, p.verify_scores + (start + i) * C, len, p.topp[b],
                        uniform_draw(p.seed, b));
    } else {
      token = verify[i * C];
    }
    const bool at_limit = row.step >= row.max_dec_len;
    row.accept[i] = at_limit ? p.end_tokens[0] : token;
    stop = p.prefill_one_step_stop || at_limit || row.ends(token);
  }
  if (stop) p.stop_flags[b] = 1;
  p.step_idx[b] = row.step;
  p.accept_num[b] = row.accepted;
}

}  // namespace fdops::speculative
