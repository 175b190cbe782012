// Device code of paged decode and prefill attention (CUDA cores, fp32 math).
//
// Work item: one query row x one KV head x a tile of GT of the query heads sharing that KV head
// (the group; groups larger than 8 take several tiles) x one partition of the row's context.
// The context is split into partitions of at most kMaxPartitionTokens so that small batches
// still fill the GPU; each partition's normalised output and log-sum-exp go to a workspace and
// a second kernel merges them. With one partition the first kernel writes the output directly.
//
// Inside a block, each warp covers TPW tokens at a time, HD / 8 lanes per token, each lane
// holding 8 consecutive head dims of q (pre-scaled by softmax_scale * log2(e) and the key
// dequantisation scale, so scores come out in the exp2 domain) and of its running output. A
// token's score is reduced over its lanes by shuffles; each lane group keeps its own online
// softmax state over its tokens, and the block merges the groups' states in shared memory.
// U tokens per group are loaded before any is used, so each lane has 2U independent 8- or
// 16-byte loads in flight. The tile of GT heads reuses every K and V load GT times, which is
// what makes grouped-query decode memory-bound rather than load-issue-bound.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/attention/cache_storage.cuh"
#include "ops/attention/paged_attention_groups.cuh"
#include "ops/attention/workspace.h"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"

namespace fdops::attention {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = 32 * kWarps;
inline constexpr float kLog2e = 1.4426950408889634f;

// How a launch divides the work (computed on the host by plan_split).
struct SplitPlan {
  int32_t head_tiles;        // tiles of GT query heads per KV head
  int32_t num_splits;        // partitions of the longest possible context
  int32_t partition_tokens;  // tokens per partition
  float* partial_out;        // [rows, num_heads, num_splits, head_dim] when num_splits > 1
  float* partial_lse;        // [rows, num_heads, num_splits] (log2 domain)
};

__device__ __forceinline__ float nan_value() { return __int_as_float(0x7fc00000); }

template <typename T, CacheType C, int HD, int GT>
__global__ void __launch_bounds__(kThreads)
    paged_attention_kernel(AttentionParams p, SplitPlan plan) {
  using Storage = CacheStorage<T, C>;
  using Chunk = typename Storage::Chunk;
  constexpr int kLanesPerToken = HD / kChunk;
  constexpr int kTokensPerWarp = 32 / kLanesPerToken;
  constexpr int kGroups = kWarps * kTokensPerWarp;  // lane groups per block
  constexpr int kUnroll = GT >= 8 ? 2 : 4;

  __shared__ int32_t block_ids[kMaxPartitionTokens];
  __shared__ float group_max[kGroups][GT];
  __shared__ float group_sum[kGroups][GT];
  __shared__ float group_out[kGroups][GT][HD];
  __shared__ bool bad_block;

  const PagedCache& cache = p.cache;
  const int64_t item = blockIdx.x;
  const int tile = static_cast<int>(item % plan.head_tiles);
  const int kv_head = static_cast<int>((item / plan.head_tiles) % cache.kv_heads);
  const int64_t row = item / (static_cast<int64_t>(plan.head_tiles) * cache.kv_heads);
  const int split = blockIdx.y;
  const int group_size = p.num_heads / cache.kv_heads;
  const int head0 = kv_head * group_size + tile * GT;
  const int heads = min(GT, group_size - tile * GT);

  wait_for_dependencies();

  // The row's sequence and causal context end (exclusive).
  int seq;
  int64_t context;
  if (p.cu_seqlens_q == nullptr) {
    seq = static_cast<int>(row);
    context = __ldg(p.seq_lens + seq);
  } else {
    seq = sequence_of_row(p.cu_seqlens_q, p.batch, row);
    const int64_t first = __ldg(p.cu_seqlens_q + seq);
    const int64_t q_len = __ldg(p.cu_seqlens_q + seq + 1) - first;
    context = __ldg(p.seq_lens + seq) - q_len + (row - first) + 1;
  }
  const int64_t capacity = static_cast<int64_t>(cache.max_blocks_per_seq) * cache.block_size;
  const bool bad_length = context < 1 || context > capacity;
  const int64_t begin = static_cast<int64_t>(split) * plan.partition_tokens;
  const int64_t end = bad_length ? begin : min(context, begin + plan.partition_tokens);

  const int64_t out_row = (row * p.num_heads + head0);  // first output head of the tile
  auto partial_index = [&](int h) {
    return (out_row + h) * plan.num_splits + split;  // [rows, num_heads, num_splits]
  };

  if (bad_length || begin >= end) {
    // No token here: an empty partition contributes nothing to the merge; a bad length makes
    // the whole row NaN rather than silently wrong (with one partition, only a bad length
    // leaves it empty).
    const float lse = bad_length ? nan_value() : -INFINITY;
    if (plan.num_splits == 1) {
      for (int i = threadIdx.x; i < heads * HD; i += kThreads) {
        static_cast<T*>(p.out)[(out_row + i / HD) * HD + i % HD] = from_float<T>(nan_value());
      }
    } else if (threadIdx.x < heads) {
      plan.partial_lse[partial_index(threadIdx.x)] = lse;
    }
    return;
  }

  // This partition's block ids, checked once.
  const int64_t first_block = begin / cache.block_size;
  const int num_block_ids = static_cast<int>((end - 1) / cache.block_size - first_block + 1);
  if (threadIdx.x == 0) bad_block = false;
  __syncthreads();
  const int32_t* table = cache.block_tables + static_cast<int64_t>(seq) * cache.max_blocks_per_seq;
  for (int i = threadIdx.x; i < num_block_ids; i += kThreads) {
    const int32_t id = __ldg(table + first_block + i);
    if (id < 0 || id >= cache.num_blocks) bad_block = true;
    block_ids[i] = id;
  }
  __syncthreads();
  if (bad_block) {
    if (plan.num_splits == 1) {
      for (int i = threadIdx.x; i < heads * HD; i += kThreads) {
        static_cast<T*>(p.out)[(out_row + i / HD) * HD + i % HD] = from_float<T>(nan_value());
      }
    } else if (threadIdx.x < heads) {
      plan.partial_lse[partial_index(threadIdx.x)] = nan_value();
    }
    return;
  }

  const int lane = threadIdx.x % 32;
  const int group = (threadIdx.x / 32) * kTokensPerWarp + lane / kLanesPerToken;
  const int dim0 = (lane % kLanesPerToken) * kChunk;

  // q, scaled so that q . k is the score in the exp2 domain.
  float q_scale = p.softmax_scale * kLog2e;
  if constexpr (Storage::kQuantized) q_scale *= __ldg(cache.key_scale + kv_head);
  float q[GT][kChunk];
#pragma unroll
  for (int h = 0; h < GT; ++h) {
    if (h < heads) {
      load_vec_as_float<kChunk>(static_cast<const T*>(p.query) + (out_row + h) * HD + dim0, q[h]);
#pragma unroll
      for (int i = 0; i < kChunk; ++i) q[h][i] *= q_scale;
    } else {
#pragma unroll
      for (int i = 0; i < kChunk; ++i) q[h][i] = 0.0f;
    }
  }

  float running_max[GT], running_sum[GT], acc[GT][kChunk];
#pragma unroll
  for (int h = 0; h < GT; ++h) {
    running_max[h] = -INFINITY;
    running_sum[h] = 0.0f;
#pragma unroll
    for (int i = 0; i < kChunk; ++i) acc[h][i] = 0.0f;
  }

  const auto* key = static_cast<const typename Storage::Element*>(cache.key);
  const auto* value = static_cast<const typename Storage::Element*>(cache.value);
  const int64_t block_base = first_block * cache.block_size;
  for (int64_t t0 = begin + group; t0 < end; t0 += kGroups * kUnroll) {
    Chunk k_chunk[kUnroll], v_chunk[kUnroll];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t t = t0 + static_cast<int64_t>(u) * kGroups;
      valid[u] = t < end;
      if (valid[u]) {
        const int local = static_cast<int>(t - block_base);
        const int64_t offset =
            cache_row_offset(cache, block_ids[local / cache.block_size], kv_head,
                             local % cache.block_size) +
            dim0;
        k_chunk[u] = __ldg(reinterpret_cast<const Chunk*>(key + offset));
        v_chunk[u] = __ldg(reinterpret_cast<const Chunk*>(value + offset));
      }
    }
    float score[kUnroll][GT];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float k[kChunk];
      Storage::to_float(k_chunk[u], k);
#pragma unroll
      for (int h = 0; h < GT; ++h) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < kChunk; ++i) dot = fmaf(q[h][i], k[i], dot);
#pragma unroll
        for (int offset = kLanesPerToken / 2; offset > 0; offset /= 2) {
          dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        }
        score[u][h] = valid[u] ? dot : -INFINITY;
      }
    }
#pragma unroll
    for (int h = 0; h < GT; ++h) {
      float new_max = running_max[h];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) new_max = fmaxf(new_max, score[u][h]);
      if (new_max == -INFINITY) continue;  // none of this group's tokens is in range
      const float correction = exp2f(running_max[h] - new_max);
      running_max[h] = new_max;
      running_sum[h] *= correction;
#pragma unroll
      for (int i = 0; i < kChunk; ++i) acc[h][i] *= correction;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) score[u][h] = exp2f(score[u][h] - new_max);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (!valid[u]) continue;
      float v[kChunk];
      Storage::to_float(v_chunk[u], v);
#pragma unroll
      for (int h = 0; h < GT; ++h) {
        running_sum[h] += score[u][h];
#pragma unroll
        for (int i = 0; i < kChunk; ++i) acc[h][i] = fmaf(score[u][h], v[i], acc[h][i]);
      }
    }
  }

  // Merge the lane groups' states.
#pragma unroll
  for (int h = 0; h < GT; ++h) {
    if (dim0 == 0) {
      group_max[group][h] = running_max[h];
      group_sum[group][h] = running_sum[h];
    }
#pragma unroll
    for (int i = 0; i < kChunk; ++i) group_out[group][h][dim0 + i] = acc[h][i];
  }
  __syncthreads();
  allow_dependent_launch();
  float value_scale = 1.0f;
  if constexpr (Storage::kQuantized) value_scale = __ldg(cache.value_scale + kv_head);
  for (int i = threadIdx.x; i < heads * HD; i += kThreads) {
    const int h = i / HD, d = i % HD;
    float block_max = -INFINITY;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) block_max = fmaxf(block_max, group_max[g][h]);
    float sum = 0.0f, out = 0.0f;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      const float w = group_max[g][h] == -INFINITY ? 0.0f : exp2f(group_max[g][h] - block_max);
      sum = fmaf(w, group_sum[g][h], sum);
      out = fmaf(w, group_out[g][h][d], out);
    }
    out = out / sum * value_scale;
    if (plan.num_splits == 1) {
      static_cast<T*>(p.out)[(out_row + h) * HD + d] = from_float<T>(out);
    } else {
      plan.partial_out[partial_index(h) * HD + d] = out;
      if (d == 0) plan.partial_lse[partial_index(h)] = block_max + log2f(sum);
    }
  }
}

// out[row, head] = the partitions' outputs weighted by their softmax mass. A NaN partition
// (bad metadata) makes the row NaN; empty partitions (-inf) weigh nothing.
template <typename T>
__global__ void merge_partitions_kernel(const float* partial_out, const float* partial_lse,
                                        T* out, int num_splits, int head_dim) {
  wait_for_dependencies();
  const int64_t row_head = blockIdx.x;
  const float* lse = partial_lse + row_head * num_splits;
  float max_lse = -INFINITY;
  bool bad = false;
  for (int s = 0; s < num_splits; ++s) {
    bad |= isnan(lse[s]);
    max_lse = fmaxf(max_lse, lse[s]);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f, acc = 0.0f;
    for (int s = 0; s < num_splits; ++s) {
      if (lse[s] == -INFINITY) continue;
      const float w = exp2f(lse[s] - max_lse);
      sum += w;
      acc = fmaf(w, partial_out[(row_head * num_splits + s) * head_dim + d], acc);
    }
    out[row_head * head_dim + d] = from_float<T>(bad ? nan_value() : acc / sum);
  }
}

// Query heads per tile: the group size rounded up to an instantiated tile, at most 8.
inline int group_tile(int group_size) {
  return group_size <= 1 ? 1 : group_size <= 2 ? 2 : group_size <= 4 ? 4 : 8;
}

// Partitions so that about four blocks per SM are in flight, each covering at least 256 and at
// most kMaxPartitionTokens tokens of the longest context the block tables allow.
inline SplitPlan plan_split(const AttentionParams& p, int tile) {
  SplitPlan plan = {};
  const int group_size = p.num_heads / p.cache.kv_heads;
  plan.head_tiles = (group_size + tile - 1) / tile;
  const int64_t items = p.rows * p.cache.kv_heads * plan.head_tiles;
  const int64_t capacity =
      static_cast<int64_t>(p.cache.max_blocks_per_seq) * p.cache.block_size;
  const int64_t wanted_blocks = 4 * static_cast<int64_t>(multiprocessor_count());
  const int64_t wanted_splits = (wanted_blocks + items - 1) / items;
  int64_t partition = (capacity + wanted_splits - 1) / wanted_splits;
  partition = partition < 256 ? 256 : partition;
  partition = partition > kMaxPartitionTokens ? kMaxPartitionTokens : partition;
  plan.partition_tokens = static_cast<int32_t>(partition);
  plan.num_splits = static_cast<int32_t>((capacity + partition - 1) / partition);
  return plan;
}

// The attention kernels of one (dtype, cache type, head dim) instantiation group: one kernel per
// group tile, plus the merge. Explicitly instantiated by the generated sources.
template <typename T, CacheType C, int HD>
cudaError_t launch_paged_attention_group(const AttentionParams& p, cudaStream_t stream) {
  const int tile = group_tile(p.num_heads / p.cache.kv_heads);
  SplitPlan plan = plan_split(p, tile);
  const int64_t items = p.rows * p.cache.kv_heads * plan.head_tiles;
  WorkspaceAllocation workspace;
  if (plan.num_splits > 1) {
    const size_t row_heads = static_cast<size_t>(p.rows) * p.num_heads * plan.num_splits;
    cudaError_t err = workspace.allocate(row_heads * (HD + 1) * sizeof(float), stream);
    if (err != cudaSuccess) return err;
    plan.partial_out = static_cast<float*>(workspace.data());
    plan.partial_lse = plan.partial_out + row_heads * HD;
  }
  const dim3 grid(static_cast<unsigned>(items), static_cast<unsigned>(plan.num_splits));
  cudaError_t err = cudaErrorInvalidValue;
  auto launch = [&](auto gt) {
    return launch_kernel(paged_attention_kernel<T, C, HD, decltype(gt)::value>, grid,
                         dim3(kThreads), 0, stream, p, plan);
  };
  switch (tile) {
    case 1: err = launch(std::integral_constant<int, 1>{}); break;
    case 2: err = launch(std::integral_constant<int, 2>{}); break;
    case 4: err = launch(std::integral_constant<int, 4>{}); break;
    default: err = launch(std::integral_constant<int, 8>{}); break;
  }
  if (err == cudaSuccess && plan.num_splits > 1) {
    err = launch_kernel(merge_partitions_kernel<T>,
                        dim3(static_cast<unsigned>(p.rows * p.num_heads)), dim3(HD), 0, stream,
                        plan.partial_out, plan.partial_lse, static_cast<T*>(p.out),
                        plan.num_splits, HD);
  }
  const cudaError_t freed = workspace.release(stream);
  return err != cudaSuccess ? err : freed;
}

// Explicit instantiation, used once per generated source.
#define FDOPS_INSTANTIATE_PAGED_ATTENTION(T, C, HD)                                          \
  template cudaError_t launch_paged_attention_group<T, C, HD>(const AttentionParams&, \
                                                                cudaStream_t)

}  // namespace fdops::attention
