// Device code of get_token_penalty_multi_scores. Two kernels, in stream order:
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
//       once and marks itself in the bitmap. With the hash table every occupied slot is one
//       distinct token; with the workspace, atomicExch(slot, 0) hands each slot to exactly one
//       thread and leaves it zero;
//    d. bad tokens: ban and mark.
// 2. Apply kernel, several blocks per row: the dense pass. Every logit whose bitmap bit is
//    clear is divided by the temperature, 16 bytes per access.
//
// So each logit is rounded exactly once from fp32 (besides the EOS ban value, which FastDeploy
// also stores before penalising it), and the result does not depend on thread scheduling.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
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
  int32_t* counts;              // [bs, vocab], contents irrelevant on entry
  uint32_t* bitmap;             // [bs, words]
  int64_t vocab;
  int64_t words;
  int64_t max_model_len;
  int64_t max_bad_tokens;
  int64_t num_eos;
  int table_slots;  // power of two, or 0: the row kernel's shared hash table (keys, counters)
};

inline constexpr int kRowThreads = 1024;
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
  const auto valid = [vocab](int64_t id) { return id >= 0 && id < vocab; };
  const auto mark = [bits](int64_t id) { atomicOr(bits + (id >> 5), 1u << (id & 31)); };

  const float alpha = p.penalty[b], beta = p.frequency[b], gamma = p.presence[b];
  const float temperature = p.temperature[b];
  const int64_t cur_len = p.cur_dec_lens[b];
  const bool counting = !penalties_off(alpha, beta, gamma) && cur_len >= 0;
  const bool elementwise = !(penalties_off(alpha, beta, gamma) && temperature == 1.f);
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
    int64_t end = 0;  // this thread's positions ascend, so the last valid one wins
    for_each_position<kIdBatch>(ids, 0, len, [&](int64_t j, int64_t id) {
      if (valid(id)) end = j + 1;
    });
    if (end > 0) atomicMax(&row_end, static_cast<unsigned long long>(end));
    for (int i = threadIdx.x; i < slots; i += blockDim.x) {
      keys[i] = kEmptyKey;
      counters[i] = 0;
    }
  }
  if (cur_len >= 0 && cur_len < p.min_dec_lens[b]) {
    const T ban = from_float<T>(eos_ban_value<T>());
    for (int64_t i = threadIdx.x; i < p.num_eos; i += blockDim.x) {
      const int64_t id = p.eos_token_id[i];
      if (valid(id)) row[id] = ban;
    }
  }
  __syncthreads();

  if (counting) {
    const int64_t end = static_cast<int64_t>(row_end);
    const int64_t prompt_end = prompt_len < end ? prompt_len : end;
    if (2 * end <= slots) {
      // b. Count in shared memory.
      for_each_id<kIdBatch>(ids, 0, prompt_end, [&](int64_t id) {
        if (valid(id)) atomicOr(counters + table_slot(keys, slots, static_cast<int32_t>(id)), kPromptFlag);
      });
      for_each_id<kIdBatch>(ids, prompt_len, end, [&](int64_t id) {
        if (valid(id)) atomicAdd(counters + table_slot(keys, slots, static_cast<int32_t>(id)), 1);
      });
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
        for (int u = 0; u < kIdBatch; ++u) logit[u] = id[u] != kEmptyKey ? to_float(row[id[u]]) : 0.f;
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u) {
          if (id[u] == kEmptyKey) continue;
          const int32_t counter = counters[first + u * blockDim.x];
          row[id[u]] = from_float<T>(
              penalised_logit(logit[u], counter, alpha, beta, gamma, temperature));
          mark(id[u]);
        }
      }
    } else {
      int32_t* counts = p.counts + b * vocab;
      // b. Count in the workspace, after clearing the slots about to be used.
      for_each_id<kIdBatch>(ids, 0, end, [&](int64_t id) {
        if (valid(id)) counts[id] = 0;
      });
      __syncthreads();
      for_each_id<kIdBatch>(ids, 0, prompt_end, [&](int64_t id) {
        if (valid(id)) atomicOr(counts + id, kPromptFlag);
      });
      for_each_id<kIdBatch>(ids, prompt_len, end, [&](int64_t id) {
        if (valid(id)) atomicAdd(counts + id, 1);
      });
      __syncthreads();
      // c. Claim each distinct token once and finish it.
      for_each_id_batch<kIdBatch>(ids, 0, end, [&](int64_t, const int64_t(&id)[kIdBatch]) {
        int32_t slot[kIdBatch];
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u) slot[u] = valid(id[u]) ? atomicExch(counts + id[u], 0) : 0;
        float logit[kIdBatch];
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u) logit[u] = slot[u] != 0 ? to_float(row[id[u]]) : 0.f;
#pragma unroll
        for (int u = 0; u < kIdBatch; ++u) {
          if (slot[u] == 0) continue;
          row[id[u]] = from_float<T>(
              penalised_logit(logit[u], slot[u], alpha, beta, gamma, temperature));
          mark(id[u]);
        }
      });
    }
  }

  // d. Bad tokens, after every other write of this row.
  int64_t num_bad = p.bad_tokens_lens[b];
  num_bad = num_bad < 0 ? 0 : (num_bad > p.max_bad_tokens ? p.max_bad_tokens : num_bad);
  if (num_bad > 0) {
    __syncthreads();
    const int64_t* bad = p.bad_tokens + b * p.max_bad_tokens;
    const T ban = from_float<T>(kBanValue);
    for (int64_t i = threadIdx.x; i < num_bad; i += blockDim.x) {
      const int64_t id = bad[i];
      if (!valid(id)) continue;
      row[id] = ban;
      if (elementwise) mark(id);
    }
  }
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
                              const float* __restrict__ penalty,
                              const float* __restrict__ frequency,
                              const float* __restrict__ presence,
                              const float* __restrict__ temperatures, int64_t vocab,
                              int64_t words, int blocks_per_row) {
  constexpr uint32_t kAll = N == 32 ? 0xffffffffu : (1u << N) - 1u;
  wait_for_dependencies();
  allow_dependent_launch();
  const int64_t b = blockIdx.x / blocks_per_row;
  const int part = static_cast<int>(blockIdx.x % blocks_per_row);
  const float temperature = temperatures[b];
  if (penalties_off(penalty[b], frequency[b], presence[b]) && temperature == 1.f) return;
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

}  // namespace fdops::penalty
