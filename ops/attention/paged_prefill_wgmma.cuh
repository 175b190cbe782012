// The tiled prefill kernel's tiles on Hopper (SM 9.0 modules, 16-bit caches, head dims 64 and
// 128): warpgroup MMAs (ops/common/wgmma.cuh) instead of mma.sync. The block's 128 rows are two
// warpgroups of 64; the query tile and each K/V stage sit in shared memory in wgmma's 128-byte
// swizzled layout, so S = Q K^T reads both operands from there, and O += P V takes P from the
// registers S left (the FlashAttention-2 reuse) and V, row-major as the cache stores it, as an
// MN-major operand. No fragment is loaded by hand: per tile a warpgroup issues HD / 16 MMAs for S
// and kTokens / 16 for P V.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/paged_attention_mma.cuh"
#include "ops/common/wgmma.cuh"

namespace fdops::attention {

template <typename T, int HD, int kRows, int kThreads>
struct WgmmaPrefillTile {
  static_assert(sizeof(T) == 2 && (HD == 64 || HD == 128), "16-bit rows of 64 or 128 dims");
  using Element = T;
  static constexpr int kTokens = 64;
  static constexpr int kStages = 3;
  static constexpr int kRowPieces = HD / 8;  // 16-byte pieces per row
  static constexpr int kOperandBytes = kTokens * HD * 2;  // a K or V tile
  static constexpr int kStageBytes = 2 * kOperandBytes;
  static constexpr int kQueryRows = kRows;
  static constexpr int kQueryBytes = kRows * HD * 2;
  static constexpr int kAtomBytes = 1024;  // swizzle atoms start on this boundary
  // Dynamic shared memory: room to align, the query tile, the stages.
  static constexpr int kSharedBytes = kAtomBytes + kQueryBytes + kStages * kStageBytes;
  static constexpr int kCopies = kTokens * kRowPieces / kThreads;      // K/V pieces per thread
  static constexpr int kQueryCopies = kRows * kRowPieces / kThreads;  // query pieces per thread
  static_assert(kTokens * kRowPieces % kThreads == 0 && kRows * kRowPieces % kThreads == 0,
                "copies split evenly");

  __device__ __forceinline__ static uint32_t k_offset(int row, int piece) {
    return wgmma::swizzled_offset(kTokens, row, piece);
  }
  __device__ __forceinline__ static uint32_t v_offset(int row, int piece) {
    return kOperandBytes + wgmma::swizzled_offset(kTokens, row, piece);
  }
  __device__ __forceinline__ static uint32_t query_offset(int row, int piece) {
    return wgmma::swizzled_offset(kRows, row, piece);
  }
};

#if FDOPS_WGMMA

// s = Q K^T for the warpgroup's 64 rows: `query` is the shared address of the Q tile,
// `first_row` the warpgroup's first row in it, `stage` the K/V stage.
template <typename M, typename Tile, int HD>
__device__ __forceinline__ void wgmma_scores(uint32_t query, int first_row, uint32_t stage,
                                             float (&s)[Tile::kTokens / 8][4]) {
  wgmma::fence();
#pragma unroll
  for (int k = 0; k < HD / 16; ++k) {
    // k-step k: column block k / 4, bytes 32 (k % 4) of its 128-byte rows.
    const uint32_t a = query + (k / 4) * Tile::kQueryRows * 128 + first_row * 128 + (k % 4) * 32;
    const uint32_t b = stage + (k / 4) * Tile::kTokens * 128 + (k % 4) * 32;
    wgmma::mma_ss<M, Tile::kTokens>(s, wgmma::descriptor(a, 16, 1024),
                                    wgmma::descriptor(b, 16, 1024), k > 0);
  }
  wgmma::commit();
  wgmma::wait<0>();
  wgmma::hold(s);
}

// out += P V: `weights` holds P as mma.sync A fragments, one per 16 tokens; V is the stage's
// second tile, each 16-token k-step two 8-row groups (1024 bytes apart) and its 64-dim column
// blocks kOperandBytes / (HD / 64) apart.
template <typename M, typename Tile, int HD>
__device__ __forceinline__ void wgmma_values(uint32_t stage,
                                             uint32_t (&weights)[Tile::kTokens / 16][4],
                                             float (&out)[HD / 8][4]) {
  const uint32_t values = stage + Tile::kOperandBytes;
  wgmma::fence();
#pragma unroll
  for (int k = 0; k < Tile::kTokens / 16; ++k) {
    wgmma::mma_rs_mn_major<M, HD>(
        out, weights[k], wgmma::descriptor(values + k * 16 * 128, Tile::kTokens * 128, 1024));
  }
  wgmma::commit();
  wgmma::wait<0>();
  wgmma::hold(out);
#pragma unroll
  for (int k = 0; k < Tile::kTokens / 16; ++k) wgmma::hold(weights[k]);
}

#endif  // FDOPS_WGMMA

}  // namespace fdops::attention
