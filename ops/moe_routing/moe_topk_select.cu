// moe_topk_select: softmax top-k routing with an optional selection bias
// (ops/moe_routing/README.md).
//
// One warp per row, lane l holding the contiguous experts [l*S, (l+1)*S), S = ceil(E/32), in
// registers (capacity C >= S). Softmax is max-subtracted fp32 with a multiply by 1/sum; the
// top-k is warp_select_topk (routing.cuh; ties -> lowest index, ids in selection order), with
// the weight (p, or (p + bias) - bias on the fused path) carried along as the payload.
#include <cstdint>
#include <numeric>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/common/warp.cuh"
#include "ops/moe_routing/moe_routing.h"
#include "ops/moe_routing/routing.cuh"

namespace fdops::moe_routing {
// Named, not anonymous: nvcc mangles anonymous namespaces with a per-compilation hash, which
// would make objects differ between otherwise identical builds.
namespace moe_topk_select_impl {

constexpr int kWarpsPerBlock = 4;

struct TopkSelectParams {
  const float* logits;  // [T, E]
  const float* bias;    // [E] or nullptr
  int64_t* topk_ids;    // [T, K]
  float* topk_weights;  // [T, K]
  int64_t num_tokens;
  int num_experts, topk, per_lane;
  int vec_bytes;        // per-lane chunk access width (16, 8, 0)
  int bias_vec_bytes;
  bool normalize;
  bool fused;           // weights = (p + bias) - bias, the fused upstream path's rounding
};

template <int C>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) moe_topk_select_kernel(const TopkSelectParams p) {
  wait_for_dependencies();
  allow_dependent_launch();
  const int lane = threadIdx.x & 31;
  const int num_experts = p.num_experts;
  const int topk = p.topk;
  const int base = lane * p.per_lane;
  const int count = max(0, min(p.per_lane, num_experts - base));
  const bool has_bias = p.bias != nullptr;
  __shared__ SelectScratch scratch_all[kWarpsPerBlock];
  SelectScratch& scratch = scratch_all[threadIdx.x / 32];

  float b[C] = {};
  if (has_bias) load_chunk<C>(p.bias + base, count, p.per_lane, p.bias_vec_bytes, b);

  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
       t < p.num_tokens; t += static_cast<int64_t>(gridDim.x) * kWarpsPerBlock) {
    float x[C];
#pragma unroll
    for (int k = 0; k < C; ++k) x[k] = -INFINITY;
    load_chunk<C>(p.logits + t * num_experts + base, count, p.per_lane, p.vec_bytes, x);

    float local_max = -INFINITY;
#pragma unroll
    for (int k = 0; k < C; ++k) local_max = fmaxf(local_max, x[k]);
    const float row_max = warp_max(local_max);
    float local_sum = 0.f;
#pragma unroll
    for (int k = 0; k < C; ++k) {
      x[k] = k < count ? expf(x[k] - row_max) : 0.f;
      local_sum += x[k];
    }
    const float inv_sum = 1.f / warp_sum(local_sum);

    LaneCandidates<C> cand;
#pragma unroll
    for (int k = 0; k < C; ++k) {
      const float prob = x[k] * inv_sum;
      const float key = has_bias ? prob + b[k] : prob;
      // The fused upstream path reports (p + bias) - bias; the other paths p itself.
      cand.payload[k] = p.fused && has_bias ? key - b[k] : prob;
      // Present experts get keys >= 1 (even for -inf or -0 keys), absent slots 0, so all
      // K <= E picks stay in range.
      cand.key[k] = k < count ? max(ordered_key(key + 0.f), 1u) : 0u;
    }

    int64_t* ids = p.topk_ids + t * topk;
    float* weights = p.topk_weights + t * topk;
    if (topk <= 32) {
      int my_rank = -1;
      float w = 0.f;
      warp_select_topk(cand, base, topk, 0u, scratch, [&](int r, int index, float value) {
        my_rank = r;
        w = value;
        ids[r] = index;
      });
      if (p.normalize) w = w / warp_sum(w);  // lanes without a pick add 0
      if (my_rank >= 0) weights[my_rank] = w;
    } else {
      // Lane r % 32 receives pick r: write weights as they come, rescale this lane's own
      // writes afterwards (program order, no cross-lane reads).
      float partial = 0.f;
      warp_select_topk(cand, base, topk, 0u, scratch, [&](int r, int index, float value) {
        ids[r] = index;
        weights[r] = value;
        partial += value;
      });
      if (p.normalize) {
        const float sum = warp_sum(partial);
        for (int r = lane; r < topk; r += 32) weights[r] = weights[r] / sum;
      }
    }
  }
}

}  // namespace moe_topk_select_impl

using namespace moe_topk_select_impl;

cudaError_t launch_moe_topk_select(const float* gating_logits, const float* bias,
                                   int64_t* topk_ids, float* topk_weights, int64_t num_tokens,
                                   int num_experts, int topk, bool apply_norm_weight, bool fused,
                                   cudaStream_t stream) {
  if (num_tokens < 0 || num_experts < 1 || num_experts > kMaxExperts || topk < 1 ||
      topk > num_experts || (fused && num_experts > kMaxFusedSoftmaxExperts))
    return cudaErrorInvalidValue;
  if (num_tokens == 0) return cudaSuccess;
  TopkSelectParams p{};
  p.logits = gating_logits;
  p.bias = bias;
  p.topk_ids = topk_ids;
  p.topk_weights = topk_weights;
  p.num_tokens = num_tokens;
  p.num_experts = num_experts;
  p.topk = topk;
  p.per_lane = (num_experts + 31) / 32;
  p.normalize = apply_norm_weight;
  p.fused = fused;
  // Full lanes start at multiples of per_lane within rows of E elements.
  p.vec_bytes = chunk_vec_bytes<float>(gating_logits, std::gcd(p.per_lane, num_experts));
  p.bias_vec_bytes = bias ? chunk_vec_bytes<float>(bias, p.per_lane) : 0;
  const int64_t blocks_needed = (num_tokens + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const unsigned blocks =
      static_cast<unsigned>(blocks_needed < (1 << 30) ? blocks_needed : (1 << 30));
  return dispatch_capacity<4, 8, 16, 32>(p.per_lane, [&](auto cap) {
    return launch_kernel(moe_topk_select_kernel<decltype(cap)::value>, blocks, kWarpsPerBlock * 32,
                         0, stream, p);
  });
}

}  // namespace fdops::moe_routing
