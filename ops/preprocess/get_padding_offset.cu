// get_padding_offset: launch (device code in get_padding_offset.cuh).
#include "ops/preprocess/get_padding_offset.cuh"
#include "ops/preprocess/preprocess.h"

namespace fdops::preprocess {

cudaError_t launch_get_padding_offset(const int64_t* input_ids, const int32_t* seq_len,
                                      int64_t* x_remove_padding, int32_t* batch_id_per_token,
                                      int32_t* cu_seqlens_q, int32_t* cu_seqlens_k,
                                      int64_t batch, int64_t max_len, int64_t token_num,
                                      cudaStream_t stream) {
  using namespace padding_impl;
  if (batch < 0 || max_len < 0 || token_num < 0 || batch > INT32_MAX - 1 ||
      token_num > INT32_MAX)
    return cudaErrorInvalidValue;
  if (batch == 0) {  // cu_seqlens = [0]; no token can exist (token_num <= batch * max_len)
    cudaError_t err = cudaMemsetAsync(cu_seqlens_q, 0, sizeof(int32_t), stream);
    if (err == cudaSuccess) err = cudaMemsetAsync(cu_seqlens_k, 0, sizeof(int32_t), stream);
    return err;
  }
  const PaddingParams p{input_ids,    seq_len, x_remove_padding, batch_id_per_token,
                        cu_seqlens_q, cu_seqlens_k, batch,       max_len, token_num};
  // No row writes more than min(max_len, token_num) tokens: that bounds the chunks per row.
  // Blocks per row: enough to fill the GPU for small batches (one long prefill row gets up to
  // kTargetBlocks blocks), one for large ones.
  const int64_t longest = max_len < token_num ? max_len : token_num;
  const int64_t chunks = (longest + kChunk - 1) / kChunk;
  const int64_t per_row = (kTargetBlocks + batch - 1) / batch;
  int64_t grid_y = chunks < per_row ? chunks : per_row;
  if (grid_y < 1) grid_y = 1;
  const dim3 grid(static_cast<unsigned>(batch), static_cast<unsigned>(grid_y));
  if (batch <= kFusedPaddingMaxBatch) {
    pack_tokens_kernel<false><<<grid, kThreads, 0, stream>>>(p);
  } else {
    cu_seqlens_kernel<<<1, kScanThreads, 0, stream>>>(p);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
    pack_tokens_kernel<true><<<grid, kThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace fdops::preprocess
