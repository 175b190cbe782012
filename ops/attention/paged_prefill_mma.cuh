// Tiled tensor-core prefill attention over the paged cache with mma.sync (every SM; head dims
// 64, 128 and 256; c16, int8 and fp8 caches), FlashAttention-2 style: a block takes 128 query
// rows of one sequence and one KV head (the work list and row packing of
// paged_prefill_common.cuh) and streams the K/V tiles its rows can see through shared memory
// once; each of its eight warps computes 16 of the rows with mma.sync m16n8k16 and an online
// softmax in fp32, and a warp without rows (short chunks, decode tokens) only helps with the
// copies. On SM 9.0, 16-bit caches at head dims 64 and 128 take the warp-specialised wgmma
// kernel instead (paged_prefill_wgmma.cuh).
//
// Memory pipeline: K/V tiles of 64 tokens (32 at head dim 256, whose output accumulators take
// the registers) are copied with cp.async by all threads into three shared-memory stages, the
// block-table lookup done per row by the copying threads, so two tiles are in flight while one
// is computed. 128-row blocks halve the K/V traffic from L2 per FLOP against 64-row ones.
// Fragments come from shared memory as in the decode MMA kernel (paged_attention_mma.cuh),
// whose functions this kernel shares.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/attention/cache_storage.cuh"
#include "ops/attention/paged_attention_common.cuh"
#include "ops/attention/paged_attention_mma.cuh"
#include "ops/attention/paged_prefill_common.cuh"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"

namespace fdops::attention {

inline constexpr int kPrefillWarps = kPrefillRows / kMmaRows;
inline constexpr int kPrefillThreads = 32 * kPrefillWarps;

// Geometry of the K/V tiles: per-row layout and swizzles as in the decode kernel's stages.
template <typename T, CacheType C, int HD>
struct PrefillTile {
  using Row = MmaTile<T, C, HD>;
  using Element = typename Row::Element;
  static constexpr int kTokens = HD <= 128 ? 64 : 32;  // 256-dim rows: registers for O
  static constexpr int kChunks = kTokens / kChunkTokens;
  static constexpr int kStages = 3;
  static constexpr int kRowPieces = Row::kRowPieces;
  static constexpr int kStageBytes = 2 * kTokens * Row::kRowBytes;  // K, then V
  static constexpr int kSharedBytes = kStages * kStageBytes;

  // Where 16-byte piece `piece` of K (V) row `row` goes, in bytes from the stage's start.
  __device__ __forceinline__ static uint32_t k_offset(int row, int piece) {
    return 16 * Row::k_piece(row, piece);
  }
  __device__ __forceinline__ static uint32_t v_offset(int row, int piece) {
    return kTokens * Row::kRowBytes + 16 * Row::v_piece(row, piece);
  }
};

// Copies the K and V rows of tokens first .. first + Tile::kTokens - 1 into a stage at shared
// address `stage`, split over kCopyThreads threads (`thread`: this one's index among them);
// rows from `end` on are zeros. A block id outside the cache is not read and sets *bad_block.
// kLanesPerRow consecutive threads share a row, each taking every kLanesPerRow-th 16-byte
// piece of it, so a warp's copies read whole 32-byte sectors of 32 / kLanesPerRow rows and a
// thread looks up one block id per kLanesPerRow * kTokens / kCopyThreads pieces.
template <typename Tile, int kCopyThreads, int kLanesPerRow = Tile::kRowPieces>
__device__ __forceinline__ void copy_kv_tile(const PagedCache& cache, const SplitPlan& plan,
                                             const int32_t* table, int kv_head, int64_t first,
                                             int64_t end, uint32_t stage, int thread,
                                             int* bad_block) {
  constexpr int kRowsPerPass = kCopyThreads / kLanesPerRow;
  constexpr int kPieces = Tile::kRowPieces / kLanesPerRow;  // per thread and row
  static_assert(Tile::kRowPieces % kLanesPerRow == 0 && kLanesPerRow % 2 == 0 &&
                    kCopyThreads % kLanesPerRow == 0 && Tile::kTokens % kRowsPerPass == 0,
                "copies split evenly, in whole sectors");
  const auto* key = static_cast<const uint8_t*>(cache.key);
  const auto* value = static_cast<const uint8_t*>(cache.value);
  const int lane_in_row = thread % kLanesPerRow;
#pragma unroll
  for (int pass = 0; pass < Tile::kTokens / kRowsPerPass; ++pass) {
    const int row = thread / kLanesPerRow + kRowsPerPass * pass;
    const int64_t token = first + row;
    int64_t offset = 0;  // a valid address even for rows not read
    int bytes = 0;
    if (token < end) {
      const uint32_t block = plan.block_size.quotient(static_cast<uint32_t>(token));
      const uint32_t in_block = static_cast<uint32_t>(token) - block * plan.block_size.divisor;
      const int32_t id = __ldg(table + block);
      if (id >= 0 && id < cache.num_blocks) {
        offset = cache_row_offset(cache, id, kv_head, static_cast<int>(in_block)) *
                 static_cast<int64_t>(sizeof(typename Tile::Element));
        bytes = 16;
      } else {
        *bad_block = 1;
      }
    }
#pragma unroll
    for (int i = 0; i < kPieces; ++i) {
      const int piece = lane_in_row + kLanesPerRow * i;
      const int64_t at = bytes == 0 ? 0 : offset + 16 * piece;
      copy_async_16(stage + Tile::k_offset(row, piece), key + at, bytes);
      copy_async_16(stage + Tile::v_offset(row, piece), value + at, bytes);
    }
  }
}

template <typename T, CacheType C, int HD>
__global__ void __launch_bounds__(kPrefillThreads)
    paged_prefill_mma_kernel(AttentionParams p, SplitPlan plan) {
  using Tile = PrefillTile<T, C, HD>;
  using M = MmaInput<T, C>;
  constexpr bool kQuantized = CacheStorage<T, C>::kQuantized;
  constexpr int kScoreTiles = Tile::kTokens / 8;

  extern __shared__ __align__(128) uint8_t stages[];  // kStages x (K tile, V tile)
  __shared__ int bad_block;
  const PagedCache& cache = p.cache;
  wait_for_dependencies();
  if (threadIdx.x == 0) bad_block = 0;
  if (!prefill_offsets_valid<kPrefillThreads>(p)) {
    fill_output_nan<T, HD, kPrefillThreads>(p);
    return;
  }
  PrefillBlock blk;
  if (!locate_prefill_block(p, plan, &blk)) return;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int c = lane / 4, q = lane % 4;
  PrefillRows<HD> rows;
  rows.init(blk, kMmaRows * warp, c);
  if (blk.bad_length || blk.begin >= blk.end) {  // NaN rows, or a partition past them
    rows.template write<T, OutputLayout::kMmaSync>(p, plan, blk.bad_length, 1.0f, q);
    return;
  }
  QueryFragments<T, C, HD> query;
  {
    const T* query_rows[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      query_rows[r] = rows.valid[r] ? static_cast<const T*>(p.query) + rows.out_row[r] * HD
                                    : nullptr;
    }
    query.load(query_rows, q);
  }
  // The warp's first position: K/V tiles that end at or before it need no mask. Warps without
  // rows (short chunks, decode tokens, a sequence's last tile) only copy.
  const int64_t warp_position = blk.position(min(blk.row0 + kMmaRows * warp, blk.last_row));
  const bool computes = blk.row0 + kMmaRows * warp <= blk.last_row;

  const int32_t* table =
      cache.block_tables + static_cast<int64_t>(blk.seq) * cache.max_blocks_per_seq;
  const int tiles = static_cast<int>((blk.end - blk.begin + Tile::kTokens - 1) / Tile::kTokens);
  auto issue = [&](int i) {  // one commit group per tile, empty past the last
    if (i < tiles) {
      copy_kv_tile<Tile, kPrefillThreads>(
          cache, plan, table, blk.kv_head, blk.begin + int64_t{Tile::kTokens} * i, blk.end,
          shared_address(stages + (i % Tile::kStages) * Tile::kStageBytes), threadIdx.x,
          &bad_block);
    }
    copy_async_commit();
  };
#pragma unroll
  for (int i = 0; i < Tile::kStages - 1; ++i) issue(i);
  float value_scale = 1.0f, key_scale = 1.0f;
  if constexpr (kQuantized) {
    key_scale = __ldg(cache.key_scale + blk.kv_head);
    value_scale = __ldg(cache.value_scale + blk.kv_head);
  }
  query.build(p.softmax_scale * kLog2e * key_scale);

  for (int i = 0; i < tiles; ++i) {
    issue(i + Tile::kStages - 1);  // into the stage computed in iteration i - 1
    copy_async_wait<Tile::kStages - 1>();
    __syncthreads();  // every thread's copies of tile i have landed
    const uint8_t* stage = stages + (i % Tile::kStages) * Tile::kStageBytes;
    const int64_t first = blk.begin + int64_t{Tile::kTokens} * i;
    if (computes) {
      float s[kScoreTiles][4] = {};
#pragma unroll
      for (int k = 0; k < Tile::kChunks; ++k) {
        score_chunk<T, C, HD>(stage + k * kChunkTokens * Tile::Row::kRowBytes, query.frag,
                              &s[2 * k], c, q);
      }
      rows.scale_and_mask(s, first, first + Tile::kTokens - 1 > warp_position,
                          query.score_scale, q);
      online_softmax(s, rows.row_max, rows.row_sum, rows.out);
#pragma unroll
      for (int k = 0; k < Tile::kChunks; ++k) {
        uint32_t p_frag[4];
        weight_fragment<M>(s, 2 * k, p_frag);
        accumulate_values<T, C, HD>(
            stage + Tile::kTokens * Tile::Row::kRowBytes + k * kChunkTokens * Tile::Row::kRowBytes,
            p_frag, rows.out, c, q);
      }
    }
    __syncthreads();  // all warps are done with this stage before it is refilled
  }
  copy_async_wait<0>();
  allow_dependent_launch();
  rows.template write<T, OutputLayout::kMmaSync>(p, plan, bad_block != 0, value_scale, q);
}

}  // namespace fdops::attention
