// Launch functions of the sampling family. Arguments are validated by the binding
// (sampling_binding.cc) before these are called: pointers are device pointers of contiguous
// row-major tensors with the documented shapes, 1 <= vocab <= kMaxVocab and rows > 0.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/kernel_table.h"

namespace fdops::sampling {

// One thread block per row; every block-wide sum has a fixed shape, so results are bitwise
// reproducible for a given build.
inline constexpr int kThreads = 1024;
// Row lengths are indexed with int inside a row (rows are addressed with int64).
inline constexpr int64_t kMaxVocab = int64_t{1} << 30;

// Per-row parameters: either a device tensor with one value per row, or (tensor == nullptr) one
// scalar for every row. top_k tensors are int64 or int32.
struct TopK {
  const void* values = nullptr;
  bool is_int64 = true;
  int64_t scalar = 0;
};
struct TopP {
  const float* values = nullptr;
  float scalar = 1.f;
};

// probs [B, V] fp32 -> renorm [B, V] fp32 (top-k with ties, renormalised; k = 0 or k >= V, or
// fewer than k positive entries: copied unchanged).
cudaError_t launch_top_k_renorm_probs(const float* probs, TopK top_k, float* renorm, int64_t rows,
                                      int vocab, cudaStream_t stream);

// probs [B, V] fp32 -> renorm [B, V] fp32 (top-p nucleus with ties, renormalised).
cudaError_t launch_top_p_renorm_probs(const float* probs, TopP top_p, float* renorm, int64_t rows,
                                      int vocab, cudaStream_t stream);

// probs [B, V] fp32 -> samples [B] int64: rejection sampling from the joint top-k / top-p set,
// uniforms from Philox4x32-10 keyed by seed, counter (round, row, offset).
cudaError_t launch_top_k_top_p_sampling_from_probs(const float* probs, TopK top_k, TopP top_p,
                                                   uint64_t seed, uint64_t offset,
                                                   int64_t* samples, int64_t rows, int vocab,
                                                   cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_SAMPLING_KERNELS(X)                                            \
  X(top_k_renorm_probs, launch_top_k_renorm_probs)                           \
  X(top_p_renorm_probs, launch_top_p_renorm_probs)                           \
  X(top_k_top_p_sampling_from_probs, launch_top_k_top_p_sampling_from_probs)
FDOPS_KERNEL_TABLE(FDOPS_SAMPLING_KERNELS)

}  // namespace fdops::sampling
