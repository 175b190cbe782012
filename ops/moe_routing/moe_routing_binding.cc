// nanobind binding of the moe_routing family: validates every argument, then launches.
#include <nanobind/stl/optional.h>

#include <cmath>
#include <optional>
#include <string>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "ops/moe_routing/moe_routing.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using namespace binding;  // the shared checks, ops/common/binding.h
using moe_routing::kMaxExperts;
using moe_routing::kMaxGroups;
using moe_routing::kMaxTopK;

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<moe_routing::KernelTable> family_kernels("moe_routing");

// A routing bias: fp32 with E elements, as [E] or [1, E].
void check_bias(const char* op, const char* arg, const Tensor& bias, int64_t experts) {
  check_dtype(op, arg, bias, {DType::kFloat32});
  check_rank(op, arg, bias, {1, 2});
  const bool ok = bias.ndim() == 1 ? dim(bias, 0) == experts
                                   : dim(bias, 0) == 1 && dim(bias, 1) == experts;
  FDOPS_CHECK_ARG(ok, op, arg, "have shape [E] or [1, E] with E = " + std::to_string(experts),
                  binding::describe_shape(bias));
}

// The grouped-selection parameters shared by grouped_topk and noaux_tc.
void check_grouping(const char* op, int64_t experts, int n_group, int topk_group, int topk,
                    float routed_scaling_factor) {
  FDOPS_CHECK_ARG(experts >= 1 && experts <= kMaxExperts, op, "E",
                  "be between 1 and " + std::to_string(kMaxExperts) + " experts",
                  std::to_string(experts));
  FDOPS_CHECK_ARG(n_group >= 1 && n_group <= kMaxGroups, op, "n_group",
                  "be between 1 and " + std::to_string(kMaxGroups), std::to_string(n_group));
  FDOPS_CHECK_ARG(experts % n_group == 0, op, "n_group",
                  "divide the number of experts E = " + std::to_string(experts),
                  std::to_string(n_group));
  const int64_t group_size = experts / n_group;
  FDOPS_CHECK_ARG(group_size >= 2, op, "n_group",
                  "leave at least 2 experts per group (E / n_group >= 2), E = " +
                      std::to_string(experts),
                  std::to_string(n_group));
  FDOPS_CHECK_ARG(topk_group >= 1 && topk_group <= n_group, op, "topk_group",
                  "be between 1 and n_group = " + std::to_string(n_group),
                  std::to_string(topk_group));
  const int64_t max_topk = std::min<int64_t>(kMaxTopK, topk_group * group_size);
  FDOPS_CHECK_ARG(topk >= 1 && topk <= max_topk, op, "topk",
                  "be between 1 and min(" + std::to_string(kMaxTopK) +
                      ", topk_group * E / n_group) = " + std::to_string(max_topk),
                  std::to_string(topk));
  FDOPS_CHECK_ARG(std::isfinite(routed_scaling_factor), op, "routed_scaling_factor", "be finite",
                  std::to_string(routed_scaling_factor));
}

void grouped_topk(const Tensor& gating_output, const Tensor& e_score_correction_bias,
                  const Tensor& scores, const Tensor& topk_values, const Tensor& topk_indices,
                  int n_group, int topk_group, int topk, bool renormalize,
                  float routed_scaling_factor, std::uintptr_t stream) {
  const char* op = "grouped_topk";
  const auto& table = family_kernels.table(op);
  const DType dtype = check_dtype(op, "gating_output", gating_output, kFloatTypes);
  check_rank(op, "gating_output", gating_output, {2});
  const int64_t tokens = dim(gating_output, 0), experts = dim(gating_output, 1);
  check_bias(op, "e_score_correction_bias", e_score_correction_bias, experts);
  check_grouping(op, experts, n_group, topk_group, topk, routed_scaling_factor);
  check_dtype(op, "scores", scores, {DType::kFloat32});
  check_shape(op, "scores", scores, {tokens, experts}, "[T, E]");
  check_dtype(op, "topk_values", topk_values, {DType::kFloat32});
  check_shape(op, "topk_values", topk_values, {tokens, topk}, "[T, topk]");
  check_dtype(op, "topk_indices", topk_indices, {DType::kInt64});
  check_shape(op, "topk_indices", topk_indices, {tokens, topk}, "[T, topk]");
  const int device = check_cuda_tensors(op, {{"gating_output", &gating_output},
                                             {"e_score_correction_bias", &e_score_correction_bias},
                                             {"scores", &scores},
                                             {"topk_values", &topk_values},
                                             {"topk_indices", &topk_indices}});
  if (tokens == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.grouped_topk(
                       gating_output.data(), dtype,
                       static_cast<const float*>(e_score_correction_bias.data()),
                       static_cast<float*>(scores.data()), static_cast<float*>(topk_values.data()),
                       static_cast<int64_t*>(topk_indices.data()), tokens,
                       static_cast<int>(experts), n_group, topk_group, topk, renormalize,
                       routed_scaling_factor, binding::as_stream(stream)));
}

void noaux_tc(const Tensor& scores, const Tensor& scores_with_bias, const Tensor& topk_values,
              const Tensor& topk_indices, int n_group, int topk_group, int topk, bool renormalize,
              float routed_scaling_factor, std::uintptr_t stream) {
  const char* op = "noaux_tc";
  const auto& table = family_kernels.table(op);
  check_dtype(op, "scores", scores, {DType::kFloat32});
  check_rank(op, "scores", scores, {2});
  const int64_t tokens = dim(scores, 0), experts = dim(scores, 1);
  check_dtype(op, "scores_with_bias", scores_with_bias, {DType::kFloat32});
  check_shape(op, "scores_with_bias", scores_with_bias, {tokens, experts}, "[T, E]");
  check_grouping(op, experts, n_group, topk_group, topk, routed_scaling_factor);
  check_dtype(op, "topk_values", topk_values, {DType::kFloat32});
  check_shape(op, "topk_values", topk_values, {tokens, topk}, "[T, topk]");
  check_dtype(op, "topk_indices", topk_indices, {DType::kInt64});
  check_shape(op, "topk_indices", topk_indices, {tokens, topk}, "[T, topk]");
  const int device = check_cuda_tensors(op, {{"scores", &scores},
                                             {"scores_with_bias", &scores_with_bias},
                                             {"topk_values", &topk_values},
                                             {"topk_indices", &topk_indices}});
  if (tokens == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.noaux_tc(
                       static_cast<float*>(scores.data()),
                       static_cast<const float*>(scores_with_bias.data()),
                       static_cast<float*>(topk_values.data()),
                       static_cast<int64_t*>(topk_indices.data()), tokens,
                       static_cast<int>(experts), n_group, topk_group, topk, renormalize,
                       routed_scaling_factor, binding::as_stream(stream)));
}

void fused_cast_sigmoid_bias(const Tensor& input, const Tensor& bias, const Tensor& scores,
                             const Tensor& scores_with_bias, std::uintptr_t stream) {
  const char* op = "fused_cast_sigmoid_bias";
  const auto& table = family_kernels.table(op);
  const DType in_dtype = check_dtype(op, "input", input, kFloatTypes);
  check_rank(op, "input", input, {2});
  const int64_t tokens = dim(input, 0), experts = dim(input, 1);
  FDOPS_CHECK_ARG(experts >= 1 && experts <= INT32_MAX, op, "input", "have 1 to 2^31-1 columns",
                  std::to_string(experts));
  check_bias(op, "bias", bias, experts);
  const DType out_dtype = check_dtype(op, "scores", scores, kFloatTypes);
  check_shape(op, "scores", scores, {tokens, experts}, "[T, E]");
  binding::check_dtype_is(op, "scores_with_bias", scores_with_bias, out_dtype, "scores");
  check_shape(op, "scores_with_bias", scores_with_bias, {tokens, experts}, "[T, E]");
  const int device = check_cuda_tensors(op, {{"input", &input},
                                             {"bias", &bias},
                                             {"scores", &scores},
                                             {"scores_with_bias", &scores_with_bias}});
  if (tokens == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.fused_cast_sigmoid_bias(
                       input.data(), in_dtype, static_cast<const float*>(bias.data()),
                       scores.data(), scores_with_bias.data(), out_dtype, tokens,
                       static_cast<int>(experts), binding::as_stream(stream)));
}

void moe_topk_select(const Tensor& gating_logits, std::optional<Tensor> bias,
                     const Tensor& topk_ids, const Tensor& topk_weights, bool apply_norm_weight,
                     bool enable_softmax_top_k_fused, std::uintptr_t stream) {
  const char* op = "moe_topk_select";
  const auto& table = family_kernels.table(op);
  check_dtype(op, "gating_logits", gating_logits, {DType::kFloat32});
  check_rank(op, "gating_logits", gating_logits, {2, 3});
  const int64_t experts = dim(gating_logits, gating_logits.ndim() - 1);
  const int64_t rows = static_cast<int64_t>(gating_logits.size()) / std::max<int64_t>(experts, 1);
  const int64_t limit = enable_softmax_top_k_fused ? moe_routing::kMaxFusedSoftmaxExperts
                                                   : kMaxExperts;
  FDOPS_CHECK_ARG(experts >= 1 && experts <= limit, op, "gating_logits",
                  "have between 1 and " + std::to_string(limit) + " experts in its last dimension" +
                      (enable_softmax_top_k_fused ? " when enable_softmax_top_k_fused" : ""),
                  std::to_string(experts));
  if (bias) check_bias(op, "bias", *bias, experts);
  check_dtype(op, "topk_ids", topk_ids, {DType::kInt64});
  check_rank(op, "topk_ids", topk_ids, {2});
  const int64_t topk = dim(topk_ids, 1);
  FDOPS_CHECK_ARG(topk >= 1 && topk <= std::min<int64_t>(experts, kMaxTopK), op, "moe_topk",
                  "be between 1 and min(E, " + std::to_string(kMaxTopK) + ") = " +
                      std::to_string(std::min<int64_t>(experts, kMaxTopK)),
                  std::to_string(topk));
  check_shape(op, "topk_ids", topk_ids, {rows, topk}, "[rows, moe_topk]");
  check_dtype(op, "topk_weights", topk_weights, {DType::kFloat32});
  check_shape(op, "topk_weights", topk_weights, {rows, topk}, "[rows, moe_topk]");
  const int device =
      bias ? check_cuda_tensors(op, {{"gating_logits", &gating_logits},
                                     {"bias", &*bias},
                                     {"topk_ids", &topk_ids},
                                     {"topk_weights", &topk_weights}})
           : check_cuda_tensors(op, {{"gating_logits", &gating_logits},
                                     {"topk_ids", &topk_ids},
                                     {"topk_weights", &topk_weights}});
  if (rows == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.moe_topk_select(
                       static_cast<const float*>(gating_logits.data()),
                       bias ? static_cast<const float*>(bias->data()) : nullptr,
                       static_cast<int64_t*>(topk_ids.data()),
                       static_cast<float*>(topk_weights.data()), rows, static_cast<int>(experts),
                       static_cast<int>(topk), apply_norm_weight, enable_softmax_top_k_fused,
                       binding::as_stream(stream)));
}

}  // namespace

void register_moe_routing(nb::module_& m) {
  binding::def(m, "grouped_topk", &grouped_topk, nb::arg("gating_output"),
               nb::arg("e_score_correction_bias"), nb::arg("scores").noconvert(),
               nb::arg("topk_values").noconvert(), nb::arg("topk_indices").noconvert(),
               nb::arg("n_group"), nb::arg("topk_group"), nb::arg("topk"), nb::arg("renormalize"),
               nb::arg("routed_scaling_factor"), nb::arg("stream"),
               "Fused sigmoid + bias + grouped top-k (one launch). "
               "See fastdeploy_ops.moe_routing.");
  binding::def(m, "noaux_tc", &noaux_tc, nb::arg("scores").noconvert(), nb::arg("scores_with_bias"),
               nb::arg("topk_values").noconvert(), nb::arg("topk_indices").noconvert(),
               nb::arg("n_group"), nb::arg("topk_group"), nb::arg("topk"), nb::arg("renormalize"),
               nb::arg("routed_scaling_factor"), nb::arg("stream"),
               "Grouped top-k on precomputed sigmoid scores; scores is overwritten in place.");
  binding::def(m, "fused_cast_sigmoid_bias", &fused_cast_sigmoid_bias, nb::arg("input"),
               nb::arg("bias"), nb::arg("scores").noconvert(),
               nb::arg("scores_with_bias").noconvert(), nb::arg("stream"),
               "sigmoid(input) and sigmoid(input) + bias in the outputs' dtype.");
  binding::def(m, "moe_topk_select", &moe_topk_select, nb::arg("gating_logits"),
               nb::arg("bias").none(), nb::arg("topk_ids").noconvert(),
               nb::arg("topk_weights").noconvert(), nb::arg("apply_norm_weight"),
               nb::arg("enable_softmax_top_k_fused"), nb::arg("stream"),
               "Softmax top-k routing with an optional selection bias.");
}

}  // namespace fdops
