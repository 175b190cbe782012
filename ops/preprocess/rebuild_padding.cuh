// Device code of rebuild_padding (ops/preprocess/README.md): gather one hidden-state row per
// sequence (plain form) or per output token (speculative form with output_padding_offset).
//
// One block per output row. The block resolves the row's source from the length tensors (the
// same scalars in every thread, read through the cache as broadcasts), then moves the row as
// raw V-sized words: V = 16 bytes whenever the row width and the pointers allow it. The element
// type does not matter to a copy, so one kernel serves fp32, fp16 and bf16.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fdops::preprocess {
namespace rebuild_impl {

inline constexpr int kMaxThreads = 256;

struct RebuildParams {
  const unsigned char* tmp_out;   // [token_num, row_bytes]
  unsigned char* out;             // [out_rows, row_bytes]
  unsigned char* first_token_out;  // [batch, row_bytes] or nullptr
  const int32_t* cu_seqlens_q;     // [batch + 1]
  const int32_t* seq_len_this_time;
  const int32_t* seq_lens_decoder;
  const int32_t* seq_lens_encoder;
  const int32_t* output_padding_offset;  // [out_rows] or nullptr (plain form)
  int64_t token_num;
  int64_t row_bytes;
  int64_t batch;
  int64_t max_input_length;  // >= 1 when output_padding_offset is given
  bool enable_logprob;
};

template <typename V>
__device__ __forceinline__ void copy_row(V* dst, const V* src, int64_t words) {
  for (int64_t i = threadIdx.x; i < words; i += blockDim.x) dst[i] = src[i];
}

template <typename V>
__global__ void __launch_bounds__(kMaxThreads) rebuild_padding_kernel(const RebuildParams p) {
  const int64_t row = blockIdx.x;
  // Source token of this output row (-1: none, the row is zero) and, for the first-token
  // output, its batch row and source token.
  int64_t b = row;
  int64_t base = 0;  // token index of the sequence's first token (before seq_id)
  bool valid = true;
  if (p.output_padding_offset != nullptr) {
    const int64_t ori = row + p.output_padding_offset[row];
    valid = ori >= 0;
    b = valid ? ori / p.max_input_length : -1;
    valid = valid && b < p.batch;
    if (valid) base = ori - (b * p.max_input_length - p.cu_seqlens_q[b]);
  } else {
    base = p.cu_seqlens_q[b];
  }
  int64_t src = -1, first_src = -1;
  if (valid && p.seq_len_this_time[b] != 0) {
    const int32_t enc = p.seq_lens_encoder[b];
    if (enc != 0 || p.seq_lens_decoder[b] != 0) {
      const int64_t token = base + (enc > 0 ? enc - 1 : 0);
      if (token >= 0 && token < p.token_num) {
        src = token;
        if (p.first_token_out != nullptr && p.enable_logprob && enc > 0 && token >= 1)
          first_src = token - 1;
      }
    }
  }

  const int64_t words = p.row_bytes / static_cast<int64_t>(sizeof(V));
  V* dst = reinterpret_cast<V*>(p.out + row * p.row_bytes);
  if (src >= 0) {
    copy_row(dst, reinterpret_cast<const V*>(p.tmp_out + src * p.row_bytes), words);
  } else {
    const V zero{};
    for (int64_t i = threadIdx.x; i < words; i += blockDim.x) dst[i] = zero;
  }
  if (first_src >= 0) {
    copy_row(reinterpret_cast<V*>(p.first_token_out + b * p.row_bytes),
             reinterpret_cast<const V*>(p.tmp_out + first_src * p.row_bytes), words);
  }
}

}  // namespace rebuild_impl
}  // namespace fdops::preprocess
