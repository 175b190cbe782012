// rebuild_padding: launch (device code in rebuild_padding.cuh).
#include <cstdint>

#include "ops/common/vec.cuh"
#include "ops/preprocess/preprocess.h"
#include "ops/preprocess/rebuild_padding.cuh"

namespace fdops::preprocess {
namespace rebuild_impl {

template <typename V>
cudaError_t launch_with(const RebuildParams& p, int64_t out_rows, cudaStream_t stream) {
  const int64_t words = p.row_bytes / static_cast<int64_t>(sizeof(V));
  int64_t threads = (words + 31) / 32 * 32;
  if (threads > kMaxThreads) threads = kMaxThreads;
  if (threads < 32) threads = 32;
  rebuild_padding_kernel<V>
      <<<static_cast<unsigned>(out_rows), static_cast<unsigned>(threads), 0, stream>>>(p);
  return cudaGetLastError();
}

size_t element_bytes(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat16:
    case DType::kBFloat16: return 2;
    default: return 0;
  }
}

}  // namespace rebuild_impl

cudaError_t launch_rebuild_padding(const void* tmp_out, void* out, void* first_token_out,
                                   DType dtype, const int32_t* cu_seqlens_q,
                                   const int32_t* seq_len_this_time,
                                   const int32_t* seq_lens_decoder,
                                   const int32_t* seq_lens_encoder,
                                   const int32_t* output_padding_offset, int64_t token_num,
                                   int64_t dim, int64_t batch, int64_t out_rows,
                                   int64_t max_input_length, bool enable_logprob,
                                   cudaStream_t stream) {
  using namespace rebuild_impl;
  const size_t esize = element_bytes(dtype);
  if (esize == 0 || token_num < 0 || dim < 0 || batch < 0 || out_rows < 0 ||
      out_rows > INT32_MAX || (output_padding_offset != nullptr && max_input_length < 1))
    return cudaErrorInvalidValue;
  if (out_rows == 0 || dim == 0) return cudaSuccess;
  RebuildParams p{};
  p.tmp_out = static_cast<const unsigned char*>(tmp_out);
  p.out = static_cast<unsigned char*>(out);
  // The first-token output exists only in the speculative form with enable_logprob.
  p.first_token_out = output_padding_offset != nullptr && enable_logprob
                          ? static_cast<unsigned char*>(first_token_out)
                          : nullptr;
  p.cu_seqlens_q = cu_seqlens_q;
  p.seq_len_this_time = seq_len_this_time;
  p.seq_lens_decoder = seq_lens_decoder;
  p.seq_lens_encoder = seq_lens_encoder;
  p.output_padding_offset = output_padding_offset;
  p.token_num = token_num;
  p.row_bytes = dim * static_cast<int64_t>(esize);
  p.batch = batch;
  p.max_input_length = max_input_length;
  p.enable_logprob = enable_logprob;
  // Widest word that divides the row and to which every row pointer is aligned.
  const auto fits = [&](size_t bytes) {
    return p.row_bytes % static_cast<int64_t>(bytes) == 0 && is_aligned(tmp_out, bytes) &&
           is_aligned(out, bytes) &&
           (p.first_token_out == nullptr || is_aligned(p.first_token_out, bytes));
  };
  if (fits(16)) return launch_with<uint4>(p, out_rows, stream);
  if (fits(8)) return launch_with<uint2>(p, out_rows, stream);
  if (fits(4)) return launch_with<uint32_t>(p, out_rows, stream);
  if (fits(2)) return launch_with<uint16_t>(p, out_rows, stream);
  return cudaErrorMisalignedAddress;  // element pointers are at least 2-byte aligned
}

}  // namespace fdops::preprocess
