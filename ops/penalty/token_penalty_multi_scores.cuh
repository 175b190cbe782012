// Device code of get_token_penalty_multi_scores. Batches too small to fill the GPU with one
// block per row take two kernels, in stream order (the split form):
//
// 1. Row kernel, one block per row. Everything sparse (work proportional to the row's token
//    ids, not to V), in phases separated by __syncthreads:
//    a. find the end of the row's valid ids (the later phases stop there), clear the row's
//       bitmap, write the min-length EOS ban;
//    b. count: prompt ids set bit 30 of their counter, generated ids add 1; integer atomics
//       commute, so the counts are exact and deterministic. The counters live in a hash table
//       in shared memory keyed by token id when the row's ids fit (at most half the table's
//       slots, so probes stay short), else in the global workspace, one slot per vocabulary
//       entry: a [bs, V] array touched at random, which for large batches is bound by DRAM
//       sector traffic (profiled on H100 at bs 256, V 151936: 183 µs, 36% of DRAM bandwidth);
//    c. finish: each distinct token computes its final logit (penalties, then temperature)
//       once and, when the dense pass runs, marks itself in the bitmap. With the hash table
//       every occupied slot is one distinct token; with the workspace, atomicExch(slot, 0)
//       hands each slot to exactly one thread and leaves it zero;
//    d. bad tokens: ban and mark.
// 2. Apply kernel, several blocks per row: the dense pass. Every logit whose bitmap bit is
//    clear is divided by the temperature, 16 bytes per access.
//
// Larger batches take one fused kernel, one block per row, that reads and writes every logit
// exactly once and touches no logit at random: phase b counts as above and marks the counted
// tokens in a bitmap in shared memory; the dense pass then finishes every element where it
// streams past (marked: the penalised logit, its counter looked up in the table or the
// workspace; unmarked: divided by the temperature); EOS and bad tokens are fixed up after it.
// Finishing the counted tokens in place (phase c) reads and writes a 32-byte sector of DRAM per
// token, which at bs 256 with 2560 ids a row was two thirds of the split form's DRAM traffic
// besides the dense pass (ncu, H100: row kernel 61 µs, 53 MB read and 17 MB written).
//
// A temperature of exactly 1 leaves the division out (x / 1 == x): the split form then skips its
// dense pass, the fused form loads and stores only vectors holding a marked token.
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
  int32_t* counts;              // [bs, vocab], contents irrelevant on entry (null: no row
                                // can need it, MultiScoresPlan::counts_per_row)
  uint32_t* bitmap;             // [bs, words] (split form; null in the fused form)
  int64_t vocab;
  int64_t words;
  int64_t max_model_len;
  int64_t max_bad_tokens;
  int64_t num_eos;
  int table_slots;  // power of two, or 0: the row kernel's shared hash table (keys, counters)
};

inline constexpr int kRowThreads = 1024;
// kFusedBlocksPerSm (multi_scores_plan.h) fused blocks per SM: at most 64 registers a thread.
inline constexpr int kFusedThreads = 512;
// Dense pass: vectors loaded per thread and step (16-byte vectors of 2-byte types, 8 elements
// each, would otherwise not fit in the 64 registers).
template <int N>
inline constexpr int kFusedVecsInFlight = N >= 8 ? 2 : 4;
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

// Writes the ban value over row b's bad tokens (the first bad_tokens_lens[b] of its bad_tokens
// that are in the vocabulary) after a barrier, and calls banned(id) for each. Block-wide.
template <typename T, typename Banned>
__device__ __forceinline__ void ban_bad_tokens(const MultiScoresParams& p, int64_t b, T* row,
                                               Banned&& banned) {
  int64_t num_bad = p.bad_tokens_lens[b];
  num_bad = num_bad < 0 ? 0 : (num_bad > p.max_bad_tokens ? p.max_bad_tokens : num_bad);
  if (num_bad == 0) return;  // the same in every thread of the block
  __syncthreads();
  const int64_t* bad = p.bad_tokens + b * p.max_bad_tokens;
  const T ban = from_float<T>(kBanValue);
  for (int64_t i = threadIdx.x; i < num_bad; i += blockDim.x) {
    const int64_t id = bad[i];
    if (!in_vocab(id, p.vocab)) continue;
    row[id] = ban;
    banned(id);
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

template <typename T>
__global__ void __launch_bounds__(kRowThreads) multi_scores_row_kernel(MultiScoresParams p) {
  wait_for_dependencies();
  allow_dependent_launch();
  const int64_t b = blockIdx.x;
  const int64_t vocab = p.vocab;
  T* row = static_cast<T*>(p.logits) + b * vocab;
  uint32_t* bits = p.bitmap + b * p.words;
  const int64_t* ids = p.token_ids_all + b * p.max_model_len;
  const auto mark = [bits](int64_t id) { atomicOr(bits + (id >> 5), 1u << (id & 31)); };

  const float alpha = p.penalty[b], beta = p.frequency[b], gamma = p.presence[b];
  const float temperature = p.temperature[b];
  const int64_t cur_len = p.cur_dec_lens[b];
  const bool counting = !penalties_off(alpha, beta, gamma) && cur_len >= 0;
  const bool elementwise = temperature != 1.f;  // the dense pass runs (and needs the bitmap)
  const int64_t len = p.max_model_len;
  int64_t prompt_len = p.prompt_lens[b];
  prompt_len = prompt_len < 0 ? 0 : (prompt_len > len ? len : prompt_len);

  extern __shared__ int32_t table[];  // keys[table_slots], then counters[table_slots]
  const int slots = p.table_slots;
  int32_t* keys = table;
  int32_t* counters = table + slots;
  // One past the row's last valid id: the later passes stop there (rows of token_ids_all are
  // mostly -1 padding in practice).
  __shared__ unsigned long long row_end;
  if (threadIdx.x == 0) row_end = 0;
  __syncthreads();

  // a. Find the end, clear the bitmap and the table, ban EOS.
  if (elementwise) {
    for (int64_t w = threadIdx.x; w < p.words; w += blockDim.x) bits[w] = 0u;
  }
  if (counting) {
    prepare_count(ids, len, vocab, keys, counters, slots, &row_end);
  }
  if (cur_len >= 0 && cur_len < p.min_dec_lens[b]) {
    const T ban = from_float<T>(eos_ban_value<T>());
    for (int64_t i = threadIdx.x; i < p.num_eos; i += blockDim.x) {
      const int64_t id = p.eos_token_id[i];
      if (in_vocab(id, vocab)) row[id] = ban;
    }
  }
  __syncthreads();

  if (counting) {
    const int64_t end = static_cast<int64_t>(row_end);
    const int64_t prompt_end = prompt_len < end ? prompt_len : end;
    if (2 * end <= slots) {
      // b. Count in shared memory.
      count_in_table(ids, prompt_end, prompt_len, end, vocab, keys, counters, slots,
                     [](int64_t) {});
      __syncthreads();
      // c. Finish each occupied slot's token, kIdBatch logit loads in flight per thread.
      for (int first = threadIdx.x; first < slots; first += kIdBatch * blockDim.x) {
        int32_t id[kIdBatch];
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u) {
          const int i = first + u * blockDim.x;
          id[u] = i < slots ? keys[i] : kEmptyKey;
        }
        float logit[kIdBatch];
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u)
          logit[u] = id[u] != kEmptyKey ? to_float(row[id[u]]) : 0.f;
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u) {
          if (id[u] == kEmptyKey) continue;
          const int32_t counter = counters[first + u * blockDim.x];
          row[id[u]] = from_float<T>(
              penalised_logit(logit[u], counter, alpha, beta, gamma, temperature));
          if (elementwise) mark(id[u]);  // the dense pass reads the marks
        }
      }
    } else {
      int32_t* counts = p.counts + b * vocab;
      // b. Count in the workspace.
      count_in_workspace(ids, prompt_end, prompt_len, end, vocab, counts, [](int64_t) {});
      __syncthreads();
      // c. Claim each distinct token once and finish it.
      for_each_id_batch<kIdBatch>(ids, 0, end, [&](int64_t, const int64_t(&id)[kIdBatch]) {
        int32_t slot[kIdBatch];
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u)
          slot[u] = in_vocab(id[u], vocab) ? atomicExch(counts + id[u], 0) : 0;
        float logit[kIdBatch];
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u) logit[u] = slot[u] != 0 ? to_float(row[id[u]]) : 0.f;
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u) {
          if (slot[u] == 0) continue;
          row[id[u]] = from_float<T>(
              penalised_logit(logit[u], slot[u], alpha, beta, gamma, temperature));
          if (elementwise) mark(id[u]);
        }
      });
    }
  }

  // d. Bad tokens, after every other write of this row (marked: final for the dense pass).
  ban_bad_tokens(p, b, row, [&](int64_t id) {
    if (elementwise) mark(id);
  });
}

inline constexpr int kApplyThreads = 128;

// The N-bit field of the bitmap for elements [e, e + N) (N divides 32 and e % N == 0).
template <int N>
__device__ __forceinline__ uint32_t final_mask(const uint32_t* __restrict__ bits, int64_t e) {
  constexpr uint32_t kAll = N == 32 ? 0xffffffffu : (1u << N) - 1u;
  return (__ldg(bits + (e >> 5)) >> (e & 31)) & kAll;
}

template <typename T, int N>
__device__ __forceinline__ void divide_vec(Vec<T, N>& v, uint32_t done, float temperature) {
#pragma unroll
  for (int k = 0; k < N; ++k) {
    if (!((done >> k) & 1u)) v.v[k] = from_float<T>(__fdiv_rn(to_float(v.v[k]), temperature));
  }
}

// Dense pass: row b = blockIdx.x / blocks_per_row; the row's blocks stride over its N-element
// vectors, two vectors per thread and iteration. Elements whose bitmap bit is set are final.
template <typename T, int N>
__global__ void __launch_bounds__(kApplyThreads)
    multi_scores_apply_kernel(T* __restrict__ logits, const uint32_t* __restrict__ bitmap,
                              const float* __restrict__ temperatures, int64_t vocab,
                              int64_t words, int blocks_per_row) {
  constexpr uint32_t kAll = N == 32 ? 0xffffffffu : (1u << N) - 1u;
  wait_for_dependencies();
  allow_dependent_launch();
  const int64_t b = blockIdx.x / blocks_per_row;
  const int part = static_cast<int>(blockIdx.x % blocks_per_row);
  const float temperature = temperatures[b];
  if (temperature == 1.f) return;
  T* row = logits + b * vocab;
  const uint32_t* bits = bitmap + b * words;
  const int64_t num_vecs = vocab / N;
  const int64_t stride = static_cast<int64_t>(blocks_per_row) * kApplyThreads;
  for (int64_t i = static_cast<int64_t>(part) * kApplyThreads + threadIdx.x; i < num_vecs;
       i += 2 * stride) {
    const int64_t j = i + stride;
    const bool has_j = j < num_vecs;
    const uint32_t done_i = final_mask<N>(bits, i * N);
    const uint32_t done_j = has_j ? final_mask<N>(bits, j * N) : kAll;
    Vec<T, N> vi, vj;
    if (done_i != kAll) vi.load(row + i * N);
    if (done_j != kAll) vj.load(row + j * N);
    if (done_i != kAll) {
      divide_vec(vi, done_i, temperature);
      vi.store(row + i * N);
    }
    if (done_j != kAll) {
      divide_vec(vj, done_j, temperature);
      vj.store(row + j * N);
    }
  }
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

  // c. The dense pass, kFusedVecsInFlight<N> vectors per thread in flight. With a temperature of
  // 1 only vectors holding a marked token change.
  if (counting || elementwise) {
    const int64_t num_vecs = vocab / N;
    const int64_t step = blockDim.x;
    for (int64_t first = threadIdx.x; first < num_vecs; first += kFusedVecsInFlight<N> * step) {
      uint32_t field[kFusedVecsInFlight<N>];
      bool touched[kFusedVecsInFlight<N>];
      Vec<T, N> v[kFusedVecsInFlight<N>];
#pragma unroll
      for (int u = 0; u < kFusedVecsInFlight<N>; ++u) {
        const int64_t e = (first + u * step) * N;
        field[u] = e < vocab ? (bits[e >> 5] >> (e & 31)) & kField : 0u;
        touched[u] = e < vocab && (elementwise || field[u] != 0u);
        if (touched[u]) v[u].load(row + e);
      }
#pragma unroll
      for (int u = 0; u < kFusedVecsInFlight<N>; ++u) {
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

  // d. EOS below the minimum length: the ban value, finished like any other logit.
  if (cur_len >= 0 && cur_len < p.min_dec_lens[b]) {
    __syncthreads();  // after the dense pass's write of the same elements
    const float ban = to_float(from_float<T>(eos_ban_value<T>()));
    for (int64_t i = threadIdx.x; i < p.num_eos; i += blockDim.x) {
      const int64_t id = p.eos_token_id[i];
      if (in_vocab(id, vocab)) row[id] = from_float<T>(finish(ban, id, counting && marked(id)));
    }
  }

  // e. Bad tokens, after every other write of this row.
  ban_bad_tokens(p, b, row, [](int64_t) {});
}

}  // namespace fdops::penalty
