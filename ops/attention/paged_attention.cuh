// Launch of paged decode and prefill attention for one instantiation group (dtype, cache type,
// head dim): picks the kernel (tensor cores for grouped-query attention, CUDA cores otherwise),
// splits long contexts over blocks and merges the partitions.
//
// Work item of a block: one query row x one KV head x a tile of the query heads sharing it x
// one partition of the row's context. Contexts are split into partitions when the rows alone do
// not fill the GPU; each partition's normalised output and log-sum-exp go to a workspace and a
// second kernel merges them. With one partition the first kernel writes the output directly.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/attention/cache_storage.cuh"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/attention/paged_attention_common.cuh"
#include "ops/attention/paged_attention_groups.cuh"
#include "ops/attention/paged_attention_mma.cuh"
#include "ops/attention/paged_attention_simt.cuh"
#include "ops/attention/workspace.h"

namespace fdops::attention {

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

// Query heads per block: 16 (the MMA tile) for grouped-query attention with head dims up to
// 128; otherwise the group size rounded up to a CUDA-core tile of 1, 2, 4 or 8 heads.
inline int group_tile(int group_size, int head_dim) {
  if (group_size >= 4 && head_dim <= 128) return kMmaRows;
  return group_size <= 1 ? 1 : group_size <= 2 ? 2 : group_size <= 4 ? 4 : 8;
}

// Partitions so that about four blocks per SM are in flight, each covering at least 256 tokens
// of the longest context the block tables allow; one partition when the rows alone fill the GPU.
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
  plan.partition_tokens = static_cast<int32_t>(partition);
  plan.num_splits = static_cast<int32_t>((capacity + partition - 1) / partition);
  return plan;
}

// The attention kernels of one (dtype, cache type, head dim) instantiation group: the MMA
// kernel (head dims 64 and 128), the CUDA-core kernel per group tile, and the merge.
// Explicitly instantiated by the generated sources.
template <typename T, CacheType C, int HD>
cudaError_t launch_paged_attention_group(const AttentionParams& p, cudaStream_t stream) {
  const int tile = group_tile(p.num_heads / p.cache.kv_heads, HD);
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
  if constexpr (HD <= 128) {
    if (tile == kMmaRows) {
      const size_t merge_bytes = (kWarps * kMmaRows * (HD + 2)) * sizeof(float);
      err = launch_kernel(paged_attention_mma_kernel<T, C, HD>, grid, dim3(kThreads),
                          merge_bytes, stream, p, plan);
    }
  }
  if (tile == 1) err = launch(std::integral_constant<int, 1>{});
  if (tile == 2) err = launch(std::integral_constant<int, 2>{});
  if constexpr (HD > 128) {  // with smaller heads, groups of 4 and more take the MMA kernel
    if (tile == 4) err = launch(std::integral_constant<int, 4>{});
    if (tile == 8) err = launch(std::integral_constant<int, 8>{});
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
