// Warp-wide reductions over all 32 lanes (full mask: callers keep whole warps alive).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fdops {

inline constexpr unsigned kFullMask = 0xffffffffu;

// Butterfly sum: every lane gets the total, in an order fixed by the lane layout, so the
// result is bitwise reproducible.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ uint32_t warp_max_u32(uint32_t v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  return __reduce_max_sync(kFullMask, v);  // one REDUX instruction on SM80+
#else
  for (int offset = 16; offset > 0; offset >>= 1) v = max(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
#endif
}

__device__ __forceinline__ uint32_t warp_or_u32(uint32_t v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  return __reduce_or_sync(kFullMask, v);
#else
  for (int offset = 16; offset > 0; offset >>= 1) v |= __shfl_xor_sync(kFullMask, v, offset);
  return v;
#endif
}

// Maps a float to an unsigned key with the same order (-inf < ... < -0 < +0 < ... < +inf),
// so float maxima can use integer reductions. Callers canonicalise -0 to +0 where -0 and +0
// must tie.
__device__ __forceinline__ uint32_t ordered_key(float f) {
  const uint32_t b = __float_as_uint(f);
  return b ^ (static_cast<uint32_t>(static_cast<int32_t>(b) >> 31) | 0x80000000u);
}

__device__ __forceinline__ float key_to_float(uint32_t k) {
  return __uint_as_float(k ^ ((k & 0x80000000u) ? 0x80000000u : 0xffffffffu));
}

__device__ __forceinline__ float warp_max(float v) {
  return key_to_float(warp_max_u32(ordered_key(v)));
}

// Warp argmax of per-lane keys: returns the max and the lowest lane holding it. Lanes that
// hold contiguous, ascending index ranges thereby break ties toward the lowest index.
__device__ __forceinline__ int warp_argmax_lowest_lane(uint32_t key, uint32_t* max_out) {
  const uint32_t m = warp_max_u32(key);
  *max_out = m;
  return __ffs(__ballot_sync(kFullMask, key == m)) - 1;
}

}  // namespace fdops
