// The attention instantiation groups, as the dispatch sees them: declared here, defined in
// paged_attention.cuh and explicitly instantiated by one generated source per group
// (cuda_instantiations over paged_attention_group.cu.in), so the dispatch's translation unit
// compiles no kernel and each group is its own nvcc action.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "ops/attention/attention.h"
#include "ops/common/dispatch.cuh"

namespace fdops::attention {

template <typename T, CacheType C, int HD>
cudaError_t plan_paged_attention_group(const AttentionParams& p, int64_t resident_blocks,
                                       AttentionPlan* plan);
template <typename T, CacheType C, int HD>
cudaError_t launch_paged_attention_group(const AttentionParams& p, cudaStream_t stream);

// The names the generator's axis values stand for.
namespace instantiation {
using bf16 = __nv_bfloat16;
using fp16 = __half;
inline constexpr CacheType c16 = CacheType::kC16;
inline constexpr CacheType int8 = CacheType::kInt8;
inline constexpr CacheType fp8 = CacheType::kFp8E4M3;
}  // namespace instantiation

// The one dispatch point from the runtime dtype and head dim to a group: calls
// f(TypeTag<T>{}, std::integral_constant<int, HD>{}).
template <typename F>
cudaError_t dispatch_attention_group(const AttentionParams& p, F&& f) {
  auto by_head_dim = [&](auto tag) -> cudaError_t {
    switch (p.cache.head_dim) {
      case 64: return f(tag, std::integral_constant<int, 64>{});
      case 128: return f(tag, std::integral_constant<int, 128>{});
      case 256: return f(tag, std::integral_constant<int, 256>{});
      default: return cudaErrorInvalidValue;
    }
  };
  switch (p.dtype) {
    case DType::kBFloat16: return by_head_dim(TypeTag<__nv_bfloat16>{});
    case DType::kFloat16: return by_head_dim(TypeTag<__half>{});
    default: return cudaErrorInvalidValue;
  }
}

template <CacheType C>
cudaError_t dispatch_paged_attention(const AttentionParams& p, cudaStream_t stream) {
  return dispatch_attention_group(p, [&](auto tag, auto head_dim) {
    using T = typename decltype(tag)::type;
    return launch_paged_attention_group<T, C, decltype(head_dim)::value>(p, stream);
  });
}

template <CacheType C>
cudaError_t dispatch_paged_attention_plan(const AttentionParams& p, int64_t resident_blocks,
                                          AttentionPlan* plan) {
  *plan = AttentionPlan{};
  return dispatch_attention_group(p, [&](auto tag, auto head_dim) {
    using T = typename decltype(tag)::type;
    return plan_paged_attention_group<T, C, decltype(head_dim)::value>(p, resident_blocks, plan);
  });
}

}  // namespace fdops::attention
