// Device code of paged_kv_append: writes new K and V rows into the paged cache (quantised for
// int8/fp8 caches), with the rotary embedding of each token's cache position applied to K and,
// in place, to the query.
//
// Work item: one (token, head) row, one warp; heads are the query heads (only with a rotary
// table and a query) followed by the KV heads. Lanes stride over the row's rotary pairs, then
// over the remaining dims, so every access of a warp is to consecutive elements. The append is
// a small part of a step (one K and V row per token), so rows are not vectorised further.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/attention/cache_storage.cuh"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/rotate.cuh"

namespace fdops::attention {

inline constexpr int kAppendWarps = 4;

template <typename T, CacheType C>
__global__ void __launch_bounds__(32 * kAppendWarps) paged_kv_append_kernel(AppendParams p) {
  using Storage = CacheStorage<T, C>;
  using Element = typename Storage::Element;
  const PagedCache& cache = p.cache;
  const int heads = p.num_heads + cache.kv_heads;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kAppendWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  wait_for_dependencies();
  if (item >= p.tokens * heads) return;
  const int64_t token = item / heads;
  const int head = static_cast<int>(item % heads);
  const int D = cache.head_dim;

  const int seq = sequence_of_row(p.cu_seqlens_q, p.batch, token);
  const int64_t position = __ldg(p.cache_lens + seq) + (token - __ldg(p.cu_seqlens_q + seq));
  const int64_t capacity = static_cast<int64_t>(cache.max_blocks_per_seq) * cache.block_size;
  // Bad metadata (check_paged_metadata reports it): write nothing rather than anywhere.
  if (position < 0 || position >= capacity) return;
  const bool rotary = p.cos_sin_cache != nullptr;
  if (rotary && position >= p.max_position) return;

  const T* cos = nullptr;
  const int half = p.rot_dim / 2;
  if (rotary) cos = static_cast<const T*>(p.cos_sin_cache) + position * p.rot_dim;
  // Rotated pair i of a row: its two dims.
  auto pair_dims = [&](int i, int* a, int* b) {
    *a = p.is_neox ? i : 2 * i;
    *b = p.is_neox ? i + half : 2 * i + 1;
  };

  if (head < p.num_heads) {  // the query row, in place
    T* q = static_cast<T*>(p.query) + (token * p.num_heads + head) * D;
    for (int i = lane; i < half; i += 32) {
      int a, b;
      pair_dims(i, &a, &b);
      float x, y;
      rotate(to_float(q[a]), to_float(q[b]), to_float(cos[i]), to_float(cos[half + i]), &x, &y);
      q[a] = from_float<T>(x);
      q[b] = from_float<T>(y);
    }
    return;
  }

  const int kv_head = head - p.num_heads;
  const int32_t block =
      __ldg(cache.block_tables + seq * static_cast<int64_t>(cache.max_blocks_per_seq) +
            position / cache.block_size);
  if (block < 0 || block >= cache.num_blocks) return;
  const int64_t offset =
      cache_row_offset(cache, block, kv_head, static_cast<int>(position % cache.block_size));
  Element* k_out = static_cast<Element*>(cache.key) + offset;
  Element* v_out = static_cast<Element*>(cache.value) + offset;
  const int64_t in_row = (token * cache.kv_heads + kv_head) * D;
  const T* k_in = static_cast<const T*>(p.key) + in_row;
  const T* v_in = static_cast<const T*>(p.value) + in_row;
  float k_scale = 1.0f, v_scale = 1.0f;
  if constexpr (Storage::kQuantized) {
    k_scale = __ldg(cache.key_scale + kv_head);
    v_scale = __ldg(cache.value_scale + kv_head);
  }
  const int rotated = rotary ? p.rot_dim : 0;
  for (int i = lane; i < rotated / 2; i += 32) {
    int a, b;
    pair_dims(i, &a, &b);
    float x, y;
    rotate(to_float(k_in[a]), to_float(k_in[b]), to_float(cos[i]), to_float(cos[half + i]), &x,
           &y);
    if constexpr (!Storage::kQuantized) {
      // Round to the cache dtype exactly as the rotary family would.
      k_out[a] = from_float<T>(x);
      k_out[b] = from_float<T>(y);
    } else {
      k_out[a] = Storage::from_float(to_float(from_float<T>(x)), k_scale);
      k_out[b] = Storage::from_float(to_float(from_float<T>(y)), k_scale);
    }
  }
  for (int d = rotated + lane; d < D; d += 32) {
    k_out[d] = Storage::from_float(to_float(k_in[d]), k_scale);
  }
  for (int d = lane; d < D; d += 32) v_out[d] = Storage::from_float(to_float(v_in[d]), v_scale);
}

template <typename T, CacheType C>
cudaError_t launch_paged_kv_append_typed(const AppendParams& p, cudaStream_t stream) {
  const int64_t items = p.tokens * (p.num_heads + p.cache.kv_heads);
  if (items == 0) return cudaSuccess;
  const int64_t blocks = (items + kAppendWarps - 1) / kAppendWarps;
  return launch_kernel(paged_kv_append_kernel<T, C>, dim3(static_cast<unsigned>(blocks)),
                       dim3(32 * kAppendWarps), 0, stream, p);
}

// The append of cache type C, for the query dtype.
template <CacheType C>
cudaError_t launch_paged_kv_append_of(const AppendParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::kBFloat16: return launch_paged_kv_append_typed<__nv_bfloat16, C>(p, stream);
    case DType::kFloat16: return launch_paged_kv_append_typed<__half, C>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace fdops::attention
