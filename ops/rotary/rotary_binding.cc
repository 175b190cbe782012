// nanobind binding of the rotary family: validates every argument, then launches.
#include <nanobind/stl/optional.h>

#include <cstdint>
#include <optional>
#include <string>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "ops/rotary/rotary.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using namespace binding;  // the shared checks, ops/common/binding.h

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<rotary::KernelTable> family_kernels("rotary");

// q or k: [T, H, head_size] or [T, H * head_size] with T = num_tokens; returns H (>= 1).
int64_t check_heads(const char* op, const char* arg, const Tensor& t, int64_t num_tokens,
                    int64_t head_size) {
  check_rank(op, arg, t, {2, 3});
  FDOPS_CHECK_ARG(dim(t, 0) == num_tokens, op, arg,
                  "have T = " + std::to_string(num_tokens) + " rows (the tokens of 'query')",
                  describe_shape(t));
  if (t.ndim() == 3) {
    FDOPS_CHECK_ARG(dim(t, 2) == head_size && dim(t, 1) >= 1, op, arg,
                    "have shape [T, heads, head_size] with head_size = " +
                        std::to_string(head_size) + " and heads >= 1",
                    describe_shape(t));
    return dim(t, 1);
  }
  FDOPS_CHECK_ARG(dim(t, 1) >= head_size && dim(t, 1) % head_size == 0, op, arg,
                  "have shape [T, heads * head_size] with head_size = " +
                      std::to_string(head_size) + " and heads >= 1",
                  describe_shape(t));
  return dim(t, 1) / head_size;
}

void fused_rotary_position_encoding(const Tensor& query, std::optional<Tensor> key,
                                    const Tensor& position_ids, const Tensor& cos_sin_cache,
                                    int64_t head_size, bool is_neox, std::uintptr_t stream) {
  const char* op = "fused_rotary_position_encoding";
  const auto& table = family_kernels.table(op);
  const DType dtype =
      check_dtype(op, "query", query, {DType::kFloat32, DType::kFloat16, DType::kBFloat16});
  FDOPS_CHECK_ARG(head_size >= 2 && head_size <= INT32_MAX, op, "head_size",
                  "be between 2 and 2^31-1", std::to_string(head_size));
  check_rank(op, "query", query, {2, 3});
  const int64_t num_tokens = dim(query, 0);
  const int64_t num_heads = check_heads(op, "query", query, num_tokens, head_size);
  int64_t num_kv_heads = 0;
  if (key) {
    binding::check_dtype_is(op, "key", *key, dtype, "query");
    num_kv_heads = check_heads(op, "key", *key, num_tokens, head_size);
  }
  FDOPS_CHECK_ARG(num_heads + num_kv_heads <= rotary::kMaxHeads, op, "query",
                  "have at most " + std::to_string(rotary::kMaxHeads) +
                      " heads together with 'key'",
                  std::to_string(num_heads + num_kv_heads) + " heads");
  check_dtype(op, "position_ids", position_ids, {DType::kInt32});
  binding::check_shape(op, "position_ids", position_ids, {num_tokens}, "[T]");
  binding::check_dtype_is(op, "cos_sin_cache", cos_sin_cache, dtype, "query");
  check_rank(op, "cos_sin_cache", cos_sin_cache, {2});
  const int64_t max_position = dim(cos_sin_cache, 0);
  const int64_t rot_dim = dim(cos_sin_cache, 1);
  FDOPS_CHECK_ARG(max_position >= 1 && rot_dim >= 2 && rot_dim % 2 == 0 && rot_dim <= head_size &&
                      rot_dim <= rotary::kMaxRotDim,
                  op, "cos_sin_cache",
                  "have shape [max_position >= 1, rot_dim] with rot_dim even, 2 <= rot_dim <= "
                  "min(head_size, " +
                      std::to_string(rotary::kMaxRotDim) +
                      "), head_size = " + std::to_string(head_size),
                  describe_shape(cos_sin_cache));
  const int device =
      key ? check_cuda_tensors(op, {{"query", &query},
                                    {"key", &*key},
                                    {"position_ids", &position_ids},
                                    {"cos_sin_cache", &cos_sin_cache}})
          : check_cuda_tensors(op, {{"query", &query},
                                    {"position_ids", &position_ids},
                                    {"cos_sin_cache", &cos_sin_cache}});
  if (num_tokens == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.fused_rotary_position_encoding(
                       query.data(), key ? key->data() : nullptr, dtype,
                       static_cast<const int32_t*>(position_ids.data()), cos_sin_cache.data(),
                       num_tokens, static_cast<int>(num_heads), static_cast<int>(num_kv_heads),
                       static_cast<int>(head_size), static_cast<int>(rot_dim), max_position,
                       is_neox, binding::as_stream(stream)));
}

}  // namespace

void register_rotary(nb::module_& m) {
  binding::def(m, "fused_rotary_position_encoding", &fused_rotary_position_encoding,
               nb::arg("query").noconvert(), nb::arg("key").noconvert().none(),
               nb::arg("position_ids"), nb::arg("cos_sin_cache"), nb::arg("head_size"),
               nb::arg("is_neox"), nb::arg("stream"),
               "Rotary position embedding in place on query and key. See fastdeploy_ops.rotary.");
}

}  // namespace fdops
