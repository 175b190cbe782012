// What the two tiled prefill kernels share (paged_prefill_mma.cuh with mma.sync on every SM,
// paged_prefill_wgmma.cuh with Hopper's warpgroup MMA): the work list, the block's place in it,
// the device-side metadata checks, a thread's two rows (output rows, positions, softmax state
// and their output writes) and the causal mask.
//
// Rows are (token, query head) pairs of a sequence's chunk, packed token-major over the query
// heads sharing the KV head (row = token * group + head), so one K/V tile serves the whole
// group and any group size fills the MMA tiles. Row positions grow with the row index, so the
// causal mask is needed only on K/V tiles that reach past a warp's first position.
//
// Work list without host-side lengths: sequence b owns tiles first_tile(b) ..
// first_tile(b + 1) - 1 with first_tile(b) = floor(cu[b] * group / 128) + b, at least the
// ceil(q_len * group / 128) it needs (a spare one at most, which returns at once), so the grid
// is floor(T * group / 128) + batch tiles wide and a block finds its sequence by bisection.
// Blocks take tiles from the last one down: late rows have the longest contexts and start
// first. When the tiles alone leave the GPU half idle, contexts are also split into
// partitions (grid.z) whose partial results the decode's merge kernel combines.
//
// Metadata is re-checked cheaply on the device so that no bad input leads outside the output
// or the cache: cu_seqlens_q not rising from 0 to the row count turns the whole output NaN, a
// sequence length outside [q_len, capacity] its rows, a block id outside the cache the rows of
// the tile that reads it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/attention/paged_attention_common.cuh"
#include "ops/attention/paged_attention_mma.cuh"

namespace fdops::attention {

inline constexpr int kPrefillRows = 128;  // (token, head) rows per block

// The first tile of sequence b (see the top of this file).
__device__ __forceinline__ int64_t first_prefill_tile(const int32_t* cu_seqlens_q, int b,
                                                      int group) {
  return static_cast<int64_t>(__ldg(cu_seqlens_q + b)) * group / kPrefillRows + b;
}

// Tiles of a launch over `rows` query tokens of `batch` sequences: the grid's x.
inline int64_t prefill_tiles(int64_t rows, int64_t batch, int group) {
  return rows * group / kPrefillRows + batch;
}

// Whether cu_seqlens_q rises from 0 to rows (without it no sequence's rows are known). Every
// thread of the block calls it; kThreadsPerBlock: the block's size.
template <int kThreadsPerBlock>
__device__ __forceinline__ bool prefill_offsets_valid(const AttentionParams& p) {
  int bad = 0;
  for (int b = threadIdx.x; b <= p.batch; b += kThreadsPerBlock) {
    const int32_t cu = __ldg(p.cu_seqlens_q + b);
    bad |= b == 0 ? cu != 0 : cu < __ldg(p.cu_seqlens_q + b - 1);
    bad |= b == p.batch && cu != p.rows;
  }
  return !__syncthreads_or(bad);
}

// Every element of this block's share of the output becomes NaN: the blocks of grid.z == 0
// together cover [rows, num_heads, HD] (grid.x * kPrefillRows >= rows * group).
template <typename T, int HD, int kThreadsPerBlock>
__device__ void fill_output_nan(const AttentionParams& p) {
  if (blockIdx.z != 0) return;
  const int64_t total = p.rows * p.num_heads * HD;
  const int64_t share = static_cast<int64_t>(kPrefillRows) * HD;
  const int64_t begin = (static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x) * share;
  for (int64_t i = begin + threadIdx.x; i < begin + share && i < total; i += kThreadsPerBlock) {
    static_cast<T*>(p.out)[i] = from_float<T>(nan_value());
  }
}

// The block's work: rows row0 .. last_row of sequence `seq` (packed as above) against the
// positions [begin, end) of its context.
struct PrefillBlock {
  int seq;
  int group;
  int num_heads;
  int kv_head;
  int64_t first_token;  // the sequence's first row in the query
  int64_t row0;
  int64_t last_row;
  int64_t start;  // position of the chunk's first token
  int64_t begin;
  int64_t end;
  bool bad_length;  // the sequence's length is outside [q_len, capacity]: its rows are NaN

  // The output row (in [rows, num_heads]) and position of block row `row`.
  __device__ __forceinline__ int64_t output_row(int64_t row) const {
    return (first_token + row / group) * num_heads + static_cast<int64_t>(kv_head) * group +
           row % group;
  }
  __device__ __forceinline__ int64_t position(int64_t row) const { return start + row / group; }
};

// Finds this block's tile in the work list; false for a spare tile (nothing to do).
__device__ __forceinline__ bool locate_prefill_block(const AttentionParams& p,
                                                     const SplitPlan& plan, PrefillBlock* blk) {
  const PagedCache& cache = p.cache;
  const int group = p.num_heads / cache.kv_heads;
  const int64_t tile = gridDim.x - 1 - static_cast<int64_t>(blockIdx.x);
  int seq = 0, next = p.batch;  // first_prefill_tile(seq) <= tile < first_prefill_tile(next)
  while (next - seq > 1) {
    const int mid = (seq + next) / 2;
    if (first_prefill_tile(p.cu_seqlens_q, mid, group) <= tile) {
      seq = mid;
    } else {
      next = mid;
    }
  }
  blk->seq = seq;
  blk->group = group;
  blk->num_heads = p.num_heads;
  blk->kv_head = blockIdx.y;
  blk->first_token = __ldg(p.cu_seqlens_q + seq);
  const int64_t q_len = __ldg(p.cu_seqlens_q + seq + 1) - blk->first_token;
  const int64_t seq_rows = q_len * group;
  blk->row0 = (tile - first_prefill_tile(p.cu_seqlens_q, seq, group)) * kPrefillRows;
  if (blk->row0 >= seq_rows) return false;
  blk->last_row = min(seq_rows, blk->row0 + kPrefillRows) - 1;

  const int64_t seq_len = __ldg(p.seq_lens + seq);
  const int64_t capacity = static_cast<int64_t>(cache.max_blocks_per_seq) * cache.block_size;
  blk->bad_length = seq_len < q_len || seq_len > capacity;
  blk->start = seq_len - q_len;
  const int64_t max_position = blk->position(blk->last_row);
  // This partition's positions; the last one runs to the rows' end.
  blk->begin = static_cast<int64_t>(blockIdx.z) * plan.partition_tokens;
  const bool last_split = static_cast<int>(blockIdx.z) == plan.num_splits - 1;
  blk->end = last_split ? max_position + 1
                        : min(max_position + 1, blk->begin + int64_t{plan.partition_tokens});
  return true;
}

// Where a thread's accumulators keep head dim d of n-tile j, half k of its pair: mma.sync's
// prefill layout puts dims (2q + k) * kDimTiles + j in thread q of a quad; wgmma's
// accumulators are the MMA's own layout, dims 8j + 2q + k.
enum class OutputLayout { kMmaSync, kWgmma };

// A thread's two rows (c and c + 8 of its warp's 16) and their online-softmax state. Rows past
// the block's take the last row's position (finite scores) and are never written.
template <int HD>
struct PrefillRows {
  static constexpr int kDimTiles = HD / 8;
  int64_t out_row[2];
  int64_t position[2];
  bool valid[2];
  float row_max[2];
  float row_sum[2];  // this thread's columns only; summed over the quad at the end
  float out[kDimTiles][4];

  // first_row: the block row of the warp's first row; c: lane / 4.
  __device__ __forceinline__ void init(const PrefillBlock& blk, int64_t first_row, int c) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int64_t row = blk.row0 + first_row + c + 8 * r;
      valid[r] = row <= blk.last_row;
      const int64_t packed = valid[r] ? row : blk.last_row;
      out_row[r] = blk.output_row(packed);
      position[r] = blk.position(packed);
      row_max[r] = -INFINITY;
      row_sum[r] = 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) out[j][0] = out[j][1] = out[j][2] = out[j][3] = 0.0f;
  }

  // Scores s[t][e] of the tokens first + 8t + 2q + (e & 1) for row e / 2: scaled into the
  // log2 domain, and -inf past the row's position where the tile reaches past the warp's first
  // position (`diagonal`). Two loops, not one with a test per score: most tiles need no mask,
  // and they then pay for none (the test was a fifth of the softmax's instructions).
  template <int kN>
  __device__ __forceinline__ void scale_and_mask(float (&s)[kN][4], int64_t first, bool diagonal,
                                                 const float (&score_scale)[2], int q) const {
    if (!diagonal) {
#pragma unroll
      for (int t = 0; t < kN; ++t) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[t][e] *= score_scale[e / 2];
      }
      return;
    }
    // The last visible column of each row, relative to the tile (in [-1, 8 kN - 1]).
    int last[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      last[r] = static_cast<int>(max(int64_t{-1}, min(position[r] - first, int64_t{8 * kN - 1})));
    }
#pragma unroll
    for (int t = 0; t < kN; ++t) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool visible = 8 * t + 2 * q + (e & 1) <= last[e / 2];
        s[t][e] = visible ? s[t][e] * score_scale[e / 2] : -INFINITY;
      }
    }
  }

  // Writes the rows' results: the output (one partition) or the partition's normalised output
  // and log2-sum-exp (-inf for a row that saw no token); NaN where the metadata is bad.
  template <typename T, OutputLayout kLayout>
  __device__ __forceinline__ void write(const AttentionParams& p, const SplitPlan& plan,
                                        bool bad_rows, float value_scale, int q) {
    // The head dim of out[j][2r + k] for this thread.
    auto dim = [&](int j, int k) {
      return kLayout == OutputLayout::kWgmma ? 8 * j + 2 * q + k : (2 * q + k) * kDimTiles + j;
    };
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = row_sum[r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      if (!valid[r]) continue;
      const float factor = value_scale / sum;
      if (plan.num_splits == 1) {
        T* out_values = static_cast<T*>(p.out) + out_row[r] * HD;
        if constexpr (kLayout == OutputLayout::kWgmma) {
#pragma unroll
          for (int j = 0; j < kDimTiles; ++j) {
            const float v0 = bad_rows ? nan_value() : out[j][2 * r] * factor;
            const float v1 = bad_rows ? nan_value() : out[j][2 * r + 1] * factor;
            *reinterpret_cast<uint32_t*>(out_values + dim(j, 0)) = pack2<T>(v0, v1);
          }
        } else {
          // kDimTiles consecutive dims per k, 8 per 16-byte store.
#pragma unroll
          for (int k = 0; k < 2; ++k) {
#pragma unroll
            for (int j0 = 0; j0 < kDimTiles; j0 += 8) {
              alignas(16) T values[8];
#pragma unroll
              for (int j = 0; j < 8; ++j) {
                values[j] =
                    from_float<T>(bad_rows ? nan_value() : out[j0 + j][2 * r + k] * factor);
              }
              *reinterpret_cast<uint4*>(out_values + dim(j0, k)) =
                  *reinterpret_cast<const uint4*>(values);
            }
          }
        }
        continue;
      }
      const int64_t index = out_row[r] * plan.num_splits + blockIdx.z;
      if (q == 0) {
        plan.partial_lse[index] = bad_rows        ? nan_value()
                                  : sum == 0.0f ? -INFINITY
                                                : row_max[r] + log2f(sum);
      }
      if (bad_rows || sum == 0.0f) continue;
      float* partial = plan.partial_out + index * HD;
      if constexpr (kLayout == OutputLayout::kWgmma) {
#pragma unroll
        for (int j = 0; j < kDimTiles; ++j) {
          *reinterpret_cast<float2*>(partial + dim(j, 0)) =
              make_float2(out[j][2 * r] * factor, out[j][2 * r + 1] * factor);
        }
      } else {
#pragma unroll
        for (int k = 0; k < 2; ++k) {
#pragma unroll
          for (int j0 = 0; j0 < kDimTiles; j0 += 4) {
            *reinterpret_cast<float4*>(partial + dim(j0, k)) =
                make_float4(out[j0][2 * r + k] * factor, out[j0 + 1][2 * r + k] * factor,
                            out[j0 + 2][2 * r + k] * factor, out[j0 + 3][2 * r + k] * factor);
          }
        }
      }
    }
  }
};

}  // namespace fdops::attention
