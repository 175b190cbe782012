// Device code of fused_rotary_position_encoding.
//
// Work item: N rotary pairs of one head of one token. Neox pairs (i, i + rot_dim/2) come from two
// N-element accesses (first and second half of the rotated span); interleaved (GPT-J) pairs
// (2i, 2i+1) from one 2N-element access. cos and sin are N-element accesses to the cache row of
// the token's position. Only the first rot_dim dimensions of a head are read or written.
//
// A block covers a tile of tokens_per_tile tokens x heads_per_tile heads (q heads first, then k
// heads), one item per thread, so each thread's head and chunk are fixed: it loops over token
// tiles (gridDim.x, grid-stride, int64 token index) at fixed cost per item. blockIdx.y selects
// the head tile when one token's items do not fit one block.
//
// Math is fp32 with every product and sum rounded on its own (no FMA contraction), then one
// rounding to the element type: deterministic, and identical to the fp32 numpy reference.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/rotate.cuh"
#include "ops/common/vec.cuh"

namespace fdops::rotary {

struct RotaryParams {
  void* query;
  void* key;
  const int32_t* positions;
  const void* cache;
  int64_t num_tokens;
  int64_t max_position;
  int64_t token_tiles;
  int num_heads;
  int num_kv_heads;
  int head_size;
  int rot_dim;
  int chunks;  // items per head: (rot_dim / 2) / N
  int heads_per_tile;
  int tokens_per_tile;
};

template <typename T, bool kNeox, int N>
__global__ void __launch_bounds__(1024) rotary_kernel(RotaryParams p) {
  const int per_token = p.heads_per_tile * p.chunks;
  const int local_token = threadIdx.x / per_token;
  if (local_token >= p.tokens_per_tile) return;
  const int r = threadIdx.x - local_token * per_token;
  const int head = static_cast<int>(blockIdx.y) * p.heads_per_tile + r / p.chunks;
  const int chunk = r % p.chunks;
  if (head >= p.num_heads + p.num_kv_heads) return;

  T* base;
  int64_t token_stride;
  if (head < p.num_heads) {
    base = static_cast<T*>(p.query) + static_cast<int64_t>(head) * p.head_size;
    token_stride = static_cast<int64_t>(p.num_heads) * p.head_size;
  } else {
    base = static_cast<T*>(p.key) + static_cast<int64_t>(head - p.num_heads) * p.head_size;
    token_stride = static_cast<int64_t>(p.num_kv_heads) * p.head_size;
  }
  const int half = p.rot_dim / 2;
  const T* cache = static_cast<const T*>(p.cache) + chunk * N;  // cos; sin is `half` further

  for (int64_t tile = blockIdx.x; tile < p.token_tiles; tile += gridDim.x) {
    const int64_t token = tile * p.tokens_per_tile + local_token;
    if (token >= p.num_tokens) break;  // later tiles hold later tokens
    const int32_t pos = __ldg(p.positions + token);
    if (pos < 0 || pos >= p.max_position) continue;  // invalid position: token left unchanged
    const T* cs = cache + static_cast<int64_t>(pos) * p.rot_dim;
    Vec<T, N> c, s;
    c.load(cs);
    s.load(cs + half);
    T* h = base + token * token_stride;
    if constexpr (kNeox) {
      Vec<T, N> x, y;
      x.load(h + chunk * N);
      y.load(h + half + chunk * N);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        float xo, yo;
        rotate(to_float(x.v[k]), to_float(y.v[k]), to_float(c.v[k]), to_float(s.v[k]), &xo, &yo);
        x.v[k] = from_float<T>(xo);
        y.v[k] = from_float<T>(yo);
      }
      x.store(h + chunk * N);
      y.store(h + half + chunk * N);
    } else if constexpr (N == 1) {  // scalar: no alignment needed (odd head sizes)
      float xo, yo;
      rotate(to_float(h[2 * chunk]), to_float(h[2 * chunk + 1]), to_float(c.v[0]),
             to_float(s.v[0]), &xo, &yo);
      h[2 * chunk] = from_float<T>(xo);
      h[2 * chunk + 1] = from_float<T>(yo);
    } else {
      Vec<T, 2 * N> xy;
      xy.load(h + 2 * chunk * N);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        float xo, yo;
        rotate(to_float(xy.v[2 * k]), to_float(xy.v[2 * k + 1]), to_float(c.v[k]),
               to_float(s.v[k]), &xo, &yo);
        xy.v[2 * k] = from_float<T>(xo);
        xy.v[2 * k + 1] = from_float<T>(yo);
      }
      xy.store(h + 2 * chunk * N);
    }
  }
}

}  // namespace fdops::rotary
