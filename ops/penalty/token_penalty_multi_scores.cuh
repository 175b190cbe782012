// Device code of get_token_penalty_multi_scores, in two forms chosen by batch size
// (multi_scores_plan.h).
//
// The sliced form, for batches too small to fill the GPU with one block per row: each row is cut
// into slices of the vocabulary, one block per slice, all in one launch. A block
//   a. clears a counter per vocabulary entry of its slice, in shared memory;
//   b. reads the row's whole history and counts the ids that fall in its slice: prompt ids set
//      bit 30 of their counter, generated ids add 1 (integer atomics commute, so the counts are
//      exact and deterministic);
//   c. streams over its slice once, finishing every logit where it passes (counted: the
//      penalties, then the temperature; otherwise the temperature alone);
//   d. writes the EOS ban (below the minimum length), finished like any other logit, and the
//      bad-token ban, for the ids in its slice.
// Every block rereads the history (from L2 after the first), which is why slices are kept wide
// (kMinFillSlice); in exchange no logit is touched at random, no scratch memory is needed, and a
// small batch takes one launch, where finishing the counted tokens first and then the rest would
// take two and a bitmap in global memory between them.
//
// The fused form, for larger batches: one block per row that reads and writes every logit
// exactly once and touches no logit at random: it counts as above, in a hash table in shared
// memory keyed by token id when the row's ids fit (at most half the table's slots, so probes
// stay short), else in the global workspace (one counter per vocabulary entry, [bs, V]), and
// marks the counted tokens in a bitmap in shared memory; the dense pass then finishes every
// element where it streams past (marked: the penalised logit, its counter looked up in the table
// or the workspace; unmarked: divided by the temperature); EOS and bad tokens are fixed up after
// it.
//
// A temperature of exactly 1 leaves the division out (x / 1 == x): then only vectors holding a
// counted token are loaded and stored.
//
// So each logit is rounded exactly once from fp32 (besides the EOS ban value, which FastDeploy
// also stores before penalising it), and the result does not depend on thread scheduling.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/penalty/multi_scores_plan.h"
#include "ops/penalty/penalty.cuh"

namespace fdops::penalty {

struct MultiScoresParams {
  const int64_t* token_ids_all;  // [bs, max_model_len]
  void* logits;                  // [bs, vocab]
  const float* penalty;          // alpha [bs]
  const float* frequency;        // beta [bs]
  const float* presence;         // gamma [bs]
  const float* temperature;      // [bs]
  const int64_t* bad_tokens;     // [bs, max_bad_tokens]
  const int64_t* bad_tokens_lens;
  const int64_t* prompt_lens;
  const int64_t* cur_dec_lens;
  const int64_t* min_dec_lens;
  const int64_t* eos_token_id;  // [num_eos]
  int32_t* counts;              // fused form: [bs, vocab], contents irrelevant on entry
                                // (null: no row can need it, MultiScoresPlan::counts_per_row)
  int64_t vocab;
  int64_t words;  // of the fused form's bitmap
  int64_t max_model_len;
  int64_t max_bad_tokens;
  int64_t num_eos;
  int table_slots;  // fused form: power of two, or 0: its shared hash table (keys, counters)
  int64_t slice;    // sliced form: vocabulary entries per block
  int slices;       // sliced form: blocks per row
};

// kFusedBlocksPerSm fused and kSlicedBlocksPerSm sliced blocks per SM (multi_scores_plan.h):
// at most 64 registers a thread.
inline constexpr int kFusedThreads = 512;
inline constexpr int kSlicedThreads = 512;
// Dense passes: vectors loaded per thread and step (16-byte vectors of 2-byte types, 8 elements
// each, would otherwise not fit in the 64 registers).
template <int N>
inline constexpr int kVecsInFlight = N >= 8 ? 2 : 4;
inline constexpr int kIdBatch = 8;  // id loads (and dependent accesses) in flight per thread
inline constexpr int32_t kPromptFlag = 1 << 30;
inline constexpr int32_t kCountMask = kPromptFlag - 1;

inline constexpr int32_t kEmptyKey = -1;

// The slot of `id` in the open-addressing table keys[slots] (linear probing), inserting it if
// absent. The caller guarantees a free slot (fewer distinct ids than slots).
__device__ __forceinline__ int table_slot(int32_t* keys, int slots, int32_t id) {
  int slot = static_cast<int>((static_cast<uint32_t>(id) * 0x9E3779B1u) >> 8) & (slots - 1);
  while (true) {
    const int32_t held = atomicCAS(keys + slot, kEmptyKey, id);
    if (held == kEmptyKey || held == id) return slot;
    slot = (slot + 1) & (slots - 1);
  }
}

__device__ __forceinline__ bool in_vocab(int64_t id, int64_t vocab) {
  return id >= 0 && id < vocab;
}

// The slot holding `id` in the table (the caller knows it was inserted).
__device__ __forceinline__ int table_find(const int32_t* keys, int slots, int32_t id) {
  int slot = static_cast<int>((static_cast<uint32_t>(id) * 0x9E3779B1u) >> 8) & (slots - 1);
  while (keys[slot] != id) slot = (slot + 1) & (slots - 1);
  return slot;
}

// Phase a for a counting row: atomicMax of one past the row's last valid id into *row_end
// (shared, zeroed by the caller, read after a barrier), and an empty table.
__device__ __forceinline__ void prepare_count(const int64_t* ids, int64_t len, int64_t vocab,
                                              int32_t* keys, int32_t* counters, int slots,
                                              unsigned long long* row_end) {
  int64_t end = 0;  // this thread's positions ascend, so the last valid one wins
  for_each_position<kIdBatch>(ids, 0, len, [&](int64_t j, int64_t id) {
    if (in_vocab(id, vocab)) end = j + 1;
  });
  if (end > 0) atomicMax(row_end, static_cast<unsigned long long>(end));
  for (int i = threadIdx.x; i < slots; i += blockDim.x) {
    keys[i] = kEmptyKey;
    counters[i] = 0;
  }
}

// Phase b in the shared table (cleared, with fewer distinct ids than slots / 2): the prompt ids
// [0, prompt_end) set kPromptFlag, the generated ids [prompt_len, end) add 1. counted(id) is
// called for each counted id.
template <typename Counted>
__device__ __forceinline__ void count_in_table(const int64_t* ids, int64_t prompt_end,
                                               int64_t prompt_len, int64_t end, int64_t vocab,
                                               int32_t* keys, int32_t* counters, int slots,
                                               Counted&& counted) {
  for_each_id<kIdBatch>(ids, 0, prompt_end, [&](int64_t id) {
    if (!in_vocab(id, vocab)) return;
    atomicOr(counters + table_slot(keys, slots, static_cast<int32_t>(id)), kPromptFlag);
    counted(id);
  });
  for_each_id<kIdBatch>(ids, prompt_len, end, [&](int64_t id) {
    if (!in_vocab(id, vocab)) return;
    atomicAdd(counters + table_slot(keys, slots, static_cast<int32_t>(id)), 1);
    counted(id);
  });
}

// Phase b in the workspace (`counts`: the row's [V] slice): clears the slots about to be used,
// then counts as count_in_table does. Block-wide (one barrier inside).
template <typename Counted>
__device__ __forceinline__ void count_in_workspace(const int64_t* ids, int64_t prompt_end,
                                                   int64_t prompt_len, int64_t end,
                                                   int64_t vocab, int32_t* counts,
                                                   Counted&& counted) {
  for_each_id<kIdBatch>(ids, 0, end, [&](int64_t id) {
    if (in_vocab(id, vocab)) counts[id] = 0;
  });
  __syncthreads();
  for_each_id<kIdBatch>(ids, 0, prompt_end, [&](int64_t id) {
    if (!in_vocab(id, vocab)) return;
    atomicOr(counts + id, kPromptFlag);
    counted(id);
  });
  for_each_id<kIdBatch>(ids, prompt_len, end, [&](int64_t id) {
    if (!in_vocab(id, vocab)) return;
    atomicAdd(counts + id, 1);
    counted(id);
  });
}

// Below the minimum length (0 <= cur_dec_lens[b] < min_dec_lens[b]), writes over row b's EOS
// ids in [lo, hi) the ban value as finished by final_logit(ban, id) (penalised and scaled like
// any other logit), after a barrier that orders it after the dense pass. Block-wide.
template <typename T, typename FinalLogit>
__device__ __forceinline__ void ban_eos(const MultiScoresParams& p, int64_t b, T* row,
                                        int64_t lo, int64_t hi, FinalLogit&& final_logit) {
  const int64_t cur_len = p.cur_dec_lens[b];
  if (cur_len < 0 || cur_len >= p.min_dec_lens[b]) return;  // the same in every thread
  __syncthreads();
  const float ban = to_float(from_float<T>(eos_ban_value<T>()));
  for (int64_t i = threadIdx.x; i < p.num_eos; i += blockDim.x) {
    const int64_t id = p.eos_token_id[i];
    if (id >= lo && id < hi) row[id] = from_float<T>(final_logit(ban, id));
  }
}

// Writes the ban value over row b's bad tokens in [lo, hi) (of the first bad_tokens_lens[b] of
// its bad_tokens) after a barrier: after every other write of the row. Block-wide.
template <typename T>
__device__ __forceinline__ void ban_bad_tokens(const MultiScoresParams& p, int64_t b, T* row,
                                               int64_t lo, int64_t hi) {
  int64_t num_bad = p.bad_tokens_lens[b];
  num_bad = num_bad < 0 ? 0 : (num_bad > p.max_bad_tokens ? p.max_bad_tokens : num_bad);
  if (num_bad == 0) return;  // the same in every thread of the block
  __syncthreads();
  const int64_t* bad = p.bad_tokens + b * p.max_bad_tokens;
  const T ban = from_float<T>(kBanValue);
  for (int64_t i = threadIdx.x; i < num_bad; i += blockDim.x) {
    const int64_t id = bad[i];
    if (id >= lo && id < hi) row[id] = ban;
  }
}

// The penalised, temperature-scaled logit of a token with counter `counter` (kPromptFlag if it
// occurs in the prompt, plus the number of times it was generated; non-zero).
__device__ __forceinline__ float penalised_logit(float logit, int32_t counter, float alpha,
                                                 float beta, float gamma, float temperature) {
  float l = repetition_penalty(logit, alpha);
  const int32_t times = counter & kCountMask;
  if (times > 0) l = __fsub_rn(__fsub_rn(l, __fmul_rn(static_cast<float>(times), beta)), gamma);
  return __fdiv_rn(l, temperature);
}

// Counters of N consecutive vocabulary entries (16-byte shared loads where N allows: with
// 4-byte strided loads the threads of a warp would hit the same banks).
template <int N>
__device__ __forceinline__ void load_counters(const int32_t* counters, int32_t (&out)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int q = 0; q < N / 4; ++q) {
      const int4 c = reinterpret_cast<const int4*>(counters)[q];
      out[4 * q] = c.x;
      out[4 * q + 1] = c.y;
      out[4 * q + 2] = c.z;
      out[4 * q + 3] = c.w;
    }
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = counters[k];
  }
}

// The sliced form (see the top): block (b, s) = (blockIdx.x / p.slices, blockIdx.x % p.slices)
// owns the vocabulary entries [s * p.slice, min(V, (s + 1) * p.slice)) of row b. Dynamic shared
// memory: a counter per entry of the slice. p.slice is a multiple of N (and V is, when N > 1), so
// each slice is whole vectors starting on a 16-byte boundary.
template <typename T, int N>
__global__ void __launch_bounds__(kSlicedThreads, kSlicedBlocksPerSm)
    multi_scores_sliced_kernel(MultiScoresParams p) {
  wait_for_dependencies();
  allow_dependent_launch();
  const int64_t b = blockIdx.x / p.slices;
  const int64_t vocab = p.vocab;
  const int64_t lo = (blockIdx.x % p.slices) * p.slice;
  const int64_t hi = lo + p.slice < vocab ? lo + p.slice : vocab;
  T* row = static_cast<T*>(p.logits) + b * vocab;
  const int64_t* ids = p.token_ids_all + b * p.max_model_len;

  const float alpha = p.penalty[b], beta = p.frequency[b], gamma = p.presence[b];
  const float temperature = p.temperature[b];
  const bool counting = !penalties_off(alpha, beta, gamma) && p.cur_dec_lens[b] >= 0;
  const bool elementwise = temperature != 1.f;
  const int64_t len = p.max_model_len;
  int64_t prompt_len = p.prompt_lens[b];
  prompt_len = prompt_len < 0 ? 0 : (prompt_len > len ? len : prompt_len);

  extern __shared__ __align__(16) int32_t counters[];  // counters[id - lo]
  // a. Clear the counters.
  for (int64_t i = threadIdx.x; i < hi - lo; i += blockDim.x) counters[i] = 0;
  __syncthreads();

  // b. Count the history's ids that fall in the slice.
  if (counting) {
    for_each_id<kIdBatch>(ids, 0, prompt_len, [&](int64_t id) {
      if (id >= lo && id < hi) atomicOr(counters + (id - lo), kPromptFlag);
    });
    for_each_id<kIdBatch>(ids, prompt_len, len, [&](int64_t id) {
      if (id >= lo && id < hi) atomicAdd(counters + (id - lo), 1);
    });
    __syncthreads();
  }
  // The final value of a logit x whose counter is `counter`.
  const auto finish = [&](float x, int32_t counter) {
    if (counter != 0) return penalised_logit(x, counter, alpha, beta, gamma, temperature);
    return elementwise ? __fdiv_rn(x, temperature) : x;
  };

  // c. The dense pass over the slice, kVecsInFlight<N> vectors per thread in flight. With a
  // temperature of 1 only vectors holding a counted token change.
  if (counting || elementwise) {
    T* part = row + lo;
    const int64_t num_vecs = (hi - lo) / N;
    const int64_t step = blockDim.x;
    for (int64_t first = threadIdx.x; first < num_vecs; first += kVecsInFlight<N> * step) {
      bool touched[kVecsInFlight<N>];
      Vec<T, N> v[kVecsInFlight<N>];
#pragma unroll
      for (int u = 0; u < kVecsInFlight<N>; ++u) {
        const int64_t i = first + u * step;
        touched[u] = false;
        if (i < num_vecs) {
          int32_t c[N];
          load_counters<N>(counters + i * N, c);
          bool counted = false;
#pragma unroll
          for (int k = 0; k < N; ++k) counted |= c[k] != 0;
          touched[u] = elementwise || counted;
        }
        if (touched[u]) v[u].load(part + i * N);
      }
#pragma unroll
      for (int u = 0; u < kVecsInFlight<N>; ++u) {
        if (!touched[u]) continue;
        const int64_t i = first + u * step;
        int32_t c[N];
        load_counters<N>(counters + i * N, c);
#pragma unroll
        for (int k = 0; k < N; ++k) v[u].v[k] = from_float<T>(finish(to_float(v[u].v[k]), c[k]));
        v[u].store(part + i * N);
      }
    }
  }

  // d. EOS below the minimum length, then bad tokens: the slice's own.
  ban_eos(p, b, row, lo, hi, [&](float ban, int64_t id) { return finish(ban, counters[id - lo]); });
  ban_bad_tokens(p, b, row, lo, hi);
}

// The fused form (see the top): one block per row, kFusedBlocksPerSm blocks per SM. Dynamic
// shared memory: keys[table_slots], counters[table_slots], then the row's bitmap (p.words).
template <typename T, int N>
__global__ void __launch_bounds__(kFusedThreads, kFusedBlocksPerSm)
    multi_scores_fused_kernel(MultiScoresParams p) {
  constexpr uint32_t kField = N == 32 ? 0xffffffffu : (1u << N) - 1u;
  wait_for_dependencies();
  allow_dependent_launch();
  const int64_t b = blockIdx.x;
  const int64_t vocab = p.vocab;
  T* row = static_cast<T*>(p.logits) + b * vocab;
  const int64_t* ids = p.token_ids_all + b * p.max_model_len;

  const float alpha = p.penalty[b], beta = p.frequency[b], gamma = p.presence[b];
  const float temperature = p.temperature[b];
  const int64_t cur_len = p.cur_dec_lens[b];
  const bool counting = !penalties_off(alpha, beta, gamma) && cur_len >= 0;
  const bool elementwise = temperature != 1.f;
  const int64_t len = p.max_model_len;
  int64_t prompt_len = p.prompt_lens[b];
  prompt_len = prompt_len < 0 ? 0 : (prompt_len > len ? len : prompt_len);

  extern __shared__ int32_t shared[];
  const int slots = p.table_slots;
  int32_t* keys = shared;
  int32_t* counters = shared + slots;
  uint32_t* bits = reinterpret_cast<uint32_t*>(shared + 2 * slots);
  const auto marked = [bits](int64_t e) { return (bits[e >> 5] >> (e & 31)) & 1u; };
  __shared__ unsigned long long row_end;
  if (threadIdx.x == 0) row_end = 0;
  __syncthreads();

  // a. Find the end, clear the bitmap and the table.
  for (int64_t w = threadIdx.x; w < p.words; w += blockDim.x) bits[w] = 0u;
  if (counting) {
    prepare_count(ids, len, vocab, keys, counters, slots, &row_end);
  }
  __syncthreads();

  // b. Count and mark.
  const int64_t end = static_cast<int64_t>(row_end);
  const bool in_table = 2 * end <= slots;
  int32_t* counts = p.counts + b * vocab;
  if (counting) {
    const int64_t prompt_end = prompt_len < end ? prompt_len : end;
    const auto mark = [bits](int64_t id) { atomicOr(bits + (id >> 5), 1u << (id & 31)); };
    if (in_table) {
      count_in_table(ids, prompt_end, prompt_len, end, vocab, keys, counters, slots, mark);
    } else {
      count_in_workspace(ids, prompt_end, prompt_len, end, vocab, counts, mark);
    }
    __syncthreads();
  }
  // The counter of a marked token (workspace counters were written by this block's atomics:
  // read them past L1).
  const auto counter_of = [&](int64_t id) {
    return in_table ? counters[table_find(keys, slots, static_cast<int32_t>(id))]
                    : __ldcg(counts + id);
  };
  // The final value of a logit x of token e.
  const auto finish = [&](float x, int64_t e, bool is_marked) {
    if (is_marked) return penalised_logit(x, counter_of(e), alpha, beta, gamma, temperature);
    return elementwise ? __fdiv_rn(x, temperature) : x;
  };

  // c. The dense pass, kVecsInFlight<N> vectors per thread in flight. With a temperature of
  // 1 only vectors holding a marked token change.
  if (counting || elementwise) {
    const int64_t num_vecs = vocab / N;
    const int64_t step = blockDim.x;
    for (int64_t first = threadIdx.x; first < num_vecs; first += kVecsInFlight<N> * step) {
      uint32_t field[kVecsInFlight<N>];
      bool touched[kVecsInFlight<N>];
      Vec<T, N> v[kVecsInFlight<N>];
#pragma unroll
      for (int u = 0; u < kVecsInFlight<N>; ++u) {
        const int64_t e = (first + u * step) * N;
        field[u] = e < vocab ? (bits[e >> 5] >> (e & 31)) & kField : 0u;
        touched[u] = e < vocab && (elementwise || field[u] != 0u);
        if (touched[u]) v[u].load(row + e);
      }
#pragma unroll
      for (int u = 0; u < kVecsInFlight<N>; ++u) {
        if (!touched[u]) continue;
        const int64_t e = (first + u * step) * N;
#pragma unroll
        for (int k = 0; k < N; ++k) {
          const bool is_marked = (field[u] >> k) & 1u;
          if (is_marked || elementwise)
            v[u].v[k] = from_float<T>(finish(to_float(v[u].v[k]), e + k, is_marked));
        }
        v[u].store(row + e);
      }
    }
  }

  // d. EOS below the minimum length, then bad tokens.
  ban_eos(p, b, row, 0, vocab,
          [&](float ban, int64_t id) { return finish(ban, id, counting && marked(id)); });
  ban_bad_tokens(p, b, row, 0, vocab);
}

}  // namespace fdops::penalty
