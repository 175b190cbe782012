// grouped_topk: sigmoid + bias + grouped top-k from raw router logits, one launch.
#include <numeric>

#include "ops/moe_routing/grouped_select.cuh"
#include "ops/moe_routing/moe_routing.h"

namespace fdops::moe_routing {

cudaError_t launch_grouped_topk(const void* logits, DType logits_dtype, const float* bias,
                                float* scores, float* topk_values, int64_t* topk_indices,
                                int64_t num_tokens, int num_experts, int n_group, int topk_group,
                                int topk, bool renormalize, float routed_scaling_factor,
                                cudaStream_t stream) {
  GroupedSelectParams p{};
  if (num_tokens < 0 || !make_grouped_layout(p, num_experts, n_group, topk_group, topk))
    return cudaErrorInvalidValue;
  if (num_tokens == 0) return cudaSuccess;
  p.input = logits;
  p.aux = bias;
  p.scores = scores;
  p.topk_values = topk_values;
  p.topk_indices = topk_indices;
  p.num_tokens = num_tokens;
  p.renormalize = renormalize;
  p.routed_scaling_factor = routed_scaling_factor;
  p.scores_vec4 = num_experts % 4 == 0 && is_aligned(scores, 16);
  // Lane chunks start at g*M + j*S within rows of E elements (the bias has no row stride).
  const int row_granule = std::gcd(std::gcd(p.group_size, p.per_lane), num_experts);
  const int bias_granule = std::gcd(p.group_size, p.per_lane);
  p.aux_vec_bytes = chunk_vec_bytes<float>(bias, bias_granule);
  return dispatch_float_dtype(logits_dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    p.input_vec_bytes = chunk_vec_bytes<T>(logits, row_granule);
    return launch_grouped_select<T, /*kNoaux=*/false>(p, stream);
  });
}

}  // namespace fdops::moe_routing
