// Device-side dtype plumbing shared by every kernel family: the one place where a runtime
// fdops::DType becomes a C++ element type, plus exact fp32 <-> element conversions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "ops/common/dtype.h"

namespace fdops {

// Carries an element type into a generic lambda: `[&](auto tag) { using T = typename
// decltype(tag)::type; ... }`. A tag (not a value of T) keeps the callable free of __half's
// constructors and works in plain host code, so no --extended-lambda is needed.
template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) for the floating element types kernels accept (fp32, fp16, bf16).
// Every other dtype is a caller bug that the binding should have rejected: report it instead
// of guessing.
template <typename F>
inline cudaError_t dispatch_float_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      return f(TypeTag<float>{});
    case DType::kFloat16:
      return f(TypeTag<__half>{});
    case DType::kBFloat16:
      return f(TypeTag<__nv_bfloat16>{});
    default:
      return cudaErrorInvalidValue;
  }
}

// Calls f(std::integral_constant<int, Cap>{}) for the smallest Cap >= n of an ascending list,
// so register-resident kernels are instantiated for a few per-thread capacities only.
template <int... Caps, typename F>
inline cudaError_t dispatch_capacity(int n, F&& f) {
  cudaError_t err = cudaErrorInvalidValue;
  bool done = false;
  ((!done && n <= Caps ? (done = true, err = f(std::integral_constant<int, Caps>{}), 0) : 0), ...);
  return err;
}

// Widening is exact; narrowing rounds to nearest even (the *_rn intrinsics), once.
__host__ __device__ __forceinline__ float to_float(float x) { return x; }
__host__ __device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__host__ __device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__host__ __device__ __forceinline__ T from_float(float x);
template <>
__host__ __device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__host__ __device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__host__ __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

}  // namespace fdops
