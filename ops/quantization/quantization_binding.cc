// nanobind binding of the quantization family: validates every argument, then launches.
//
// float8 data crosses the binding as its bytes: `q` is a uint8 tensor (the Python wrapper passes
// a uint8 view of its float8_e4m3fn output, _tensors.float8_bytes). The padding variant's scale
// arrives as the row-major [scale columns, pad_T] buffer whose transpose the wrapper returns.
//
// The kernel table is looked up after validation (other families look it up first), so the
// argument checks also run in modules built without this family's kernels (SM below 89),
// where the CPU tests exercise them.
#include <cstdint>
#include <string>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "ops/quantization/quantization.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using namespace binding;  // the shared checks, ops/common/binding.h

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<quantization::KernelTable> family_kernels("quantization");

// Both ops: `padding` selects per_token_quant_padding (H % 128 == 0, column-major scales over
// pad_T = ceil(T / 4) * 4 rows, passed as their row-major transpose).
void quantize(const char* op, bool padding, const Tensor& input, const Tensor& q,
              const Tensor& scale, int64_t block_size, bool use_ue8m0, bool finegrained_range,
              std::uintptr_t stream) {
  const DType dtype =
      binding::check_dtype(op, "input", input, {DType::kFloat16, DType::kBFloat16});
  binding::check_rank(op, "input", input, {2});
  const int64_t tokens = dim(input, 0);
  const int64_t hidden = dim(input, 1);
  FDOPS_CHECK_ARG(block_size == quantization::kBlockSize, op, "block_size",
                  "be 128 (the only block size the kernels implement)", std::to_string(block_size));
  const int64_t granule = padding ? quantization::kBlockSize : 4;
  FDOPS_CHECK_ARG(hidden % granule == 0, op, "input",
                  "have a hidden size (shape[1]) divisible by " + std::to_string(granule),
                  "shape " + binding::describe_shape(input));
  binding::check_dtype(op, "q", q, {DType::kUInt8});  // the bytes of float8_e4m3fn
  binding::check_shape(op, "q", q, {tokens, hidden}, "[T, H]");
  binding::check_dtype(op, "scale", scale, {use_ue8m0 ? DType::kInt32 : DType::kFloat32});
  const int64_t blocks = (hidden + quantization::kBlockSize - 1) / quantization::kBlockSize;
  const int64_t columns =
      use_ue8m0 ? (blocks + quantization::kBlocksPerWord - 1) / quantization::kBlocksPerWord
                : blocks;
  const int64_t padded = (tokens + 3) / 4 * 4;
  if (padding) {
    binding::check_shape(op, "scale", scale, {columns, padded},
                         use_ue8m0 ? "[ceil(H / 512), pad_T] (the transposed buffer of the "
                                     "column-major scale, pad_T = ceil(T / 4) * 4)"
                                   : "[H / 128, pad_T] (the transposed buffer of the "
                                     "column-major scale, pad_T = ceil(T / 4) * 4)");
  } else {
    binding::check_shape(op, "scale", scale, {tokens, columns},
                         use_ue8m0 ? "[T, ceil(H / 512)]" : "[T, ceil(H / 128)]");
  }
  const int device =
      binding::check_cuda_tensors(op, {{"input", &input}, {"q", &q}, {"scale", &scale}});
  const auto& table = family_kernels.table(op);
  if (tokens == 0 || hidden == 0) return;
  binding::DeviceGuard guard(op, device);
  auto* bytes = static_cast<uint8_t*>(q.data());
  const cudaStream_t s = binding::as_stream(stream);
  binding::check_launch(
      op, padding ? table.per_token_quant_padding(input.data(), dtype, bytes, scale.data(), tokens,
                                                  hidden, padded, use_ue8m0, finegrained_range, s)
                  : table.per_token_quant(input.data(), dtype, bytes, scale.data(), tokens,
                                          hidden, use_ue8m0, finegrained_range, s));
}

void per_token_quant(const Tensor& input, const Tensor& q, const Tensor& scale,
                     int64_t block_size, bool use_ue8m0, bool finegrained_range,
                     std::uintptr_t stream) {
  quantize("per_token_quant", false, input, q, scale, block_size, use_ue8m0, finegrained_range,
           stream);
}

void per_token_quant_padding(const Tensor& input, const Tensor& q, const Tensor& scale,
                             int64_t block_size, bool use_ue8m0, bool finegrained_range,
                             std::uintptr_t stream) {
  quantize("per_token_quant_padding", true, input, q, scale, block_size, use_ue8m0,
           finegrained_range, stream);
}

}  // namespace

void register_quantization(nb::module_& m) {
  binding::def(m, "per_token_quant", &per_token_quant, nb::arg("input"), nb::arg("q").noconvert(),
               nb::arg("scale").noconvert(), nb::arg("block_size"), nb::arg("use_ue8m0"),
               nb::arg("finegrained_range"), nb::arg("stream"),
               "fp8 e4m3 quantisation per token and 128-element block. "
               "See fastdeploy_ops.quantization.");
  binding::def(m, "per_token_quant_padding", &per_token_quant_padding, nb::arg("input"),
               nb::arg("q").noconvert(), nb::arg("scale").noconvert(), nb::arg("block_size"),
               nb::arg("use_ue8m0"), nb::arg("finegrained_range"), nb::arg("stream"),
               "per_token_quant with column-major scales padded to a multiple of 4 tokens. See "
               "fastdeploy_ops.quantization.");
}

}  // namespace fdops
