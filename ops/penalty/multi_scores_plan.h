// How launch_token_penalty_multi_scores runs a batch: the sliced or the fused form
// (token_penalty_multi_scores.cuh), each kernel's shared memory and grid. Host code without CUDA
// headers, so that tests/cc/multi_scores_plan_test.cc enumerates shapes and devices on a CPU.
#pragma once

#include <cstdint>

namespace fdops::penalty {

// Words of the fused form's bitmap of counted logits (in shared memory), per row.
inline constexpr int64_t bitmap_words(int64_t vocab_size) { return (vocab_size + 31) / 32; }

// The fused form's shared hash table of token counters: a power-of-two slot count, key and
// counter per slot, filled to at most half (longer rows count in the workspace). It stops at
// 64 KB so that kFusedBlocksPerSm blocks fit on an SM with their bitmaps.
inline constexpr int64_t kMinTableSlots = 64;
inline constexpr int64_t kMaxFusedTableSlots = 8192;
inline constexpr int64_t kTableSlotBytes = 8;
inline constexpr int kFusedBlocksPerSm = 2;
// Shared memory of an SM not available to a block's dynamic allocation: what the runtime
// reserves per block, and the kernels' static variables.
inline constexpr int64_t kSharedReservedPerBlock = 1024 + 64;
// Dynamic shared memory every kernel may have without opting in (48 KB), less the reserve: what
// a kernel gets when its opt-in limit could not be queried.
inline constexpr int64_t kDefaultSharedBytes = 48 * 1024 - kSharedReservedPerBlock;

// The sliced form: blocks resident per SM it plans for, the granule of a slice (vocabulary
// entries, a multiple of every vector width and of 32), and the narrowest slice it splits a row
// into to fill the GPU (each block reads the row's whole history: narrower slices would read it
// more often than they save time on the logits).
inline constexpr int kSlicedBlocksPerSm = 2;
inline constexpr int64_t kSliceGranule = 256;
inline constexpr int64_t kMinFillSlice = 2048;
inline constexpr int64_t kCounterBytes = 4;

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

// The fused form runs one block per row, kFusedBlocksPerSm per SM: until the batch fills most
// of that wave, the sliced form (several blocks per row) is faster. On an H100 (132 SMs,
// Llama-3 rows of an 8k history) the sliced form took 45.9 µs at 66 rows where the fused form
// took 80.1, 100.6 against 107.4 at 192 rows, and lost only at 256 rows (125.3 against 118.8).
inline constexpr bool prefers_fused(int64_t bs, int sms) { return 2 * bs >= 3 * sms; }

// What the device allows: SMs, shared memory per SM, and the dynamic shared memory one block of
// each kernel may have after opting in (0 when unknown: the fused kernel then gets no table,
// the sliced kernel kDefaultSharedBytes).
struct DeviceLimits {
  int sms;
  int64_t shared_per_sm;
  int64_t sliced_optin;
  int64_t fused_optin;
};

struct MultiScoresPlan {
  bool fused;
  int64_t blocks;        // of the grid: bs (fused) or bs * slices (sliced)
  int64_t shared_bytes;  // dynamic shared memory of a block
  // Sliced form: vocabulary entries per block (a multiple of kSliceGranule) and blocks per row;
  // the last slice of a row may be shorter. Fused form: slice = V, slices = 1.
  int64_t slice;
  int64_t slices;
  // Fused form: slots of its counter table (0: every row uses the workspace), and int32
  // elements of global scratch (the workspace) per row: a counter per vocabulary entry when a
  // row may be too long for the table (the kernel counts a row there when twice its length
  // exceeds the slots). Contents on entry do not matter. The sliced form needs neither.
  int table_slots;
  int64_t counts_per_row;
};

// The workspace part of a plan with `table_slots` slots.
inline constexpr int64_t counts_per_row(int table_slots, int64_t vocab, int64_t max_model_len) {
  return 2 * max_model_len > table_slots ? vocab : 0;
}

inline constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The sliced form's plan: the widest slice whose counters fit a block's share of the SM bounds
// the slice; the row is cut into more slices when the batch alone would leave SMs idle, but not
// into slices narrower than kMinFillSlice, nor into more blocks than one wave holds (a second
// wave of a few blocks costs nearly a whole wave: 16 Llama-3 rows on an H100 took 19.2 µs in
// 17 slices, 15.9 in 16).
inline constexpr MultiScoresPlan plan_sliced(int64_t bs, int64_t vocab,
                                             const DeviceLimits& device) {
  int64_t block_bytes = device.shared_per_sm / kSlicedBlocksPerSm - kSharedReservedPerBlock;
  const int64_t optin = device.sliced_optin > 0 ? device.sliced_optin : kDefaultSharedBytes;
  if (optin < block_bytes) block_bytes = optin;
  int64_t max_slice = block_bytes / kCounterBytes / kSliceGranule * kSliceGranule;
  if (max_slice < kSliceGranule) max_slice = kSliceGranule;
  const int64_t fewest = ceil_div(vocab, max_slice);
  const int64_t to_fill = int64_t{kSlicedBlocksPerSm} * device.sms / bs;
  const int64_t narrowest = ceil_div(vocab, kMinFillSlice);
  const int64_t wanted = to_fill < narrowest ? to_fill : narrowest;
  const int64_t slices = wanted > fewest ? wanted : fewest;
  const int64_t slice = ceil_div(ceil_div(vocab, slices), kSliceGranule) * kSliceGranule;
  const int64_t used = ceil_div(vocab, slice);
  return {false, bs * used, kCounterBytes * slice, slice, used, 0, 0};
}

// The fused form when the batch prefers it and the row's bitmap fits in a block's share of the
// SM (the table takes what is left, however little: rows it cannot hold use the workspace);
// otherwise the sliced form.
inline constexpr MultiScoresPlan plan_multi_scores(int64_t bs, int64_t vocab,
                                                   int64_t max_model_len,
                                                   const DeviceLimits& device) {
  int64_t block_bytes = device.shared_per_sm / kFusedBlocksPerSm - kSharedReservedPerBlock;
  if (device.fused_optin < block_bytes) block_bytes = device.fused_optin;
  const int64_t bitmap_bytes = 4 * bitmap_words(vocab);
  if (prefers_fused(bs, device.sms) && bitmap_bytes <= block_bytes) {
    const int slots =
        table_slots(max_model_len, vocab, block_bytes - bitmap_bytes, kMaxFusedTableSlots);
    return {true,  bs,    bitmap_bytes + kTableSlotBytes * slots,
            vocab, 1,     slots,
            counts_per_row(slots, vocab, max_model_len)};
  }
  return plan_sliced(bs, vocab, device);
}

}  // namespace fdops::penalty
