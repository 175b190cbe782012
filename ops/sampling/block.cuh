// Block-wide building blocks of the sampling kernels (one thread block per row): reductions and
// scans with a fixed combination order (so results are bitwise reproducible for a given block
// size), row tiles loaded with 16-byte accesses, and the per-row parameters.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/vec.cuh"
#include "ops/common/warp.cuh"
#include "ops/sampling/sampling.h"

namespace fdops::sampling {

// One slot per warp; enough for blocks of up to 1024 threads.
template <typename T>
struct WarpSlots {
  T v[32];
};

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct MinOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return b < a ? b : a;
  }
};
struct MaxOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a < b ? b : a;
  }
};

// Butterfly reduction: every lane ends with the same bits (each step combines the same two
// operands on both lanes of a pair, and + / min / max are commutative).
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Reduction over the NT threads of the block; every thread gets the result. The warp results
// are combined in warp order by every thread, so all threads hold identical bits. Contains two
// barriers: all threads of the block must call it, and `slots` may be reused right after.
template <int NT, typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, WarpSlots<T>& slots, Op op) {
  static_assert(NT % 32 == 0 && NT <= 1024, "whole warps, at most 1024 threads");
  constexpr int kWarps = NT / 32;
  v = warp_reduce(v, op);
  if (threadIdx.x % 32 == 0) slots.v[threadIdx.x / 32] = v;
  __syncthreads();
  T total = slots.v[0];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) total = op(total, slots.v[w]);
  __syncthreads();
  return total;
}

template <int NT, typename T>
__device__ __forceinline__ T block_sum(T v, WarpSlots<T>& slots) {
  return block_reduce<NT>(v, slots, SumOp{});
}

// Exclusive prefix sum over threads in thread order; *total receives the block total (the same
// bits in every thread). Two barriers, like block_reduce.
template <int NT, typename T>
__device__ __forceinline__ T block_exclusive_scan(T v, WarpSlots<T>& slots, T* total) {
  static_assert(NT % 32 == 0 && NT <= 1024, "whole warps, at most 1024 threads");
  constexpr int kWarps = NT / 32;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  T inclusive = v;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const T other = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset) inclusive = inclusive + other;
  }
  T exclusive = __shfl_up_sync(kFullMask, inclusive, 1);
  if (lane == 0) exclusive = T(0);
  if (lane == 31) slots.v[warp] = inclusive;
  __syncthreads();
  T before = T(0);
  T sum = T(0);
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    if (w == warp) before = sum;
    sum = sum + slots.v[w];
  }
  __syncthreads();
  *total = sum;
  return before + exclusive;
}

// N independent exclusive scans in one pass (one barrier pair for all; slots[0, N) are used):
// excl[s] is the sum of v[s] over the threads before this one, total[s] its block total.
template <int NT, int N, typename T>
__device__ __forceinline__ void block_exclusive_scan_n(const T (&v)[N], T (&excl)[N],
                                                       T (&total)[N], WarpSlots<T>* slots) {
  static_assert(NT % 32 == 0 && NT <= 1024, "whole warps, at most 1024 threads");
  constexpr int kWarps = NT / 32;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
#pragma unroll
  for (int s = 0; s < N; ++s) {
    T inclusive = v[s];
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const T other = __shfl_up_sync(kFullMask, inclusive, offset);
      if (lane >= offset) inclusive = inclusive + other;
    }
    excl[s] = __shfl_up_sync(kFullMask, inclusive, 1);
    if (lane == 0) excl[s] = T(0);
    if (lane == 31) slots[s].v[warp] = inclusive;
  }
  __syncthreads();
#pragma unroll
  for (int s = 0; s < N; ++s) {
    T before = T(0);
    T sum = T(0);
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (w == warp) before = sum;
      sum = sum + slots[s].v[w];
    }
    excl[s] = before + excl[s];
    total[s] = sum;
  }
  __syncthreads();
}

// A row is visited in tiles of NT * VEC * UNROLL elements. In a tile, thread t holds UNROLL
// vectors of VEC consecutive elements, vector u starting at element (u * NT + t) * VEC, so each
// access instruction of a warp covers 32 * VEC consecutive elements. Elements past the row end
// read as `fill`. VEC > 1 requires a 16-byte aligned row and a row length divisible by VEC (the
// host checks both), so a vector is either wholly inside the row or wholly past its end.
template <int NT, int VEC, int UNROLL>
struct Tiles {
  static constexpr int kPerThread = VEC * UNROLL;
  static constexpr int kTile = NT * kPerThread;

  // Element index of slot i (= u * VEC + j) of this thread in the tile starting at `base`.
  __device__ __forceinline__ static int index(int base, int i) {
    return base + ((i / VEC) * NT + static_cast<int>(threadIdx.x)) * VEC + i % VEC;
  }

  __device__ __forceinline__ static void load(const float* row, int n, int base, float fill,
                                              float (&x)[kPerThread]) {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int i = base + (u * NT + static_cast<int>(threadIdx.x)) * VEC;
      if constexpr (VEC > 1) {
        if (i < n) {
          Vec<float, VEC> v;
          v.load(row + i);
#pragma unroll
          for (int j = 0; j < VEC; ++j) x[u * VEC + j] = v.v[j];
        } else {
#pragma unroll
          for (int j = 0; j < VEC; ++j) x[u * VEC + j] = fill;
        }
      } else {
        x[u] = i < n ? row[i] : fill;
      }
    }
  }

  __device__ __forceinline__ static void store(float* row, int n, int base,
                                               const float (&x)[kPerThread]) {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int i = base + (u * NT + static_cast<int>(threadIdx.x)) * VEC;
      if (i < n) {
        if constexpr (VEC > 1) {
          Vec<float, VEC> v;
#pragma unroll
          for (int j = 0; j < VEC; ++j) v.v[j] = x[u * VEC + j];
          v.store(row + i);
        } else {
          row[i] = x[u];
        }
      }
    }
  }
};

// Loads per tile: 4 x 16 bytes per thread keeps 64 KiB of a 1024-thread block in flight.
inline constexpr int kUnrollVec = 4;
inline constexpr int kUnrollScalar = 8;

// The row's top_k (tensor or scalar). k <= 0 (0 means "all"; negative values, which the host
// cannot see without a sync, are read the same way) and k >= V impose no limit.
__device__ __forceinline__ int64_t row_top_k(const TopK& top_k, int64_t row) {
  if (top_k.values == nullptr) return top_k.scalar;
  return top_k.is_int64 ? static_cast<const int64_t*>(top_k.values)[row]
                        : static_cast<const int32_t*>(top_k.values)[row];
}

__device__ __forceinline__ float row_top_p(const TopP& top_p, int64_t row) {
  return top_p.values == nullptr ? top_p.scalar : top_p.values[row];
}

}  // namespace fdops::sampling
