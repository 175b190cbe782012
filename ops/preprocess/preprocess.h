// Launch functions of the preprocess family (integer bookkeeping around the model forward).
// Arguments are validated by the binding (preprocess_binding.cc) before these are called:
// pointers are device pointers of contiguous row-major tensors with the documented shapes.
// Index values read from the tensors (lengths, offsets, step indices) are NOT trusted: every
// kernel bounds-checks them on the device and skips (or zero-fills) instead of writing out of
// bounds.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/dtype.h"
#include "ops/common/kernel_table.h"

namespace fdops::preprocess {

// get_padding_offset computes every row's token offset inside one kernel up to this batch size
// (each block sums the lengths before its row); larger batches scan the lengths in a separate
// single-block kernel first.
inline constexpr int64_t kFusedPaddingMaxBatch = 1024;

// input_ids [B, max_len] int64, seq_len [B] int32 -> x_remove_padding [token_num] int64,
// batch_id_per_token [token_num] int32, cu_seqlens_q / cu_seqlens_k [B + 1] int32.
// Lengths are clamped to [0, max_len]; cu_seqlens[b] = min(sum of lengths before b, token_num);
// no token is written at or past token_num, and positions from the sum of all lengths up to
// token_num (if any) get x = 0, batch id -1. B = 0 writes cu_seqlens = [0] (a memset).
cudaError_t launch_get_padding_offset(const int64_t* input_ids, const int32_t* seq_len,
                                      int64_t* x_remove_padding, int32_t* batch_id_per_token,
                                      int32_t* cu_seqlens_q, int32_t* cu_seqlens_k,
                                      int64_t batch, int64_t max_len, int64_t token_num,
                                      cudaStream_t stream);

// tmp_out [token_num, dim] -> out [out_rows, dim] (dtype fp32/fp16/bf16; rows are moved as raw
// bytes). Without output_padding_offset (nullptr) out_rows = batch and row b takes the last
// prompt token (encoder rows) or the decode token; with it, row t takes the token at
// t + output_padding_offset[t] of the padded [batch, max_input_length] layout. Skipped rows and
// rows whose source index is out of range are zero. With enable_logprob and an offset,
// first_token_out [batch, dim] (may be nullptr otherwise) gets the row before the source row of
// encoder rows.
cudaError_t launch_rebuild_padding(const void* tmp_out, void* out, void* first_token_out,
                                   DType dtype, const int32_t* cu_seqlens_q,
                                   const int32_t* seq_len_this_time,
                                   const int32_t* seq_lens_decoder,
                                   const int32_t* seq_lens_encoder,
                                   const int32_t* output_padding_offset, int64_t token_num,
                                   int64_t dim, int64_t batch, int64_t out_rows,
                                   int64_t max_input_length, bool enable_logprob,
                                   cudaStream_t stream);

// In place: pre_ids_all [B, pre_len] int64 gets this step's token at column step_idx[b] for
// running rows (stop_flags is bool storage, one byte per row).
cudaError_t launch_set_value_by_flags_and_idx(int64_t* pre_ids_all, const int64_t* input_ids,
                                              const int32_t* seq_lens_encoder,
                                              const int32_t* seq_lens_decoder,
                                              const int64_t* step_idx, const uint8_t* stop_flags,
                                              int64_t batch, int64_t pre_ids_len,
                                              int64_t input_ids_len, cudaStream_t stream);

struct StopValueArgs {
  int64_t* topk_ids;                  // [B] in place
  uint8_t* stop_flags;                // [B] in place (bool storage)
  int64_t* next_tokens;               // [B] in place
  const int32_t* seq_lens;            // [B]
  const int64_t* end_ids;             // [num_end_ids], num_end_ids >= 1
  const int64_t* pre_ids;             // [B, pre_ids_len]
  const int64_t* step_idx;            // [B]
  const int64_t* stop_seqs;           // [B, num_stop_seqs, stop_seq_max_len]
  const int32_t* stop_seqs_len;       // [B, num_stop_seqs]
  const int64_t* stop_token_ids;      // [B, max_stop_tokens]
  const int32_t* stop_token_ids_len;  // [B]
  const int64_t* min_tokens;          // [B]
  const int64_t* max_tokens;          // [B]
  int64_t batch;
  int64_t num_end_ids;
  int64_t pre_ids_len;
  int64_t num_stop_seqs;
  int64_t stop_seq_max_len;
  int64_t max_stop_tokens;
  bool beam_search;
  bool prefill_one_step_stop;
};

// Stop flags and token rewrites for EOS, stop tokens, stop sequences and min/max length.
cudaError_t launch_set_stop_value_multi_ends(const StopValueArgs& args, cudaStream_t stream);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_PREPROCESS_KERNELS(X)                                \
  X(get_padding_offset, launch_get_padding_offset)                 \
  X(rebuild_padding, launch_rebuild_padding)                       \
  X(set_value_by_flags_and_idx, launch_set_value_by_flags_and_idx) \
  X(set_stop_value_multi_ends, launch_set_stop_value_multi_ends)
FDOPS_KERNEL_TABLE(FDOPS_PREPROCESS_KERNELS)

}  // namespace fdops::preprocess
