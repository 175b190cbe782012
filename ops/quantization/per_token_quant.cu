// launch_per_token_quant(_padding): picks the widest access the layout allows, sizes a one-wave
// grid over the row segments (see per_token_quant.cuh), then launches once.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/quantization/per_token_quant.cuh"
#include "ops/quantization/quantization.h"

namespace fdops::quantization {
// Named, not anonymous: nvcc mangles anonymous namespaces with a per-compilation hash.
namespace per_token_quant_impl {

template <typename T, int V>
cudaError_t launch_width(const void* input, uint8_t* q, void* scale, const Params& p,
                         cudaStream_t stream) {
  constexpr auto kernel = per_token_quant_kernel<T, V>;
  const int64_t warps = p.num_tokens * p.segments_per_row;
  int64_t blocks = (warps + kWarps - 1) / kWarps;
  if (blocks < 1) blocks = 1;  // only padding rows to zero
  const int64_t resident = resident_blocks<kernel>(kThreads);
  if (blocks > resident) blocks = resident;  // the rest grid-strides
  return launch_kernel(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream,
                       static_cast<const T*>(input), q, static_cast<uint32_t*>(scale), p);
}

template <typename T>
cudaError_t launch_type(const void* input, uint8_t* q, void* scale, const Params& p,
                        cudaStream_t stream) {
  if (p.hidden % 8 == 0 && is_aligned(input, 16) && is_aligned(q, 8)) {
    return launch_width<T, 8>(input, q, scale, p, stream);
  }
  if (is_aligned(input, 8) && is_aligned(q, 4)) {
    return launch_width<T, 4>(input, q, scale, p, stream);
  }
  return launch_width<T, 1>(input, q, scale, p, stream);
}

// Row-major scales [T, scale_cols] or, with padded_tokens >= 0, column-major scales over
// padded_tokens rows (the padding rows zeroed).
cudaError_t launch_quant(const void* input, DType dtype, uint8_t* q, void* scale,
                         int64_t num_tokens, int64_t hidden, int64_t padded_tokens,
                         bool use_ue8m0, bool finegrained_range, cudaStream_t stream) {
  const bool column_major = padded_tokens >= 0;
  if (num_tokens < 0 || hidden < 0 || hidden % 4 != 0 ||
      (column_major && (padded_tokens < num_tokens || hidden % kBlockSize != 0))) {
    return cudaErrorInvalidValue;
  }
  const int64_t blocks = (hidden + kBlockSize - 1) / kBlockSize;
  Params p = {};
  p.num_tokens = num_tokens;
  p.hidden = hidden;
  p.segments_per_row = (hidden + kSegment - 1) / kSegment;
  p.scale_cols = use_ue8m0 ? (blocks + kBlocksPerWord - 1) / kBlocksPerWord : blocks;
  p.scale_row_stride = column_major ? 1 : p.scale_cols;
  p.scale_col_stride = column_major ? padded_tokens : 1;
  p.padding_rows = column_major ? padded_tokens - num_tokens : 0;
  p.range = finegrained_range ? 7.f : 1.f;
  p.ue8m0 = use_ue8m0;
  if (p.scale_cols == 0 || num_tokens + p.padding_rows == 0) return cudaSuccess;
  if (!is_aligned(scale, 4)) return cudaErrorInvalidValue;
  switch (dtype) {
    case DType::kFloat16:
      return launch_type<__half>(input, q, scale, p, stream);
    case DType::kBFloat16:
      return launch_type<__nv_bfloat16>(input, q, scale, p, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace per_token_quant_impl

using namespace per_token_quant_impl;

cudaError_t launch_per_token_quant(const void* input, DType dtype, uint8_t* q, void* scale,
                                   int64_t num_tokens, int64_t hidden, bool use_ue8m0,
                                   bool finegrained_range, cudaStream_t stream) {
  return launch_quant(input, dtype, q, scale, num_tokens, hidden, -1, use_ue8m0,
                      finegrained_range, stream);
}

cudaError_t launch_per_token_quant_padding(const void* input, DType dtype, uint8_t* q,
                                           void* scale, int64_t num_tokens, int64_t hidden,
                                           int64_t padded_tokens, bool use_ue8m0,
                                           bool finegrained_range, cudaStream_t stream) {
  if (padded_tokens < 0) return cudaErrorInvalidValue;
  return launch_quant(input, dtype, q, scale, num_tokens, hidden, padded_tokens, use_ue8m0,
                      finegrained_range, stream);
}

}  // namespace fdops::quantization
