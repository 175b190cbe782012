// What the paged attention kernels share: the work decomposition (a row x KV head x tile of
// query heads x context partition per block), the row's context from the metadata, the block
// ids of a partition, and the merge of online-softmax states into the output or a partition's
// partial result.
//
// Every loop that contains a warp collective (shuffles, __syncwarp) runs the same number of
// times in all lanes of the warp: lanes whose token is past the end mask it instead of leaving
// the loop, since a collective waits for every lane named in its mask.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/attention/cache_storage.cuh"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"

namespace fdops::attention {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = 32 * kWarps;
inline constexpr float kLog2e = 1.4426950408889634f;

// n / d for a divisor d fixed per launch, by a multiply-high, an add and a shift instead of the
// ~20 instructions of an integer division (exact for n < 2^31).
struct FastDivisor {
  uint32_t divisor;
  uint32_t multiplier;
  uint32_t shift;

  static FastDivisor make(uint32_t d) {
    FastDivisor f = {d, 0, 0};
    while ((1ull << f.shift) < d) ++f.shift;
    f.multiplier = static_cast<uint32_t>(((1ull << 32) * ((1ull << f.shift) - d)) / d + 1);
    return f;
  }
  __device__ __forceinline__ uint32_t quotient(uint32_t n) const {
    return (__umulhi(n, multiplier) + n) >> shift;
  }
};

// What the kernels need of the plan (AttentionPlan) and its workspace.
struct SplitPlan {
  int32_t head_tiles;        // tiles of query heads per KV head
  int32_t num_splits;        // partitions per row
  int32_t partition_tokens;  // tokens per partition; the last one runs to the row's end
  FastDivisor block_size;    // of the cache
  float* partial_out;        // [rows, num_heads, num_splits, head_dim] when num_splits > 1
  float* partial_lse;        // [rows, num_heads, num_splits] (log2 domain)
};

__device__ __forceinline__ float nan_value() { return __int_as_float(0x7fc00000); }

// What one block computes: a tile of `heads` query heads (from head0) of one row, which share
// KV head kv_head; out_row indexes the tile's first head in [rows, num_heads].
struct WorkItem {
  int64_t row;
  int64_t out_row;
  int kv_head;
  int heads;
};

__device__ __forceinline__ WorkItem work_item(const AttentionParams& p, const SplitPlan& plan,
                                              int tile_heads) {
  const int64_t item = blockIdx.x;
  const int tile = static_cast<int>(item % plan.head_tiles);
  WorkItem w;
  w.kv_head = static_cast<int>((item / plan.head_tiles) % p.cache.kv_heads);
  w.row = item / (static_cast<int64_t>(plan.head_tiles) * p.cache.kv_heads);
  const int group_size = p.num_heads / p.cache.kv_heads;
  w.heads = min(tile_heads, group_size - tile * tile_heads);
  w.out_row = w.row * p.num_heads + w.kv_head * group_size + tile * tile_heads;
  return w;
}

// The row's sequence and causal context end (exclusive); bad when the metadata is.
struct RowContext {
  int seq;
  int64_t context;
  bool bad;
};

__device__ __forceinline__ RowContext row_context(const AttentionParams& p, int64_t row) {
  RowContext r;
  if (p.cu_seqlens_q == nullptr) {
    r.seq = static_cast<int>(row);
    r.context = __ldg(p.seq_lens + r.seq);
  } else {
    r.seq = sequence_of_row(p.cu_seqlens_q, p.batch, row);
    const int64_t first = __ldg(p.cu_seqlens_q + r.seq);
    const int64_t q_len = __ldg(p.cu_seqlens_q + r.seq + 1) - first;
    r.context = __ldg(p.seq_lens + r.seq) - q_len + (row - first) + 1;
  }
  const int64_t capacity =
      static_cast<int64_t>(p.cache.max_blocks_per_seq) * p.cache.block_size;
  r.bad = r.context < 1 || r.context > capacity;
  return r;
}

__device__ __forceinline__ int64_t partial_index(const SplitPlan& plan, const WorkItem& w,
                                                 int h) {
  return (w.out_row + h) * plan.num_splits + blockIdx.y;  // [rows, num_heads, num_splits]
}

// A partition without tokens: it weighs nothing in the merge. Bad metadata makes the row NaN
// rather than silently wrong (with one partition, only bad metadata leaves it empty).
template <typename T>
__device__ void write_empty_partition(const AttentionParams& p, const SplitPlan& plan,
                                      const WorkItem& w, int head_dim, bool bad) {
  if (plan.num_splits == 1) {
    for (int i = threadIdx.x; i < w.heads * head_dim; i += blockDim.x) {
      static_cast<T*>(p.out)[w.out_row * head_dim + i] = from_float<T>(nan_value());
    }
  } else if (threadIdx.x < w.heads) {
    plan.partial_lse[partial_index(plan, w, threadIdx.x)] = bad ? nan_value() : -INFINITY;
  }
}

// This block's tokens [begin, end) of its row's context and the row's sequence. Returns false,
// after writing what the partition contributes, when it has no tokens (or the metadata is bad).
struct Partition {
  int seq;
  int64_t begin;
  int64_t end;
};

template <typename T>
__device__ __forceinline__ bool find_partition(const AttentionParams& p, const SplitPlan& plan,
                                               const WorkItem& w, int head_dim,
                                               Partition* part) {
  const RowContext ctx = row_context(p, w.row);
  part->seq = ctx.seq;
  part->begin = static_cast<int64_t>(blockIdx.y) * plan.partition_tokens;
  const bool last = static_cast<int>(blockIdx.y) == plan.num_splits - 1;
  part->end = ctx.bad ? part->begin
              : last  ? ctx.context
                      : min(ctx.context, part->begin + plan.partition_tokens);
  if (ctx.bad || part->begin >= part->end) {
    write_empty_partition<T>(p, plan, w, head_dim, ctx.bad);
    return false;
  }
  return true;
}

// Copies the block ids of tokens [begin, end) (at most kBlockIdWindow) into ids; false if one
// is outside the cache. Every thread of the block calls it.
__device__ __forceinline__ bool load_block_ids(const PagedCache& cache, int seq, int64_t begin,
                                               int64_t end, int32_t* ids, bool* bad) {
  const int64_t first_block = begin / cache.block_size;
  const int count = static_cast<int>((end - 1) / cache.block_size - first_block + 1);
  if (threadIdx.x == 0) *bad = false;
  __syncthreads();
  const int32_t* table = cache.block_tables + static_cast<int64_t>(seq) * cache.max_blocks_per_seq;
  for (int i = threadIdx.x; i < count; i += blockDim.x) {
    const int32_t id = __ldg(table + first_block + i);
    if (id < 0 || id >= cache.num_blocks) *bad = true;
    ids[i] = id;
  }
  __syncthreads();
  return !*bad;
}

// Combines kStates online-softmax states per head (running max in the exp2 domain, sum, and
// unnormalised output [kStates][GT][HD]) and writes the tile's output, or its partition's
// normalised output and log2-sum-exp when the context is split.
template <typename T, int kStates, int GT, int HD>
__device__ void merge_and_write(const AttentionParams& p, const SplitPlan& plan,
                                const WorkItem& w, const float* state_max,
                                const float* state_sum, const float* state_out,
                                float value_scale) {
  for (int i = threadIdx.x; i < w.heads * HD; i += blockDim.x) {
    const int h = i / HD, d = i % HD;
    float block_max = -INFINITY;
#pragma unroll
    for (int g = 0; g < kStates; ++g) block_max = fmaxf(block_max, state_max[g * GT + h]);
    float sum = 0.0f, out = 0.0f;
#pragma unroll
    for (int g = 0; g < kStates; ++g) {
      const float m = state_max[g * GT + h];
      const float weight = m == -INFINITY ? 0.0f : exp2f(m - block_max);
      sum = fmaf(weight, state_sum[g * GT + h], sum);
      out = fmaf(weight, state_out[(g * GT + h) * HD + d], out);
    }
    out = out / sum * value_scale;
    if (plan.num_splits == 1) {
      static_cast<T*>(p.out)[(w.out_row + h) * HD + d] = from_float<T>(out);
    } else {
      plan.partial_out[partial_index(plan, w, h) * HD + d] = out;
      if (d == 0) plan.partial_lse[partial_index(plan, w, h)] = block_max + log2f(sum);
    }
  }
}

}  // namespace fdops::attention
