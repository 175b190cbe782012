// Tiled tensor-core prefill attention over the paged cache (head dims 64, 128 and 256; c16, int8
// and fp8 caches), FlashAttention-2 style: a block takes 128 query rows of one sequence and one
// KV head and streams the K/V tiles its rows can see through shared memory once; each of its
// eight warps computes 16 of the rows with mma.sync m16n8k16 and an online softmax in fp32. In
// the SM 9.0 modules, 16-bit caches at head dims 64 and 128 use Hopper's warpgroup MMA instead
// (two warpgroups of 64 rows, paged_prefill_wgmma.cuh); everything else in this file is shared.
//
// Rows are (token, query head) pairs of a sequence's chunk, packed token-major over the query
// heads sharing the KV head (row = token * group + head), so one K/V tile serves the whole
// group and any group size fills the 16-row MMA tiles. Row positions grow with the row index,
// so the causal mask is applied only to the K/V tiles that reach past a warp's first position,
// and a warp without rows (short chunks, decode tokens) only helps with the copies.
//
// Work list without host-side lengths: sequence b owns tiles first_tile(b) ..
// first_tile(b + 1) - 1 with first_tile(b) = floor(cu[b] * group / 128) + b, at least the
// ceil(q_len * group / 128) it needs (a spare one at most, which returns at once), so the grid
// is floor(T * group / 128) + batch tiles wide and a block finds its sequence by bisection.
// Blocks take tiles from the last one down: late rows have the longest contexts and start
// first. When the tiles alone leave the GPU half idle, contexts are also split into
// partitions (grid.z) whose partial results the decode's merge kernel combines.
//
// Memory pipeline: K/V tiles of 64 tokens (32 at head dim 256, whose output accumulators take
// the registers) are copied with cp.async by all threads into three shared-memory stages, the
// block-table lookup done per row by the copying threads, so two tiles are in flight while one
// is computed. 128-row blocks halve the K/V traffic from L2 per FLOP against 64-row ones.
// Fragments come from shared memory as in the decode MMA kernel (paged_attention_mma.cuh),
// whose functions this kernel shares.
//
// Metadata is re-checked cheaply on the device so that no bad input leads outside the output
// or the cache: cu_seqlens_q not rising from 0 to the row count turns the whole output NaN, a
// sequence length outside [q_len, capacity] its rows, a block id outside the cache the rows of
// the tile that reads it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "ops/attention/attention.h"
#include "ops/attention/cache_storage.cuh"
#include "ops/attention/paged_attention_common.cuh"
#include "ops/attention/paged_attention_mma.cuh"
#include "ops/attention/paged_prefill_wgmma.cuh"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"

namespace fdops::attention {

inline constexpr int kPrefillWarps = 8;
inline constexpr int kPrefillThreads = 32 * kPrefillWarps;
inline constexpr int kPrefillRows = kPrefillWarps * kMmaRows;  // (token, head) rows per block

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
  static constexpr int kCopies = kTokens * kRowPieces / kPrefillThreads;  // per thread
  static_assert(kTokens * kRowPieces % kPrefillThreads == 0, "copies split evenly");

  // Where 16-byte piece `piece` of K (V) row `row` goes, in bytes from the stage's start.
  __device__ __forceinline__ static uint32_t k_offset(int row, int piece) {
    return 16 * Row::k_piece(row, piece);
  }
  __device__ __forceinline__ static uint32_t v_offset(int row, int piece) {
    return kTokens * Row::kRowBytes + 16 * Row::v_piece(row, piece);
  }
};

// The first tile of sequence b (see the top of this file).
__device__ __forceinline__ int64_t first_prefill_tile(const int32_t* cu_seqlens_q, int b,
                                                      int group) {
  return static_cast<int64_t>(__ldg(cu_seqlens_q + b)) * group / kPrefillRows + b;
}

// Tiles of a launch over `rows` query tokens of `batch` sequences: the grid's x.
inline int64_t prefill_tiles(int64_t rows, int64_t batch, int group) {
  return rows * group / kPrefillRows + batch;
}

// Copies the K and V rows of tokens first .. first + kTokens - 1 into a stage; rows from `end`
// on are zeros. A block id outside the cache is not read and sets *bad_block.
template <typename Tile>
__device__ __forceinline__ void copy_kv_tile(const PagedCache& cache, const SplitPlan& plan,
                                             const int32_t* table, int kv_head, int64_t first,
                                             int64_t end, uint8_t* stage, int* bad_block) {
  const auto* key = static_cast<const uint8_t*>(cache.key);
  const auto* value = static_cast<const uint8_t*>(cache.value);
  const uint32_t stage_address = shared_address(stage);
#pragma unroll
  for (int i = 0; i < Tile::kCopies; ++i) {
    const int index = threadIdx.x + kPrefillThreads * i;
    const int row = index / Tile::kRowPieces, piece = index % Tile::kRowPieces;
    const int64_t token = first + row;
    int64_t offset = 0;  // a valid address even for rows not read
    int bytes = 0;
    if (token < end) {
      const uint32_t block = plan.block_size.quotient(static_cast<uint32_t>(token));
      const uint32_t in_block = static_cast<uint32_t>(token) - block * plan.block_size.divisor;
      const int32_t id = __ldg(table + block);
      if (id >= 0 && id < cache.num_blocks) {
        offset = cache_row_offset(cache, id, kv_head, static_cast<int>(in_block)) *
                     static_cast<int64_t>(sizeof(typename Tile::Element)) +
                 16 * piece;
        bytes = 16;
      } else {
        *bad_block = 1;
      }
    }
    copy_async_16(stage_address + Tile::k_offset(row, piece), key + offset, bytes);
    copy_async_16(stage_address + Tile::v_offset(row, piece), value + offset, bytes);
  }
}

// Every element of this block's share of the output becomes NaN: the blocks of grid.z == 0
// together cover [rows, num_heads, HD] (grid.x * kPrefillRows >= rows * group).
template <typename T, int HD>
__device__ void fill_output_nan(const AttentionParams& p) {
  if (blockIdx.z != 0) return;
  const int64_t total = p.rows * p.num_heads * HD;
  const int64_t share = static_cast<int64_t>(kPrefillRows) * HD;
  const int64_t begin = (static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x) * share;
  for (int64_t i = begin + threadIdx.x; i < begin + share && i < total; i += kPrefillThreads) {
    static_cast<T*>(p.out)[i] = from_float<T>(nan_value());
  }
}

// Which tiles a group's kernel uses: wgmma ones in the SM 9.0 modules for 16-bit caches at head
// dims up to 128, the mma.sync ones otherwise (and in those modules' PTX for newer GPUs, which
// lacks wgmma: FDOPS_WGMMA is 0 there, while the host still plans for the wgmma tiles).
template <CacheType C, int HD>
inline constexpr bool kWgmmaPrefill = FDOPS_SM90_MODULE && C == CacheType::kC16 && HD <= 128;

// (Head dim 256 never uses it; the alias still has to name a valid type.)
template <typename T, CacheType C, int HD>
using WgmmaTile = WgmmaPrefillTile<T, HD <= 128 ? HD : 128, kPrefillRows, kPrefillThreads>;

// What the host plans with: dynamic shared memory and the tokens per tile (partitions are
// multiples of it).
template <typename T, CacheType C, int HD>
constexpr int prefill_shared_bytes() {
  constexpr int kMma = PrefillTile<T, C, HD>::kSharedBytes;
  if constexpr (kWgmmaPrefill<C, HD>) {
    return WgmmaTile<T, C, HD>::kSharedBytes > kMma ? WgmmaTile<T, C, HD>::kSharedBytes : kMma;
  }
  return kMma;
}
template <typename T, CacheType C, int HD>
constexpr int prefill_tile_tokens() {
  if constexpr (kWgmmaPrefill<C, HD>) return WgmmaTile<T, C, HD>::kTokens;
  return PrefillTile<T, C, HD>::kTokens;
}

template <typename T, CacheType C, int HD>
__global__ void __launch_bounds__(kPrefillThreads)
    paged_prefill_mma_kernel(AttentionParams p, SplitPlan plan) {
  constexpr bool kWgmma = kWgmmaPrefill<C, HD> && FDOPS_WGMMA;
  using Tile = std::conditional_t<kWgmma, WgmmaTile<T, C, HD>, PrefillTile<T, C, HD>>;
  using M = MmaInput<T, C>;
  constexpr bool kQuantized = CacheStorage<T, C>::kQuantized;
  constexpr int kDimTiles = HD / 8;  // n-tiles of P V, and head dims per thread and row
  constexpr int kScoreTiles = Tile::kTokens / 8;

  extern __shared__ __align__(128) uint8_t dynamic_shared[];
  __shared__ int bad_block;
  // mma.sync: kStages x (K tile, V tile). wgmma: the query tile, then the stages, from a
  // 1024-byte boundary (its swizzle atoms).
  uint8_t* shared = dynamic_shared;
  if constexpr (kWgmma) {
    shared += (Tile::kAtomBytes - shared_address(dynamic_shared) % Tile::kAtomBytes) %
              Tile::kAtomBytes;
  }
  uint8_t* stages = shared;
  if constexpr (kWgmma) stages += Tile::kQueryBytes;

  const PagedCache& cache = p.cache;
  const int group = p.num_heads / cache.kv_heads;
  const int kv_head = blockIdx.y;
  const int64_t tile = gridDim.x - 1 - static_cast<int64_t>(blockIdx.x);
  wait_for_dependencies();

  // cu_seqlens_q must rise from 0 to rows, or no sequence's rows are known.
  int bad = 0;
  for (int b = threadIdx.x; b <= p.batch; b += kPrefillThreads) {
    const int32_t cu = __ldg(p.cu_seqlens_q + b);
    bad |= b == 0 ? cu != 0 : cu < __ldg(p.cu_seqlens_q + b - 1);
    bad |= b == p.batch && cu != p.rows;
  }
  if (threadIdx.x == 0) bad_block = 0;
  if (__syncthreads_or(bad)) {
    fill_output_nan<T, HD>(p);
    return;
  }

  int seq = 0, next = p.batch;  // first_prefill_tile(seq) <= tile < first_prefill_tile(next)
  while (next - seq > 1) {
    const int mid = (seq + next) / 2;
    if (first_prefill_tile(p.cu_seqlens_q, mid, group) <= tile) {
      seq = mid;
    } else {
      next = mid;
    }
  }
  const int64_t first_token = __ldg(p.cu_seqlens_q + seq);
  const int64_t q_len = __ldg(p.cu_seqlens_q + seq + 1) - first_token;
  const int64_t seq_rows = q_len * group;
  const int64_t row0 = (tile - first_prefill_tile(p.cu_seqlens_q, seq, group)) * kPrefillRows;
  if (row0 >= seq_rows) return;  // a spare tile
  const int64_t last_row = min(seq_rows, row0 + kPrefillRows) - 1;

  const int64_t seq_len = __ldg(p.seq_lens + seq);
  const int64_t capacity = static_cast<int64_t>(cache.max_blocks_per_seq) * cache.block_size;
  const bool bad_length = seq_len < q_len || seq_len > capacity;
  const int64_t start = seq_len - q_len;  // position of the chunk's first token
  const int64_t max_position = start + last_row / group;

  // This partition's tokens: [begin, end) of the positions the tile's rows see.
  const int64_t begin = static_cast<int64_t>(blockIdx.z) * plan.partition_tokens;
  const bool last_split = static_cast<int>(blockIdx.z) == plan.num_splits - 1;
  const int64_t end =
      last_split ? max_position + 1 : min(max_position + 1, begin + plan.partition_tokens);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int c = lane / 4, q = lane % 4;
  // The output row of block row `row` (packed token-major over the group's heads).
  auto output_row = [&](int64_t row) {
    return (first_token + row / group) * p.num_heads + kv_head * group + row % group;
  };
  // The thread's rows c and c + 8 of its warp's 16: their output rows and positions. Rows past
  // the sequence's take the last row's position (finite scores) and are never written.
  int64_t out_row[2];
  int64_t position[2];
  bool valid[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = row0 + kMmaRows * warp + c + 8 * r;
    valid[r] = row <= last_row;
    const int64_t packed = valid[r] ? row : last_row;
    out_row[r] = output_row(packed);
    position[r] = start + packed / group;
  }
  // mma.sync: the query's fragments in registers. wgmma: the tile's query rows go to shared
  // memory with the first K/V tile (rows past the sequence's as zeros).
  QueryFragments<T, C, HD> query;
  if constexpr (!kWgmma) {
    const T* query_rows[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      query_rows[r] = valid[r] ? static_cast<const T*>(p.query) + out_row[r] * HD : nullptr;
    }
    query.load(query_rows, q);
  }
  // The warp's first position: K/V tiles that end at or before it need no mask. Warps without
  // rows (short chunks, decode tokens, a sequence's last tile) only copy; with wgmma a
  // warpgroup computes if any of its warps has rows.
  const int64_t warp_position = start + min(row0 + kMmaRows * warp, last_row) / group;
  const bool computes =
      kWgmma ? row0 + 4 * kMmaRows * (warp / 4) <= last_row : row0 + kMmaRows * warp <= last_row;

  float out[kDimTiles][4];
#pragma unroll
  for (int j = 0; j < kDimTiles; ++j) out[j][0] = out[j][1] = out[j][2] = out[j][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's columns only; summed over the quad at the end

  // Writes the rows' results: the output (one partition) or the partition's normalised output
  // and log2-sum-exp (-inf for a row that saw no token); NaN where the metadata is bad. The
  // thread's head dims: mma.sync, (2q + k) * kDimTiles + j; wgmma, 8j + 2q + k.
  auto write_rows = [&](bool bad_rows, float value_scale) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = row_sum[r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      if (!valid[r]) continue;
      const float factor = value_scale / sum;
      T* out_values = static_cast<T*>(p.out) + out_row[r] * HD;
      if (plan.num_splits == 1 && kWgmma) {
#pragma unroll
        for (int j = 0; j < kDimTiles; ++j) {
          const float v0 = bad_rows ? nan_value() : out[j][2 * r] * factor;
          const float v1 = bad_rows ? nan_value() : out[j][2 * r + 1] * factor;
          *reinterpret_cast<uint32_t*>(out_values + 8 * j + 2 * q) = pack2<T>(v0, v1);
        }
      } else if (plan.num_splits == 1) {
        // Head dims (2q + k) * kDimTiles + j: kDimTiles consecutive ones per k, 8 per store.
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
            *reinterpret_cast<uint4*>(out_values + (2 * q + k) * kDimTiles + j0) =
                *reinterpret_cast<const uint4*>(values);
          }
        }
      } else {
        const int64_t index = out_row[r] * plan.num_splits + blockIdx.z;
        if (q == 0) {
          plan.partial_lse[index] = bad_rows        ? nan_value()
                                    : sum == 0.0f ? -INFINITY
                                                  : row_max[r] + log2f(sum);
        }
        if (!bad_rows && sum != 0.0f) {
          float* partial = plan.partial_out + index * HD;
          if constexpr (kWgmma) {
#pragma unroll
            for (int j = 0; j < kDimTiles; ++j) {
              *reinterpret_cast<float2*>(partial + 8 * j + 2 * q) =
                  make_float2(out[j][2 * r] * factor, out[j][2 * r + 1] * factor);
            }
          } else {
#pragma unroll
            for (int k = 0; k < 2; ++k) {
#pragma unroll
              for (int j0 = 0; j0 < kDimTiles; j0 += 4) {
                *reinterpret_cast<float4*>(partial + (2 * q + k) * kDimTiles + j0) =
                    make_float4(out[j0][2 * r + k] * factor, out[j0 + 1][2 * r + k] * factor,
                                out[j0 + 2][2 * r + k] * factor,
                                out[j0 + 3][2 * r + k] * factor);
              }
            }
          }
        }
      }
    }
  };
  if (bad_length || begin >= end) {  // NaN rows, or a partition past the rows' positions
    write_rows(bad_length, 1.0f);
    return;
  }

  if constexpr (kWgmma) {
#pragma unroll
    for (int i = 0; i < Tile::kQueryCopies; ++i) {
      const int index = threadIdx.x + kPrefillThreads * i;
      const int row = index / Tile::kRowPieces, piece = index % Tile::kRowPieces;
      const bool inside = row0 + row <= last_row;
      const T* source = static_cast<const T*>(p.query) +
                        (inside ? output_row(row0 + row) * HD + 8 * piece : 0);
      copy_async_16(shared_address(shared) + Tile::query_offset(row, piece), source,
                    inside ? 16 : 0);
    }
  }
  const int32_t* table =
      cache.block_tables + static_cast<int64_t>(seq) * cache.max_blocks_per_seq;
  const int tiles = static_cast<int>((end - begin + Tile::kTokens - 1) / Tile::kTokens);
  auto issue = [&](int i) {  // one commit group per tile, empty past the last
    if (i < tiles) {
      copy_kv_tile<Tile>(cache, plan, table, kv_head, begin + int64_t{Tile::kTokens} * i, end,
                         stages + (i % Tile::kStages) * Tile::kStageBytes, &bad_block);
    }
    copy_async_commit();
  };
#pragma unroll
  for (int i = 0; i < Tile::kStages - 1; ++i) issue(i);
  float key_scale = 1.0f, value_scale = 1.0f;
  if constexpr (kQuantized) {
    key_scale = __ldg(cache.key_scale + kv_head);
    value_scale = __ldg(cache.value_scale + kv_head);
  }
  float score_scale[2];
  if constexpr (kWgmma) {
    score_scale[0] = score_scale[1] = p.softmax_scale * kLog2e;
  } else {
    query.build(p.softmax_scale * kLog2e * key_scale);
    score_scale[0] = query.score_scale[0];
    score_scale[1] = query.score_scale[1];
  }

  for (int i = 0; i < tiles; ++i) {
    issue(i + Tile::kStages - 1);  // into the stage computed in iteration i - 1
    copy_async_wait<Tile::kStages - 1>();
#if FDOPS_WGMMA
    if constexpr (kWgmma) wgmma::fence_shared_writes();
#endif
    __syncthreads();  // every thread's copies of tile i have landed
    const uint8_t* stage = stages + (i % Tile::kStages) * Tile::kStageBytes;
    const int64_t first = begin + int64_t{Tile::kTokens} * i;
    if (!computes) {
      __syncthreads();  // the other warps' reads of the stage
      continue;
    }

    float s[kScoreTiles][4] = {};
    if constexpr (kWgmma) {
#if FDOPS_WGMMA
      wgmma_scores<M, Tile, HD>(shared_address(shared), 4 * kMmaRows * (warp / 4),
                                shared_address(stage), s);
#endif
    } else {
#pragma unroll
      for (int k = 0; k < Tile::kChunks; ++k) {
        score_chunk<T, C, HD>(stage + k * kChunkTokens * Tile::Row::kRowBytes, query.frag,
                              &s[2 * k], c, q);
      }
    }
    // s[t][e]: token first + 8t + 2q + (e & 1) of row r = e / 2; causally masked on diagonals.
    const bool diagonal = first + Tile::kTokens - 1 > warp_position;
#pragma unroll
    for (int t = 0; t < kScoreTiles; ++t) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool visible = !diagonal || first + 8 * t + 2 * q + (e & 1) <= position[e / 2];
        s[t][e] = visible ? s[t][e] * score_scale[e / 2] : -INFINITY;
      }
    }
    online_softmax(s, row_max, row_sum, out);
    if constexpr (kWgmma) {
#if FDOPS_WGMMA
      uint32_t weights[Tile::kTokens / 16][4];
#pragma unroll
      for (int k = 0; k < Tile::kTokens / 16; ++k) weight_fragment<M>(s, 2 * k, weights[k]);
      wgmma_values<M, Tile, HD>(shared_address(stage), weights, out);
#endif
    } else {
#pragma unroll
      for (int k = 0; k < Tile::kChunks; ++k) {
        uint32_t p_frag[4];
        weight_fragment<M>(s, 2 * k, p_frag);
        accumulate_values<T, C, HD>(
            stage + Tile::kTokens * Tile::Row::kRowBytes + k * kChunkTokens * Tile::Row::kRowBytes,
            p_frag, out, c, q);
      }
    }
    __syncthreads();  // all warps are done with this stage before it is refilled
  }
  copy_async_wait<0>();
  allow_dependent_launch();
  write_rows(bad_block != 0, value_scale);
}

}  // namespace fdops::attention
