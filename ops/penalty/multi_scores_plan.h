// How launch_token_penalty_multi_scores runs a batch: the split or the fused form
// (token_penalty_multi_scores.cuh) and each kernel's shared memory. Host code without CUDA
// headers, so that tests/cc/multi_scores_plan_test.cc enumerates shapes and devices on a CPU.
#pragma once

#include <cstdint>

namespace fdops::penalty {

// Words of the per-row bitmap of marked logits (split form: in the workspace; fused form: in
// shared memory).
inline constexpr int64_t bitmap_words(int64_t vocab_size) { return (vocab_size + 31) / 32; }

// Shared hash tables of token counters: power-of-two slot counts, key and counter per slot,
// filled to at most half (longer rows count in the workspace). The split form's row kernel has
// the SM to itself; the fused kernel's table stops at 64 KB so that kFusedBlocksPerSm blocks fit
// on an SM with their bitmaps.
inline constexpr int64_t kMinTableSlots = 64;
inline constexpr int64_t kMaxTableSlots = 16384;
inline constexpr int64_t kMaxFusedTableSlots = 8192;
inline constexpr int64_t kTableSlotBytes = 8;
inline constexpr int kFusedBlocksPerSm = 2;
// Shared memory of an SM not available to a block's dynamic allocation: what the runtime
// reserves per block, and the fused kernel's static variables.
inline constexpr int64_t kSharedReservedPerBlock = 1024 + 64;

// Slots of a table: a power of two, at least twice the ids a row can hold (min(L, V)), at most
// max_slots, within shared_bytes; 0 (no table: every row counts in the workspace) when not even
// kMinTableSlots fit.
inline constexpr int table_slots(int64_t max_model_len, int64_t vocab, int64_t shared_bytes,
                                 int64_t max_slots) {
  const int64_t ids = max_model_len < vocab ? max_model_len : vocab;
  int64_t slots = kMinTableSlots;
  while (slots < 2 * ids && slots < max_slots) slots *= 2;
  while (slots >= kMinTableSlots && kTableSlotBytes * slots > shared_bytes) slots /= 2;
  return slots >= kMinTableSlots ? static_cast<int>(slots) : 0;
}

// The fused form needs about a row for every other SM to keep DRAM busy (one block per row).
// Measured on the H100 (132 SMs, V = 128256, fp32), split / fused cold µs: bs 64: 50 / 84,
// bs 128: 89 / 88, bs 256: 172 / 121.
inline constexpr bool prefers_fused(int64_t bs, int sms) { return 2 * bs >= sms; }

// What the device allows: SMs, shared memory per SM, and the dynamic shared memory one block of
// each kernel may have after opting in (0 when unknown: that kernel gets no table).
struct DeviceLimits {
  int sms;
  int64_t shared_per_sm;
  int64_t split_optin;
  int64_t fused_optin;
};

struct MultiScoresPlan {
  bool fused;
  int table_slots;       // of the launched kernel's table (0: every row uses the workspace)
  int64_t shared_bytes;  // dynamic shared memory of the launched kernel (fused: bitmap + table)
  // int32 elements of global scratch (the workspace) per row: a counter per vocabulary entry
  // when a row may be too long for the table (the kernels count a row there when twice its
  // length exceeds the slots), then the bitmap in the split form (the fused form keeps it in
  // shared memory). Contents on entry do not matter.
  int64_t counts_per_row;
  int64_t bitmap_words_per_row;
};

// The workspace part of a plan with `table_slots` slots.
inline constexpr int64_t counts_per_row(int table_slots, int64_t vocab, int64_t max_model_len) {
  return 2 * max_model_len > table_slots ? vocab : 0;
}

// The fused form when the batch prefers it and the row's bitmap fits in a block's share of the
// SM (the table takes what is left, however little: rows it cannot hold use the workspace);
// otherwise the split form.
inline constexpr MultiScoresPlan plan_multi_scores(int64_t bs, int64_t vocab,
                                                   int64_t max_model_len,
                                                   const DeviceLimits& device) {
  int64_t block_bytes = device.shared_per_sm / kFusedBlocksPerSm - kSharedReservedPerBlock;
  if (device.fused_optin < block_bytes) block_bytes = device.fused_optin;
  const int64_t bitmap_bytes = 4 * bitmap_words(vocab);
  if (prefers_fused(bs, device.sms) && bitmap_bytes <= block_bytes) {
    const int slots =
        table_slots(max_model_len, vocab, block_bytes - bitmap_bytes, kMaxFusedTableSlots);
    return {true, slots, bitmap_bytes + kTableSlotBytes * slots,
            counts_per_row(slots, vocab, max_model_len), 0};
  }
  const int slots = table_slots(max_model_len, vocab, device.split_optin, kMaxTableSlots);
  return {false, slots, kTableSlotBytes * slots, counts_per_row(slots, vocab, max_model_len),
          bitmap_words(vocab)};
}

}  // namespace fdops::penalty
