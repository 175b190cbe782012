// top_k_renorm_probs / top_p_renorm_probs (ops/sampling/README.md): one thread block per row.
//
// The kept set of both ops is an upper set {p >= t}: the top-k rule keeps p_i iff fewer than k
// entries are strictly greater, the top-p rule iff the mass strictly greater is below top_p, and
// both only get easier as p_i grows. The threshold t, the smallest kept value, is found exactly
// and without sorting by a radix descent over the 32-bit order-preserving key of the values:
// three histogram passes over the row (key bits 31..21, 20..10, 9..0, each pass counting only
// the elements whose higher bits match the prefix chosen so far). After each pass the bins are
// scanned from the top, which gives for every bin b the count C(b) and mass G(b) of the
// elements in higher bins; the largest element of bin b is kept iff C(b) < k (G(b) < top_p),
// so the threshold lies in the lowest non-empty bin passing that test. A fourth pass writes
// the output. The kept mass used to renormalise is an fp32 block sum (elements above the last
// prefix, summed in the third pass) plus count * value of the bins of the last level, each of
// which holds a single value.
//
// Masses compared with top_p are exact sums of the probabilities truncated to multiples of
// 2^-40 (unsigned 64-bit integers): histogram atomics then commute, so the kept set is
// deterministic and independent of the block size, and within V * 2^-40 (1.4e-7 at V = 152k)
// of the real-valued sum. Counts are exact. Everything else is a fixed-shape block sum, so
// outputs are bitwise reproducible for a given build.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "ops/common/warp.cuh"
#include "ops/sampling/block.cuh"
#include "ops/sampling/sampling.h"

namespace fdops::sampling {

inline constexpr int kRadixBins = 2048;  // bins of the widest (11-bit) digit

// Order-preserving key of a probability; -0 is folded onto +0 so that they tie.
__device__ __forceinline__ uint32_t prob_key(float v) { return ordered_key(v + 0.f); }

// A probability as a 2^-40 fixed-point mass: truncated, clamped to [0, 1]; NaN and negative
// values weigh nothing.
__device__ __forceinline__ unsigned long long fixed_mass(float v) {
  return v > 0.f ? __float2ull_rz(fminf(v, 1.f) * 0x1p40f) : 0ull;
}

// top_p as the fixed-point bound: mass < top_p  <=>  fixed mass < ceil(top_p * 2^40) (the fixed
// mass is an integer). top_p <= 0 or NaN gives 0: only the entries with nothing above them pass.
__device__ __forceinline__ unsigned long long fixed_top_p(float top_p) {
  return top_p > 0.f ? static_cast<unsigned long long>(ceil(static_cast<double>(top_p) * 0x1p40))
                     : 0ull;
}

// The digits of the descent: bits [kShift, kShift + kBits) of the key, most significant first.
template <int L>
struct RadixLevel;
template <>
struct RadixLevel<0> {
  static constexpr int kShift = 21, kBits = 11;
};
template <>
struct RadixLevel<1> {
  static constexpr int kShift = 10, kBits = 11;
};
template <>
struct RadixLevel<2> {
  static constexpr int kShift = 0, kBits = 10;
};

template <bool kMass>
struct RadixShared {
  uint32_t count[kRadixBins];
  unsigned long long mass[kMass ? kRadixBins : 1];
  WarpSlots<uint32_t> count_slots;
  WarpSlots<unsigned long long> mass_slots;
  WarpSlots<int> index_slots;
  WarpSlots<float> float_slots;
  uint32_t count_above;
  unsigned long long mass_above;
};

// The descent's state: the key bits chosen so far, and the count and mass of the elements whose
// key is above every key with that prefix (all of them kept).
struct RadixState {
  uint32_t prefix;
  uint32_t count_above;
  unsigned long long mass_above;
};

template <int NT, bool kMass>
__device__ __forceinline__ void radix_clear(RadixShared<kMass>& sh) {
  for (int b = threadIdx.x; b < kRadixBins; b += NT) {
    sh.count[b] = 0;
    if constexpr (kMass) sh.mass[b] = 0;
  }
}

// Histogram of level L over the elements whose key matches `prefix` above the digit. Runs of
// equal bins within a thread are merged before the shared-memory atomics (a flat row would
// otherwise send every element to one bin). At the last level, also returns this thread's fp32
// sum of the elements above the prefix (all kept).
template <int NT, int VEC, int UNROLL, int L, bool kMass>
__device__ __forceinline__ float radix_histogram(const float* row, int n, uint32_t prefix,
                                                 RadixShared<kMass>& sh) {
  using T = Tiles<NT, VEC, UNROLL>;
  constexpr int kShift = RadixLevel<L>::kShift;
  constexpr uint32_t kMask = (1u << RadixLevel<L>::kBits) - 1u;
  constexpr int kPrefixShift = kShift + RadixLevel<L>::kBits;
  uint32_t run_bin = 0xffffffffu;
  uint32_t run_count = 0;
  unsigned long long run_mass = 0;
  float above = 0.f;
  for (int base = 0; base < n; base += T::kTile) {
    float x[T::kPerThread];
    T::load(row, n, base, 0.f, x);
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i) {
      if (T::index(base, i) >= n) continue;
      const uint32_t key = prob_key(x[i]);
      bool match = true;
      if constexpr (L > 0) match = (key >> kPrefixShift) == prefix;
      if (match) {
        const uint32_t bin = (key >> kShift) & kMask;
        if (bin != run_bin) {
          if (run_count != 0) {
            atomicAdd(&sh.count[run_bin], run_count);
            if constexpr (kMass) atomicAdd(&sh.mass[run_bin], run_mass);
          }
          run_bin = bin;
          run_count = 0;
          run_mass = 0;
        }
        ++run_count;
        if constexpr (kMass) run_mass += fixed_mass(x[i]);
      } else if constexpr (L == 2) {
        if ((key >> kPrefixShift) > prefix) above += x[i];
      }
    }
  }
  if (run_count != 0) {
    atomicAdd(&sh.count[run_bin], run_count);
    if constexpr (kMass) atomicAdd(&sh.mass[run_bin], run_mass);
  }
  return above;
}

// Chooses the digit of level L: the lowest non-empty bin whose largest element is kept, i.e.
// with C(b) < k_limit and (with kMass) G(b) < mass_limit, where C(b) and G(b) are the count
// and mass above bin b. A bin with nothing above it always qualifies (so the maximum is always
// kept), hence a bin is always found. Thread t owns bins kBins-1-t*kPer ... (descending), so a
// prefix scan in thread order is a suffix scan over bins. Updates `state` in every thread.
template <int NT, int L, bool kMass>
__device__ __forceinline__ void radix_select(RadixShared<kMass>& sh, uint32_t k_limit,
                                             unsigned long long mass_limit, RadixState& state) {
  constexpr int kBins = 1 << RadixLevel<L>::kBits;
  static_assert(kBins % NT == 0, "every thread owns the same number of bins");
  constexpr int kPer = kBins / NT;
  uint32_t c[kPer];
  unsigned long long m[kPer];
  uint32_t local_count = 0;
  unsigned long long local_mass = 0;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int b = kBins - 1 - (static_cast<int>(threadIdx.x) * kPer + i);
    c[i] = sh.count[b];
    m[i] = 0;
    if constexpr (kMass) m[i] = sh.mass[b];
    local_count += c[i];
    local_mass += m[i];
  }
  uint32_t total_count;
  uint32_t count = state.count_above + block_exclusive_scan<NT>(local_count, sh.count_slots,
                                                                &total_count);
  unsigned long long mass = state.mass_above;
  if constexpr (kMass) {
    unsigned long long total_mass;
    mass += block_exclusive_scan<NT>(local_mass, sh.mass_slots, &total_mass);
  }
  int candidate = kBins;
  uint32_t candidate_count = 0;
  unsigned long long candidate_mass = 0;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int b = kBins - 1 - (static_cast<int>(threadIdx.x) * kPer + i);
    const bool kept = count == 0 || (count < k_limit && (!kMass || mass < mass_limit));
    if (c[i] != 0 && kept) {  // bins descend: the last one found is the lowest
      candidate = b;
      candidate_count = count;
      candidate_mass = mass;
    }
    count += c[i];
    mass += m[i];
  }
  const int chosen = block_reduce<NT>(candidate, sh.index_slots, MinOp{});
  if (candidate == chosen && chosen < kBins) {  // exactly one thread owns the chosen bin
    sh.count_above = candidate_count;
    sh.mass_above = candidate_mass;
  }
  __syncthreads();
  state.count_above = sh.count_above;
  state.mass_above = sh.mass_above;
  state.prefix =
      (state.prefix << RadixLevel<L>::kBits) | static_cast<uint32_t>(chosen & (kBins - 1));
  // The next writes of count_above / mass_above follow the next level's scans (barriers).
}

template <int NT, int VEC, int UNROLL>
__device__ __forceinline__ void copy_row(const float* x, float* y, int n) {
  using T = Tiles<NT, VEC, UNROLL>;
  if (x == y) return;
  for (int base = 0; base < n; base += T::kTile) {
    float v[T::kPerThread];
    T::load(x, n, base, 0.f, v);
    T::store(y, n, base, v);
  }
}

// y = x * inv where key(x) >= threshold, else 0.
template <int NT, int VEC, int UNROLL>
__device__ __forceinline__ void write_kept(const float* x, float* y, int n, uint32_t threshold,
                                           float inv) {
  using T = Tiles<NT, VEC, UNROLL>;
  for (int base = 0; base < n; base += T::kTile) {
    float v[T::kPerThread];
    T::load(x, n, base, 0.f, v);
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i) v[i] = prob_key(v[i]) >= threshold ? v[i] * inv : 0.f;
    T::store(y, n, base, v);
  }
}

// One row per block. kTopP selects top_p_renorm_probs, else top_k_renorm_probs. `renorm` may
// alias `probs`: every element is read and written by the same thread, in the last pass.
template <int NT, int VEC, int UNROLL, bool kTopP>
__global__ void __launch_bounds__(NT)
    renorm_probs_kernel(const float* probs, TopK top_k, TopP top_p, float* renorm, int n) {
  using T = Tiles<NT, VEC, UNROLL>;
  __shared__ RadixShared<kTopP> sh;
  const int64_t row = blockIdx.x;
  const float* x = probs + row * n;
  float* y = renorm + row * n;

  uint32_t k_limit = 0xffffffffu;
  unsigned long long mass_limit = ~0ull;
  if constexpr (!kTopP) {
    const int64_t k = row_top_k(top_k, row);
    if (k <= 0 || k >= n) {  // no limit: the row is copied, not renormalised (upstream rule)
      copy_row<NT, VEC, UNROLL>(x, y, n);
      return;
    }
    k_limit = static_cast<uint32_t>(k);
  } else {
    const float p = row_top_p(top_p, row);
    if (p >= 1.f) {  // every entry is kept: y = x / sum(x)
      float local = 0.f;
      for (int base = 0; base < n; base += T::kTile) {
        float v[T::kPerThread];
        T::load(x, n, base, 0.f, v);
#pragma unroll
        for (int i = 0; i < T::kPerThread; ++i) local += v[i];
      }
      const float sum = block_sum<NT>(local, sh.float_slots);
      write_kept<NT, VEC, UNROLL>(x, y, n, 0u, 1.f / fmaxf(sum, 1e-8f));
      return;
    }
    mass_limit = fixed_top_p(p);
  }

  RadixState state{0u, 0u, 0ull};
  radix_clear<NT>(sh);
  __syncthreads();
  radix_histogram<NT, VEC, UNROLL, 0>(x, n, 0u, sh);
  __syncthreads();
  radix_select<NT, 0>(sh, k_limit, mass_limit, state);

  radix_clear<NT>(sh);
  __syncthreads();
  radix_histogram<NT, VEC, UNROLL, 1>(x, n, state.prefix, sh);
  __syncthreads();
  radix_select<NT, 1>(sh, k_limit, mass_limit, state);

  radix_clear<NT>(sh);
  __syncthreads();
  float local = radix_histogram<NT, VEC, UNROLL, 2>(x, n, state.prefix, sh);
  __syncthreads();
  radix_select<NT, 2>(sh, k_limit, mass_limit, state);
  const uint32_t threshold = state.prefix;  // the key of the smallest kept value

  if constexpr (!kTopP) {
    // The k-th largest is not positive (fewer than k positive entries): upstream's pivot never
    // rises, and the row is copied unscaled.
    if (!(key_to_float(threshold) > 0.f)) {
      copy_row<NT, VEC, UNROLL>(x, y, n);
      return;
    }
  }
  // Kept mass: the elements above the last prefix (summed by the last histogram pass) plus the
  // last level's bins at or above the chosen one, each holding count copies of one value.
  constexpr uint32_t kLastMask = (1u << RadixLevel<2>::kBits) - 1u;
  constexpr int kPer = (1 << RadixLevel<2>::kBits) / NT;
  const uint32_t chosen = threshold & kLastMask;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const uint32_t b = kLastMask - (threadIdx.x * kPer + i);
    const uint32_t c = sh.count[b];
    if (b >= chosen && c != 0)
      local += static_cast<float>(c) * key_to_float((threshold & ~kLastMask) | b);
  }
  const float kept = block_sum<NT>(local, sh.float_slots);
  write_kept<NT, VEC, UNROLL>(x, y, n, threshold, 1.f / fmaxf(kept, 1e-8f));
}

}  // namespace fdops::sampling
