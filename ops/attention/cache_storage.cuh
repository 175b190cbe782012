// How each cache type stores an element, and the one conversion each way. Kernels move a chunk
// of 8 consecutive head dims at a time: 16 bytes for c16, 8 bytes for int8 and fp8.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/common/dispatch.cuh"

namespace fdops::attention {

inline constexpr int kChunk = 8;  // head dims per thread access

template <typename T, CacheType C>
struct CacheStorage;

template <typename T>
struct CacheStorage<T, CacheType::kC16> {
  using Element = T;
  using Chunk = uint4;
  static constexpr bool kQuantized = false;
  __device__ __forceinline__ static void to_float(const Chunk& c, float* out) {
    const T* e = reinterpret_cast<const T*>(&c);
#pragma unroll
    for (int i = 0; i < kChunk; ++i) out[i] = ::fdops::to_float(e[i]);
  }
  __device__ __forceinline__ static Element from_float(float x, float /*inv_scale*/) {
    return ::fdops::from_float<T>(x);
  }
};

template <typename T>
struct CacheStorage<T, CacheType::kInt8> {
  using Element = int8_t;
  using Chunk = uint2;
  static constexpr bool kQuantized = true;
  __device__ __forceinline__ static void to_float(const Chunk& c, float* out) {
    const int8_t* e = reinterpret_cast<const int8_t*>(&c);
#pragma unroll
    for (int i = 0; i < kChunk; ++i) out[i] = static_cast<float>(e[i]);
  }
  // round(x / scale) to nearest even, clamped to [-127, 127].
  __device__ __forceinline__ static Element from_float(float x, float scale) {
    const float q = rintf(__fdiv_rn(x, scale));
    return static_cast<int8_t>(fminf(fmaxf(q, -127.0f), 127.0f));
  }
};

template <typename T>
struct CacheStorage<T, CacheType::kFp8E4M3> {
  using Element = __nv_fp8_storage_t;
  using Chunk = uint2;
  static constexpr bool kQuantized = true;
  __device__ __forceinline__ static void to_float(const Chunk& c, float* out) {
    const __nv_fp8x2_storage_t* pairs = reinterpret_cast<const __nv_fp8x2_storage_t*>(&c);
#pragma unroll
    for (int i = 0; i < kChunk / 2; ++i) {
      const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pairs[i], __NV_E4M3)));
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  }
  // e4m3(x / scale), round to nearest even, saturating to +-448.
  __device__ __forceinline__ static Element from_float(float x, float scale) {
    return __nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3);
  }
};

// Element offset of (block, kv_head, row) in a cache [num_blocks, kv_heads, block_size, D].
__device__ __forceinline__ int64_t cache_row_offset(const PagedCache& cache, int32_t block,
                                                    int kv_head, int row) {
  return ((static_cast<int64_t>(block) * cache.kv_heads + kv_head) * cache.block_size + row) *
         cache.head_dim;
}

// The sequence that packed row `row` belongs to: the b with cu[b] <= row < cu[b + 1]
// (cu ascending, cu[0] = 0 <= row < cu[batch]).
__device__ __forceinline__ int sequence_of_row(const int32_t* cu, int batch, int64_t row) {
  int lo = 0, hi = batch;  // invariant: cu[lo] <= row < cu[hi]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (__ldg(cu + mid) <= row) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

}  // namespace fdops::attention
