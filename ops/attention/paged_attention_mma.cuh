// Tensor-core variant of the paged attention kernel for grouped-query attention (group >= 4,
// head dims 64 and 128): the query heads sharing a KV head are the 16 rows of mma.sync
// m16n8k16 tiles, so each K and V element loaded from memory feeds up to 16 heads at tensor-core
// cost, and no shuffles are needed for the dot products.
//
// Work item as in paged_attention.cuh (row x KV head x tile of up to 16 query heads x context
// partition). Each warp takes 16-token chunks of the partition in turn and keeps its own online
// softmax state; the block merges the warps' states at the end.
//
// Fragments come straight from 16-byte global loads, without shared memory, by permuting what
// the MMA's k and n indices mean (sums over head dims and over tokens do not depend on order):
// - S = Q K^T: in k-step pair s, thread (c = lane / 4, q = lane % 4) supplies head dims
//   32 s + 8 q .. + 8 of token c of the n-tile, as one load of K's row, and Q is loaded with the
//   same assignment;
// - O += P V: in n-tile j, the thread's column c stands for head dim c * HD / 8 + j, so the
//   thread's V elements are HD / 8 consecutive dims of tokens 2q, 2q + 1, 2q + 8, 2q + 9; pairs
//   of tokens are interleaved with byte permutes. P comes from S's accumulators as in
//   FlashAttention-2 (rounded to the query's dtype, like its V operand).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/attention/cache_storage.cuh"
#include "ops/attention/paged_attention_common.cuh"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"

namespace fdops::attention {

inline constexpr int kMmaRows = 16;  // query heads per tile

// Two values of T in one 32-bit register, the first in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// d += a b for one m16n8k16 tile (fp32 accumulators).
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// 8 consecutive cache elements as 4 registers of T pairs (exact for every cache type).
template <typename T, CacheType C>
__device__ __forceinline__ uint4
load_chunk_as_pairs(const typename CacheStorage<T, C>::Element* p) {
  using Storage = CacheStorage<T, C>;
  using Chunk = typename Storage::Chunk;
  const Chunk chunk = __ldg(reinterpret_cast<const Chunk*>(p));
  if constexpr (!Storage::kQuantized) {
    return chunk;
  } else {
    float f[kChunk];
    Storage::to_float(chunk, f);
    return make_uint4(pack2<T>(f[0], f[1]), pack2<T>(f[2], f[3]), pack2<T>(f[4], f[5]),
                      pack2<T>(f[6], f[7]));
  }
}

template <typename T, CacheType C, int HD>
__global__ void __launch_bounds__(kThreads)
    paged_attention_mma_kernel(AttentionParams p, SplitPlan plan) {
  static_assert(HD == 64 || HD == 128, "the MMA kernel covers head dims 64 and 128");
  using Storage = CacheStorage<T, C>;
  using Element = typename Storage::Element;
  constexpr int kStepPairs = HD / 32;  // k-step pairs of Q K^T
  constexpr int kDimTiles = HD / 8;    // n-tiles of P V (and dims per thread of V)
  constexpr int kChunkTokens = 16;

  extern __shared__ float merge_space[];  // [kWarps][kMmaRows][HD] outputs, then max and sum
  __shared__ int32_t block_ids[kMaxPartitionTokens];
  __shared__ bool bad_block;

  const PagedCache& cache = p.cache;
  const WorkItem w = work_item(p, plan, kMmaRows);
  wait_for_dependencies();
  Partition part;
  if (!find_partition<T>(p, plan, w, HD, &part)) return;
  const int64_t begin = part.begin, end = part.end;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int c = lane / 4, q = lane % 4;

  // Q fragments: rows c and c + 8 of the tile (zero beyond the tile's heads).
  uint32_t q_frag[2 * kStepPairs][4];
#pragma unroll
  for (int s = 0; s < kStepPairs; ++s) {
    uint4 rows[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int h = c + 8 * r;
      rows[r] = h < w.heads ? __ldg(reinterpret_cast<const uint4*>(
                                  static_cast<const T*>(p.query) + (w.out_row + h) * HD +
                                  32 * s + 8 * q))
                            : make_uint4(0, 0, 0, 0);
    }
    q_frag[2 * s][0] = rows[0].x;
    q_frag[2 * s][1] = rows[1].x;
    q_frag[2 * s][2] = rows[0].y;
    q_frag[2 * s][3] = rows[1].y;
    q_frag[2 * s + 1][0] = rows[0].z;
    q_frag[2 * s + 1][1] = rows[1].z;
    q_frag[2 * s + 1][2] = rows[0].w;
    q_frag[2 * s + 1][3] = rows[1].w;
  }
  float score_scale = p.softmax_scale * kLog2e;
  if constexpr (Storage::kQuantized) score_scale *= __ldg(cache.key_scale + w.kv_head);

  float out[kDimTiles][4];
#pragma unroll
  for (int j = 0; j < kDimTiles; ++j) out[j][0] = out[j][1] = out[j][2] = out[j][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's columns only; summed over the quad at the end

  const auto* key = static_cast<const Element*>(cache.key);
  const auto* value = static_cast<const Element*>(cache.value);
  int64_t block_base = 0;  // of the current window
  auto row_offset = [&](int64_t t) {
    const int local = static_cast<int>(t - block_base);
    return cache_row_offset(cache, block_ids[local / cache.block_size], w.kv_head,
                            local % cache.block_size);
  };

    // Block ids go through shared memory one window of kMaxPartitionTokens tokens at a time.
  for (int64_t window = begin; window < end; window += kMaxPartitionTokens) {
    const int64_t window_end = min(end, window + kMaxPartitionTokens);
    if (!load_block_ids(cache, part.seq, window, window_end, block_ids, &bad_block)) {
      write_empty_partition<T>(p, plan, w, HD, true);
      return;
    }
    block_base = (window / cache.block_size) * cache.block_size;
    for (int64_t chunk = window + static_cast<int64_t>(warp) * kChunkTokens; chunk < window_end;
         chunk += kWarps * kChunkTokens) {
      // K for tokens chunk + 8 t + c, V for tokens chunk + {2q, 2q + 1, 2q + 8, 2q + 9}.
      uint4 k_regs[2][kStepPairs];
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        const int64_t token = chunk + 8 * t + c;
#pragma unroll
        for (int s = 0; s < kStepPairs; ++s) {
          k_regs[t][s] = token < window_end
                             ? load_chunk_as_pairs<T, C>(key + row_offset(token) + 32 * s + 8 * q)
                             : make_uint4(0, 0, 0, 0);
        }
      }
      uint4 v_regs[4][kDimTiles / 8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t token = chunk + 2 * q + (i & 1) + 8 * (i >> 1);
#pragma unroll
        for (int h = 0; h < kDimTiles / 8; ++h) {
          // Zero past the end: a weight of 0 must not meet a NaN.
          v_regs[i][h] = token < window_end ? load_chunk_as_pairs<T, C>(
                                                  value + row_offset(token) + c * kDimTiles + 8 * h)
                                            : make_uint4(0, 0, 0, 0);
        }
      }

      float s_acc[2][4];
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        s_acc[t][0] = s_acc[t][1] = s_acc[t][2] = s_acc[t][3] = 0.0f;
#pragma unroll
        for (int s = 0; s < kStepPairs; ++s) {
          mma_16816<T>(s_acc[t], q_frag[2 * s], k_regs[t][s].x, k_regs[t][s].y);
          mma_16816<T>(s_acc[t], q_frag[2 * s + 1], k_regs[t][s].z, k_regs[t][s].w);
        }
      }
      // Online softmax per row (r = 0: row c, r = 1: row c + 8); columns 2q, 2q + 1 of each tile.
      uint32_t p_frag[4];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float s[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int t = i / 2, col = 2 * q + (i & 1);
          s[i] = chunk + 8 * t + col < window_end ? s_acc[t][2 * r + (i & 1)] * score_scale
                                                  : -INFINITY;
        }
        float m = fmaxf(fmaxf(s[0], s[1]), fmaxf(s[2], s[3]));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
        const float new_max = fmaxf(row_max[r], m);
        // new_max is finite: every chunk holds at least one token below `end`.
        const float correction = exp2f(row_max[r] - new_max);
        row_max[r] = new_max;
        float e[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) e[i] = exp2f(s[i] - new_max);
        row_sum[r] = row_sum[r] * correction + (e[0] + e[1]) + (e[2] + e[3]);
#pragma unroll
        for (int j = 0; j < kDimTiles; ++j) {
          out[j][2 * r] *= correction;
          out[j][2 * r + 1] *= correction;
        }
        p_frag[r] = pack2<T>(e[0], e[1]);      // tile 0: a0 (row c) / a1 (row c + 8)
        p_frag[2 + r] = pack2<T>(e[2], e[3]);  // tile 1: a2 / a3
      }
#pragma unroll
      for (int j = 0; j < kDimTiles; ++j) {
        const int h = j / 8, i = j % 8;  // dim c * kDimTiles + j is element i of load h
        auto element_pair = [&](const uint4& a, const uint4& b) {
          const uint32_t wa = (&a.x)[i / 2], wb = (&b.x)[i / 2];
          return __byte_perm(wa, wb, (i & 1) ? 0x7632 : 0x5410);
        };
        mma_16816<T>(out[j], p_frag, element_pair(v_regs[0][h], v_regs[1][h]),
                     element_pair(v_regs[2][h], v_regs[3][h]));
      }
    }

  }

  // Merge the warps: each writes its rows' state, the block combines them.
  float* warp_out = merge_space;                               // [kWarps][kMmaRows][HD]
  float* warp_max = merge_space + kWarps * kMmaRows * HD;      // [kWarps][kMmaRows]
  float* warp_sum = warp_max + kWarps * kMmaRows;              // [kWarps][kMmaRows]
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = row_sum[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = c + 8 * r;
    if (q == 0) {
      warp_max[warp * kMmaRows + row] = row_max[r];
      warp_sum[warp * kMmaRows + row] = sum;
    }
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int dim = (2 * q + k) * kDimTiles + j;
        warp_out[(warp * kMmaRows + row) * HD + dim] = out[j][2 * r + k];
      }
    }
  }
  __syncthreads();
  allow_dependent_launch();
  float value_scale = 1.0f;
  if constexpr (Storage::kQuantized) value_scale = __ldg(cache.value_scale + w.kv_head);
  merge_and_write<T, kWarps, kMmaRows, HD>(p, plan, w, warp_max, warp_sum, warp_out, value_scale);
}

}  // namespace fdops::attention
