// Grouped (DeepSeek-V3 "noaux_tc") expert selection: rules 1-8 of ops/moe_routing/README.md.
// One template serves grouped_topk (raw logits + bias, sigmoid fused in) and noaux_tc
// (precomputed s and u), so both select identically.
//
// Design: one warp per token at a time, kGroupedWarpsPerBlock warps per block, at most one wave
// of blocks (warps loop over tokens). The 32 lanes are split
// into n_group slices of L = 2^floor(log2(32 / n_group)) lanes; lane j of slice g holds the
// contiguous experts [g*M + j*S, g*M + (j+1)*S), S = ceil(M / L), in registers (capacity C >= S).
// For the common shapes (n_group a power of two) this is the plain blocked layout with 16-byte
// loads. Lane order equals expert order, so lowest-index tie breaks fall out of lane order;
// group top-2 is an xor butterfly inside a slice; group ranks compare against all group
// scores in shared memory; the top-k is warp_select_topk (routing.cuh). s travels with each
// candidate as its payload (noaux_tc re-reads it at the K picks), so no pass re-reads the row.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/common/warp.cuh"
#include "ops/moe_routing/moe_routing.h"
#include "ops/moe_routing/routing.cuh"

namespace fdops::moe_routing {

inline constexpr int kGroupedWarpsPerBlock = 4;

struct GroupedSelectParams {
  const void* input;     // grouped_topk: logits [T, E] (InT); noaux_tc: s [T, E] fp32 (== scores)
  const float* aux;      // grouped_topk: bias [E]; noaux_tc: u [T, E]
  float* scores;         // dense [T, E] output (noaux_tc: in place over input)
  float* topk_values;    // [T, K]
  int64_t* topk_indices; // [T, K]
  int64_t num_tokens;
  int num_experts, n_group, topk_group, topk;
  int group_size;        // M = E / n_group
  int per_lane;          // S = ceil(M / L)
  int lanes_log2;        // log2(L)
  int input_vec_bytes;   // 16, 8 or 0 for per-lane chunks of input (grouped_topk only)
  int aux_vec_bytes;     // same for aux
  bool scores_vec4;      // dense row writable with float4
  bool renormalize;
  float routed_scaling_factor;
  float fallback_value;  // 1.f / topk, divided on the host (keeps a division call out of the kernel)
};

// Top-2 of the slice's u values (counting multiplicity; absent slots are -inf and M >= 2
// guarantees two real values per group): m1 >= m2, the same on every lane of the slice.
// m1 + m2 is the group score of rule 3.
template <int C>
__device__ __forceinline__ void group_top2(const float (&u)[C], int lanes_log2, float& m1,
                                           float& m2) {
  m1 = -INFINITY;
  m2 = -INFINITY;
#pragma unroll
  for (int k = 0; k < C; ++k) {
    m2 = fmaxf(m2, fminf(m1, u[k]));
    m1 = fmaxf(m1, u[k]);
  }
  for (int offset = 1; offset < (1 << lanes_log2); offset <<= 1) {
    const float o1 = __shfl_xor_sync(kFullMask, m1, offset);
    const float o2 = __shfl_xor_sync(kFullMask, m2, offset);
    m2 = fmaxf(fminf(m1, o1), fmaxf(m2, o2));
    m1 = fmaxf(m1, o1);
  }
}

// Zeroes a dense [E] fp32 row with the whole warp.
__device__ __forceinline__ void zero_row(float* row, int num_experts, bool vec4) {
  const int lane = threadIdx.x & 31;
  if (vec4) {
    float4* row4 = reinterpret_cast<float4*>(row);
    const int n4 = num_experts / 4;
    for (int i = lane; i < n4; i += 64) {  // E = 256: one trip, two stores
      row4[i] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (i + 32 < n4) row4[i + 32] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
  } else {
    for (int i = lane; i < num_experts; i += 32) row[i] = 0.f;
  }
}

template <typename InT, int C, bool kNoaux>
__global__ void __launch_bounds__(kGroupedWarpsPerBlock * 32)
    grouped_select_kernel(const GroupedSelectParams p) {
  const int lane = threadIdx.x & 31;
  const int g = lane >> p.lanes_log2;
  const int j = lane & ((1 << p.lanes_log2) - 1);
  const bool in_group = g < p.n_group;
  const int base = g * p.group_size + j * p.per_lane;  // first expert of this lane
  const int count = in_group ? max(0, min(p.per_lane, p.group_size - j * p.per_lane)) : 0;
  const int num_experts = p.num_experts;
  const int n_group = p.n_group;
  const int topk = p.topk;
  __shared__ SelectScratch scratch_all[kGroupedWarpsPerBlock];
  SelectScratch& scratch = scratch_all[threadIdx.x / 32];

  // launch_kernel() may start this grid while the previous kernel finishes (PDL): wait for
  // it before touching memory. The grid is at most one wave, so letting the next kernel launch
  // now cannot take slots from blocks of this one.
  wait_for_dependencies();
  allow_dependent_launch();
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kGroupedWarpsPerBlock + threadIdx.x / 32;
       t < p.num_tokens; t += static_cast<int64_t>(gridDim.x) * kGroupedWarpsPerBlock) {
    const int64_t row = t * num_experts;
    float* out_row = p.scores + row;

    // Rules 1-2: u = s + b in fp32 (noaux_tc: given). Absent slots are -inf.
    float u[C];
    LaneCandidates<C> cand;
    if constexpr (kNoaux) {
#pragma unroll
      for (int k = 0; k < C; ++k) u[k] = -INFINITY;
      load_chunk<C>(p.aux + row + base, count, p.per_lane, p.aux_vec_bytes, u);
#pragma unroll
      for (int k = 0; k < C; ++k) {
        u[k] += 0.f;  // -0 + 0 = +0: user-supplied -0 ties with +0 in the integer keys
        cand.payload[k] = 0.f;  // s is read at the picks only (the row is overwritten)
      }
    } else {
      // grouped_topk writes a separate scores tensor: zero it first so the stores drain
      // while the warp computes; the picks land after the __syncwarp()s below.
      zero_row(out_row, num_experts, p.scores_vec4);
      float x[C], b[C];
#pragma unroll
      for (int k = 0; k < C; ++k) x[k] = b[k] = 0.f;
      load_chunk<C>(static_cast<const InT*>(p.input) + row + base, count, p.per_lane,
                    p.input_vec_bytes, x);
      load_chunk<C>(p.aux + base, count, p.per_lane, p.aux_vec_bytes, b);
      sigmoid_exp_n<C>(x, cand.payload);  // branch-free over all slots; absent ones unused
#pragma unroll
      for (int k = 0; k < C; ++k) u[k] = k < count ? cand.payload[k] + b[k] : -INFINITY;
    }

    // Rules 3-4: group scores, then each lane ranks its group (ties -> lower group index) against
    // all group scores, read back from shared memory.
    float m1, m2;
    group_top2(u, p.lanes_log2, m1, m2);
    float gs = m1 + m2;
    // noaux_tc never selects a non-finite group score and falls back when fewer than
    // topk_group are finite; grouped_topk ranks raw scores and falls back when the
    // topk_group-th best is -inf.
    if constexpr (kNoaux) gs = is_finite(gs) ? gs : -INFINITY;
    if (j == 0 && in_group) scratch.aux[g] = gs;
    if (lane >= n_group && lane < ((n_group + 7) & ~7)) scratch.aux[lane] = -INFINITY;  // padding
    __syncwarp();
    int rank = 0;  // groups before mine: larger score, or equal score and lower index
    for (int h0 = 0; h0 < n_group; h0 += 8) {
      const float4 a = *reinterpret_cast<const float4*>(&scratch.aux[h0]);
      const float4 b = *reinterpret_cast<const float4*>(&scratch.aux[h0 + 4]);
      const float o[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
        rank += static_cast<int>(o[i] > gs) | (static_cast<int>(o[i] == gs) & static_cast<int>(h0 + i < g));
    }
    const bool selected = in_group && rank < p.topk_group;
    bool fallback = __any_sync(kFullMask, selected && gs == -INFINITY);  // also orders aux reads

    // Rule 5: finite u of the selected groups compete; descending, ties -> lower index. Each
    // lane receives at most one pick (K <= 32): my_rank is its output position.
    int my_rank = -1, my_index = 0;
    float w = 0.f;
    if (!fallback) {
#pragma unroll
      for (int k = 0; k < C; ++k)
        cand.key[k] = (selected && is_finite(u[k])) ? ordered_key(u[k]) : 0u;  // absent: -inf
      // When 2 * topk_group == K (DeepSeek-V3), the selected groups' top-2 values are K
      // distinct candidates if finite, so their minimum is a valid tau for the selection.
      uint32_t tau_hint = 0u;
      if (2 * p.topk_group == topk &&
          __all_sync(kFullMask, !selected || (m1 < INFINITY && m2 > -INFINITY)))
        tau_hint = ~warp_max_u32(selected ? ~ordered_key(m2 + 0.f) : 0u);  // min over groups
      const int picked = warp_select_topk(cand, base, topk, tau_hint, scratch, [&](int r, int index, float s) {
        my_rank = r;
        my_index = index;
        w = s;
      });
      fallback = picked < topk;  // fewer than K finite candidates: fallback (rule 8)
    }

    // Rule 6: w = s at the picks, renormalised/scaled; rule 8 fallback: 1/K, unscaled.
    float value = p.fallback_value;
    if (fallback) {
      my_rank = lane < topk ? lane : -1;
      my_index = lane;
    } else {
      if constexpr (kNoaux) {
        if (my_rank >= 0) w = p.scores[row + my_index];  // s, before the row is overwritten
      }
      const float rsf = p.routed_scaling_factor;
      if (!p.renormalize) {
        value = w * rsf;
      } else {
        const float sum = warp_sum(w);  // lanes without a pick add 0
        if constexpr (kNoaux) {
          value = (w / (sum + 1e-20f)) * rsf;
        } else {
          value = w * (rsf / (sum + 1e-20f));
        }
      }
    }

    // Rule 7: dense row: zeros (grouped_topk: written above) except the picks. noaux_tc reads s
    // from this row; those reads completed before the barrier (their values were used).
    if constexpr (kNoaux) {
      __syncwarp();
      zero_row(out_row, num_experts, p.scores_vec4);
    }
    __syncwarp();  // orders the zeros before the picks written by other lanes
    if (my_rank >= 0) {
      if (!fallback) out_row[my_index] = value;
      p.topk_values[t * topk + my_rank] = value;
      p.topk_indices[t * topk + my_rank] = my_index;
    }
  }
}

// Validates the shape arguments (cheap; the binding has checked them too) and fills the
// layout fields of GroupedSelectParams. Returns false for unsupported shapes.
inline bool make_grouped_layout(GroupedSelectParams& p, int num_experts, int n_group,
                                int topk_group, int topk) {
  if (n_group < 1 || n_group > kMaxGroups || num_experts < 1 || num_experts > kMaxExperts ||
      num_experts % n_group != 0)
    return false;
  const int m = num_experts / n_group;
  if (m < 2 || topk_group < 1 || topk_group > n_group || topk < 1 || topk > kMaxTopK ||
      topk > topk_group * m)
    return false;
  int lanes_log2 = 0;
  while ((2 << lanes_log2) * n_group <= 32) ++lanes_log2;
  p.num_experts = num_experts;
  p.n_group = n_group;
  p.topk_group = topk_group;
  p.topk = topk;
  p.fallback_value = 1.f / static_cast<float>(topk);
  p.group_size = m;
  p.lanes_log2 = lanes_log2;
  p.per_lane = (m + (1 << lanes_log2) - 1) >> lanes_log2;
  return true;
}

// Launches grouped_select_kernel for a filled GroupedSelectParams, one token per warp up to
// one wave of blocks. Per-lane capacities 4/8/16/32 cover every n_group that is a power of
// two; 64 exists for odd group counts (e.g. E = 1020, n_group = 17 gives S = 60).
template <typename InT, bool kNoaux>
inline cudaError_t launch_grouped_select(const GroupedSelectParams& p, cudaStream_t stream) {
  constexpr int kThreads = kGroupedWarpsPerBlock * 32;
  const int64_t blocks_needed = (p.num_tokens + kGroupedWarpsPerBlock - 1) / kGroupedWarpsPerBlock;
  return dispatch_capacity<4, 8, 16, 32, 64>(p.per_lane, [&](auto cap) {
    constexpr auto kernel = grouped_select_kernel<InT, decltype(cap)::value, kNoaux>;
    const unsigned wave = resident_blocks<kernel>(kThreads);
    const unsigned blocks = static_cast<unsigned>(blocks_needed < wave ? blocks_needed : wave);
    return launch_kernel(kernel, blocks, kThreads, 0, stream, p);
  });
}

}  // namespace fdops::moe_routing
