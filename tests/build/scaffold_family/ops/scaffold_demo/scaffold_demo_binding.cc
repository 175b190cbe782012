// nanobind binding of the scaffold_demo family: validates every argument, then launches.
#include <cstdint>
#include <vector>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "ops/scaffold_demo/scaffold_demo.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using binding::Tensor;

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<scaffold_demo::KernelTable> family_kernels("scaffold_demo");

void scaled_copy(const Tensor& input, const Tensor& out, double factor, std::uintptr_t stream) {
  const char* op = "scaled_copy";
  const auto& table = family_kernels.table(op);
  binding::check_dtype(op, "input", input, {DType::kFloat32});
  binding::check_dtype(op, "out", out, {DType::kFloat32});
  std::vector<int64_t> shape(input.ndim());
  for (size_t i = 0; i < input.ndim(); ++i) shape[i] = binding::dim(input, i);
  binding::check_shape(op, "out", out, shape, "input.shape");
  const int device = binding::check_cuda_tensors(op, {{"input", &input}, {"out", &out}});
  if (input.size() == 0) return;
  binding::DeviceGuard guard(op, device);
  binding::check_launch(op, table.scaled_copy(static_cast<const float*>(input.data()),
                                              static_cast<float*>(out.data()),
                                              static_cast<float>(factor),
                                              static_cast<int64_t>(input.size()),
                                              binding::as_stream(stream)));
}

}  // namespace

void register_scaffold_demo(nb::module_& m) {
  binding::def(m, "scaled_copy", &scaled_copy, nb::arg("input"), nb::arg("out").noconvert(),
               nb::arg("factor"), nb::arg("stream"), "out = factor * input, float32.");
}

}  // namespace fdops
