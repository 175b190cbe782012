// Plan and launch of paged decode and prefill attention for one instantiation group (dtype,
// cache type, head dim): picks the kernel (tensor cores for grouped-query attention, CUDA cores
// otherwise), splits long contexts over blocks and merges the partitions.
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
#include "ops/attention/paged_attention_common.cuh"
#include "ops/attention/paged_attention_groups.cuh"
#include "ops/attention/paged_attention_mma.cuh"
#include "ops/attention/paged_attention_simt.cuh"
#include "ops/attention/paged_prefill_mma.cuh"
#include "ops/attention/paged_prefill_wgmma.cuh"
#include "ops/common/workspace.h"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"

namespace fdops::attention {

// out[row, head] = the partitions' outputs weighted by their softmax mass. A NaN partition
// (bad metadata) makes the row NaN; empty partitions (-inf) weigh nothing. One block per (row,
// head): HD / 4 threads take a partition's head dims as float4s, the block's thread groups take
// partitions in turn, and the groups' sums meet in shared memory.
template <typename T, int HD>
__global__ void __launch_bounds__(kThreads)
    merge_partitions_kernel(const float* partial_out, const float* partial_lse, T* out,
                            int num_splits) {
  constexpr int kLanes = HD / 4;                // threads per partition
  constexpr int kParallel = kThreads / kLanes;  // partitions summed at once
  __shared__ float warp_max[kWarps];
  __shared__ int warp_bad[kWarps];
  __shared__ float4 group_acc[kParallel][kLanes];
  __shared__ float group_sum[kParallel];
  wait_for_dependencies();
  const int64_t row_head = blockIdx.x;
  const float* lse = partial_lse + row_head * num_splits;

  float max_lse = -INFINITY;
  int bad = 0;
  for (int s = threadIdx.x; s < num_splits; s += kThreads) {
    bad |= isnan(lse[s]);
    max_lse = fmaxf(max_lse, lse[s]);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    max_lse = fmaxf(max_lse, __shfl_xor_sync(0xffffffffu, max_lse, offset));
    bad |= __shfl_xor_sync(0xffffffffu, bad, offset);
  }
  if (threadIdx.x % 32 == 0) {
    warp_max[threadIdx.x / 32] = max_lse;
    warp_bad[threadIdx.x / 32] = bad;
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kWarps; ++i) {
    max_lse = fmaxf(max_lse, warp_max[i]);
    bad |= warp_bad[i];
  }

  const int group = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float sum = 0.0f;
  for (int s = group; s < num_splits; s += kParallel) {
    if (lse[s] == -INFINITY) continue;
    const float weight = exp2f(lse[s] - max_lse);
    const float4 v = *reinterpret_cast<const float4*>(
        partial_out + (row_head * num_splits + s) * HD + 4 * lane);
    sum += weight;
    acc.x = fmaf(weight, v.x, acc.x);
    acc.y = fmaf(weight, v.y, acc.y);
    acc.z = fmaf(weight, v.z, acc.z);
    acc.w = fmaf(weight, v.w, acc.w);
  }
  group_acc[group][lane] = acc;
  if (lane == 0) group_sum[group] = sum;
  __syncthreads();
  allow_dependent_launch();
  if (group != 0) return;
  float total[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  sum = 0.0f;
#pragma unroll
  for (int g = 0; g < kParallel; ++g) {
    total[0] += group_acc[g][lane].x;
    total[1] += group_acc[g][lane].y;
    total[2] += group_acc[g][lane].z;
    total[3] += group_acc[g][lane].w;
    sum += group_sum[g];
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[row_head * HD + 4 * lane + i] = from_float<T>(bad ? nan_value() : total[i] / sum);
  }
}

// Tokens per partition: at least this many (fewer would spend more on the merge than they
// save), and a multiple of what the tensor-core kernel's warps take per round.
inline constexpr int kMinPartitionTokens = 256;
inline constexpr int kPartitionQuantum = kWarps * kChunkTokens;

// Prefills whose chunks average at least this many tokens per sequence take the tiled kernel;
// shorter ones (decode tokens sent through prefill) the per-token kernels. Measured on an H100
// (64 sequences, 2k contexts, 32 q / 8 kv heads): 2 tokens each, per token 0.31 ms, tiled
// 0.38 ms; 4 tokens each, per token 0.58 ms, tiled 0.38 ms.
inline constexpr int64_t kTiledPrefillMinChunk = 4;

inline bool is_tiled_prefill(AttentionKernel kernel) {
  return kernel == AttentionKernel::kTiledPrefill || kernel == AttentionKernel::kTiledPrefillWgmma;
}

// Which kernel serves a call, and with how many query heads per block. Prefills of chunks
// long enough: the tiled kernel (every head dim and group), warp-specialised on wgmma where
// `wgmma_prefill` (the group has those tiles and the GPU is an SM 9.0 one). Otherwise per query
// token: tensor cores from 3 query heads per KV head at head dims up to 128 (a tile of 16 rows;
// rows past the group cost only MMA slots, which are not the bound); CUDA cores for 1 and 2
// heads, and at head dim 256, whose 16-row fp32 accumulators would not fit a warp's registers
// next to the pipeline, with the group rounded up to a tile of 1, 2, 4 or 8 heads.
inline void choose_kernel(const AttentionParams& p, bool wgmma_prefill, AttentionPlan* plan) {
  const int group_size = p.num_heads / p.cache.kv_heads;
  if (p.cu_seqlens_q != nullptr && p.rows >= kTiledPrefillMinChunk * p.batch) {
    plan->kernel =
        wgmma_prefill ? AttentionKernel::kTiledPrefillWgmma : AttentionKernel::kTiledPrefill;
    plan->head_tile = group_size;
  } else if (p.cache.head_dim <= 128 && group_size >= 3) {
    plan->kernel = AttentionKernel::kTensorCore;
    plan->head_tile = kMmaRows;
  } else {
    plan->kernel = AttentionKernel::kCudaCore;
    plan->head_tile = group_size <= 1 ? 1 : group_size <= 2 ? 2 : group_size <= 4 ? 4 : 8;
  }
  plan->head_tiles = (group_size + plan->head_tile - 1) / plan->head_tile;
  plan->threads = plan->kernel == AttentionKernel::kTiledPrefillWgmma ? kWgmmaPrefillThreads
                  : plan->kernel == AttentionKernel::kTiledPrefill    ? kPrefillThreads
                                                                      : kThreads;
}

// Work items (blocks without a split) of the plan's kernel.
inline int64_t plan_items(const AttentionParams& p, const AttentionPlan& plan) {
  if (is_tiled_prefill(plan.kernel)) {
    return prefill_tiles(p.rows, p.batch, p.num_heads / p.cache.kv_heads) * p.cache.kv_heads;
  }
  return p.rows * p.cache.kv_heads * plan.head_tiles;
}

// Partitions so that a launch whose work items fill less than half of one wave of
// `resident_blocks` blocks fills it: the longest context (the caller's max_seq_len, else the
// block tables' capacity) is cut into as many partitions as fit the wave, each a multiple of
// `quantum` tokens.
inline void plan_split(const AttentionParams& p, int64_t resident_blocks, int64_t quantum,
                       AttentionPlan* plan) {
  const int64_t items = plan_items(p, *plan);
  const int64_t capacity =
      static_cast<int64_t>(p.cache.max_blocks_per_seq) * p.cache.block_size;
  const int64_t context = p.max_seq_len > 0 && p.max_seq_len < capacity ? p.max_seq_len : capacity;
  // Blocks in a wave share the memory bandwidth, so one block per resident slot is enough;
  // more partitions would only add merge traffic.
  const int64_t wanted = items > 0 && 2 * items <= resident_blocks ? resident_blocks / items : 1;
  int64_t partition = (context + wanted - 1) / wanted;
  partition = (partition + quantum - 1) / quantum * quantum;
  partition = partition < kMinPartitionTokens ? kMinPartitionTokens : partition;
  int64_t splits = (context + partition - 1) / partition;
  if (splits > 65535) {  // grid.y or grid.z; only with a huge resident_blocks
    splits = 65535;
    partition = (context + splits - 1) / splits;
    partition = (partition + quantum - 1) / quantum * quantum;
  }
  plan->num_splits = static_cast<int32_t>(splits);
  plan->partition_tokens = static_cast<int32_t>(splits == 1 ? context : partition);
  plan->blocks = items * splits;
  plan->workspace_bytes =
      splits == 1 ? 0
                  : p.rows * p.num_heads * splits * (p.cache.head_dim + 1) *
                        static_cast<int64_t>(sizeof(float));
}

// The kernel of one (dtype, cache, head dim) group that `plan` names, or nullptr if it has none.
template <typename T, CacheType C, int HD>
const void* attention_kernel(const AttentionPlan& plan) {
  if (plan.kernel == AttentionKernel::kTiledPrefill) {
    return reinterpret_cast<const void*>(paged_prefill_mma_kernel<T, C, HD>);
  }
  if (plan.kernel == AttentionKernel::kTiledPrefillWgmma) {
    if constexpr (kWgmmaPrefill<C, HD>) {
      return reinterpret_cast<const void*>(paged_prefill_wgmma_kernel<T, C, HD>);
    }
    return nullptr;
  }
  if (plan.kernel == AttentionKernel::kTensorCore) {
    if constexpr (HD <= 128) {
      if (plan.head_tile == kMmaRows) {
        return reinterpret_cast<const void*>(paged_attention_mma_kernel<T, C, HD>);
      }
    }
    return nullptr;
  }
  if (plan.kernel != AttentionKernel::kCudaCore) return nullptr;
  switch (plan.head_tile) {
    case 1: return reinterpret_cast<const void*>(paged_attention_kernel<T, C, HD, 1>);
    case 2: return reinterpret_cast<const void*>(paged_attention_kernel<T, C, HD, 2>);
    default: break;
  }
  if constexpr (HD > 128) {  // with smaller heads, groups of 3 and more take tensor cores
    switch (plan.head_tile) {
      case 4: return reinterpret_cast<const void*>(paged_attention_kernel<T, C, HD, 4>);
      case 8: return reinterpret_cast<const void*>(paged_attention_kernel<T, C, HD, 8>);
      default: break;
    }
  }
  return nullptr;
}

// The plan on a GPU where the group's wgmma prefill tiles run (`wgmma_prefill`) or not.
template <typename T, CacheType C, int HD>
cudaError_t plan_group(const AttentionParams& p, int64_t resident_blocks, bool wgmma_prefill,
                       AttentionPlan* plan) {
  *plan = AttentionPlan{};
  choose_kernel(p, wgmma_prefill && kWgmmaPrefill<C, HD>, plan);
  int64_t quantum = kPartitionQuantum;
  if (plan->kernel == AttentionKernel::kTiledPrefillWgmma) {
    plan->shared_bytes = WgmmaTile<T, HD>::kSharedBytes;
    quantum = WgmmaTile<T, HD>::kTokens;
  } else if (plan->kernel == AttentionKernel::kTiledPrefill) {
    plan->shared_bytes = PrefillTile<T, C, HD>::kSharedBytes;
    quantum = PrefillTile<T, C, HD>::kTokens;
  } else if (plan->kernel == AttentionKernel::kTensorCore) {
    plan->shared_bytes = MmaTile<T, C, HD>::kSharedBytes;
  }
  plan_split(p, resident_blocks, quantum, plan);
  const int64_t items = plan->blocks / plan->num_splits;
  if (attention_kernel<T, C, HD>(*plan) == nullptr || items > INT32_MAX ||
      p.rows * p.num_heads > INT32_MAX) {
    *plan = AttentionPlan{};
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

// The plan on a GPU of the module's SM (for the sm90 module, an SM 9.0 one).
template <typename T, CacheType C, int HD>
cudaError_t plan_paged_attention_group(const AttentionParams& p, int64_t resident_blocks,
                                       AttentionPlan* plan) {
  return plan_group<T, C, HD>(p, resident_blocks, true, plan);
}

template <typename T, CacheType C, int HD>
cudaError_t launch_paged_attention_group(const AttentionParams& p, cudaStream_t stream) {
  // The sm90 module's wgmma kernels exist only in its sm_90a code; newer GPUs run its PTX.
  const bool wgmma_prefill = kWgmmaPrefill<C, HD> && compute_capability() == 90;
  AttentionPlan plan;
  cudaError_t err = plan_group<T, C, HD>(p, 0, wgmma_prefill, &plan);
  if (err != cudaSuccess) return err;
  const void* kernel = attention_kernel<T, C, HD>(plan);
  const int per_sm = resident_blocks_per_sm(kernel, plan.threads, plan.shared_bytes);
  if (per_sm == 0) return cudaErrorInvalidConfiguration;  // e.g. too little shared memory
  err = plan_group<T, C, HD>(p, static_cast<int64_t>(per_sm) * multiprocessor_count(),
                             wgmma_prefill, &plan);
  if (err != cudaSuccess) return err;

  SplitPlan split = {plan.head_tiles, plan.num_splits, plan.partition_tokens,
                     FastDivisor::make(static_cast<uint32_t>(p.cache.block_size)), nullptr,
                     nullptr};
  WorkspaceAllocation workspace;
  if (plan.num_splits > 1) {
    err = workspace.allocate(static_cast<size_t>(plan.workspace_bytes), stream);
    if (err != cudaSuccess) return err;
    split.partial_out = static_cast<float*>(workspace.data());
    split.partial_lse = split.partial_out + p.rows * p.num_heads * plan.num_splits * HD;
  }
  AttentionParams params = p;
  void* args[] = {&params, &split};
  const int64_t items = plan.blocks / plan.num_splits;
  const auto splits = static_cast<unsigned>(plan.num_splits);
  const dim3 grid = is_tiled_prefill(plan.kernel)
                        ? dim3(static_cast<unsigned>(items / p.cache.kv_heads),
                               static_cast<unsigned>(p.cache.kv_heads), splits)
                        : dim3(static_cast<unsigned>(items), splits);
  err = launch_kernel_untyped(kernel, grid, dim3(plan.threads), plan.shared_bytes, stream, args);
  if (err == cudaSuccess && plan.num_splits > 1) {
    err = launch_kernel(merge_partitions_kernel<T, HD>,
                        dim3(static_cast<unsigned>(p.rows * p.num_heads)), dim3(kThreads), 0,
                        stream, split.partial_out, split.partial_lse, static_cast<T*>(p.out),
                        plan.num_splits);
  }
  const cudaError_t freed = workspace.release(stream);
  return err != cudaSuccess ? err : freed;
}

// Explicit instantiation, used once per generated source.
#define FDOPS_INSTANTIATE_PAGED_ATTENTION(T, C, HD)                                        \
  template cudaError_t plan_paged_attention_group<T, C, HD>(const AttentionParams&, int64_t, \
                                                            AttentionPlan*);                \
  template cudaError_t launch_paged_attention_group<T, C, HD>(const AttentionParams&,        \
                                                              cudaStream_t)

}  // namespace fdops::attention
