// The attention family's launch functions (bf16/fp16 and int8 caches): thin dispatch to the
// generated instantiation groups and to the append kernels.
#include "ops/attention/attention.h"
#include "ops/attention/paged_attention_groups.cuh"
#include "ops/attention/paged_kv_append.cuh"
#include "ops/attention/paged_metadata.cuh"

namespace fdops::attention {

cudaError_t launch_paged_attention(const AttentionParams& params, cudaStream_t stream) {
  switch (params.cache.type) {
    case CacheType::kC16: return dispatch_paged_attention<CacheType::kC16>(params, stream);
    case CacheType::kInt8: return dispatch_paged_attention<CacheType::kInt8>(params, stream);
    default: return cudaErrorInvalidValue;  // fp8 caches are the attention_fp8 family's
  }
}

cudaError_t plan_paged_attention(const AttentionParams& params, int64_t resident_blocks,
                                 AttentionPlan* plan) {
  switch (params.cache.type) {
    case CacheType::kC16:
      return dispatch_paged_attention_plan<CacheType::kC16>(params, resident_blocks, plan);
    case CacheType::kInt8:
      return dispatch_paged_attention_plan<CacheType::kInt8>(params, resident_blocks, plan);
    default: *plan = AttentionPlan{}; return cudaErrorInvalidValue;
  }
}

cudaError_t launch_paged_kv_append(const AppendParams& params, cudaStream_t stream) {
  switch (params.cache.type) {
    case CacheType::kC16: return launch_paged_kv_append_of<CacheType::kC16>(params, stream);
    case CacheType::kInt8: return launch_paged_kv_append_of<CacheType::kInt8>(params, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t check_paged_metadata(const MetadataCheck& check, MetadataReport* report,
                                 cudaStream_t stream) {
  return run_metadata_check(check, report, stream);
}

}  // namespace fdops::attention
