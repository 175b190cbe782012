// launch_gelu_tanh: memory-bound elementwise GELU (tanh approximation).
#include <cstdint>

#include "ops/activation/activation.h"
#include "ops/activation/gelu_tanh.cuh"
#include "ops/common/dispatch.cuh"

namespace fdops::activation {

cudaError_t launch_gelu_tanh(const void* input, void* out, DType dtype, int64_t numel,
                             cudaStream_t stream) {
  if (numel < 0) return cudaErrorInvalidValue;
  if (numel == 0) return cudaSuccess;
  return dispatch_float_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int N = 16 / sizeof(T);
    constexpr int kThreads = 256;
    constexpr int64_t kMaxBlocks = 1 << 16;  // larger inputs loop inside the kernel
    const auto in_addr = reinterpret_cast<uintptr_t>(input);
    const auto out_addr = reinterpret_cast<uintptr_t>(out);
    // Vectorise only if both pointers reach a 16-byte boundary after the same element count.
    int64_t head = numel;
    if (in_addr % 16 == out_addr % 16 && in_addr % sizeof(T) == 0) {
      const int64_t to_boundary = static_cast<int64_t>((16 - in_addr % 16) % 16 / sizeof(T));
      head = to_boundary < numel ? to_boundary : numel;
    }
    const int64_t num_vecs = (numel - head) / N;
    const int64_t scalar_work = head > numel - head - num_vecs * N ? head : numel - head - num_vecs * N;
    const int64_t work = num_vecs > scalar_work ? num_vecs : scalar_work;
    int64_t blocks = (work + kThreads - 1) / kThreads;
    if (blocks > kMaxBlocks) blocks = kMaxBlocks;
    return launch_kernel(gelu_tanh_kernel<T>, static_cast<unsigned>(blocks), kThreads, 0, stream,
                         static_cast<const T*>(input), static_cast<T*>(out), numel, head, num_vecs);
  });
}

}  // namespace fdops::activation
