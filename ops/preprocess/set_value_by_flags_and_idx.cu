// set_value_by_flags_and_idx: launch (device code in set_value_by_flags_and_idx.cuh).
#include "ops/preprocess/preprocess.h"
#include "ops/preprocess/set_value_by_flags_and_idx.cuh"

namespace fdops::preprocess {

cudaError_t launch_set_value_by_flags_and_idx(int64_t* pre_ids_all, const int64_t* input_ids,
                                              const int32_t* seq_lens_encoder,
                                              const int32_t* seq_lens_decoder,
                                              const int64_t* step_idx, const uint8_t* stop_flags,
                                              int64_t batch, int64_t pre_ids_len,
                                              int64_t input_ids_len, cudaStream_t stream) {
  using namespace set_value_impl;
  if (batch < 0 || pre_ids_len < 0 || input_ids_len < 0) return cudaErrorInvalidValue;
  if (batch == 0) return cudaSuccess;
  const SetValueParams p{pre_ids_all, input_ids, seq_lens_encoder, seq_lens_decoder, step_idx,
                         stop_flags,  batch,     pre_ids_len,      input_ids_len};
  const int64_t blocks = (batch + kThreads - 1) / kThreads;
  if (blocks > INT32_MAX) return cudaErrorInvalidValue;
  set_value_by_flags_and_idx_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace fdops::preprocess
