// Argument validation shared by every family's nanobind binding.
//
// Tensors arrive as unconstrained nb::ndarray<> (any DLPack producer: PyTorch, PaddlePaddle,
// CuPy, JAX, NumPy). With no dtype or device constraint nanobind never converts, so an output or
// in-place argument is always the caller's own buffer. Every check throws before any launch, with
// a message naming the op, the argument, what was expected and what was given.
#pragma once

#include <cuda_runtime_api.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "ops/common/dtype.h"

namespace fdops::binding {

namespace nb = nanobind;

using Tensor = nb::ndarray<>;

const char* dtype_name(DType dtype);
std::string describe_dtype(const Tensor& t);
std::string describe_shape(const Tensor& t);

[[noreturn]] void throw_type_error(const char* op, const char* arg, const std::string& expected,
                                   const std::string& given);
[[noreturn]] void throw_value_error(const char* op, const char* arg, const std::string& expected,
                                    const std::string& given);

// The tensor's dtype if it is one of `allowed`; TypeError otherwise.
DType check_dtype(const char* op, const char* arg, const Tensor& t,
                  std::initializer_list<DType> allowed);

// The tensor has exactly `dtype`, the dtype of argument `like`; TypeError otherwise.
void check_dtype_is(const char* op, const char* arg, const Tensor& t, DType dtype,
                    const char* like);

// The tensor's rank is one of `ranks`; ValueError otherwise.
void check_rank(const char* op, const char* arg, const Tensor& t,
                std::initializer_list<size_t> ranks);

// The tensor has exactly `shape`; `names` spells the dimensions in the message ("[T, K]").
void check_shape(const char* op, const char* arg, const Tensor& t,
                 const std::vector<int64_t>& shape, const char* names);

// A per-row tensor: shape [rows] or [rows, 1] (FastDeploy passes [rows, 1]); `rows_name` spells
// the row count in the message ("bs", "B", ...).
void check_per_row_shape(const char* op, const char* arg, const Tensor& t, int64_t rows,
                         const char* rows_name);

// A range check on an integer or float argument: `ok` must hold.
void check_arg(bool ok, const char* op, const char* arg, const std::string& expected,
               const std::string& given);

// Every tensor is a CUDA tensor, row-major contiguous, and all are on one GPU, which is returned.
// `args` pairs each argument's name with its tensor.
struct NamedTensor {
  const char* name;
  const Tensor* tensor;
};
int check_cuda_tensors(const char* op, const std::vector<NamedTensor>& args);

// Makes `device` current for the lifetime of the guard (kernels launch on the tensors' GPU).
class DeviceGuard {
 public:
  DeviceGuard(const char* op, int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  int device_ = -1;
};

// Raises RuntimeError naming the op if a launch returned an error.
void check_launch(const char* op, cudaError_t status);

// The floating-point dtypes most ops accept.
inline constexpr std::initializer_list<DType> kFloatTypes = {DType::kFloat32, DType::kFloat16,
                                                            DType::kBFloat16};

inline cudaStream_t as_stream(std::uintptr_t handle) {
  return reinterpret_cast<cudaStream_t>(handle);
}

inline int64_t dim(const Tensor& t, size_t i) { return static_cast<int64_t>(t.shape(i)); }

}  // namespace fdops::binding
