// Device code of set_value_by_flags_and_idx (ops/preprocess/README.md; 7-input form): append
// this step's token to each running row's history, one thread per row.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fdops::preprocess {
namespace set_value_impl {

inline constexpr int kThreads = 128;

struct SetValueParams {
  int64_t* pre_ids_all;       // [batch, pre_ids_len], in place
  const int64_t* input_ids;   // [batch, input_ids_len]
  const int32_t* seq_lens_encoder;
  const int32_t* seq_lens_decoder;
  const int64_t* step_idx;
  const uint8_t* stop_flags;  // bool storage
  int64_t batch;
  int64_t pre_ids_len;
  int64_t input_ids_len;
};

__global__ void __launch_bounds__(kThreads) set_value_by_flags_and_idx_kernel(
    const SetValueParams p) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= p.batch || p.stop_flags[b] != 0) return;
  const int32_t enc = p.seq_lens_encoder[b];
  if (enc == 0 && p.seq_lens_decoder[b] == 0) return;
  const int64_t step = p.step_idx[b];
  // Project rule: step 0 (the prefill row) is left alone. The column bounds are checked here
  // because the host cannot see step_idx or the lengths without a sync.
  if (step <= 0 || step >= p.pre_ids_len) return;
  const int64_t column = enc > 0 ? enc - 1 : 0;  // last prompt token, or the decode token
  if (column >= p.input_ids_len) return;
  p.pre_ids_all[b * p.pre_ids_len + step] = p.input_ids[b * p.input_ids_len + column];
}

}  // namespace set_value_impl
}  // namespace fdops::preprocess
