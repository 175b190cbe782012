// The CUDA-core paged attention kernel (fp32 math): any group size and head dim, used for
// groups of up to 2 query heads per KV head, and for head dim 256 (tiles of 1, 2, 4, 8 heads).
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
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/attention/paged_attention_common.cuh"
#include "ops/common/vec.cuh"

namespace fdops::attention {

template <typename T, CacheType C, int HD, int GT>
__global__ void __launch_bounds__(kThreads)
    paged_attention_kernel(AttentionParams p, SplitPlan plan) {
  using Storage = CacheStorage<T, C>;
  using Chunk = typename Storage::Chunk;
  constexpr int kLanesPerToken = HD / kChunk;
  constexpr int kTokensPerWarp = 32 / kLanesPerToken;
  constexpr int kGroups = kWarps * kTokensPerWarp;  // lane groups per block
  constexpr int kUnroll = GT >= 8 ? 2 : 4;

  __shared__ int32_t block_ids[kBlockIdWindow];
  __shared__ float group_max[kGroups][GT];
  __shared__ float group_sum[kGroups][GT];
  __shared__ float group_out[kGroups][GT][HD];
  __shared__ bool bad_block;

  const PagedCache& cache = p.cache;
  const WorkItem w = work_item(p, plan, GT);
  const int kv_head = w.kv_head, heads = w.heads;
  const int64_t out_row = w.out_row;
  wait_for_dependencies();
  Partition part;
  if (!find_partition<T>(p, plan, w, HD, &part)) return;
  const int64_t begin = part.begin, end = part.end;

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
  // Block ids go through shared memory one window of kBlockIdWindow tokens at a time.
  const int warp = threadIdx.x / 32;
  for (int64_t window = begin; window < end; window += kBlockIdWindow) {
    const int64_t window_end = min(end, window + kBlockIdWindow);
    if (!load_block_ids(cache, part.seq, window, window_end, block_ids, &bad_block)) {
      write_empty_partition<T>(p, plan, w, HD, true);
      return;
    }
    const int64_t block_base = (window / cache.block_size) * cache.block_size;
    // The trip count depends on the warp only: the score shuffles below need all 32 lanes, so a
    // lane group whose tokens ran out masks them rather than leaving the loop.
    for (int64_t warp_first = window + warp * kTokensPerWarp; warp_first < window_end;
         warp_first += kGroups * kUnroll) {
      Chunk k_chunk[kUnroll], v_chunk[kUnroll];
      bool valid[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t t =
            warp_first + lane / kLanesPerToken + static_cast<int64_t>(u) * kGroups;
        valid[u] = t < window_end;
        if (valid[u]) {
          const uint32_t local = static_cast<uint32_t>(t - block_base);
          const uint32_t block = plan.block_size.quotient(local);
          const int64_t offset =
              cache_row_offset(cache, block_ids[block], kv_head,
                               static_cast<int>(local - block * plan.block_size.divisor)) +
              dim0;
          k_chunk[u] = __ldg(reinterpret_cast<const Chunk*>(key + offset));
          v_chunk[u] = __ldg(reinterpret_cast<const Chunk*>(value + offset));
        } else {
          k_chunk[u] = Chunk{};
          v_chunk[u] = Chunk{};
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
  merge_and_write<T, kGroups, GT, HD>(p, plan, w, &group_max[0][0], &group_sum[0][0],
                                      &group_out[0][0][0], value_scale);
}

}  // namespace fdops::attention
