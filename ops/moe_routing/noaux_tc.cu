// noaux_tc: grouped top-k on precomputed s = sigmoid(logits) and u = s + bias (fp32); the
// dense result row overwrites s in place.
#include <numeric>

#include "ops/moe_routing/grouped_select.cuh"
#include "ops/moe_routing/moe_routing.h"

namespace fdops::moe_routing {

cudaError_t launch_noaux_tc(float* scores, const float* scores_with_bias, float* topk_values,
                            int64_t* topk_indices, int64_t num_tokens, int num_experts,
                            int n_group, int topk_group, int topk, bool renormalize,
                            float routed_scaling_factor, cudaStream_t stream) {
  GroupedSelectParams p{};
  if (num_tokens < 0 || !make_grouped_layout(p, num_experts, n_group, topk_group, topk))
    return cudaErrorInvalidValue;
  if (num_tokens == 0) return cudaSuccess;
  p.input = scores;  // s is only re-read at the K picks, before the row is overwritten
  p.aux = scores_with_bias;
  p.scores = scores;
  p.topk_values = topk_values;
  p.topk_indices = topk_indices;
  p.num_tokens = num_tokens;
  p.renormalize = renormalize;
  p.routed_scaling_factor = routed_scaling_factor;
  p.scores_vec4 = num_experts % 4 == 0 && is_aligned(scores, 16);
  const int row_granule = std::gcd(std::gcd(p.group_size, p.per_lane), num_experts);
  p.input_vec_bytes = 0;
  p.aux_vec_bytes = chunk_vec_bytes<float>(scores_with_bias, row_granule);
  return launch_grouped_select<float, /*kNoaux=*/true>(p, stream);
}

}  // namespace fdops::moe_routing
