// set_stop_value_multi_ends: launch (device code in set_stop_value_multi_ends.cuh).
#include "ops/preprocess/preprocess.h"
#include "ops/preprocess/set_stop_value_multi_ends.cuh"

namespace fdops::preprocess {

cudaError_t launch_set_stop_value_multi_ends(const StopValueArgs& args, cudaStream_t stream) {
  using namespace stop_impl;
  if (args.batch < 0 || args.num_end_ids < 1 || args.pre_ids_len < 0 ||
      args.num_stop_seqs < 0 || args.stop_seq_max_len < 0 || args.max_stop_tokens < 0)
    return cudaErrorInvalidValue;
  if (args.batch == 0) return cudaSuccess;
  const int64_t blocks = (args.batch + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > INT32_MAX) return cudaErrorInvalidValue;
  set_stop_value_multi_ends_kernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0,
                                     stream>>>(args);
  return cudaGetLastError();
}

}  // namespace fdops::preprocess
