// nanobind binding of the activation family: validates every argument, then launches.
#include "ops/activation/activation.h"
#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using binding::Tensor;

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<activation::KernelTable> family_kernels("activation");

void gelu_tanh(const Tensor& input, const Tensor& out, std::uintptr_t stream) {
  const char* op = "gelu_tanh";
  const auto& table = family_kernels.table(op);
  const DType dtype = binding::check_dtype(op, "input", input,
                                           {DType::kFloat32, DType::kFloat16, DType::kBFloat16});
  binding::check_dtype_is(op, "out", out, dtype, "input");
  std::vector<int64_t> shape(input.ndim());
  for (size_t i = 0; i < input.ndim(); ++i) shape[i] = binding::dim(input, i);
  binding::check_shape(op, "out", out, shape, "input.shape");
  const int device = binding::check_cuda_tensors(op, {{"input", &input}, {"out", &out}});
  if (input.size() == 0) return;
  binding::DeviceGuard guard(op, device);
  binding::check_launch(op, table.gelu_tanh(input.data(), out.data(), dtype,
                                            static_cast<int64_t>(input.size()),
                                            binding::as_stream(stream)));
}

}  // namespace

void register_activation(nb::module_& m) {
  binding::def(m, "gelu_tanh", &gelu_tanh, nb::arg("input"), nb::arg("out").noconvert(),
               nb::arg("stream"),
               "out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), fp32 math.");
}

}  // namespace fdops
