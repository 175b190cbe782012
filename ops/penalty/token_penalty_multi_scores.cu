// launch_token_penalty_multi_scores: the split form (a sparse row kernel, then a dense pass) or
// the fused form (one kernel) by batch size (see token_penalty_multi_scores.cuh).
#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/penalty/penalty.h"
#include "ops/penalty/token_penalty_multi_scores.cuh"

namespace fdops::penalty {
// Named, not anonymous: nvcc mangles anonymous namespaces with a per-compilation hash.
namespace token_penalty_multi_scores_impl {

// Blocks per SM the dense pass aims for in total (kApplyThreads threads each).
constexpr int kApplyBlocksPerSm = 16;
// Largest hash table of the row kernel: 128 KB, for rows of up to 8192 ids. The fused kernel's
// stops at 64 KB (rows of up to 4096 ids; longer rows count in the workspace) so that two
// blocks fit on an SM.
constexpr int64_t kMaxTableSlots = 16384;
constexpr int64_t kMaxFusedTableSlots = 8192;
constexpr int64_t kMinTableSlots = 64;
// The fused form needs about a row for every other SM to keep DRAM busy (one block per row).
// Measured on the H100 (132 SMs, V = 128256, fp32), split / fused cold µs: bs 64: 50 / 84,
// bs 128: 89 / 88, bs 256: 172 / 121.
bool prefers_fused(int64_t bs, int sms) { return 2 * bs >= sms; }

// Slots of a hash table: a power of two, at least twice the ids a row can hold (min(L, V))
// up to max_slots, when `shared_bytes` allow; 0 for no table.
int table_slots(int64_t max_model_len, int64_t vocab, int64_t shared_bytes, int64_t max_slots) {
  const int64_t ids = max_model_len < vocab ? max_model_len : vocab;
  int64_t slots = kMinTableSlots;
  while (slots < 2 * ids && slots < max_slots) slots *= 2;
  const int64_t slot_bytes = 2 * sizeof(int32_t);  // key and counter
  while (slots >= kMinTableSlots && slot_bytes * slots > shared_bytes) slots /= 2;
  return slots >= kMinTableSlots ? static_cast<int>(slots) : 0;
}

// The current device's multiprocessor count and shared memory per multiprocessor.
cudaError_t multiprocessor_limits(int* count, int* shared_bytes) {
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) return status;
  status = cudaDeviceGetAttribute(count, cudaDevAttrMultiProcessorCount, device);
  if (status != cudaSuccess) return status;
  return cudaDeviceGetAttribute(shared_bytes, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device);
}

template <typename T, int N>
cudaError_t launch_split(MultiScoresParams p, int64_t bs, int sms, cudaStream_t stream) {
  constexpr auto row_kernel = multi_scores_row_kernel<T>;
  p.table_slots = table_slots(p.max_model_len, p.vocab,
                              static_cast<int64_t>(max_dynamic_shared_bytes<row_kernel>()),
                              kMaxTableSlots);
  const cudaError_t err = launch_kernel(row_kernel, static_cast<unsigned>(bs), kRowThreads,
                                        2 * sizeof(int32_t) * p.table_slots, stream, p);
  if (err != cudaSuccess) return err;
  const int64_t num_vecs = p.vocab / N;
  // Enough blocks in total to fill the GPU even for one row, never more than a row needs.
  const int64_t wanted = (static_cast<int64_t>(sms) * kApplyBlocksPerSm + bs - 1) / bs;
  const int64_t useful = (num_vecs + kApplyThreads - 1) / kApplyThreads;
  int64_t blocks_per_row = wanted < useful ? wanted : useful;
  if (blocks_per_row < 1) blocks_per_row = 1;
  const int64_t blocks = bs * blocks_per_row;
  if (blocks > INT32_MAX) return cudaErrorInvalidValue;
  return launch_kernel(multi_scores_apply_kernel<T, N>, static_cast<unsigned>(blocks),
                       kApplyThreads, 0, stream, static_cast<T*>(p.logits), p.bitmap,
                       p.temperature, p.vocab, p.words, static_cast<int>(blocks_per_row));
}

// The fused form when the batch is large enough and the row's bitmap fits in shared memory
// next to a table (whose size does not matter: rows it cannot hold use the workspace);
// otherwise the split form.
template <typename T, int N>
cudaError_t launch_for_width(MultiScoresParams p, int64_t bs, int sms, int shared_per_sm,
                             cudaStream_t stream) {
  constexpr auto fused_kernel = multi_scores_fused_kernel<T, N>;
  // A block's share of the SM (less the 1 KB the runtime reserves per block and the static
  // row_end), within what one block may have.
  int64_t block_bytes = shared_per_sm / kFusedBlocksPerSm - 1024 - 64;
  const int64_t optin = static_cast<int64_t>(max_dynamic_shared_bytes<fused_kernel>());
  if (optin < block_bytes) block_bytes = optin;
  const int64_t bitmap_bytes = static_cast<int64_t>(sizeof(uint32_t)) * p.words;
  if (!prefers_fused(bs, sms) || bitmap_bytes > block_bytes)
    return launch_split<T, N>(p, bs, sms, stream);
  p.table_slots =
      table_slots(p.max_model_len, p.vocab, block_bytes - bitmap_bytes, kMaxFusedTableSlots);
  return launch_kernel(fused_kernel, static_cast<unsigned>(bs), kFusedThreads,
                       bitmap_bytes + 2 * sizeof(int32_t) * p.table_slots, stream, p);
}

}  // namespace token_penalty_multi_scores_impl

using namespace token_penalty_multi_scores_impl;

cudaError_t launch_token_penalty_multi_scores(
    const int64_t* token_ids_all, void* logits, DType logits_dtype, const float* penalty_scores,
    const float* frequency_scores, const float* presence_scores, const float* temperatures,
    const int64_t* bad_tokens, const int64_t* bad_tokens_lens, const int64_t* prompt_lens,
    const int64_t* cur_dec_lens, const int64_t* min_dec_lens, const int64_t* eos_token_id,
    int32_t* workspace, int64_t bs, int64_t vocab_size, int64_t max_model_len,
    int64_t max_bad_tokens, int64_t num_eos, cudaStream_t stream) {
  if (bs < 0 || bs > INT32_MAX || vocab_size < 1 || vocab_size > INT32_MAX ||
      max_model_len < 0 || max_model_len > kMaxModelLen || max_bad_tokens < 0 || num_eos < 0)
    return cudaErrorInvalidValue;
  if (bs == 0) return cudaSuccess;
  int sms = 0, shared_per_sm = 0;
  cudaError_t status = multiprocessor_limits(&sms, &shared_per_sm);
  if (status != cudaSuccess) return status;

  MultiScoresParams p{};
  p.token_ids_all = token_ids_all;
  p.logits = logits;
  p.penalty = penalty_scores;
  p.frequency = frequency_scores;
  p.presence = presence_scores;
  p.temperature = temperatures;
  p.bad_tokens = bad_tokens;
  p.bad_tokens_lens = bad_tokens_lens;
  p.prompt_lens = prompt_lens;
  p.cur_dec_lens = cur_dec_lens;
  p.min_dec_lens = min_dec_lens;
  p.eos_token_id = eos_token_id;
  p.counts = workspace;
  p.bitmap = reinterpret_cast<uint32_t*>(workspace + bs * vocab_size);
  p.vocab = vocab_size;
  p.words = bitmap_words(vocab_size);
  p.max_model_len = max_model_len;
  p.max_bad_tokens = max_bad_tokens;
  p.num_eos = num_eos;

  return dispatch_float_dtype(logits_dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    // 16-byte accesses when every row starts on a 16-byte boundary.
    constexpr int N = 16 / sizeof(T);
    if (vocab_size % N == 0 && is_aligned(logits, 16))
      return launch_for_width<T, N>(p, bs, sms, shared_per_sm, stream);
    return launch_for_width<T, 1>(p, bs, sms, shared_per_sm, stream);
  });
}

}  // namespace fdops::penalty
