// Aligned vector loads/stores. Memory-bound kernels move 16 bytes per thread and instruction
// (LDG.128/STG.128); callers check alignment on the host and keep a scalar path for rows that
// are not aligned (odd widths, offset views).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "ops/common/dispatch.cuh"

namespace fdops {

// N elements of T moved as one access of N * sizeof(T) bytes (2, 4, 8 or 16; 32 becomes two
// 16-byte accesses). The pointer must be aligned to sizeof(Vec).
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];

  __device__ __forceinline__ void load(const T* p) { *this = *reinterpret_cast<const Vec*>(p); }
  __device__ __forceinline__ void store(T* p) const { *reinterpret_cast<Vec*>(p) = *this; }
};

// Loads N elements and widens them to fp32 (exact).
template <int N, typename T>
__device__ __forceinline__ void load_vec_as_float(const T* p, float* out) {
  Vec<T, N> vec;
  vec.load(p);
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = to_float(vec.v[i]);
}

// Rounds N fp32 values once to T and stores them as one access.
template <int N, typename T>
__device__ __forceinline__ void store_vec_from_float(T* p, const float* in) {
  Vec<T, N> vec;
#pragma unroll
  for (int i = 0; i < N; ++i) vec.v[i] = from_float<T>(in[i]);
  vec.store(p);
}

// Host-side alignment test for choosing the vector path.
inline bool is_aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

}  // namespace fdops
