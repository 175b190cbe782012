// Device building blocks shared by the moe_routing kernels: the exact sigmoid, chunk loads
// into registers, and the warp-wide top-k over register-resident candidates.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/vec.cuh"
#include "ops/common/warp.cuh"

namespace fdops::moe_routing {

// Rule 1 of ops/moe_routing/README.md: s = 1.f / (1.f + expf(-x)) in fp32, bit-exact. For
// y = 1 + expf(-x) in [1, 2^126) the IEEE quotient 1/y is MUFU.RCP refined by one FMA Newton
// step: the fast path nvcc itself emits for `1.f / y`, written out here because nvcc wraps each
// division in a branch to its slow path, which serialises the per-element chains. Larger y
// (x < -87.3: denormal or zero results, y = inf) take the real division. expf(-x) overflows to
// +inf for x < ~-88.7, so s is exactly 0 there; it is never NaN for non-NaN x. Every kernel
// that produces s or u calls this, so the fused (grouped_topk) and two-step
// (fused_cast_sigmoid_bias -> noaux_tc) paths see identical bits.
template <int N>
__device__ __forceinline__ void sigmoid_exp_n(const float* x, float* s) {
  float x_min = x[0];
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const float y = 1.f + expf(-x[k]);
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
    s[k] = fmaf(r, -fmaf(y, r, -1.f), r);
    x_min = fminf(x_min, x[k]);
  }
  // y >= 2^126 needs x <= -87.33; -87 is a safe margin (the exact path is exact for any x).
  if (x_min < -87.f) {  // rare and per lane: redo exactly
#pragma unroll
    for (int k = 0; k < N; ++k) s[k] = 1.f / (1.f + expf(-x[k]));
  }
}

__device__ __forceinline__ float sigmoid_exp(float x) {
  float s;
  sigmoid_exp_n<1>(&x, &s);
  return s;
}

__device__ __forceinline__ bool is_finite(float x) { return fabsf(x) < INFINITY; }

// Loads `count` consecutive elements of p into out[0, count) as fp32, leaving the rest of out
// untouched. When count == full and vec_bytes (16 or 8) is non-zero the host has checked that
// p and `full` are aligned to that access size, so whole vectors are used.
template <int C, typename T>
__device__ __forceinline__ void load_chunk(const T* p, int count, int full, int vec_bytes,
                                           float (&out)[C]) {
  constexpr int kV16 = 16 / static_cast<int>(sizeof(T));
  constexpr int kV8 = 8 / static_cast<int>(sizeof(T));
  if constexpr (C % kV16 == 0) {
    if (vec_bytes == 16 && count == full) {
#pragma unroll
      for (int k = 0; k < C; k += kV16)
        if (k < full) load_vec_as_float<kV16>(p + k, out + k);
      return;
    }
  }
  if constexpr (C % kV8 == 0) {
    if (vec_bytes >= 8 && count == full) {
#pragma unroll
      for (int k = 0; k < C; k += kV8)
        if (k < full) load_vec_as_float<kV8>(p + k, out + k);
      return;
    }
  }
#pragma unroll
  for (int k = 0; k < C; ++k)
    if (k < count) out[k] = to_float(p[k]);
}

// Widest access (16, 8 or 0 = scalar) usable for per-lane chunks that start at multiples of
// `granule` elements from p.
template <typename T>
inline int chunk_vec_bytes(const void* p, int granule) {
  if (granule % (16 / static_cast<int>(sizeof(T))) == 0 && is_aligned(p, 16)) return 16;
  if (granule % (8 / static_cast<int>(sizeof(T))) == 0 && is_aligned(p, 8)) return 8;
  return 0;
}

// Up to C candidates of one lane: order-preserving keys (ordered_key; 0 = no candidate or
// already taken) and a payload carried to the pick (s or p, so picks need no re-read).
template <int C>
struct LaneCandidates {
  uint32_t key[C];
  float payload[C];
};

// Per-warp shared scratch of warp_select_topk (and of the caller between its calls).
struct SelectScratch {
  alignas(16) uint32_t key[33];  // lane maxima, then compacted keys; [32] is a dump slot
  uint2 item[33];                // compacted candidates: index, payload bits
  alignas(16) float aux[32];     // free for the caller (grouped routing: group scores)
};

// Selects the k largest keys of a warp (ties -> lowest index) and calls
// emit(r, index, payload) for the r-th pick (r = 0..k-1, descending). Lanes must hold
// ascending, contiguous index ranges (lane_base + position), so lane order is index order.
// For k <= 32 each lane receives at most one pick; for k > 32 pick r goes to lane r % 32.
// tau_hint, if non-zero, must be a key with at least k candidate keys >= it (the caller
// knows k such candidates). Returns k, or 0 (nothing emitted) when fewer than k candidates
// exist. Warp-uniform.
//
// Fast path: tau (the hint, else the k-th largest of the 32 lane maxima) bounds the k-th
// largest key from below, and usually only k plus a few keys reach it. Those are compacted
// (in index order) into shared memory and each ranks itself against the others with
// broadcast reads. No step is a chain of dependent warp collectives, which is what bounds the
// latency of the classic k rounds of warp argmax. When more than 32 keys reach tau (heavy
// ties, k near the lane capacity, k > 32) the k rounds run instead; only the round's winner
// rescans its keys.
template <int C, typename Emit>
__device__ __forceinline__ int warp_select_topk(const LaneCandidates<C>& cand, int lane_base,
                                                int k, uint32_t tau_hint, SelectScratch& scratch,
                                                Emit&& emit) {
  const int lane = threadIdx.x & 31;
  uint32_t tau = 1u;
  if (tau_hint != 0u) {
    tau = tau_hint;
  } else if (k <= 32) {
    // The largest lane maximum m with at least k lane maxima >= m. If fewer than k lanes
    // hold candidates that is 0, and every candidate qualifies (tau = 1).
    uint32_t lane_max = cand.key[0];
#pragma unroll
    for (int i = 1; i < C; ++i) lane_max = max(lane_max, cand.key[i]);
    scratch.key[lane] = lane_max;
    __syncwarp();
    int ge0 = 0, ge1 = 0;
#pragma unroll
    for (int i = 0; i < 32; i += 4) {
      const uint4 m = *reinterpret_cast<const uint4*>(&scratch.key[i]);
      ge0 += (m.x >= lane_max ? 1 : 0) + (m.y >= lane_max ? 1 : 0);
      ge1 += (m.z >= lane_max ? 1 : 0) + (m.w >= lane_max ? 1 : 0);
    }
    tau = max(1u, warp_max_u32(ge0 + ge1 >= k ? lane_max : 0u));
  }

  // Keys >= tau: per-lane counts, exclusive prefix and total from one ballot per count bit.
  int count = 0;
#pragma unroll
  for (int i = 0; i < C; ++i) count += cand.key[i] >= tau ? 1 : 0;
  constexpr int kCountBits = C < 4 ? 3 : C < 8 ? 4 : C < 16 ? 5 : C < 32 ? 6 : C < 64 ? 7 : 8;
  const unsigned lower_lanes = (1u << lane) - 1u;
  int offset = 0, total = 0;
#pragma unroll
  for (int b = 0; b < kCountBits; ++b) {
    const unsigned bits = __ballot_sync(kFullMask, (count >> b) & 1);
    offset += __popc(bits & lower_lanes) << b;
    total += __popc(bits) << b;
  }
  __syncwarp();  // every lane is done with the lane maxima
  if (total < k) return 0;  // only possible when tau == 1: fewer than k candidates in all

  if (k <= 32 && total <= 32) {
    if (lane >= total) scratch.key[lane] = 0u;  // padding never outranks a real key (>= 1)
    // Branch-free compaction: keys below tau go to the dump slot 32.
#pragma unroll
    for (int i = 0; i < C; ++i) {
      const bool take = cand.key[i] >= tau;
      const int slot = take ? offset : 32;
      scratch.key[slot] = cand.key[i];
      scratch.item[slot] = make_uint2(static_cast<uint32_t>(lane_base + i),
                                      __float_as_uint(cand.payload[i]));
      offset += take ? 1 : 0;
    }
    __syncwarp();
    // rank = #(larger keys) + #(equal keys in earlier slots; slot order is index order). The
    // second term is only needed with ties, detected as colliding ranks: one OR-reduction.
    const uint32_t mine = scratch.key[lane];
    int rank = 0;
    for (int i0 = 0; i0 < total; i0 += 8) {
      const uint4 a = *reinterpret_cast<const uint4*>(&scratch.key[i0]);
      const uint4 b = *reinterpret_cast<const uint4*>(&scratch.key[i0 + 4]);
      rank += static_cast<int>(a.x > mine) + static_cast<int>(a.y > mine) +
              static_cast<int>(a.z > mine) + static_cast<int>(a.w > mine) +
              static_cast<int>(b.x > mine) + static_cast<int>(b.y > mine) +
              static_cast<int>(b.z > mine) + static_cast<int>(b.w > mine);
    }
    const unsigned rank_bits = warp_or_u32(lane < total ? 1u << rank : 0u);
    if (__popc(rank_bits) != total) {  // ties: count equal keys in earlier slots
      for (int i = 0; i < lane; ++i) rank += static_cast<int>(scratch.key[i] == mine);
    }
    const uint2 item = scratch.item[lane];
    __syncwarp();  // scratch is reused by the next row
    if (lane < total && rank < k) emit(rank, static_cast<int>(item.x), __uint_as_float(item.y));
    return k;
  }

  // Fallback: k rounds of warp argmax over a private copy of the keys.
  uint32_t key[C];
#pragma unroll
  for (int i = 0; i < C; ++i) key[i] = cand.key[i];
  auto lane_best = [&](uint32_t& best, int& pos) {
    best = key[0];
    pos = 0;
#pragma unroll
    for (int i = 1; i < C; ++i) {
      if (key[i] > best) {
        best = key[i];
        pos = i;
      }
    }
  };
  uint32_t best;
  int pos;
  lane_best(best, pos);
  for (int r = 0; r < k; ++r) {
    uint32_t top;
    const int winner = warp_argmax_lowest_lane(best, &top);
    const int my_best_index = lane_base + pos;
    float payload = 0.f;
    if (lane == winner) {
#pragma unroll
      for (int i = 0; i < C; ++i) {
        if (i == pos) {
          payload = cand.payload[i];
          key[i] = 0u;
        }
      }
      lane_best(best, pos);
    }
    const int index = __shfl_sync(kFullMask, my_best_index, winner);
    payload = __shfl_sync(kFullMask, payload, winner);
    if (lane == (r & 31)) emit(r, index, payload);
  }
  return k;
}

}  // namespace fdops::moe_routing
