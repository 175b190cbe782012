// Launch function of the rotary family. Arguments are validated by the binding
// (rotary_binding.cc) before it is called: pointers are device pointers of contiguous row-major
// tensors, num_tokens > 0, and the limits below hold. Positions read from position_ids are
// bounds-checked on the device.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/dtype.h"
#include "ops/common/kernel_table.h"

namespace fdops::rotary {

// Largest rot_dim: a block holds at least one head's rot_dim / 2 pairs.
inline constexpr int kMaxRotDim = 2048;
// Largest num_heads + num_kv_heads (heads are tiled over gridDim.y).
inline constexpr int kMaxHeads = 65535;

// In place: query [T, num_heads, head_size] and key [T, num_kv_heads, head_size] (or flattened
// to [T, heads * head_size]; key may be nullptr with num_kv_heads = 0), all of `dtype`
// (fp32/fp16/bf16); position_ids [T] int32; cos_sin_cache [max_position, rot_dim] of `dtype`,
// cos in the first rot_dim / 2 columns, sin in the rest. Rotates the pairs (i, i + rot_dim/2)
// (is_neox) or (2i, 2i+1) of the first rot_dim dimensions of every head; tokens whose position
// is outside [0, max_position) are left unchanged.
cudaError_t launch_fused_rotary_position_encoding(void* query, void* key, DType dtype,
                                                  const int32_t* position_ids,
                                                  const void* cos_sin_cache, int64_t num_tokens,
                                                  int num_heads, int num_kv_heads, int head_size,
                                                  int rot_dim, int64_t max_position, bool is_neox,
                                                  cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_ROTARY_KERNELS(X)                                            \
  X(fused_rotary_position_encoding, launch_fused_rotary_position_encoding)
FDOPS_KERNEL_TABLE(FDOPS_ROTARY_KERNELS)

}  // namespace fdops::rotary
