// Launch functions of the quantization family (fp8 e4m3, 128-element blocks per token). The
// binding (quantization_binding.cc) validates every argument before calling them: pointers are
// device pointers of contiguous row-major tensors, num_tokens >= 0 and hidden % 4 == 0.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/dtype.h"
#include "ops/common/kernel_table.h"

namespace fdops::quantization {

// Elements per scale block: the only block size the kernels implement.
inline constexpr int kBlockSize = 128;
// Blocks whose UE8M0 exponent bytes share one int32.
inline constexpr int kBlocksPerWord = 4;

// Per token t and 128-element block j of input [T, H] (fp16/bf16; the tail block is
// zero-padded): m = max(max |x|, 1e-10) (times 7 with finegrained_range).
//   plain:  scale[t, j] = m / 448 (fp32), q = e4m3(x * 448 / m);
//   ue8m0:  s = 2^ceil(log2(max(m / 448, 1e-10) + 5e-7)), q = e4m3(x / s), and s's biased
//           exponent byte is byte j % 4 of scale[t, j / 4] (int32); unused bytes are 0.
// e4m3: round to nearest even, saturating to +-448. q: [T, H] bytes.
// scale: [T, ceil(H / 128)] fp32 or [T, ceil(H / 512)] int32, row-major.
cudaError_t launch_per_token_quant(const void* input, DType dtype, uint8_t* q, void* scale,
                                   int64_t num_tokens, int64_t hidden, bool use_ue8m0,
                                   bool finegrained_range, cudaStream_t stream);

// The same, with H % 128 == 0 and the scale column-major over padded_tokens rows: element
// (t, j) at scale[j * padded_tokens + t]; rows num_tokens <= t < padded_tokens are 0.
cudaError_t launch_per_token_quant_padding(const void* input, DType dtype, uint8_t* q,
                                           void* scale, int64_t num_tokens, int64_t hidden,
                                           int64_t padded_tokens, bool use_ue8m0,
                                           bool finegrained_range, cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_QUANTIZATION_KERNELS(X)                        \
  X(per_token_quant, launch_per_token_quant)                 \
  X(per_token_quant_padding, launch_per_token_quant_padding)
FDOPS_KERNEL_TABLE(FDOPS_QUANTIZATION_KERNELS)

}  // namespace fdops::quantization
