// The tiled prefill kernel on Hopper (SM 9.0 GPUs, 16-bit caches, head dims 64 and 128),
// warp-specialised in the manner of FlashAttention-3: of a block's three warpgroups, one only
// copies and two only compute, so the tensor cores are not left idle while a block waits for
// its own copies or for a barrier over all its warps.
//
// - Warpgroup 0 gathers 128-token K/V tiles from the paged cache (the block-table lookups and
//   cp.async of copy_kv_tile) into a ring of stages, the query tile with the first. When a
//   tile has landed it makes it visible to the tensor cores (fence.proxy.async) and says so on
//   the stage's "filled" mbarrier; it refills a stage after the computing warps' arrivals on
//   its "emptied" mbarrier. It keeps kStages - 2 tiles in flight beyond the one it hands over.
// - Warpgroups 1 and 2 take 64 of the block's 128 rows each with warpgroup MMAs
//   (ops/common/wgmma.cuh): S = Q K^T with both operands in shared memory in the 128-byte
//   swizzled layout, O += P V with P from the registers S left and V as the cache stores it
//   (an MN-major operand). Per tile a warpgroup issues S of tile i together with P V of tile
//   i - 1, and runs tile i's softmax while that P V is still in flight; only the rescale of O
//   waits for it. The two warpgroups take turns to issue (named barriers 1 and 2), so one's
//   MMAs run during the other's softmax.
// - setmaxnreg moves registers from the copier (56) to the computing warpgroups (224).
//
// The work list, row packing, metadata checks and output writes are the mma.sync kernel's
// (paged_prefill_common.cuh); the launch picks this kernel only on an SM 9.0 GPU, since the
// sm90 module's PTX (for newer GPUs) has no wgmma.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/paged_attention_mma.cuh"
#include "ops/attention/paged_prefill_common.cuh"
#include "ops/attention/paged_prefill_mma.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/warp_roles.cuh"
#include "ops/common/wgmma.cuh"

namespace fdops::attention {

inline constexpr int kWgmmaPrefillThreads = 384;  // the copier and two computing warpgroups
inline constexpr int kWarpgroupThreads = 128;
inline constexpr int kWarpgroupRows = 64;  // rows of a computing warpgroup

// Shared-memory geometry: the query tile, then kStages stages of (K tile, V tile), each in
// wgmma's swizzled layout (64-element column blocks of `rows` x 128 bytes) from a 1024-byte
// boundary.
template <typename T, int HD>
struct WgmmaPrefillTile {
  static_assert(sizeof(T) == 2 && (HD == 64 || HD == 128), "16-bit rows of 64 or 128 dims");
  using Element = T;
  static constexpr int kTokens = 128;
  // As many stages as fit next to the query tile in 227 KB at head dim 128; 4 at 64.
  static constexpr int kStages = HD == 128 ? 3 : 4;
  static constexpr int kAhead = kStages - 2;  // tiles in flight beyond the one handed over
  static constexpr int kRowPieces = HD / 8;   // 16-byte pieces per row
  static constexpr int kOperandBytes = kTokens * HD * 2;  // a K or V tile
  static constexpr int kStageBytes = 2 * kOperandBytes;
  static constexpr int kQueryBytes = kPrefillRows * HD * 2;
  static constexpr int kAtomBytes = 1024;  // swizzle atoms start on this boundary
  static constexpr int kSharedBytes = kAtomBytes + kQueryBytes + kStages * kStageBytes;

  __device__ __forceinline__ static uint32_t k_offset(int row, int piece) {
    return wgmma::swizzled_offset(kTokens, row, piece);
  }
  __device__ __forceinline__ static uint32_t v_offset(int row, int piece) {
    return kOperandBytes + wgmma::swizzled_offset(kTokens, row, piece);
  }
  __device__ __forceinline__ static uint32_t query_offset(int row, int piece) {
    return wgmma::swizzled_offset(kPrefillRows, row, piece);
  }
};

// Which groups have this kernel: 16-bit caches at head dims up to 128, in the SM 9.0 modules.
template <CacheType C, int HD>
inline constexpr bool kWgmmaPrefill = FDOPS_SM90_MODULE && C == CacheType::kC16 && HD <= 128;

// (Head dim 256 never uses it; the alias still has to name a valid type.)
template <typename T, int HD>
using WgmmaTile = WgmmaPrefillTile<T, HD <= 128 ? HD : 128>;

#if FDOPS_WGMMA

// Issues s = Q K^T for a warpgroup's 64 rows (one commit group): `query` is the shared address
// of the warpgroup's first row in the query tile, `stage` that of the K/V stage.
template <typename M, typename Tile, int HD>
__device__ __forceinline__ void issue_scores(uint32_t query, uint32_t stage,
                                             float (&s)[Tile::kTokens / 8][4]) {
#pragma unroll
  for (int k = 0; k < HD / 16; ++k) {
    // k-step k: column block k / 4, bytes 32 (k % 4) of its 128-byte rows.
    const uint32_t a = query + (k / 4) * kPrefillRows * 128 + (k % 4) * 32;
    const uint32_t b = stage + (k / 4) * Tile::kTokens * 128 + (k % 4) * 32;
    wgmma::mma_ss<M, Tile::kTokens>(s, wgmma::descriptor(a, 16, 1024),
                                    wgmma::descriptor(b, 16, 1024), k > 0);
  }
  wgmma::commit();
}

// Issues out += P V (one commit group): `weights` holds P as mma.sync A fragments, one per 16
// tokens; V is the stage's second tile, each 16-token k-step two 8-row groups (1024 bytes
// apart), its 64-dim column blocks kTokens * 128 bytes apart.
template <typename M, typename Tile, int HD>
__device__ __forceinline__ void issue_values(uint32_t stage,
                                             const uint32_t (&weights)[Tile::kTokens / 16][4],
                                             float (&out)[HD / 8][4]) {
  const uint32_t values = stage + Tile::kOperandBytes;
#pragma unroll
  for (int k = 0; k < Tile::kTokens / 16; ++k) {
    wgmma::mma_rs_mn_major<M, HD>(
        out, weights[k], wgmma::descriptor(values + k * 16 * 128, Tile::kTokens * 128, 1024));
  }
  wgmma::commit();
}

#endif  // FDOPS_WGMMA

template <typename T, CacheType C, int HD>
__global__ void __launch_bounds__(kWgmmaPrefillThreads, 1)
    paged_prefill_wgmma_kernel(AttentionParams p, SplitPlan plan) {
#if FDOPS_WGMMA
  if constexpr (kWgmmaPrefill<C, HD>) {
    using Tile = WgmmaTile<T, HD>;
    constexpr int kScoreTiles = Tile::kTokens / 8;
    constexpr int kWeightSteps = Tile::kTokens / 16;
    constexpr int kStages = Tile::kStages;

    extern __shared__ __align__(128) uint8_t dynamic_shared[];
    __shared__ __align__(8) uint64_t filled[kStages];
    __shared__ __align__(8) uint64_t emptied[kStages];
    __shared__ int bad_block;
    const uint32_t base = shared_address(dynamic_shared);
    const uint32_t query_tile =
        base + (Tile::kAtomBytes - base % Tile::kAtomBytes) % Tile::kAtomBytes;
    const uint32_t stages = query_tile + Tile::kQueryBytes;
    auto stage_address = [&](int i) { return stages + (i % kStages) * Tile::kStageBytes; };
    auto filled_barrier = [&](int i) { return shared_address(&filled[i % kStages]); };
    auto emptied_barrier = [&](int i) { return shared_address(&emptied[i % kStages]); };

    const PagedCache& cache = p.cache;
    wait_for_dependencies();
    if (threadIdx.x == 0) bad_block = 0;
    if (!prefill_offsets_valid<kWgmmaPrefillThreads>(p)) {
      fill_output_nan<T, HD, kWgmmaPrefillThreads>(p);
      return;
    }
    PrefillBlock blk;
    if (!locate_prefill_block(p, plan, &blk)) return;

    const int role = threadIdx.x / kWarpgroupThreads;  // 0 copies; 1 and 2 compute
    const int warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32;
    const int c = lane / 4, q = lane % 4;
    // Computing warpgroups: those with rows (the first always has some).
    const int computing = blk.row0 + kWarpgroupRows <= blk.last_row ? 2 : 1;
    const int tiles =
        static_cast<int>(blk.begin < blk.end
                             ? (blk.end - blk.begin + Tile::kTokens - 1) / Tile::kTokens
                             : 0);
    const int64_t first_row = kWarpgroupRows * (role - 1) + kMmaRows * warp;  // computing warps
    if (blk.bad_length || tiles == 0) {  // NaN rows, or a partition past the rows' positions
      if (role > 0) {
        PrefillRows<HD> rows;
        rows.init(blk, first_row, c);
        rows.template write<T, OutputLayout::kWgmma>(p, plan, blk.bad_length, 1.0f, q);
      }
      return;
    }
    if (threadIdx.x == 0) {
      for (int s = 0; s < kStages; ++s) {
        warp_roles::mbarrier_init(filled_barrier(s), kWarpgroupThreads);
        warp_roles::mbarrier_init(emptied_barrier(s), 4 * computing);  // one per warp
      }
    }
    __syncthreads();

    if (role == 0) {
      warp_roles::shrink_registers<56>();
      const int thread = threadIdx.x;
      // The query rows go with the first tile (rows past the block's as zeros).
#pragma unroll
      for (int i = 0; i < Tile::kRowPieces; ++i) {
        const int index = thread + kWarpgroupThreads * i;
        const int row = index / Tile::kRowPieces, piece = index % Tile::kRowPieces;
        const bool inside = blk.row0 + row <= blk.last_row;
        const T* source = static_cast<const T*>(p.query) +
                          (inside ? blk.output_row(blk.row0 + row) * HD + 8 * piece : 0);
        copy_async_16(query_tile + Tile::query_offset(row, piece), source, inside ? 16 : 0);
      }
      const int32_t* table =
          cache.block_tables + static_cast<int64_t>(blk.seq) * cache.max_blocks_per_seq;
      // Tile j has landed: make it visible to the MMAs (async proxy) and hand it over.
      auto hand_over = [&](int j) {
        wgmma::fence_shared_writes();
        warp_roles::mbarrier_arrive(filled_barrier(j));
      };
      for (int i = 0; i < tiles; ++i) {
        if (i >= kStages) warp_roles::mbarrier_wait(emptied_barrier(i), (i / kStages - 1) & 1);
        // Four threads a row: a block-id lookup per 4 pieces of a thread instead of per piece
        // (the copier's instructions share the SM's issue slots with the softmax), and each
        // warp's copies still fill whole sectors and every shared-memory bank.
        copy_kv_tile<Tile, kWarpgroupThreads, 4>(cache, plan, table, blk.kv_head,
                                                 blk.begin + int64_t{Tile::kTokens} * i,
                                                 blk.end, stage_address(i), thread, &bad_block);
        copy_async_commit();
        if (i >= Tile::kAhead) {
          copy_async_wait<Tile::kAhead>();
          hand_over(i - Tile::kAhead);
        }
      }
      copy_async_wait<0>();
      for (int j = tiles > Tile::kAhead ? tiles - Tile::kAhead : 0; j < tiles; ++j) hand_over(j);
      return;
    }
    if (role > computing) return;
    warp_roles::grow_registers<224>();

    PrefillRows<HD> rows;
    rows.init(blk, first_row, c);
    const int64_t warp_position = blk.position(min(blk.row0 + first_row, blk.last_row));
    const float score_scale[2] = {p.softmax_scale * kLog2e, p.softmax_scale * kLog2e};
    const uint32_t query = query_tile + (role - 1) * kWarpgroupRows * 128;
    // Turns to issue MMAs: warpgroup 1 waits on barrier 1 and passes to barrier 2, warpgroup 2
    // the other way round; each takes one turn per tile, and warpgroup 2 does not pass its
    // last, so that every barrier's arrivals match its waits. Warpgroup 1 goes first.
    const bool take_turns = computing == 2;
    auto take_turn = [&] {
      if (take_turns) warp_roles::sync_threads(role, 2 * kWarpgroupThreads);
    };
    auto pass_turn = [&](int i) {
      if (take_turns && !(role == 2 && i == tiles - 1)) {
        warp_roles::arrive_threads(3 - role, 2 * kWarpgroupThreads);
      }
    };
    if (take_turns && role == 2) warp_roles::arrive_threads(1, 2 * kWarpgroupThreads);
    // This warp has read stage i (its MMAs on it have completed).
    auto release = [&](int i) {
      __syncwarp();
      if (lane == 0) warp_roles::mbarrier_arrive(emptied_barrier(i));
    };
    auto wait_filled = [&](int i) {
      warp_roles::mbarrier_wait(filled_barrier(i), (i / kStages) & 1);
    };
    // Tile i's scores (completed) to weights: scaled, masked, exponentiated; correction[r]
    // moves the outputs so far to the new max.
    float correction[2];
    auto weigh = [&](float(&s)[kScoreTiles][4], int i) {
      const int64_t first = blk.begin + int64_t{Tile::kTokens} * i;
      rows.scale_and_mask(s, first, first + Tile::kTokens - 1 > warp_position, score_scale, q);
      softmax_weights(s, rows.row_max, rows.row_sum, correction);
    };

    float s[kScoreTiles][4];
    uint32_t weights[kWeightSteps][4];  // P of the tile whose P V is next
    wait_filled(0);
    take_turn();
    wgmma::fence();
    issue_scores<T, Tile, HD>(query, stage_address(0), s);
    pass_turn(0);
    wgmma::wait<0>();
    wgmma::hold(s);
    weigh(s, 0);
#pragma unroll
    for (int k = 0; k < kWeightSteps; ++k) weight_fragment<T>(s, 2 * k, weights[k]);

    for (int i = 1; i < tiles; ++i) {
      wait_filled(i);
      take_turn();
      wgmma::fence();
      issue_scores<T, Tile, HD>(query, stage_address(i), s);
      issue_values<T, Tile, HD>(stage_address(i - 1), weights, rows.out);
      pass_turn(i);
      wgmma::wait<1>();  // S of tile i
      wgmma::hold(s);
      weigh(s, i);
      wgmma::wait<0>();  // P V of tile i - 1
      wgmma::hold(rows.out);
#pragma unroll
      for (int k = 0; k < kWeightSteps; ++k) wgmma::hold(weights[k]);
      release(i - 1);
      rescale_rows(rows.out, correction);
#pragma unroll
      for (int k = 0; k < kWeightSteps; ++k) weight_fragment<T>(s, 2 * k, weights[k]);
    }
    wgmma::fence();
    issue_values<T, Tile, HD>(stage_address(tiles - 1), weights, rows.out);
    wgmma::wait<0>();
    wgmma::hold(rows.out);
    release(tiles - 1);
    allow_dependent_launch();
    rows.template write<T, OutputLayout::kWgmma>(p, plan, bad_block != 0, 1.0f, q);
  }
#endif  // FDOPS_WGMMA
}

}  // namespace fdops::attention
