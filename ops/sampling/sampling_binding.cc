// nanobind binding of the sampling family: validates every argument, then launches.
#include <nanobind/stl/optional.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "ops/sampling/sampling.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using namespace binding;  // the shared checks, ops/common/binding.h
using sampling::kMaxVocab;

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<sampling::KernelTable> family_kernels("sampling");

// probs: fp32 [B, V] with 1 <= V <= kMaxVocab. Returns {B, V}.
std::pair<int64_t, int64_t> check_probs(const char* op, const Tensor& probs) {
  check_dtype(op, "probs", probs, {DType::kFloat32});
  check_rank(op, "probs", probs, {2});
  const int64_t rows = dim(probs, 0), vocab = dim(probs, 1);
  FDOPS_CHECK_ARG(vocab >= 1 && vocab <= kMaxVocab, op, "probs",
                  "have between 1 and 2^30 columns (the vocabulary)", std::to_string(vocab));
  FDOPS_CHECK_ARG(rows <= INT32_MAX, op, "probs", "have at most 2^31 - 1 rows",
                  std::to_string(rows));
  return {rows, vocab};
}

// A per-row parameter tensor: shape [B] or [B, 1].
void check_per_row(const char* op, const char* arg, const Tensor& t, int64_t rows) {
  binding::check_per_row_shape(op, arg, t, rows, "B");
}

sampling::TopK check_top_k(const char* op, const std::optional<Tensor>& top_k, int64_t scalar,
                           int64_t rows) {
  sampling::TopK k;
  if (top_k) {
    const DType dtype = check_dtype(op, "top_k", *top_k, {DType::kInt64, DType::kInt32});
    check_per_row(op, "top_k", *top_k, rows);
    k.values = top_k->data();
    k.is_int64 = dtype == DType::kInt64;
  } else {
    FDOPS_CHECK_ARG(scalar >= 0, op, "top_k", "be >= 0 (0: no top-k limit)",
                    std::to_string(scalar));
    k.scalar = scalar;
  }
  return k;
}

sampling::TopP check_top_p(const char* op, const std::optional<Tensor>& top_p, float scalar,
                           int64_t rows) {
  sampling::TopP p;
  if (top_p) {
    check_dtype(op, "top_p", *top_p, {DType::kFloat32});
    check_per_row(op, "top_p", *top_p, rows);
    p.values = static_cast<const float*>(top_p->data());
  } else {
    FDOPS_CHECK_ARG(scalar > 0.f && scalar <= 1.f, op, "top_p", "be in (0, 1]",
                    std::to_string(scalar));
    p.scalar = scalar;
  }
  return p;
}

// check_cuda_tensors over the given tensors, skipping absent optional ones.
int check_devices(const char* op, const Tensor& probs, const char* param_name,
                  const std::optional<Tensor>& param, const char* param2_name,
                  const std::optional<Tensor>& param2, const char* out_name, const Tensor& out) {
  NamedTensor list[4];
  int n = 0;
  list[n++] = {"probs", &probs};
  if (param) list[n++] = {param_name, &*param};
  if (param2) list[n++] = {param2_name, &*param2};
  list[n++] = {out_name, &out};
  switch (n) {
    case 2: return check_cuda_tensors(op, {list[0], list[1]});
    case 3: return check_cuda_tensors(op, {list[0], list[1], list[2]});
    default: return check_cuda_tensors(op, {list[0], list[1], list[2], list[3]});
  }
}

void top_k_renorm_probs(const Tensor& probs, std::optional<Tensor> top_k, int64_t top_k_scalar,
                        const Tensor& renorm_probs, std::uintptr_t stream) {
  const char* op = "top_k_renorm_probs";
  const auto& table = family_kernels.table(op);
  const auto [rows, vocab] = check_probs(op, probs);
  const sampling::TopK k = check_top_k(op, top_k, top_k_scalar, rows);
  check_dtype(op, "renorm_probs", renorm_probs, {DType::kFloat32});
  check_shape(op, "renorm_probs", renorm_probs, {rows, vocab}, "[B, V]");
  const int device = check_devices(op, probs, "top_k", top_k, "", std::nullopt, "renorm_probs",
                                   renorm_probs);
  if (rows == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.top_k_renorm_probs(
                       static_cast<const float*>(probs.data()), k,
                       static_cast<float*>(renorm_probs.data()), rows, static_cast<int>(vocab),
                       binding::as_stream(stream)));
}

void top_p_renorm_probs(const Tensor& probs, std::optional<Tensor> top_p, float top_p_scalar,
                        const Tensor& renorm_probs, std::uintptr_t stream) {
  const char* op = "top_p_renorm_probs";
  const auto& table = family_kernels.table(op);
  const auto [rows, vocab] = check_probs(op, probs);
  const sampling::TopP p = check_top_p(op, top_p, top_p_scalar, rows);
  check_dtype(op, "renorm_probs", renorm_probs, {DType::kFloat32});
  check_shape(op, "renorm_probs", renorm_probs, {rows, vocab}, "[B, V]");
  const int device = check_devices(op, probs, "top_p", top_p, "", std::nullopt, "renorm_probs",
                                   renorm_probs);
  if (rows == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.top_p_renorm_probs(
                       static_cast<const float*>(probs.data()), p,
                       static_cast<float*>(renorm_probs.data()), rows, static_cast<int>(vocab),
                       binding::as_stream(stream)));
}

void top_k_top_p_sampling_from_probs(const Tensor& probs, std::optional<Tensor> top_k,
                                     int64_t top_k_scalar, std::optional<Tensor> top_p,
                                     float top_p_scalar, int64_t seed, int64_t offset,
                                     const Tensor& samples, std::uintptr_t stream) {
  // seed and offset are 64-bit patterns passed as int64 (what torch operators take); the
  // Python wrapper maps [0, 2**64) onto them.
  const char* op = "top_k_top_p_sampling_from_probs";
  const auto& table = family_kernels.table(op);
  const auto [rows, vocab] = check_probs(op, probs);
  const sampling::TopK k = check_top_k(op, top_k, top_k_scalar, rows);
  const sampling::TopP p = check_top_p(op, top_p, top_p_scalar, rows);
  check_dtype(op, "samples", samples, {DType::kInt64});
  check_shape(op, "samples", samples, {rows}, "[B]");
  const int device = check_devices(op, probs, "top_k", top_k, "top_p", top_p, "samples", samples);
  if (rows == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.top_k_top_p_sampling_from_probs(
                       static_cast<const float*>(probs.data()), k, p,
                       static_cast<uint64_t>(seed), static_cast<uint64_t>(offset),
                       static_cast<int64_t*>(samples.data()), rows, static_cast<int>(vocab),
                       binding::as_stream(stream)));
}

}  // namespace

void register_sampling(nb::module_& m) {
  binding::def(m, "top_k_renorm_probs", &top_k_renorm_probs, nb::arg("probs"),
               nb::arg("top_k").none(), nb::arg("top_k_scalar"),
               nb::arg("renorm_probs").noconvert(), nb::arg("stream"),
               "Top-k renormalisation of probabilities. See fastdeploy_ops.sampling.");
  binding::def(m, "top_p_renorm_probs", &top_p_renorm_probs, nb::arg("probs"),
               nb::arg("top_p").none(), nb::arg("top_p_scalar"),
               nb::arg("renorm_probs").noconvert(), nb::arg("stream"),
               "Top-p renormalisation of probabilities. See fastdeploy_ops.sampling.");
  binding::def(m, "top_k_top_p_sampling_from_probs", &top_k_top_p_sampling_from_probs,
               nb::arg("probs"), nb::arg("top_k").none(), nb::arg("top_k_scalar"),
               nb::arg("top_p").none(), nb::arg("top_p_scalar"), nb::arg("seed"), nb::arg("offset"),
               nb::arg("samples").noconvert(), nb::arg("stream"),
               "Rejection sampling from the joint top-k / top-p set. See fastdeploy_ops.sampling.");
}

}  // namespace fdops
