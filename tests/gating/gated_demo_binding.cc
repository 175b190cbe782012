// nanobind binding of the test-only gated_demo family.
#include <string>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "tests/gating/gated_demo.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using binding::Tensor;

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<gated_demo::KernelTable> family_kernels("gated_demo");

void gated_demo_warp_sum(const Tensor& input, const Tensor& out, std::uintptr_t stream) {
  const char* op = "gated_demo_warp_sum";
  const auto& table = family_kernels.table(op);
  binding::check_dtype(op, "input", input, {DType::kInt32});
  binding::check_rank(op, "input", input, {1});
  const int64_t n = binding::dim(input, 0);
  FDOPS_CHECK_ARG(n % 32 == 0 && n / 32 <= INT32_MAX, op, "input",
                  "have a multiple of 32 elements", std::to_string(n));
  binding::check_dtype(op, "out", out, {DType::kInt32});
  binding::check_shape(op, "out", out, {n / 32}, "[len(input) / 32]");
  const int device = binding::check_cuda_tensors(op, {{"input", &input}, {"out", &out}});
  if (n == 0) return;
  binding::DeviceGuard guard(op, device);
  binding::check_launch(op, table.warp_sum(static_cast<const int32_t*>(input.data()),
                                           static_cast<int32_t*>(out.data()), n / 32,
                                           binding::as_stream(stream)));
}

}  // namespace

void register_gated_demo(nb::module_& m) {
  binding::def(m, "gated_demo_warp_sum", &gated_demo_warp_sum, nb::arg("input"),
               nb::arg("out").noconvert(), nb::arg("stream"),
               "Test-only SM80+ op: out[w] = sum(input[32 w: 32 w + 32]).");
}

}  // namespace fdops
