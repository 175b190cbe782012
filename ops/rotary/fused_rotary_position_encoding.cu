// launch_fused_rotary_position_encoding: picks the widest access the layout allows and the tile
// shape (see rotary.cuh), then launches once.
#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/rotary/rotary.cuh"
#include "ops/rotary/rotary.h"

namespace fdops::rotary {
// Named, not anonymous: nvcc mangles anonymous namespaces with a per-compilation hash.
namespace fused_rotary_position_encoding_impl {

constexpr int kTargetThreads = 256;  // items per block aimed for
constexpr int kMaxThreadsPerSm = 2048;
constexpr int kWaves = 4;  // resident blocks x kWaves is the most gridDim.x gets

struct Launch {
  void* query;
  void* key;
  const void* cache;
  int sms;
};

// Whether N-pair accesses are aligned for this layout: every head start, every chunk and the
// cache rows fall on multiples of the access size.
template <typename T, bool kNeox>
bool fits(const RotaryParams& p, const Launch& l, int n) {
  const int half = p.rot_dim / 2;
  const int head_granule = kNeox ? n : 2 * n;  // elements per q/k access
  const size_t qk_bytes = static_cast<size_t>(head_granule) * sizeof(T);
  return half % n == 0 && p.head_size % head_granule == 0 && is_aligned(l.query, qk_bytes) &&
         (l.key == nullptr || is_aligned(l.key, qk_bytes)) &&
         is_aligned(l.cache, static_cast<size_t>(n) * sizeof(T));
}

template <typename T, bool kNeox, int N>
cudaError_t launch_kernel(RotaryParams p, const Launch& l, cudaStream_t stream) {
  const int heads = p.num_heads + p.num_kv_heads;
  p.chunks = p.rot_dim / 2 / N;
  // Split a token's heads into as few tiles as keep a block near kTargetThreads items, with the
  // heads spread evenly over the tiles.
  const int64_t items = static_cast<int64_t>(heads) * p.chunks;
  int head_tiles = static_cast<int>((items + kTargetThreads - 1) / kTargetThreads);
  p.heads_per_tile = (heads + head_tiles - 1) / head_tiles;
  head_tiles = (heads + p.heads_per_tile - 1) / p.heads_per_tile;
  const int per_token = p.heads_per_tile * p.chunks;
  p.tokens_per_tile =
      head_tiles == 1 && per_token < kTargetThreads ? kTargetThreads / per_token : 1;
  const int threads = (p.tokens_per_tile * per_token + 31) / 32 * 32;
  p.token_tiles = (p.num_tokens + p.tokens_per_tile - 1) / p.tokens_per_tile;
  const int blocks_per_sm = kMaxThreadsPerSm / threads > 0 ? kMaxThreadsPerSm / threads : 1;
  const int64_t resident = static_cast<int64_t>(l.sms) * blocks_per_sm;
  int64_t grid_x = resident * kWaves / head_tiles;
  if (grid_x < 1) grid_x = 1;
  if (grid_x > p.token_tiles) grid_x = p.token_tiles;
  if (threads > 1024 || head_tiles > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(head_tiles));
  rotary_kernel<T, kNeox, N><<<grid, threads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T, bool kNeox, int N>
cudaError_t dispatch_width(const RotaryParams& p, const Launch& l, cudaStream_t stream) {
  if constexpr (N > 1) {
    if (!fits<T, kNeox>(p, l, N)) return dispatch_width<T, kNeox, N / 2>(p, l, stream);
  }
  return launch_kernel<T, kNeox, N>(p, l, stream);
}

}  // namespace fused_rotary_position_encoding_impl

using namespace fused_rotary_position_encoding_impl;

cudaError_t launch_fused_rotary_position_encoding(void* query, void* key, DType dtype,
                                                  const int32_t* position_ids,
                                                  const void* cos_sin_cache, int64_t num_tokens,
                                                  int num_heads, int num_kv_heads, int head_size,
                                                  int rot_dim, int64_t max_position, bool is_neox,
                                                  cudaStream_t stream) {
  if (num_tokens < 0 || num_heads < 1 || num_kv_heads < 0 ||
      num_heads + static_cast<int64_t>(num_kv_heads) > kMaxHeads || rot_dim < 2 ||
      rot_dim % 2 != 0 || rot_dim > head_size || rot_dim > kMaxRotDim || max_position < 1 ||
      (num_kv_heads > 0 && key == nullptr))
    return cudaErrorInvalidValue;
  if (num_tokens == 0) return cudaSuccess;
  const Launch l{query, num_kv_heads > 0 ? key : nullptr, cos_sin_cache, multiprocessor_count()};

  RotaryParams p{};
  p.query = query;
  p.key = l.key;
  p.positions = position_ids;
  p.cache = cos_sin_cache;
  p.num_tokens = num_tokens;
  p.max_position = max_position;
  p.num_heads = num_heads;
  p.num_kv_heads = num_kv_heads;
  p.head_size = head_size;
  p.rot_dim = rot_dim;
  return dispatch_float_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Widest accesses: 16 bytes per half (neox) or per interleaved pair vector (GPT-J).
    if (is_neox) return dispatch_width<T, true, 16 / sizeof(T)>(p, l, stream);
    return dispatch_width<T, false, 8 / sizeof(T)>(p, l, stream);
  });
}

}  // namespace fdops::rotary
