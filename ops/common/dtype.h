// Element types the kernels dispatch on. Host-only header: bindings include it without CUDA.
#pragma once

namespace fdops {

enum class DType : int {
  kFloat32 = 0,
  kFloat16 = 1,
  kBFloat16 = 2,
  kInt32 = 3,
  kInt64 = 4,
  kBool = 5,  // one byte per element (DLPack bool, 8 bits)
  kInt8 = 6,
  kUInt8 = 7,  // also the bytes of float8 tensors (frameworks pass those as uint8 views)
};

}  // namespace fdops
