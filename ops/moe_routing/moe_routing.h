// Launch functions of the moe_routing family. Arguments are validated by the binding
// (moe_routing_binding.cc) before these are called: pointers are device pointers of contiguous
// row-major tensors with the documented shapes, and num_tokens > 0.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/dtype.h"
#include "ops/common/kernel_table.h"

namespace fdops::moe_routing {

// Largest n_group and topk the kernels support (one warp lane per group / selected expert).
inline constexpr int kMaxGroups = 32;
inline constexpr int kMaxTopK = 32;
// Largest expert count the register-resident kernels hold per token.
inline constexpr int kMaxExperts = 1024;
// moe_topk_select holds one expert per thread of a 256-thread block when fused.
inline constexpr int kMaxFusedSoftmaxExperts = 256;

// logits [T, E] (fp32/fp16/bf16), bias [E] fp32 -> scores [T, E] fp32 (dense, zero except picks),
// topk_values [T, K] fp32, topk_indices [T, K] int64. One launch.
cudaError_t launch_grouped_topk(const void* logits, DType logits_dtype, const float* bias,
                                float* scores, float* topk_values, int64_t* topk_indices,
                                int64_t num_tokens, int num_experts, int n_group, int topk_group,
                                int topk, bool renormalize, float routed_scaling_factor,
                                cudaStream_t stream);

// scores [T, E] fp32 = sigmoid(logits), overwritten in place with the dense row;
// scores_with_bias [T, E] fp32; topk_values [T, K] fp32; topk_indices [T, K] int64.
cudaError_t launch_noaux_tc(float* scores, const float* scores_with_bias, float* topk_values,
                            int64_t* topk_indices, int64_t num_tokens, int num_experts,
                            int n_group, int topk_group, int topk, bool renormalize,
                            float routed_scaling_factor, cudaStream_t stream);

// input [T, E] (fp32/fp16/bf16), bias [E] fp32 -> scores, scores_with_bias [T, E] in out_dtype
// (fp32/fp16/bf16).
cudaError_t launch_fused_cast_sigmoid_bias(const void* input, DType input_dtype, const float* bias,
                                           void* scores, void* scores_with_bias, DType out_dtype,
                                           int64_t num_tokens, int num_experts,
                                           cudaStream_t stream);

// gating_logits [T, E] fp32, bias [E] fp32 or nullptr -> topk_ids [T, K] int64,
// topk_weights [T, K] fp32. fused requires E <= kMaxFusedSoftmaxExperts.
cudaError_t launch_moe_topk_select(const float* gating_logits, const float* bias,
                                   int64_t* topk_ids, float* topk_weights, int64_t num_tokens,
                                   int num_experts, int topk, bool apply_norm_weight, bool fused,
                                   cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_MOE_ROUTING_KERNELS(X)                         \
  X(grouped_topk, launch_grouped_topk)                       \
  X(noaux_tc, launch_noaux_tc)                               \
  X(fused_cast_sigmoid_bias, launch_fused_cast_sigmoid_bias) \
  X(moe_topk_select, launch_moe_topk_select)
FDOPS_KERNEL_TABLE(FDOPS_MOE_ROUTING_KERNELS)

}  // namespace fdops::moe_routing
