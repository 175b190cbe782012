// top_k_top_p_sampling_from_probs (ops/sampling/README.md): sorting-free dual-pivot
// rejection sampling, one thread block per row.
//
// The allowed set A = {i : #{p_j > p_i} < k and sum{p_j > p_i} < top_p} is an upper set
// {p >= t}. Each round draws u ~ U[0, q) and takes the inverse CDF of the probabilities above the
// lower pivot `low` (q is their mass), which samples p restricted to {p > low}, a superset of A.
// The drawn token (probability pivot0) is accepted iff it is in A, which one pass counting the
// entries (and mass) above pivot0 decides; accepted draws are therefore distributed as p
// restricted to A. On rejection every p <= pivot0 is outside A, so `low` rises to pivot0; the
// same pass tests pivot1 = (pivot0 + high) / 2 and, if that value would be rejected too, raises
// `low` to pivot1 instead (otherwise `high` falls to pivot1), a bisection that bounds the number
// of rounds. Every round raises `low` to at least a value present in the row, and the row's
// maximum is always accepted, so the loop ends after at most (distinct values) rounds.
//
// Round r of row b draws its uniform from Philox4x32-10 with key `seed` and counter
// (r, b, offset), so a row's samples depend only on (seed, offset, b, its probabilities).
// Sums are fp32 block sums in a fixed order (reproducible for a given build).
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "ops/sampling/block.cuh"
#include "ops/sampling/philox.cuh"
#include "ops/sampling/sampling.h"

namespace fdops::sampling {

struct SamplerShared {
  WarpSlots<float> scan_slots[kUnrollScalar];
  WarpSlots<float> float_slots;
  WarpSlots<int> int_slots;
  int index;
  float value;
};

struct Draw {
  int index;  // -1: no entry of the row is above `low`
  float value;
};

// Inverse-CDF draw over the entries p > low: the first entry, in index order, at which the
// running sum of those entries exceeds u. A tile is NT * VEC * UNROLL consecutive entries made
// of UNROLL sub-tiles of NT * VEC; thread t holds VEC consecutive entries of each, so one batched
// scan per sub-tile gives every thread the mass before its entries. Tiles are visited in order
// and the pass stops at the tile where the running sum crosses u, so the drawn token depends on
// u and the row only (up to fp32 rounding of the sums), not on the block size or vector width.
// If rounding leaves u at or above the total, the entry above `low` with the largest index is
// returned.
template <int NT, int VEC, int UNROLL>
__device__ __forceinline__ Draw sample_above(const float* row, int n, float low, float u,
                                             SamplerShared& sh) {
  using T = Tiles<NT, VEC, UNROLL>;
  float running = 0.f;  // mass of the tiles before this one (identical in every thread)
  int last = -1;        // largest index with p > low seen by this thread
  for (int base = 0; base < n; base += T::kTile) {
    float x[T::kPerThread];
    T::load(row, n, base, 0.f, x);  // padding (0) is never above low >= 0
    float mine[UNROLL];
#pragma unroll
    for (int s = 0; s < UNROLL; ++s) {
      mine[s] = 0.f;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const int i = s * VEC + j;
        if (x[i] > low) {
          mine[s] += x[i];
          last = max(last, T::index(base, i));
        }
      }
    }
    float before[UNROLL], total[UNROLL];
    block_exclusive_scan_n<NT, UNROLL>(mine, before, total, sh.scan_slots);
    // before[s] becomes the mass ahead of this thread's entries of sub-tile s; the first
    // crossing of this thread is keyed by its position s * NT + t in index order.
    int crossing = INT_MAX;
    float sub_base = running;
#pragma unroll
    for (int s = 0; s < UNROLL; ++s) {
      before[s] += sub_base;
      if (crossing == INT_MAX && mine[s] > 0.f && before[s] + mine[s] > u)
        crossing = s * NT + static_cast<int>(threadIdx.x);
      sub_base += total[s];
    }
    if (__syncthreads_or(crossing != INT_MAX)) {
      const int first = block_reduce<NT>(crossing, sh.int_slots, MinOp{});
      if (crossing == first) {  // one thread: positions are unique
#pragma unroll
        for (int s = 0; s < UNROLL; ++s) {
          if (s != first / NT) continue;
          float cumulative = before[s];
          int pick = -1;
          int last_above = -1;
#pragma unroll
          for (int j = 0; j < VEC; ++j) {
            const int i = s * VEC + j;
            if (x[i] > low) {
              cumulative += x[i];
              last_above = i;
              if (pick < 0 && cumulative > u) pick = i;
            }
          }
          // The thread's own running sum may round below u although before + mine did not:
          // its last entry above low is then the crossing one.
          if (pick < 0) pick = last_above;
          sh.index = T::index(base, pick);
          sh.value = x[pick];
        }
      }
      __syncthreads();
      return Draw{sh.index, sh.value};
    }
    running = sub_base;
  }
  last = block_reduce<NT>(last, sh.int_slots, MaxOp{});
  return Draw{last, last >= 0 ? row[last] : 0.f};
}

// Count and mass of the entries above each pivot.
struct PivotStats {
  int count0, count1;
  float mass0, mass1;
};

template <int NT, int VEC, int UNROLL>
__device__ __forceinline__ PivotStats stats_above(const float* row, int n, float pivot0,
                                                  float pivot1, SamplerShared& sh) {
  using T = Tiles<NT, VEC, UNROLL>;
  int count0 = 0, count1 = 0;
  float mass0 = 0.f, mass1 = 0.f;
  for (int base = 0; base < n; base += T::kTile) {
    float x[T::kPerThread];
    T::load(row, n, base, 0.f, x);  // padding (0) is never above pivot0 > 0
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i) {
      if (x[i] > pivot0) {
        ++count0;
        mass0 += x[i];
      }
      if (x[i] > pivot1) {
        ++count1;
        mass1 += x[i];
      }
    }
  }
  PivotStats s;
  s.count0 = block_sum<NT>(count0, sh.int_slots);
  s.count1 = block_sum<NT>(count1, sh.int_slots);
  s.mass0 = block_sum<NT>(mass0, sh.float_slots);
  s.mass1 = block_sum<NT>(mass1, sh.float_slots);
  return s;
}

// Whether an entry with `count` entries and `mass` above it is allowed. The entries with
// nothing above them are always allowed, so the set is never empty (top_p <= 0 or NaN keeps
// just the maximum).
__device__ __forceinline__ bool allowed(int count, float mass, bool use_k, int64_t k, bool use_p,
                                        float top_p) {
  return count == 0 || ((!use_k || count < k) && (!use_p || mass < top_p));
}

struct SamplingParams {
  const float* probs;
  TopK top_k;
  TopP top_p;
  uint64_t seed;
  uint64_t offset;
  int64_t* samples;
  int n;
};

template <int NT, int VEC, int UNROLL>
__global__ void __launch_bounds__(NT) top_k_top_p_sampling_kernel(const SamplingParams p) {
  __shared__ SamplerShared sh;
  const int64_t row = blockIdx.x;
  const int n = p.n;
  const float* x = p.probs + row * n;
  const int64_t k = row_top_k(p.top_k, row);
  const float top_p = row_top_p(p.top_p, row);
  const bool use_k = k > 0 && k < n;  // k <= 0 or k >= V: no top-k limit
  const bool use_p = !(top_p >= 1.f);  // top_p >= 1: no top-p limit (NaN limits)

  float low = 0.f;   // every entry <= low is outside the allowed set
  float high = 1.f;  // the allowed set's threshold is at most high (up to rounding)
  float q = 1.f;     // the mass above low (normalised rows: 1 at first)
  Draw draw{0, 0.f};
  for (uint32_t round = 0;; ++round) {
    const float u = sampling_uniform(p.seed, p.offset, static_cast<uint32_t>(row), round) * q;
    draw = sample_above<NT, VEC, UNROLL>(x, n, low, u, sh);
    if (draw.index < 0) {  // only in round 0, for rows without a positive entry
      draw.index = 0;
      break;
    }
    if (!use_k && !use_p) break;
    const float pivot0 = draw.value;
    high = fmaxf(high, pivot0);
    const float pivot1 = fmaxf(0.5f * (pivot0 + high), pivot0);
    const PivotStats s = stats_above<NT, VEC, UNROLL>(x, n, pivot0, pivot1, sh);
    if (allowed(s.count0, s.mass0, use_k, k, use_p, top_p)) break;
    if (allowed(s.count1, s.mass1, use_k, k, use_p, top_p)) {
      low = pivot0;
      high = pivot1;
      q = s.mass0;
    } else {
      low = pivot1;
      q = s.mass1;
    }
  }
  if (threadIdx.x == 0) p.samples[row] = draw.index;
}

}  // namespace fdops::sampling
