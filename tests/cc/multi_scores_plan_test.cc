// get_token_penalty_multi_scores' launch plan (ops/penalty/multi_scores_plan.h), enumerated over
// batch sizes 1..1024, vocabularies, row lengths and the shared memory of real devices: the
// launched kernel never asks for more shared memory than it may have and its blocks fit on an SM
// together, the slices cover the vocabulary exactly in whole granules, the fused bitmap covers
// it, tables are as large as the rows need or as memory allows, the form follows the batch size,
// small batches are spread over the GPU, and the global scratch memory is what the fused kernel
// may touch.
#include <cstdint>
#include <cstdio>

#include "ops/penalty/multi_scores_plan.h"

namespace {

using fdops::penalty::DeviceLimits;
using fdops::penalty::MultiScoresPlan;
namespace plan = fdops::penalty;

int failures = 0;

void check(bool ok, const char* what, const char* device, int64_t bs, int64_t vocab,
           int64_t len) {
  if (ok) return;
  if (++failures <= 20)
    std::printf("FAIL %s: device %s, bs %lld, V %lld, L %lld\n", what, device,
                static_cast<long long>(bs), static_cast<long long>(vocab),
                static_cast<long long>(len));
}

struct NamedDevice {
  const char* name;
  DeviceLimits limits;
};

// Shared memory per SM and per block after opting in (less 1 KB of static and reserved memory),
// from the CUDA programming guide's tables; plus a device whose opt-in query failed.
constexpr NamedDevice kDevices[] = {
    {"V100", {80, 96 * 1024, 95 * 1024, 95 * 1024}},
    {"A100", {108, 164 * 1024, 162 * 1024, 162 * 1024}},
    {"L4", {58, 100 * 1024, 98 * 1024, 98 * 1024}},
    {"H100", {132, 228 * 1024, 226 * 1024, 226 * 1024}},
    {"H100, opt-in unknown", {132, 228 * 1024, 0, 0}},
};

constexpr int64_t kVocabularies[] = {1,      31,     32,     33,      32000,   103424,
                                     128256, 151936, 152064, 256000, 1 << 20, 1 << 24};
// Row lengths up to penalty.h's kMaxModelLen.
constexpr int64_t kLengths[] = {0,    1,    2,    31,    32,    33,     256,
                                4096, 4097, 8192, 32768, 131072, (int64_t{1} << 30) - 1};

bool power_of_two(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

void check_plan(const NamedDevice& d, int64_t bs, int64_t vocab, int64_t len) {
  const DeviceLimits& lim = d.limits;
  const MultiScoresPlan p = plan::plan_multi_scores(bs, vocab, len, lim);
  const int64_t words = plan::bitmap_words(vocab);
  const int64_t bitmap_bytes = 4 * words;
  const char* n = d.name;

  check(words * 32 >= vocab && (words - 1) * 32 < vocab, "bitmap covers V exactly", n, bs,
        vocab, len);
  check(p.blocks == bs * p.slices && p.blocks <= INT32_MAX, "a grid of bs * slices blocks", n, bs,
        vocab, len);
  int64_t fused_share = lim.shared_per_sm / plan::kFusedBlocksPerSm -
                        plan::kSharedReservedPerBlock;
  if (lim.fused_optin < fused_share) fused_share = lim.fused_optin;
  if (p.fused) {
    check(plan::prefers_fused(bs, lim.sms), "fused only for batches that prefer it", n, bs,
          vocab, len);
    check(p.slice == vocab && p.slices == 1, "fused: one block per row", n, bs, vocab, len);
    check(p.table_slots == 0 ||
              (power_of_two(p.table_slots) && p.table_slots >= plan::kMinTableSlots &&
               p.table_slots <= plan::kMaxFusedTableSlots),
          "table slots are 0 or a power of two within bounds", n, bs, vocab, len);
    // The table holds every row, or is at its cap, or the next size would not fit.
    const int64_t table_room = fused_share - bitmap_bytes;
    const int64_t ids = len < vocab ? len : vocab;
    check(p.table_slots >= 2 * ids || p.table_slots == plan::kMaxFusedTableSlots ||
              2 * plan::kTableSlotBytes * (p.table_slots > 0 ? p.table_slots : 32) > table_room,
          "table as large as the rows need or memory allows", n, bs, vocab, len);
    // Counters in the workspace exactly when a row of `len` ids can miss the table (the kernel
    // counts in the table when 2 * row length <= slots).
    check(p.counts_per_row == (2 * len > p.table_slots ? vocab : 0),
          "counters in the workspace exactly when a row can be too long for the table", n, bs,
          vocab, len);
    check(p.shared_bytes == bitmap_bytes + plan::kTableSlotBytes * p.table_slots,
          "fused shared memory is the bitmap and the table", n, bs, vocab, len);
    check(p.shared_bytes <= lim.fused_optin, "fused block within its opt-in limit", n, bs, vocab,
          len);
    check(plan::kFusedBlocksPerSm * (p.shared_bytes + plan::kSharedReservedPerBlock) <=
              lim.shared_per_sm,
          "the fused blocks fit on one SM together", n, bs, vocab, len);
    return;
  }
  check(!plan::prefers_fused(bs, lim.sms) || bitmap_bytes > fused_share,
        "sliced for a batch that prefers fused only when the bitmap does not fit", n, bs, vocab,
        len);
  check(p.table_slots == 0 && p.counts_per_row == 0, "sliced: no table, no workspace", n, bs,
        vocab, len);
  check(p.slice % plan::kSliceGranule == 0 && p.slice > 0, "slices are whole granules", n, bs,
        vocab, len);
  check(p.slices * p.slice >= vocab && (p.slices - 1) * p.slice < vocab,
        "the slices cover V, none empty", n, bs, vocab, len);
  check(p.shared_bytes == plan::kCounterBytes * p.slice, "sliced shared memory: a counter per entry",
        n, bs, vocab, len);
  const int64_t optin = lim.sliced_optin > 0 ? lim.sliced_optin : plan::kDefaultSharedBytes;
  check(p.shared_bytes <= optin, "sliced block within its opt-in limit", n, bs, vocab, len);
  check(plan::kSlicedBlocksPerSm * (p.shared_bytes + plan::kSharedReservedPerBlock) <=
            lim.shared_per_sm,
        "the sliced blocks fit on one SM together", n, bs, vocab, len);
  // Spread: no wider than filling the planned blocks of every SM in one wave asks (up to the
  // granule), or than kMinFillSlice; no narrower than that either, unless a wider slice would
  // not fit.
  const int64_t wave = int64_t{plan::kSlicedBlocksPerSm} * lim.sms;
  const int64_t fill_slices = wave / bs > 1 ? wave / bs : 1;
  const int64_t fill_width = ((vocab + fill_slices - 1) / fill_slices + plan::kSliceGranule - 1) /
                             plan::kSliceGranule * plan::kSliceGranule;
  const int64_t widest = fill_width > plan::kMinFillSlice ? fill_width : plan::kMinFillSlice;
  check(p.slice <= widest, "a small batch is spread over every SM", n, bs, vocab, len);
  int64_t share = lim.shared_per_sm / plan::kSlicedBlocksPerSm - plan::kSharedReservedPerBlock;
  if (optin < share) share = optin;
  check(p.slices <= (vocab + widest - 1) / widest || plan::kCounterBytes * widest > share,
        "no more slices than spreading asks, unless the wider slices would not fit", n, bs, vocab,
        len);
  // Cutting rows finer than their counters need never adds a second wave of blocks.
  int64_t widest_fitting = share / plan::kCounterBytes / plan::kSliceGranule * plan::kSliceGranule;
  if (widest_fitting < plan::kSliceGranule) widest_fitting = plan::kSliceGranule;
  const int64_t fewest = (vocab + widest_fitting - 1) / widest_fitting;
  check(p.slices <= fewest || p.blocks <= wave, "spreading stays within one wave", n, bs, vocab,
        len);
}

// The choices on the H100 (132 SMs, V = 128256, L = 8192).
void check_h100_choices() {
  const DeviceLimits& h100 = kDevices[3].limits;
  const MultiScoresPlan at1 = plan::plan_multi_scores(1, 128256, 8192, h100);
  const MultiScoresPlan at64 = plan::plan_multi_scores(64, 128256, 8192, h100);
  const MultiScoresPlan at66 = plan::plan_multi_scores(66, 128256, 8192, h100);
  const MultiScoresPlan at256 = plan::plan_multi_scores(256, 151936, 8192, h100);
  check(!at1.fused && at1.slice == 2048 && at1.slices == 63, "H100 bs 1: 63 slices of 2048",
        "H100", 1, 128256, 8192);
  const MultiScoresPlan at16 = plan::plan_multi_scores(16, 128256, 8192, h100);
  check(!at16.fused && at16.slices == 16 && at16.slice == 8192 && at16.blocks == 256,
        "H100 bs 16: 16 slices of 8192, one wave", "H100", 16, 128256, 8192);
  check(!at64.fused && at64.slices == 5 && at64.slice == 25856, "H100 bs 64: 5 slices of 25856",
        "H100", 64, 128256, 8192);
  check(!at66.fused && at66.slices == 5, "H100 bs 66: sliced, 5 slices", "H100", 66, 128256,
        8192);
  const MultiScoresPlan at197 = plan::plan_multi_scores(197, 128256, 8192, h100);
  const MultiScoresPlan at198 = plan::plan_multi_scores(198, 128256, 8192, h100);
  check(!at197.fused && at198.fused && at198.table_slots == 8192,
        "H100: sliced up to 197 rows, fused from 198 (1.5 x 132 SMs), 8192 slots", "H100", 198,
        128256, 8192);
  check(at256.fused && at256.shared_bytes == 4 * 4748 + 8 * 8192,
        "H100 bs 256, Qwen vocabulary: fused, bitmap + 64 KB", "H100", 256, 151936, 8192);
  // Rows of up to 4096 ids fit a fused table of 8192 slots: no scratch memory at all.
  const MultiScoresPlan short_rows = plan::plan_multi_scores(256, 151936, 4096, h100);
  check(short_rows.fused && short_rows.counts_per_row == 0,
        "H100 bs 256, rows of 4096: no workspace", "H100", 256, 151936, 4096);
}

}  // namespace

int main() {
  int64_t plans = 0;
  for (const NamedDevice& d : kDevices) {
    for (int64_t bs = 1; bs <= 1024; ++bs) {
      for (int64_t vocab : kVocabularies) {
        for (int64_t len : kLengths) {
          check_plan(d, bs, vocab, len);
          ++plans;
        }
      }
    }
  }
  check_h100_choices();
  std::printf("%lld plans checked, %d failures\n", static_cast<long long>(plans), failures);
  return failures == 0 ? 0 : 1;
}
