// The attention family's launch functions: thin dispatch to the generated instantiation groups
// and to the append kernels.
#include "ops/attention/attention.h"
#include "ops/attention/paged_attention_groups.cuh"
#include "ops/attention/paged_kv_append.cuh"
#include "ops/attention/paged_metadata.cuh"

// The groups of fp8 caches exist from SM89 (the hardware e4m3 conversions; `min_sm` of
// attention_groups in BUILD.bazel says the same): the dispatch below serves them only when this
// file is compiled for such an SM. Every nvcc action here targets exactly one SM.
#ifndef __CUDA_ARCH_LIST__
#error "nvcc 11.5+ is needed: the dispatch reads the target SM from __CUDA_ARCH_LIST__"
#endif
#if __CUDA_ARCH_LIST__ >= 890
#define FDOPS_ATTENTION_FP8 1
#else
#define FDOPS_ATTENTION_FP8 0
#endif

namespace fdops::attention {

bool supports_cache_type(CacheType type) {
  return type == CacheType::kC16 || type == CacheType::kInt8 ||
         (type == CacheType::kFp8E4M3 && FDOPS_ATTENTION_FP8);
}

cudaError_t launch_paged_attention(const AttentionParams& params, cudaStream_t stream) {
  switch (params.cache.type) {
    case CacheType::kC16: return dispatch_paged_attention<CacheType::kC16>(params, stream);
    case CacheType::kInt8: return dispatch_paged_attention<CacheType::kInt8>(params, stream);
#if FDOPS_ATTENTION_FP8
    case CacheType::kFp8E4M3:
      return dispatch_paged_attention<CacheType::kFp8E4M3>(params, stream);
#endif
    default: return cudaErrorNotSupported;
  }
}

cudaError_t plan_paged_attention(const AttentionParams& params, int64_t resident_blocks,
                                 AttentionPlan* plan) {
  switch (params.cache.type) {
    case CacheType::kC16:
      return dispatch_paged_attention_plan<CacheType::kC16>(params, resident_blocks, plan);
    case CacheType::kInt8:
      return dispatch_paged_attention_plan<CacheType::kInt8>(params, resident_blocks, plan);
#if FDOPS_ATTENTION_FP8
    case CacheType::kFp8E4M3:
      return dispatch_paged_attention_plan<CacheType::kFp8E4M3>(params, resident_blocks, plan);
#endif
    default: *plan = AttentionPlan{}; return cudaErrorNotSupported;
  }
}

cudaError_t launch_paged_kv_append(const AppendParams& params, cudaStream_t stream) {
  switch (params.cache.type) {
    case CacheType::kC16: return launch_paged_kv_append_of<CacheType::kC16>(params, stream);
    case CacheType::kInt8: return launch_paged_kv_append_of<CacheType::kInt8>(params, stream);
#if FDOPS_ATTENTION_FP8
    case CacheType::kFp8E4M3:
      return launch_paged_kv_append_of<CacheType::kFp8E4M3>(params, stream);
#endif
    default: return cudaErrorNotSupported;
  }
}

cudaError_t check_paged_metadata(const MetadataCheck& check, MetadataReport* report,
                                 cudaStream_t stream) {
  return run_metadata_check(check, report, stream);
}

}  // namespace fdops::attention
